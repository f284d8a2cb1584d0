"""Whether words heard so far already make a whole command, and what it asks.

While a request is open the command recognizer reports the command it has heard so far;
the request ends soon after a pause once those words are a command the assistant would act
on (a built-in intent or one of the user's), sooner still when nothing the grammar lets
follow would change what it asks, and may pause longer when they are only the start of
one ("set a timer for ...").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from firmware_app.config.settings import CustomIntent
from firmware_app.understand.actions import strip_wake_words
from firmware_app.understand.intents import Intent, normalize
from firmware_app.understand.intents.builtin import recognize_builtin
from firmware_app.understand.intents.custom import CustomIntents


def command_reader(specs: Sequence[CustomIntent]) -> Callable[[str], Intent | None]:
    """What words ask for, as the built-in sentences and ``specs`` read them (None: they
    are no command)."""
    custom = CustomIntents(list(specs))

    def read(text: str) -> Intent | None:
        normalized = normalize(strip_wake_words(text))  # the pre-roll holds the wake's end
        if not normalized:
            return None
        builtin = recognize_builtin(normalized)
        return builtin if builtin is not None else custom.recognize(normalized)

    return read


__all__ = ["command_reader"]
