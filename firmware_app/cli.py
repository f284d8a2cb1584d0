"""The ``ttbt5`` command. Every error is one clean line and an exit code (2 for bad
configuration or usage, 1 for everything else); ``--debug`` shows the traceback."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from pathlib import Path
from typing import Any

from loguru import logger

from firmware_app import __version__
from firmware_app.config.reference import settings_as_toml
from firmware_app.config.settings import Settings, load_settings
from firmware_app.core.errors import BadInputError, ConfigError, TTBT5Error
from firmware_app.system.log_sink import StderrSink, stderr_is_terminal

EXIT_CONFIG = 2
LOCAL_HELP = (
    "run it in this process even when the service is running (by default a running "
    "'ttbt5 run' carries it out: its timers, its MQTT connection, its speaker)"
)


def _setup_logging(level: str, debug: bool) -> None:
    logger.remove()
    # Under systemd the journal adds its own time stamps.
    fmt = (
        "{level: <7} {name}: {message}"
        if os.environ.get("JOURNAL_STREAM")
        else "{time:HH:mm:ss.SSS} {level: <7} {message}"
    )
    logger.add(
        StderrSink(),
        level="DEBUG" if debug else level,
        format=fmt,
        colorize=stderr_is_terminal(),
        diagnose=False,
        backtrace=debug,
    )


def _echo_path(spec: str) -> Any:
    from firmware_app.audio.echo import parse_echo

    try:
        return parse_echo(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ttbt5", description="TTBT5 offline voice assistant")
    p.add_argument("--version", action="version", version=f"ttbt5 {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        help="config file (default: $TTBT5_CONFIG, "
        "then /etc/ttbt5/config.toml, then built-in defaults)",
    )
    common.add_argument("--debug", action="store_true", help="debug logs and tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser(
        "run", parents=[common], help="run the appliance (microphone, speaker, GPIO, MQTT)"
    )

    s = sub.add_parser("simulate", parents=[common], help="run the assistant over a WAV recording")
    s.add_argument("input", type=Path, metavar="IN.wav")
    s.add_argument("--output", type=Path, metavar="OUT.wav", help="what the speaker played")
    s.add_argument("--events", type=Path, metavar="EVENTS.jsonl", help="write the event log")
    s.add_argument("--realtime", action="store_true", help="pace the input like a live microphone")
    s.add_argument(
        "--echo",
        type=_echo_path,
        metavar="GAIN_DB[,DELAY_MS]",
        help="feed what the speaker plays back into the microphone, as a speaker beside the "
        "mic (e.g. --echo=-6,20: 6 dB quieter, 20 ms later)",
    )

    s = sub.add_parser("ask", parents=[common], help="handle typed text as if it had been heard")
    s.add_argument("text", nargs="+")
    s.add_argument(
        "--output",
        type=Path,
        metavar="OUT.wav",
        help="write the spoken reply here instead of playing it",
    )
    s.add_argument("--events", type=Path, metavar="EVENTS.jsonl")
    s.add_argument("--quiet", action="store_true", help="print the reply without speaking it")
    s.add_argument("--local", action="store_true", help=LOCAL_HELP)

    s = sub.add_parser("say", parents=[common], help="speak text")
    s.add_argument("text", nargs="+")
    s.add_argument("--output", type=Path, metavar="OUT.wav", help="write a WAV instead of playing")
    s.add_argument("--events", type=Path, metavar="EVENTS.jsonl")
    s.add_argument("--local", action="store_true", help=LOCAL_HELP)

    s = sub.add_parser("transcribe", parents=[common], help="speech to text from a WAV file")
    s.add_argument("input", type=Path, metavar="IN.wav")

    sub.add_parser("check", parents=[common], help="check models, audio devices and settings")

    s = sub.add_parser(
        "wyoming",
        parents=[common],
        help="serve the recognizer and the voice to Home Assistant (Wyoming protocol)",
    )
    s.add_argument("--host", help="address to listen on (default: [wyoming] host)")
    s.add_argument("--port", type=int, help="TCP port (default: [wyoming] port)")

    m = sub.add_parser("models", help="speech models").add_subparsers(dest="action", required=True)
    m.add_parser("list", parents=[common], help="installed and built-in models")
    s = m.add_parser("pull", parents=[common], help="install an English speech model")
    s.add_argument(
        "name",
        nargs="?",
        default=None,
        help="vosk-model-small-en-us-0.15 (the default) or faster-whisper-tiny.en (Whisper)",
    )
    s.add_argument(
        "--from",
        dest="archive",
        type=Path,
        metavar="ARCHIVE",
        help="install from a local .zip/.tar.gz or model directory instead of downloading",
    )
    s.add_argument(
        "--url",
        help="download from this URL (needs --sha256); for a Whisper model, the URL its "
        "files are under (a mirror: their pinned hashes still apply)",
    )
    s.add_argument("--sha256", help="expected SHA-256 of the archive")
    s = m.add_parser(
        "verify", parents=[common], help="check installed models against their records"
    )

    c = sub.add_parser("config", help="configuration").add_subparsers(dest="action", required=True)
    c.add_parser("show", parents=[common], help="print the effective settings (secrets masked)")
    c.add_parser("validate", parents=[common], help="check the config file and environment")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    _setup_logging("INFO", debug)
    try:
        settings = load_settings(getattr(args, "config", None))
        _setup_logging(settings.log.level, debug)
        return _dispatch(args, settings)
    except ConfigError as exc:
        _fail(exc, debug)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except (TTBT5Error, OSError) as exc:
        _fail(exc, debug)
        return 1
    except Exception as exc:  # the last line of defence: one line, not a traceback
        _fail(exc, debug, prefix=f"unexpected {type(exc).__name__}: ")
        return 1
    finally:
        # The command is done and the process ends next: what is still alive goes with
        # it. Left to the collector, interpreter shutdown would first walk every object
        # the engines and their libraries made (twice) and take the cycles among them
        # apart one by one, 0.1-0.2 s at the end of a ``simulate`` on a loaded machine.
        # Frozen, they are left to the exit; objects without cycles are still freed.
        # Only as the program itself: a caller that hands over its own arguments lives on
        # after the command, and what it made must stay collectable.
        if argv is None:
            gc.freeze()


def _fail(exc: BaseException, debug: bool, prefix: str = "") -> None:
    if debug:
        logger.opt(exception=exc).error("{}{}", prefix, exc)
    print(f"ttbt5: error: {prefix}{exc}", file=sys.stderr)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from firmware_app.app import check, simulation, wiring
    from firmware_app.config import validate

    cmd = args.command
    if cmd == "config":
        if args.action == "show":
            print(settings_as_toml(settings), end="")
            return 0
        return EXIT_CONFIG if validate.report(settings) else 0
    if cmd == "run":
        validate.require_usable(settings)
        return wiring.run(settings)
    if cmd == "simulate":
        summary = simulation.simulate(
            settings, args.input, args.output, args.events, args.realtime, echo=args.echo
        )
        for text in summary["replies"]:
            print(text)
        return 0
    if cmd in ("ask", "say"):
        text = " ".join(args.text)
        served = None
        if _to_service(args):  # one assistant per device: the running one, if any
            from firmware_app.app import control_client

            served = control_client.request(cmd, text)
        if served is not None:
            replies = served
        elif cmd == "ask":
            replies = simulation.ask(settings, text, args.output, args.events, not args.quiet)
        else:
            simulation.say(settings, text, args.output, args.events)
            replies = []
        for reply in replies:
            print(reply)
        return 0
    if cmd == "transcribe":
        return _transcribe(settings, args.input)
    if cmd == "check":
        return check.run_checks(settings)
    if cmd == "wyoming":
        return _wyoming(args, settings)
    if cmd == "models":
        return _models(args, settings)
    raise BadInputError(f"unknown command {cmd}")


def _to_service(args: argparse.Namespace) -> bool:
    """Whether to hand ``ask``/``say`` to the running service: not when asked to keep it
    local, nor when the result goes to a file or is not to be spoken (only this process
    can do that)."""
    return not (args.local or args.output or args.events or getattr(args, "quiet", False))


def _transcribe(settings: Settings, path: Path) -> int:
    from firmware_app.audio.wavio import WavReader
    from firmware_app.core.engines import GrammarTranscriber
    from firmware_app.core.errors import ModelMissingError
    from firmware_app.recognize.stt import load_transcriber
    from firmware_app.understand.actions import how_to_add

    recording = WavReader(path)  # a bad file fails here, before the model loads
    stt, problem, _ = load_transcriber(settings)
    if stt is None:
        raise ModelMissingError(problem or "no speech recognizer")
    stt.start()
    for pcm in recording.frames():
        stt.feed(pcm)
    text = stt.finish()
    if not text and isinstance(stt, GrammarTranscriber) and stt.out_of_grammar:
        # speech-to-phrase alone hears only commands: say what hears the rest
        print(f"ttbt5: no command heard; {how_to_add(False, True)}", file=sys.stderr)
        return 1
    print(text)
    return 0


def _wyoming(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from firmware_app.config.home import WyomingSettings
    from firmware_app.edges.wyoming.server import serve

    given = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        cfg = WyomingSettings.model_validate({**settings.wyoming.model_dump(), **given})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"--{first['loc'][0]}: {first['msg']}") from None
    return serve(settings.model_copy(update={"wyoming": cfg}))


def _models(args: argparse.Namespace, settings: Settings) -> int:
    from firmware_app.recognize import models

    if args.action == "list":
        from firmware_app.config.settings import BUILTIN_WAKE_MODELS
        from firmware_app.recognize.stt import open_model_dir
        from firmware_app.speak.piper import default_voice

        for path in models.installed(settings):
            active = " (active)" if path == open_model_dir(settings) else ""
            print(f"stt   {path.name}{active}  {path}")
        if not models.installed(settings):
            print(
                f"stt   (none installed in {models.models_dir(settings)}; run 'ttbt5 models pull')"
            )
        for name in BUILTIN_WAKE_MODELS:
            active = " (active)" if name in settings.wake.models else ""
            print(f"wake  {name}{active}  (built in)")
        voice = settings.tts.voice or default_voice()
        print(f"tts   {voice.stem} (active)  {voice}")
        return 0
    if args.action == "pull":
        name = args.name or models.DEFAULT_MODEL
        path = models.pull(settings, name, archive=args.archive, url=args.url, sha256=args.sha256)
        from firmware_app.recognize.stt import open_model_dir

        print(f"installed {path}")
        if path != open_model_dir(settings):
            print(f"to use it, set [stt] model = {json.dumps(str(path))}")
        return 0
    if args.action == "verify":
        failed = False
        found = models.installed(settings)
        if not found:
            print(f"no models installed in {models.models_dir(settings)}")
            return 1
        for path in found:
            problems = models.verify(path)
            print(f"{'ok' if not problems else 'FAIL'}  {path.name}")
            for problem in problems:
                print(f"      {problem}")
            failed = failed or bool(problems)
        return 1 if failed else 0
    return EXIT_CONFIG
