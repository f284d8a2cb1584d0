"""Where the pre-roll ends in a pause after the wake phrase (the recognizer then waits for
the speech), and where it does not (all of it is heard at once)."""

from __future__ import annotations

import numpy as np

from firmware_app.core.messages import FRAME_SAMPLES
from firmware_app.listen.lead_in import pause_at_end

RNG = np.random.default_rng(7)


def frame(db: float) -> bytes:
    """80 ms of noise at ``db`` below full scale (-120: digital silence)."""
    if db <= -120:
        return bytes(2 * FRAME_SAMPLES)
    noise = RNG.standard_normal(FRAME_SAMPLES) * 32767 * 10 ** (db / 20)
    return np.clip(noise, -32768, 32767).astype("<i2").tobytes()


def test_a_pause_after_the_wake_phrase_is_all_that_is_heard() -> None:
    preroll = [frame(-10), frame(-12), frame(-14), frame(-60), frame(-70), frame(-120)]
    assert pause_at_end(preroll) == 3


def test_a_request_begun_inside_the_pre_roll_is_heard_whole() -> None:
    # the wake phrase, a short gap between words (80 ms), then the first word
    assert pause_at_end([frame(-10), frame(-12), frame(-60), frame(-15), frame(-16)]) == 0
    # a gap shorter than a pause at the very end: the next word may be under way
    assert pause_at_end([frame(-10), frame(-12), frame(-14), frame(-15), frame(-60)]) == 0


def test_in_a_noisy_room_the_pause_is_judged_against_the_room() -> None:
    room = -32.0  # 22 dB below the wake phrase: the room, not 30 dB of quiet
    preroll = [frame(room), frame(-10), frame(-12), frame(room), frame(room), frame(room)]
    assert pause_at_end(preroll) == 3
    # the wake phrase's fading end (12 dB above the room) is not the pause
    preroll = [frame(room), frame(-10), frame(-12), frame(-20), frame(room), frame(room)]
    assert pause_at_end(preroll) == 4


def test_a_room_too_loud_to_tell_pause_from_speech_keeps_it_all() -> None:
    preroll = [frame(-10), frame(-12), frame(-18), frame(-19), frame(-19)]
    assert pause_at_end(preroll) == 0


def test_nothing_to_judge() -> None:
    assert pause_at_end([]) == 0
    assert pause_at_end([frame(-120)] * 4) == 0  # no wake phrase in it: keep it all
