"""The Wyoming server with the real engines (speech-to-phrase, Piper), spoken to by the
``wyoming`` package's own client over 127.0.0.1, and by clients that misbehave."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import speech
from mqtt_broker import free_port
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize
from wyoming_support import ttbt5_wyoming

from firmware_app.audio.wavio import resample
from firmware_app.config.settings import Settings, WyomingSettings
from firmware_app.edges.wyoming.server import BackgroundWyoming, load_service

pytestmark = pytest.mark.slow

IDLE_S = 1.0
MAX_CONNECTIONS = 4
MAX_AUDIO_S = 8.0
CHUNK = 2048  # bytes per audio chunk, as Home Assistant sends them


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The real server on a loopback port, with short deadlines; yields the port."""
    cfg = WyomingSettings(
        host="127.0.0.1",
        port=free_port(),
        idle_s=IDLE_S,
        max_connections=MAX_CONNECTIONS,
        max_audio_s=MAX_AUDIO_S,
        max_text_chars=500,
    )
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), wyoming=cfg)
    background = BackgroundWyoming(load_service(settings), cfg)
    background.start()
    yield cfg.port
    background.close()


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


async def ask(port: int, *events: Event) -> list[Event]:
    """Send ``events``, then read until the answer ends (transcript, info, audio-stop,
    error) or the server closes the connection."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        for event in events:
            await client.write_event(event)
        return await read_answer(client)


async def read_answer(client: AsyncTcpClient) -> list[Event]:
    got: list[Event] = []
    while (event := await client.read_event()) is not None:
        got.append(event)
        if event.type in ("transcript", "info", "audio-stop", "error"):
            break
    return got


def audio_events(pcm: np.ndarray, rate: int = 16000) -> list[Event]:
    data = pcm.astype("<i2").tobytes()
    chunks = [
        AudioChunk(rate=rate, width=2, channels=1, audio=data[i : i + CHUNK]).event()
        for i in range(0, len(data), CHUNK)
    ]
    return [AudioStart(rate=rate, width=2, channels=1).event(), *chunks, AudioStop().event()]


def transcribe(port: int, pcm: np.ndarray, rate: int = 16000) -> list[Event]:
    return run(ask(port, Transcribe(language="en").event(), *audio_events(pcm, rate)))


def transcript_of(answer: list[Event]) -> str:
    assert answer and Transcript.is_type(answer[-1].type), answer
    return Transcript.from_event(answer[-1]).text


def test_describe_offers_the_recognizer_and_the_voice(server: int) -> None:
    answer = run(ask(server, Describe().event()))
    info = Info.from_event(answer[-1])
    assert [p.name for p in info.asr] == ["ttbt5-stt"]
    assert "en" in info.asr[0].models[0].languages
    assert "speech-to-phrase" in (info.asr[0].models[0].description or "")
    assert [v.name for v in info.tts[0].voices] == ["en_US-joe-medium"]
    assert info.tts[0].voices[0].languages == ["en_US"]


@pytest.mark.parametrize(
    "sentence", ["what time is it", "set a timer for five minutes", "turn the volume up"]
)
def test_a_spoken_command_is_transcribed(server: int, sentence: str) -> None:
    pcm = np.concatenate([np.zeros(4000, np.int16), speech(sentence), np.zeros(8000, np.int16)])
    assert transcript_of(transcribe(server, pcm)) == sentence


def test_audio_at_another_rate_is_converted(server: int) -> None:
    pcm = resample(speech("what time is it"), 16000, 22050)
    assert transcript_of(transcribe(server, pcm, rate=22050)) == "what time is it"


def test_speech_outside_the_commands_is_no_command(server: int) -> None:
    assert transcript_of(transcribe(server, speech("the weather in paris is lovely"))) == ""


def test_synthesize_returns_the_voice_which_the_recognizer_understands(server: int) -> None:
    answer = run(ask(server, Synthesize(text="What time is it?").event()))
    types = [e.type for e in answer]
    assert types[0] == "audio-start" and types[-1] == "audio-stop"
    start = AudioStart.from_event(answer[0])
    assert (start.rate, start.width, start.channels) == (22050, 2, 1)
    pcm = np.frombuffer(b"".join(e.payload or b"" for e in answer[1:-1]), dtype="<i2")
    assert 0.7 < len(pcm) / 22050 < 3.0
    assert np.abs(pcm).max() > 10000  # speech, not silence
    # what it said, back through the recognizer
    assert transcript_of(transcribe(server, pcm, rate=22050)) == "what time is it"


def test_two_requests_at_once_both_answered(server: int) -> None:
    first, second = speech("what time is it"), speech("set a timer for five minutes")

    async def both() -> list[list[Event]]:
        return list(
            await asyncio.gather(
                ask(server, Transcribe().event(), *audio_events(first)),
                ask(server, Transcribe().event(), *audio_events(second)),
            )
        )

    answers = run(both())
    assert [transcript_of(a) for a in answers] == [
        "what time is it",
        "set a timer for five minutes",
    ]


def test_audio_over_the_limit_is_refused(server: int) -> None:
    too_long = np.zeros(int((MAX_AUDIO_S + 1) * 16000), np.int16)
    answer = transcribe(server, too_long)
    assert Error.is_type(answer[-1].type)
    assert Error.from_event(answer[-1]).code == "too-long"
    assert transcript_of(transcribe(server, speech("what time is it"))) == "what time is it"


def test_text_over_the_limit_is_refused(server: int) -> None:
    answer = run(ask(server, Synthesize(text="word " * 200).event()))
    assert [e.type for e in answer] == ["error"]
    assert Error.from_event(answer[0]).code == "too-long"


def test_an_odd_audio_format_is_refused(server: int) -> None:
    start = Event("audio-start", {"rate": 0, "width": 3, "channels": 9})
    answer = run(ask(server, Transcribe().event(), start))
    assert Error.from_event(answer[-1]).code == "bad-audio"


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, float]:
    """Send raw bytes; return what came back before the server closed, and how long that
    took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # closed on us mid-send: that is an answer too
            sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
    return received, time.monotonic() - started


