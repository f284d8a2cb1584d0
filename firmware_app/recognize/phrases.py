"""Speech to phrase: pocketsphinx listening for the sentences the intents understand.

A closed-vocabulary recognizer is what makes English work on a fresh install: the
``pocketsphinx`` package ships a US-English acoustic model and dictionary, and with a
grammar of the command sentences it recognizes them in tens of milliseconds on a Pi,
where an open-vocabulary model would need a 40 MB download and more CPU.

The grammar (``recognize/grammar.py``) is compiled from the templates at start-up and again
only when what it is built from changes (a new timer name), never per request. A new name's
grammar is compiled on a worker thread as soon as the timer is set, while the reply plays;
the next request only hands the finished graph to the decoder. Speech
outside it lands in the garbage loop and is reported as out of grammar, not forced into
the nearest command. ``HybridTranscriber`` (``recognize/hybrid.py``) runs this recognizer
and an open-vocabulary one (Vosk or Whisper) over the same frames.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from loguru import logger

from firmware_app.core.events import Event
from firmware_app.core.messages import SAMPLE_RATE
from firmware_app.recognize.fsg import WordGraph, transitions, word_graph
from firmware_app.recognize.grammar import GARBAGE_PREFIX, Grammar
from firmware_app.recognize.nearest import nearest, spoken
from firmware_app.recognize.pronunciations import add_words, decoder, entries, forget
from firmware_app.recognize.vocabulary_en import COMMON_TIMER_NAMES, GARBAGE_WORDS
from firmware_app.understand.intents.sentences_en import WAKE_WORDS

SEARCH = "commands"
# The wake phrase, or its end, may come first: the pre-roll starts inside it.
COMMAND_BODY = "[<wake>] [<wake>] [<tail>] <command>"
# Pre-roll frames decoded with each new frame until the backlog is gone.
CATCH_UP = 1
# Other speech is a loop of common words beside the commands: entered with LOOP_ENTER,
# each of its words costing LOOP_WORD (the commands cost nothing), so other speech must
# sound clearly less like a command sentence than like a string of common words. One
# such word may come before a command at LOOP_PREFIX: the wake phrase's end or a breath
# that sounds like no wake word in this voice. Chosen on the speech corpus
# (scripts/bench_speech.py): a cheaper loop rejected a third of the commands of voices
# far from the acoustic model (flite, espeak-ng) without rejecting more other speech.
LOOP_ENTER = 0.1
LOOP_WORD = 3e-5
LOOP_PREFIX = 3e-5
# A timer name costs this much in a command: short names ("tea", "fish") were heard in
# commands that had none ("cancel the timer" as "cancel the timer for tea").
NAME_COST = 0.01
# At most this many HMMs searched a frame: past it the decoder narrows its beams frame by
# frame until fewer are alive (pocketsphinx allows 30,000; noise and the loop of common
# words keep 2,000-2,500 alive on average on the speech corpus). Chosen on the speech
# corpus (scripts/bench_speech.py): a fifth less of the recognizer's CPU there, with the
# CI set's commands right, wrong and rejected no worse (44 / 3 / 11 against 43 / 4 / 11)
# and the regression set's unchanged. Fewer (1,000-1,500), fewer Gaussians per senone
# (`topn` 2 or 3), `ds` 2 or tighter fixed beams (1e-40 and narrower) cut more and lost
# commands on the corpus (docs/performance.md has the figures).
MAX_HMMS_PER_FRAME = 2000


class PhraseTranscriber:
    """pocketsphinx in grammar mode; ``finish`` returns "" and sets ``out_of_grammar``
    when the speech was not a command sentence."""

    open_speech = False
    near_command: str | None = None  # its own result is a command or nothing

    def __init__(
        self,
        sources: Callable[[Iterable[str]], Grammar],
        timer_names: Iterable[str] = (),
    ) -> None:
        garbage = entries(GARBAGE_WORDS, prefix=GARBAGE_PREFIX, first_only=True)
        self._loop_words = [word for word, _ in garbage]
        self._decoder: Any = decoder(
            garbage,
            samprate=SAMPLE_RATE,
            bestpath=False,  # the lattice pass adds up to a second at the end, for nothing
            # Where cepstral mean normalization starts before it has heard the room: the
            # model's 40 suits studio silence; a real microphone's noise floor sits higher.
            # It adapts after every utterance from there.
            cmninit="60,3,-1",
            loglevel="FATAL",
            maxhmmpf=MAX_HMMS_PER_FRAME,
        )
        self._in_dictionary: set[str] = set()  # words added for the grammar so far
        self._sources = sources
        self._lock = threading.Lock()  # hold_timers may come from another thread
        self._names: frozenset[str] = frozenset()  # the timer names the grammar holds
        self._timers: dict[str, str] = {}  # the timers there are: id -> name
        self._pending: frozenset[str] | None = frozenset(n.lower() for n in timer_names)
        # the grammar for the pending names, compiled ahead by the worker thread
        self._compiled: tuple[frozenset[str], Grammar, WordGraph] | None = None
        self._compiling: threading.Thread | None = None
        self.graph_size = (0, 0)  # states and words of the search graph
        self.build_ms = 0.0  # time the last build took here (compiling ahead not counted)
        self._backlog: deque[bytes] = deque()  # audio waiting to be decoded (the pre-roll)
        self._graph = WordGraph([{}], frozenset())  # the sentences, as the decoder searches them
        self.grammar: Grammar = self._rebuild()
        self.out_of_grammar = False
        self.last_text = ""  # what was heard, garbage included, for logs and tests
        self.finish_ms = 0.0  # time the last ``finish`` took

    def _compile(self, names: frozenset[str]) -> tuple[frozenset[str], Grammar, WordGraph]:
        """The grammar and its word graph for ``names``: the costly part of a build, and
        one that touches no decoder, so any thread may do it."""
        grammar = self._sources(sorted(names))
        return names, grammar, word_graph(grammar.jsgf, COMMAND_BODY)

    def _compile_ahead(self) -> None:
        """Worker thread: compile for the pending names until they stop changing."""
        while True:
            with self._lock:
                names = self._pending
                if names is None or (self._compiled is not None and self._compiled[0] == names):
                    return
            try:
                compiled = self._compile(names)
            except Exception as exc:  # the next request compiles it itself, and says why
                logger.warning("speech-to-phrase: grammar not compiled ahead: {}", exc)
                return
            with self._lock:
                self._compiled = compiled

    def _pend(self, names: frozenset[str]) -> None:
        """With the lock held: ``names`` go into the grammar before the next utterance,
        compiled from now on a worker thread."""
        self._pending = names
        if self._compiling is None or not self._compiling.is_alive():
            self._compiling = threading.Thread(
                target=self._compile_ahead, name="grammar", daemon=True
            )
            self._compiling.start()

    def _rebuild(self, fresh: bool = False) -> Grammar:
        """Install the grammar for the pending names (compiled ahead unless ``fresh``:
        what it is built from changed)."""
        with self._lock:
            names, self._pending = self._pending, None
            compiling = self._compiling
        if names is None:
            return self.grammar
        started = time.monotonic()
        if compiling is not None:
            compiling.join()  # nearly always done: it started when the timer was set
        with self._lock:
            compiled, self._compiled = self._compiled, None
        if fresh or compiled is None or compiled[0] != names:
            compiled = self._compile(names)
        _, grammar, graph = compiled
        self._add_words(grammar.words | set(WAKE_WORDS))  # words it lacks are skipped
        name_cost = dict.fromkeys(COMMON_TIMER_NAMES | names, NAME_COST)
        arcs, start, final = transitions(
            graph, self._loop_words, LOOP_ENTER, LOOP_WORD, LOOP_PREFIX, name_cost
        )
        self._decoder.add_fsg(SEARCH, self._decoder.create_fsg(SEARCH, start, final, arcs))
        self._decoder.activate_search(SEARCH)
        self.graph_size = (len(graph.arcs), graph.n_arcs)
        self._graph = graph
        self._names = names
        forget()
        if grammar.missing:
            logger.warning(
                "speech-to-phrase: left out sentences with words the dictionary lacks: {}",
                ", ".join(sorted(grammar.missing)),
            )
        self.build_ms = 1000 * (time.monotonic() - started)
        logger.debug("speech-to-phrase grammar built in {:.0f} ms", self.build_ms)
        return grammar

    def _add_words(self, words: Iterable[str]) -> None:
        """The grammar's words the decoder's dictionary does not hold yet."""
        new = sorted(set(words) - self._in_dictionary)
        add_words(self._decoder, entries(new))
        self._in_dictionary.update(new)

    def hold_timers(self, timers: dict[str, str | None]) -> None:
        """The timers there are, id -> name (at start: the ones restored). The grammar is
        rebuilt before the next utterance when it does not hold exactly their names."""
        with self._lock:
            self._timers = {key: name.lower() for key, name in timers.items() if name}
            names = frozenset(self._timers.values())
            if names != self._names:
                self._pend(names)

    def rebuild(self) -> None:
        """Build the grammar again now, from what its sources give now (the home's names
        changed). Between utterances only, on the thread that feeds the decoder."""
        with self._lock:
            if self._pending is None:
                self._pending = self._names
        self.grammar = self._rebuild(fresh=True)

    def observe(self, event: Event) -> None:
        """Event-bus observer: a timer set with a name the grammar lacks enters it before
        the next utterance. A name whose timer is gone leaves at the next rebuild, not
        at once: asking after a timer that just rang costs no rebuild."""
        if event.type != "timer":
            return
        action, key, name = (event.fields.get(k) for k in ("action", "id", "name"))
        with self._lock:
            if action == "set" and name:
                self._timers[str(key)] = str(name).lower()
            elif action in ("cancel", "ring", "missed"):
                self._timers.pop(str(key), None)
            names = frozenset(self._timers.values())
            if names - self._names:
                self._pend(names)

    def start(self) -> None:
        self._backlog.clear()
        if self._pending is not None:
            self.grammar = self._rebuild()
        self.out_of_grammar = False
        self._decoder.start_utt()

    def feed(self, pcm: bytes) -> None:
        """Decode ``pcm`` and, with it, up to ``CATCH_UP`` frames of the backlog first."""
        self._backlog.append(pcm)
        for _ in range(min(len(self._backlog), 1 + CATCH_UP)):
            self._decoder.process_raw(self._backlog.popleft(), False, False)

    def feed_later(self, pcm: bytes) -> None:
        """Audio from before listening began (the pre-roll): decoded a frame or two at a
        time with the frames that follow, so waking costs no burst of decoding."""
        self._backlog.append(pcm)

    def finish(self) -> str:
        started = time.perf_counter()
        while self._backlog:
            self._decoder.process_raw(self._backlog.popleft(), False, False)
        try:
            self._decoder.end_utt()
        except RuntimeError:  # finish without start: nothing was heard
            return ""
        hyp = self._decoder.hyp()
        words = hyp.hypstr.split() if hyp is not None else []
        self.finish_ms = 1000 * (time.perf_counter() - started)
        self.last_text = " ".join(w.lstrip(GARBAGE_PREFIX) for w in words)
        command = _command(words)
        self.out_of_grammar = bool(self.last_text) and not command
        if self.out_of_grammar:
            logger.info("speech-to-phrase: not a command ({!r})", self.last_text)
            return ""
        return " ".join(command or [])

    def partial_command(self) -> str | None:
        """The command heard so far, while listening: its words ("" before any), or None
        when what was heard is other speech. The decoder's best path up to now, so a
        request can end as soon as it holds a whole command."""
        try:
            hyp = self._decoder.hyp()
        except RuntimeError:
            return None
        command = _command(hyp.hypstr.split() if hyp is not None else [])
        return None if command is None else " ".join(command)

    def nearest(self, text: str) -> str | None:
        """The command sentence ``text`` (an open recognizer's transcript) is one slip
        away from (``recognize/nearest.py``), on the graph this recognizer decodes."""
        near = nearest(self._graph, text, COMMON_TIMER_NAMES | self._names)
        command = _command(near.split()) if near else None
        return " ".join(command) if command else None

    def reading(self, text: str) -> str | None:
        """The command sentence an open recognizer's transcript is: word for word (the
        wake phrase's words before it aside), or one slip away (``nearest``)."""
        words = _command(spoken(text))
        if words and self._graph.accepts(words):
            return " ".join(words)
        return self.nearest(text)

    def endings(self, command: str) -> Iterator[str] | None:
        """How a command that starts with ``command`` can go on in the grammar (each a
        run of words after which it may end), lazily; None when none starts so."""
        found = self._graph.endings(command.split())
        return None if found is None else (" ".join(words) for words in found)


def _command(words: list[str]) -> list[str] | None:
    """The command in a result: the words after the wake phrase's end (which the pre-roll
    holds); None when other speech is in it."""
    words = list(words)
    while words and (words[0].startswith(GARBAGE_PREFIX) or words[0] in WAKE_WORDS):
        words.pop(0)
    if any(w.startswith(GARBAGE_PREFIX) for w in words):
        return None
    return words
