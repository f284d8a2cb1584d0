"""Each engine with the real thing: openWakeWord, Silero, Vosk (Korean test model), Piper."""

from __future__ import annotations

import threading
import time
import wave

import numpy as np
import pytest
from audio_helpers import _voice, conversation, silence, speech

from firmware_app.audio.wavio import read_wav, resample
from firmware_app.config.settings import TtsSettings, WakeSettings
from firmware_app.core.errors import ModelMissingError
from firmware_app.core.messages import FRAME_SAMPLES
from firmware_app.listen.vad import SileroVad
from firmware_app.listen.wake import OpenWakeWord
from firmware_app.recognize.stt import VoskTranscriber
from firmware_app.speak.piper import PiperSynthesizer


def frames(samples: np.ndarray):
    pad = (-len(samples)) % FRAME_SAMPLES
    samples = np.concatenate([samples, np.zeros(pad, dtype=np.int16)])
    for i in range(0, len(samples), FRAME_SAMPLES):
        yield samples[i : i + FRAME_SAMPLES].tobytes()


def detections(wake, samples):
    wake.reset()
    found = []
    for i, pcm in enumerate(frames(samples)):
        d = wake.detect(pcm)
        if d:
            found.append((round((i + 1) * 0.08, 2), d))
    return found


@pytest.fixture(scope="module")
def wake():
    return OpenWakeWord(WakeSettings(models=["hey_jarvis", "alexa"]))


def test_wake_phrase_is_detected_once_and_named(wake):
    audio = conversation(1.0, "Hey Jarvis.", 1.5)
    found = detections(wake, audio)
    assert len(found) == 1  # refractory: one utterance wakes once
    t, d = found[0]
    assert d.model == "hey_jarvis" and d.score >= 0.5
    assert 1.0 < t < 1.0 + len(speech("Hey Jarvis.")) / 16000 + 0.5


def test_other_speech_does_not_wake(wake):
    audio = conversation(
        0.5,
        "What is the weather like today?",
        0.3,
        "Please remember to buy some milk and bread.",
        0.5,
    )
    assert detections(wake, audio) == []


def test_each_detection_names_its_model(wake):
    found = detections(wake, conversation(1.0, "Alexa.", 1.5))
    assert [d.model for _, d in found] == ["alexa"]


def test_wake_word_from_a_22050_hz_stereo_file(tmp_path, wake):
    """Piper speaks at 22050 Hz; the file reader resamples it properly (320/441)."""
    voice = _voice()
    mono = np.concatenate([c.audio_int16_array for c in voice.synthesize("Hey Jarvis.")])
    mono = np.concatenate([np.zeros(22050, np.int16), mono, np.zeros(22050, np.int16)])
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(np.repeat(mono, 2).tobytes())
    audio = read_wav(path)
    assert abs(len(audio) - len(mono) * 16000 / 22050) <= 2
    assert [d.model for _, d in detections(wake, audio)] == ["hey_jarvis"]


def test_resampling_keeps_the_band_and_does_not_alias():
    rate = 22050
    t = np.arange(rate) / rate
    for freq, should_survive in ((3000, True), (7000, True), (9500, False)):
        tone = (np.sin(2 * np.pi * freq * t) * 10000).astype(np.int16)
        out = resample(tone, rate, 16000).astype(np.float64)
        spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
        energy = float(np.sqrt(np.mean(out**2)))
        if should_survive:
            peak = np.argmax(spectrum) * 16000 / len(out)
            assert abs(peak - freq) < 20 and energy > 6000
        else:
            assert energy < 200  # 9.5 kHz must vanish, not fold back to 6.5 kHz


def test_silero_finds_speech_and_silence():
    vad = SileroVad()
    audio = conversation(1.0, "Set a timer for five minutes.", 1.0)
    probs = [vad.speech_probability(pcm) for pcm in frames(audio)]
    speech_frames = [i * 0.08 for i, p in enumerate(probs) if p >= 0.5]
    assert speech_frames, "no speech found"
    assert 0.9 <= speech_frames[0] <= 1.3
    assert max(probs[:10]) < 0.5 and max(probs[-5:]) < 0.5


SILERO_THREADS = """
import os, sys
import numpy as np
sys.path.insert(0, "tests")
from audio_helpers import speech
from firmware_app.listen.vad import SileroVad
def threads():
    return len(os.listdir("/proc/self/task"))
audio = speech("Set a timer for five minutes.")
before = threads()
vad = SileroVad()
for i in range(0, len(audio) - 1280, 1280):
    vad.speech_probability(audio[i : i + 1280].tobytes())
print(threads() - before, "OMP_THREAD_LIMIT" in os.environ)
"""