@pytest.mark.parametrize(
    "garbage",
    [
        b"this is not json\n",
        b"[1, 2, 3]\n",
        b'{"type": 42}\n',
        b'{"type": "audio-chunk", "payload_length": -5}\n',
        b'{"type": "describe", "data_length": 10}\n{not json}',
        b"\xff\xfe\x00garbage\n",
    ],
)
def test_garbage_closes_the_connection_and_the_server_goes_on(server: int, garbage: bytes) -> None:
    received, took = raw_exchange(server, garbage)
    assert received == b"" and took < IDLE_S
    assert Info.is_type(run(ask(server, Describe().event()))[-1].type)


def test_a_huge_payload_is_refused_before_it_is_read(server: int) -> None:
    header = json.dumps({"type": "audio-chunk", "payload_length": 100_000_000}).encode()
    received, took = raw_exchange(server, header + b"\n" + bytes(1_000_000))
    assert received == b"" and took < IDLE_S
    line = b"x" * 1_000_000  # a header line that never ends
    received, took = raw_exchange(server, line)
    assert received == b"" and took < IDLE_S
    assert Info.is_type(run(ask(server, Describe().event()))[-1].type)


def test_silent_clients_are_dropped_and_never_lock_others_out(server: int) -> None:
    silent = [socket.create_connection(("127.0.0.1", server)) for _ in range(MAX_CONNECTIONS * 3)]
    try:
        # every slot is taken by someone who says nothing: a real client still gets in
        assert Info.is_type(run(ask(server, Describe().event()))[-1].type)
        time.sleep(IDLE_S + 0.5)
        for sock in silent:  # and after the idle deadline all of them were closed
            sock.settimeout(1.0)
            assert sock.recv(10) == b""
    finally:
        for sock in silent:
            sock.close()


def test_a_client_silent_mid_request_frees_the_recognizer(server: int) -> None:
    async def stall_then_ask() -> str:
        async with AsyncTcpClient("127.0.0.1", server) as stalled:
            await stalled.write_event(Transcribe().event())
            await stalled.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            await asyncio.sleep(IDLE_S + 0.5)
            assert await stalled.read_event() is None  # it was disconnected
        return transcript_of(
            await ask(server, Transcribe().event(), *audio_events(speech("what time is it")))
        )

    assert run(stall_then_ask()) == "what time is it"


def describe_when_up(port: int, proc: subprocess.Popen[str]) -> list[Event]:
    """The server's answer to describe, once it listens (it loads models first)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return run(ask(port, Describe().event()))
        except OSError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the Wyoming server never listened"
            time.sleep(0.2)


def test_ttbt5_wyoming_serves_until_stopped(tmp_path: Path) -> None:
    port = free_port()
    with ttbt5_wyoming(port, tmp_path) as proc:
        answer = run(ask(port, Describe().event()))
        assert Info.from_event(answer[-1]).tts[0].voices[0].name == "en_US-joe-medium"
        proc.terminate()
        assert proc.wait(10) == 0


def test_ttbt5_run_serves_wyoming_when_enabled(tmp_path: Path) -> None:
    from conftest import ALSA_FIFO
    from live_mic import MicFeeder

    port = free_port()
    feeder = MicFeeder(ALSA_FIFO)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTBT5_")}
    env.update(
        {
            "TTBT5_DATA_DIR": str(tmp_path / "data"),
            "TTBT5_AUDIO__INPUT_DEVICE": "testfifo",
            "TTBT5_AUDIO__OUTPUT_DEVICE": "testspeaker",
            "TTBT5_WYOMING__ENABLED": "true",
            "TTBT5_WYOMING__HOST": "127.0.0.1",
            "TTBT5_WYOMING__PORT": str(port),
            "PYTHONPATH": str(Path(__file__).parents[1]),
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware_app", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        answer = describe_when_up(port, proc)
        assert [p.name for p in Info.from_event(answer[-1]).asr] == ["ttbt5-stt"]
        pcm = np.concatenate([speech("what time is it"), np.zeros(8000, np.int16)])
        assert transcript_of(transcribe(port, pcm)) == "what time is it"
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err[-2000:]
    finally:
        proc.kill()
        proc.wait()
        feeder.close()


def test_a_flood_of_garbage_costs_a_few_log_lines(server: int) -> None:
    from loguru import logger

    from firmware_app.edges.wyoming.complaints import PER_WINDOW

    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING", format="{message}")
    try:
        for _ in range(50):
            raw_exchange(server, b"garbage\n")
    finally:
        logger.remove(sink)
    assert len([line for line in lines if "garbage" in line]) <= PER_WINDOW
    assert Info.is_type(run(ask(server, Describe().event()))[-1].type)


def test_complaints_past_the_limit_are_counted_and_said_once() -> None:
    from loguru import logger

    from firmware_app.edges.wyoming.complaints import Complaints

    now = [0.0]
    complaints = Complaints(per_window=2, window_s=10.0, clock=lambda: now[0])
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m).strip()), level="WARNING", format="{message}")
    try:
        for i in range(5):
            complaints.warn("bad {}", i)
        now[0] = 11.0
        complaints.warn("bad {}", 5)
    finally:
        logger.remove(sink)
    assert lines == ["bad 0", "bad 1", "wyoming: 3 more warnings about clients left out", "bad 5"]
