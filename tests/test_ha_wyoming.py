"""A real Home Assistant adds the speaker's Wyoming server and runs an Assist pipeline on
it: spoken audio → the speaker's recognizer → Home Assistant's own intents → the
speaker's voice. The server learns the home's lights and areas from Home Assistant with
a long-lived token, so "turn on the kitchen light" turns it on. Skips, saying why, where
the cached Home Assistant is absent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import silence, speech
from ha_harness import (
    HomeAssistant,
    Websocket,
    heard_back,
    needs_home_assistant,
    started_home_assistant,
)
from ha_home import HOME_YAML, lights_in_areas_and_token
from mqtt_broker import free_port
from wyoming_support import ttbt5_wyoming

from firmware_app.understand.intents.whole import command_reader

pytestmark = [pytest.mark.slow, needs_home_assistant]


LEARNED = "of Home Assistant (grammar built in"


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HomeAssistant]:
    yield from started_home_assistant(
        tmp_path_factory.mktemp("ha"), free_port(), extra_yaml=HOME_YAML
    )


@pytest.fixture(scope="module")
def ws(ha: HomeAssistant) -> Iterator[Websocket]:
    socket = ha.websocket()
    yield socket
    socket.close()


@pytest.fixture(scope="module")
def home_token(ha: HomeAssistant, ws: Websocket) -> str:
    return lights_in_areas_and_token(ha, ws)


@pytest.fixture(scope="module")
def wyoming(
    tmp_path_factory: pytest.TempPathFactory, ha: HomeAssistant, home_token: str
) -> Iterator[tuple[int, Path]]:
    """``ttbt5 wyoming`` as a user starts it, on a loopback port, told where Home
    Assistant is and given the token in a file; yields its port and its log once it has
    learned the home's names."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("wyoming")
    token_file = workdir / "ha.token"
    token_file.write_text(home_token + "\n")
    token_file.chmod(0o600)
    env = {
        "TTBT5_WYOMING__HOMEASSISTANT_URL": ha.url,
        "TTBT5_WYOMING__HOMEASSISTANT_TOKEN_FILE": str(token_file),
        "TTBT5_WYOMING__HOMEASSISTANT_REFRESH_S": "10",
    }
    log = workdir / "wyoming.log"
    with ttbt5_wyoming(port, workdir, env):
        wait_for_log(log, LEARNED, 1)
        yield port, log


@pytest.fixture(scope="module")
def wyoming_port(wyoming: tuple[int, Path]) -> int:
    return wyoming[0]


