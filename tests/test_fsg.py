"""The command grammar as a minimal word graph: the same sentences, fewer states."""

from __future__ import annotations

from firmware_app.config.settings import Settings
from firmware_app.recognize.fsg import transitions, word_graph
from firmware_app.recognize.phrases import COMMAND_BODY
from firmware_app.recognize.stt import phrase_grammar_sources
from firmware_app.recognize.vocabulary_en import COMMON_TIMER_NAMES

SMALL = """#JSGF V1.0;
grammar t;
<n> = (one | two | three);
<unit> = (minute | minutes);
<c> = set a timer for <n> <unit> | start a timer for <n> <unit> | <n> <unit> timer [please];
"""


def sentences(graph, state=0, prefix=()):
    found = {" ".join(prefix)} if state in graph.finals else set()
    for word, nxt in graph.arcs[state].items():
        found |= sentences(graph, nxt, (*prefix, word))
    return found


def accepts(graph, text: str) -> bool:
    return graph.accepts(text.split())


def test_the_graph_holds_exactly_the_grammars_sentences() -> None:
    graph = word_graph(SMALL, "<c>")
    expected = {
        f"{verb} a timer for {n} {u}"
        for verb in ("set", "start")
        for n in ("one", "two", "three")
        for u in ("minute", "minutes")
    } | {f"{n} {u} timer{p}" for n in ("one", "two", "three") for u in ("minute", "minutes")
         for p in ("", " please")}  # fmt: skip
    assert sentences(graph) == expected


def test_a_list_used_twice_with_the_same_continuation_is_in_the_graph_once() -> None:
    graph = word_graph(SMALL, "<c>")
    numbers = [s for s, arcs in enumerate(graph.arcs) if "two" in arcs]
    # "set/start a timer for" merge before the number; "<n> <unit> timer" has its own
    assert len(numbers) == 2
    assert len(graph.arcs) <= 10


def test_the_command_grammar_graph_is_small_and_right() -> None:
    grammar = phrase_grammar_sources(Settings())(["laundry"])  # a laundry timer runs
    graph = word_graph(grammar.jsgf, COMMAND_BODY)
    assert len(graph.arcs) < 1000  # the JSGF copies its lists into tens of thousands
    for said in (
        "what time is it",
        "hey jarvis set a timer for five minutes",
        "set a pasta timer for ten minutes",
        "set a timer for an hour and a half",
        "cancel the laundry timer",
        "set the volume to thirty percent",
        "set a timer for a minute and a half",
        "set a timer for one hour and ten minutes",
        "set a timer for two and a half minutes",
        "set the volume at fifty percent",
    ):
        assert accepts(graph, said), said
    for not_said in ("set a timer for", "what time", "timer timer", "pasta"):
        assert not accepts(graph, not_said), not_said
    # durations as English says them only: noise in a pause was heard as these
    for not_said in (
        "set a timer for a hours forty five seconds",
        "set a timer for four hour twenty seconds",
        "set a timer for an minute",
        "set a timer for twelve hours three hours",  # from the larger unit to the smaller
        "set a timer for ten minutes two hours",
        "set soup timer for an hour and a half",  # a new timer's name after an article
    ):
        assert not accepts(graph, not_said), not_said


def test_other_speech_is_a_costly_loop_beside_the_commands() -> None:
    graph = word_graph(SMALL, "<c>")
    arcs, start, final = transitions(graph, ["_a", "_the"], enter=0.1, per_word=0.01)
    loop_words = [a for a in arcs if len(a) == 4 and a[3].startswith("_")]
    assert {a[3] for a in loop_words} == {"_a", "_the"}
    assert all(a[2] == 0.01 for a in loop_words)
    assert (start, final + 1, 0.1) in arcs  # entered from the start only
    assert (start, 0, 1.0) in arcs  # the commands, free
    assert all(a[2] == 1.0 for a in arcs if len(a) == 4 and not a[3].startswith("_"))


