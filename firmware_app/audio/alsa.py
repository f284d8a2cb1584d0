"""ALSA capture and playback through pyalsaaudio.

Both heal themselves: a device that is missing at start or disappears (USB unplugged) is
reopened with capped exponential backoff while the service keeps running; each failure is
reported once as an ``error`` notice, not once per retry. Overruns are counted, never fatal.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from loguru import logger

from firmware_app.audio.echo import PlaybackTap
from firmware_app.errors import EngineUnavailableError
from firmware_app.events import wall_now
from firmware_app.messages import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    Frame,
    Notice,
    PlaybackDone,
    PlaybackStarted,
    Tick,
)

Post = Callable[[Any], None]


def _alsa() -> Any:
    try:
        import alsaaudio
    except ImportError as exc:
        raise EngineUnavailableError(
            f"pyalsaaudio cannot be loaded ({exc}); install libasound2-dev and re-run setup"
        ) from exc
    return alsaaudio


class Microphone:
    """Reads 80 ms periods from an ALSA capture device on its own thread and posts Frames.

    ``room`` lets the consumer apply back-pressure: the reader waits while too many frames
    are queued (a live device then overruns, which is counted; a file-backed device is
    simply read at the consumer's pace).
    """

    def __init__(
        self, device: str, post: Post, room: Callable[[], bool], reopen_max_s: float = 30.0
    ) -> None:
        self.device = device
        self._post = post
        self._room = room
        self._reopen_max_s = reopen_max_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.xruns = 0
        self.frames = 0
        self.status = "starting"
        self.last_error = ""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="mic", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)

    def stats(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "status": self.status,
            "xruns": self.xruns,
            "frames": self.frames,
            "error": self.last_error,
        }

    def _open(self) -> Any:
        alsa = _alsa()
        return alsa.PCM(
            type=alsa.PCM_CAPTURE,
            mode=alsa.PCM_NORMAL,
            device=self.device,
            rate=SAMPLE_RATE,
            channels=1,
            format=alsa.PCM_FORMAT_S16_LE,
            periodsize=FRAME_SAMPLES,
            periods=8,
        )

    def _loop(self) -> None:
        delay = 0.5
        reported = False
        while not self._stop.is_set():
            try:
                pcm = self._open()
            except Exception as exc:
                self.status, self.last_error = "missing", f"cannot open {self.device}: {exc}"
                if not reported:
                    logger.error("microphone {}", self.last_error)
                    self._post(
                        Notice("error", {"where": "audio.input", "message": self.last_error})
                    )
                    reported = True
                self._wait(delay)
                delay = min(delay * 2, self._reopen_max_s)
                continue
            if reported or self.status != "starting":
                logger.info("microphone {} is back", self.device)
            self.status, self.last_error, delay, reported = "running", "", 0.5, False
            try:
                self._read(pcm)
            except Exception as exc:
                self.status, self.last_error = "lost", f"{self.device} stopped: {exc}"
                logger.error("microphone {}", self.last_error)
                self._post(Notice("error", {"where": "audio.input", "message": self.last_error}))
                reported = True
            finally:
                with contextlib.suppress(Exception):
                    pcm.close()
        self.status = "stopped"

    def _read(self, pcm: Any) -> None:
        need = FRAME_SAMPLES * 2
        pending = bytearray()
        while not self._stop.is_set():
            length, data = pcm.read()
            if length < 0:  # -EPIPE: overrun; ALSA has recovered the stream
                self.xruns += 1
                continue
            if not data:
                continue
            pending.extend(data)
            while len(pending) >= need:
                while not self._room() and not self._stop.is_set():
                    time.sleep(0.005)
                self.frames += 1
                self._post(Frame(bytes(pending[:need]), wall_now()))
                del pending[:need]

    def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < end:
            self._post(Tick(wall_now(), recovering=True))
            self._stop.wait(min(0.5, end - time.monotonic()))


class AlsaSpeaker:
    """Plays utterances on an ALSA playback device from its own thread.

    The device is opened per utterance and closed after it drains, so an unplugged speaker
    only costs the utterance that was playing and a device that comes back is simply used.
    """

    _CHUNK_S = 0.05  # written in small pieces so stop() takes effect within ~50 ms

    def __init__(
        self, device: str, sample_rate: int, post: Post, tap: PlaybackTap | None = None
    ) -> None:
        self.device = device
        self.sample_rate = sample_rate
        self._post = post
        self._tap = tap
        """Told what is written (the echo canceller's reference), and when playback ends."""
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

    def stats(self) -> dict[str, Any]:
        return {"device": self.device, "status": self.status, "error": self.last_error}

    def _open(self) -> Any:
        alsa = _alsa()
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
        while True:
            kind, utterance, data = self._jobs.get()
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
            if utterance != current:
                current = utterance
                self._post(PlaybackStarted(utterance))
            if pcm is None:
                try:
                    pcm = self._open()
                    self.status, self.last_error = "running", ""
                except Exception as exc:
                    if self.status != "missing":
                        self.last_error = f"cannot open {self.device}: {exc}"
                        logger.error("speaker {}", self.last_error)
                        self._post(
                            Notice("error", {"where": "audio.output", "message": self.last_error})
                        )
                    self.status = "missing"
                    continue
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
                        Notice("error", {"where": "audio.output", "message": self.last_error})
                    )
                    pcm = self._close(pcm, drain=False)
                    break
        self._close(pcm, drain=False)

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
