"""The voice: text in, audio out, on one worker thread.

Every spoken text (local replies, ``cmd/say``, Hermes, the online model's sentences) passes
through ``say``, which cleans it and cuts it with the same splitter as a streamed answer into
pieces of at most ``MAX_PIECE_CHARS`` characters, cut at sentence ends, then commas, then
spaces (an utterance's opening piece shorter still: it is the wait before the first
sound; a voice that can, Piper, also makes that piece's first chunk short). Each piece is
synthesized and sent to the speaker as soon as it is made, so the first plays while the
rest is synthesized, and the memory one synthesis needs stays bounded however long the
text is. With a real-time speaker, synthesis keeps at most ``MAX_AHEAD_S``
of audio ahead of playback, so the audio waiting to play is bounded too.

Two queues, both bounded (see docs/limits.md):

- live speech, in order; a text that would overflow it is refused as a whole, reported as an
  ``error`` notice, and its utterance still ends (so nothing waits for it);
- warm-up phrases (``prewarm``), synthesized into the cache only while no live speech is
  waiting, and aborted mid-run when live speech arrives: a command given right after
  start-up never waits for them. Closing aborts them too, so nothing waits for a warm-up
  on the way out. Where no one waits for replies in real time (``simulate`` without
  ``--realtime``, ``ask``, ``say``) there is no warm-up (``warm_up=False``): it would only
  take the CPU the conversation needs, and phrases still enter the cache when first
  spoken.

Phrases that repeat (fallbacks, errors, timer announcements) are replayed from the
`ReplyCache` the worker is built with (``speak/reply_cache.py``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from loguru import logger

from firmware_app.audio.chimes import chime
from firmware_app.audio.wavio import scale
from firmware_app.core.engines import (
    InterruptibleSynthesizer,
    QuickStartSynthesizer,
    Speaker,
    Synthesizer,
)
from firmware_app.core.errors import FaultCode
from firmware_app.core.messages import Notice
from firmware_app.speak.piper import MAX_PIECE_CHARS
from firmware_app.speak.reply_cache import ReplyCache
from firmware_app.speak.sentences import SentenceSplitter
from firmware_app.system.heap import release_free_memory

MAX_LIVE_JOBS = 256
"""Pieces of live speech (text, chimes, pauses) waiting for synthesis; at 60 characters a
piece that is over 15,000 characters, far beyond any reply or ``cmd/say``."""
MAX_AHEAD_S = 30.0
"""How far synthesis runs ahead of a real-time speaker: the audio waiting to be played is
at most this long (about 1.3 MB), however long the text."""
IDLE_TRIM_S = 5.0
TRIM_WINDOW_S = 600.0
"""While idle, every ``IDLE_TRIM_S`` for this long after the last synthesis, freed memory
is handed back to the system: the speaker frees an utterance's audio as it plays it, and
without this the process would stay as large as the longest utterance."""
MAX_WARM_PHRASES = 64
"""Warm-up phrases waiting; more than this are ignored (the cache holds no more anyway)."""

FIRST_PIECE_CHARS = 20
"""Longest first piece of an utterance: its synthesis time is the wait before the first
sound, so a long opening sentence is cut at a comma or a space early on."""
MIN_TAIL_CHARS = 12
"""An opening only this much longer than ``FIRST_PIECE_CHARS`` is left whole: cutting off
a word or two ("announcement number | 0") costs more in sound than it saves in time."""

Kind = Literal["text", "pcm", "end"]


@dataclass(frozen=True)
class _Job:
    generation: int
    utterance: int
    kind: Kind
    payload: Any


def speakable_pieces(
    text: str, max_chars: int = MAX_PIECE_CHARS, first_chars: int | None = FIRST_PIECE_CHARS
) -> list[str]:
    """``text`` cleaned and cut as speech will say it: sentences, each at most ``max_chars``
    (long runs cut at a comma or a space), the first at most ``first_chars``; empty when
    nothing speakable is left."""
    splitter = SentenceSplitter(max_chars)
    pieces = splitter.feed(text) + splitter.flush()
    if pieces and first_chars is not None and len(pieces[0]) > first_chars + MIN_TAIL_CHARS:
        opening = SentenceSplitter(first_chars)
        head = opening.feed(pieces[0]) + opening.flush()
        pieces[:1] = [head[0], " ".join(head[1:])] if len(head) > 1 else head
    return pieces


class SpeechOutput:
    def __init__(
        self,
        tts: Synthesizer,
        speaker: Speaker,
        post: Callable[[Any], None],
        cache: ReplyCache | None = None,
        max_live_jobs: int = MAX_LIVE_JOBS,
        piece_chars: int = MAX_PIECE_CHARS,
        max_ahead_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        warm_up: bool = True,
    ) -> None:
        """``max_ahead_s``: for a speaker that plays in real time, how far synthesis may run
        ahead of playback (``MAX_AHEAD_S`` for a sound card; None when playback is not in
        real time, as under ``simulate``). ``clock`` is the time playback follows.
        ``warm_up``: ``prewarm`` fills the cache (False: it is ignored). ``cache``: where
        repeated phrases are kept (None: one of the default size)."""
        self.tts = tts
        self.speaker = speaker
        self.volume = 100
        """Software volume (0-100) applied to audio as it is queued; set by the assistant."""
        self._post = post
        self._piece_chars = piece_chars
        self._max_live = max_live_jobs
        self._live: deque[_Job] = deque()
        self._warm: deque[str] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._generation = 0
        self._working = 0  # live jobs queued or running
        self._last_utterance: int | None = None
        self._last_synthesis = -TRIM_WINDOW_S
        self._max_ahead_s = max_ahead_s
        self._clock = clock
        self._audio_end = 0.0  # when the audio handed to the speaker will have played
        self._warming_now = False
        self._warms = warm_up
        self._interrupt = tts.interrupt if isinstance(tts, InterruptibleSynthesizer) else None
        self._resume = tts.resume if isinstance(tts, InterruptibleSynthesizer) else None
        self._soon = tts.synthesize_soon if isinstance(tts, QuickStartSynthesizer) else None
        self.cache = cache if cache is not None else ReplyCache()
        """Read for its figures by the status report; filled and replayed by the worker."""
        self.refused = 0
        """Texts refused because the live queue was full."""
        self._thread = threading.Thread(target=self._loop, name="speech", daemon=True)
        self._thread.start()

    # --- called from the assistant's thread -------------------------------------------
    def say(self, utterance: int, text: str, cache: bool = False) -> bool:
        """Queue ``text`` for speech, cleaned and cut into bounded pieces. A text with
        nothing speakable is not spoken at all (True: nothing went wrong). False when the
        queue is full: the text is refused whole and an ``error`` notice says so."""
        # Only an utterance's opening is cut short; its later sentences (a streamed answer
        # arrives sentence by sentence) are synthesized while the first plays.
        opening = utterance != self._last_utterance
        self._last_utterance = utterance
        pieces = speakable_pieces(text, self._piece_chars, FIRST_PIECE_CHARS if opening else None)
        if not pieces:
            return True
        with self._cond:
            if self._warming_now:
                self._interrupt_warm_up()
            if len(self._live) + len(pieces) > self._max_live:
                self.refused += 1
                refused = True
            else:
                refused = False
                for n, piece in enumerate(pieces):  # the opening's first chunk is awaited
                    self._add(utterance, "text", (piece, cache, opening and n == 0))
        if refused:
            logger.warning("speech: queue full; a text of {} characters was refused", len(text))
            self._post(Notice("error", {"where": FaultCode.TTS, "message": "speech queue full"}))
            return False
        return True

    def chime(self, utterance: int, name: str) -> None:
        with self._cond:
            self._add(utterance, "pcm", chime(name, self.tts.sample_rate))

    def play(self, utterance: int, pcm: bytes, rate: int) -> None:
        """Queue recorded audio (mono S16_LE at ``rate``), resampled to the voice's rate.
        Never refused: its size was bounded where it came from."""
        if rate != self.tts.sample_rate and pcm:
            import numpy as np
            import soxr

            samples = np.frombuffer(pcm, dtype="<i2")
            pcm = soxr.resample(samples, rate, self.tts.sample_rate).astype("<i2").tobytes()
        with self._cond:
            self._add(utterance, "pcm", pcm, bounded=False)

    def pause(self, utterance: int, seconds: float) -> None:
        with self._cond:
            self._add(utterance, "pcm", b"\0\0" * int(seconds * self.tts.sample_rate))

    def finish(self, utterance: int) -> None:
        """Always queued, even when the queue is full: every utterance ends."""
        with self._cond:
            self._add(utterance, "end", None, bounded=False)

    def prewarm(self, phrases: list[str]) -> None:
        """Fill the cache with fixed phrases in the background, cut as when spoken so the
        cache hits. Only while no live speech waits: live speech always goes first."""
        if not self._warms:
            return
        with self._cond:
            for phrase in phrases:
                for piece in speakable_pieces(phrase, self._piece_chars):
                    if len(self._warm) < MAX_WARM_PHRASES:
                        self._warm.append(piece)
            self._cond.notify()

    def cancel(self) -> None:
        """Drop everything queued and cut what is playing."""
        with self._cond:
            self._generation += 1
            self._working -= len(self._live)  # the job running, if any, counts itself down
            self._live.clear()
            self._audio_end = 0.0
            self._cond.notify_all()
        self.speaker.stop()

    def busy(self) -> bool:
        """Live speech queued or being synthesized (warming up does not count)."""
        with self._cond:
            return self._working > 0

    def warming(self) -> bool:
        with self._cond:
            return bool(self._warm)

    def queued(self) -> int:
        with self._cond:
            return len(self._live)

    def wait_done(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the live speech queued to be synthesized and handed
        to the speaker, woken the moment it is; True when it is."""
        with self._cond:
            return self._cond.wait_for(lambda: self._working <= 0, timeout)

    def close(self) -> None:
        """Stop the worker; a warm-up run under way is aborted, not finished."""
        with self._cond:
            self._closing = True
            if self._warming_now:
                self._interrupt_warm_up()
            self._cond.notify_all()
        self._thread.join(timeout=5)

    # --- worker -------------------------------------------------------------------------
    def _add(self, utterance: int, kind: Kind, payload: Any, bounded: bool = True) -> None:
        """With ``_cond`` held. ``bounded`` chimes and pauses beyond the limit are dropped
        (a text is checked whole by ``say``)."""
        if bounded and len(self._live) >= self._max_live:
            self.refused += 1
            return
        self._live.append(_Job(self._generation, utterance, kind, payload))
        self._working += 1
        self._cond.notify()

    def _next(self) -> _Job | str | None:
        """The next live job, else a warm-up phrase; None when closing."""
        with self._cond:
            while not self._live and not self._warm and not self._closing:
                if not self._cond.wait(IDLE_TRIM_S) and self._trim_due():
                    release_free_memory()
            if self._closing:
                return None
            if self._live:
                return self._live.popleft()
            return self._warm.popleft()

    def _loop(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            if isinstance(job, str):
                self._warm_up(job)
                continue
            try:
                if job.generation == self._generation:
                    self._run(job)
            except Exception as exc:
                logger.opt(exception=exc).error("tts failed: {}", exc)
                self._post(Notice("error", {"where": FaultCode.TTS, "message": str(exc)[:200]}))
                if job.utterance > 0:
                    self.speaker.finish(job.utterance)
            finally:
                with self._cond:
                    self._working -= 1
                    if self._working <= 0:
                        self._cond.notify_all()  # whoever waits for speech to be done

    def _interrupt_warm_up(self) -> None:
        """With ``_cond`` held: a voice that can abort a run (Piper) stops the warm-up run at
        once; others give way after their current run."""
        if self._interrupt is not None:
            self._interrupt()

    def _trim_due(self) -> bool:
        return time.monotonic() - self._last_synthesis < TRIM_WINDOW_S

    def _warm_up(self, piece: str) -> None:
        """Synthesize one phrase into the cache, giving way to live speech: the phrase goes
        back to the warm-up queue and is done again later."""
        if not self.cache.enabled or piece in self.cache:
            return
        with self._cond:
            if self._closing:
                return
            self._warming_now = True
            if self._resume is not None:
                self._resume()
        chunks: list[bytes] = []
        done = False
        try:
            for pcm in self.tts.synthesize(piece):
                chunks.append(pcm)
                if self._live or self._closing:  # plain reads: at worst one more run
                    break
            else:
                done = True
        except Exception as exc:  # interrupted, or a failure that costs only this entry
            if not self._live and not self._closing:
                logger.warning("speech: warming up {!r} failed: {}", piece[:40], exc)
                return
        finally:
            with self._cond:
                self._warming_now = False
                if self._resume is not None:
                    self._resume()
        if done:
            self.cache.keep(piece, chunks)
        else:
            with self._cond:
                self._warm.appendleft(piece)

    def _run(self, job: _Job) -> None:
        if job.kind == "end":
            self.speaker.finish(job.utterance)
        elif job.kind == "pcm":
            self._play(job.utterance, job.payload)
        else:
            text, cacheable, opening = job.payload
            if not self._keep_pace(job):
                return
            for pcm in self._synthesize(text, cacheable and self.cache.enabled, opening):
                if job.generation != self._generation:
                    return
                self._play(job.utterance, pcm)

    def _play(self, utterance: int, pcm: bytes) -> None:
        now = self._clock()
        seconds = len(pcm) / 2 / self.tts.sample_rate
        self._audio_end = max(self._audio_end, now) + seconds
        self.speaker.play(utterance, scale(pcm, self.volume))

    def _keep_pace(self, job: _Job) -> bool:
        """With ``max_ahead_s``, wait until the speaker has less than that much audio still
        to play (estimated from what was handed to it, played in real time), so a long text
        is never held in memory as audio all at once. False if cancelled meanwhile."""
        if self._max_ahead_s is None:
            return True
        with self._cond:
            while self._audio_end - self._clock() > self._max_ahead_s:
                if job.generation != self._generation or self._closing:
                    return False
                self._cond.wait(0.05)
        return job.generation == self._generation

    def _synthesize(self, text: str, cacheable: bool, opening: bool = False) -> Iterator[bytes]:
        kept = self.cache.replay(text) if cacheable else None
        if kept is not None:
            yield from kept
            return
        chunks: list[bytes] = []
        self._last_synthesis = time.monotonic()
        soon = self._soon if opening else None
        for pcm in soon(text) if soon is not None else self.tts.synthesize(text):
            chunks.append(pcm)
            yield pcm
        if cacheable:
            self.cache.keep(text, chunks)
