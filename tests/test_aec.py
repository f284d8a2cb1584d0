"""The echo canceller on real speexdsp: the device's own voice is removed from the
microphone, a voice that is not in the reference passes through."""

from __future__ import annotations

import numpy as np
import pytest
from audio_helpers import conversation, speech

from firmware_app.audio.echo import EchoPath, PlaybackReference
from firmware_app.core.engines import NoEcho
from firmware_app.core.messages import FRAME_SAMPLES, SAMPLE_RATE
from firmware_app.listen.echo_canceller import (
    SpeexEchoCanceller,
    erle_db,
    make_echo_canceller,
    speex_available,
)

pytestmark = pytest.mark.skipif(not speex_available(), reason="libspeexdsp1 is not installed")

REPLY = "The weather today is sunny with a high of twenty two degrees and a light breeze."
LATER = "Tomorrow brings rain in the afternoon, so take an umbrella when you go out."
LAG = SpeexEchoCanceller.delay_samples


def echo_of(playback: np.ndarray, gain_db: float, delay_ms: float) -> np.ndarray:
    timeline = PlaybackReference()
    timeline.place(0.0, playback.astype("<i2").tobytes(), SAMPLE_RATE)
    echo = EchoPath(gain_db, delay_ms).echo(timeline, len(playback) / SAMPLE_RATE, len(playback))
    return np.round(echo).astype(np.int16)


