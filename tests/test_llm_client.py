"""The SSE parser and the pieces of the client that judge a provider's reply."""

from __future__ import annotations

import email.utils
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_app.understand.llm.client import _retry_after, stream_byte_cap
from firmware_app.understand.llm.sse import SseParser, parse_event


def feed_all(parser: SseParser, data: bytes, size: int) -> list[str]:
    out: list[str] = []
    for i in range(0, len(data), size):
        out += parser.feed(data[i : i + size])
    return out + parser.finish()


def test_sse_events_lines_and_comments() -> None:
    stream = (
        b": keep-alive\n\n"
        b"data: one\n\n"
        b"event: x\r\ndata: two\r\ndata: lines\r\n\r\n"
        b"data:three\r\r"
        b"id: 5\nretry: 10\n\n"
        b"data: last-without-blank-line"
    )
    for size in (1, 2, 3, 7, len(stream)):
        assert feed_all(SseParser(), stream, size) == [
            "one",
            "two\nlines",
            "three",
            "last-without-blank-line",
        ]


def test_sse_overlong_lines_are_flagged_and_dropped() -> None:
    parser = SseParser(max_line=100)
    assert parser.feed(b"data: " + b"x" * 500) == []
    assert parser.overflow
    assert len(parser._buf) == 0
    parser = SseParser(max_line=100)
    assert parser.feed(b"data: " + b"y" * 50 + b"\n" + b"data: " + b"z" * 60 + b"\n\n") == []
    assert parser.overflow  # joined data over the limit


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=1, max_value=50))
def test_sse_parser_survives_any_bytes_and_chunking(data: bytes, size: int) -> None:
    whole = feed_all(SseParser(), data, len(data) or 1)
    assert feed_all(SseParser(), data, size) == whole


def test_events_are_judged_strictly() -> None:
    assert parse_event('{"choices": [{"delta": {"content": "Hi"}}]}').text == "Hi"
    done = parse_event('{"choices": [{"delta": {}, "finish_reason": "stop"}]}')
    assert done is not None and done.text == "" and done.finish_reason == "stop"
    assert parse_event('{"choices": []}') is not None  # usage-only chunk
    for bad in ("nope", "[1]", '{"choices": 3}', '{"choices": [7]}', "[" * 100000):
        assert parse_event(bad) is None
    assert parse_event('{"choices": [{"delta": {"content": null}}]}').text == ""
    error = parse_event('{"error": {"message": "key sk-123 bad", "code": "rate_limit"}}')
    assert error is not None and error.error == "rate_limit"
    odd = parse_event('{"error": {"message": "x", "code": "has spaces and sk-123"}}')
    assert odd is not None and odd.error == "unspecified"


def test_retry_after_seconds_dates_and_nonsense() -> None:
    assert _retry_after("2") == 2.0
    assert _retry_after("0.5") == 0.5
    assert _retry_after("-3") == 0.0
    assert _retry_after("99999") == 120.0
    assert _retry_after("soon") is None
    assert _retry_after("nan") is None
    assert _retry_after(None) is None
    later = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= (_retry_after(later) or 0) <= 10.5


def test_byte_cap_grows_with_the_reply_limit() -> None:
    assert stream_byte_cap(2000) > 2000 * 200
    assert stream_byte_cap(100000) < 200 * 1024 * 1024
