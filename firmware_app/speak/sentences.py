"""Cut a streamed answer into speakable sentences as its tokens arrive, and clean each one.

The first sentence goes to the speaker while the rest is still being received, so the
splitter emits a sentence as soon as its end is certain: after ``.`` it waits only for the
next non-space character (a lowercase letter means "e.g. this" or "approx. five", not a new
sentence); ``!``, ``?``, a newline or CJK full stops end a sentence at once. Cutting gives
the same sentences however the text is chunked (tests check this with random chunkings).

Everything here is bounded: a sentence never exceeds ``max_chars`` (long runs are cut at a
space), code blocks are dropped as they stream (never held in memory), and what is spoken
carries no markup, URLs, emoji or control characters: a language model's markdown must not
be read aloud as "asterisk asterisk".
"""

from __future__ import annotations

import html
import re
import unicodedata

MAX_SENTENCE_CHARS = 240
"""Longest sentence handed to speech; longer runs are cut at the last space before it."""

_FENCE = "```"
_ENDERS = ".!?…"
_IMMEDIATE = "。！？\n"
_CLOSERS = "\"'”’)]}*_»"
_MAX_TAIL = 8  # punctuation and closers followed after a sentence end ("?!", '."**')
# Abbreviations that are usually followed by a capitalised name, so ". " + capital after
# them does not end a sentence. Lowercase continuations are handled generally.
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "e.g", "i.e"}
)
_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = str.maketrans({"\r": "\n", "\u2028": "\n", "\u2029": "\n", "\x85": "\n"})


class SentenceSplitter:
    """Feed text as it streams in; get back the sentences that are complete.

    ``feed`` and ``flush`` return cleaned sentences ready to speak (empty ones, such as a
    line holding only ``---`` or an emoji, are dropped)."""

    def __init__(self, max_chars: int = MAX_SENTENCE_CHARS) -> None:
        self.max_chars = max(20, max_chars)
        self._raw = ""  # not yet checked for code fences
        self._text = ""  # outside code fences, waiting for a sentence end
        self._in_fence = False

    def feed(self, chunk: str) -> list[str]:
        self._raw += chunk
        self._strip_fences(final=False)
        return self._cut(final=False)

    def flush(self) -> list[str]:
        """The stream ended: whatever is left is the last sentence."""
        self._strip_fences(final=True)
        out = self._cut(final=True)
        self._raw = self._text = ""
        self._in_fence = False
        return out

    def settle(self) -> list[str]:
        """The stream has paused: the text waiting ends with a sentence end mark (only the
        next character could still say otherwise), so it is taken as complete and emitted.
        A fragment with no end mark stays. Used when nothing arrived for a moment, so a
        finished sentence is spoken now rather than when (or if) the stream goes on."""
        if self._in_fence or self._raw.strip("`").strip():
            return []
        text = self._text.rstrip()
        stripped = text.rstrip(_CLOSERS)
        if not stripped or stripped[-1] not in _ENDERS + _IMMEDIATE:
            return []
        self._text = text
        return self._cut(final=True)

    def complete(self) -> list[str]:
        """The stream failed: the sentences that were complete (see ``settle``); an
        unfinished fragment is dropped, never spoken as if it were whole."""
        out = self.settle()
        self._raw = self._text = ""
        self._in_fence = False
        return out

    def _strip_fences(self, final: bool) -> None:
        while True:
            at = self._raw.find(_FENCE)
            if self._in_fence:
                if at < 0:
                    # Drop code as it arrives; keep two characters in case they start
                    # the closing fence.
                    self._raw = "" if final else self._raw[-2:]
                    return
                self._raw = self._raw[at + len(_FENCE) :]
                self._in_fence = False
                continue
            if at < 0:
                keep = 0 if final else len(self._raw) - len(self._raw.rstrip("`"))
                keep = min(keep, 2)
                self._append(self._raw[: len(self._raw) - keep])
                self._raw = self._raw[len(self._raw) - keep :]
                return
            # A code block ends the sentence before it.
            self._append(self._raw[:at] + "\n")
            self._raw = self._raw[at + len(_FENCE) :]
            self._in_fence = True

    def _append(self, text: str) -> None:
        if text:
            self._text = _SPACES.sub(" ", (self._text + text).translate(_NEWLINES))

    def _cut(self, final: bool) -> list[str]:
        out: list[str] = []
        while True:
            self._text = self._text.lstrip()
            if not self._text:
                return out
            end = _find_end(self._text, self.max_chars, final)
            if end is _WAIT:
                return out
            if end is None:
                if len(self._text) <= self.max_chars and not final:
                    return out
                end = _cut_point(self._text, self.max_chars)
            sentence_end, consumed = end
            sentence = clean(self._text[:sentence_end], self.max_chars)
            self._text = self._text[consumed:]
            if sentence:
                out.append(sentence)


_WAIT = (-1, -1)


