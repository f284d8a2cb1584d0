"""Settings of the microphone's per-frame path (``listen/``): the wake word and its engines,
the voice detector that ends a request, and the echo canceller with the "stop" spotter that
works behind it. The wake models each engine knows are here because the checks need them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from firmware_app.config.errors import quoted
from firmware_app.config.section import Section

BUILTIN_WAKE_MODELS = ("hey_jarvis", "alexa", "hey_mycroft", "okay_nabu", "hey_rhasspy")
MICRO_WAKE_MODELS = ("hey_jarvis", "alexa", "hey_mycroft", "okay_nabu")
WakeEngineName = Literal["openwakeword", "microwakeword"]
WakeVerify = Literal["off", "both"]


class WakeSettings(Section):
    models: list[str] = Field(default_factory=lambda: ["hey_jarvis"], min_length=1)
    """Wake word models: built-in names (hey_jarvis, alexa, hey_mycroft, okay_nabu,
    hey_rhasspy) or paths to .tflite/.onnx openWakeWord or .json microWakeWord models."""
    engines: dict[str, WakeEngineName] = Field(default_factory=dict)
    """Engine per model: ``openwakeword`` (the default for a model not listed) or
    ``microwakeword`` (a fraction of the CPU, for a Pi Zero 2 W; built in: hey_jarvis, alexa,
    hey_mycroft, okay_nabu, or a path to a microWakeWord .json). Example:
    ``engines = { hey_jarvis = "microwakeword" }``. docs/wake.md compares them."""
    threshold: float | None = Field(None, gt=0.0, lt=1.0)
    """One score threshold for every model; unset, each model uses its measured default
    (docs/wake.md). Raise it if it wakes by itself, lower it if it misses you."""
    thresholds: dict[str, float] = Field(default_factory=dict)
    """Threshold per model name, overriding ``threshold`` for that model."""
    verify: WakeVerify = "both"
    """``both`` (the default): microWakeWord also listens for the openWakeWord models it has
    a measured rule for (hey_jarvis), and a near miss of openWakeWord that microWakeWord
    confirms wakes too: fewer missed wakes, no more false wakes on the corpus, a few more
    sound-alikes (docs/wake.md); it costs about a third more CPU than openWakeWord alone
    and 2.5 MB. ``off``: each model is heard by its own engine alone. A model set to
    microwakeword (as the ``zero`` profile does) is never verified."""
    second_look: bool = True
    """A near miss of openWakeWord's hey_jarvis is also looked at again by a small model
    that reads openWakeWord's own features at the miss (trained on many synthetic voices,
    shipped in the package): fewer missed wakes for voices openWakeWord hears less well,
    at almost no CPU (docs/wake.md). Independent of ``verify``; off: openWakeWord's
    score, and microWakeWord with ``verify = "both"``, decide alone."""
    refractory_s: float = Field(2.0, ge=0.0, le=30.0)
    """After a detection, ignore further detections for this long (one utterance wakes once)."""
    preroll_ms: int = Field(500, ge=0, le=2000)
    """Audio from just before the detection that is handed to speech recognition, so a
    request said in one breath with the wake phrase is heard whole (when it ends in a
    pause after the wake phrase, recognition waits for speech instead)."""

    clips_kept: int = Field(5, ge=1, le=50)
    """Recent wake clips (pre-roll plus 2 s) held in memory, so the last wake can be marked
    false (``cmd/false_wake``, the Home Assistant button); never written unless
    ``false_wake_dir`` is set."""
    false_wake_dir: Path | None = None
    """Opt-in: a wake marked false is saved here (WAV + JSON) for tuning. Unset (the
    default), clips of your home's audio stay in memory only."""
    false_wake_max_mb: float = Field(20.0, ge=0.1, le=100_000)
    """Most space the clips in ``false_wake_dir`` take (a clip is about 130 KB): before a
    new one is written, the oldest are deleted to stay under it."""
    false_wake_keep: int = Field(100, ge=1, le=100_000)
    """Most clips kept in ``false_wake_dir`` (each a WAV and its JSON note); the oldest
    are deleted first."""

    @field_validator("models")
    @classmethod
    def _known_or_path(cls, models: list[str]) -> list[str]:
        for name in models:
            if name in BUILTIN_WAKE_MODELS:
                continue
            if not name.endswith((".tflite", ".onnx", ".json")):
                raise ValueError(
                    f"{quoted(name)} is neither a built-in model "
                    f"({', '.join(BUILTIN_WAKE_MODELS)}) "
                    "nor a path to a .tflite/.onnx (openWakeWord) or .json (microWakeWord) file"
                )
        return models

    @field_validator("thresholds")
    @classmethod
    def _thresholds_in_range(cls, thresholds: dict[str, float]) -> dict[str, float]:
        for name, value in thresholds.items():
            if not 0.0 < value < 1.0:
                raise ValueError(f"threshold {value} for {quoted(name)} must be between 0 and 1")
        return thresholds

    @model_validator(mode="after")
    def _engine_fits_model(self) -> WakeSettings:
        for name in [*self.engines, *self.thresholds]:
            if name not in self.models:
                raise ValueError(
                    f"{quoted(name)} is not one of the wake models {quoted(self.models)}"
                )
        for name in self.models:
            micro = self.engine_of(name) == "microwakeword"
            if micro and not (name in MICRO_WAKE_MODELS or name.endswith(".json")):
                raise ValueError(
                    f"microwakeword has no model {quoted(name)}: use one of "
                    f"{', '.join(MICRO_WAKE_MODELS)} or a path to a .json model"
                )
            if not micro and name.endswith(".json"):
                raise ValueError(
                    f"{quoted(name)} is a microWakeWord model: set engines.{quoted(name)}"
                )
        return self

    def engine_of(self, model: str) -> WakeEngineName:
        return self.engines.get(model, "openwakeword")


