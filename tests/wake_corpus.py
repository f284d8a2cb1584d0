"""The wake word regression corpus, built from what ships in packages.

Voices: the packaged Piper voice at several speeds, and espeak-ng (Debian ``espeak-ng``)
voices at several speeds and pitches. Conditions: clean, sox noise mixed at three SNRs, and
a room-like sox reverb (Debian ``sox``). Positives are each built-in model's phrase; the
negative audio is sound-alike phrases ("Hey Jarvie", "A Lexus"), long stretches of ordinary
speech and stretches of noise with no wake word at all.

The full size adds over two hours of ordinary talk in the voices the speech corpus uses
beside these (flite, festival, Piper with its phoneme noise, more espeak-ng variants), in
its household noise (a fan, mains hum, kitchen clatter) and reverb, and stretches of that
noise alone, so the false accepts per hour rest on more than three hours of ordinary
speech and noise.

Rendering is deterministic (Piper without phoneme-width noise, espeak-ng, sox in repeatable
mode, seeded mixing), and every rendered clip is cached as .npy under
``$TTBT5_WAKE_CORPUS_CACHE`` (default: the temp dir), so a test run or a benchmark builds
it once. ``size`` is ``"ci"`` (a few minutes, for the test suite) or ``"full"`` (over an
hour of negative audio, for scripts/bench_wake.py).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tempfile
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from audio_helpers import RATE, speech

from firmware_app.audio.wavio import resample

PHRASES = {
    "hey_jarvis": "Hey Jarvis.",
    "alexa": "Alexa.",
    "hey_mycroft": "Hey Mycroft.",
    "okay_nabu": "Okay Nabu.",
    "hey_rhasspy": "Hey Rhasspy.",
}
SOUND_ALIKES = {  # near misses, by the model they imitate
    "hey_jarvis": ["Hey Jarvie.", "Hey Harvey.", "Hey Travis.", "Hey, jars of this."],
    "alexa": ["A Lexus.", "Alexis.", "Election night.", "I'll ask her."],
    "hey_mycroft": ["Hey Microsoft.", "Hey my craft.", "Hey, might go soft.", "Hey Mike, right."],
    "okay_nabu": ["Okay, now boo.", "Okay, nab you.", "Okay, noodle.", "Okay, Naboo."],
    "hey_rhasspy": ["Hey, rasp berry.", "Hey Russ, be.", "Hey rhapsody.", "Hey, Ross P."],
}  # fmt: skip
ORDINARY = [
    "The weather will be sunny this afternoon with a light breeze.",
    "Remember to water the plants and feed the cat before you leave.",
    "Dinner is at seven, and we still need bread, milk and tomatoes.",
    "The football match starts at eight on the second channel.",
    "Can you pass me the salt and the pepper, please?",
    "I think the train was late again this morning because of the snow.",
    "She said the meeting moved to Thursday at half past ten.",
    "Turn left at the bakery and the post office is on your right.",
    "We should paint the kitchen before your parents come to visit.",
    "The children are playing in the garden with the neighbour's dog.",
    "My phone battery is almost empty, where did I leave the charger?",
    "The recipe needs two eggs, a cup of flour and some butter.",
    "Did you hear that noise coming from the basement last night?",
    "Let's watch a film tonight, something funny and not too long.",
    "The doctor said to drink more water and get some rest.",
    "Our flight leaves at six, so we need a taxi at four.",
    "I finished the book you lent me, the ending was surprising.",
    "The washing machine makes a strange sound when it spins.",
    "Could you check whether the back door is locked?",
    "There is a new cafe on the corner that sells great coffee.",
    "He has been learning the guitar for almost three years now.",
    "The price of petrol went up again this week.",
    "Please put the dishes away and wipe the table.",
    "The museum is closed on Mondays but open late on Fridays.",
    "I need to call the bank about my card before they close.",
    "Grandma's birthday is next Sunday, we should buy flowers.",
    "The wind knocked over the bins in the street last night.",
    "Why is the heating on when all the windows are open?",
    "We could go for a walk by the river after lunch.",
    "The printer is out of ink again, can you order some more?",
    "I can't find my keys, have you seen them anywhere?",
    "This soup needs a little more salt and some fresh herbs.",
    "The news said there would be roadworks on the main street.",
    "Tomorrow I'm working from home, so I can take the parcel.",
    "Let me know when the kettle boils and I'll make the tea.",
    "The bus was full, so I walked to work in the rain.",
]
# (voice, words per minute, pitch 0-99)
ESPEAK_FULL = [
    ("en-us", 175, 50), ("en-us", 130, 35), ("en-us+f3", 175, 65), ("en-us+f3", 210, 75),
    ("en-gb", 160, 40), ("en-gb-x-rp+m3", 140, 30), ("en-gb-scotland", 175, 50),
    ("en-029", 150, 55), ("en-us+m7", 200, 45), ("en-gb+f2", 150, 60),
]  # fmt: skip
ESPEAK_CI = [("en-us", 175, 50), ("en-gb", 150, 35), ("en-us+f3", 175, 65)]
PIPER_FULL = [0.8, 1.0, 1.25]
PIPER_CI = [1.0, 1.25]
SNRS = (20, 10, 5)
CONDITIONS_FULL = ("clean", "snr20", "snr10", "snr5", "reverb")
CONDITIONS_CI = ("clean", "snr10", "reverb")
# More ordinary talk for the full size: (engine, arguments) in tests/speech_corpus.py's terms.
HOUSEHOLD_VOICES = [
    ("flite", ("kal",)), ("flite", ("kal16",)), ("flite", ("awb",)), ("flite", ("rms",)),
    ("flite", ("slt",)), ("festival", ("kal_diphone",)), ("festival", ("ked_diphone",)),
    ("festival", ("cmu_us_slt_arctic_hts",)), ("piper", (0.9, 0.667)), ("piper", (1.1, 0.667)),
    ("espeak", ("en-us+klatt", 165, 50)), ("espeak", ("en-gb+m1", 150, 45)),
    ("espeak", ("en-us+f4", 185, 70)), ("espeak", ("en-gb-x-rp+f5", 170, 60)),
]  # fmt: skip
HOUSEHOLD_CONDITIONS = ("clean", "snr20", "snr10", "snr5", "reverb")
HOUSEHOLD_NOISE_S = 600
RECIPE = 3  # bump when rendering changes, so stale cached audio is not reused
LEAD_S, TAIL_S = 0.6, 2.4  # a clip's silence around its phrase; > refractory time apart


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    model: str | None  # the model this clip should wake; None for negative audio
    tag: str  # voice/condition, or the kind of negative audio
    imitates: str | None = None  # a sound-alike: the model it nearly says


@dataclass
class Stream:
    """One continuous piece of microphone audio and what each stretch of it holds."""

    audio: np.ndarray
    spans: list[Span] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return len(self.audio) / RATE


@dataclass
class Corpus:
    positives: Stream
    negatives: Stream


def cache_dir() -> Path:
    base = os.environ.get("TTBT5_WAKE_CORPUS_CACHE") or Path(tempfile.gettempdir())
    path = Path(base) / "ttbt5-wake-corpus"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached(key: str, make: Callable[[], np.ndarray]) -> np.ndarray:
    digest = hashlib.sha256(f"{RECIPE}|{key}".encode()).hexdigest()[:24]
    path = cache_dir() / f"{digest}.npy"
    if path.exists():
        return np.load(path)
    audio = make().astype(np.int16)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, audio)
    tmp.replace(path)
    return audio


def espeak(text: str, voice: str, wpm: int, pitch: int) -> np.ndarray:
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    with wave.open(io.BytesIO(out)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return resample(samples, rate, RATE)


def render(text: str, voice: tuple) -> np.ndarray:
    """``voice`` is ("piper", length_scale) or ("espeak", name, wpm, pitch)."""
    if voice[0] == "piper":
        return cached(f"piper|{text}|{voice[1]}", lambda: speech(text, voice[1]))
    return cached(f"espeak|{text}|{voice[1:]}", lambda: espeak(text, *voice[1:]))


def sox(samples: np.ndarray, *effects: str, inputs: int = 1) -> np.ndarray:
    raw = ["-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16", "-c", "1"]
    cmd = ["sox", "-R", *([*raw, "-"] if inputs else ["-n"]), *raw, "-", *effects]
    out = subprocess.run(cmd, input=samples.tobytes(), check=True, capture_output=True)
    return np.frombuffer(out.stdout, dtype="<i2").copy()


class Noise:
    """sox-made noise (pink, brown, white), cut from a long repeatable take at offsets
    seeded by what the cut is for, so a clip's noise is the same whatever is cached."""

    def __init__(self, kind: str = "pinknoise") -> None:
        make = ("synth", "300", kind, "vol", "0.3")
        self._bed = cached(f"noise|{kind}", lambda: sox(np.zeros(0, np.int16), *make, inputs=0))

    def take(self, n: int, key: str) -> np.ndarray:
        seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
        start = int(np.random.default_rng(seed).integers(0, len(self._bed) - n))
        return self._bed[start : start + n].astype(np.float64)


