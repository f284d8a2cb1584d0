"""The ``info`` answer to ``describe``: what Home Assistant shows and picks from."""

from __future__ import annotations

from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram, TtsVoice

from firmware_app import __version__
from firmware_app.edges.wyoming.engines import SharedRecognizer, SharedVoice

PRODUCT = Attribution(name="TTBT5", url="")  # the product has no public page of its own
SPHINX = Attribution(name="CMU Sphinx", url="https://github.com/cmusphinx/pocketsphinx")
PIPER = Attribution(name="Piper", url="https://github.com/rhasspy/piper")
LANGUAGES = ["en"]  # the command sentences and the recognizer's dictionary are English


def build_info(recognizer: SharedRecognizer | None, voice: SharedVoice | None) -> Info:
    asr = []
    if recognizer is not None:
        model = AsrModel(
            name="ttbt5-commands",
            attribution=SPHINX,
            installed=True,
            description=recognizer.description,
            version=None,
            languages=LANGUAGES,
        )
        asr.append(
            AsrProgram(
                name="ttbt5-stt",
                attribution=PRODUCT,
                installed=True,
                description="TTBT5 speech recognition",
                version=__version__,
                models=[model],
            )
        )
    tts = []
    if voice is not None:
        spoken = TtsVoice(
            name=voice.name,
            attribution=PIPER,
            installed=True,
            description=f"Piper {voice.name}",
            version=None,
            languages=[voice.language],
        )
        tts.append(
            TtsProgram(
                name="ttbt5-tts",
                attribution=PRODUCT,
                installed=True,
                description="TTBT5 voice",
                version=__version__,
                voices=[spoken],
            )
        )
    return Info(asr=asr, tts=tts)
