"""The ESPHome native API served by the speaker, driven by aioesphomeapi's own client
(Home Assistant's): session, device info, entities, encryption, the pipeline's edge side,
and hostile clients."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from contextlib import ExitStack

import pytest
from aioesphomeapi import APIClient
from aioesphomeapi.core import (
    BadMACAddressAPIError,
    InvalidEncryptionKeyAPIError,
    RequiresEncryptionAPIError,
)
from aioesphomeapi.model import MediaPlayerFormatPurpose, VoiceAssistantFeature
from aioesphomeapi.model import VoiceAssistantEventType as Ev
from esphome_support import TEST_KEY, FakeHome, WavServer, tone_wav
from harness import wait_until

from firmware_app.config.settings import Settings
from firmware_app.core.messages import Command, HomeAudio, HomeStage, HomeTimer
from firmware_app.edges.esphome.frames import MAX_FRAME
from firmware_app.edges.esphome.wiring import build_satellite


@pytest.fixture
def make(tmp_path):
    stacks: list[ExitStack] = []

    def build(key: str | None = None, **esphome):
        cfg = {"enabled": True, "host": "127.0.0.1", "port": 0, **esphome}
        if key:
            cfg["encryption_key"] = key
        settings = Settings(data_dir=tmp_path / "data", esphome=cfg, mqtt={"device_id": "kitchen"})
        posted: list[object] = []
        stack = ExitStack()
        stacks.append(stack)
        sat = build_satellite(
            settings, posted.append, lambda: {"wake_count": 3, "errors": 0}, stack, advertise=False
        )
        assert sat is not None
        return sat, posted

    yield build
    for stack in stacks:
        stack.close()


def client_run(coro, timeout=15):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def _info(port: int, psk: str | None = None, mac: str | None = None):
    cli = APIClient("127.0.0.1", port, "", noise_psk=psk, expected_mac=mac)
    await cli.connect(login=True)
    try:
        info = await cli.device_info()
        ents, _ = await cli.list_entities_services()
        config = await cli.get_voice_assistant_configuration(5)
        return info, ents, config
    finally:
        await cli.disconnect()


def test_device_info_entities_and_configuration_in_plaintext(make):
    sat, _ = make()
    info, ents, config = client_run(_info(sat.port))
    assert info.name == "ttbt5-kitchen"
    assert info.mac_address == sat.mac and len(info.mac_address) == 17
    flags = info.voice_assistant_feature_flags
    for feature in ("VOICE_ASSISTANT", "API_AUDIO", "TIMERS", "ANNOUNCE"):
        assert flags & VoiceAssistantFeature[feature]
    kinds = {type(e).__name__: e for e in ents}
    player = kinds["MediaPlayerInfo"]
    assert any(
        f.format == "wav" and f.purpose == MediaPlayerFormatPurpose.ANNOUNCEMENT
        for f in player.supported_formats
    )
    assert {"SelectInfo", "SwitchInfo", "SensorInfo"} <= set(kinds)
    assert kinds["SelectInfo"].options == ["hey_jarvis"]
    assert [w.id for w in config.available_wake_words] == ["hey_jarvis"]
    assert config.active_wake_words == ["hey_jarvis"]


def test_the_unique_id_survives_a_restart_and_a_new_device_id(make, tmp_path):
    first, _ = make()
    mac = first.mac
    first.close()
    again, _ = make()
    assert again.mac == mac
    settings = Settings(
        data_dir=tmp_path / "data",
        esphome={"enabled": True, "host": "127.0.0.1", "port": 0},
        mqtt={"device_id": "renamed"},
    )
    with ExitStack() as stack:
        renamed = build_satellite(settings, print, dict, stack, advertise=False)
        assert renamed is not None and renamed.mac == mac


def test_encryption_with_home_assistants_client_and_plaintext_refused(make):
    sat, _ = make(TEST_KEY)
    info, _, _ = client_run(_info(sat.port, TEST_KEY))
    assert info.mac_address == sat.mac
    with pytest.raises(RequiresEncryptionAPIError):
        client_run(_info(sat.port))
    wrong = base64.b64encode(bytes(32)).decode()
    with pytest.raises(InvalidEncryptionKeyAPIError):
        client_run(_info(sat.port, wrong))
    info, _, _ = client_run(_info(sat.port, TEST_KEY))  # still serving after the refusals
    assert info.name == "ttbt5-kitchen"
    # Home Assistant checks the MAC in the encrypted hello against the one it stored
    plain_mac = sat.mac.replace(":", "").lower()
    info, _, _ = client_run(_info(sat.port, TEST_KEY, plain_mac))
    with pytest.raises(BadMACAddressAPIError):
        client_run(_info(sat.port, TEST_KEY, "020000000000"))


def test_a_bad_key_is_one_line_naming_the_key():
    with pytest.raises(Exception) as err:
        Settings(esphome={"encryption_key": "not a key"})
    assert "esphome.encryption_key" in str(err.value)


@pytest.fixture
def wavs():
    server = WavServer()
    yield server
    server.close()


def test_a_pipeline_run_from_start_to_reply(make, wavs):
    sat, posted = make()
    home = FakeHome(sat.port)
    try:
        home.connect()
        wait_until(lambda: sat.connected, what="subscribed")
        run = sat.start("hey jarvis", False)
        assert run > 0
        frames = [bytes([i]) * 2560 for i in range(5)]
        for pcm in frames:
            sat.feed(run, pcm)
        wait_until(lambda: len(home.audio) == 5, what="audio streamed")
        assert home.starts == [{"conversation_id": "", "phrase": "hey jarvis"}]
        assert home.audio == frames  # held until the run was accepted, in order
        sat.end(run)
        wait_until(lambda: home.stops == [False], what="end=True")
        wavs.files["reply.wav"] = tone_wav(0.5, 22050, 2)
        home.pipeline_reply(wavs.url("reply.wav"), "turn on the light", continue_conversation=True)
        wait_until(lambda: any(isinstance(m, HomeAudio) for m in posted), what="reply")
        audio = next(m for m in posted if isinstance(m, HomeAudio))
        assert audio.kind == "reply" and audio.key == run and audio.rate == 22050
        assert len(audio.pcm) == 2 * 11025 and audio.listen_after  # mixed down to mono
        stages = [m.stage for m in posted if isinstance(m, HomeStage)]
        assert stages == ["stt_end", "stt_end", "intent", "tts_end", "fetched"]
    finally:
        home.close()


def test_no_answer_to_the_start_gives_the_request_back_within_the_deadline(make):
    sat, posted = make()
    home = FakeHome(sat.port, answer="never")
    try:
        home.connect()
        wait_until(lambda: sat.connected, what="subscribed")
        started = time.monotonic()
        run = sat.start("hey jarvis", False)
        wait_until(lambda: any(isinstance(m, HomeStage) for m in posted), what="unanswered")
        assert time.monotonic() - started < 2.0  # the 1 s deadline, not "never"
        assert posted == [HomeStage(run, "unanswered", {"reason": "no answer within 1 s"})]
    finally:
        home.close()


def test_home_assistant_going_away_mid_run_is_noticed_at_once(make):
    sat, posted = make()
    home = FakeHome(sat.port)
    home.connect()
    wait_until(lambda: sat.connected, what="subscribed")
    run = sat.start("hey jarvis", False)
    wait_until(lambda: home.starts, what="start")
    sat.end(run)
    home.close()
    wait_until(lambda: HomeStage(run, "lost", {"reason": "disconnected"}) in posted, what="lost")
    assert not sat.connected and sat.start("hey jarvis", False) == 0


def test_a_silent_home_assistant_after_the_end_of_speech_is_lost_after_the_stage_deadline(make):
    sat, posted = make(stage_timeout_s=0.5)
    home = FakeHome(sat.port)
    try:
        home.connect()
        wait_until(lambda: sat.connected, what="subscribed")
        run = sat.start("hey jarvis", False)
        sat.end(run)
        wait_until(lambda: home.stops, what="end")
        ended = time.monotonic()
        wait_until(lambda: any(isinstance(m, HomeStage) for m in posted), what="lost")
        assert time.monotonic() - ended < 2.0  # the 0.5 s deadline, not "never"
        assert posted[-1].stage == "lost"
        wait_until(lambda: home.stops == [False, True], what="the run stopped on HA's side")
    finally:
        home.close()


def test_an_error_event_ends_the_run(make):
    sat, posted = make()
    home = FakeHome(sat.port)
    try:
        home.connect()
        wait_until(lambda: sat.connected, what="subscribed")
        run = sat.start("", True)
        wait_until(lambda: home.starts, what="start")
        home.event(
            Ev.VOICE_ASSISTANT_ERROR, {"code": "stt-no-text-recognized", "message": "No text"}
        )
        wait_until(lambda: posted, what="error")
        assert posted == [
            HomeStage(run, "error", {"code": "stt-no-text-recognized", "message": "No text"})
        ]
    finally:
        home.close()


def test_announcements_timers_volume_and_mute_reach_the_assistant(make, wavs):
    sat, posted = make()
    home = FakeHome(sat.port)
    try:
        home.connect()
        wait_until(lambda: sat.connected, what="subscribed")
        wavs.files["chime.wav"] = tone_wav(0.2, 16000)
        wavs.files["news.wav"] = tone_wav(0.5, 22050)

        async def announce():
            assert home.client is not None
            return await home.client.send_voice_assistant_announcement_await_response(
                wavs.url("news.wav"), 10, text="News", preannounce_media_id=wavs.url("chime.wav")
            )

        future = asyncio.run_coroutine_threadsafe(announce(), home.loop)
        wait_until(lambda: any(isinstance(m, HomeAudio) for m in posted), what="announcement")
        audio = next(m for m in posted if isinstance(m, HomeAudio))
        assert audio.kind == "announce" and audio.text == "News" and audio.rate == 22050
        # the chime resampled to the news's rate (the news itself untouched), then the news
        assert len(audio.pcm) == 2 * (4410 + 11025)
        from firmware_app.core.events import Event

        sat(Event("speak_start", 0, 0, {"origin": "home", "request_id": audio.key}))
        sat(Event("speak_end", 0, 0, {"origin": "home", "request_id": audio.key}))
        assert future.result(5).success is True

        async def commands():
            cli = home.client
            assert cli is not None
            cli.send_voice_assistant_timer_event(3, "t1", "pasta", 60, 0, False)
            cli.media_player_command(1, volume=0.3)
            cli.switch_command(3, True)

        home.run(commands())
        wait_until(lambda: len(posted) >= 4, what="commands")
        assert HomeTimer("finished", "t1", "pasta", 60, 0) in posted
        names = [(m.name, m.args) for m in posted if isinstance(m, Command)]
        assert names == [("volume", {"volume": 30}), ("mute", {"muted": True})]
    finally:
        home.close()


def test_hostile_clients_cost_nothing_and_never_stop_home_assistant(make):
    sat, _posted = make(max_connections=8)
    sat.server.handshake_s = 1.0
    home = FakeHome(sat.port)
    try:
        home.connect()
        wait_until(lambda: sat.connected, what="subscribed")

        def dropped(sock: socket.socket) -> bool:
            sock.settimeout(3)
            try:
                return sock.recv(100) == b""
            except ConnectionResetError:
                return True

        garbage = socket.create_connection(("127.0.0.1", sat.port))
        garbage.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert dropped(garbage)
        huge = socket.create_connection(("127.0.0.1", sat.port))
        huge.sendall(b"\x00" + bytes([0x80, 0x80, 0x80, 0x32]) + b"\x01")  # 100 MB announced
        assert dropped(huge)
        assert MAX_FRAME < 100 * 1024 * 1024
        silent = socket.create_connection(("127.0.0.1", sat.port))
        assert dropped(silent)  # the handshake deadline
        flood = []
        for _ in range(1000):
            try:
                flood.append(socket.create_connection(("127.0.0.1", sat.port), timeout=2))
            except OSError:
                break
        assert len(sat.server.connections) <= 8
        info = home.run(home.client.device_info())  # Home Assistant's connection still works
        assert info.mac_address == sat.mac and sat.connected
        for sock in flood:
            sock.close()
        fresh = client_run(_info(sat.port))  # and a new client gets in once it is over
        assert fresh[0].name == "ttbt5-kitchen"
    finally:
        home.close()


def test_a_dead_peer_is_pinged_then_dropped_and_home_assistant_can_reconnect(make):
    sat, _ = make()
    sat.server.ping_after_s, sat.server.dead_after_s = 0.5, 1.5
    from firmware_app.edges.esphome.frames import PlainFraming
    from firmware_app.edges.esphome.proto import decode, encode, pb

    framing = PlainFraming()
    peer = socket.create_connection(("127.0.0.1", sat.port))
    hello = [encode(pb.HelloRequest(client_info="dead")), encode(pb.ConnectRequest())]
    peer.sendall(framing.encode(hello))
    peer.settimeout(5)
    got: list[str] = []
    started = time.monotonic()
    while True:  # it never answers the pings: it is dropped
        data = peer.recv(4096)
        if not data:
            break
        got += [type(decode(t, p)).__name__ for t, p in framing.feed(data)]
    assert "PingRequest" in got and time.monotonic() - started < 4
    assert not sat.server.connections
    home = FakeHome(sat.port)  # a restarted Home Assistant connects again
    try:
        home.connect()
        wait_until(lambda: sat.connected, what="subscribed again")
    finally:
        home.close()


def test_a_flood_of_announcements_costs_at_most_a_few_fetches(make):
    from aioesphomeapi.api_pb2 import VoiceAssistantAnnounceRequest

    sat, posted = make(fetch_timeout_s=2.0)
    stall = socket.socket()  # a server that accepts and never answers
    stall.bind(("127.0.0.1", 0))
    stall.listen(64)
    url = f"http://127.0.0.1:{stall.getsockname()[1]}/slow.wav"
    home = FakeHome(sat.port)
    try:
        home.connect()

        async def flood():
            assert home.client is not None
            conn = home.client._get_connection()
            for _ in range(10):
                conn.send_message(VoiceAssistantAnnounceRequest(media_id=url))

        home.run(flood())
        wait_until(lambda: len(home.finished) == 6, what="the refused ones answered at once")
        time.sleep(0.3)
        assert home.finished == [False] * 6  # the other four are still fetching
        wait_until(lambda: len(home.finished) == 10, what="the fetches timed out")
        assert not any(isinstance(m, HomeAudio) for m in posted)
    finally:
        home.close()
        stall.close()


def test_progress_during_a_long_answer_keeps_the_answers_deadline(make, wavs):
    sat, posted = make(stage_timeout_s=0.5, answer_timeout_s=5.0)
    home = FakeHome(sat.port)
    try:
        home.connect()
        wait_until(lambda: sat.connected, what="subscribed")
        run = sat.start("hey jarvis", False)
        sat.end(run)
        wait_until(lambda: home.stops == [False], what="end=True")
        home.event(Ev.VOICE_ASSISTANT_INTENT_START)
        for _ in range(4):  # an agent thinking for 3 s, saying so now and then
            time.sleep(0.7)  # longer than a stage's deadline, well within the answer's
            home.event(Ev.VOICE_ASSISTANT_STT_VAD_START)
        assert not any(m.stage == "lost" for m in posted if isinstance(m, HomeStage))
        wavs.files["late.wav"] = tone_wav(0.2)
        for kind, data in (
            (Ev.VOICE_ASSISTANT_TTS_END, {"url": wavs.url("late.wav")}),
            (Ev.VOICE_ASSISTANT_RUN_END, None),
        ):
            home.event(kind, data)
        wait_until(lambda: any(isinstance(m, HomeAudio) for m in posted), what="the reply")
    finally:
        home.close()


def test_config_validate_names_a_bad_key_file(tmp_path):
    from firmware_app.config.validate import problems

    key = tmp_path / "esphome.key"
    key.write_text("not base64!\n")
    settings = Settings(
        data_dir=tmp_path / "data", esphome={"enabled": True, "encryption_key_file": key}
    )
    found = problems(settings)
    assert any(p.startswith("esphome.encryption_key_file") and "base64" in p for p in found)
    key.write_text(TEST_KEY + "\n")
    assert not [p for p in problems(settings) if p.startswith("esphome")]


def test_check_sees_the_api_as_home_assistant_would(make, tmp_path):
    from firmware_app.edges.esphome.probe import probe_satellite

    sat, _ = make(TEST_KEY)
    cfg = {"enabled": True, "host": "127.0.0.1", "port": sat.port, "encryption_key": TEST_KEY}
    settings = Settings(data_dir=tmp_path / "data", esphome=cfg, mqtt={"device_id": "kitchen"})
    line = probe_satellite(settings)
    assert line.startswith(f"serving on port {sat.port} as ttbt5-kitchen") and "encrypted" in line
    wrong = {**cfg, "encryption_key": base64.b64encode(bytes(32)).decode()}
    with pytest.raises(InvalidEncryptionKeyAPIError):
        probe_satellite(Settings(data_dir=tmp_path / "data", esphome=wrong))
    sat.close()
    assert "free" in probe_satellite(settings)
    with socket.socket() as other:  # another program holds the port, and says nothing
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", sat.port))
        other.listen(1)
        with pytest.raises(RuntimeError, match="not as the ESPHome API"):
            probe_satellite(settings)


def test_the_messages_spoken_are_numbered_as_home_assistants_client_numbers_them():
    """Each message the device reads or writes has the number aioesphomeapi's own client
    (the one in Home Assistant) gives it; a message of any other type is ignored."""
    from aioesphomeapi.core import MESSAGE_TYPE_TO_PROTO

    from firmware_app.edges.esphome.proto import BY_TYPE, SPOKEN, TYPE_OF, decode, encode, pb

    assert len(BY_TYPE) == len(SPOKEN) == len(TYPE_OF)
    for number, cls in BY_TYPE.items():
        assert MESSAGE_TYPE_TO_PROTO[number] is cls, (number, cls)
    number, payload = encode(pb.VoiceAssistantAnnounceFinished(success=True))
    assert decode(number, payload) == pb.VoiceAssistantAnnounceFinished(success=True)
    unknown = next(n for n in MESSAGE_TYPE_TO_PROTO if n not in BY_TYPE)
    assert decode(unknown, MESSAGE_TYPE_TO_PROTO[unknown]().SerializeToString()) is None
