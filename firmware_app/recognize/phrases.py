"""Speech to phrase: pocketsphinx listening for the sentences the intents understand.

A closed-vocabulary recognizer is what makes English work on a fresh install: the
``pocketsphinx`` package ships a US-English acoustic model and dictionary, and with a
grammar of the command sentences it recognizes them in tens of milliseconds on a Pi,
where an open-vocabulary model would need a 40 MB download and more CPU.

The grammar (``recognize/grammar.py``) is compiled from the templates at start-up and again
only when what it is built from changes (a new timer name), never per request. Speech
outside it lands in the garbage loop and is reported as out of grammar, not forced into
the nearest command. ``HybridTranscriber`` runs this recognizer and Vosk over the same
frames: an in-grammar result answers commands, Vosk's transcript serves everything else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from loguru import logger

from firmware_app.core.events import Event
from firmware_app.core.messages import SAMPLE_RATE
from firmware_app.recognize.grammar import GARBAGE_PREFIX, Grammar
from firmware_app.recognize.pronunciations import add_words, decoder, entries
from firmware_app.recognize.vocabulary_en import COMMON_TIMER_NAMES, GARBAGE_WORDS, WAKE_WORDS

OUT_OF_GRAMMAR_REPLY = (
    "Sorry, I only understand commands such as the time, timers and the volume. "
    "For other questions, install a speech model with: ttbt5 models pull."
)
SEARCH = "commands"


class PhraseTranscriber:
    """pocketsphinx in grammar mode; ``finish`` returns "" and sets ``out_of_grammar``
    when the speech was not a command sentence."""

    def __init__(
        self,
        sources: Callable[[Iterable[str]], Grammar],
        timer_names: Iterable[str] = (),
    ) -> None:
        garbage = entries(GARBAGE_WORDS, prefix=GARBAGE_PREFIX, first_only=True)
        self._decoder: Any = decoder(
            garbage,
            samprate=SAMPLE_RATE,
            bestpath=False,  # the lattice pass adds up to a second at the end, for nothing
            # Where cepstral mean normalization starts before it has heard the room: the
            # model's 40 suits studio silence; a real microphone's noise floor sits higher.
            # It adapts after every utterance from there.
            cmninit="60,3,-1",
            loglevel="FATAL",
        )
        self._in_dictionary: set[str] = set()  # words added for the grammar so far
        self._sources = sources
        self._lock = threading.Lock()  # update_names may come from another thread
        self._names: frozenset[str] = frozenset()
        self._pending: frozenset[str] | None = frozenset(timer_names)
        self.grammar: Grammar = self._rebuild()
        self.out_of_grammar = False
        self.last_text = ""  # what was heard, garbage included, for logs and tests
        self.finish_ms = 0.0  # time the last ``finish`` took

    def _rebuild(self) -> Grammar:
        with self._lock:
            names, self._pending = self._pending, None
        if names is None:
            return self.grammar
        started = time.monotonic()
        grammar = self._sources(sorted(names))
        self._add_words(grammar.words | set(WAKE_WORDS))  # words it lacks are skipped
        self._decoder.add_jsgf_string(SEARCH, grammar.jsgf)
        self._decoder.activate_search(SEARCH)
        self._names = names
        if grammar.missing:
            logger.warning(
                "speech-to-phrase: left out sentences with words the dictionary lacks: {}",
                ", ".join(sorted(grammar.missing)),
            )
        logger.debug(
            "speech-to-phrase grammar built in {:.0f} ms", 1000 * (time.monotonic() - started)
        )
        return grammar

    def _add_words(self, words: Iterable[str]) -> None:
        """The grammar's words the decoder's dictionary does not hold yet."""
        new = sorted(set(words) - self._in_dictionary)
        add_words(self._decoder, entries(new))
        self._in_dictionary.update(new)

    def update_names(self, names: Iterable[str]) -> None:
        """Timer names in use; the grammar is rebuilt before the next utterance if they
        add a name it does not hold yet."""
        wanted = frozenset(n.lower() for n in names if n)
        if wanted - self._names - COMMON_TIMER_NAMES:
            with self._lock:
                self._pending = wanted | self._names

    def observe(self, event: Event) -> None:
        """Event-bus observer: a timer set with a new name enters the grammar."""
        name = event.fields.get("name")
        if event.type == "timer" and event.fields.get("action") == "set" and name:
            self.update_names([*self._names, str(name)])

    def start(self) -> None:
        if self._pending is not None:
            self.grammar = self._rebuild()
        self.out_of_grammar = False
        self._decoder.start_utt()

    def feed(self, pcm: bytes) -> None:
        self._decoder.process_raw(pcm, False, False)

    def finish(self) -> str:
        started = time.perf_counter()
        try:
            self._decoder.end_utt()
        except RuntimeError:  # finish without start: nothing was heard
            return ""
        hyp = self._decoder.hyp()
        words = hyp.hypstr.split() if hyp is not None else []
        self.finish_ms = 1000 * (time.perf_counter() - started)
        self.last_text = " ".join(w.lstrip(GARBAGE_PREFIX) for w in words)
        while words and (words[0].startswith(GARBAGE_PREFIX) or words[0] in WAKE_WORDS):
            words.pop(0)  # the end of the wake phrase, in the pre-roll
        self.out_of_grammar = bool(self.last_text) and (
            not words or any(w.startswith(GARBAGE_PREFIX) for w in words)
        )
        if self.out_of_grammar:
            logger.info("speech-to-phrase: not a command ({!r})", self.last_text)
            return ""
        return " ".join(words)


class HybridTranscriber:
    """Speech-to-phrase and Vosk over the same frames: commands from the first when it
    heard one, Vosk's open transcript otherwise (for the LLM)."""

    out_of_grammar = False

    def __init__(self, phrases: PhraseTranscriber, vosk: Any) -> None:
        self.phrases = phrases
        self.vosk = vosk
        self.source = ""  # "phrases" or "vosk": which one answered the last utterance

    def update_names(self, names: Iterable[str]) -> None:
        self.phrases.update_names(names)

    def observe(self, event: Event) -> None:
        self.phrases.observe(event)

    def start(self) -> None:
        self.phrases.start()
        self.vosk.start()

    def feed(self, pcm: bytes) -> None:
        self.phrases.feed(pcm)
        self.vosk.feed(pcm)

    def finish(self) -> str:
        command = self.phrases.finish()
        text = str(self.vosk.finish())
        if command:
            self.source = "phrases"
            return command
        self.source = "vosk"
        return text
