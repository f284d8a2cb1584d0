"""The voice: sentences in, audio out, on one worker thread.

Text is synthesized sentence by sentence and each sentence goes to the speaker as soon as
it is made, so the first sentence plays while the rest is synthesized. Phrases that repeat
(fallbacks, errors, timer announcements) are kept in an LRU cache and replayed instantly.
"""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from loguru import logger

from firmware_app.audio.chimes import chime
from firmware_app.audio.wavio import scale
from firmware_app.engines import Speaker, Synthesizer
from firmware_app.llm.sentences import clean
from firmware_app.messages import Notice


class SpeechOutput:
    def __init__(
        self,
        tts: Synthesizer,
        speaker: Speaker,
        post: Callable[[Any], None],
        cache_entries: int = 64,
    ) -> None:
        self.tts = tts
        self.speaker = speaker
        self.volume = 100
        """Software volume (0-100) applied to audio as it is queued; set by the assistant."""
        self._post = post
        self._jobs: queue.Queue[tuple[int, int, str, Any]] = queue.Queue()
        self._generation = 0
        self._lock = threading.Lock()
        self._working = 0
        self._cache: OrderedDict[str, list[bytes]] = OrderedDict()
        self._cache_entries = cache_entries
        self.cache_hits = 0
        self.cache_misses = 0
        self._thread = threading.Thread(target=self._loop, name="speech", daemon=True)
        self._thread.start()

    # --- called from the assistant's thread -------------------------------------------
    def say(self, utterance: int, text: str, cache: bool = False) -> None:
        """Queue ``text`` for speech, cleaned first: every spoken text passes the shared
        cleaner, and a text with nothing speakable left is not spoken at all."""
        speakable = clean(text, max_chars=None)
        if speakable:
            self._put(utterance, "text", (speakable, cache))

    def chime(self, utterance: int, name: str) -> None:
        self._put(utterance, "pcm", chime(name, self.tts.sample_rate))

    def pause(self, utterance: int, seconds: float) -> None:
        self._put(utterance, "pcm", b"\0\0" * int(seconds * self.tts.sample_rate))

    def finish(self, utterance: int) -> None:
        self._put(utterance, "end", None)

    def prewarm(self, phrases: list[str]) -> None:
        """Fill the cache with fixed phrases in the background (utterance -1: not played)."""
        for phrase in phrases:
            self.say(-1, phrase, cache=True)  # cleaned as when spoken, so the cache hits

    def cancel(self) -> None:
        """Drop everything queued and cut what is playing."""
        with self._lock:
            self._generation += 1
        self.speaker.stop()

    def busy(self) -> bool:
        with self._lock:
            return self._working > 0

    def close(self) -> None:
        self._jobs.put((-2, -1, "quit", None))
        self._thread.join(timeout=5)

    def cache_stats(self) -> dict[str, float]:
        total = self.cache_hits + self.cache_misses
        return {
            "hits": self.cache_hits,
            "misses": self.cache_misses,
            "hit_rate": round(self.cache_hits / total, 3) if total else 0.0,
            "entries": len(self._cache),
        }

    # --- worker -------------------------------------------------------------------------
    def _put(self, utterance: int, kind: str, payload: Any) -> None:
        with self._lock:
            self._working += 1
            generation = self._generation
        self._jobs.put((generation, utterance, kind, payload))

    def _loop(self) -> None:
        while True:
            generation, utterance, kind, payload = self._jobs.get()
            if kind == "quit":
                return
            try:
                if generation == self._generation:
                    self._run(generation, utterance, kind, payload)
            except Exception as exc:
                logger.opt(exception=exc).error("tts failed: {}", exc)
                self._post(Notice("error", {"where": "tts", "message": str(exc)[:200]}))
                if utterance > 0:
                    self.speaker.finish(utterance)
            finally:
                with self._lock:
                    self._working -= 1

    def _run(self, generation: int, utterance: int, kind: str, payload: Any) -> None:
        if kind == "end":
            self.speaker.finish(utterance)
        elif kind == "pcm":
            self.speaker.play(utterance, scale(payload, self.volume))
        else:
            text, cacheable = payload
            for pcm in self._synthesize(text, cacheable and self._cache_entries > 0, utterance < 0):
                if generation != self._generation:
                    return
                if utterance >= 0:
                    self.speaker.play(utterance, scale(pcm, self.volume))

    def _synthesize(self, text: str, cacheable: bool, warming: bool) -> Iterator[bytes]:
        if cacheable and text in self._cache:
            self._cache.move_to_end(text)
            if not warming:
                self.cache_hits += 1
            yield from self._cache[text]
            return
        if cacheable and not warming:
            self.cache_misses += 1
        chunks: list[bytes] = []
        for pcm in self.tts.synthesize(text):
            chunks.append(pcm)
            yield pcm
        if cacheable:
            self._cache[text] = chunks
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)