def wait_for_log(log: Path, text: str, count: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count(text) >= count:
            return
        time.sleep(0.3)
    raise AssertionError(f"{text!r} not logged {count} times:\n{log.read_text()[-3000:]}")


def wait_for_state(ha: HomeAssistant, entity_id: str, state: str, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while ha.state(entity_id)["state"] != state:
        assert time.monotonic() < deadline, ha.state(entity_id)
        time.sleep(0.2)


@pytest.fixture(scope="module")
def pipeline(ha: HomeAssistant, ws: Websocket, wyoming_port: int) -> str:
    """The speaker added by host and port, and a pipeline of its recognizer and voice
    around Home Assistant's own conversation agent; returns the pipeline's id."""
    result = ha.config_flow("wyoming", {"host": "127.0.0.1", "port": wyoming_port})
    assert result["type"] == "create_entry", result
    entities = {e["entity_id"].split(".")[0]: e["entity_id"] for e in ha.entities(ws, "wyoming")}
    assert set(entities) >= {"stt", "tts"}, entities
    created = ws.command(
        "assist_pipeline/pipeline/create",
        name="TTBT5 on the speaker",
        language="en",
        conversation_engine="conversation.home_assistant",
        conversation_language="en",
        stt_engine=entities["stt"],
        stt_language="en",
        tts_engine=entities["tts"],
        tts_language="en_US",
        tts_voice="en_US-joe-medium",
        wake_word_entity=None,
        wake_word_id=None,
    )
    return str(created["id"])


def spoken(text: str) -> bytes:
    pcm = np.concatenate([silence(0.3), speech(text), silence(1.0)])
    return pcm.astype("<i2").tobytes()


def test_home_assistant_adds_the_speaker_by_host_and_port(
    ha: HomeAssistant, ws: Websocket, pipeline: str
) -> None:
    [entry] = ha.entries("wyoming")
    assert entry["state"] == "loaded"
    stt = next(e for e in ha.entities(ws, "wyoming") if e["entity_id"].startswith("stt."))
    assert ha.state(stt["entity_id"])["state"] != "unavailable"


def test_a_spoken_question_runs_the_pipeline_on_the_speaker(
    ha: HomeAssistant, ws: Websocket, pipeline: str, wyoming_port: int
) -> None:
    before = datetime.now(UTC)
    run = ws.run_pipeline(pipeline, spoken("what time is it"))
    assert "error" not in run.types, run.events
    assert run.types[-1] == "run-end"
    assert run.transcript == "what time is it"
    response = run.intent_response
    assert response["response_type"] == "action_done", response
    # Home Assistant's own answer to HassGetCurrentTime: the hour it is now
    hours = {f"{t.hour % 12 or 12}:" for t in (before, datetime.now(UTC))}
    assert any(h in run.speech for h in hours), run.speech
    tts = run.of("tts-start")
    assert tts["engine"].startswith("tts.") and tts["voice"] == "en_US-joe-medium"
    pcm = ha.decode(ha.get_bytes(run.tts_url))
    assert len(pcm) / 16000 > 0.8 and np.abs(pcm).max() > 5000


def test_home_assistant_speaks_with_the_speakers_voice(
    ha: HomeAssistant, ws: Websocket, pipeline: str, wyoming_port: int
) -> None:
    run = ws.run_pipeline(pipeline, start="tts", end="tts", text="Set a timer for five minutes.")
    assert run.types[-1] == "run-end", run.events
    pcm = ha.decode(ha.get_bytes(run.tts_url))  # the MP3 a browser would get
    # what Home Assistant made of the speaker's voice, back through the speaker's ears:
    # the same command (Piper's samples vary from run to run, and a quiet "set a" at the
    # start is now and then not heard: "timer for five minutes" asks the same)
    read = command_reader(())
    wanted = read("set a timer for five minutes")
    heard = heard_back(pcm, wyoming_port)
    assert wanted is not None and read(heard) == wanted, heard


def test_a_spoken_timer_reaches_home_assistants_timer_intent(
    ha: HomeAssistant, ws: Websocket, pipeline: str
) -> None:
    run = ws.run_pipeline(pipeline, spoken("set a timer for five minutes"))
    assert run.transcript == "set a timer for five minutes"
    # HassStartTimer understood; with no satellite device in this run to ring it, Home
    # Assistant says so (the satellite tests ring one)
    assert "timers are not supported on this device" in run.speech.lower(), run.speech


def test_nothing_loaded_that_searches_the_network(ha: HomeAssistant, pipeline: str) -> None:
    """This Home Assistant runs on the machine's own loopback: nothing in it may send
    mDNS, SSDP or DHCP queries to the network around it."""
    loaded = set(ha.get("/api/config")["components"])
    assert not loaded & {"zeroconf", "ssdp", "dhcp", "bluetooth", "esphome", "cloud"}, loaded


def test_a_spoken_command_turns_on_a_light_of_the_home(
    ha: HomeAssistant, ws: Websocket, pipeline: str
) -> None:
    """The speaker learned the light's name from Home Assistant: its transcript is the
    sentence, and Home Assistant's own agent turns the light on."""
    assert ha.state("light.kitchen_light")["state"] == "off"
    run = ws.run_pipeline(pipeline, spoken("turn on the kitchen light"))
    assert run.transcript == "turn on the kitchen light", run.events
    assert run.intent_response["response_type"] == "action_done", run.intent_response
    wait_for_state(ha, "light.kitchen_light", "on")


def test_a_spoken_command_for_an_area_turns_its_lights_off(
    ha: HomeAssistant, ws: Websocket, pipeline: str
) -> None:
    assert ha.state("light.reading_lamp")["state"] == "on"
    run = ws.run_pipeline(pipeline, spoken("turn off the lights in the living room"))
    assert run.transcript == "turn off the lights in the living room", run.events
    assert run.intent_response["response_type"] == "action_done", run.intent_response
    wait_for_state(ha, "light.reading_lamp", "off")


def test_a_spoken_brightness_dims_a_light(ha: HomeAssistant, ws: Websocket, pipeline: str) -> None:
    """HassLightSet: the number is said in words, as the recognizer writes it, and Home
    Assistant reads it as a percentage."""
    run = ws.run_pipeline(pipeline, spoken("set the reading lamp to fifty percent"))
    assert run.transcript == "set the reading lamp to fifty percent", run.events
    assert run.intent_response["response_type"] == "action_done", run.intent_response
    wait_for_state(ha, "light.reading_lamp", "on")
    assert abs(ha.state("light.reading_lamp")["attributes"]["brightness"] - 128) <= 2


def test_a_new_alias_is_learned_at_the_next_refresh(
    ha: HomeAssistant, ws: Websocket, pipeline: str, wyoming: tuple[int, Path]
) -> None:
    """An alias given in Home Assistant reaches the speaker's grammar by itself (the
    server asks again every 10 s here), and the alias works by voice."""
    _, log = wyoming
    builds = log.read_text().count(LEARNED)
    ws.command("config/entity_registry/update", entity_id="light.kitchen_light",
               aliases=["Ceiling Lamp"])  # fmt: skip
    wait_for_log(log, LEARNED, builds + 1, timeout_s=60)
    ha.post("/api/services/light/turn_on", {"entity_id": "light.kitchen_light"})
    wait_for_state(ha, "light.kitchen_light", "on")
    run = ws.run_pipeline(pipeline, spoken("turn off the ceiling lamp"))
    assert run.transcript == "turn off the ceiling lamp", run.events
    wait_for_state(ha, "light.kitchen_light", "off")


def test_the_token_never_reaches_the_log(home_token: str, wyoming: tuple[int, Path]) -> None:
    assert home_token not in wyoming[1].read_text()
