"""``ttbt5 check``: every configured part tried for real, one line each, ok / WARN / FAIL.

"Configured" is not "working": the broker gets a real MQTT connection (with the configured
credentials and TLS) and the online model a real chat request, so a broker that is down, a
refused password, a wrong model name or a dead API key shows here, not hours later in the
kitchen. A part the speaker cannot work without (wake word, voice, VAD, a speech
recognizer, the store) or that is configured but unusable (MQTT, LLM, a file the config
names) is a FAIL and the exit status is 1; devices that may be plugged in later are WARN.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any, Literal

from firmware_app.config.settings import LlmSettings, MqttSettings, Settings, read_secret
from firmware_app.config.validate import problems

Status = Literal["ok", "WARN", "FAIL"]
Result = tuple[Status, str, str]

PROBE_TIMEOUT_S = 8.0
"""Longest wait for the broker's or the model's answer."""


def run_checks(settings: Settings, out: Callable[[str], None] = print) -> int:
    """Print one line per part; 1 when anything failed, else 0."""
    results = check_all(settings)
    for status, name, detail in results:
        out(f"{status:<4} {name}: {detail}")
    return 1 if any(status == "FAIL" for status, _, _ in results) else 0


def check_all(settings: Settings) -> list[Result]:
    results: list[Result] = [("FAIL", "config", line) for line in problems(settings)]

    def probe(name: str, fn: Callable[[], str], warn_only: bool = False) -> None:
        try:
            results.append(("ok", name, fn() or ""))
        except Exception as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            results.append(("WARN" if warn_only else "FAIL", name, detail))

    probe("wake word models", lambda: _wake(settings))
    probe("voice (TTS)", lambda: _tts(settings))
    probe("voice activity", _vad)
    probe("speech recognition", lambda: _stt(settings))
    if _open_speech_missing(settings) and settings.llm.url:
        # the one line about recognition, a warning: the model's questions need open speech
        status, name, detail = results.pop()
        results.append(("WARN" if status == "ok" else status, name, detail))
    probe("microphone", lambda: _device("input", settings.audio.input_device), warn_only=True)
    probe("speaker", lambda: _device("output", settings.audio.output_device), warn_only=True)
    probe("store", lambda: _store(settings))
    if settings.mqtt.host:
        probe("mqtt", lambda: probe_mqtt(settings.mqtt))
    if settings.llm.url:
        probe("llm", lambda: probe_llm(settings.llm))
    if settings.esphome.enabled:
        from firmware_app.edges.esphome.probe import probe_satellite

        probe("home assistant satellite", lambda: probe_satellite(settings))
    return results


def probe_mqtt(cfg: MqttSettings, timeout: float = PROBE_TIMEOUT_S) -> str:
    """Connect to the broker as the service would (its own client id, so a running service
    is not disconnected), wait for the broker's CONNACK, disconnect."""
    from firmware_app.edges.mqtt.connect import paho_client

    where = f"{cfg.host}:{cfg.port}"
    client = paho_client(cfg, f"ttbt5-{cfg.device_id}-check-{os.getpid()}")
    answered = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome["reason"] = reason
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(str(cfg.host), cfg.port, keepalive=max(5, int(timeout)))
    except OSError as exc:
        raise ConnectionError(f"cannot reach the broker at {where}: {_why(exc)}") from None
    client.loop_start()
    try:
        if not answered.wait(timeout):
            raise TimeoutError(f"the broker at {where} did not answer within {timeout:g} s")
        reason = outcome["reason"]
        if reason.is_failure:
            raise ConnectionError(f"the broker at {where} refused the connection: {reason}")
    finally:
        client.disconnect()
        client.loop_stop()
    tls = " over TLS" if cfg.tls_ca else ""
    return f"connected to {where}{tls}"


def probe_llm(cfg: LlmSettings, timeout: float = PROBE_TIMEOUT_S) -> str:
    """One real chat request with the configured URL, key and model (no retries, a short
    answer): proves the whole path the assistant will use."""
    from firmware_app.understand.llm.client import ChatClient

    key = read_secret(cfg.api_key, cfg.api_key_file, "llm.api_key_file", "llm_api_key")
    quick = cfg.model_copy(update={"retries": 0, "max_reply_chars": 100})
    client = ChatClient(quick, key)
    messages = [{"role": "user", "content": "Say OK."}]

    async def ask() -> int:
        try:
            result = await asyncio.wait_for(client.stream(messages, lambda _text: None), timeout)
            return result.chars
        finally:
            await client.aclose()

    try:
        asyncio.run(ask())
    except TimeoutError:
        raise TimeoutError(f"{client.host} gave no answer within {timeout:g} s") from None
    return f"{client.host} answered with model {cfg.model}"


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _wake(settings: Settings) -> str:
    from firmware_app.listen.wake import model_path

    return ", ".join(str(model_path(m).name) for m in settings.wake.models)


def _tts(settings: Settings) -> str:
    from firmware_app.speak.piper import default_voice

    voice = settings.tts.voice or default_voice()
    if not voice.is_file():
        raise FileNotFoundError(f"{voice} does not exist")
    return voice.name


def _vad() -> str:
    from firmware_app.listen.vad import SileroVad

    SileroVad()
    return "silero"


def _stt(settings: Settings) -> str:
    """The recognizer the service would load; without one every request is answered with
    "I can't understand speech", so its absence is a failure."""
    from firmware_app.recognize.stt import load_transcriber

    active, problem, description = load_transcriber(settings)
    if active is None:
        raise RuntimeError(f"no speech recognizer: {problem}")
    close = getattr(active, "close", None)
    if callable(close):
        close()
    if _open_speech_missing(settings):
        description += "; `ttbt5 models pull` adds open speech"
    return f"{description} (stt.engine = {settings.stt.engine})"


def _open_speech_missing(settings: Settings) -> bool:
    """Commands only: ``auto`` found no open-speech model (Vosk or Whisper) for questions
    beyond the commands (optional without an LLM)."""
    from firmware_app.core.errors import ModelMissingError
    from firmware_app.recognize.stt import check_model_dir, open_model_dir
    from firmware_app.recognize.whisper import check_whisper_dir, is_whisper_dir

    if settings.stt.engine != "auto":
        return False
    path = open_model_dir(settings)
    try:
        if is_whisper_dir(path):
            check_whisper_dir(path)
        else:
            check_model_dir(path)
    except ModelMissingError:
        return True
    return False


def _device(kind: str, name: str) -> str:
    import alsaaudio

    from firmware_app.audio.alsa_errors import alsa_errors_quiet

    pcm_type = alsaaudio.PCM_CAPTURE if kind == "input" else alsaaudio.PCM_PLAYBACK
    with alsa_errors_quiet():  # the error comes once, in this check's line
        pcm = alsaaudio.PCM(
            type=pcm_type,
            device=name,
            rate=16000,
            channels=1,
            format=alsaaudio.PCM_FORMAT_S16_LE,
            periodsize=1280,
        )
    pcm.close()
    return name


def _store(settings: Settings) -> str:
    from firmware_app.system.store import Store

    store = Store(settings.store_path)
    recovered, status = store.recovered_from, store.status()
    store.close()
    if status["status"] != "ok":  # the service would run, but keep nothing
        raise RuntimeError(f"{settings.store_path}: {status['error']}")
    return str(settings.store_path) + (f" (recovered; old file {recovered})" if recovered else "")
