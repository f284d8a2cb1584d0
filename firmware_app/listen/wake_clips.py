"""The audio of the last few wakes, so a user can say "that wasn't for me".

Every unmuted microphone frame passes through :meth:`WakeClips.hear`, which keeps a short
rolling pre-roll. A detection opens a clip holding that pre-roll (the wake phrase itself)
and the next two seconds. Only the last ``kept`` clips are held, in memory: a false wake is
only useful to tune with while it is fresh, and audio of a home should not pile up. Marking
the last wake false counts it per model; writing the clip to disk (WAV plus a JSON note) is
opt-in through ``wake.false_wake_dir``, held to ``wake.false_wake_max_mb`` and
``wake.false_wake_keep`` (the oldest clips go first), and a failed write is logged once,
never raised, because it must not stop the assistant.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from loguru import logger

from firmware_app.audio.wavio import write_wav
from firmware_app.system.kept_files import KeptFiles

RATE = 16000
BYTES_PER_SECOND = RATE * 2
FALSE_WAKE_PREFIX = "false-wake-"
FALSE_WAKE_SUFFIXES = (".wav", ".json")


@dataclass
class WakeClip:
    id: int
    model: str
    score: float
    t: float  # assistant clock at the detection
    pcm: bytearray = field(repr=False)
    missing: int  # bytes still to record after the detection
    false: bool = False
    saved: Path | None = None

    @property
    def complete(self) -> bool:
        return self.missing <= 0

    def summary(self) -> dict:
        return {
            "id": self.id,
            "model": self.model,
            "score": self.score,
            "t": round(self.t, 3),
            "seconds": round(len(self.pcm) / BYTES_PER_SECOND, 2),
            "false": self.false,
            "saved": str(self.saved) if self.saved else None,
        }


class WakeClips:
    """A bounded store of recent wake clips (pre-roll plus ``after_s`` of audio)."""

    def __init__(
        self,
        kept: int = 5,
        preroll_s: float = 2.0,
        after_s: float = 2.0,
        saved: KeptFiles | None = None,
    ) -> None:
        self._preroll: deque[bytes] = deque()
        self._preroll_bytes = 0
        self._preroll_max = int(preroll_s * BYTES_PER_SECOND)
        self._after = int(after_s * BYTES_PER_SECOND)
        self._clips: deque[WakeClip] = deque(maxlen=kept)
        self._next_id = 1
        self.saved = saved
        """Where clips marked false are written; None: never written."""
        self.false_wakes: dict[str, int] = {}

    def hear(self, pcm: bytes) -> None:
        """Feed one microphone frame (before ``wake`` for the frame that woke)."""
        for clip in self._clips:
            if not clip.complete:
                take = pcm[: clip.missing]
                clip.pcm += take
                clip.missing -= len(take)
                if clip.complete and clip.false and self.saved is not None:
                    self._save(clip)
        self._preroll.append(pcm)
        self._preroll_bytes += len(pcm)
        while self._preroll_bytes - len(self._preroll[0]) >= self._preroll_max:
            self._preroll_bytes -= len(self._preroll.popleft())

    def wake(self, model: str, score: float, t: float) -> WakeClip:
        """A wake word was detected in the frame just heard: start its clip."""
        clip = WakeClip(
            self._next_id, model, score, t, bytearray(b"".join(self._preroll)), self._after
        )
        self._next_id += 1
        self._clips.append(clip)
        return clip

    def last(self) -> WakeClip | None:
        return self._clips[-1] if self._clips else None

    def clips(self) -> list[WakeClip]:
        return list(self._clips)

    def mark_false(self) -> WakeClip | None:
        """Mark the most recent wake false; None if there is none or it is marked already."""
        clip = self.last()
        if clip is None or clip.false:
            return None
        clip.false = True
        self.false_wakes[clip.model] = self.false_wakes.get(clip.model, 0) + 1
        logger.info("wake {} ({} {:.3f}) marked false", clip.id, clip.model, clip.score)
        if clip.complete and self.saved is not None:
            self._save(clip)
        return clip

    def _save(self, clip: WakeClip) -> None:
        assert self.saved is not None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        model = "".join(c if c.isalnum() or c in "_-" else "_" for c in clip.model)[:64]

        def write(base: Path) -> None:
            wav = base.with_name(base.name + FALSE_WAKE_SUFFIXES[0])
            write_wav(wav, np.frombuffer(bytes(clip.pcm), dtype=np.int16), RATE)
            clip.saved = wav
            note = json.dumps(clip.summary()) + "\n"
            base.with_name(base.name + FALSE_WAKE_SUFFIXES[1]).write_text(note)

        stem = f"{FALSE_WAKE_PREFIX}{stamp}-{clip.id}-{model}"
        if self.saved.save(stem, len(clip.pcm) + 1024, write) is None:
            clip.saved = None
