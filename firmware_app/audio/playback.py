"""The speaker: ALSA playback through pyalsaaudio, one utterance at a time, over the media
Home Assistant plays (``play_media``), which is ducked while an utterance plays.

A speaker that is missing or unplugged costs only the utterance that was playing; it is
reported once as an ``error`` notice and, used again as soon as it is back, once as a
``back`` notice.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from typing import Any

import numpy as np
from loguru import logger

from firmware_app.audio.alsa import Post, load_alsa
from firmware_app.audio.ducking import MediaTrack, mix
from firmware_app.audio.echo import PlaybackTap
from firmware_app.core.errors import FaultCode
from firmware_app.core.messages import (
    Notice,
    PlaybackDone,
    PlaybackStarted,
)

_FAILED = ("missing", "lost")
"""Speaker states that are probed until the device opens again."""
MEDIA_AHEAD_S = 0.2
"""Media alone is written at most this far ahead of real time (a device that does not
block, like ALSA's file plugin, would otherwise take a whole song at once, and speech that
comes later would have nothing to duck)."""


class AlsaSpeaker:
    """Plays utterances on an ALSA playback device from its own thread.

    The device is opened per utterance and closed after it drains, so an unplugged speaker
    only costs the utterance that was playing and a device that comes back is simply used.
    It is also tried once at start and, while missing or lost, every ``probe_s``:
    ``available()`` tells the truth before anything is said, and an utterance that could not
    be played is never announced as started (so its requester hears that it was not
    spoken). A failure is reported once (a ``Notice("error")``) and the device coming back
    once (a ``Notice("back")``), however many probes it took.
    """

    _CHUNK_S = 0.05  # written in small pieces so stop() takes effect within ~50 ms

    def __init__(
        self,
        device: str,
        sample_rate: int,
        post: Post,
        tap: PlaybackTap | None = None,
        probe_s: float = 10.0,
        duck_gain: float = 0.25,
    ) -> None:
        """``duck_gain``: the media's level while an utterance plays over it (a factor)."""
        self.device = device
        self.sample_rate = sample_rate
        self._post = post
        self._tap = tap
        """Told what is written (the echo canceller's reference), and when playback ends."""
        self._probe_s = probe_s
        self._jobs: queue.Queue[tuple[str, int, bytes]] = queue.Queue()
        self._generation = 0
        self._lock = threading.Lock()
        self._busy = threading.Event()
        self.status = "idle"
        self.last_error = ""
        self._duck_gain = duck_gain
        self._media_pending: tuple[bytes, int] | None = None
        self._media_cut = False
        self._held = False
        self._track: MediaTrack | None = None
        """The media playing (set on the speaker's thread only)."""
        self._written_s = 0.0
        self._opened_at = 0.0
        self._thread = threading.Thread(target=self._loop, name="speaker", daemon=True)
        self._thread.start()

    def play(self, utterance: int, pcm: bytes) -> None:
        self._jobs.put(("pcm", utterance, pcm))

    def finish(self, utterance: int) -> None:
        self._jobs.put(("end", utterance, b""))

    def stop(self) -> None:
        with self._lock:
            self._generation += 1
        self._jobs.put(("stop", 0, b""))

    def play_media(self, pcm: bytes, rate: int) -> None:
        """Play ``pcm`` (mono S16_LE at ``rate``) under whatever is said, in place of the
        media playing; ``stop`` leaves it playing, ``stop_media`` stops it."""
        with self._lock:
            self._media_pending, self._media_cut = (pcm, rate), False
        self._jobs.put(("wake", 0, b""))

    def stop_media(self) -> None:
        with self._lock:
            self._media_pending, self._media_cut = None, True
        self._jobs.put(("wake", 0, b""))

    def duck(self, on: bool) -> None:
        """Hold the media ducked (the speaker listens to a request and answers it), or
        let it come back up once nothing is said over it."""
        self._held = on

    @property
    def ducked(self) -> bool:
        return self._held

    def media_playing(self) -> bool:
        with self._lock:
            return self._media_pending is not None or (
                self._track is not None and not self._media_cut
            )

    def close(self) -> None:
        self.stop()
        self._jobs.put(("quit", 0, b""))
        self._thread.join(timeout=2)

    def busy(self) -> bool:
        return self._busy.is_set() or not self._jobs.empty()

    def available(self) -> bool:
        """False while the device is known to be missing."""
        return self.status != "missing"

    def stats(self) -> dict[str, Any]:
        return {"device": self.device, "status": self.status, "error": self.last_error}

    def _open(self) -> Any:
        alsa = load_alsa()
        return alsa.PCM(
            type=alsa.PCM_PLAYBACK,
            mode=alsa.PCM_NORMAL,
            device=self.device,
            rate=self.sample_rate,
            channels=1,
            format=alsa.PCM_FORMAT_S16_LE,
            periodsize=int(self.sample_rate * self._CHUNK_S),
            periods=4,
        )

    def _loop(self) -> None:
        pcm: Any = None
        current = -1
        generation = 0
        self._probe()
        while True:
            self._take_media()
            try:
                kind, utterance, data = self._next_job()
            except queue.Empty:
                if self._track is None:
                    self._probe()
                else:
                    pcm = self._write_media(pcm, ducked=current >= 0 or self._held)
                continue
            if kind == "quit":
                break
            if kind == "wake":
                continue
            with self._lock:
                stale = generation != self._generation
                generation = self._generation
            if kind == "stop" or stale:
                if current >= 0 or self._track is None:  # media alone plays on, unbroken
                    pcm = self._close(pcm, drain=False)
                if current >= 0:
                    self._post(PlaybackDone(current))
                    current = -1
                if kind == "stop":
                    continue
            if kind == "end":
                if self._track is None:  # the media, if any, goes on: the device stays open
                    pcm = self._close(pcm, drain=True)
                self._busy.clear()
                self._post(PlaybackDone(utterance))
                current = -1
                continue
            self._busy.set()
            if pcm is None:
                pcm = self._open_now()
                if pcm is None:
                    continue
            if utterance != current:
                current = utterance
                self._post(PlaybackStarted(utterance))
            step = int(self.sample_rate * self._CHUNK_S) * 2
            for start in range(0, len(data), step):
                if generation != self._generation:
                    break
                piece = data[start : start + step]
                self._take_media()
                if self._track is not None:
                    self._pace(generation)
                    piece = mix(piece, self._track.take(len(piece) // 2, ducked=True))
                pcm = self._write(pcm, piece)
                if pcm is None:
                    break
        self._close(pcm, drain=False)

    def _next_job(self) -> tuple[str, int, bytes]:
        """The next job; with media playing, ``queue.Empty`` when the next media piece is
        due instead (no job came before it)."""
        if self._track is None:
            return self._jobs.get(timeout=self._probe_s if self.status in _FAILED else None)
        ahead = self._written_s - (time.monotonic() - self._opened_at)
        if ahead > MEDIA_AHEAD_S:
            return self._jobs.get(timeout=ahead - MEDIA_AHEAD_S)
        return self._jobs.get_nowait()

    def _pace(self, generation: int) -> None:
        """Over media, speech too is written no further than ``MEDIA_AHEAD_S`` ahead of
        real time (a device that blocks does this by itself), so the media comes back up
        when the speech is heard to end; a stop still takes effect within a piece."""
        while generation == self._generation:
            ahead = self._written_s - (time.monotonic() - self._opened_at)
            if ahead <= MEDIA_AHEAD_S:
                return
            time.sleep(min(self._CHUNK_S, ahead - MEDIA_AHEAD_S))

    def _take_media(self) -> None:
        """What ``play_media``/``stop_media`` asked, taken up on this thread (the
        resampling included); the media counts as playing from ``play_media`` on."""
        with self._lock:
            pending, cut = self._media_pending, self._media_cut
            self._media_cut = False
            if cut:
                self._track = None
        if pending is None:
            return
        data, rate = pending
        samples = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")
        if rate != self.sample_rate:
            from firmware_app.audio.wavio import resample

            samples = resample(samples, rate, self.sample_rate)
        with self._lock:
            if self._media_pending is pending:  # neither stopped nor replaced meanwhile
                self._media_pending = None
                self._track = MediaTrack(samples, self.sample_rate, self._duck_gain)

    def _write_media(self, pcm: Any, ducked: bool) -> Any:
        """The next piece of the media alone (ducked between an utterance's pieces)."""
        track = self._track
        assert track is not None
        if pcm is None:
            pcm = self._open_now()
            if pcm is None:
                self._track = None  # no speaker: the media is lost, as an utterance would be
                return None
        samples = track.take(int(self.sample_rate * self._CHUNK_S), ducked)
        pcm = self._write(pcm, mix(bytes(len(samples) * 2), samples))
        if track.done:
            with self._lock:
                self._track = None
            if not self._busy.is_set():
                pcm = self._close(pcm, drain=True)
        return pcm

    def _open_now(self) -> Any:
        """The device opened (None when it cannot be: reported)."""
        try:
            pcm = self._open()
        except Exception as exc:
            self._missing(exc)
            return None
        self._working("running")
        self._written_s, self._opened_at = 0.0, time.monotonic()
        return pcm

    def _write(self, pcm: Any, piece: bytes) -> Any:
        """One piece written; None (the device closed, reported) when the device failed."""
        try:
            pcm.write(piece)
            if self._tap is not None:
                self._tap.written(piece)
        except Exception as exc:
            self.status, self.last_error = "lost", f"{self.device}: {exc}"
            logger.error("speaker {}", self.last_error)
            self._post(
                Notice("error", {"where": FaultCode.AUDIO_OUTPUT, "message": self.last_error})
            )
            self._track = None
            return self._close(pcm, drain=False)
        now = time.monotonic()
        self._written_s += len(piece) / 2 / self.sample_rate
        if self._written_s < now - self._opened_at:  # the device ran dry: count from now
            self._opened_at = now - self._written_s
        return pcm

    def _probe(self) -> None:
        """Open and close the device to learn whether it is there."""
        try:
            pcm = self._open()
            with contextlib.suppress(Exception):
                pcm.close()
        except Exception as exc:
            self._missing(exc)
            return
        self._working("idle")

    def _working(self, status: str) -> None:
        """The device opened: after a failure it is back, said once."""
        if self.status in _FAILED:
            logger.info("speaker {} is back", self.device)
            self._post(Notice("back", {"where": FaultCode.AUDIO_OUTPUT}))
        self.status, self.last_error = status, ""

    def _missing(self, exc: Exception) -> None:
        if self.status not in _FAILED:  # one report per episode, not one per probe
            self.last_error = f"cannot open {self.device}: {exc}"
            logger.error("speaker {}", self.last_error)
            self._post(
                Notice("error", {"where": FaultCode.AUDIO_OUTPUT, "message": self.last_error})
            )
        self.status = "missing"

    def _close(self, pcm: Any, drain: bool) -> Any:
        """Close ``pcm`` if open; always returns None, for ``pcm = self._close(pcm, ...)``."""
        if pcm is None:
            return None
        try:
            if drain:
                pcm.drain()
            else:
                pcm.drop()
        except Exception:
            pass
        with contextlib.suppress(Exception):
            pcm.close()
        if self._tap is not None:
            self._tap.stopped(cut=not drain)
        return None
