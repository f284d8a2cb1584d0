"""The state machine on fakes: every transition, timers, barge-in, timeouts, commands."""

from __future__ import annotations

import time

import pytest
from fakes import SILENT, SPEECH, WAKE, ManualClock, Rig, ScriptedStt
from harness import TURN_ORDER, turn_events

from firmware_app.core.assistant import Assistant
from firmware_app.core.messages import Button, Command, Notice, ReplyEnd, ReplySentence
from firmware_app.system.metrics import metrics_from_records
from firmware_app.understand.actions import NO_MODEL, NOT_HEARD, beyond_commands


@pytest.fixture
def rig(settings):
    r = Rig(settings, stt=ScriptedStt("what time is it", "set a timer for five minutes"))
    yield r
    r.close()


def request(rig: Rig, speech_s: float = 1.0) -> None:
    rig.feed(WAKE)
    rig.feed(SPEECH, speech_s)
    rig.feed(SILENT, 1.0)


def test_full_turn_goes_through_every_state_in_order(rig):
    request(rig)
    rig.until_idle()
    assert rig.states() == ["idle", "listening", "thinking", "speaking", "idle"]
    assert turn_events(rig.types()) == list(TURN_ORDER)
    assert rig.of("transcript")[0].fields == {"text": "what time is it"}
    assert rig.of("intent")[0].fields == {"name": "time", "slots": {}}
    reply = rig.of("reply")[0].fields
    assert reply["source"] == "local" and reply["text"].startswith("It's ")


class SlowStt(ScriptedStt):
    """A recognizer whose last pass takes a while, as Whisper's does."""

    def finish(self) -> str:
        time.sleep(0.2)
        return super().finish()


def test_the_recognizers_last_pass_counts_in_the_latency(settings):
    """speech_end is stamped when the end was decided, before the recognizer's last pass:
    what the user waits for (speech_end -> transcript, -> first reply audio) includes it."""
    rig = Rig(settings, stt=SlowStt("what time is it"))
    try:
        request(rig)
        rig.until_idle()
        end, transcript = rig.of("speech_end")[0], rig.of("transcript")[0]
        assert transcript.wall - end.wall >= 0.2
        latency = metrics_from_records(e.as_dict() for e in rig.events)["latency_ms"]
        assert latency["stt_final"]["p50"] >= 200 and latency["response"]["p50"] >= 200
    finally:
        rig.close()


def test_event_times_are_on_the_audio_clock(rig):
    request(rig)
    rig.until_idle()
    wake, end = rig.of("wake")[0], rig.of("speech_end")[0]
    assert wake.t == pytest.approx(0.08)
    # speech frames end at 1.04 s; the 600 ms hangover is rounded to the nearest frame
    assert 1.04 + 0.56 - 1e-6 <= end.t <= 1.04 + 0.64 + 1e-6
    assert all(e.wall >= 0 for e in rig.events)


def test_no_speech_after_wake_returns_to_idle_after_the_timeout(rig):
    rig.feed(WAKE)
    rig.feed(SILENT, rig.settings.vad.start_timeout_s - 0.2)
    assert rig.assistant.state.value == "listening"
    rig.feed(SILENT, 0.4)
    assert rig.assistant.state.value == "idle"
    assert "speech_end" not in rig.types() and "reply" not in rig.types()


def test_a_request_is_capped_at_max_request_s(settings):
    settings = settings.model_copy(
        update={"vad": settings.vad.model_copy(update={"max_request_s": 3.0})}
    )
    rig = Rig(settings, stt=ScriptedStt("what time is it"))
    rig.feed(WAKE)
    rig.feed(SPEECH, 10)
    end = rig.of("speech_end")[0]
    assert end.t == pytest.approx(0.08 + 3.0, abs=0.09)
    rig.close()


def test_empty_transcript_gets_a_short_fallback(settings):
    rig = Rig(settings, stt=ScriptedStt(""))
    request(rig)
    rig.until_idle()
    assert rig.of("reply")[0].fields == {"text": NOT_HEARD, "source": "fallback"}
    rig.close()


