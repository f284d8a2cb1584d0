"""The speaker used by ``simulate``: audio lands on a timeline on the assistant clock, so
OUT.wav lines up with IN.wav, and playback takes exactly as long as the audio lasts.

With a ``reference`` it also keeps what it plays at the microphone's rate, for the echo
canceller and for ``simulate --echo``, which feeds it back into the microphone.

Audio before the clock can no longer change (a reply is placed from now on, a stop cuts at
now), so with ``played`` the timeline hands it on as the clock passes and keeps only what
is still ahead: a simulation of any length costs the memory of the replies still to be
heard, and OUT.wav is written as it goes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from firmware_app.audio.echo import PlaybackReference
from firmware_app.core.messages import PlaybackDone, PlaybackStarted

HAND_ON_S = 1.0
"""Least audio handed on at once (a WAV file is written in pieces of a second or more)."""


class SimulatedSpeaker:
    def __init__(
        self,
        sample_rate: int,
        post: Callable[[Any], None],
        clock: Callable[[], float],
        reference: PlaybackReference | None = None,
        played: Callable[[bytes], None] | None = None,
    ) -> None:
        """``played``: where audio goes once the clock has passed it (in pieces of at
        least ``HAND_ON_S``, the rest on ``close``); without it the whole timeline is kept
        for ``samples``."""
        self.sample_rate = sample_rate
        self.reference = reference
        self._post = post
        self._clock = clock
        self._played = played
        self._lock = threading.Lock()
        self._buffer = bytearray()
        """The timeline from ``_base`` (bytes) on: what is not handed on yet."""
        self._base = 0
        self._started: set[int] = set()
        self._starts: dict[int, float] = {}  # utterances whose audio has not begun yet
        self._ends: dict[int, float] = {}
        self._cursor = 0.0  # end of scheduled audio, seconds

    def _place(self, start: float, pcm: bytes) -> None:
        at = round(start * self.sample_rate) * 2
        offset = max(at - self._base, 0)
        if len(self._buffer) < offset:
            self._buffer.extend(b"\0" * (offset - len(self._buffer)))
        del self._buffer[offset:]
        self._buffer.extend(pcm)
        if self.reference is not None:
            self.reference.place(at / 2 / self.sample_rate, pcm, self.sample_rate)

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
            self._hand_on(round(t * self.sample_rate) * 2, HAND_ON_S)
        for u in started:
            self._post(PlaybackStarted(u))
        for u in done:
            self._post(PlaybackDone(u))

    def close(self) -> None:
        """Hand on the rest of the timeline: to the clock, or to the end of what is
        scheduled past it."""
        with self._lock:
            now = round(self._clock() * self.sample_rate) * 2
            self._hand_on(max(now, self._base + len(self._buffer)), 0.0)

    def _hand_on(self, until: int, least_s: float) -> None:
        """The timeline up to byte ``until`` to ``played``, once it holds ``least_s``."""
        if self._played is None:
            return
        if until - self._base < max(least_s * self.sample_rate * 2, 1):
            return
        if len(self._buffer) < until - self._base:
            self._buffer.extend(bytes(until - self._base - len(self._buffer)))
        piece = bytes(self._buffer[: until - self._base])
        del self._buffer[: until - self._base]
        self._base = until
        self._played(piece)

    def stop(self) -> None:
        with self._lock:
            now = self._clock()
            cut = max(round(now * self.sample_rate) * 2 - self._base, 0)
            del self._buffer[cut:]
            if self.reference is not None:
                self.reference.cut(round(now * self.sample_rate) / self.sample_rate)
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
        """The timeline not handed on yet: all of it without ``played``."""
        with self._lock:
            return np.frombuffer(bytes(self._buffer), dtype=np.int16).copy()
