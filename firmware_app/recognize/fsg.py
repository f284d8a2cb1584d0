"""The command grammar as a small word graph: determinized and minimized before decoding.

pocketsphinx compiles a JSGF grammar by copying every rule into each place that refers to
it: the spoken durations into each of the 17 timer sentences that take one, the timer
names into 30, and the sixteen ways to start "set a timer" side by side. Every copy is
searched on every frame, so the decoder hunts for "set" sixteen times over and keeps 80 MB
of search graph. Here the grammar is turned into the equivalent deterministic graph with
the fewest states (sentences that start alike share their start, sentences that end alike
their end, so a list sits in the graph about once per different continuation), and that
graph is handed to the decoder as it is.

The grammar text is the small JSGF subset ``grammar.py`` writes: words, ``( | )``,
``[ ]``, ``<rule>`` references and ``/weight/`` alternatives (weights are ignored here;
the free-speech loop is added with its own probabilities by the caller).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from firmware_app.core.errors import BadInputError

_TOKEN = re.compile(r"\s*(<[^>]+>|/[^/]+/|[()\[\]|+]|[^\s()\[\]|+<>/;]+)")


@dataclass
class _Nfa:
    eps: list[list[int]] = field(default_factory=list)
    arcs: list[list[tuple[str, int]]] = field(default_factory=list)

    def state(self) -> int:
        self.eps.append([])
        self.arcs.append([])
        return len(self.eps) - 1


def parse_rules(jsgf: str) -> dict[str, str]:
    """``<name> = body;`` lines of a grammar (``public`` or not) → {name: body}."""
    rules = {}
    for line in jsgf.splitlines():
        found = re.match(r"\s*(?:public\s+)?<([^>]+)>\s*=\s*(.*);\s*$", line)
        if found:
            rules[found.group(1)] = found.group(2)
    return rules


class _Builder:
    def __init__(self, rules: dict[str, str]) -> None:
        self.rules = rules
        self.nfa = _Nfa()
        self._depth = 0

    def build(self, body: str, start: int) -> int:
        """States for ``body`` from ``start``; returns its end state."""
        tokens = _TOKEN.findall(body)
        pos, end = self._alternatives(tokens, 0, start)
        if pos != len(tokens):
            raise BadInputError(f"grammar: unexpected {tokens[pos]!r} in {body[:60]!r}")
        return end

    def _alternatives(self, tokens: list[str], pos: int, start: int) -> tuple[int, int]:
        end = self.nfa.state()
        while True:
            if pos < len(tokens) and tokens[pos].startswith("/"):
                pos += 1  # a weight: the graph holds no preferences between commands
            pos, last = self._sequence(tokens, pos, start)
            self.nfa.eps[last].append(end)
            if pos < len(tokens) and tokens[pos] == "|":
                pos += 1
                continue
            return pos, end

    def _sequence(self, tokens: list[str], pos: int, start: int) -> tuple[int, int]:
        state = start
        while pos < len(tokens) and tokens[pos] not in ("|", ")", "]"):
            pos, state = self._item(tokens, pos, state)
        return pos, state

    def _item(self, tokens: list[str], pos: int, start: int) -> tuple[int, int]:
        token = tokens[pos]
        if token in ("(", "["):
            inner_start = self.nfa.state()
            self.nfa.eps[start].append(inner_start)
            pos, end = self._alternatives(tokens, pos + 1, inner_start)
            close = ")" if token == "(" else "]"
            if pos >= len(tokens) or tokens[pos] != close:
                raise BadInputError(f"grammar: {close} missing")
            if token == "[":
                self.nfa.eps[start].append(end)
            pos += 1
        elif token.startswith("<"):
            name = token[1:-1]
            if name not in self.rules or self._depth > 20:
                raise BadInputError(f"grammar: rule <{name}> is not defined (or recursive)")
            self._depth += 1
            end = self.build(self.rules[name], start)
            self._depth -= 1
            pos += 1
        elif token == "+":
            raise BadInputError("grammar: loops belong outside the command graph")
        else:
            end = self.nfa.state()
            self.nfa.arcs[start].append((token, end))
            pos += 1
        return pos, end


@dataclass(frozen=True)
class WordGraph:
    """A deterministic word graph: ``arcs[s]`` maps a word to the next state; state 0
    starts; ``finals`` may end."""

    arcs: list[dict[str, int]]
    finals: frozenset[int]

    @property
    def n_arcs(self) -> int:
        return sum(len(a) for a in self.arcs)

    def follow(self, words: Iterable[str], state: int = 0) -> int | None:
        """The state ``words`` lead to from ``state``; None when they leave the graph."""
        for word in words:
            found = self.arcs[state].get(word)
            if found is None:
                return None
            state = found
        return state

    def accepts(self, words: Iterable[str], state: int = 0) -> bool:
        """Whether ``words`` from ``state`` end a sentence."""
        return self.follow(words, state) in self.finals

    def endings(self, words: Sequence[str]) -> Iterator[tuple[str, ...]] | None:
        """The ways a sentence that starts with ``words`` can go on (each one a non-empty
        run of words after which it may end), found lazily, depth first, so a caller that
        looks only for one it dislikes stops early; None when no sentence starts so."""
        state = self.follow(words)
        return None if state is None else self._walk(state)

    def _walk(self, state: int) -> Iterator[tuple[str, ...]]:
        stack: list[tuple[int, tuple[str, ...]]] = [(state, ())]
        while stack:
            here, path = stack.pop()
            if path and here in self.finals:
                yield path
            stack += [(nxt, (*path, word)) for word, nxt in self.arcs[here].items()]


def _closure(nfa: _Nfa, states: Iterable[int], memo: dict[int, frozenset[int]]) -> frozenset[int]:
    out: set[int] = set()
    for s in states:
        if s not in memo:
            seen, stack = {s}, [s]
            while stack:
                for nxt in nfa.eps[stack.pop()]:
                    if nxt not in seen:
                        seen.add(nxt)
                        stack.append(nxt)
            memo[s] = frozenset(seen)
        out |= memo[s]
    return frozenset(out)


def determinize(nfa: _Nfa, start: int, final: int) -> WordGraph:
    memo: dict[int, frozenset[int]] = {}
    first = _closure(nfa, [start], memo)
    index = {first: 0}
    todo = [first]
    arcs: list[dict[str, int]] = [{}]
    finals = set()
    while todo:
        current = todo.pop()
        here = index[current]
        if final in current:
            finals.add(here)
        moves: dict[str, set[int]] = {}
        for s in current:
            for word, nxt in nfa.arcs[s]:
                moves.setdefault(word, set()).add(nxt)
        for word, targets in moves.items():
            target = _closure(nfa, targets, memo)
            if target not in index:
                index[target] = len(arcs)
                arcs.append({})
                todo.append(target)
            arcs[here][word] = index[target]
    return WordGraph(arcs, frozenset(finals))


def minimize(graph: WordGraph) -> WordGraph:
    """The equivalent graph with the fewest states. The graph is acyclic (a finite set of
    sentences), so states are merged by their right language, from the ends backwards."""
    order: list[int] = []
    seen: set[int] = set()
    for root in range(len(graph.arcs)):  # iterative post-order
        if root in seen:
            continue
        stack = [(root, iter(graph.arcs[root].values()))]
        seen.add(root)
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in seen:
                    seen.add(child)
                    stack.append((child, iter(graph.arcs[child].values())))
                    break
            else:
                stack.pop()
                order.append(node)
    klass: dict[int, int] = {}
    signatures: dict[tuple[object, ...], int] = {}
    for node in order:  # children before parents
        sig = (
            node in graph.finals,
            tuple(sorted((w, klass[t]) for w, t in graph.arcs[node].items())),
        )
        klass[node] = signatures.setdefault(sig, len(signatures))
    # renumber so the start is 0
    new_id = {klass[0]: 0}
    for node in range(len(graph.arcs)):
        new_id.setdefault(klass[node], len(new_id))
    arcs: list[dict[str, int]] = [{} for _ in new_id]
    finals = set()
    for node in range(len(graph.arcs)):
        here = new_id[klass[node]]
        arcs[here] = {w: new_id[klass[t]] for w, t in graph.arcs[node].items()}
        if node in graph.finals:
            finals.add(here)
    return WordGraph(arcs, frozenset(finals))


def word_graph(jsgf: str, body: str) -> WordGraph:
    """The minimal deterministic graph of ``body`` (e.g. ``[<wake>] <command>``) with the
    rules of ``jsgf`` (acyclic rules only)."""
    builder = _Builder(parse_rules(jsgf))
    start = builder.nfa.state()
    end = builder.build(body, start)
    return minimize(determinize(builder.nfa, start, end))


Transition = tuple[int, int, float] | tuple[int, int, float, str]
SHARED_LIST_MIN = 30
"""Shorter lists stay where they are (the numbers): sharing them too halves the search
graph but changes how the search prunes, and one command of the speech regression set
(tests/test_speech_corpus.py) was then lost; the timer names (and one list of 61 words
that start commands) alone keep every count."""


def shared_lists(graph: WordGraph) -> tuple[list[dict[str, int]], list[tuple[int, int]]]:
    """Each list the graph holds in many places, searched once per place it leads to.

    Minimizing merges states with the same continuation, but a list still sits in the
    graph once per different *context*: the 37 common timer names in 65 states that lead
    on to only 16 different places. Words that occur in exactly the same states are taken
    as one list; the states where such a list leads each word to the same place get one
    shared hub holding the list, entered by an empty (null) transition. The sentences are
    exactly the same, and the decoder's search tree (one per state, and most of the
    recognizer's memory) holds each list 16 times instead of 65: 62,000 nodes instead
    of 79,000, 5 MB less. Lists shorter than ``SHARED_LIST_MIN`` are left in place.

    Returns the arcs left in each state of ``graph`` and the hubs' arcs, and the null
    transitions (state, hub index)."""
    arcs = [dict(a) for a in graph.arcs]
    where: dict[str, set[int]] = {}
    for state, out in enumerate(arcs):
        for word in out:
            where.setdefault(word, set()).add(state)
    lists: dict[frozenset[int], list[str]] = {}
    for word, found_in in where.items():
        lists.setdefault(frozenset(found_in), []).append(word)
    hubs: list[dict[str, int]] = []
    entries: list[tuple[int, int]] = []
    for states, words in lists.items():
        if len(words) < SHARED_LIST_MIN or len(states) < 2:
            continue
        words.sort()
        alike: dict[tuple[int, ...], list[int]] = {}
        for state in sorted(states):
            alike.setdefault(tuple(arcs[state][w] for w in words), []).append(state)
        for targets, members in alike.items():
            if len(members) < 2:  # nothing to share
                continue
            for state in members:
                for word in words:
                    del arcs[state][word]
                entries.append((state, len(hubs)))
            hubs.append(dict(zip(words, targets, strict=True)))
    return arcs + hubs, entries


def transitions(
    graph: WordGraph,
    loop_words: list[str],
    enter: float,
    per_word: float,
    prefix: float = 0.0,
    word_costs: Mapping[str, float] | None = None,
) -> tuple[list[Transition], int, int]:
    """The decoder's transitions for ``graph`` (its lists shared, ``shared_lists``) beside
    a loop of ``loop_words`` (other speech), entered from the start with probability
    ``enter``, each word of it costing ``per_word``: the longer other speech is, the more
    it must sound unlike a command to win. With ``prefix``, one of the loop words may come
    before a command at that cost: the end of the wake phrase or a breath, however the
    speaker's voice makes it sound. ``word_costs`` gives some command words a probability
    below 1: words that are easily heard where nothing was said (a short timer name).
    Returns the transitions, the start state and the one final state."""
    costs = word_costs or {}
    final = len(graph.arcs)
    loop, after, start = final + 1, final + 2, final + 3
    states, entries = shared_lists(graph)

    def number(state: int) -> int:  # hubs come after the final, loop and start states
        return state if state < final else state + 4

    found: list[Transition] = [(start, 0, 1.0)]
    for state, arcs in enumerate(states):
        found += [(number(state), nxt, costs.get(word, 1.0), word) for word, nxt in arcs.items()]
    found += [(state, number(final + hub), 1.0) for state, hub in entries]
    found += [(state, final, 1.0) for state in sorted(graph.finals)]
    if loop_words:
        found.append((start, loop, enter))
        found += [(loop, after, per_word, word) for word in loop_words]
        found += [(after, loop, 1.0), (after, final, 1.0)]
        if prefix > 0:
            found += [(start, 0, prefix, word) for word in loop_words]
    return found, start, final
