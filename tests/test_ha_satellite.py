"""The speaker as a real Home Assistant's Assist satellite (tests/ha_satellite_rig.py):
added by host and port, the wake word spoken into a live-paced ALSA microphone runs Home
Assistant's pipeline and the speaker plays its answer; announcements; a Home Assistant
timer rings on the speaker; with Home Assistant stopped the speaker answers by itself,
and when it is back it is Home Assistant's satellite again. Skips, saying why, where the
cached Home Assistant or network namespaces are absent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest
from conftest import ALSA_FIFO, ALSA_SPEAKER_LOG
from ha_harness import heard_back, needs_home_assistant
from ha_satellite_rig import SPEAKER_RATE, Paths, SatelliteRig, request, satellite_stage
from netns import netns_problem

from firmware_app.audio.wavio import resample

pytestmark = [
    pytest.mark.slow,
    needs_home_assistant,
    pytest.mark.skipif(netns_problem() is not None, reason=str(netns_problem())),
]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SatelliteRig]:
    ALSA_SPEAKER_LOG.write_bytes(b"")
    paths = Paths(
        work=tmp_path_factory.mktemp("satellite"),
        fifo=ALSA_FIFO,
        speaker=ALSA_SPEAKER_LOG,
        mic_device="testfifo",
        speaker_device="testspeakerlog",
    )
    rig = SatelliteRig(paths)
    try:
        rig.start()
        yield rig
    finally:
        rig.close()


def test_home_assistant_adds_the_speaker_as_a_satellite_by_host_and_port(
    rig: SatelliteRig,
) -> None:
    [entry] = rig.ha.entries("esphome")
    assert entry["state"] == "loaded"
    ids = {e["entity_id"].split(".")[0] for e in rig.ha.entities(rig.websocket, "esphome")}
    assert {"assist_satellite", "media_player", "select", "switch"} <= ids, ids
    assert rig.ha.state(rig.satellite)["state"] == "idle"


def test_the_wake_word_runs_home_assistants_pipeline_and_the_speaker_plays_its_answer(
    rig: SatelliteRig,
) -> None:
    before = datetime.now(UTC)
    index, mark = rig.say(request("what time is it"))
    started = rig.device.wait_for(satellite_stage("start"), index, what="a pipeline start")
    stt = rig.device.wait_for(satellite_stage("stt_end"), index, what="Home Assistant's STT")
    assert stt["text"] == "what time is it"  # the speaker's own recognizer, through HA
    play = rig.device.wait_for(satellite_stage("play"), index, what="the answer playing")
    assert play["kind"] == "reply" and started["run"]
    rig.device.wait_for(lambda e: e["type"] == "speak_end", index, what="the answer's end")
    # Home Assistant answered, not the local brain
    assert not [e for e in rig.device.events()[index:] if e["type"] in ("reply", "intent")]
    # what the speaker played is Home Assistant's answer (its own intent, the hour now)
    rig.speaker.wait_sound(mark)
    rig.speaker.settle()
    reply = resample(rig.speaker.audio_since(mark), SPEAKER_RATE, 16000)
    assert len(reply) > 16000 * 0.8 and np.abs(reply).max() > 5000
    speech_out = last_run_speech(rig)
    hours = {f"{t.hour % 12 or 12}:" for t in (before, datetime.now(UTC))}
    assert any(h in speech_out for h in hours), speech_out


def last_run_speech(rig: SatelliteRig) -> str:
    """What Home Assistant's agent answered in its last run of the pipeline."""
    ws = rig.websocket
    runs = ws.command("assist_pipeline/pipeline_debug/list", pipeline_id=rig.pipeline)
    last = runs["pipeline_runs"][-1]["pipeline_run_id"]
    got = ws.command(
        "assist_pipeline/pipeline_debug/get", pipeline_id=rig.pipeline, pipeline_run_id=last
    )
    ends = [e["data"] for e in got["events"] if e["type"] == "intent-end"]
    return str(ends[-1]["intent_output"]["response"]["speech"]["plain"]["speech"])


def test_an_announcement_plays_on_the_speaker(rig: SatelliteRig) -> None:
    index, mark = len(rig.device.events()), rig.speaker.mark()
    rig.websocket.command(
        "call_service",
        domain="assist_satellite",
        service="announce",
        service_data={"message": "What time is it?", "preannounce": False},
        target={"entity_id": rig.satellite},
        timeout=60,
    )
    play = rig.device.wait_for(satellite_stage("play"), index, what="the announcement")
    assert play["kind"] == "announce"
    rig.device.wait_for(lambda e: e["type"] == "speak_end", index, what="its end")
    rig.speaker.wait_sound(mark)
    rig.speaker.settle()
    played = resample(rig.speaker.audio_since(mark), SPEAKER_RATE, 16000)
    # Piper's words, played by the speaker, understood by the speaker's own recognizer
    assert heard_back(played, rig.wyoming_port) == "what time is it"


def test_a_home_assistant_timer_rings_on_the_speaker(rig: SatelliteRig) -> None:
    index, _ = rig.say(request("set a timer for five seconds"))
    started = rig.device.wait_for(
        lambda e: e["type"] == "satellite" and e.get("stage") == "timer"
        and e.get("event") == "started",
        index,
        what="Home Assistant's timer starting",
    )  # fmt: skip
    assert started["seconds"] == 5
    rig.device.wait_for(lambda e: e["type"] == "speak_end", index, what="the confirmation")
    mark = rig.speaker.mark()
    rig.device.wait_for(
        lambda e: e["type"] == "satellite" and e.get("stage") == "timer"
        and e.get("event") == "finished",
        index,
        timeout=20,
        what="the timer finishing",
    )  # fmt: skip
    rig.speaker.wait_sound(mark, timeout=5)  # it rings, audibly, within a few seconds


def test_with_home_assistant_stopped_the_speaker_answers_then_it_reconnects(
    rig: SatelliteRig,
) -> None:
    rig.ha.stop()
    try:
        index, _ = rig.say(request("what time is it"))
        reply = rig.device.wait_for(lambda e: e["type"] == "reply", index, what="a local answer")
        assert reply["source"] == "local" and reply["text"].startswith("It's ")
        end = rig.device.wait_for(lambda e: e["type"] == "speech_end", index)
        assert reply["wall"] - end["wall"] < 3.0
    finally:
        rig.ha.start()
        rig.ws = rig.ha.websocket()
    rig.satellite = rig.wait_satellite(timeout=120)  # Home Assistant reconnected by itself
    index, _ = rig.say(request("what time is it"))
    rig.device.wait_for(satellite_stage("stt_end"), index, what="Home Assistant's pipeline again")
    rig.device.wait_for(lambda e: e["type"] == "speak_end", index, what="its answer")
    assert not [e for e in rig.device.events()[index:] if e["type"] == "reply"]
