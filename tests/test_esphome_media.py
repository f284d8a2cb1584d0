"""Home Assistant's ``media_player.play_media`` on the speaker: the media plays on the
real ALSA speaker (the file plugin), ducked while the speaker talks over it (an
announcement here) and back up after; a stop ends it, and Home Assistant sees the media
player playing, then idle. Home Assistant's side is aioesphomeapi's own client; the
assistant is the real one on fakes (fakes.Rig) with the real speaker."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from esphome_support import FakeHome, WavServer
from fakes import SILENT, Rig, ScriptedStt
from harness import wait_until
from test_alsa_ducking import LEVEL, MEDIA_HZ, SPEECH_HZ, levels, tone

from firmware_app.audio.ducking import RAMP_S, duck_gain
from firmware_app.audio.playback import AlsaSpeaker
from firmware_app.config.settings import Settings
from firmware_app.core.messages import Command
from firmware_app.core.parts import Parts
from firmware_app.edges.esphome import entities
from firmware_app.edges.esphome.wiring import build_satellite

RATE = 16000


def wav(pcm: bytes, rate: int = RATE) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


class Speaker:
    def __init__(self, tmp_path: Path) -> None:
        self.settings = Settings(
            data_dir=tmp_path / "data",
            esphome={"enabled": True, "host": "127.0.0.1", "port": 0, "media_duck_db": -12},  # type: ignore[arg-type]
            audio={"volume": 100},  # type: ignore[arg-type]
        )
        self.stack = ExitStack()
        box: list[Rig] = []
        sat = build_satellite(
            self.settings, lambda m: box[0].inbox.post(m), dict, self.stack, advertise=False
        )
        assert sat is not None
        self.sat = sat
        self.alsa = AlsaSpeaker(
            "testspeaker",
            RATE,
            lambda m: box[0].inbox.post(m),
            duck_gain=duck_gain(self.settings.esphome.media_duck_db),
        )
        self.rig = Rig(
            self.settings, stt=ScriptedStt(), parts=Parts(satellite=sat), speaker=self.alsa
        )
        box.append(self.rig)
        self.rig.assistant.bus.subscribe(sat)
        self.wavs = WavServer()
        self.ha = FakeHome(sat.port)
        self.ha.connect()
        wait_until(lambda: sat.connected, what="Home Assistant subscribed")

    def media_state(self) -> int:
        states = [s for s in self.ha.states if getattr(s, "key", None) == entities.MEDIA_PLAYER]
        return int(states[-1].state) if states else 0

    def pump(self, check, timeout: float = 10.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.rig.types()}"
            self.rig.feed(SILENT)
            time.sleep(0.01)

    def close(self) -> None:
        self.ha.close()
        self.wavs.close()
        self.stack.close()
        self.rig.close()
        self.alsa.close()


@pytest.fixture
def speaker(tmp_path: Path, alsa_files):
    s = Speaker(tmp_path)
    yield s
    s.close()


def play_song(speaker: Speaker) -> None:
    """Home Assistant plays ``song.wav`` on the speaker's media player, until it plays."""
    ha = speaker.ha

    async def play_media() -> None:
        assert ha.client is not None
        ha.client.media_player_command(
            entities.MEDIA_PLAYER, media_url=speaker.wavs.url("song.wav")
        )

    ha.run(play_media())
    speaker.pump(lambda: speaker.alsa.media_playing(), what="the media")


def test_an_announcement_over_media_ducks_it_and_a_stop_ends_it(speaker: Speaker, alsa_files):
    _, speaker_file = alsa_files
    speaker.wavs.files["song.wav"] = wav(tone(MEDIA_HZ, 4.0))
    speaker.wavs.files["news.wav"] = wav(tone(SPEECH_HZ, 0.8))
    ha = speaker.ha

    play_song(speaker)
    wait_until(lambda: speaker.media_state() == 2, what="Home Assistant sees it playing")
    assert speaker.rig.assistant.state.value == "idle"  # media is background: no request
    time.sleep(0.5)

    async def announce():
        assert ha.client is not None
        return await ha.client.send_voice_assistant_announcement_await_response(
            speaker.wavs.url("news.wav"), 10, text="The news"
        )

    future = asyncio.run_coroutine_threadsafe(announce(), ha.loop)
    speaker.pump(future.done, what="the announcement played")
    assert future.result().success is True
    assert speaker.alsa.media_playing()  # the announcement did not stop the media

    def back_up_for_a_while() -> bool:  # what was written, however slow the machine is
        out = np.frombuffer(speaker_file.read_bytes(), dtype="<i2")
        talking = np.flatnonzero(levels(out, SPEECH_HZ) > LEVEL * 0.9)
        windows = len(levels(out, MEDIA_HZ))
        return len(talking) > 0 and windows - int(talking[-1]) > RAMP_S * 20 + 10

    wait_until(back_up_for_a_while, what="the media back up for a while")
    speaker.rig.post(Command("stop"))
    speaker.rig.settle()
    assert not speaker.alsa.media_playing()
    assert "media_stopped" in [e.fields["stage"] for e in speaker.rig.of("satellite")]
    wait_until(lambda: speaker.media_state() == 1, what="Home Assistant sees it idle")

    out = np.frombuffer(speaker_file.read_bytes(), dtype="<i2")
    media, talk = levels(out, MEDIA_HZ), levels(out, SPEECH_HZ)
    talking = np.flatnonzero(talk > LEVEL * 0.9)
    assert len(talking) >= 15  # the announcement, at its own level
    first, last = int(talking[0]), int(talking[-1])
    ramp = int(np.ceil(RAMP_S * 20))
    ducked = 10 ** (-12 / 20)
    assert media[2:first] == pytest.approx(LEVEL, rel=0.03)  # alone, full
    assert media[first + ramp : last + 1] == pytest.approx(LEVEL * ducked, rel=0.05)
    after = media[last + 1 + ramp : last + 1 + ramp + 6]
    assert len(after) == 6 and after == pytest.approx(LEVEL, rel=0.03)  # back up
    assert len(out) < 4 * RATE  # then stopped before its end


def test_media_stays_low_while_the_speaker_listens(speaker: Speaker, alsa_files):
    from fakes import WAKE

    _, speaker_file = alsa_files
    speaker.wavs.files["song.wav"] = wav(tone(MEDIA_HZ, 4.0))
    play_song(speaker)
    speaker.rig.feed(WAKE)
    assert speaker.rig.assistant.state.value == "listening"
    assert speaker.alsa.ducked and speaker.alsa.media_playing()  # ducked, not stopped
    time.sleep(0.8)
    heard = levels(np.frombuffer(speaker_file.read_bytes(), dtype="<i2"), MEDIA_HZ)
    assert heard[-3:] == pytest.approx(LEVEL * duck_gain(-12), rel=0.05)
    speaker.rig.feed(SILENT, 5.5)  # nobody speaks: the request ends
    assert speaker.rig.assistant.state.value == "idle"
    assert not speaker.alsa.ducked
