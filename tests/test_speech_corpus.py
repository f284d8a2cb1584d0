"""The English speech regression set: the short corpus through the whole assistant.

One voice of each family (Piper, espeak-ng US and British, flite kal, awb, rms and slt,
festival kal and slt) says a rotation of commands (after the wake word and a pause, in
one breath, with a pause inside), open questions and chatter, and "stop" and its near
misses alone; every request runs through ``simulate`` with the real openWakeWord,
Silero, speech-to-phrase and Piper (``speech_eval``).

The counts are the ones measured: a change to the grammar, the recognizer, the end of
a request, the wake word or the stop word that makes any of them worse fails here; a
count that gets better passes. When a change improves them, replace EXPECTED with the
new counts and say why in the commit (docs/speech.md has the figures of the larger sets
from scripts/bench_speech.py). The same set runs again with Whisper beside
speech-to-phrase, as on a board with Whisper pulled (EXPECTED_WITH_WHISPER).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import speech_corpus
import speech_eval

from firmware_app.config.settings import Settings

pytestmark = pytest.mark.slow

# Higher is better for these, lower for the rest.
MORE_IS_BETTER = {"woken", "right", "stop_heard"}
EXPECTED = {  # measured; see the module docstring
    "commands": 29,
    # The verifier's second look on openWakeWord's near misses wakes for four more (24
    # before): espeak-ng US "start a timer for twenty seconds" and festival kal "what's the
    # time" carried out right, flite awb "what day of the week is it" rejected, festival kal
    # "set a timer for ... two and a half minutes" in 10 dB noise heard as "forty two and
    # a half minutes" (wrong). With more requests heard, the recognizer's cepstral mean,
    # carried from request to request, moves too: espeak-ng US "repeat that" is now right,
    # festival slt "set a timer for ... an hour and a half" in 5 dB gains a "for fish"
    # (wrong). (Before the recognizer waited for speech after a pause, listen/lead_in.py,
    # it was 18 right, 5 rejected and 2 taken as a command.) With speech-to-phrase alone,
    # other speech may pause as long as the start of a command, so requests heard as
    # other speech run longer and the cepstral mean carried to the next request moves:
    # festival slt's "... an hour and a half" in 5 dB lost the "for fish" it was heard
    # with (wrong → right), espeak-ng US "repeat that" in 10 dB is rejected (right →
    # rejected); before, 3 wrong and 6 rejected. A question names only a timer there
    # is (a pasta timer runs while "how long until the pasta timer goes off" is asked;
    # no timer runs otherwise): flite rms's "when does the supermarket close" is no
    # longer "when does the soup timer finish" (taken as a command 1 → 0). The words
    # said after a request are no longer read as part of a duration: "set a timer for ten
    # minutes please", which the grammar always held, was no command to the matcher. The
    # same rule had turned away flite slt's chatter "Can you pass me the salt and the
    # pepper, please?", heard as "can you count three hours twelve minutes for me": now
    # a timer sentence with "for me" after it, taken (0 → 1).
    "woken": 28,
    "right": 19,
    "wrong": 2,
    "rejected": 7,
    "taken_as_command": 1,
    "cut_off": 0,
    "stop_heard": 4,
    "false_stops": 3,
}

# With Whisper tiny.en beside speech-to-phrase (stt.engine auto, the model pulled): what
# speech-to-phrase rejects goes to Whisper, which is told the kinds of command and the
# wake phrase beforehand (recognize/whisper.py, request_prompt), and Whisper checks the
# commands speech-to-phrase heard (recognize/hybrid.py). Before that check: 2 wrong, 1
# rejected, 1 taken; Whisper, sure of what it heard, turned one wrong action into a
# request that is no command, and the chatter taken for a timer into none.
EXPECTED_WITH_WHISPER = {
    "commands": 29,
    "woken": 28,
    "right": 25,
    "wrong": 1,
    "rejected": 2,
    "taken_as_command": 0,
    "cut_off": 0,
    "stop_heard": 4,
    "false_stops": 3,
}


def run_set(real_engines, data_dir, stt: dict[str, object]) -> list[speech_eval.Outcome]:
    """The regression set through the assistant with the recognizer ``stt`` configures."""
    from firmware_app.listen.stop_word import PocketsphinxStopSpotter
    from firmware_app.recognize.stt import load_transcriber

    missing = sorted({v.tag for v in speech_corpus.VOICES_CI if not speech_corpus.available(v)})
    if missing:  # the counts are for the whole set
        pytest.skip(f"voices not installed (scripts/setup.sh installs them): {missing}")
    items = list(speech_corpus.items("test"))
    # no warm-up synthesis at each run's start: it only costs time here
    settings = Settings(data_dir=data_dir, tts={"cache_entries": 0}, stt=stt)
    recognizer, problem, _ = load_transcriber(settings)
    assert recognizer is not None, problem
    engines = replace(real_engines, stt=recognizer)
    return speech_eval.run_all(engines, PocketsphinxStopSpotter(), items, settings)


@pytest.fixture(scope="module")
def outcomes(real_engines, tmp_path_factory):
    return run_set(real_engines, tmp_path_factory.mktemp("data"), {"engine": "phrases"})


def counts_of(outcomes: list[speech_eval.Outcome]) -> dict[str, int]:
    total = speech_eval.tally(outcomes)["all"]
    counts = {
        "commands": total.commands,
        "woken": total.woken,
        "right": total.right,
        "wrong": total.wrong,
        "rejected": total.rejected,
        "taken_as_command": total.taken_as_command,
        "cut_off": total.cut_off,
        "stop_heard": total.stop_heard,
        "false_stops": total.false_stops,
    }
    print(counts)
    return counts


def assert_no_worse(counts: dict[str, int], expected: dict[str, int]) -> None:
    assert counts["commands"] == expected["commands"]  # the set itself did not change
    worse = {
        key: (counts[key], expected[key])
        for key in expected
        if (counts[key] < expected[key] if key in MORE_IS_BETTER else counts[key] > expected[key])
    }
    assert not worse, f"worse than measured (now, expected): {worse}; all counts: {counts}"


def test_counts_on_the_regression_set(outcomes):
    assert_no_worse(counts_of(outcomes), EXPECTED)


def test_counts_with_whisper_beside(real_engines, tmp_path, whisper_model_dir):
    stt = {"engine": "auto", "model": str(whisper_model_dir)}
    assert_no_worse(counts_of(run_set(real_engines, tmp_path, stt)), EXPECTED_WITH_WHISPER)


def test_every_family_is_in_the_set(outcomes):
    families = {o.item.family for o in outcomes}
    assert len(families) >= 8, families
