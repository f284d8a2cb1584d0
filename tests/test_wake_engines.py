"""Both wake engines with their real models, the peak picking they share, and the choice
of engine and threshold per model."""

from __future__ import annotations

import numpy as np
import pytest
from audio_helpers import conversation
from pydantic import ValidationError
from wake_corpus import Stream
from wake_eval import run, trace

from firmware_app.config.settings import WakeSettings
from firmware_app.core.engines import Detection
from firmware_app.listen.micro_wake import MICROWAKEWORD_THRESHOLDS, MicroWake
from firmware_app.listen.wake import (
    OPENWAKEWORD_THRESHOLDS,
    OpenWakeWord,
    PeakPicker,
)
from firmware_app.listen.wake_engines import WakeEngines, build_wake_detector


def picks(picker: PeakPicker, rows: list[dict[str, float]]) -> list[tuple[int, Detection]]:
    found = [(i, picker.update(row)) for i, row in enumerate(rows)]
    return [(i, d) for i, d in found if d is not None]


def test_detection_carries_the_peak_not_the_first_score_over():
    picker = PeakPicker({"a": 0.5}, refractory_frames=0)
    rows = [{"a": s} for s in (0.1, 0.55, 0.8, 0.93, 0.7, 0.2)]
    assert picks(picker, rows) == [(4, Detection("a", 0.93))]  # reported when it falls


def test_a_score_that_keeps_rising_is_reported_after_the_hold():
    picker = PeakPicker({"a": 0.5}, refractory_frames=0, hold_frames=2)
    rows = [{"a": s} for s in (0.6, 0.7, 0.8, 0.9, 0.95)]
    assert picks(picker, rows)[0] == (2, Detection("a", 0.8))


def test_one_utterance_wakes_once_across_models():
    picker = PeakPicker({"a": 0.5, "b": 0.5}, refractory_frames=3)
    rows = [{"a": 0.9, "b": 0.1}, {"a": 0.6, "b": 0.2}] + [{"a": 0.1, "b": 0.9}] * 3
    rows += [{"a": 0.1, "b": 0.1}, {"a": 0.1, "b": 0.8}, {"a": 0.1, "b": 0.1}]
    assert picks(picker, rows) == [(1, Detection("a", 0.9)), (7, Detection("b", 0.8))]


def test_each_model_has_its_own_threshold():
    picker = PeakPicker({"a": 0.9, "b": 0.3}, refractory_frames=0)
    rows = [{"a": 0.8, "b": 0.1}, {"a": 0.1, "b": 0.1}, {"a": 0.1, "b": 0.4}, {"a": 0, "b": 0}]
    assert picks(picker, rows) == [(3, Detection("b", 0.4))]


def test_reset_drops_a_detection_waiting_for_its_peak():
    picker = PeakPicker({"a": 0.5}, refractory_frames=0)
    picker.update({"a": 0.7})
    picker.reset()
    assert picker.update({"a": 0.1}) is None


@pytest.fixture(scope="module")
def jarvis() -> Stream:
    return Stream(conversation(1.0, "Hey Jarvis.", 2.5))


@pytest.mark.parametrize("engine", ["openwakeword", "microwakeword"])
def test_real_detection_score_is_the_peak_of_the_trace(engine, jarvis):
    settings = WakeSettings(  # a low threshold, so the score climbs for a while above it
        models=["hey_jarvis"],
        engines={"hey_jarvis": engine},
        thresholds={"hey_jarvis": 0.3},
        verify="off",  # one engine's own scores
        second_look=False,
    )
    detector = build_wake_detector(settings)
    assert isinstance(detector, OpenWakeWord if engine == "openwakeword" else MicroWake)
    [(t, detection)] = run(detector, jarvis)
    scores = list(trace(detector.scorer, jarvis)[0]["hey_jarvis"])
    first = next(i for i, s in enumerate(scores) if s >= 0.3)
    reported = round(t / 0.08) - 1  # the frame it was reported in
    assert detection == Detection("hey_jarvis", round(max(scores[first : reported + 1]), 4))
    assert detection.score > scores[first]  # not the first frame over the threshold
    assert 1.0 < t < 2.6  # while or just after the phrase


def test_models_split_between_engines_are_heard_together():
    settings = WakeSettings(models=["hey_jarvis", "alexa"], engines={"hey_jarvis": "microwakeword"})
    detector = build_wake_detector(settings)
    assert isinstance(detector, WakeEngines)
    stream = Stream(conversation(1.0, "Alexa.", 2.5, "Hey Jarvis.", 2.5))
    assert [d.model for _, d in run(detector, stream)] == ["alexa", "hey_jarvis"]


def test_thresholds_per_model_then_global_then_measured_default():
    models = ["hey_jarvis", "alexa", "okay_nabu"]
    measured = OpenWakeWord(WakeSettings(models=models)).picker.thresholds
    assert measured == {m: OPENWAKEWORD_THRESHOLDS[m] for m in models}
    settings = WakeSettings(models=models, threshold=0.42, thresholds={"alexa": 0.77})
    chosen = OpenWakeWord(settings).picker.thresholds
    assert chosen == {"hey_jarvis": 0.42, "alexa": 0.77, "okay_nabu": 0.42}
    micro = WakeSettings(models=["alexa"], engines={"alexa": "microwakeword"})
    assert MicroWake(micro).picker.thresholds == {"alexa": MICROWAKEWORD_THRESHOLDS["alexa"]}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"models": ["hey_rhasspy"], "engines": {"hey_rhasspy": "microwakeword"}}, "no model"),
        ({"models": ["alexa"], "engines": {"hey_jarvis": "microwakeword"}}, "not one of"),
        ({"models": ["alexa"], "thresholds": {"alexa": 1.5}}, "between 0 and 1"),
        ({"models": ["/x/mine.json"]}, "microWakeWord model"),
        ({"models": ["alexa"], "engines": {"alexa": "porcupine"}}, "openwakeword"),
    ],
)
def test_engine_and_threshold_settings_are_checked(fields, message):
    with pytest.raises(ValidationError, match=message):
        WakeSettings(**fields)


def test_litert_and_the_bundled_tflite_library_give_the_same_scores():
    """The two TFLite runtimes openWakeWord's models can run on (LiteRT, else the C library
    pyopen-wakeword ships) score the same audio alike, and both hear the wake word."""
    from firmware_app.listen.open_wake import OpenWakeWordStream, load_head
    from firmware_app.listen.tflite import CLibraryModel, LiteRtModel
    from firmware_app.listen.wake import model_path, packaged_models_dir

    audio = conversation(1.0, "Hey Jarvis.", 0.5, "What time is it?", 1.0)
    frames = [audio[i : i + 1280].tobytes() for i in range(0, len(audio) - 1279, 1280)]
    scores = {}
    for runtime in (LiteRtModel, CLibraryModel):
        path = model_path("hey_jarvis")
        stream = OpenWakeWordStream(
            [load_head(path, runtime)], ["hey_jarvis"], packaged_models_dir(), runtime
        )
        scores[runtime] = np.array([stream.scores(f)["hey_jarvis"] for f in frames])
    assert np.abs(scores[LiteRtModel] - scores[CLibraryModel]).max() < 1e-3
    assert scores[LiteRtModel].max() > OPENWAKEWORD_THRESHOLDS["hey_jarvis"]
    assert scores[LiteRtModel][:5].max() == 0.0  # held at 0 after a reset, as openWakeWord
