"""The satellite with encryption on, against a real Home Assistant: it asks for the key
when added by host and port, refuses a wrong one, and with the right one the wake word
runs its pipeline over the encrypted connection. Skips, saying why, where the cached Home
Assistant or network namespaces are absent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import ALSA_FIFO, ALSA_SPEAKER_LOG
from esphome_support import TEST_KEY
from ha_harness import needs_home_assistant
from ha_satellite_rig import ESPHOME_PORT, Paths, SatelliteRig, request, satellite_stage
from netns import netns_problem

pytestmark = [
    pytest.mark.slow,
    needs_home_assistant,
    pytest.mark.skipif(netns_problem() is not None, reason=str(netns_problem())),
]
WRONG_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SatelliteRig]:
    ALSA_SPEAKER_LOG.write_bytes(b"")
    paths = Paths(
        work=tmp_path_factory.mktemp("satellite-noise"),
        fifo=ALSA_FIFO,
        speaker=ALSA_SPEAKER_LOG,
        mic_device="testfifo",
        speaker_device="testspeakerlog",
    )
    rig = SatelliteRig(paths, key=TEST_KEY)
    try:
        rig.device.start()
        rig.ha.start()
        rig.ha.onboard()
        rig.ws = rig.ha.websocket()
        yield rig
    finally:
        rig.close()


def test_home_assistant_asks_for_the_key_and_refuses_a_wrong_one(rig: SatelliteRig) -> None:
    ha = rig.ha
    flow = ha.post("/api/config/config_entries/flow", {"handler": "esphome"})
    step = f"/api/config/config_entries/flow/{flow['flow_id']}"
    asked = ha.post(step, {"host": "127.0.0.1", "port": ESPHOME_PORT})
    assert asked["type"] == "form" and asked["step_id"] == "encryption_key", asked
    wrong = ha.post(step, {"noise_psk": WRONG_KEY})
    assert wrong["type"] == "form" and wrong["errors"], wrong
    right = ha.post(step, {"noise_psk": TEST_KEY})
    assert right["type"] == "create_entry", right


def test_the_pipeline_runs_over_the_encrypted_connection(rig: SatelliteRig) -> None:
    if not rig.ha.entries("esphome"):
        pytest.skip("needs the entry the previous test creates")
    rig.add_integrations_without_esphome()
    index, _ = rig.say(request("what time is it"))
    stt = rig.device.wait_for(satellite_stage("stt_end"), index, what="Home Assistant's STT")
    assert stt["text"] == "what time is it"
    play = rig.device.wait_for(satellite_stage("play"), index, what="the answer playing")
    assert play["kind"] == "reply"
