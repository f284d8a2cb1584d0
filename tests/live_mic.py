"""A live-paced microphone for real ALSA tests: a FIFO behind the ``file`` plugin's
``infile``, written at the pace of a real device. When nothing is written the capture read
blocks in the driver, exactly like a wedged USB microphone."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

FRAME_BYTES = 1280 * 2  # 80 ms of 16 kHz mono S16


class MicFeeder:
    """Writes silence into the FIFO at the pace of a live microphone; ``speak`` queues
    audio, ``stall`` stops delivering for a while (the read then blocks in the driver)."""

    def __init__(self, fifo: Path) -> None:
        if not fifo.exists():
            os.mkfifo(fifo)
        self._fd = os.open(fifo, os.O_RDWR)  # never blocks and never sees "no reader"
        os.set_blocking(self._fd, False)
        self._pending = bytearray()
        self._lock = threading.Lock()
        self._stalled_until = 0.0
        self._stop = threading.Event()
        self.frames = 0
        self.drained_at = 0.0  # monotonic time the last queued audio was delivered
        self._thread = threading.Thread(target=self._run, name="feeder", daemon=True)
        self._thread.start()

    def speak(self, samples: np.ndarray) -> None:
        with self._lock:
            self._pending.extend(samples.astype("<i2").tobytes())

    def speaking(self) -> bool:
        """Queued audio is still being delivered."""
        with self._lock:
            return bool(self._pending)

    def stall(self, seconds: float) -> None:
        """Deliver nothing for ``seconds`` (0: resume now)."""
        self._stalled_until = time.monotonic() + seconds

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            next_at += 0.08
            self._stop.wait(max(0.0, next_at - time.monotonic()))
            if time.monotonic() < self._stalled_until:
                continue
            with self._lock:
                queued = bool(self._pending)
                frame = bytes(self._pending[:FRAME_BYTES]).ljust(FRAME_BYTES, b"\0")
                del self._pending[:FRAME_BYTES]
                last = queued and not self._pending
            try:
                os.write(self._fd, frame)
                self.frames += 1
                if last:
                    self.drained_at = time.monotonic()
            except BlockingIOError:
                pass  # nobody is reading (the device is being reopened): like a live mic

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self._fd)