def decoder_accepts(arcs, start: int, final: int, text: str) -> bool:
    """Whether the decoder's transitions (null ones included, the loop left out) lead from
    the start through ``text`` to the final state."""
    words: dict[int, list[tuple[str, int]]] = {}
    empty: dict[int, list[int]] = {}
    for arc in arcs:
        if len(arc) == 4 and not arc[3].startswith("_"):
            words.setdefault(arc[0], []).append((arc[3], arc[1]))
        elif len(arc) == 3:
            empty.setdefault(arc[0], []).append(arc[1])

    def closure(states: set[int]) -> set[int]:
        todo, seen = list(states), set(states)
        while todo:
            for nxt in empty.get(todo.pop(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    states = closure({start})
    for word in text.split():
        states = closure({nxt for s in states for w, nxt in words.get(s, []) if w == word})
    return final in states


def test_lists_used_in_many_places_are_shared_without_changing_the_sentences() -> None:
    # every common name in use: the largest lists, in the most places
    grammar = phrase_grammar_sources(Settings())(sorted(COMMON_TIMER_NAMES))
    graph = word_graph(grammar.jsgf, COMMAND_BODY)
    arcs, start, final = transitions(graph, ["_a"], enter=0.1, per_word=0.01)
    word_arcs = [a for a in arcs if len(a) == 4 and not a[3].startswith("_")]
    assert len(word_arcs) < graph.n_arcs * 0.8  # the timer names, shared
    assert sum(a[3] == "pasta" for a in word_arcs) < 20  # in 65 states of the graph
    for said in (
        "what time is it",
        "set a pasta timer for ten minutes",
        "set a timer for two hours and a half named roast",
        "cancel the laundry timer",
        "how much time is left on the egg timer",
        "set the volume to thirty percent",
    ):
        assert accepts(graph, said) == decoder_accepts(arcs, start, final, said) is True, said
    for not_said in (
        "set a pasta timer for",
        "cancel the pasta pasta",
        "set the volume to pasta percent",
        "set a timer for ten pasta",
        "pasta timer pasta",
    ):
        assert accepts(graph, not_said) == decoder_accepts(arcs, start, final, not_said) is False


def test_one_word_of_other_speech_may_come_before_a_command_at_a_cost() -> None:
    graph = word_graph(SMALL, "<c>")
    arcs, start, _ = transitions(graph, ["_a", "_the"], 0.1, 0.01, prefix=0.001)
    assert {a for a in arcs if a[0] == start and len(a) == 4} == {
        (start, 0, 0.001, "_a"),
        (start, 0, 0.001, "_the"),
    }
    without, start, _ = transitions(graph, ["_a", "_the"], 0.1, 0.01)
    assert not [a for a in without if a[0] == start and len(a) == 4]


def test_words_given_a_cost_cost_it_wherever_they_are_in_the_graph() -> None:
    graph = word_graph(SMALL, "<c>")
    arcs, _, _ = transitions(graph, ["_a"], 0.1, 0.01, word_costs={"two": 0.01})
    twos = [a for a in arcs if len(a) == 4 and a[3] == "two"]
    assert len(twos) == 2  # after "for", and at the start of "<n> <unit> timer"
    assert all(a[2] == 0.01 for a in twos)
    assert all(a[2] == 1.0 for a in arcs if len(a) == 4 and a[3] in ("one", "three"))


def test_the_endings_of_a_start_are_every_way_it_can_go_on() -> None:
    graph = word_graph(SMALL, "<c>")
    endings = graph.endings(["two", "minutes"])
    assert endings is not None
    assert sorted(endings) == [("timer",), ("timer", "please")]
    started = graph.endings(["set", "a", "timer", "for"])
    assert started is not None
    assert {" ".join(e) for e in started} == {
        f"{n} {u}" for n in ("one", "two", "three") for u in ("minute", "minutes")
    }
    finished = graph.endings(["two", "minutes", "timer", "please"])
    assert finished is not None and list(finished) == []  # a sentence nothing may follow
    assert graph.endings(["set", "the", "timer"]) is None  # no sentence starts so
