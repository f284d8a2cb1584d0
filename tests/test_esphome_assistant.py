"""The assistant with the Home Assistant satellite: requests go to Home Assistant's
pipeline while it is there, to the local brain when it is not (or fails), and what Home
Assistant sends (replies, announcements, timers) is played here. Home Assistant's side is
aioesphomeapi's own client; the assistant runs on fakes, stepped frame by frame."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from aioesphomeapi.model import VoiceAssistantEventType as Ev
from esphome_support import FakeHome, WavServer, tone_wav
from fakes import SILENT, SPEECH, WAKE, Rig, ScriptedStt, frame_of
from harness import wait_until

from firmware_app.config.settings import Settings
from firmware_app.core.controls import set_volume
from firmware_app.core.messages import Command
from firmware_app.core.parts import Parts
from firmware_app.edges.esphome.satellite import Satellite
from firmware_app.edges.esphome.wiring import build_satellite
from firmware_app.system.store import Store


class Home:
    """A Rig whose assistant has a real satellite, and Home Assistant's client."""

    def __init__(self, tmp_path, answer=0, connect=True, audio=None, wake=None, **esphome) -> None:
        cfg = {"enabled": True, "host": "127.0.0.1", "port": 0, **esphome}
        self.settings = Settings(
            data_dir=tmp_path / "data", esphome=cfg, audio=audio or {}, wake=wake or {}
        )
        self.stack = ExitStack()
        box: list[Rig] = []
        sat = build_satellite(
            self.settings, lambda m: box[0].inbox.post(m), dict, self.stack, advertise=False
        )
        assert sat is not None
        self.sat = sat
        self.rig = Rig(
            self.settings, stt=ScriptedStt("what time is it"), parts=Parts(satellite=sat)
        )
        box.append(self.rig)
        self.rig.assistant.bus.subscribe(sat)
        self.ha = FakeHome(sat.port, answer=answer)
        if connect:
            self.ha.connect()
            wait_until(lambda: sat.connected, what="Home Assistant subscribed")

    def request(self) -> None:
        self.rig.feed(WAKE)
        self.rig.feed(SPEECH, 1.0)
        self.rig.feed(SILENT, 0.8)

    def pump(self, check, timeout: float = 10.0, what: str = "") -> None:
        """Frames keep coming (silence) while Home Assistant works in real time."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; events {self.rig.types()}")
            self.rig.feed(SILENT)
            time.sleep(0.01)

    def satellite_stages(self) -> list[str]:
        return [e.fields["stage"] for e in self.rig.of("satellite")]

    def close(self) -> None:
        self.ha.close()
        self.stack.close()
        self.rig.close()


@pytest.fixture
def wavs():
    server = WavServer()
    yield server
    server.close()


@pytest.fixture
def homes(tmp_path):
    made: list[Home] = []

    def make(**kw) -> Home:
        made.append(Home(tmp_path / str(len(made)), **kw))
        return made[-1]

    yield make
    for home in made:
        home.close()


def test_with_home_assistant_the_pipeline_answers_and_the_local_brain_stays_silent(homes, wavs):
    home = homes()
    home.request()
    assert home.rig.assistant.state.value == "thinking"
    ha = home.ha
    wait_until(lambda: ha.stops == [False], what="end=True")
    assert ha.starts == [{"conversation_id": "", "phrase": "hey jarvis"}]
    # the stream is what followed the wake word: speech, then the silence until its end,
    # which is sooner than for the local brain: esphome.silence_ms (300 ms), not 600 ms
    assert ha.audio[0] == frame_of(SPEECH) and frame_of(WAKE) not in ha.audio
    assert len(ha.audio) == round(1.0 / 0.08) + 4
    wavs.files["tts.wav"] = tone_wav(0.6, 22050)
    ha.pipeline_reply(wavs.url("tts.wav"), "what time is it")
    home.pump(lambda: "speak_end" in home.rig.types(), what="the reply played")
    home.rig.until_idle()
    speak = home.rig.of("speak_start")[0].fields
    assert speak["origin"] == "home"
    assert "reply" not in home.rig.types() and "intent" not in home.rig.types()
    assert home.satellite_stages()[:2] == ["start", "end_of_speech"]
    assert "play" in home.satellite_stages()
    played = home.rig.speaker.samples()
    assert np.abs(played).max() > 4000  # the tone, resampled to the voice's rate
    assert home.rig.states()[-1] == "idle"
    wait_until(lambda: ha.finished == [True], what="Home Assistant told the reply played")


def test_without_home_assistant_the_local_brain_answers(homes):
    home = homes(connect=False)
    home.request()
    home.rig.until_idle()
    assert home.rig.of("reply")[0].fields["source"] == "local"
    assert "satellite" not in home.rig.types()


def test_home_assistant_that_does_not_take_the_request_leaves_it_to_the_local_brain(homes):
    home = homes(answer="never")
    home.rig.feed(WAKE)
    home.rig.feed(SPEECH, 0.3)
    home.pump(lambda: "unanswered" in home.satellite_stages(), timeout=3, what="unanswered")
    home.rig.feed(SPEECH, 0.5)
    home.rig.feed(SILENT, 0.8)
    home.rig.until_idle()
    reply = home.rig.of("reply")
    assert len(reply) == 1 and reply[0].fields["source"] == "local"


def test_home_assistant_lost_after_the_end_of_speech_the_local_brain_answers(homes):
    home = homes()
    home.request()
    wait_until(lambda: home.ha.stops == [False], what="end=True")
    ended = time.monotonic()
    home.ha.close()  # Home Assistant goes away while it should be answering
    home.pump(lambda: "reply" in home.rig.types(), timeout=5, what="the local reply")
    assert time.monotonic() - ended < 3.0
    assert home.rig.of("reply")[0].fields["source"] == "local"
    assert "lost" in home.satellite_stages()


def test_a_silent_home_assistant_is_given_up_after_the_stage_deadline(homes):
    home = homes(stage_timeout_s=1.0)
    home.request()
    wait_until(lambda: home.ha.stops == [False], what="end=True")
    ended = time.monotonic()
    home.pump(lambda: "reply" in home.rig.types(), timeout=5, what="the local reply")
    assert time.monotonic() - ended < 3.0
    assert home.rig.of("reply")[0].fields["source"] == "local"


def test_continue_conversation_listens_again_without_the_wake_word(homes, wavs):
    home = homes()
    home.request()
    wait_until(lambda: home.ha.stops == [False], what="end=True")
    wavs.files["q.wav"] = tone_wav(0.3, 16000)
    home.ha.pipeline_reply(wavs.url("q.wav"), "which room?", continue_conversation=True)
    home.pump(lambda: len(home.ha.starts) == 2, what="the follow-up run")
    assert home.ha.starts[1] == {"conversation_id": "c1", "phrase": None}
    assert home.rig.assistant.state.value == "listening"


def test_a_pipeline_error_ends_the_request_with_a_short_sound(homes):
    home = homes()
    home.request()
    wait_until(lambda: home.ha.stops == [False], what="end=True")
    home.ha.event(Ev.VOICE_ASSISTANT_ERROR, {"code": "intent-failed", "message": "boom"})
    home.pump(lambda: "error" in home.satellite_stages(), what="the error")
    home.rig.until_idle()
    assert "reply" not in home.rig.types()
    error = next(e for e in home.rig.of("satellite") if e.fields["stage"] == "error")
    assert error.fields["code"] == "intent-failed"


def test_an_announcement_plays_and_is_reported_finished(homes, wavs):
    import asyncio

    home = homes()
    wavs.files["a.wav"] = tone_wav(0.4, 16000)

    async def announce():
        assert home.ha.client is not None
        return await home.ha.client.send_voice_assistant_announcement_await_response(
            wavs.url("a.wav"), 10, text="Dinner is ready"
        )

    future = asyncio.run_coroutine_threadsafe(announce(), home.ha.loop)
    home.pump(future.done, what="AnnounceFinished")
    assert future.result().success is True
    speak = home.rig.of("speak_end")[0].fields
    assert speak["origin"] == "home" and not speak["cut"]


def test_a_home_assistant_timer_rings_here(homes):
    home = homes()

    async def finished():
        assert home.ha.client is not None
        home.ha.client.send_voice_assistant_timer_event(3, "t1", "pasta", 60, 0, False)

    home.ha.run(finished())
    home.pump(lambda: "speak_start" in home.rig.types(), what="the ring")
    assert home.rig.of("speak_start")[0].fields["origin"] == "timer"
    assert any(e.fields.get("pattern") == "timer" for e in home.rig.of("led"))
    home.rig.post(Command("stop"))
    assert not home.rig.assistant.voice.ringing


def test_volume_from_home_assistant_and_back(homes):
    home = homes()

    async def volume():
        assert home.ha.client is not None
        home.ha.client.media_player_command(1, volume=0.25)

    home.ha.run(volume())
    home.pump(lambda: home.rig.assistant.volume == 25, what="the volume")
    set_volume(home.rig.assistant, 60)
    wait_until(
        lambda: any(getattr(s, "volume", None) == pytest.approx(0.6) for s in home.ha.states),
        what="the volume reported",
    )


def test_start_conversation_listens_after_the_announcement(homes, wavs):
    import asyncio

    home = homes()
    wavs.files["q.wav"] = tone_wav(0.3, 16000)

    async def start_conversation():
        assert home.ha.client is not None
        return await home.ha.client.send_voice_assistant_announcement_await_response(
            wavs.url("q.wav"), 10, text="Shall I close the blinds?", start_conversation=True
        )

    future = asyncio.run_coroutine_threadsafe(start_conversation(), home.ha.loop)
    home.pump(lambda: home.ha.starts, what="the conversation's run")
    assert future.result(5).success is True
    assert home.ha.starts == [{"conversation_id": "", "phrase": None}]
    assert home.rig.assistant.state.value == "listening"


def test_a_new_wake_word_while_home_assistant_answers_stops_its_run(homes):
    home = homes(answer_timeout_s=30.0)
    home.request()
    wait_until(lambda: home.ha.stops == [False], what="end=True")
    home.ha.event(Ev.VOICE_ASSISTANT_INTENT_START)
    home.rig.feed(WAKE)  # barge-in: the user starts over
    wait_until(lambda: home.ha.stops == [False, True], what="the old run aborted")
    wait_until(lambda: len(home.ha.starts) == 2, what="a new run")
    assert "reply" not in home.rig.types()


def test_with_chimes_off_a_pipeline_error_is_spoken(tmp_path, wavs):
    home = Home(tmp_path, audio={"chimes": False})
    try:
        home.request()
        wait_until(lambda: home.ha.stops == [False], what="end=True")
        home.ha.event(Ev.VOICE_ASSISTANT_ERROR, {"code": "intent-failed", "message": "boom"})
        home.pump(lambda: "speak_start" in home.rig.types(), what="the spoken error")
        assert home.rig.of("speak_start")[0].fields["origin"] == "fallback"
        assert "reply" not in home.rig.types()
    finally:
        home.close()


def test_a_hung_home_assistant_is_noticed_by_its_missing_pong(homes):
    home = homes()  # the default stage deadline: only the ping can notice it in time
    home.rig.feed(WAKE)
    home.rig.feed(SPEECH, 1.0)
    wait_until(lambda: home.ha.audio, what="the run accepted")
    home.ha.loop.call_soon_threadsafe(time.sleep, 4.0)  # its process hangs, TCP stays up
    home.rig.feed(SILENT, 0.8)
    ended = time.monotonic()
    assert "end_of_speech" in home.satellite_stages()
    home.pump(lambda: "reply" in home.rig.types(), timeout=5, what="the local reply")
    assert time.monotonic() - ended < 3.0
    assert home.rig.of("reply")[0].fields["source"] == "local"
    lost = next(e for e in home.rig.of("satellite") if e.fields["stage"] == "lost")
    assert lost.fields["reason"] == "no answer within 1 s"


def test_health_says_whether_home_assistant_is_connected(homes):
    home = homes(connect=False)
    status = home.rig.assistant.status()["satellite"]
    assert status == {"connected": False, "peer": None, "clients": 0, "encrypted": False}
    home.ha.connect()
    wait_until(lambda: home.rig.assistant.status()["satellite"]["connected"], what="health")


def test_home_assistant_chooses_which_wake_words_are_answered(tmp_path):
    home = Home(tmp_path, wake={"models": ["hey_jarvis", "alexa"]})
    try:
        ha = home.ha

        async def choose():
            assert ha.client is not None
            await ha.client.set_voice_assistant_configuration(["alexa"])
            return await ha.client.get_voice_assistant_configuration(5)

        config = ha.run(choose())
        assert config.active_wake_words == ["alexa"]
        home.rig.feed(WAKE)  # the fake wake detector hears "hey_jarvis": turned off
        assert home.rig.of("wake_lost")[0].fields["reason"] == "inactive"
        assert home.rig.assistant.state.value == "idle" and not ha.starts
    finally:
        home.close()


def test_a_home_assistant_whose_pipeline_never_starts_leaves_it_to_the_local_brain(homes):
    home = homes()
    home.ha.runs_pipeline = False  # it accepts the run, but has no pipeline to run it
    home.request()
    wait_until(lambda: home.ha.stops == [False], what="end=True")
    ended = time.monotonic()
    home.pump(lambda: "reply" in home.rig.types(), timeout=5, what="the local reply")
    assert time.monotonic() - ended < 3.0  # not the 4 s stage deadline
    assert home.rig.of("reply")[0].fields["source"] == "local"


def home_on_stored_satellite(
    stack: ExitStack, settings: Settings, db: Path
) -> tuple[Satellite, FakeHome]:
    """A satellite keeping its choices in the store at ``db``, and Home Assistant on it."""
    store = Store(db)
    stack.callback(store.close)
    sat = build_satellite(settings, [].append, dict, stack, advertise=False, store=store)
    assert sat is not None
    ha = FakeHome(sat.port)
    stack.callback(ha.close)
    ha.connect()
    return sat, ha


def choice_survives(tmp_path, first: list[str], models: list[str]) -> tuple[list[str], object]:
    """Home Assistant chooses ``first``; the speaker restarts (a new satellite on the same
    store) with ``[wake] models`` = ``models``: what it then answers, and what Home
    Assistant's select is told."""
    settings = Settings(
        data_dir=tmp_path / "data",
        esphome={"enabled": True, "host": "127.0.0.1", "port": 0},
        wake={"models": ["hey_jarvis", "alexa"]},
    )
    with ExitStack() as stack:
        sat, ha = home_on_stored_satellite(stack, settings, tmp_path / "state.db")

        async def choose():
            assert ha.client is not None
            await ha.client.set_voice_assistant_configuration(first)
            return await ha.client.get_voice_assistant_configuration(5)

        assert ha.run(choose()).active_wake_words == first
    settings = settings.model_copy(
        update={"wake": settings.wake.model_copy(update={"models": models})}
    )
    with ExitStack() as stack:
        sat, ha = home_on_stored_satellite(stack, settings, tmp_path / "state.db")  # a restart
        wait_until(lambda: any(hasattr(s, "state") and isinstance(s.state, str) for s in ha.states))
        select = next(s.state for s in ha.states if isinstance(getattr(s, "state", None), str))

        async def configuration():
            assert ha.client is not None
            return await ha.client.get_voice_assistant_configuration(5)

        active = list(ha.run(configuration()).active_wake_words)
        assert [w for w in models if sat.hears(w)] == active
        return active, select


def test_the_wake_word_home_assistant_chose_outlives_a_restart(tmp_path):
    active, select = choice_survives(tmp_path, ["alexa"], ["hey_jarvis", "alexa"])
    assert active == ["alexa"] and select == "alexa"


def test_a_chosen_wake_word_no_longer_installed_leaves_all_of_them_answered(tmp_path):
    active, _ = choice_survives(tmp_path, ["alexa"], ["hey_jarvis", "hey_mycroft"])
    assert active == ["hey_jarvis", "hey_mycroft"]
