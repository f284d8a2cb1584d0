"""The command sentence an open transcript nearly is.

Whisper beside speech-to-phrase hears what speech-to-phrase rejected, and its transcript
is matched word for word against the sentence templates. In the voices and rooms where
speech-to-phrase fails, Whisper often hears a command with one slip: a word the wake
phrase's end left before it ("Notice how much time is left on the timer.", "to set a
timer for five minutes."), or one word spelt as another it sounds like ("cancelled the
timer.", "sent the volume to 30%."). Such a transcript matches nothing and would go to
the online model, or be answered "I can't help with that".

``nearest`` finds the command sentence such a transcript is one slip away from, on the
same word graph speech-to-phrase decodes with (every built-in and custom sentence, the
timer names there are). What counts as one slip is narrow on purpose, since a command
taken wrongly is worse than one not taken:

- up to two words before the command (what the wake phrase's end was heard as);
- or one word in it spelt much like the sentence's word ("sent" for "set", "go" for
  "goes"), never a number (forty and fourteen are alike on paper) nor a timer name;
- or one word more inside it.

The transcript must reach at least ``MIN_WORDS`` of the sentence's words, and a
second sentence as near makes the match ambiguous: no command.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from difflib import SequenceMatcher

from firmware_app.recognize.fsg import WordGraph
from firmware_app.understand.intents import normalize
from firmware_app.understand.intents.numbers import ONES, TENS, number_words

MIN_WORDS = 3  # "what time" is no slip of "what time is it"
MAX_LEAD = 2  # words before the command
ALIKE = 0.65  # SequenceMatcher ratio of a word spelt as another: "go"/"goes" 0.67
NUMBER_WORDS = frozenset([*ONES, *TENS, "hundred", "half", "quarter"])


def spoken(text: str) -> list[str]:
    """A transcript as speech-to-phrase's words: lower case, numbers spelt out ("30%"
    → "thirty percent"), no punctuation."""
    text = normalize(text).replace("%", " percent ")
    text = re.sub(r"\d+", lambda m: f" {_number(int(m.group()))} ", text)
    return re.findall(r"[a-z']+", text)


def _number(n: int) -> str:
    return number_words(n) if 0 <= n <= 999 else str(n)


def nearest(graph: WordGraph, text: str, names: Collection[str] = ()) -> str | None:
    """The one sentence of ``graph`` that ``text`` is one slip away from (None: none, or
    more than one). ``names``: timer names, never taken for a word spelt like them."""
    words = spoken(text)
    found: set[str] = set()
    for lead in range(0, min(MAX_LEAD, len(words)) + 1):  # fewer words dropped first
        if graph.accepts(words[lead:]):
            found.add(" ".join(words[lead:]))
            break
    else:
        found = _one_slip(graph, words, names)
    found = {f for f in found if len(f.split()) >= MIN_WORDS}
    return found.pop() if len(found) == 1 else None


def _one_slip(graph: WordGraph, words: list[str], names: Collection[str]) -> set[str]:
    """Sentences ``words`` reads as with one word spelt like another, or one word more."""
    found: set[str] = set()
    state = 0
    for i, word in enumerate(words):
        before, after = words[:i], words[i + 1 :]
        for other, nxt in graph.arcs[state].items():  # a word spelt like the sentence's
            if other != word and _alike(word, other, names) and graph.accepts(after, nxt):
                found.add(" ".join([*before, other, *after]))
        if i and graph.accepts(after, state):  # a word more
            found.add(" ".join([*before, *after]))
        follows = graph.follow([word], state)
        if follows is None:
            break
        state = follows
    return found


def _alike(said: str, meant: str, names: Collection[str]) -> bool:
    if said in NUMBER_WORDS or meant in NUMBER_WORDS or meant in names or said in names:
        return False
    return SequenceMatcher(None, said, meant).ratio() >= ALIKE