def test_unknown_request_without_llm_gets_the_fallback(settings):
    rig = Rig(settings, stt=ScriptedStt("why is the sky blue"))
    request(rig)
    rig.until_idle()
    # an open transcript, no LLM: the reply says what to add
    text = beyond_commands(open_speech=True, llm=False)
    assert rig.of("reply")[0].fields == {"text": text, "source": "fallback"}
    rig.close()


def test_without_a_speech_model_the_wake_word_still_works_and_says_what_to_install(settings):
    rig = Rig(settings, stt=None)
    request(rig)
    rig.until_idle()
    assert rig.of("wake")
    assert rig.of("reply")[0].fields["text"] == NO_MODEL


def test_wake_word_while_speaking_barges_in_and_listens(rig):
    request(rig)
    rig.feed(SILENT, 0.16)  # reply is playing now
    assert rig.assistant.state.value == "speaking"
    rig.feed(WAKE)
    assert rig.assistant.state.value == "listening"
    types = rig.types()
    assert types.count("speak_end") == 1 and types.count("wake") == 2
    rig.feed(SPEECH, 0.8)
    rig.feed(SILENT, 1.0)
    rig.until_idle()
    assert rig.of("intent")[-1].fields["name"] == "timer_set"


def test_stop_command_and_button_cut_speech(rig):
    request(rig)
    rig.feed(SILENT, 0.16)
    assert rig.assistant.state.value == "speaking"
    rig.post(Button("press"))
    assert rig.assistant.state.value == "idle"
    assert rig.types().count("speak_end") == 1


def test_button_press_when_idle_listens_and_again_cancels(rig):
    rig.post(Button("press"))
    assert rig.assistant.state.value == "listening"
    rig.post(Button("press"))
    assert rig.assistant.state.value == "idle"


def test_hold_toggles_mute_persistently_and_muted_frames_reach_no_engine(settings):
    rig = Rig(settings)
    rig.post(Button("hold"))
    assert rig.assistant.muted and rig.assistant.state.value == "muted"
    assert rig.of("led")[-1].fields == {"pattern": "muted"}
    before = rig.wake.frames
    rig.feed(WAKE)
    rig.feed(SPEECH, 1)
    assert rig.wake.frames == before  # privacy: nothing analysed
    assert "wake" not in rig.types()
    rig.close()
    again = Rig(settings)  # restart on the same store
    assert again.assistant.muted and again.assistant.state.value == "muted"
    again.post(Button("hold"))
    assert not again.assistant.muted and again.assistant.state.value == "idle"
    again.close()


def test_double_press_repeats_the_last_reply(rig):
    request(rig)
    rig.until_idle()
    first = rig.of("reply")[0].fields["text"]
    rig.post(Button("double"))
    rig.until_idle()
    assert rig.tts.said.count(first) == 2


def test_timer_rings_when_due_and_press_silences_it(settings):
    rig = Rig(settings, stt=ScriptedStt("set a pasta timer for ten seconds"))
    request(rig)
    rig.until_idle()
    assert rig.of("timer")[0].fields["action"] == "set"
    rig.feed(SILENT, 10)
    ring = [e for e in rig.of("timer") if e.fields["action"] == "ring"]
    assert ring and ring[0].fields["name"] == "pasta"
    assert rig.of("led")[-1].fields["pattern"] == "timer"
    rig.post(Button("press"))
    assert rig.assistant.state.value == "idle"
    assert rig.of("led")[-1].fields["pattern"] == "idle"
    assert rig.assistant.timers.active() == []
    rig.close()


def test_timers_survive_a_restart_and_ring_on_time(settings):
    clock = ManualClock()
    rig = Rig(settings, stt=ScriptedStt("set a timer for thirty seconds"), clock=clock)
    request(rig)
    rig.until_idle()
    rig.close()
    restarted = ManualClock(clock.epoch() + 5)  # back up 5 s later, before it is due
    again = Rig(settings, clock=restarted)
    (timer,) = again.assistant.timers.active()
    remaining = timer.due - restarted.epoch()
    assert 10 < remaining < 30
    again.feed(SILENT, remaining - 0.3)
    assert not [e for e in again.of("timer") if e.fields["action"] == "ring"]
    again.feed(SILENT, 0.5)
    assert [e for e in again.of("timer") if e.fields["action"] == "ring"]
    again.close()


