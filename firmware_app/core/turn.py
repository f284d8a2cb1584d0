"""The dialogue turn: one exchange with the user, from the request to the last word of
its answer.

A turn is what the table's handlers (``core/assistant.py`` and the functions beside it:
``core/commands.py``, ``core/listening.py``, ``core/understanding.py``,
``core/speaking.py``, ``core/home_turns.py``) keep about the request under way (who
asked, the answer on its way, a question waiting, a follow-up, Home Assistant's run); it
is replaced as a whole when the turn ends, so nothing of one request leaks into the
next.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_app.core.messages import RequestId
from firmware_app.listen.segmenter import Transcript
from firmware_app.understand.actions import Question


@dataclass
class Turn:
    """One exchange with the user, from the request to the last word of its answer. The
    last reply is not part of it: "say that again" outlives the turn."""

    asker: RequestId = None
    """Who typed the request (a ``cmd/ask`` id): its reply and speech carry that id."""
    request: int = 0
    """The online model's request being answered (0: none)."""
    question: Question | None = None
    """A local question ("Which one?") waiting for its answer."""
    followup: bool = False
    """Listen again without the wake word after this reply."""
    opened_by: float | None = None
    """The wake (its time) that opened this request, so "that wasn't for me" can drop it."""
    run: int = 0
    """The Home Assistant pipeline run the request went to (0: the local brain answers)."""
    handed: bool = False
    """Speech ended and Home Assistant has the request: its answer is on its way."""
    heard: Transcript | None = None
    """What the speaker heard itself, answered here if Home Assistant does not answer."""

    def release(self) -> None:
        """Home Assistant is done with the request (answered, failed, gone or withdrawn)."""
        self.run, self.handed, self.heard = 0, False, None
