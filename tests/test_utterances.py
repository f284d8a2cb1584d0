"""Every spoken thing is an utterance with an id and an origin: the events that report it,
the queue of announcements, typed requests heard like spoken ones, local questions that
wait for their answer, and the parts other modules plug in (echo, stop word, arbitration)."""

from __future__ import annotations

import pytest
from fakes import SILENT, SPEECH, WAKE, Rig, ScriptedStt, frame_of

from firmware_app.core.messages import FRAME_SECONDS, Button, Command, Frame, WakeLost
from firmware_app.core.parts import Parts
from firmware_app.edges.gpio.patterns import PATTERNS, choose_pattern
from firmware_app.speak.utterances import MAX_ANNOUNCEMENTS


def say(rig: Rig, text: str, source: str = "mqtt", rid: object = None, answers=None) -> None:
    def reply(ok: bool, error: str | None) -> None:
        if answers is not None:
            answers.append((ok, error))

    rig.post(Command("say", {"text": text}, reply, source=source, request_id=rid))  # type: ignore[arg-type]


def request(rig: Rig, speech_s: float = 1.0) -> None:
    rig.feed(WAKE)
    rig.feed(SPEECH, speech_s)
    rig.feed(SILENT, 1.0)


def test_speak_events_name_the_utterance_and_who_asked_for_it(settings) -> None:
    rig = Rig(settings)
    say(rig, "first things first", rid="a-1")
    say(rig, "dinner is ready", source="hermes", rid="h-2")  # queued behind the first
    rig.until_idle()
    ends = [e.fields for e in rig.of("speak_end")]
    starts = [e.fields for e in rig.of("speak_start")]
    assert [(f["origin"], f["request_id"], f["cut"]) for f in ends] == [
        ("cmd", "a-1", False),
        ("hermes", "h-2", False),
    ]
    assert [f["utterance"] for f in starts] == [f["utterance"] for f in ends]
    assert starts[0]["utterance"] != starts[1]["utterance"]
    # the Hermes utterance ended after the first one, when its own speech ended
    types = rig.types()
    assert types.index("speak_end") < types.index("speak_start", types.index("speak_end"))
    rig.close()


def test_a_full_announcement_queue_answers_busy_at_once_and_drops_nothing(settings) -> None:
    rig = Rig(settings)
    answers: list[tuple[bool, str | None]] = []
    for i in range(MAX_ANNOUNCEMENTS + 6):
        say(rig, f"announcement number {i}", answers=answers)
    accepted = [i for i, (ok, _) in enumerate(answers) if ok]
    busy = [err for ok, err in answers if not ok]
    assert len(answers) == MAX_ANNOUNCEMENTS + 6
    assert len(accepted) == MAX_ANNOUNCEMENTS + 1  # one speaking, ten waiting
    assert busy and all(err and err.startswith("busy") for err in busy)
    rig.until_idle(limit_s=120)
    spoken = [t for t in rig.tts.said if t.startswith("announcement number")]
    assert spoken == [f"announcement number {i}" for i in accepted]
    rig.close()


def test_a_say_that_is_cut_or_dropped_is_reported(settings) -> None:
    rig = Rig(settings)
    say(rig, "one two three four five six seven", rid="long")
    say(rig, "never heard", rid="queued")
    rig.feed(SILENT, 0.24)
    assert rig.assistant.state.value == "speaking"
    rig.post(Command("stop"))
    errors = [e.fields["message"] for e in rig.of("error") if e.fields["where"] == "say"]
    assert any("'queued' not spoken" in m for m in errors)
    assert any("'long' cut off" in m for m in errors)
    dropped = rig.of("speak_dropped")[0].fields
    assert dropped["request_id"] == "queued" and dropped["reason"] == "stopped"
    rig.close()


def test_ask_is_as_if_heard_wake_words_and_all(settings) -> None:
    rig = Rig(settings)
    rig.post(Command("ask", {"text": "hey jarvis what time is it"}))
    rig.until_idle()
    assert rig.of("transcript")[-1].fields["text"] == "what time is it"
    assert rig.of("intent")[-1].fields["name"] == "time"
    first = rig.of("reply")[-1].fields["text"]
    rig.post(Command("ask", {"text": "repeat that"}))
    rig.until_idle()
    assert rig.of("reply")[-1].fields["text"] == first
    rig.close()


def test_a_local_question_listens_for_its_answer_without_the_wake_word(settings) -> None:
    rig = Rig(settings, stt=ScriptedStt("the pasta one"))
    for text in ("set a pasta timer for ten minutes", "set a laundry timer for one hour"):
        rig.post(Command("ask", {"text": text}))
        rig.until_idle()
    rig.post(Command("ask", {"text": "cancel the timer"}))
    assert rig.of("reply")[-1].fields["text"].endswith("Which one?")
    for _ in range(200):
        rig.feed(SILENT)
        if rig.assistant.state.value == "listening":
            break
    assert rig.assistant.state.value == "listening"
    assert rig.types().count("wake") == 0
    rig.feed(SPEECH, 0.8)
    rig.feed(SILENT, 1.0)
    rig.until_idle()
    assert rig.of("reply")[-1].fields["text"] == "Pasta timer cancelled."
    assert [t.name for t in rig.assistant.timers.active()] == ["laundry"]
    rig.close()