def _find_end(text: str, limit: int, final: bool) -> tuple[int, int] | None:
    """(end of the first sentence, where the next begins); ``_WAIT`` when a possible end
    waits for the next character; None when there is no end before ``limit``."""
    n = len(text)
    for i, ch in enumerate(text):
        if i >= limit:
            return None
        if ch in _IMMEDIATE:
            return i + 1, i + 1
        if ch not in _ENDERS:
            continue
        j = i + 1
        while j < n and j - i <= _MAX_TAIL and (text[j] in _ENDERS or text[j] in _CLOSERS):
            j += 1
        if j >= n:
            return (n, n) if final else _WAIT  # the next character decides
        if not text[j].isspace():
            continue  # 3.14, U.S.A, example.com
        if text[j] == "\n" or ch in "!?":
            return j, j
        k = j
        while k < n and text[k] == " ":
            k += 1
        if k >= n:
            return (j, n) if final else _WAIT
        if ch in ".…" and not _ends_sentence(text, i, text[k]):
            continue
        return j, k
    return None


def _ends_sentence(text: str, dot: int, following: str) -> bool:
    if following.islower():
        return False
    start = text.rfind(" ", 0, dot) + 1
    word = text[start:dot].lstrip("(\"'“‘[").lower()
    if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
        return False
    # "1. First item": a list number at the start of a line.
    return not (start == 0 and word.isdigit())


def _cut_point(text: str, limit: int) -> tuple[int, int]:
    """Where to cut a run with no sentence end: after a comma-like mark, else a space."""
    if len(text) <= limit:
        return len(text), len(text)
    head = text[:limit]
    for marks in (",;:", " "):
        at = max(head.rfind(m) for m in marks)
        if at >= limit // 2:
            return at + (1 if marks != " " else 0), at + 1
    return limit, limit


# Cleaning: markup in, plain speech out.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]{0,500}(?:\x07|\x1b\\)?|[@-_])")
_IMAGE = re.compile(r"!\[([^\]]{0,200})\]\([^)]{0,2000}\)")
_LINK = re.compile(r"\[([^\]]{0,200})\]\([^)]{0,2000}\)")
_AUTOLINK = re.compile(r"<(?:https?|ftp|mailto):[^>\s]{0,2000}>", re.IGNORECASE)
_URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"')\]]*", re.IGNORECASE)
"""A URL, down to a bare scheme ("http://" cut off mid-stream): spoken as its host or not
at all."""
_HOST = re.compile(r"^(?:[a-z]+://)?(?:www\.)?([^/?#:@\s]+)", re.IGNORECASE)
_EMAIL_OR_PATHISH = re.compile(r"\S{60,}")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]{0,20}(?:\s[^<>]{0,200})?/?>")
_LEADING = re.compile(r"^(?:\s*(?:#{1,6}\s+|>+\s*|[-*+•]\s+|\d{1,3}[.)]\s+))+")
_RULE = re.compile(r"[-=_*~]{3,}")
_DROP = re.compile(r"[*_~`#^\\]")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?…])")
_REPEATED_PUNCT = re.compile(r"([,;:])(?:\s*[,;:])+")
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "So", "Sk", "Me"})


def clean(text: str, max_chars: int | None = MAX_SENTENCE_CHARS) -> str:
    """Plain speakable text from one sentence of model output ('' when nothing is left).

    This is the one cleaner for everything spoken (``SpeechOutput.say`` applies it too, with
    ``max_chars=None`` so fixed replies are not shortened): a NUL or other control character
    would otherwise reach Piper (which stops at a NUL) and ``&amp;`` would be read aloud."""
    text = unicodedata.normalize("NFC", text)
    text = _ANSI.sub("", text)  # before control characters become spaces: ESC starts it
    text = html.unescape(text)  # before tags are stripped: "&lt;b&gt;" is markup too
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(lambda m: _host(m.group(0)[1:-1]), text)
    text = _URL.sub(lambda m: _host(m.group(0)), text)
    text = _TAG.sub(" ", text)
    text = _LEADING.sub("", text)
    text = _RULE.sub(" ", text)
    text = text.replace("|", ", ")
    text = _DROP.sub(" ", text)
    text = "".join(_speakable(ch) for ch in text)
    text = _EMAIL_OR_PATHISH.sub(" ", text)  # hashes, keys, paths: unspeakable
    text = " ".join(text.split())
    text = _REPEATED_PUNCT.sub(r"\1", text)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = text.strip(" ,;:")
    if not any(ch.isalnum() for ch in text):
        return ""
    if max_chars is not None and len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars)
        text = text[: cut if cut > max_chars // 2 else max_chars].rstrip(" ,;:")
    return text


def _host(url: str) -> str:
    """A URL is spoken as its host name ("example.com"), never character by character."""
    if url.lower().startswith("mailto:"):
        address = url[7:].split("?")[0]
        return address if 0 < len(address) <= 40 else ""
    m = _HOST.match(url)
    host = m.group(1) if m else ""
    return host if 0 < len(host) <= 40 else ""


def _speakable(ch: str) -> str:
    # A control character (NUL, tab, bell) separates words ("Hello\0world" is two), while
    # format characters (Cf: zero-width joiners, bidi marks) sit inside words and just go.
    if ch.isspace() or unicodedata.category(ch) == "Cc":
        return " "
    if ch == "°":
        return " degrees "
    if "\ufe00" <= ch <= "\ufe0f" or "\U000e0100" <= ch <= "\U000e01ef":
        return ""  # emoji variation selectors
    return "" if unicodedata.category(ch) in _DROP_CATEGORIES else ch


def asks_question(text: str) -> bool:
    """True when the (spoken) reply ends with a question, so the speaker should listen
    for an answer without the wake word."""
    return text.rstrip(" \"'”’)»").endswith(("?", "？"))
