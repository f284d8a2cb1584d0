"""What local intents do: timers, volume, the time and date, custom home sentences.

Nothing here knows the state machine. `Actions.understand` finds what a request means
(the answer to a question asked, else a built-in or custom intent) and `Actions.act`
carries out one intent; both return an `Outcome`: what to say and what the assistant
itself has to change (volume, stop, repeat). A reply that asks something ("You have two
timers … Which one?") carries a `Question`; the assistant then listens for the answer
without the wake word and hands it back with the next request (`Actions.answer`), so "the
pasta one" finishes what "cancel the timer" started.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Protocol

from firmware_app.core.parts import HomePublish
from firmware_app.listen.segmenter import Transcript
from firmware_app.understand.intents import Intent, normalize
from firmware_app.understand.intents.builtin import recognize_builtin
from firmware_app.understand.intents.custom import CustomIntents
from firmware_app.understand.intents.numbers import parse_duration, spoken_duration
from firmware_app.understand.intents.sentences_en import WAKE_WORDS
from firmware_app.understand.timers import MAX_SECONDS, MAX_TIMERS, Timer, Timers

# What the speaker says. Fixed phrases are cached as audio.
NO_MODEL = "I can't understand speech yet. Install a speech model with: ttbt5 models pull."
NOT_HEARD = "Sorry, I didn't catch that."
UNKNOWN = "Sorry, I can't help with that yet."
NOTHING_SAID = "I haven't said anything yet."
HELP = (
    "I can tell you the time and the date, set, check and cancel timers, and change my "
    "volume. Try: set a timer for five minutes."
)
NO_TIMERS = "There's no timer running."
NO_HOME = "I can't reach your home right now: MQTT is not set up."
NO_SERVICE = "I can reach your home only while the assistant service is running."
FIXED_PHRASES = [NO_MODEL, NOT_HEARD, UNKNOWN, NO_TIMERS]
# What open questions need, and how to add it (for logs and ``ttbt5 transcribe``).
NEEDS = {
    "a speech model": "install one with 'ttbt5 models pull' (docs/speech.md)",
    "an LLM": "set llm.url (docs/llm.md)",
}
VOLUME_STEP = 10
_ALL_WORDS = {"all", "both", "every", "everything", "them"}
_NEVER_MIND = {"none", "neither", "nothing", "never mind", "nevermind", "forget it"}


class Emit(Protocol):
    def __call__(self, type_: str, /, **fields: object) -> None: ...


@dataclass(frozen=True)
class Question:
    """A local question waiting for its answer: which of these timers to cancel."""

    timer_ids: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    text: str | None
    """What to say (None: nothing)."""
    cache: bool = False
    """A phrase that repeats word for word: worth keeping as audio."""
    volume: int | None = None
    stop: bool = False
    repeat: bool = False
    question: Question | None = None


class Actions:
    def __init__(
        self,
        timers: Timers,
        custom: CustomIntents,
        emit: Emit,
        home_publish: HomePublish | None = None,
        no_home: str = NO_HOME,
    ) -> None:
        self.timers = timers
        self.custom = custom
        self._emit = emit
        self._home_publish = home_publish
        self._no_home = no_home
        """What to say when a home sentence cannot be sent (no publisher)."""

    def understand(
        self, text: str, question: Question | None, now: float, volume: int
    ) -> Outcome | None:
        """What a request means here, carried out: the answer to the question the last
        reply asked, else a built-in or custom intent (each told as an ``intent`` event);
        None when no local command matches it."""
        outcome = self.answer(question, text) if question is not None else None
        if outcome is not None:
            self._emit("intent", name="answer", slots={"text": text})
            return outcome
        words = normalize(text)
        intent = recognize_builtin(words) or self.custom.recognize(words)
        if intent is None:
            return None
        self._emit("intent", name=intent.name, slots=intent.slots)
        return self.act(intent, now, volume)

    def act(self, intent: Intent, now: float, volume: int) -> Outcome:
        """Carry out a local intent at wall-clock time ``now``."""
        name, slots = intent.name, intent.slots
        if name == "time":
            return Outcome(f"It's {clock_time(now)}.")
        if name == "date":
            local = time.localtime(now)
            return Outcome(f"Today is {time.strftime('%A, %B ', local)}{local.tm_mday}.")
        if name == "timer_set":
            return Outcome(self.set_timer(float(slots["seconds"]), slots.get("name"), now))
        if name == "timer_cancel":
            return self.cancel_timers(slots.get("name"), bool(slots.get("all")))
        if name == "timer_remaining":
            return Outcome(self.timers_left(slots.get("name"), now))
        if name in ("volume_up", "volume_down", "volume_set"):
            if name == "volume_set":
                level = int(slots["volume"])
            else:
                level = volume + (VOLUME_STEP if name == "volume_up" else -VOLUME_STEP)
            level = max(0, min(100, level))
            return Outcome(f"Volume {level} percent.", volume=level)
        if name == "stop":
            return Outcome(None, stop=True)
        if name == "repeat":
            return Outcome(None, repeat=True)
        if name == "help":
            return Outcome(HELP, cache=True)
        return self.home(intent)

    def home(self, intent: Intent) -> Outcome:
        action = self.custom.action(intent)
        if action is None:
            return Outcome(UNKNOWN, cache=True)
        topic, payload, reply = action
        if self._home_publish is None:
            return Outcome(self._no_home)
        try:
            self._home_publish(topic, payload)
        except Exception as exc:
            self._emit("error", where="intents", message=f"{intent.name}: {exc}")
            return Outcome("Sorry, I couldn't send that to your home.")
        return Outcome(reply)

    # --- timers
    def set_timer(self, seconds: float, name: str | None, now: float) -> str:
        if seconds < 1 or seconds > MAX_SECONDS:
            return "I can set timers from one second to twenty four hours."
        if len(self.timers.active()) >= MAX_TIMERS:
            return "You have too many timers. Cancel one first."
        same = [t for t in self.timers.active() if name and t.name == name]
        if same:  # two timers of one name could never be told apart again
            left = spoken_duration(max(1, round(self.timers.remaining(same[0]))))
            return (
                f"You already have a {name} timer, with {left} left. "
                "Cancel it first, or give the new one another name."
            )
        timer = self.timers.add(seconds, name, now)
        self._emit("timer", action="set", name=name, seconds=seconds, id=timer.id)
        what = f"{name.capitalize()} timer" if name else "Timer"
        return f"{what} set for {spoken_duration(seconds)}."

    def cancel_timers(self, name: str | None, everything: bool) -> Outcome:
        timers = self.timers.find(None if everything else name)
        if not timers:
            return Outcome(f"There's no {name} timer." if name else NO_TIMERS, cache=not name)
        if len(timers) > 1 and not everything and name is None:
            names = ", ".join(t.label() for t in timers)
            return Outcome(
                f"You have {len(timers)} timers: {names}. Which one?",
                question=Question(tuple(t.id for t in timers)),
            )
        return Outcome(self._cancel(timers))

    def _cancel(self, timers: list[Timer]) -> str:
        for timer in timers:
            self.timers.remove(timer)
            self._emit(
                "timer", action="cancel", name=timer.name, seconds=timer.seconds, id=timer.id
            )
        if len(timers) == 1:
            return f"{timers[0].label().capitalize()} cancelled."
        return f"{len(timers)} timers cancelled."

    def answer(self, question: Question, text: str) -> Outcome | None:
        """The answer to ``question``, or None when ``text`` is not one (then it is handled
        as a new request)."""
        words = normalize(text)
        if words in _NEVER_MIND or any(p in words for p in ("never mind", "forget it")):
            return Outcome("Okay.")
        candidates = [t for t in self.timers.active() if t.id in question.timer_ids]
        if not candidates:
            return Outcome(NO_TIMERS, cache=True)
        if set(words.split()) & _ALL_WORDS:
            return Outcome(self._cancel(candidates))
        chosen = [t for t in candidates if _mentions(words, t)]
        if len(chosen) == 1:
            return Outcome(self._cancel(chosen))
        return None

    def timers_left(self, name: str | None, now: float) -> str:
        timers = self.timers.find(name)
        if not timers:
            return f"There's no {name} timer." if name else NO_TIMERS
        parts = [
            f"{spoken_duration(max(1, round(self.timers.remaining(t))))} left on your {t.label()}"
            for t in timers[:4]
        ]
        text = "; ".join(parts) + "."
        return text[0].upper() + text[1:]


def _mentions(words: str, timer: Timer) -> bool:
    """Whether an answer names this timer: by its name ("the pasta one") or, for a timer
    without one, by its length ("the five minute one")."""
    if timer.name:
        return f" {timer.name} " in f" {words} "
    return parse_duration(words) == timer.seconds


def clock_time(epoch: float) -> str:
    """'3:05 PM': how people say the time (Piper reads it naturally)."""
    local = time.localtime(epoch)
    hour = local.tm_hour % 12 or 12
    suffix = "AM" if local.tm_hour < 12 else "PM"
    if local.tm_min == 0:
        return f"{hour} {suffix}"
    return f"{hour}:{local.tm_min:02d} {suffix}"


def missing_for_questions(open_speech: bool, llm: bool) -> list[str]:
    """What this configuration lacks to answer open questions."""
    return [need for need, have in zip(NEEDS, (open_speech, llm), strict=True) if not have]


def beyond_commands(open_speech: bool, llm: bool) -> str:
    """The reply to a request that is no command when nothing here can answer it. Short
    (under four seconds spoken), the same typed or spoken, and naming what open questions
    need that this configuration lacks: a speech model for open speech, an LLM, or both."""
    missing = missing_for_questions(open_speech, llm)
    if not missing:
        return UNKNOWN
    return f"Not a command. Questions need {' and '.join(missing)}."


def how_to_add(open_speech: bool, llm: bool) -> str:
    """Where to start for open questions, in full: for the log and the command line."""
    steps = [f"{need}: {NEEDS[need]}" for need in missing_for_questions(open_speech, llm)]
    return "for open questions, add " + "; ".join(steps) if steps else ""


def strip_wake_words(text: str) -> str:
    """Drop the wake phrase from the start of a request (the pre-roll holds its end, and
    people type it into ``ttbt5 ask`` as they would say it)."""
    words = text.split()
    while words and words[0].lower().strip(",.!?") in WAKE_WORDS:
        words.pop(0)
    return " ".join(words)


def without_wake_words(heard: Transcript) -> Transcript:
    """What the recognizer heard, its wake words dropped (no text: no speech model)."""
    if heard.text is None:
        return heard
    return replace(heard, text=strip_wake_words(heard.text))


__all__ = [
    "Actions",
    "Outcome",
    "Question",
    "beyond_commands",
    "clock_time",
    "how_to_add",
    "strip_wake_words",
    "without_wake_words",
]
