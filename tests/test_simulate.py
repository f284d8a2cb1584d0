"""``simulate`` end to end on synthesized conversations: real openWakeWord, Silero and
Piper; a scripted transcriber where English recognition is needed, and one run with the
real Vosk adapter."""

from __future__ import annotations

import time

import numpy as np
import pytest
from audio_helpers import conversation, speech, speech_spans, write
from fakes import ScriptedStt
from harness import TURN_ORDER, turn_events

from firmware_app.app import simulation
from firmware_app.audio.wavio import read_wav
from firmware_app.core.events import read_events
from firmware_app.understand.actions import NO_MODEL


def run(settings, engines, tmp_path, *parts, name="conv"):
    wav = write(tmp_path / f"{name}.wav", conversation(*parts))
    out, events = tmp_path / f"{name}-out.wav", tmp_path / f"{name}.jsonl"
    summary = simulation.simulate(
        settings, wav, out, events, engines=engines, start_epoch=1_800_000_000.0
    )
    return summary, read_events(events), out


def test_wake_request_reply_in_order_with_audio_in_out_wav(settings, engines_with, tmp_path):
    stt = ScriptedStt("hey jarvis what time is it")
    summary, events, out = run(
        settings, engines_with(stt), tmp_path, 1.0, "Hey Jarvis, what time is it?", 2.0
    )
    assert turn_events(e["type"] for e in events) == list(TURN_ORDER)
    by = {e["type"]: e for e in events}
    assert by["wake"]["model"] == "hey_jarvis" and by["wake"]["score"] >= 0.5
    assert by["transcript"]["text"] == "what time is it"  # the wake phrase is stripped
    assert by["intent"] == {**by["intent"], "name": "time", "slots": {}}
    assert by["reply"]["source"] == "local" and summary["replies"] == [by["reply"]["text"]]
    assert all({"type", "t", "wall"} <= set(e) for e in events)
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    # OUT.wav is on the same clock as IN.wav: the reply starts when speak_start says
    played = read_wav(out, 22050)
    spans = speech_spans(played, 22050)
    assert spans, "nothing was played"
    # wake chime, end-of-request chime, then the reply
    assert spans[0][0] == pytest.approx(by["listening"]["t"], abs=0.1)
    assert spans[1][0] == pytest.approx(by["speech_end"]["t"], abs=0.1)
    reply = [s for s in spans if s[0] >= by["speak_start"]["t"] - 0.02]
    assert reply and reply[0][0] - by["speak_start"]["t"] < 0.3
    assert by["speak_end"]["t"] >= reply[-1][1]


def test_end_of_speech_is_found_within_the_hangover(settings, engines_with, tmp_path):
    request = "Set a timer for five minutes."
    audio = conversation(1.0, "Hey Jarvis.", 0.6, request, 2.0)
    true_end = len(conversation(1.0, "Hey Jarvis.", 0.6, request)) / 16000
    # trim the synthesized trailing silence off the true end
    tail = speech_spans(speech(request))[-1][1]
    true_end = true_end - len(speech(request)) / 16000 + tail
    wav = write(tmp_path / "eos.wav", audio)
    simulation.simulate(
        settings,
        wav,
        None,
        tmp_path / "eos.jsonl",
        engines=engines_with(ScriptedStt("set a timer for five minutes")),
    )
    events = read_events(tmp_path / "eos.jsonl")
    end = next(e for e in events if e["type"] == "speech_end")
    delay = end["t"] - true_end
    assert 0 <= delay <= settings.vad.silence_ms / 1000 + 0.1
    assert next(e for e in events if e["type"] == "intent")["slots"] == {
        "seconds": 300,
        "name": None,
    }


