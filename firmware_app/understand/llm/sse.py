"""The wire format of a streamed chat completion: server-sent events and the JSON chunks
they carry, parsed as hostile input (every line bounded, anything malformed skipped, a
provider's error text never kept: it can quote the request or part of the key)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_SSE_LINE = 64 * 1024
"""Longest SSE line accepted; a real chunk is a few hundred bytes."""


class SseParser:
    """Server-sent events, incrementally: bytes in, the ``data`` of each complete event out.

    Lines end in LF, CRLF or CR; multi-line data is joined with LF; comments (``:``) and
    other fields are ignored. A line longer than ``MAX_SSE_LINE`` sets ``overflow``."""

    def __init__(self, max_line: int = MAX_SSE_LINE) -> None:
        self.max_line = max_line
        self.overflow = False
        self._buf = bytearray()
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        self._buf += chunk
        out: list[str] = []
        while True:
            cr, lf = self._buf.find(b"\r"), self._buf.find(b"\n")
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                break
            end = min(ends)
            if end == cr and end == len(self._buf) - 1:
                break  # a CR at the end may be half of CRLF
            line = bytes(self._buf[:end])
            skip = 2 if self._buf[end : end + 2] == b"\r\n" else 1
            del self._buf[: end + skip]
            if len(line) > self.max_line:
                self.overflow = True
                continue
            self._line(line.decode("utf-8", errors="replace"), out)
        if len(self._buf) > self.max_line:
            self.overflow = True
            self._buf.clear()
        return out

    def finish(self) -> list[str]:
        """The stream ended: an event missing its closing blank line still counts."""
        out: list[str] = []
        if self._buf and len(self._buf) <= self.max_line:
            self._line(bytes(self._buf).decode("utf-8", errors="replace"), out)
        self._buf.clear()
        self._line("", out)
        return out

    def _line(self, line: str, out: list[str]) -> None:
        if not line:
            if self._data:
                out.append("\n".join(self._data))
                self._data = []
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
            if sum(len(d) for d in self._data) > self.max_line:
                self.overflow = True
                self._data = []


@dataclass(frozen=True)
class Event:
    text: str = ""
    finish_reason: str | None = None
    error: str | None = None


def parse_event(data: str) -> Event | None:
    """One chunk of a streamed completion; None when it is not one."""
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    if "error" in obj:
        return Event(error=_provider_error(obj["error"]))
    choices = obj.get("choices")
    if not isinstance(choices, list):
        return None
    if not choices:
        return Event()  # usage-only chunk
    choice = choices[0]
    if not isinstance(choice, dict):
        return None
    delta = choice.get("delta")
    if delta is None:
        delta = choice.get("message")  # some servers send whole messages
    content = delta.get("content") if isinstance(delta, dict) else None
    text = content if isinstance(content, str) else ""
    if not text and isinstance(choice.get("text"), str):
        text = choice["text"]  # legacy completions shape
    finish = choice.get("finish_reason")
    return Event(text=text, finish_reason=finish if isinstance(finish, str) else None)


def parse_plain(body: bytes) -> str | None:
    """A non-streamed completion (a server that ignored ``stream``)."""
    try:
        obj = json.loads(body)
        content = obj["choices"][0]["message"]["content"]
    except (ValueError, RecursionError, KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _provider_error(error: Any) -> str:
    """A provider's error code, only when it looks like an identifier: its message text
    may echo the request or part of the key."""
    code = None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
    return _safe_code(code) or "unspecified"


def _safe_code(code: Any) -> str | None:
    ok = isinstance(code, str) and 0 < len(code) <= 40
    if ok and all(ch.isalnum() or ch in "_-." for ch in code):
        return str(code)
    return None
