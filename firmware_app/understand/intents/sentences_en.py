"""The built-in English sentences, in Home Assistant's sentence-template format.

One source of truth for two jobs: ``hassil`` matches transcripts against them
(``understand/intents/matcher.py``) and the speech-to-phrase recognizer compiles them into its
grammar (``recognize/grammar.py``), so every sentence here can be both understood and heard.

Syntax (Home Assistant's): ``(a|b)`` alternatives, ``[optional]``, ``{list}`` slot values,
``<rule>`` expansion rules, ``(a;b)`` either order. Wildcard lists (``duration``,
``name``) match any words in text and are checked afterwards (a duration must read as one,
a timer name holds no numbers); the recognizer's grammar replaces them with closed word
lists (spoken durations, common and in-use timer names).

Many sentences, rules and skip words below are taken or adapted from Home Assistant's
English intents (https://github.com/OHF-Voice/intents, sentences under CC-BY-4.0,
credited in NOTICE): ``<what_is>``, ``<timer_set>``, ``<timer_cancel>``, ``<the>``,
``<numeric_value_set>``, the time, date, timer status and cancel sentences, "never mind"
and "what can I say".
"""

from __future__ import annotations

from typing import Any

# Words said around a request that change nothing (the matcher drops them anywhere;
# the recognizer's grammar allows them before and after every sentence).
SKIP_WORDS = [
    "please",
    "can you",
    "could you",
    "would you",
    "will you",
    "for me",
    "i'd like",
    "i'd like to",
    "i want",
    "i want to",
    "i need",
    "i need to",
    "i would like",
    "i would like to",
    "do you know",
    "kindly",
    "thanks",
    "thank you",
    "hey",
    "okay",
    "ok",
    "um",
    "uh",
    "so",
    "just",
    "now",
    "right now",
    "quickly",
]

# What the recognizer's grammar allows before and after every sentence.
LEADING = "[please|okay|so|(can|could|would|will) you [please]|i'd like [to]|i (want|need) [to]]"
# Said after a request; the matcher's wildcards (a duration) may otherwise hold them.
TRAILING_WORDS = ("please", "for me", "thanks", "thank you", "now")
TRAILING = "[" + "|".join(TRAILING_WORDS) + "]"
# The words of the shipped wake phrases: the pre-roll holds a phrase's end, and people
# type the phrase into ``ttbt5 ask`` as they say it, so a request may start with them.
WAKE_WORDS = ("hey", "hi", "ok", "okay", "jarvis", "alexa", "mycroft", "nabu", "rhasspy")

EXPANSION_RULES: dict[str, str] = {
    "what_is": "(what's|whats|what is|tell me)",
    "the": "(the|my|our)",
    "timer_set": "(start|set|create|make|put [on]|give me|get me|add|setup|set up)",
    "timer_cancel": "(cancel|stop|delete|remove|clear|end|kill|turn off|switch off|silence)",
    "numeric_value_set": "(set|change|turn [(up|down)]|put|make)",
    "a": "[a|an|the|my|another|one more]",
    # Before a timer's name the article is said ("set a pasta timer"): without it, "set a
    # timer" and "start a timer" were heard as "set soup timer" and "pasta timer".
    "a_named": "(a|an|the|my|another|one more)",
    "timer": "(timer|countdown)",
    "timers": "(timers|countdowns)",
    "left": "(left|remaining|to go)",
    "how_long": "(how (much|long) [longer|more] [time] | how many (minutes|seconds|hours) [more])",
    "volume": "(volume|sound|speaker|voice)",
    "louder": "(louder|up|higher|more loud)",
    "quieter": "(quieter|softer|down|lower|less loud)",
    "max": "(max|maximum|full|top|highest|loudest|all the way up)",
    "min": "(min|minimum|lowest|quietest|all the way down)",
    "bit": "[a [little] bit|a little|some|slightly|more]",
    "it": "(it|the volume|the sound|the music|yourself|your voice|the speaker)",
    "today": "(today|right now|now)",
}

