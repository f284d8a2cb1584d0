"""Whether words heard so far already make a whole command.

While a request is open the command recognizer reports the command it has heard so far;
the request ends soon after a pause once those words are a command the assistant would act
on (a built-in intent or one of the user's), and may pause longer when they are only the
start of one ("set a timer for ...").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from firmware_app.config.settings import CustomIntent
from firmware_app.understand.actions import strip_wake_words
from firmware_app.understand.intents import normalize
from firmware_app.understand.intents.builtin import recognize_builtin
from firmware_app.understand.intents.custom import CustomIntents


def whole_command(specs: Sequence[CustomIntent]) -> Callable[[str], bool]:
    """A test for "these words are a command": the built-in sentences and ``specs``."""
    custom = CustomIntents(list(specs))

    def is_whole(text: str) -> bool:
        normalized = normalize(strip_wake_words(text))  # the pre-roll holds the wake's end
        return bool(normalized) and (
            recognize_builtin(normalized) is not None or custom.recognize(normalized) is not None
        )

    return is_whole


__all__ = ["whole_command"]
