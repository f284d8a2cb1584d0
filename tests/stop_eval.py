"""The stop word on its own: "stop" and its near misses said alone, and ordinary talk.

The speech corpus's regression set hears "stop" in two conditions and its near misses
clean only. To choose and check the spotter, this runs every voice of a size in every
condition: "Stop." and "Stop!" clean, in household noise at 20, 10 and 5 dB SNR and in
reverb; the near misses ("Top.", "Non-stop.", "It stopped.", ...) clean and at 10 dB.

False stops per hour come from ordinary talk with no "stop" in it: the wake corpus's
everyday sentences (tests/wake_corpus.py, ``ORDINARY``) said back to back by the voices
its false-accept figures use beyond Piper and espeak-ng (``HOUSEHOLD_VOICES``: flite,
festival, Piper with phoneme noise, espeak-ng variants), in the speech corpus's conditions.
Talk is not what the spotter meets most (it runs only while the device speaks or rings),
so this is the worst case: somebody chatting through a whole answer.

CPU is per second of audio fed, for the product's spotter and for pocketsphinx's bare
keyphrase search on the same audio, in the same run.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
import speech_corpus
import wake_corpus
from speech_corpus import Item

from firmware_app.core.messages import FRAME_SAMPLES

RATE = 16000
STOP_CONDITIONS = ("clean", "snr20", "snr10", "snr5", "reverb")
NEAR_CONDITIONS = ("clean", "snr10")


def items(size: str = "ci", families: set[str] | None = None) -> Iterator[Item]:
    """Every voice of ``size`` (ci | full) saying "stop" and its near misses alone."""
    voices = speech_corpus.VOICES_FULL if size == "full" else speech_corpus.VOICES_CI
    for voice in voices:
        if not speech_corpus.available(voice) or (families and voice.family not in families):
            continue
        for text in speech_corpus.STOP_SAID + speech_corpus.NEAR_STOP:
            said = text in speech_corpus.STOP_SAID
            audio, end = speech_corpus._said([speech_corpus.render(text, voice)])
            key = f"{voice.tag}|alone|{text}"  # the speech corpus's own cache keys
            for cond in STOP_CONDITIONS if said else NEAR_CONDITIONS:
                heard = speech_corpus.condition(audio, cond, key)
                yield Item("stop" if said else "near_stop", text, voice, "alone", cond, heard, end)


def stops(spotter: Any, audio: np.ndarray) -> int:
    """How many stops the spotter takes from ``audio``, fed in frames as on a device."""
    spotter.reset()
    found = 0
    for start in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        found += bool(spotter.spot(audio[start : start + FRAME_SAMPLES].tobytes()))
    return found


def said_alone(spotter: Any, corpus: list[Item], held_out: set[str]) -> dict[str, Any]:
    """Stop heard and false stops by family, by condition, and for the held-out families
    apart from the rest."""
    tallies: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # heard, said, false, near
    false_by_text: dict[str, int] = defaultdict(int)
    for item in corpus:
        found = stops(spotter, item.audio)
        part = "held_out" if item.family in held_out else "chosen_on"
        for key in (f"family:{item.family}", f"cond:{item.cond}", part, "all"):
            tally = tallies[key]
            if item.kind == "stop":
                tally[0] += found > 0
                tally[1] += 1
            else:
                tally[2] += found
                tally[3] += 1
        if item.kind == "near_stop":
            false_by_text[item.text] += found
    return {
        key: {"stop_heard": f"{t[0]}/{t[1]}", "false_stops": f"{t[2]} in {t[3]}"}
        for key, t in sorted(tallies.items())
    } | {"false_stops_by_word": dict(false_by_text)}


def ordinary_talk(voices: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """(voice/condition, audio): the everyday sentences back to back, in each household
    voice (the first ``voices`` only when given) and each condition."""
    chosen = wake_corpus.HOUSEHOLD_VOICES[:voices] if voices else wake_corpus.HOUSEHOLD_VOICES
    for engine, args in chosen:
        voice = speech_corpus.Voice(engine, engine, args)
        if not speech_corpus.available(voice):
            continue
        sentences = [speech_corpus.render(t, voice) for t in wake_corpus.ORDINARY]
        gap = np.zeros(int(0.4 * RATE), np.int16)
        talk = np.concatenate([part for s in sentences for part in (s, gap)])
        for cond in wake_corpus.HOUSEHOLD_CONDITIONS:
            yield (
                f"{voice.tag}/{cond}",
                speech_corpus.condition(talk, cond, f"wake-talk|{voice.tag}"),
            )


def false_stops_per_hour(spotter: Any, voices: int = 0) -> dict[str, Any]:
    """False stops in ordinary talk, per hour, with where they came from; and CPU per
    second of audio for the spotter and for the bare keyphrase search beside it."""
    bare = BareKeyphrase()
    seconds = spotter_cpu = bare_cpu = 0.0
    where: dict[str, int] = {}
    for tag, audio in ordinary_talk(voices):
        seconds += len(audio) / RATE
        t0 = time.process_time()
        found = stops(spotter, audio)
        spotter_cpu += time.process_time() - t0
        t0 = time.process_time()
        bare.feed(audio)
        bare_cpu += time.process_time() - t0
        if found:
            where[tag] = found
    hours = seconds / 3600
    total = sum(where.values())
    return {
        "ordinary_talk_h": round(hours, 2),
        "false_stops": total,
        "false_stops_per_hour": round(total / hours, 2) if hours else None,
        "goal_false_stops_per_hour": 1.0,
        "false_stops_at": where,
        "cpu_s_per_audio_s": round(spotter_cpu / seconds, 4) if seconds else None,
        "bare_keyphrase_cpu_s_per_audio_s": round(bare_cpu / seconds, 4) if seconds else None,
    }


class BareKeyphrase:
    """pocketsphinx's keyphrase search for "stop" alone, at the spotter's threshold, fed
    the same frames: what the spotter costs beyond the search itself."""

    def __init__(self) -> None:
        from firmware_app.listen.stop_word import THRESHOLD
        from firmware_app.recognize.pronunciations import decoder, entries

        self._decoder = decoder(
            entries(["stop"]), keyphrase="stop", kws_threshold=THRESHOLD, samprate=RATE,
            loglevel="FATAL",
        )  # fmt: skip

    def feed(self, audio: np.ndarray) -> None:
        self._decoder.start_utt()
        for start in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            self._decoder.process_raw(audio[start : start + FRAME_SAMPLES].tobytes(), False, False)
            self._decoder.hyp()
        self._decoder.end_utt()
