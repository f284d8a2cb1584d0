"""Sentence cutting and cleaning of streamed model output."""

from __future__ import annotations

import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from firmware_app.speak.sentences import (
    MAX_SENTENCE_CHARS,
    SentenceSplitter,
    asks_question,
    clean,
)


def split(text: str, pieces: list[int] | None = None) -> list[str]:
    """Feed ``text`` cut at the given sizes (one character at a time by default)."""
    splitter = SentenceSplitter()
    out: list[str] = []
    i = 0
    sizes = pieces or [1] * len(text)
    for size in sizes:
        out += splitter.feed(text[i : i + size])
        i += size
    out += splitter.feed(text[i:])
    return out + splitter.flush()


def test_sentences_come_out_as_soon_as_they_are_certain() -> None:
    s = SentenceSplitter()
    assert s.feed("The sky is blue") == []
    assert s.feed(". It") == ["The sky is blue."]  # the capital "I" decides
    assert s.feed(" scatters light!") == []
    assert s.feed(" ") == ["It scatters light!"]  # "!" + space is certain at once
    assert s.feed("Really?\nYes") == ["Really?"]
    assert s.flush() == ["Yes"]


def test_abbreviations_numbers_and_lowercase_do_not_end_sentences() -> None:
    text = (
        "Dr. Smith met Mr. Jones at 3.45 p.m. today, e.g. in the U.S. lab. "
        "J. R. R. Tolkien wrote it. Well... maybe not. The end."
    )
    assert split(text) == [
        "Dr. Smith met Mr. Jones at 3.45 p.m. today, e.g. in the U.S. lab.",
        "J. R. R. Tolkien wrote it.",
        "Well... maybe not.",
        "The end.",
    ]


def test_lists_headings_and_tables_become_plain_sentences() -> None:
    text = "# Steps\n1. Boil water.\n2. Add **pasta**.\n- _Stir_ it\n\n| a | b |\n|---|---|\n"
    assert split(text) == ["Steps", "Boil water.", "Add pasta.", "Stir it", "a, b"]


def test_code_blocks_are_dropped_as_they_stream() -> None:
    text = "Run this:\n```python\nprint('x. Y. Z.')\n```\nThen you are done."
    assert split(text) == ["Run this", "Then you are done."]
    s = SentenceSplitter()
    s.feed("Code:```" + "x = 1. Y = 2\n" * 10000)
    assert len(s._raw) <= 2 and len(s._text) == 0  # never held in memory


def test_urls_are_spoken_as_their_host() -> None:
    assert clean("See https://www.example.com/a/b?c=d#e for more.") == "See example.com for more."
    assert clean("Read [the docs](https://docs.python.org/3/) now.") == "Read the docs now."
    assert clean("![a cat](http://x/y.png) Cute.") == "a cat Cute."
    assert clean("Mail <mailto:someone@example.org> please.") == "Mail someone@example.org please."


def test_emoji_controls_and_markup_are_removed() -> None:
    assert clean("Great job! 🎉👍🏽 \u200d") == "Great job!"
    assert clean("Flags 🇫🇷 and keycaps 1️⃣ ok.") == "Flags and keycaps 1 ok."
    assert clean("Bell\x07 and \x1b[1mbold\x1b[0m and \u202eevil.") == "Bell and bold and evil."
    assert clean("<b>Hi</b> there<br/>.") == "Hi there."
    assert clean("It is 21°C.") == "It is 21 degrees C."
    assert clean("snake_case and ~~struck~~ `code`.") == "snake case and struck code."
    assert clean("---") == ""
    assert clean("🎉🎉🎉") == ""
    assert clean("sha256 " + "a" * 64 + " done.") == "sha256 done."


def test_long_runs_are_cut_at_a_space() -> None:
    words = " ".join(["word"] * 200)
    out = split(words)
    assert len(out) > 1
    assert all(len(s) <= MAX_SENTENCE_CHARS for s in out)
    assert " ".join(out).split() == words.split()  # nothing lost, nothing split mid-word


def test_cjk_full_stops_end_sentences() -> None:
    assert split("空は青い。なぜ？光です") == ["空は青い。", "なぜ？", "光です"]


def test_asks_question() -> None:
    assert asks_question("Do you want to know more?")
    assert asks_question('He said "really?"')
    assert not asks_question("That's all.")
    assert not asks_question("")


SYMBOLS = ["e.g.", "Dr.", "3.5", "```", "http://x.io/a", "🎉", "\x07"]
alphabet = st.sampled_from([*"abc XYZ.,!?\n\t`*_#-|[]()>:/", *SYMBOLS])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(alphabet, max_size=120).map("".join),
    st.lists(st.integers(min_value=1, max_value=7), max_size=60),
)
def test_chunking_never_changes_the_sentences(text: str, pieces: list[int]) -> None:
    assert split(text, pieces) == split(text, [len(text) or 1])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=600))
@example("http://")
def test_whatever_comes_in_what_goes_out_is_speakable(text: str) -> None:
    for sentence in split(text, [13] * 50):
        assert 0 < len(sentence) <= MAX_SENTENCE_CHARS
        assert sentence == sentence.strip()
        assert "```" not in sentence and "**" not in sentence
        assert "http://" not in sentence and "https://" not in sentence
        assert any(ch.isalnum() for ch in sentence)
        for ch in sentence:
            assert unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "So")


def test_settle_takes_a_sentence_that_waits_only_for_its_next_character() -> None:
    s = SentenceSplitter()
    assert s.feed("It is blue.") == []  # "." might be "blue.com" or "approx. five"
    assert s.settle() == ["It is blue."]  # the stream paused: it is a sentence
    assert s.feed(" And green") == []
    assert s.settle() == []  # a fragment stays until it ends
    assert s.flush() == ["And green"]


def test_complete_keeps_whole_sentences_and_drops_a_fragment() -> None:
    s = SentenceSplitter()
    assert s.feed('She said "go!"') == []
    assert s.complete() == ['She said "go!"']
    s = SentenceSplitter()
    assert s.feed("It is blue. The wea") == ["It is blue."]
    assert s.complete() == []  # "The wea" is never spoken as if whole
    assert s.flush() == []
    s = SentenceSplitter()
    assert s.feed("Look here:\n```python\nprint(1).") == ["Look here"]
    assert s.complete() == []  # inside a code block: nothing to say
