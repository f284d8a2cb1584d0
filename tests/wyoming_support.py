"""``ttbt5 wyoming`` started as a user starts it, for the tests that talk to the real
process (the Wyoming server's own tests and Home Assistant's)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LISTEN_TIMEOUT_S = 120  # it loads its models before it listens; not a performance figure


@contextlib.contextmanager
def ttbt5_wyoming(
    port: int, workdir: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The server on 127.0.0.1:``port``, its data under ``workdir`` and its output in
    ``workdir/wyoming.log`` (shown when it fails), with ``env`` added to its environment
    (settings as ``TTBT5_<SECTION>__<KEY>``); yields the process once it listens and
    stops it afterwards if the test has not."""
    log = workdir / "wyoming.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "firmware_app",
                "wyoming",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env={
                "TTBT5_DATA_DIR": str(workdir / "data"),
                "PATH": "/usr/bin:/bin",
                "PYTHONPATH": str(ROOT),
                **(env or {}),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc, log)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + LISTEN_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"never listened:\n{log.read_text()}")


def transcribe(port: int, pcm: bytes) -> str:
    """What the server on 127.0.0.1:``port`` hears in ``pcm`` (16 kHz mono 16-bit), asked
    as Home Assistant asks it."""
    import asyncio

    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    async def ask() -> str:
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Transcribe().event())
            await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            for i in range(0, len(pcm), 2048):
                chunk = AudioChunk(rate=16000, width=2, channels=1, audio=pcm[i : i + 2048])
                await client.write_event(chunk.event())
            await client.write_event(AudioStop().event())
            while (event := await client.read_event()) is not None:
                if Transcript.is_type(event.type):
                    return Transcript.from_event(event).text
        return ""

    return asyncio.run(asyncio.wait_for(ask(), 60))