def test_the_transcriber_is_finished_once_on_every_way_out_of_listening(settings) -> None:
    stt = ScriptedStt()
    rig = Rig(settings, stt=stt)
    rig.post(Button("press"))
    rig.post(Button("press"))  # cancelled by the button
    rig.post(Button("press"))
    rig.post(Command("mute", {"muted": True}))  # muted while listening
    rig.post(Command("mute", {"muted": False}))
    rig.post(Button("press"))
    rig.post(Command("ask", {"text": "what time is it"}))  # typed over it
    rig.until_idle()
    rig.feed(WAKE)
    rig.feed(SILENT, settings.vad.start_timeout_s + 0.2)  # nobody spoke
    assert stt.starts == 4 and len(stt.fed) == 4
    rig.close()


def test_preroll_reaches_the_transcriber_in_whole_frames(settings) -> None:
    stt = ScriptedStt("what time is it")
    rig = Rig(settings, stt=stt)
    rig.feed(SILENT, 2.0)
    rig.feed(WAKE)
    rig.post(Button("press"))  # ends the request: what was fed is counted
    assert stt.fed == [7]  # 500 ms is 6.25 frames: never less than asked for
    rig.close()


class Echo:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes, bytes]] = []

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        self.calls.append((mic, ref))
        return frame_of(SILENT)  # it was all the speaker's own sound

    def reset(self) -> None:
        pass


class Stop:
    def __init__(self) -> None:
        self.fed = 0

    def spot(self, pcm: bytes) -> bool:
        self.fed += 1
        return self.fed >= 3

    def reset(self) -> None:
        self.fed = 0


class Arbiter:
    def __init__(self, wins: bool) -> None:
        self.wins = wins
        self.claims: list[tuple[str, float]] = []

    def claim(self, model: str, score: float) -> bool:
        self.claims.append((model, score))
        return self.wins

    def status(self) -> dict[str, object] | None:
        return {"claims": len(self.claims)}


def test_the_echo_canceller_cleans_frames_that_carry_the_speaker_reference(settings) -> None:
    echo = Echo()
    rig = Rig(settings, echo=echo)
    rig.post(Frame(frame_of(WAKE), FRAME_SECONDS, ref=frame_of(WAKE)))
    rig.post(Frame(frame_of(WAKE), 2 * FRAME_SECONDS))  # no reference: as heard
    assert len(echo.calls) == 1 and echo.calls[0][1] == frame_of(WAKE)
    assert rig.types().count("wake") == 1  # only the frame without a reference woke it
    rig.close()


def test_the_stop_word_works_only_while_speaking(settings) -> None:
    stop = Stop()
    rig = Rig(settings, stop=stop)
    rig.feed(SILENT, 1.0)
    assert stop.fed == 0
    say(rig, "one two three four five six seven eight nine ten")
    rig.feed(SILENT, 0.4)
    assert rig.assistant.state.value == "idle"  # stopped by the third frame it heard
    assert rig.of("speak_end")[-1].fields["cut"] is True
    rig.close()


@pytest.mark.parametrize("wins", [True, False])
def test_a_wake_word_claimed_elsewhere_is_answered_there(settings, wins: bool) -> None:
    arbiter = Arbiter(wins)
    rig = Rig(settings, parts=Parts(arbiter=arbiter))
    rig.feed(WAKE)
    assert arbiter.claims == [("hey_jarvis", 0.9)]
    assert rig.of("wake")[0].fields == {"model": "hey_jarvis", "score": 0.9}
    assert rig.assistant.state.value == ("listening" if wins else "idle")
    assert bool(rig.of("wake_lost")) is not wins
    rig.close()


def test_a_wake_word_lost_after_the_fact_goes_back_to_idle_silently(settings) -> None:
    rig = Rig(settings)
    rig.feed(WAKE)
    rig.post(WakeLost())
    assert rig.assistant.state.value == "idle"
    assert "reply" not in rig.types() and rig.of("wake_lost")[0].fields["reason"] == "arbitration"
    rig.close()


@pytest.mark.parametrize(
    ("state", "flags", "pattern"),
    [
        ("idle", {}, "idle"),
        ("idle", {"offline": True}, "offline"),
        ("muted", {"muted": True, "offline": True}, "muted"),
        ("listening", {"muted": False, "ringing": False}, "listening"),
        ("speaking", {"ringing": True}, "timer"),
        ("error", {}, "error"),
        ("thinking", {"muted": True}, "thinking"),
        ("error", {"muted": True}, "error"),
        ("speaking", {"updating": True, "ringing": True}, "updating"),
    ],
)
def test_the_led_pattern_is_a_function_of_state_and_flags(state, flags, pattern) -> None:
    values = {"muted": False, "ringing": False, "updating": False, "offline": False, **flags}
    assert choose_pattern(state, **values) == pattern
    assert pattern in PATTERNS


def test_status_counts_are_derived_from_the_events(settings) -> None:
    from firmware_app.core.messages import Notice

    rig = Rig(settings)
    rig.feed(WAKE)
    rig.post(Notice("error", {"where": "tts", "message": "voice missing"}))
    status = rig.assistant.status()
    assert status["wake_count"] == len(rig.of("wake")) == 1
    assert status["errors"] == len(rig.of("error")) == 1
    assert status["last_error"] == "tts: voice missing"
    rig.close()
