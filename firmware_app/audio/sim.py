"""The speaker used by ``simulate``: audio lands on a timeline on the assistant clock, so
OUT.wav lines up with IN.wav, and playback takes exactly as long as the audio lasts.

With a ``reference`` it also keeps what it plays at the microphone's rate, for the echo
canceller and for ``simulate --echo``, which feeds it back into the microphone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from firmware_app.audio.echo import PlaybackReference
from firmware_app.core.messages import PlaybackDone, PlaybackStarted


class SimulatedSpeaker:
    def __init__(
        self,
        sample_rate: int,
        post: Callable[[Any], None],
        clock: Callable[[], float],
        reference: PlaybackReference | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.reference = reference
        self._post = post
        self._clock = clock
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._started: set[int] = set()
        self._starts: dict[int, float] = {}  # utterances whose audio has not begun yet
        self._ends: dict[int, float] = {}
        self._cursor = 0.0  # end of scheduled audio, seconds

    def _place(self, start: float, pcm: bytes) -> None:
        offset = round(start * self.sample_rate) * 2
        if len(self._buffer) < offset:
            self._buffer.extend(b"\0" * (offset - len(self._buffer)))
        del self._buffer[offset:]
        self._buffer.extend(pcm)
        if self.reference is not None:
            self.reference.place(offset / 2 / self.sample_rate, pcm, self.sample_rate)

    def play(self, utterance: int, pcm: bytes) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._cursor)
            self._place(start, pcm)
            self._cursor = start + len(pcm) / 2 / self.sample_rate
            first = utterance not in self._started
            self._started.add(utterance)
            if first and start > now:  # queued behind other audio: starts later
                self._starts[utterance] = start
                first = False
        if first:
            self._post(PlaybackStarted(utterance))

    def finish(self, utterance: int) -> None:
        with self._lock:
            if utterance not in self._started:
                done_now = True
            else:
                self._ends[utterance] = max(self._cursor, self._clock())
                done_now = False
        if done_now:
            self._post(PlaybackDone(utterance))

    def advance(self, t: float) -> None:
        """Called by the simulation as the clock moves: finished utterances are reported."""
        with self._lock:
            started = [u for u, start in self._starts.items() if start <= t]
            for u in started:
                del self._starts[u]
            done = [u for u, end in self._ends.items() if end <= t and u not in self._starts]
            for u in done:
                del self._ends[u]
        for u in started:
            self._post(PlaybackStarted(u))
        for u in done:
            self._post(PlaybackDone(u))

    def stop(self) -> None:
        with self._lock:
            now = self._clock()
            cut = round(now * self.sample_rate) * 2
            del self._buffer[cut:]
            if self.reference is not None:
                self.reference.cut(cut / 2 / self.sample_rate)
            self._cursor = min(self._cursor, now)
            done = list(self._ends)
            self._ends.clear()
            self._starts.clear()
        for u in done:
            self._post(PlaybackDone(u))

    def busy(self) -> bool:
        with self._lock:
            return bool(self._ends or self._starts)

    def samples(self) -> np.ndarray:
        with self._lock:
            return np.frombuffer(bytes(self._buffer), dtype=np.int16).copy()
