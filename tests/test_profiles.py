"""``profile = "zero"``: one setting that sets every part up for a Pi Zero 2 W, under
whatever the file or the environment sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_app.app.loading import load_tts
from firmware_app.config.settings import Settings, load_settings
from firmware_app.listen.micro_wake import MicroWake
from firmware_app.listen.wake_engines import build_wake_detector


def test_the_zero_profile_takes_the_lighter_set_up_of_each_part(tmp_path: Path) -> None:
    zero = Settings(profile="zero", data_dir=tmp_path)
    default = Settings(data_dir=tmp_path)
    assert zero.wake.engine_of("hey_jarvis") == "microwakeword"
    assert default.wake.engine_of("hey_jarvis") == "openwakeword"
    assert (zero.stt.engine, default.stt.engine) == ("phrases", "auto")
    assert (zero.echo.stop_word, default.echo.stop_word) == (False, True)
    assert zero.tts.cache_entries < default.tts.cache_entries
    assert isinstance(build_wake_detector(zero.wake), MicroWake)  # the real engine loads


def test_what_is_set_wins_over_the_profile(tmp_path: Path) -> None:
    zero = Settings(
        profile="zero",
        data_dir=tmp_path,
        stt={"engine": "auto"},
        wake={"models": ["alexa", "hey_rhasspy"], "engines": {"alexa": "openwakeword"}},
    )
    assert zero.stt.engine == "auto"
    assert zero.wake.engine_of("alexa") == "openwakeword"
    assert zero.wake.engine_of("hey_rhasspy") == "openwakeword"  # no microWakeWord model
    assert zero.echo.stop_word is False


def test_the_profile_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "config.toml"
    file.write_text('profile = "zero"\n[wake]\nmodels = ["okay_nabu"]\n')
    assert load_settings(file).wake.engine_of("okay_nabu") == "microwakeword"
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    monkeypatch.setenv("TTBT5_PROFILE", "zero")
    monkeypatch.setenv("TTBT5_ECHO__STOP_WORD", "true")
    settings = load_settings(empty)
    assert settings.stt.engine == "phrases"
    assert settings.echo.stop_word is True
    monkeypatch.setenv("TTBT5_PROFILE", "pi0")
    with pytest.raises(Exception, match="profile"):
        load_settings(empty)


def test_the_zero_profile_synthesizes_in_shorter_runs(tmp_path: Path) -> None:
    """Memory of one synthesis follows the length of the run: the Zero's Piper makes a long
    sentence in more, shorter pieces, and still all of it."""
    text = "Your pasta timer has eleven minutes and thirty seconds left, and the tea is ready."
    pieces = {}
    for profile in ("zero", "default"):
        tts = load_tts(Settings(profile=profile, data_dir=tmp_path), steady=True)
        chunks = list(tts.synthesize(text))
        seconds = sum(len(c) for c in chunks) / 2 / tts.sample_rate
        assert 3.5 < seconds < 9, (profile, seconds)  # the whole sentence was spoken
        pieces[profile] = len(chunks)
    assert pieces["zero"] > pieces["default"] >= 2