def test_timer_that_expired_while_down_is_announced_as_missed(settings):
    clock = ManualClock()
    rig = Rig(settings, stt=ScriptedStt("set a timer for five minutes"), clock=clock)
    request(rig)
    rig.until_idle()
    rig.close()
    again = Rig(settings, clock=ManualClock(clock.base + 3600))
    missed = [e for e in again.of("timer") if e.fields["action"] == "missed"]
    assert missed and missed[0].fields["seconds"] == 300
    again.until_idle()
    assert any("While I was off" in s for s in again.tts.said)
    assert again.assistant.timers.active() == []
    again.close()


def test_timer_due_during_a_request_waits_for_it_to_finish(settings):
    rig = Rig(settings, stt=ScriptedStt("set a timer for five seconds", "what time is it"))
    request(rig)
    rig.until_idle()
    assert rig.clock.now < 4
    rig.feed(WAKE)
    rig.feed(SPEECH, 4.0)  # due while listening
    assert not [e for e in rig.of("timer") if e.fields["action"] == "ring"]
    rig.feed(SILENT, 1.0)
    rig.until_idle()
    assert [e for e in rig.of("timer") if e.fields["action"] == "ring"]
    rig.close()


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("how long is left on the timer", "There's no timer running."),
        ("cancel the timer", "There's no timer running."),
        ("set the volume to thirty percent", "Volume 30 percent."),
        ("what can you do", None),
    ],
)
def test_local_intents_reply(settings, text, reply):
    rig = Rig(settings, stt=ScriptedStt(text))
    request(rig)
    rig.until_idle()
    got = rig.of("reply")[0].fields
    assert got["source"] == "local"
    if reply:
        assert got["text"] == reply
    rig.close()


def test_timer_commands_by_name(settings):
    rig = Rig(settings)
    for cmd in (
        "set a pasta timer for ten minutes",
        "set a timer for one hour called laundry",
        "how much time is left on the pasta timer",
        "cancel the laundry timer",
        "what timers do i have",
    ):
        rig.post(Command("ask", {"text": cmd}))
        rig.until_idle()
    replies = [e.fields["text"] for e in rig.of("reply")]
    assert replies[0] == "Pasta timer set for 10 minutes."
    assert replies[1] == "Laundry timer set for 1 hour."
    assert replies[2].endswith("left on your pasta timer.")
    assert replies[3] == "Laundry timer cancelled."
    assert "pasta timer" in replies[4] and "laundry" not in replies[4]
    rig.close()


def test_volume_persists_and_scales_the_audio(settings):
    rig = Rig(settings)
    rig.post(Command("volume", {"volume": 50}))
    rig.post(Command("say", {"text": "hello there"}))
    rig.until_idle()
    peak = int(abs(rig.speaker.samples()).max())
    assert peak == int(3000 * 0.25)  # squared curve: 50 % → 0.25 gain
    rig.close()
    again = Rig(settings)
    assert again.assistant.volume == 50
    again.close()


def test_commands_reply_exactly_once(rig):
    got: list[tuple[str, bool, str | None]] = []
    for name, args in [
        ("say", {"text": "hi"}),
        ("say", {"text": ""}),
        ("listen", {}),
        ("stop", {}),
        ("mute", {"muted": True}),
        ("listen", {}),
        ("mute", {"muted": False}),
        ("volume", {"volume": 10}),
        ("update", {}),
    ]:
        rig.post(Command(name, args, lambda ok, err, n=name: got.append((n, ok, err))))
    assert [(n, ok) for n, ok, _ in got] == [
        ("say", True),
        ("say", False),
        ("listen", True),
        ("stop", True),
        ("mute", True),
        ("listen", False),
        ("mute", True),
        ("volume", True),
        ("update", False),
    ]
    assert got[-1][2] == "updates are not available on this installation"


def test_say_while_listening_waits_its_turn(rig):
    rig.feed(WAKE)
    rig.post(Command("say", {"text": "dinner is ready"}))
    assert rig.assistant.state.value == "listening"
    rig.feed(SPEECH, 0.5)
    rig.feed(SILENT, 1)
    rig.until_idle()
    assert "dinner is ready" in rig.tts.said