def rms(samples: np.ndarray) -> float:
    """Level of the speech in a clip: its samples above a silence floor."""
    loud = samples[np.abs(samples) > 300] if np.any(np.abs(samples) > 300) else samples
    return float(np.sqrt(np.mean(loud.astype(np.float64) ** 2))) or 1.0


def condition(clip: np.ndarray, name: str, noise: Noise, key: str) -> np.ndarray:
    """The clip as heard: clean, in noise at an SNR (``snrN``), or in a room (``reverb``);
    cached under ``key``."""
    if name == "clean":
        return clip

    def make() -> np.ndarray:
        if name == "reverb":  # reverberance 60 %, a mid-sized room, 20 ms pre-delay
            return sox(clip, "reverb", "60", "50", "70", "0", "20", "channels", "1")[: len(clip)]
        snr = float(name.removeprefix("snr"))
        bed = noise.take(len(clip), key)
        bed *= rms(clip) / (np.sqrt(np.mean(bed**2)) * 10 ** (snr / 20))  # speech vs noise
        return np.clip(clip + bed, -32768, 32767).astype(np.int16)

    return cached(f"{key}|{name}", make)


def voices(size: str) -> list[tuple]:
    piper = PIPER_FULL if size == "full" else PIPER_CI
    es = ESPEAK_FULL if size == "full" else ESPEAK_CI
    return [("piper", s) for s in piper] + [("espeak", *v) for v in es]