def test_silero_runs_on_the_calling_thread_alone():
    """The VAD's library would hand every 32 ms window to a team of OpenMP threads: in a
    fresh process (the limit is read when the library loads) it starts none, and leaves
    no OpenMP setting behind for the rest of the process."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", SILERO_THREADS], capture_output=True, text=True, cwd=root
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["0", "False"]


def test_vosk_streams_and_gives_text(ko_model_dir):
    stt = VoskTranscriber(ko_model_dir)
    stt.start()
    audio = conversation(0.3, "Hello, this is a test of streaming speech recognition.", 0.5)
    chunks = list(frames(audio))
    for pcm in chunks[: len(chunks) // 2]:
        stt.feed(pcm)
    assert stt.partial() != ""  # results stream while audio arrives
    for pcm in chunks[len(chunks) // 2 :]:
        stt.feed(pcm)
    started = time.perf_counter()
    text = stt.finish()
    finish_s = time.perf_counter() - started
    assert text.strip() != ""
    assert finish_s < 2.0  # generous: the final result needs no second pass over the audio
    stt.start()
    for pcm in frames(silence(1.5)):
        stt.feed(pcm)
    assert stt.finish() == ""


def test_missing_vosk_model_says_what_to_run(tmp_path):
    with pytest.raises(ModelMissingError, match="ttbt5 models pull"):
        VoskTranscriber(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelMissingError, match="not a Vosk model"):
        VoskTranscriber(tmp_path / "empty")


def test_piper_speaks_sentence_by_sentence():
    tts = PiperSynthesizer(TtsSettings())
    assert tts.sample_rate == 22050
    chunks = list(tts.synthesize("The oven is hot. Dinner is in ten minutes."))
    assert len(chunks) == 2
    for chunk in chunks:
        samples = np.frombuffer(chunk, dtype=np.int16)
        assert 0.5 < len(samples) / 22050 < 4 and np.abs(samples).max() > 1000


def test_piper_makes_runs_two_at_a_time_under_the_fast_clock(monkeypatch):
    """Steady (``simulate``): the next run is made on a second thread while this one is,
    and each comes out as it would alone, in order."""
    tts = PiperSynthesizer(TtsSettings(), steady=True, max_phonemes=16)
    text = "Your pasta timer has eleven minutes left, and the tea is ready now."
    made_on: list[str] = []
    run = tts._run

    def recorded(phonemes):
        made_on.append(threading.current_thread().name)
        return run(phonemes)

    monkeypatch.setattr(tts, "_run", recorded)
    together = [len(c) for c in tts.synthesize(text)]
    assert len(together) >= 4 and len(made_on) == len(together)
    assert sum(name.startswith("piper-ahead") for name in made_on) == len(together) // 2
    monkeypatch.setattr(tts, "_ahead", None)  # one at a time, on this thread
    made_on.clear()
    assert [len(c) for c in tts.synthesize(text)] == together
    assert not any(name.startswith("piper-ahead") for name in made_on)


def test_piper_can_start_a_reply_with_a_short_chunk():
    """The opening of a reply: a short first chunk (sooner to make), then the rest; the
    same words, so about as long in all."""
    tts = PiperSynthesizer(TtsSettings(), steady=True)
    text = "It's seven forty two in the evening."
    whole = list(tts.synthesize(text))
    soon = list(tts.synthesize_soon(text))
    # 38 phonemes: one run (a short tail is not cut off), or 10 + 27 cut at words
    assert len(whole) == 1 and len(soon) == 2
    assert len(soon[0]) < 0.4 * len(whole[0])
    total = [sum(len(c) for c in chunks) for chunks in (whole, soon)]
    assert 0.85 < total[1] / total[0] < 1.15, total
    # the same text lasts exactly as long every time (simulate's runs are repeatable)
    assert sum(len(c) for c in tts.synthesize_soon(text)) == total[1]

    def quiet_after(chunk: bytes) -> float:
        # Piper's samples vary from run to run (its lengths do not): at 3 % of the peak the
        # end of the words is found within a few ms (the cut leaves 0.05-0.07 s, a
        # sentence's end 0.11-0.14 s; at 1 % the two came within 0.03 s once in many)
        samples = np.abs(np.frombuffer(chunk, dtype=np.int16).astype(np.int32))
        loud = np.flatnonzero(samples >= 0.03 * samples.max())
        return (samples.size - loud[-1]) / tts.sample_rate

    # the words run on at the cut: not the pause Piper leaves where a sentence ends
    assert quiet_after(soon[0]) < quiet_after(whole[-1]) - 0.03


def test_missing_voice_is_a_clear_error(tmp_path):
    with pytest.raises(ModelMissingError, match="does not exist"):
        PiperSynthesizer(TtsSettings(voice=tmp_path / "nope.onnx"))