def test_timer_rings_during_the_recording(settings, engines_with, tmp_path):
    stt = ScriptedStt("set a timer for three seconds")
    _summary, events, _out = run(
        settings,
        engines_with(stt),
        tmp_path,
        1.0,
        "Hey Jarvis, set a timer for three seconds.",
        8.0,
    )
    actions = [e["action"] for e in events if e["type"] == "timer"]
    assert actions == ["set", "ring"]
    leds = [e["pattern"] for e in events if e["type"] == "led"]
    assert "timer" in leds and leds[-1] == "idle"


def test_no_speech_model_still_wakes_and_says_how_to_install(settings, engines_with, tmp_path):
    summary, events, _ = run(
        settings,
        engines_with(None, problem="no model"),
        tmp_path,
        1.0,
        "Hey Jarvis, what time is it?",
        2.0,
    )
    assert any(e["type"] == "wake" for e in events)
    assert summary["replies"] == [NO_MODEL]


def test_simulation_is_deterministic(settings, engines_with, tmp_path):
    runs = []
    for i in range(2):
        _, events, _ = run(
            settings,
            engines_with(ScriptedStt("what time is it")),
            tmp_path,
            0.5,
            "Hey Jarvis, what time is it?",
            1.5,
            name=f"det{i}",
        )
        runs.append([(e["type"], e["t"]) for e in events])
    assert runs[0] == runs[1]


def test_speech_without_the_wake_word_does_nothing(settings, engines_with, tmp_path):
    summary, events, out = run(
        settings,
        engines_with(ScriptedStt("what time is it")),
        tmp_path,
        0.5,
        "What time is it? Set a timer for five minutes.",
        1.0,
    )
    assert [e["type"] for e in events] == ["state", "led"]
    assert summary["replies"] == [] and not np.any(read_wav(out, 22050))


def test_barge_in_with_the_wake_word(settings, engines_with, tmp_path):
    stt = ScriptedStt("what can you do", "what time is it")
    # the help reply is long; the second wake word arrives while it plays
    summary, events, _ = run(
        settings,
        engines_with(stt),
        tmp_path,
        0.5,
        "Hey Jarvis, what can you do?",
        2.5,
        "Hey Jarvis.",
        0.3,
        "What time is it?",
        2.0,
    )
    types = [e["type"] for e in events]
    assert types.count("wake") == 2
    first = types.index("speak_start")
    assert types.index("wake", first) < types.index("speak_end", first)  # cut short
    assert len(summary["replies"]) == 2


def test_real_vosk_adapter_in_the_loop(settings, engines_with, tmp_path, ko_model_dir):
    from firmware_app.recognize.stt import VoskTranscriber

    stt = VoskTranscriber(ko_model_dir)
    summary, events, _ = run(
        settings, engines_with(stt), tmp_path, 1.0, "Hey Jarvis, what time is it?", 2.0
    )
    transcript = next(e for e in events if e["type"] == "transcript")
    assert transcript["text"].strip() != ""  # Korean words for English speech, but real text
    assert len(summary["replies"]) == 1


def test_realtime_paces_like_a_microphone(settings, engines_with, tmp_path):
    wav = write(tmp_path / "rt.wav", conversation(0.5, "Hey Jarvis, what time is it?", 1.0))
    started = time.monotonic()
    summary = simulation.simulate(
        settings,
        wav,
        tmp_path / "rt-out.wav",
        tmp_path / "rt.jsonl",
        realtime=True,
        engines=engines_with(ScriptedStt("what time is it")),
    )
    took = time.monotonic() - started
    assert took >= summary["input_s"] - 0.2
    assert len(summary["replies"]) == 1


@pytest.mark.parametrize("shape", [(8000, 1, 2), (44100, 2, 2), (48000, 1, 4), (22050, 1, 1)])
def test_any_common_wav_shape_is_converted(tmp_path, shape):
    import wave

    rate, channels, width = shape
    t = np.arange(rate) / rate
    tone = np.sin(2 * np.pi * 440 * t) * 0.5
    if width == 1:
        data = ((tone + 1) * 127.5).astype(np.uint8)
    elif width == 2:
        data = (tone * 32767).astype("<i2")
    else:
        data = (tone * 2**31).astype("<i4")
    data = np.repeat(data, channels)
    path = tmp_path / "shape.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    out = read_wav(path)
    assert abs(len(out) - 16000) <= 2
    assert 14000 < np.abs(out).max() < 17500


