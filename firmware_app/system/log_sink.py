"""Where log lines go: the standard error stream of the moment.

Loguru given ``sys.stderr`` keeps that object for good. When the stream is later replaced
and closed (``ttbt5``'s ``main`` run inside another program, such as a test whose output is
captured, or by a tool embedding the assistant), every later line, from any thread, became
a "Logging error in Loguru Handler ... I/O operation on closed file" traceback. This sink
looks ``sys.stderr`` up for each line, and a stream that is gone (closed, ``None`` while the
interpreter shuts down, a pipe nobody reads) costs that line only.
"""

from __future__ import annotations

import sys


class StderrSink:
    """A loguru sink (``logger.add(StderrSink(), ...)``) writing to the current stderr."""

    def write(self, message: str) -> None:
        stream = sys.stderr
        if stream is None:
            return
        try:
            stream.write(message)
            stream.flush()
        except (ValueError, OSError):  # closed, or its reader went away
            pass


def stderr_is_terminal() -> bool:
    """Whether colours make sense on stderr now."""
    try:
        return bool(sys.stderr is not None and sys.stderr.isatty())
    except (ValueError, OSError):
        return False
