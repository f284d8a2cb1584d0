"""The hardware guide's files work: its configuration snippets validate, ALSA accepts its
asound.conf files and routes each direction to the card it names, the diagram renders."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from firmware_app.config.settings import load_settings

HARDWARE = Path(__file__).resolve().parent.parent / "hardware"
README = HARDWARE / "README.md"
ASOUND = sorted(HARDWARE.glob("asound-*.conf"))


def toml_blocks(text: str) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", text, flags=re.S)


def test_every_config_snippet_in_the_guide_is_valid(tmp_path: Path) -> None:
    blocks = toml_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    for i, block in enumerate(blocks):
        path = tmp_path / f"snippet{i}.toml"
        path.write_text(block, encoding="utf-8")
        settings = load_settings(path)  # raises ConfigError with the bad key
        if settings.gpio.led != "none":
            assert settings.gpio.button_pin == 17  # every set-up keeps the button on GPIO17


PROBE = """
import alsaaudio
print(",".join(alsaaudio.pcms()))
for kind in (alsaaudio.PCM_CAPTURE, alsaaudio.PCM_PLAYBACK):
    try:
        alsaaudio.PCM(kind, device="default")
    except alsaaudio.ALSAAudioError as exc:
        print("open failed:", exc)
"""


@pytest.mark.parametrize("conf", ASOUND, ids=lambda p: p.name)
def test_alsa_reads_each_asound_conf_and_routes_to_its_cards(conf: Path, tmp_path: Path) -> None:
    pytest.importorskip("alsaaudio")
    text = conf.read_text(encoding="utf-8")
    capture = re.search(r'capture\.pcm "plughw:CARD=(\w+),DEV=0"', text)
    playback = re.search(r'playback\.pcm "plughw:CARD=(\w+),DEV=0"', text)
    assert capture and playback, "each file sets both directions with plughw names"
    # the config.toml lines suggested in the file name the same devices
    assert f'input_device = "plughw:CARD={capture[1]},DEV=0"' in text
    assert f'output_device = "plughw:CARD={playback[1]},DEV=0"' in text

    shutil.copy(conf, tmp_path / ".asoundrc")  # ALSA reads ~/.asoundrc on top of its own
    env = {"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    run = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    assert "conf.c" not in run.stderr, f"ALSA could not parse {conf.name}:\n{run.stderr}"
    assert "default" in run.stdout.splitlines()[0].split(",")
    # there is no such card on this machine: ALSA got as far as looking each one up
    assert f"Cannot get card index for {capture[1]}" in run.stderr
    assert f"Cannot get card index for {playback[1]}" in run.stderr


def test_the_wiring_diagram_is_valid_svg_and_matches_the_guide(tmp_path: Path) -> None:
    svg = HARDWARE / "wiring-led-button.svg"
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(t.strip() for t in root.itertext())
    readme = README.read_text(encoding="utf-8")
    assert "wiring-led-button.svg" in readme
    for label in ("pin 32 · GPIO12", "pin 34 · GND", "pin 11 · GPIO17", "pin 9 · GND"):
        assert label in text
    assert "led_pin = 12" in text and "button_pin = 17" in text
    single = next(b for b in toml_blocks(readme) if 'led = "single"' in b)
    assert "led_pin = 12" in single and "button_pin = 17" in single
    renderer = shutil.which("rsvg-convert")
    if renderer:
        png = tmp_path / "wiring.png"
        subprocess.run([renderer, str(svg), "-o", str(png)], check=True, timeout=30)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
