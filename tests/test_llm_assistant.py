"""The real Assistant with the real LlmResponder and a real HTTP server on 127.0.0.1:
unknown requests answered by the online model while it streams, follow-up without the wake
word, barge-in closing the stream, the fallback and the breaker while the provider is down,
and ``simulate``/``ask`` end to end with the real engines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from audio_helpers import conversation, speech_spans, write
from fakes import SILENT, SPEECH, WAKE, Rig, ScriptedStt
from llm_fake_server import FakeLlm, endless, refused_url, sse, status
from pydantic import SecretStr

from firmware_app.config.settings import Settings
from firmware_app.core.messages import Command
from firmware_app.speak.output import speakable_pieces
from firmware_app.understand.actions import FIXED_PHRASES
from firmware_app.understand.llm import build_responder
from firmware_app.understand.llm.responder import FALLBACK_UNREACHABLE, FALLBACKS

KEY = "sk-e2e-DO-NOT-LEAK-0987654321"


@pytest.fixture
def server() -> Iterator[FakeLlm]:
    fake = FakeLlm()
    yield fake
    fake.close()


class LlmRig(Rig):
    """The fakes' Rig, but each step also waits for the answer on its way from the real
    responder (the audio clock stands still meanwhile, as under ``simulate``)."""

    wait_for_llm = True

    def settle(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            self.assistant.drain()
            quiet = self.assistant.quiescent() if self.wait_for_llm else self.inbox.empty()
            if quiet and not self.speech.busy():
                return
            time.sleep(0.0005)


WARM_PIECES = frozenset(p for text in (*FIXED_PHRASES, *FALLBACKS) for p in speakable_pieces(text))


def live_said(rig: Rig) -> list[str]:
    """What was synthesized to be heard, without the start-up warm-up of fixed phrases."""
    return [t for t in rig.tts.said if t not in WARM_PIECES]


def llm_settings(settings: Settings, url: str, **llm: Any) -> Settings:
    values: dict[str, Any] = {
        "url": url,
        "model": "test-model",
        "api_key": SecretStr(KEY),
        "deadline_s": 4.0,
        "connect_timeout_s": 1.0,
        "breaker_failures": 2,
        "breaker_reset_s": 60.0,
        "retries": 1,
    }
    values.update(llm)
    return settings.model_copy(update={"llm": settings.llm.model_copy(update=values)})


@pytest.fixture
def rigs() -> Iterator[Any]:
    made: list[tuple[Rig, Any]] = []

    def make(settings: Settings, *transcripts: str) -> Rig:
        from firmware_app.system.store import Store

        store = Store(settings.data_dir / "llm-store.sqlite")
        responder = build_responder(settings, store)
        rig = LlmRig(settings, stt=ScriptedStt(*transcripts), responder=responder)
        made.append((rig, responder, store))
        return rig

    yield make
    for rig, responder, store in made:
        responder.close()
        rig.close()
        store.close()


def request(rig: Rig, wake: bool = True) -> None:
    if wake:
        rig.feed(WAKE)
    rig.feed(SPEECH, 1.0)
    rig.feed(SILENT, 1.0)


def test_unknown_request_is_answered_by_the_llm_while_it_streams(
    settings: Settings, server: FakeLlm, rigs: Any
) -> None:
    tokens = ["Because", " of", " Rayleigh", " scattering.", " Blue", " light", " scatters"]
    tokens += [" more", " than", " red", " light."]
    server.then(sse(tokens, delay=0.1))
    # No chimes: the rig's audio clock stands still while the answer streams, so audio
    # queued behind the end-of-request chime would never start playing meanwhile.
    quiet = settings.model_copy(
        update={"audio": settings.audio.model_copy(update={"chimes": False})}
    )
    rig = rigs(llm_settings(quiet, server.url), "why is the sky blue")
    request(rig)
    rig.until_idle()

    types = [t for t in rig.types() if t in ("transcript", "speak_start", "reply", "speak_end")]
    assert types == ["transcript", "speak_start", "reply", "speak_end"]
    assert rig.of("reply")[0].fields == {
        "text": "Because of Rayleigh scattering. Blue light scatters more than red light.",
        "source": "llm",
    }
    assert "intent" not in rig.types()
    assert live_said(rig) == [
        "Because of Rayleigh scattering.",
        "Blue light scatters more than red light.",
    ]
    # The first sentence was playing while the rest was still streaming in.
    speak_start = rig.of("speak_start")[0]
    reply = rig.of("reply")[0]
    assert reply.wall - speak_start.wall >= 0.3  # seven more tokens at 0.1 s came after
    assert server.requests[0].body["messages"][-1] == {
        "role": "user",
        "content": "why is the sky blue",
    }
    status = rig.assistant.status()["llm"]
    assert status["available"] is True


def test_a_question_opens_a_follow_up_without_the_wake_word(
    settings: Settings, server: FakeLlm, rigs: Any
) -> None:
    server.then(
        sse(["Paris", " is", " lovely.", " Do", " you", " want", " to", " visit?"], delay=0.02),
        sse(["Then", " pack", " a", " bag."], delay=0.02),
    )
    rig = rigs(llm_settings(settings, server.url, followup_s=3.0), "tell me about paris", "yes")
    request(rig)
    for _ in range(400):
        rig.feed(SILENT)
        if rig.assistant.state.value == "listening":
            break
    assert rig.assistant.state.value == "listening"  # no wake word needed
    request(rig, wake=False)
    rig.until_idle()

    assert rig.types().count("wake") == 1
    assert [e.fields["text"] for e in rig.of("transcript")] == ["tell me about paris", "yes"]
    assert [e.fields["text"] for e in rig.of("reply")] == [
        "Paris is lovely. Do you want to visit?",
        "Then pack a bag.",
    ]
    # The follow-up carries the first exchange with it.
    assert server.requests[1].body["messages"][1:] == [
        {"role": "user", "content": "tell me about paris"},
        {"role": "assistant", "content": "Paris is lovely. Do you want to visit?"},
        {"role": "user", "content": "yes"},
    ]


def test_silence_after_a_question_returns_to_idle(
    settings: Settings, server: FakeLlm, rigs: Any
) -> None:
    server.then(sse(["Shall", " I", " go", " on?"]))
    rig = rigs(llm_settings(settings, server.url, followup_s=2.0), "tell me a story")
    request(rig)
    for _ in range(400):
        rig.feed(SILENT)
        if rig.assistant.state.value == "listening":
            break
    rig.feed(SILENT, 2.2)
    assert rig.assistant.state.value == "idle"
    assert len(server.requests) == 1


def test_barge_in_cuts_speech_and_closes_the_stream(
    settings: Settings, server: FakeLlm, rigs: Any
) -> None:
    server.default = endless("On and on it goes. ", delay=0.15)
    rig = rigs(llm_settings(settings, server.url), "tell me a long story")
    rig.wait_for_llm = False  # the answer never ends
    request(rig)
    deadline = time.monotonic() + 10
    while "speak_start" not in rig.types() and time.monotonic() < deadline:
        time.sleep(0.02)
        rig.assistant.drain()
    assert rig.assistant.state.value == "speaking"
    rig.feed(WAKE)  # barge in
    assert rig.assistant.state.value == "listening"
    deadline = time.monotonic() + 10
    while not server.disconnects and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.disconnects  # the HTTP stream was closed
    said = live_said(rig)
    assert said  # the answer had begun
    time.sleep(0.5)
    rig.assistant.drain()
    assert live_said(rig) == said  # nothing more arrives from the cancelled answer


def test_provider_down_fallback_breaker_and_local_intents_still_work(
    settings: Settings, rigs: Any
) -> None:
    rig = rigs(
        llm_settings(settings, refused_url()),
        "why is the sky blue",
        "why is grass green",
        "what time is it",
        "why is snow white",
    )
    for _ in range(2):
        request(rig)
        rig.until_idle()
    replies = [e.fields for e in rig.of("reply")]
    assert replies == [{"text": FALLBACK_UNREACHABLE, "source": "fallback"}] * 2
    assert [e.fields["where"] for e in rig.of("error")] == ["llm", "llm"]
    assert [e.fields for e in rig.of("breaker")] == [{"state": "open"}]
    assert rig.assistant.status()["llm"] == {"available": False, "breaker": "open"}
    request(rig)  # the time still works offline
    rig.until_idle()
    assert rig.of("reply")[-1].fields["source"] == "local"
    request(rig)  # breaker open: the fallback without a network attempt
    rig.until_idle()
    assert rig.of("reply")[-1].fields == {"text": FALLBACK_UNREACHABLE, "source": "fallback"}
    assert "circuit breaker open" in rig.of("error")[-1].fields["message"]
    assert all(KEY not in e.to_json() for e in rig.events)


def test_ask_command_goes_to_the_llm(settings: Settings, server: FakeLlm, rigs: Any) -> None:
    server.then(status(503), sse(["Forty", " two."]))
    rig = rigs(llm_settings(settings, server.url))
    results: list[tuple[bool, str | None]] = []
    rig.post(Command("ask", {"text": "what is the answer"}, lambda ok, e: results.append((ok, e))))
    rig.until_idle()
    assert results == [(True, None)]
    assert rig.of("reply")[0].fields == {"text": "Forty two.", "source": "llm"}
    assert len(server.requests) == 2  # the 503 was retried


# --- with the real engines (openWakeWord, Silero, Piper) ---------------------------------


@pytest.mark.slow
def test_simulate_end_to_end_speaks_the_llm_answer(
    settings: Settings, server: FakeLlm, engines_with: Any, tmp_path: Path
) -> None:
    from firmware_app.app.simulation import simulate
    from firmware_app.core.events import read_events

    server.then(sse(["The sky", " looks", " blue", " because", " of", " scattering."], delay=0.05))
    wav = write(
        tmp_path / "in.wav", conversation(0.5, "Hey Jarvis.", 0.3, "Why is the sky blue?", 2.0)
    )
    events_path = tmp_path / "events.jsonl"
    out = tmp_path / "out.wav"
    summary = simulate(
        llm_settings(settings, server.url),
        wav,
        output_wav=out,
        events=events_path,
        engines=engines_with(ScriptedStt("why is the sky blue")),
        max_tail_s=20,
    )
    assert summary["replies"] == ["The sky looks blue because of scattering."]
    events = read_events(events_path)
    types = [e["type"] for e in events]
    for name in ("wake", "speech_end", "transcript", "speak_start", "reply", "speak_end"):
        assert name in types
    reply = next(e for e in events if e["type"] == "reply")
    assert reply["source"] == "llm"
    speech_end = next(e for e in events if e["type"] == "speech_end")
    # OUT.wav holds the spoken answer after the request ended.
    from firmware_app.audio.wavio import read_wav

    spans = speech_spans(read_wav(out))
    after = sum(end - max(start, speech_end["t"]) for start, end in spans if end > speech_end["t"])
    assert after >= 1.5  # the answer, not just the end-of-request chime
    assert server.requests[0].body["messages"][-1]["content"] == "why is the sky blue"


@pytest.mark.slow
def test_ask_end_to_end_with_piper(
    settings: Settings, server: FakeLlm, real_engines: Any, tmp_path: Path
) -> None:
    from firmware_app.app.simulation import ask

    server.then(sse(["It", " is", " sunny."]))
    replies = ask(
        llm_settings(settings, server.url),
        "what is the weather like",
        output_wav=tmp_path / "out.wav",
        engines=real_engines,
    )
    assert replies == ["It is sunny."]


@pytest.mark.slow
def test_ask_output_shows_a_streamed_answer_in_its_true_order(
    settings: Settings, server: FakeLlm, real_engines: Any, tmp_path: Path
) -> None:
    """The first sentence is heard while the rest still streams in, as it is live: the
    simulated clock follows the time the answer really takes to arrive."""
    from firmware_app.app.simulation import ask
    from firmware_app.core.events import read_events

    server.then(sse(["It is sunny.", " Later", " it", " will", " rain."], delay=1.0))
    events_path = tmp_path / "events.jsonl"
    replies = ask(
        llm_settings(settings, server.url),
        "what is the weather like",
        output_wav=tmp_path / "out.wav",
        events=events_path,
        engines=real_engines,
    )
    assert replies == ["It is sunny. Later it will rain."]
    events = read_events(events_path)
    types = [e["type"] for e in events]
    first_sound, answer_done = types.index("speak_start"), types.index("reply")
    assert first_sound < answer_done
    # the rest of the answer streams in over 4 s after the first sentence, long enough for
    # the first sentence's sound to come first on a loaded machine too; the simulated clock
    # must show a good part of that wait (none at all if it ignored real time)
    assert events[answer_done]["t"] - events[first_sound]["t"] >= 1.5
    assert types.index("speak_end") > answer_done