def test_microphone_loss_shows_error_and_recovers_on_the_next_frame(rig):
    rig.post(Notice("error", {"where": "audio.input", "message": "device gone"}))
    assert rig.assistant.state.value == "error"
    assert rig.of("error")[-1].fields == {"where": "audio.input", "message": "device gone"}
    assert rig.of("led")[-1].fields["pattern"] == "error"
    rig.feed(SILENT)
    assert rig.assistant.state.value == "idle"


def test_broker_offline_shows_on_the_led_only_when_idle(rig):
    rig.post(Notice("offline", {"where": "mqtt"}))
    assert rig.of("led")[-1].fields["pattern"] == "offline"
    rig.post(Notice("online", {"where": "mqtt"}))
    assert rig.of("led")[-1].fields["pattern"] == "idle"


class FakeResponder:
    def __init__(self) -> None:
        self.asked: list[tuple[int, str]] = []
        self.cancelled: list[int] = []

    def respond(self, request, text, post):
        self.asked.append((request, text))

    def cancel(self, request):
        self.cancelled.append(request)

    def available(self):
        return True

    def status(self):
        return {"state": "closed"}


def test_streamed_reply_speaks_the_first_sentence_before_the_end(settings):
    responder = FakeResponder()
    rig = Rig(settings, stt=ScriptedStt("why is the sky blue"), responder=responder)
    request(rig)
    ((req, text),) = responder.asked
    assert text == "why is the sky blue"
    rig.post(ReplySentence(req, "Because of Rayleigh scattering."))
    assert rig.assistant.state.value == "speaking" and "speak_start" in rig.types()
    assert "reply" not in rig.types()
    rig.post(ReplySentence(req, "Do you want to know more?"))
    rig.post(ReplyEnd(req))
    assert rig.of("reply")[0].fields == {
        "text": "Because of Rayleigh scattering. Do you want to know more?",
        "source": "llm",
    }
    # a reply that asks a question opens a follow-up: listening without the wake word
    for _ in range(200):
        rig.feed(SILENT)
        if rig.assistant.state.value != "speaking":
            break
    assert rig.assistant.state.value == "listening"
    rig.feed(SILENT, settings.llm.followup_s + 0.2)
    assert rig.assistant.state.value == "idle"
    rig.close()


def test_llm_failure_speaks_the_fallback_and_barge_in_cancels_the_stream(settings):
    responder = FakeResponder()
    rig = Rig(
        settings, stt=ScriptedStt("why is the sky blue", "tell me a story"), responder=responder
    )
    request(rig)
    req = responder.asked[0][0]
    rig.post(ReplyEnd(req, error="connection refused", fallback="I can't reach the cloud."))
    assert rig.of("reply")[0].fields == {"text": "I can't reach the cloud.", "source": "fallback"}
    assert rig.of("error")[0].fields["where"] == "llm"
    rig.until_idle()
    request(rig)
    req2 = responder.asked[1][0]
    rig.feed(WAKE)  # barge in while waiting for the answer
    assert responder.cancelled == [req2]
    rig.post(ReplySentence(req2, "Once upon a time."))  # late: ignored
    assert rig.assistant.state.value == "listening"
    rig.close()


def test_a_failing_observer_does_not_stop_the_assistant(settings):
    rig = Rig(settings, stt=ScriptedStt("what time is it"))

    def broken(event):
        raise RuntimeError("observer bug")

    rig.assistant.bus.subscribe(broken)
    request(rig)
    rig.until_idle()
    assert rig.of("reply")
    rig.close()


def test_status_is_json_ready(rig):
    import json

    status = rig.assistant.status()
    json.dumps(status)
    assert status["state"] == "idle" and status["volume"] == 70 and status["llm"] is None
    assert isinstance(rig.assistant, Assistant)


def test_a_command_whose_handler_raises_is_still_answered_once(rig):
    answers: list[tuple[bool, str | None]] = []
    cmd = Command("volume", {"volume": "loud"}, lambda ok, err: answers.append((ok, err)))
    rig.assistant.handle(cmd)
    assert answers == [(False, "volume failed: ValueError")]
    assert rig.of("error")  # and the failure is on the event log
