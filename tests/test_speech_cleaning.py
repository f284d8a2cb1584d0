"""Every spoken text is cleaned before synthesis: a NUL or other control character must not
reach Piper (a NUL silently ended the text, so "say" was answered ok and nothing was heard),
HTML entities are spoken as what they mean, and a text with nothing speakable is skipped."""

from __future__ import annotations

import time

import pytest

from firmware_app.speak.output import SpeechOutput
from firmware_app.understand.llm.sentences import clean
from tests.fakes import FakeTts


@pytest.mark.parametrize(
    ("raw", "spoken"),
    [
        ("Hello\0world", "Hello world"),  # NUL inside a word separates, never joins
        ("Hello\x00\x00 world\x00", "Hello world"),
        ("one\ttwo\nthree\rfour", "one two three four"),
        ("bell\x07 and\x1f unit\x7f del", "bell and unit del"),
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("It&#39;s &quot;fine&quot; &#x263A;", 'It\'s "fine"'),
        ("&lt;b&gt;bold&lt;/b&gt; text", "bold text"),  # decoded markup is still markup
    ],
)
def test_cleaner_makes_text_speakable(raw: str, spoken: str) -> None:
    assert clean(raw, max_chars=None) == spoken


@pytest.mark.parametrize("raw", ["", "\0", "\x00\t\n\x07", "&nbsp;", "&#0;", " &lt;&gt; "])
def test_nothing_speakable_left_is_empty(raw: str) -> None:
    assert clean(raw, max_chars=None) == ""


def test_no_limit_keeps_long_fixed_replies_whole() -> None:
    """The say path passes max_chars=None: a fixed reply is spoken whole, not cut."""
    text = "word " * 100
    assert clean(text, max_chars=None) == text.strip()
    assert len(clean(text)) <= 240


class NullSpeaker:
    """Accepts audio and discards it; the test looks only at what was synthesized."""

    sample_rate = 16000

    def play(self, utterance: int, pcm: bytes) -> None:
        pass

    def finish(self, utterance: int) -> None:
        pass

    def stop(self) -> None:
        pass


def _said(texts: list[str]) -> list[str]:
    tts = FakeTts()
    speech = SpeechOutput(tts, NullSpeaker(), lambda _msg: None)
    try:
        for i, text in enumerate(texts, start=1):
            speech.say(i, text)
        deadline = time.monotonic() + 5
        while speech.busy() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        speech.close()
    return tts.said


def test_say_sends_cleaned_text_to_the_synthesizer() -> None:
    assert _said(["Hello\0world", "Tom &amp; Jerry"]) == ["Hello world", "Tom & Jerry"]


def test_say_skips_text_with_nothing_speakable() -> None:
    assert _said(["\0\x07", "&nbsp;", "ok"]) == ["ok"]