INTENTS: dict[str, list[str]] = {
    "time": [
        "<what_is> the [current] time [<today>]",
        "what time is it [<today>]",
        "[tell me|do you know] what time it is [<today>]",
        "[what's|what is] the time [<today>]",
        "time [<today>|please]",
        "(have|got) [you got] the time",
        "do you have the time",
        "(tell|give) me the time",
        "what's the time [<today>]",
        "what time do you have",
        "what hour is it",
        "current time",
    ],
    "date": [
        "<what_is> (todays|today's|the current) date",
        "<what_is> the date [today]",
        "what (day|date) is (it|today) [today]",
        "what day of the (week|month) is (it|today) [today]",
        "which day is (it|today) [today]",
        "what's today",
        "what is today",
        "<what_is> today's date",
        "(today's|todays|the) date",
        "what is the day [today]",
        "what's the day [today]",
        "what month is it",
        "what is the date today",
    ],
    "timer_set": [
        "<timer_set> <a> [new] <timer> [on] (for|of|on|to) {duration}",
        "<timer_set> <a_named> {name} <timer> [on] (for|of|on|to) {duration}",
        "<timer_set> <a> <timer> (for|of|on) {duration} (called|named|for [the|my|a]) {name}",
        "<timer_set> <a> {duration} <timer>",
        "<timer_set> <a> <timer> (called|named) {name} (for|of|on) {duration}",
        "<timer_set> {duration} (on|for) <a_named> {name} <timer>",
        "<timer_set> {duration} on the <timer>",
        "[<a>] <timer> [for|of] {duration}",
        "[<a>] <timer> (for|of) {duration} (called|named|for) {name}",
        "[<a>] {duration} <timer>",
        "(a|an) {name} <timer> (for|of) {duration}",
        "(remind|wake|tell|alert|ping) me [up] in {duration}",
        "(count|countdown) {duration}",
        "count down [from] {duration}",
        "time {duration} [for me]",
        "(let me know|tell me) when {duration} (have|has) passed",
    ],
    "timer_cancel_all": [
        "<timer_cancel> all [[of ](the|my)] <timers>",
        "<timer_cancel> (the|my) <timers>",
        "<timer_cancel> every <timer>",
        "<timer_cancel> (both|all) [of] (the|my) <timers>",
        "<timer_cancel> (both|all) <timers>",
    ],
    "timer_cancel": [
        "<timer_cancel> [the|my|that|this] <timer>",
        "<timer_cancel> [the|my] {name} <timer>",
        "<timer_cancel> [the|my] <timer> (named|called|for [the]) {name}",
        "(i don't need|forget) [the|my|that] <timer> [anymore]",
        "(i don't need|forget) [the|my] {name} <timer> [anymore]",
        "(never mind|nevermind) [the|my|that] <timer>",
        "(never mind|nevermind) [the|my] {name} <timer>",
    ],
    "timer_remaining": [
        "<how_long> [is|are] <left> [(on|for|in) [the|my] (<timer>|<timers>)]",
        "<how_long> [is|are] <left> (on|for|in) [the|my] {name} <timer>",
        "<how_long> (is|has) [the|my] <timer> [got] <left>",
        "<how_long> (is|has) [the|my] {name} <timer> [got] <left>",
        "<how_long> [is|are] <left> (on|for|in) [the|my] {name}",
        "<how_long> (for|on|until) [the|my] {name}",
        "<how_long> [do|does] (i|we) have [<left>] [on [the|my] <timer>]",
        "<how_long> until [the|my] <timer> (goes off|rings|is done|ends|finishes)",
        "<how_long> until [the|my] {name} <timer> (goes off|rings|is done|ends|finishes)",
        "how (is|are) [the|my] (<timer>|<timers>) (doing|going)",
        "how is [the|my] {name} <timer> (doing|going)",
        "[how much] time [is] <left> on [the|my] (<timer>|<timers>)",
        "[how much] time [is] <left> on [the|my] {name} <timer>",
        "[what is the] time <left>",
        "status of [the|my] (<timer>|<timers>)",
        "status of [the|my] {name} (<timer>|<timers>)",
        "(<timer>|<timers>) status",
        "{name} <timer> status",
        "(check|list) [on] [the|my|all] (<timer>|<timers>)",
        "check [on] [the|my] {name} <timer>",
        "(what's|what is|what are) [on] [the|my] (<timer>|<timers>)",
        "(what's|what is|what) [left] on [the|my] {name} <timer>",
        "(any|do i have any|are there any) <timers> [(running|set|on|going)]",
        "(what|which) <timers> (do i have|are (running|set|on|going)) [<today>]",
        "is [the|my] <timer> (running|still running|done|finished)",
        "is [the|my] {name} <timer> (running|still running|done|finished)",
        "when (will|does) [the|my] <timer> (go off|ring|end|finish)",
        "when (will|does) [the|my] {name} <timer> (go off|ring|end|finish)",
    ],
    "volume_max": [
        "<max> volume",
        "[(set|turn|put)] [the] volume (to|at|on) [the] <max>",
        "turn [it|the volume] all the way up",
        "as loud as (you can|possible)",
        "turn <it> (up|to the) <max>",
        "volume <max>",
        "(set|turn|put) (it|the volume) to <max>",
    ],
    "volume_min": [
        "<min> volume",
        "[(set|turn|put)] [the] volume (to|at|on) [the] <min>",
        "turn [it|the volume] all the way down",
        "as quiet as (you can|possible)",
        "volume <min>",
        "(set|turn|put) (it|the volume) to <min>",
    ],
    "volume_set": [
        "<numeric_value_set> [the] <volume> (to|at) {volume}[([ ]%)| percent]",
        "[the] <volume> (to|at) {volume}[([ ]%)| percent]",
        "volume {volume}[([ ]%)| percent]",
        "make it {volume} percent",
        "{volume} percent volume",
    ],
    "volume_up": [
        "<volume> up <bit>",
        "(turn|crank|pump) up [<it>] <bit>",
        "(turn|crank|pump) <it> up <bit>",
        "(increase|raise) [the] <volume> <bit>",
        "(make|can) it <louder> <bit>",
        "make (it|your voice|the sound|the music) <louder> <bit>",
        "[a little|a bit|slightly] louder [please]",
        "(speak|talk) (up|louder) <bit>",
        "be louder",
        "i can't hear you",
        "(it's|that's|you're) too quiet",
        "more volume",
        "louder",
    ],
    "volume_down": [
        "<volume> down <bit>",
        "turn down [<it>] <bit>",
        "turn <it> down <bit>",
        "(decrease|lower|reduce) [the] <volume> <bit>",
        "make (it|your voice|the sound|the music) <quieter> <bit>",
        "[a little|a bit|slightly] (quieter|softer)",
        "(speak|talk) (more quietly|softer|quieter) <bit>",
        "be quieter",
        "(it's|that's|you're) too loud",
        "less volume",
        "not so loud",
    ],
    "stop": [
        "stop [it|that|talking|speaking|the alarm|ringing]",
        "(cancel|never mind|nevermind|forget it|forget about it|no thanks)",
        # Not "quiet", "shh" or "hush" alone: the recognizer made them of noise and of
        # other requests ("set a timer for five minutes" in a pause, "make it quieter").
        "(be quiet|shut up|silence|enough|that's enough|that will do|that's all)",
        "stop it",
    ],
    "repeat": [
        "repeat [that|it|what you said|yourself|the last thing|please]",
        "(say|tell me) (that|it) again",
        "what did you (say|just say)",
        "(come again|pardon|pardon me|excuse me|sorry what|[sorry] what was that)",
        "i didn't (hear|catch) (that|you|it)",
        "one more time",
        "(could|can) you say that again",
        "(tell me|say) again",
    ],
    "help": [
        "help [me]",
        "what can you do [for me]",
        "what (do|are) you (do|able to do|good at)",
        "what can (i|we) (say|ask) [you]",
        "what (commands|things) (do you (know|understand)|can i (say|use))",
        "how (does this work|do i use you|do you work)",
        "i need help",
        "(what|which) (commands|things) can you (do|understand)",
    ],
}