class VadSettings(Section):
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    """Silero speech probability above which a 32 ms chunk counts as speech."""
    silence_ms: int = Field(600, ge=100, le=5000)
    """End-of-speech hangover: this much silence after speech ends the request, when no
    command recognizer judges it (an open-speech recognizer alone; with speech-to-phrase,
    see ``done_ms``, ``complete_ms`` and ``unfinished_ms``)."""
    done_ms: int = Field(160, ge=0, le=5000)
    """Silence that ends a request sooner, once the command recognizer holds a whole
    command (0: always wait ``silence_ms``)."""
    complete_ms: int = Field(80, ge=0, le=5000)
    """Silence that ends a request sooner still once that command is complete: nothing
    the recognizer's grammar lets follow it would change what it asks ("what time is
    it", not "stop", which may go on "... the pasta timer"). At most ``done_ms`` (0: a
    complete command waits ``done_ms`` like any whole one)."""
    unfinished_ms: int = Field(1600, ge=100, le=10000)
    """Silence allowed inside a request the command recognizer does not hear as a whole
    command yet (the start of one, "set a timer for ...", or words it does not make out,
    perhaps a misheard start): a pause to think does not cut it."""
    start_timeout_s: float = Field(5.0, gt=0, le=30)
    """Give up and return to idle when no speech starts this long after the wake word."""
    max_request_s: float = Field(15.0, gt=1, le=120)
    """Longest request; recording stops here even if the speaker keeps talking."""


class EchoSettings(Section):
    engine: Literal["speex", "webrtc", "off"] = "speex"
    """Echo canceller between the speaker and everything that listens (wake word, VAD,
    recognizer, stop word): ``speex`` (libspeexdsp), ``webrtc`` (WebRTC AEC3, needs the
    pywebrtc-audio package) or ``off``."""
    tail_ms: int = Field(200, ge=50, le=1000)
    """Longest echo the canceller models: the speaker-to-mic delay, the room's
    reverberation and the output latency the reference does not know about. Raise it for
    speakers with large output buffers (USB speakerphones, Bluetooth)."""
    stop_word: bool = True
    """While it speaks or a timer rings, "stop" said alone (no wake word) stops it."""
    stop_threshold: float = Field(1e-30, gt=0.0, lt=1.0)
    """pocketsphinx keyphrase threshold for "stop": smaller hears more, and more wrongly
    (a detection also needs the word said alone, with a pause on both sides)."""
    stop_whisper: bool = False
    """When the recognizer holds a Whisper model (``[stt] engine = "whisper"``, or
    ``auto`` with one), Whisper judges each word the stop spotter heard alone, instead of
    pocketsphinx's tiny grammar: it tells "stop" from "top", "non-stop" or "it stopped"
    where the grammar cannot, at about half a CPU second per candidate word. Off by
    default: listening waits while Whisper judges (seconds per candidate on a Pi 4), so
    the stop, and every frame behind it, comes that much later."""