def voice_tag(voice: tuple) -> str:
    return "piper" if voice[0] == "piper" else "espeak"


def _pad(audio: np.ndarray, lead: float, tail: float) -> np.ndarray:
    return np.concatenate(
        [np.zeros(int(lead * RATE), np.int16), audio, np.zeros(int(tail * RATE), np.int16)]
    )


class _Builder:
    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.spans: list[Span] = []
        self.n = 0

    def add(
        self, audio: np.ndarray, model: str | None, tag: str, imitates: str | None = None
    ) -> None:
        start = self.n / RATE
        self.parts.append(audio)
        self.n += len(audio)
        self.spans.append(Span(start, self.n / RATE, model, tag, imitates))

    def stream(self) -> Stream:
        return Stream(np.concatenate(self.parts), self.spans)


def positives(models: list[str], size: str = "ci") -> Stream:
    """Every model's phrase in every voice and condition, spaced apart."""
    conditions = CONDITIONS_FULL if size == "full" else CONDITIONS_CI
    noise, out = Noise(), _Builder()
    for model in models:
        for voice in voices(size):
            clip = _pad(render(PHRASES[model], voice), LEAD_S, TAIL_S)
            for cond in conditions:
                key = f"pos|{model}|{voice}"
                out.add(condition(clip, cond, noise, key), model, f"{voice_tag(voice)}/{cond}")
    return out.stream()


def negatives(size: str = "ci") -> Stream:
    """Sound-alikes, ordinary talk (sentences back to back) and noise: no wake word."""
    conditions = CONDITIONS_FULL if size == "full" else CONDITIONS_CI
    noise, out = Noise(), _Builder()
    sentences = ORDINARY if size == "full" else ORDINARY[:8]
    for v, voice in enumerate(voices(size)):
        for model, text in ((m, t) for m, texts in SOUND_ALIKES.items() for t in texts):
            clip = _pad(render(text, voice), 0.5, 1.5)
            for cond in conditions:
                heard = condition(clip, cond, noise, f"alike|{text}|{voice}")
                out.add(heard, None, "sound-alike", imitates=model)
        # talk back to back, clean and (full size) in one of the other conditions per voice
        talk = np.concatenate([_pad(render(t, voice), 0.0, 0.4) for t in sentences])
        noisy = conditions[1 + v % (len(conditions) - 1)]
        for cond in ("clean", noisy) if size == "full" else ("clean",):
            out.add(condition(talk, cond, noise, f"talk|{size}|{voice}"), None, "ordinary")
    seconds = 200 if size == "full" else 20
    for kind in ("pinknoise", "brownnoise", "whitenoise"):
        bed = Noise(kind).take(seconds * RATE, f"only|{kind}") * 0.3  # about -35 dBFS
        out.add(bed.astype(np.int16), None, "noise")
    if size == "full":
        household_talk(out)
    return out.stream()


def household_talk(out: _Builder) -> None:
    """The full size's extra negatives: ordinary talk in the speech corpus's other voices
    and its household noise, then that noise alone (skipping voices not installed)."""
    import speech_corpus  # only the full size needs flite and festival

    for engine, args in HOUSEHOLD_VOICES:
        voice = speech_corpus.Voice(engine, engine, args)
        if not speech_corpus.available(voice):
            continue
        talk = np.concatenate([_pad(speech_corpus.render(t, voice), 0.0, 0.4) for t in ORDINARY])
        for cond in HOUSEHOLD_CONDITIONS:
            key = f"wake-talk|{voice.tag}"
            out.add(speech_corpus.condition(talk, cond, key), None, "ordinary")
    piece = 100 * RATE  # shorter than the 120 s bed, so each piece starts elsewhere
    for i in range(HOUSEHOLD_NOISE_S * RATE // piece):
        bed = speech_corpus.household_noise(piece, f"wake-noise|{i}") * (0.2 + 0.2 * (i % 4))
        out.add(bed.astype(np.int16), None, "noise")


def build(models: list[str], size: str = "ci") -> Corpus:
    return Corpus(positives(models, size), negatives(size))
