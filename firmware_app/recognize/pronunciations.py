"""The pronunciation dictionary that ships with pocketsphinx's en-us model, read in place.

The file holds 135,000 words. Handing it to a decoder whole costs that decoder about 48 MB,
and a Python set of its words another 12 MB; the recognizers only ever use a few hundred
(the command grammar's words, the garbage loop, "stop"). So the file is kept as one bytes
object (3.5 MB) with an index of line starts, words are found by binary search (the file is
sorted by word, alternates such as ``read(2)`` right after their word), and each decoder
starts from a dictionary of just the words it needs.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from firmware_app.core.errors import EngineUnavailableError


def model_dir() -> Path:
    try:
        from pocketsphinx import get_model_path
    except ImportError as exc:
        raise EngineUnavailableError(f"pocketsphinx cannot be loaded ({exc})") from exc
    return Path(get_model_path()) / "en-us"


class Pronunciations:
    """``phones(word)``: every pronunciation of a word (phones separated by spaces), the
    first the most common; ``word in dictionary`` asks whether it has one."""

    def __init__(self, path: Path) -> None:
        self._data = path.read_bytes()
        ends = np.flatnonzero(np.frombuffer(self._data, dtype=np.uint8) == 0x0A)
        starts = np.concatenate(([0], ends + 1)).astype(np.uint32)
        if self._data.endswith(b"\n"):
            starts = starts[:-1]
        self._starts = starts

    def __len__(self) -> int:
        return len(self._starts)

    def _line(self, i: int) -> bytes:
        start = int(self._starts[i])
        end = self._data.find(b"\n", start)
        return self._data[start : end if end >= 0 else len(self._data)]

    def _word(self, i: int) -> bytes:
        return self._line(i).split(b" ", 1)[0].split(b"(", 1)[0]

    def phones(self, word: str) -> list[str]:
        key = word.encode("utf-8", errors="replace")
        i = bisect.bisect_left(range(len(self)), key, key=self._word)
        found = []
        while i < len(self) and self._word(i) == key:
            phones = self._line(i).split(b" ", 1)[1].split(b"#", 1)[0].strip()
            found.append(phones.decode("ascii", errors="replace"))
            i += 1
        return found

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and bool(word) and bool(self.phones(word))


@cache
def pronunciations() -> Pronunciations:
    """The packaged dictionary (read once; a few MB)."""
    return Pronunciations(model_dir() / "cmudict-en-us.dict")


def forget() -> None:
    """Let the dictionary go (about 4 MB) once a decoder holds the words it needs: it is
    read again only when a grammar is rebuilt (a new timer name), which is rare."""
    pronunciations.cache_clear()


def entries(
    words: Iterable[str], prefix: str = "", first_only: bool = False
) -> list[tuple[str, str]]:
    """(word, phones) for each of ``words`` the dictionary knows, spelt with ``prefix``;
    alternates numbered as in the file."""
    found = []
    for word in words:
        phones = pronunciations().phones(word)
        for k, p in enumerate(phones[:1] if first_only else phones):
            found.append((f"{prefix}{word}{'' if k == 0 else f'({k + 1})'}", p))
    return found


def add_words(decoder: Any, words: list[tuple[str, str]]) -> None:
    """Into a decoder's dictionary; its search is updated once, with the last word."""
    for i, (word, phones) in enumerate(words):
        decoder.add_word(word, phones, i == len(words) - 1)


def decoder(words: list[tuple[str, str]], keyphrase: str | None = None, **config: Any) -> Any:
    """A pocketsphinx decoder for the en-us model whose dictionary holds only ``words``
    (more can be added later with ``add_words``), spotting ``keyphrase`` (by default the
    first word, a placeholder until the caller activates its own search: a decoder with
    no search would load the model's 40 MB language model).

    Nothing is written to disk: the dictionary is handed over in an anonymous in-memory
    file, so a full or read-only disk cannot take the recognizer away."""
    try:
        from pocketsphinx import Config, Decoder
    except ImportError as exc:
        raise EngineUnavailableError(f"pocketsphinx cannot be loaded ({exc})") from exc
    if not words:
        raise EngineUnavailableError("pocketsphinx: no word of the vocabulary is in its dictionary")
    text = "".join(f"{word} {phones}\n" for word, phones in words)
    fd = os.memfd_create("ttbt5-words.dict")
    with open(fd, "w", encoding="utf-8") as dictionary:
        dictionary.write(text)
        dictionary.flush()
        return Decoder(
            Config(
                hmm=str(model_dir() / "en-us"),
                dict=f"/proc/self/fd/{fd}",
                keyphrase=keyphrase or words[0][0],
                **config,
            )
        )