def cancel(aec: object, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
    n = len(mic) // FRAME_SAMPLES * FRAME_SAMPLES
    out = bytearray()
    for s in range(0, n, FRAME_SAMPLES):
        out += aec.cancel(  # type: ignore[attr-defined]
            mic[s : s + FRAME_SAMPLES].tobytes(), ref[s : s + FRAME_SAMPLES].tobytes()
        )
    return np.frombuffer(bytes(out), dtype=np.int16)


@pytest.mark.parametrize(("gain_db", "delay_ms"), [(-12.0, 20.0), (-6.0, 40.0), (0.0, 5.0)])
def test_the_devices_own_voice_is_taken_out(gain_db: float, delay_ms: float) -> None:
    playback = conversation(REPLY, 0.3, LATER)
    mic = echo_of(playback, gain_db, delay_ms)
    out = cancel(SpeexEchoCanceller(), mic, playback)
    # Once converged (the first reply) the echo of the next one is at least 15 dB quieter.
    assert erle_db(mic[: len(out)], out, skip=len(speech(REPLY))) > 15.0


def test_a_voice_that_is_not_playing_passes_through() -> None:
    user = conversation(0.3, "Hey Jarvis, what time is it?", 0.3)
    out = cancel(SpeexEchoCanceller(), user, np.zeros_like(user))
    ref = user[: len(out) - LAG].astype(np.float64)
    got = out[LAG:].astype(np.float64)
    corr = float(np.dot(ref, got) / (np.linalg.norm(ref) * np.linalg.norm(got)))
    assert corr > 0.95
    assert abs(erle_db(ref, got)) < 1.0  # level kept within 1 dB


def test_the_user_is_kept_while_the_device_talks() -> None:
    playback = conversation(REPLY, 0.3, LATER, 0.5)
    said = speech("Stop the music.")
    at = len(speech(REPLY)) + int(1.5 * SAMPLE_RATE)  # over the second reply
    user = np.zeros(len(playback), dtype=np.int16)
    user[at : at + len(said)] = said
    echo = echo_of(playback, -6.0, 20.0)
    mic = np.clip(echo.astype(np.int32) + user, -32768, 32767).astype(np.int16)
    out = cancel(SpeexEchoCanceller(), mic, playback)
    voice = said.astype(np.float64)
    kept = out[at + LAG : at + LAG + len(said)].astype(np.float64)
    heard = mic[at : at + len(said)].astype(np.float64)

    def rel_db(a: np.ndarray) -> float:
        return float(10 * np.log10(np.mean(a**2) / np.mean(voice**2)))

    assert abs(rel_db(kept)) < 2.0  # the user's voice keeps its level
    # and what is not the user's voice (the echo) is at least 3 dB lower than it was
    assert rel_db(kept - voice) < rel_db(heard - voice) - 3.0


def test_frames_must_be_whole_10ms_blocks_and_a_short_reference_is_padded() -> None:
    aec = SpeexEchoCanceller()
    with pytest.raises(ValueError, match="multiple of 160"):
        aec.cancel(b"\0" * 100, b"\0" * 100)
    out = aec.cancel(b"\1\0" * 320, b"")
    assert len(out) == 640


def test_reset_forgets_the_learned_echo_path() -> None:
    playback = speech(REPLY)
    mic = echo_of(playback, -6.0, 20.0)
    aec = SpeexEchoCanceller()
    cancel(aec, mic, playback)  # learned
    tail = slice(len(playback) - 2 * FRAME_SAMPLES * 8, len(playback) - FRAME_SAMPLES * 8)
    learned = cancel(aec, mic[tail], playback[tail])
    aec.reset()
    fresh = cancel(aec, mic[tail], playback[tail])
    assert np.mean(fresh.astype(np.float64) ** 2) > 2 * np.mean(learned.astype(np.float64) ** 2)


def test_make_echo_canceller_by_name() -> None:
    assert isinstance(make_echo_canceller("speex"), SpeexEchoCanceller)
    off = make_echo_canceller("off")
    assert isinstance(off, NoEcho)
    assert off.cancel(b"\1\2", b"\3\4") == b"\1\2"
    with pytest.raises(ValueError, match="speex, webrtc or off"):
        make_echo_canceller("magic")


def test_webrtc_engine_when_installed() -> None:
    pytest.importorskip("pywebrtc_audio")
    playback = conversation(REPLY, 0.3, LATER)
    mic = echo_of(playback, -6.0, 20.0)
    out = cancel(make_echo_canceller("webrtc"), mic, playback)
    assert erle_db(mic[: len(out)], out, skip=SAMPLE_RATE) > 20.0


def test_idle_it_passes_the_microphone_through_on_the_same_timeline() -> None:
    """Nothing plays: no filtering at all (no CPU), the microphone exactly, 10 ms late,
    as the filtered output would be."""
    user = conversation(0.3, "Hey Jarvis, what time is it?", 0.3)
    aec = SpeexEchoCanceller()
    out = cancel(aec, user, np.zeros_like(user))
    assert not aec.active
    assert np.array_equal(out[LAG:], user[: len(out) - LAG])
    assert not out[:LAG].any()


@pytest.mark.parametrize("silent_ref", [bytes(2 * FRAME_SAMPLES), b""])
def test_it_works_while_something_plays_and_just_after(silent_ref: bytes) -> None:
    """An empty reference (what an idle speaker's microphone hands over) is silence."""
    aec = SpeexEchoCanceller(idle_after_ms=400)
    playback = speech(REPLY)[: 10 * FRAME_SAMPLES]
    mic = echo_of(playback, -6.0, 20.0)
    cancel(aec, mic, playback)
    assert aec.active
    quiet = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    states, outs = [], []
    for _ in range(8):
        outs.append(aec.cancel(quiet.tobytes(), silent_ref))
        states.append(aec.active)
    assert states == [True] * 4 + [False] * 4  # 400 ms of tail, then idle
    assert all(len(out) == 2 * FRAME_SAMPLES for out in outs)


def test_a_voice_stays_whole_when_playback_starts_and_stops_under_it() -> None:
    """The filter switches on and off in the middle of the user's sentence: what comes
    out is still the sentence, continuous and at its level (no lost or doubled block)."""
    user = conversation(0.3, "Hey Jarvis, what time is it?", 0.3)
    ref = np.zeros_like(user)
    ref[8000:8160] = 1  # a click of playback (inaudible in the microphone) starts the filter
    aec = SpeexEchoCanceller(idle_after_ms=300)
    out = cancel(aec, user, ref)
    assert not aec.active  # and it stopped again
    want = user[: len(out) - LAG].astype(np.float64)
    got = out[LAG:].astype(np.float64)
    corr = float(np.dot(want, got) / (np.linalg.norm(want) * np.linalg.norm(got)))
    assert corr > 0.95
    assert abs(erle_db(want, got)) < 1.0
