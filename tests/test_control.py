"""One assistant per device: ``ttbt5 ask``/``say`` carried out by the running service over
its control socket (a real Unix socket, the real Assistant on a real ALSA device)."""

from __future__ import annotations

import json
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import FakeTts, FakeVad, FakeWake, ScriptedStt
from harness import start_service, wait_until

from firmware_app import cli
from firmware_app.app import control, control_client
from firmware_app.app.control import MAX_REQUEST_BYTES, ControlError
from firmware_app.app.control_server import ControlServer
from firmware_app.app.loading import Engines
from firmware_app.app.wiring import assembled
from firmware_app.audio.playback import AlsaSpeaker
from firmware_app.core.assistant import Assistant
from firmware_app.core.events import Event
from firmware_app.core.messages import Inbox, Stop
from firmware_app.core.parts import RealClock


class Service:
    """The assistant running on its own thread, as under ``ttbt5 run``, with its socket."""

    def __init__(self, settings, runtime_dir: Path) -> None:
        self.events: list[Event] = []
        self.inbox = Inbox()
        engines = Engines(FakeWake(), FakeVad(), ScriptedStt(), None, FakeTts())
        speaker = AlsaSpeaker("testspeaker", 16000, self.inbox.post)
        self._assembly = assembled(
            settings,
            engines,
            clock=RealClock(),
            inbox=self.inbox,
            speaker=speaker,
            observers=[self.events.append],
            extras=False,
        )
        self.assistant: Assistant = self._assembly.__enter__()
        self.assistant.start()
        self.path = runtime_dir / control.SOCKET_NAME
        self.server = ControlServer(self.path, self.inbox.post, self.assistant.bus)
        self.server.start()
        self._thread = threading.Thread(target=self.assistant.run, daemon=True)
        self._thread.start()

    def of(self, type_: str) -> list[Event]:
        return [e for e in list(self.events) if e.type == type_]

    def close(self) -> None:
        self.server.close()
        self.inbox.post(Stop())
        self._thread.join(timeout=5)
        self._assembly.__exit__(None, None, None)


@pytest.fixture
def service(settings, tmp_path: Path) -> Iterator[Service]:
    s = Service(settings, tmp_path / "run")
    yield s
    s.close()


def raw(path: Path, data: bytes) -> list[dict[str, object]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return [json.loads(line) for line in received.splitlines()]


def test_ask_is_answered_by_the_running_service_as_if_heard(service: Service) -> None:
    replies = control_client.request("ask", "hey jarvis what time is it", service.path)
    assert replies is not None and len(replies) == 1 and replies[0].startswith("It's ")
    assert service.of("transcript")[-1].fields["text"] == "what time is it"
    assert control_client.request("ask", "repeat that", service.path) == replies


def test_a_timer_set_with_ask_is_the_services_timer(service: Service) -> None:
    assert control_client.request("ask", "set a pasta timer for one second", service.path) == [
        "Pasta timer set for 1 second."
    ]
    wait_until(lambda: any(e.fields["action"] == "ring" for e in service.of("timer")))
    assert service.of("timer")[-1].fields["name"] == "pasta"


def test_say_returns_when_its_own_speech_was_heard(service: Service) -> None:
    assert control_client.request("say", "dinner is ready", service.path) == []
    (end,) = [e for e in service.of("speak_end") if e.fields["origin"] == "cmd"]
    assert str(end.fields["request_id"]).startswith("control-") and end.fields["cut"] is False


def test_a_request_the_assistant_refuses_is_an_error(service: Service) -> None:
    with pytest.raises(ControlError, match="say needs a non-empty text"):
        control_client.request("say", " ", service.path)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"not json\n", "not JSON"),
        (b'{"command": "shout", "text": "hi"}\n', "command"),
        (b'{"command": "say", "text": "hi", "extra": 1}\n', "extra"),
        (b'{"command": "say", "text": ""}\n', "text"),
        (b"\xff\xfe\n", "UTF-8"),
        (b"x" * (MAX_REQUEST_BYTES + 10), "too large"),
        (b"", "not JSON"),
    ],
)
def test_a_bad_request_gets_one_error_line_and_the_service_goes_on(
    service: Service, payload: bytes, error: str
) -> None:
    answers = raw(service.path, payload)
    assert len(answers) == 1 and answers[0]["ok"] is False
    assert error in str(answers[0]["error"])
    assert control_client.request("ask", "what time is it", service.path)  # still serving


def test_the_socket_is_the_services_own(service: Service) -> None:
    mode = stat.S_IMODE(service.path.stat().st_mode)
    assert mode == 0o660 and stat.S_ISSOCK(service.path.stat().st_mode)


def test_without_a_service_the_caller_runs_it_itself(tmp_path: Path) -> None:
    assert control_client.request("ask", "what time is it", tmp_path / "control.sock") is None
    stale = tmp_path / "stale.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(stale))
    sock.close()  # a socket file left by a service that died
    assert control_client.request("ask", "what time is it", stale) is None


def test_the_command_line_uses_the_running_service(
    service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(service.path.parent))
    monkeypatch.setenv("TTBT5_DATA_DIR", str(service.path.parent / "cli-data"))
    assert cli.main(["ask", "hey", "jarvis,", "what", "time", "is", "it"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("It's ") and service.of("reply")[-1].fields["text"] == printed
    assert cli.main(["say", "the", "washing", "is", "done"]) == 0
    assert any(e.fields.get("origin") == "cmd" for e in service.of("speak_end"))


def test_ttbt5_run_serves_ttbt5_ask_and_say(tmp_path: Path, alsa_files) -> None:
    """The appliance itself (real models, ALSA file devices) and the command line as two
    processes: the typed request is the service's, and so is the timer it sets."""
    import numpy as np

    from firmware_app.core.events import read_events

    mic, _ = alsa_files
    mic.write_bytes(np.zeros(16000 * 60, dtype=np.int16).tobytes())  # a quiet kitchen
    events = tmp_path / "events.jsonl"
    service = start_service(tmp_path, {"TTBT5_LOG__EVENTS": str(events)})
    try:
        service.wait_serving()
        asked = service.ttbt5("ask", "hey jarvis, set a pasta timer for two seconds")
        assert asked.returncode == 0, asked.stderr
        assert asked.stdout.strip() == "Pasta timer set for 2 seconds."
        said = service.ttbt5("say", "dinner is ready")
        assert said.returncode == 0 and said.stdout == "", said.stderr

        def rang() -> bool:
            return any(e["type"] == "timer" and e["action"] == "ring" for e in read_events(events))

        wait_until(rang, timeout=30, what="the service's own timer to ring")
    finally:
        err = service.stop()
    assert service.proc.returncode == 0, err
    got = read_events(events)
    assert [e["text"] for e in got if e["type"] == "transcript"] == [
        "set a pasta timer for two seconds"
    ]
    assert any(e["type"] == "speak_end" and e["origin"] == "cmd" for e in got)
    assert not service.socket.exists()  # removed on the way out