def test_bad_wav_is_a_clear_error(tmp_path):
    from firmware_app.core.errors import BadInputError

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(BadInputError, match="not a WAV file"):
        read_wav(bad)
    with pytest.raises(BadInputError, match="no such file"):
        read_wav(tmp_path / "missing.wav")


def test_the_speaker_hands_on_what_the_clock_has_passed_and_keeps_only_what_is_ahead():
    """``simulate`` of a recording of any length costs the memory of the audio still to be
    heard: the timeline before the clock is final (a reply is placed from now on, a stop
    cuts at now) and goes to OUT.wav as the clock passes it. What is handed on is the
    same timeline the speaker that keeps everything holds."""
    from firmware_app.audio.sim import SimulatedSpeaker

    def tone(seconds: float, value: int) -> bytes:
        return np.full(int(seconds * 16000), value, "<i2").tobytes()

    def scene(speaker, now):
        now[0] = 0.5
        speaker.play(1, tone(1.0, 1000))  # 0.5-1.5 s
        speaker.finish(1)
        for k in range(1, 60):  # the clock moves in 80 ms frames to 4.72 s
            now[0] = 0.5 + k * 0.08
            speaker.advance(now[0])
            if k == 30:  # at 2.9 s: a reply of 2 s, stopped after one
                speaker.play(2, tone(2.0, 2000))
            if k == 43:
                speaker.stop()

    kept_now, now = [0.0], [0.0]
    keeping = SimulatedSpeaker(16000, lambda m: None, lambda: kept_now[0])
    scene(keeping, kept_now)
    pieces: list[bytes] = []
    handing = SimulatedSpeaker(16000, lambda m: None, lambda: now[0], played=pieces.append)
    scene(handing, now)
    assert len(handing.samples()) < 16000  # less than a second is held back
    assert all(len(p) >= 2 * 16000 for p in pieces)  # written a second or more at a time
    handing.close()  # the rest, to the clock
    out = np.frombuffer(b"".join(pieces), "<i2")
    assert len(out) == round(now[0] * 16000)
    whole = keeping.samples()
    assert np.array_equal(out[: len(whole)], whole) and not out[len(whole) :].any()
    assert (out[8000:24000] == 1000).all() and (out[round(2.9 * 16000) + 1] == 2000)
    assert not out[round(3.95 * 16000) :].any()  # stopped at 3.94 s: the rest never played


def test_a_long_recording_is_read_and_written_as_the_clock_moves(settings, engines_with, tmp_path):
    """Five minutes of a quiet kitchen through ``simulate``: OUT.wav is as long as the
    recording and the run holds a block of it at a time, not the file (the memory Python
    and numpy hand out is traced, whatever the process held before)."""
    import tracemalloc
    import wave

    wav = tmp_path / "long.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        quiet = (np.random.default_rng(1).normal(0, 30, 48000 * 2)).astype("<i2").tobytes()
        for _ in range(300):
            w.writeframes(quiet)  # 5 min of 48 kHz stereo: 55 MB
    out = tmp_path / "out.wav"
    engines = engines_with(ScriptedStt(""))
    tracemalloc.start()
    try:
        summary = simulation.simulate(settings, wav, out, engines=engines)
        grew_mb = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert summary["input_s"] == 300.0 and summary["replies"] == []
    with wave.open(str(out)) as w:
        assert abs(w.getnframes() / w.getframerate() - 300.0) < 0.1
    assert grew_mb < 20, f"simulate held {grew_mb:.0f} MB at once reading a 55 MB recording"
