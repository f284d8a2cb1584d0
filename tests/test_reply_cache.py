"""The reply cache stays bounded by forgetting the piece used longest ago, not the one
kept longest ago: a fallback said every few minutes must survive a burst of new texts."""

from __future__ import annotations

from firmware_app.speak.reply_cache import ReplyCache


def test_a_replayed_piece_outlives_newer_ones_that_were_not() -> None:
    cache = ReplyCache(2)
    cache.keep("Sorry?", [b"a"])
    cache.keep("Timer done.", [b"b"])
    assert cache.replay("Sorry?") == [b"a"]
    cache.keep("Lights on.", [b"c"])
    assert "Sorry?" in cache and "Lights on." in cache
    assert "Timer done." not in cache
    assert cache.stats()["entries"] == 2


def test_hits_and_misses_count_replays_only() -> None:
    cache = ReplyCache(4)
    assert cache.replay("Sorry?") is None
    cache.keep("Sorry?", [b"a"])
    assert "Sorry?" in cache  # asked by a warm-up: not a reply said
    cache.replay("Sorry?")
    cache.replay("Sorry?")
    assert cache.stats() == {"hits": 2, "misses": 1, "hit_rate": 0.667, "entries": 1}


def test_zero_entries_keeps_nothing() -> None:
    cache = ReplyCache(0)
    cache.keep("Sorry?", [b"a"])
    assert not cache.enabled
    assert "Sorry?" not in cache
