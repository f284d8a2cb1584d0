"""pyalsaaudio, loaded when a device is first opened: a missing library is one clear
message, not an ImportError at start-up. The microphone is in ``capture.py``, the speaker in
``playback.py``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from firmware_app.core.errors import EngineUnavailableError

Post = Callable[[Any], None]


def load_alsa() -> Any:
    try:
        import alsaaudio
    except ImportError as exc:
        raise EngineUnavailableError(
            f"pyalsaaudio cannot be loaded ({exc}); install libasound2-dev and re-run setup"
        ) from exc
    return alsaaudio


__all__ = ["Post", "load_alsa"]
