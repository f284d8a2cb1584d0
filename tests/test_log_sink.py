"""Log lines never fail because the stream they were set up with went away: ``ttbt5``'s
``main`` run in-process (here, with stderr swapped for a stream that is then closed, as a
captured test output is) left a loguru handler writing into the closed stream, and every
later line from any thread printed a "Logging error in Loguru Handler ... I/O operation on
closed file" traceback."""

from __future__ import annotations

import io
import sys
import threading

import pytest
from loguru import logger

from firmware_app import cli
from firmware_app.system.log_sink import StderrSink


def test_lines_after_main_s_stream_is_closed(capfd: pytest.CaptureFixture[str]) -> None:
    swapped = io.StringIO()
    real, sys.stderr = sys.stderr, swapped
    try:
        assert cli.main(["config", "validate"]) == 0
    finally:
        sys.stderr = real
        swapped.close()
    try:
        late = threading.Thread(target=lambda: logger.warning("a line from a late thread"))
        late.start()
        late.join()
        err = capfd.readouterr().err
        assert "Logging error" not in err and "closed file" not in err
        assert "a line from a late thread" in err  # it went to the stderr of now
        sys.stderr = None  # type: ignore[assignment]  # as while the interpreter exits
        try:
            logger.warning("nowhere to go")
        finally:
            sys.stderr = real
        assert "Logging error" not in capfd.readouterr().err
    finally:
        logger.remove()
        logger.add(StderrSink(), level="DEBUG")


def test_main_called_in_process_leaves_the_collector_as_it_was() -> None:
    """The CLI freezes what is alive for the collector only when it is the program (its
    exit comes next); a caller that hands over its arguments keeps collecting."""
    import gc

    frozen = gc.get_freeze_count()
    assert cli.main(["config", "validate"]) == 0
    assert gc.get_freeze_count() == frozen
