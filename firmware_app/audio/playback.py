"""The speaker: ALSA playback through pyalsaaudio, one utterance at a time.

A speaker that is missing or unplugged costs only the utterance that was playing; it is
reported once as an ``error`` notice and used again as soon as it is back.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any

from loguru import logger

from firmware_app.audio.alsa import Post, load_alsa
from firmware_app.audio.echo import PlaybackTap
from firmware_app.core.errors import FaultCode
from firmware_app.core.messages import (
    Notice,
    PlaybackDone,
    PlaybackStarted,
)


class AlsaSpeaker:
    """Plays utterances on an ALSA playback device from its own thread.

    The device is opened per utterance and closed after it drains, so an unplugged speaker
    only costs the utterance that was playing and a device that comes back is simply used.
    It is also tried once at start and, while missing, every ``probe_s``: ``available()``
    tells the truth before anything is said, and an utterance that could not be played is
    never announced as started (so its requester hears that it was not spoken).
    """

    _CHUNK_S = 0.05  # written in small pieces so stop() takes effect within ~50 ms

    def __init__(
        self,
        device: str,
        sample_rate: int,
        post: Post,
        tap: PlaybackTap | None = None,
        probe_s: float = 10.0,
    ) -> None:
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
            try:
                wait = self._probe_s if self.status == "missing" else None
                kind, utterance, data = self._jobs.get(timeout=wait)
            except queue.Empty:
                self._probe()
                continue
            if kind == "quit":
                break
            with self._lock:
                stale = generation != self._generation
                generation = self._generation
            if kind == "stop" or stale:
                pcm = self._close(pcm, drain=False)
                if current >= 0:
                    self._post(PlaybackDone(current))
                    current = -1
                if kind == "stop":
                    continue
            if kind == "end":
                pcm = self._close(pcm, drain=True)
                self._busy.clear()
                self._post(PlaybackDone(utterance))
                current = -1
                continue
            self._busy.set()
            if pcm is None:
                try:
                    pcm = self._open()
                except Exception as exc:
                    self._missing(exc)
                    continue
                self.status, self.last_error = "running", ""
            if utterance != current:
                current = utterance
                self._post(PlaybackStarted(utterance))
            step = int(self.sample_rate * self._CHUNK_S) * 2
            for start in range(0, len(data), step):
                if generation != self._generation:
                    break
                try:
                    pcm.write(data[start : start + step])
                    if self._tap is not None:
                        self._tap.written(data[start : start + step])
                except Exception as exc:
                    self.status, self.last_error = "lost", f"{self.device}: {exc}"
                    logger.error("speaker {}", self.last_error)
                    self._post(
                        Notice(
                            "error", {"where": FaultCode.AUDIO_OUTPUT, "message": self.last_error}
                        )
                    )
                    pcm = self._close(pcm, drain=False)
                    break
        self._close(pcm, drain=False)

    def _probe(self) -> None:
        """Open and close the device to learn whether it is there."""
        try:
            pcm = self._open()
            with contextlib.suppress(Exception):
                pcm.close()
        except Exception as exc:
            self._missing(exc)
            return
        if self.status == "missing":
            logger.info("speaker {} is back", self.device)
        self.status, self.last_error = "idle", ""

    def _missing(self, exc: Exception) -> None:
        if self.status != "missing":
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
