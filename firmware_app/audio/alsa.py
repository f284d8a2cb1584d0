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
from firmware_app.core.errors import EngineUnavailableError
from firmware_app.core.events import wall_now
from firmware_app.core.messages import (
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


class MicrophoneStalled(Exception):
    """The capture ended without an error."""


class _Capture:
    """One attempt at the device, opened and read on its own thread: a read that never
    returns cannot hold up the supervisor. ``last_data``: the last sign of progress."""

    def __init__(self, mic: Microphone) -> None:
        self.mic = mic
        self.abandoned = threading.Event()
        self.opened = False
        self.got_data = False
        self.error: BaseException | None = None
        self.last_data = time.monotonic()
        self.thread = threading.Thread(target=self._run, name="mic-read", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        pcm: Any = None
        try:
            pcm = self.mic._open()
            self.opened = True
            self.last_data = time.monotonic()
            self._read(pcm)
        except Exception as exc:
            self.error = exc
        finally:
            if pcm is not None:
                with contextlib.suppress(Exception):
                    pcm.close()

    def _read(self, pcm: Any) -> None:
        mic = self.mic
        need = FRAME_SAMPLES * 2
        pending = bytearray()
        while not self.abandoned.is_set():
            length, data = pcm.read()
            if self.abandoned.is_set():
                return
            if length < 0:  # -EPIPE: overrun; ALSA has recovered the stream
                mic.xruns += 1
                continue
            if not data:
                continue
            self.got_data = True
            self.last_data = time.monotonic()
            pending.extend(data)
            while len(pending) >= need:
                while not mic._room() and not self.abandoned.is_set():
                    self.last_data = time.monotonic()  # a slow consumer is not a stall
                    time.sleep(0.005)
                if self.abandoned.is_set():
                    return
                mic.frames += 1
                mic._post(Frame(bytes(pending[:need]), wall_now()))
                del pending[:need]


class Microphone:
    """Reads 80 ms periods from an ALSA capture device and posts Frames.

    A supervisor thread watches each capture attempt: a device that cannot be opened
    (``missing``), fails while reading (``lost``), or delivers nothing for ``stall_s``
    (``stalled``: a wedged USB device, or a capture that has ended) is reported once as an
    ``error`` notice from ``audio.input`` (the assistant shows ERROR until frames flow
    again) and reopened with capped exponential backoff. A read stuck in the driver is
    abandoned rather than waited for; at most ``MAX_ABANDONED`` such threads are kept
    before the supervisor waits for one of them to return.

    ``room`` lets the consumer apply back-pressure: the reader waits while too many frames
    are queued (a live device then overruns, which is counted; a file-backed device is
    simply read at the consumer's pace).
    """

    MAX_ABANDONED = 3

    def __init__(
        self,
        device: str,
        post: Post,
        room: Callable[[], bool],
        reopen_max_s: float = 30.0,
        stall_s: float = 2.0,
    ) -> None:
        self.device = device
        self._post = post
        self._room = room
        self._reopen_max_s = reopen_max_s
        self._stall_s = stall_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._abandoned: list[_Capture] = []
        self.xruns = 0
        self.frames = 0
        self.stalls = 0
        self.reopens = 0
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
            "stalls": self.stalls,
            "reopens": self.reopens,
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
            self._abandoned = [c for c in self._abandoned if c.thread.is_alive()]
            if len(self._abandoned) >= self.MAX_ABANDONED:
                self._wait(delay)
                continue
            capture = _Capture(self)
            status, message, flowed = self._watch(capture)
            if self._stop.is_set():
                break
            if flowed:  # a new fault after audio flowed: report it, retry quickly
                delay, reported = 0.5, False
            self.status, self.last_error = status, message
            if not reported:
                logger.error("microphone {}", message)
                self._post(Notice("error", {"where": "audio.input", "message": message}))
                reported = True
            self._wait(delay)
            delay, self.reopens = min(delay * 2, self._reopen_max_s), self.reopens + 1
        self.status = "stopped"

    def _watch(self, capture: _Capture) -> tuple[str, str, bool]:
        """Follow one attempt until it fails or stalls: (status, why, whether audio flowed)."""
        flowed = False
        while not self._stop.is_set():
            capture.thread.join(timeout=min(0.1, self._stall_s / 4))
            if capture.got_data and not flowed:
                flowed = True
                if self.status != "starting":
                    logger.info("microphone {} is back", self.device)
                self.status, self.last_error = "running", ""
            if not capture.thread.is_alive():
                exc = capture.error or MicrophoneStalled("the capture ended")
                if not capture.opened:
                    return "missing", f"cannot open {self.device}: {exc}", flowed
                return "lost", f"{self.device} stopped: {exc}", flowed
            if time.monotonic() - capture.last_data > self._stall_s:
                capture.abandoned.set()
                self._abandoned.append(capture)
                self.stalls += 1
                what = "delivered no audio" if capture.opened else "did not open"
                return "stalled", f"{self.device} {what} for {self._stall_s:g} s", flowed
        capture.abandoned.set()
        return "stopped", "", flowed

    def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < end:
            self._post(Tick(wall_now(), recovering=True))
            self._stop.wait(min(0.5, end - time.monotonic()))


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
                        Notice("error", {"where": "audio.output", "message": self.last_error})
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
            self._post(Notice("error", {"where": "audio.output", "message": self.last_error}))
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
