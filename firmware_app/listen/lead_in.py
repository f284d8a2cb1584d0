"""The lead-in: how much of the audio before a request the recognizer hears.

The pre-roll (``wake.preroll_ms`` before the detection) is kept for a request said in one
breath with the wake phrase: a detector fires a few hundred milliseconds after the phrase
ends, and by then the first word may have begun. When the speaker paused after the wake
phrase instead, the pre-roll holds the end of the phrase and then that pause. The
recognizer gains nothing from the phrase (the grammar only absorbs it, and in a voice far
from the acoustic model it can sound like a command word), and the start of a request is
the dearest audio it decodes: every sentence of the grammar is still open there, so a
frame of silence costs it as much as a frame of speech.

So when the pre-roll ends in a pause, the recognizer waits for the speech: it hears the
last ``LEAD_S`` before the first frame the voice detector calls speech (which holds a quiet
first sound, a soft "s" of "set", that the detector judges a frame late), then the
request. When the pre-roll does not end in a pause, the request may have begun inside it
and all of it is heard at once, as before. Quiet is judged against the pre-roll itself
(its loudest frame is the wake phrase, its quietest the room), so the same rule holds at
any microphone gain and, with less to cut, in a noisy room.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from firmware_app.core.messages import FRAME_SECONDS, SAMPLE_RATE
from firmware_app.listen.level import rms

LEAD_S = 0.24
"""Audio heard before the first frame of speech: three 80 ms frames."""
PAUSE_MIN_S = 0.15
"""A pause this long ends the wake phrase: longer than the gaps inside a word or between
two words said in one breath (a stop consonant's closure, 50-100 ms)."""
QUIET_BELOW_PEAK_DB = 30.0
"""A frame this far below the wake phrase's loudest is quiet, however loud the room..."""
QUIET_ABOVE_FLOOR_DB = 6.0
"""...and so is one within this of the room's level (the quietest frame), in a loud room."""
CONTRAST_MIN_DB = 12.0
"""Quiet must be at least this far below the wake phrase, or the room is too loud to tell
a pause from a soft word: then all of the pre-roll is heard."""


def pause_at_end(frames: Sequence[bytes]) -> int:
    """Index of the first frame of the pause that ends the pre-roll, or 0 when it does not
    end in one at least ``PAUSE_MIN_S`` long (the request may have begun inside it)."""
    levels = [max(rms(pcm), 1.0) for pcm in frames]
    if not levels:
        return 0
    peak, floor = max(levels), min(levels)
    quiet = max(floor * _ratio(QUIET_ABOVE_FLOOR_DB), peak / _ratio(QUIET_BELOW_PEAK_DB))
    if quiet > peak / _ratio(CONTRAST_MIN_DB):
        return 0
    start, paused_s = len(frames), 0.0
    while start > 0 and levels[start - 1] <= quiet:
        start -= 1
        paused_s += len(frames[start]) / 2 / SAMPLE_RATE
    return start if paused_s >= PAUSE_MIN_S - 1e-9 else 0


def _ratio(db: float) -> float:
    return math.pow(10.0, db / 20.0)


class LeadIn:
    """The open request's frames the recognizer has not heard yet, while it waits for
    speech: at most ``LEAD_S`` before the frame being heard, the older ones let go."""

    def __init__(self) -> None:
        self._held: deque[bytes] = deque(maxlen=round(LEAD_S / FRAME_SECONDS) + 1)
        self.waiting = False

    def begin(self, preroll: Sequence[bytes]) -> Sequence[bytes]:
        """A request opens after ``preroll``: what of it to hear now. All of it when it does
        not end in a pause; none when it does (the pause is held), nor when there is none
        (a request opened by the button or a follow-up): then the recognizer waits."""
        self._held.clear()
        pause = pause_at_end(preroll)
        self.waiting = pause > 0 or not preroll
        if not self.waiting:
            return preroll
        self._held.extend(preroll[pause:])
        return ()

    def hold(self, pcm: bytes) -> bool:
        """Keep ``pcm`` back while waiting (True); False: hear it now."""
        if self.waiting:
            self._held.append(pcm)
        return self.waiting

    def release(self) -> list[bytes]:
        """Speech began: the frames held, to hear now; nothing more is held."""
        held = list(self._held)
        self.end()
        return held

    def end(self) -> None:
        self._held.clear()
        self.waiting = False


__all__ = ["LEAD_S", "PAUSE_MIN_S", "LeadIn", "pause_at_end"]