# Answers to "You have two timers: pasta and eggs. Which one?" A bare name ("pasta") is
# matched in code against the timers listed; the recognizer's grammar holds it alone only
# for timers in use, where any common name would otherwise pass for a command.
FOLLOWUP_INTENTS: dict[str, list[str]] = {
    "timer_choice_all": [
        "[<timer_cancel>] (all|both|everything) [of them|timers|the timers]",
        "every one",
    ],
    "timer_choice_none": [
        "(neither|none [of them]|never mind|nevermind|nothing|no|keep them|forget it)",
    ],
    "timer_choice": [
        "[<timer_cancel>] the {name} [one|<timer>]",
        "[<timer_cancel>] [my] {name} (one|<timer>)",
        "<timer_cancel> [my] {name}",
        "[<timer_cancel>] [the|my] one (for|called|named) [the] {name}",
        "[<timer_cancel>] [the|my] <timer> (for|called|named) [the] {name}",
        "(it's|it is|that's) the {name} [one|<timer>]",
    ],
}

LISTS: dict[str, Any] = {
    "duration": {"wildcard": True},
    "name": {"wildcard": True},
    "volume": {"range": {"from": 0, "to": 100}},
}


def intents_dict(intents: dict[str, list[str]]) -> dict[str, Any]:
    """The templates as the document ``hassil.Intents.from_dict`` reads."""
    return {
        "language": "en",
        "intents": {name: {"data": [{"sentences": s}]} for name, s in intents.items()},
        "lists": LISTS,
        "expansion_rules": EXPANSION_RULES,
        "skip_words": SKIP_WORDS,
    }
