"""The microphone: ALSA capture through pyalsaaudio, 80 ms frames posted to the inbox.

It heals itself: a device that is missing at start or disappears (USB unplugged) is
reopened with capped exponential backoff while the service keeps running; each failure is
reported once as an ``error`` notice, not once per retry. Overruns are counted, never fatal.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from loguru import logger

from firmware_app.audio.alsa import Post, load_alsa
from firmware_app.core.errors import FaultCode
from firmware_app.core.events import wall_now
from firmware_app.core.messages import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    Frame,
    Notice,
    Tick,
)


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
        alsa = load_alsa()
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
                self._post(Notice("error", {"where": FaultCode.AUDIO_INPUT, "message": message}))
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
