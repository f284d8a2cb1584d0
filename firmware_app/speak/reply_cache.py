"""Audio of the replies that repeat, kept so they play without waiting for synthesis.

Fallbacks, errors and timer announcements are said again and again in the same words, and
synthesis is a wait the listener hears; so the speech worker keeps their audio here, by the
exact piece of text it says, and replays it at once. The cache holds at most
``entries`` pieces and forgets the one used longest ago, so its memory stays bounded
whatever is said; zero entries turns it off. Used from the speech worker's thread only
(``stats`` is read elsewhere: a count that is a moment old does no harm).
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_ENTRIES = 64
"""Pieces kept when the settings do not say (``tts.cache_entries``)."""


class ReplyCache:
    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self._entries = entries
        self._audio: OrderedDict[str, list[bytes]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        """False with zero entries: nothing is kept, and nothing counts as a miss."""
        return self._entries > 0

    def __contains__(self, text: str) -> bool:
        """Whether ``text`` is kept, without counting a use (a warm-up asks before it
        synthesizes, which is not a reply said)."""
        return text in self._audio

    def replay(self, text: str) -> list[bytes] | None:
        """The audio kept for ``text``, now the most recently used; None when it is not
        kept. Either way it counts: the hit rate is what the status report shows."""
        chunks = self._audio.get(text)
        if chunks is None:
            self.misses += 1
            return None
        self._audio.move_to_end(text)
        self.hits += 1
        return chunks

    def keep(self, text: str, chunks: list[bytes]) -> None:
        """Keep ``text``'s audio, forgetting the least recently used beyond ``entries``."""
        self._audio[text] = chunks
        while len(self._audio) > self._entries:
            self._audio.popitem(last=False)

    def stats(self) -> dict[str, float]:
        total = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hits / total, 3) if total else 0.0,
            "entries": len(self._audio),
        }


__all__ = ["DEFAULT_ENTRIES", "ReplyCache"]
