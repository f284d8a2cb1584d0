"""Speech-to-phrase and an open-vocabulary recognizer over the same request.

Speech-to-phrase (``recognize/phrases.py``) hears the command sentences and nothing else,
in tens of milliseconds; Vosk or Whisper hears any words. Both are fed every frame of a
request, and the result comes from the first when it heard a command, from the second
otherwise (for the online model, or for the nearest command, ``recognize/nearest.py``).

A grammar forces what it hears into its sentences: where the sound is unclear it picks
the command nearest in sound, and that is how commands are carried out wrongly ("set a
cake timer" for "an egg timer", "fifty five" for "forty five") and how a question said
after a false wake becomes one ("Can you pass me the salt and the pepper, please?" as
"can you count three hours twelve minutes for me"). Whisper, which hears whole English
sentences, gets those right, and says how sure it is. So with Whisper beside it and
``check_commands`` on, a command is heard by both, and Whisper's reading wins when Whisper
is sure of it (``SURE_LOGPROB``) and it reads as another command, or as a sentence of its
own that is none (``OTHER_SPEECH_WORDS``, ``OTHER_SPEECH_APART``). Where Whisper is
unsure, as on the voices and rooms it hears worst, speech-to-phrase's command stands.
The price is Whisper's time on every command (docs/speech.md has the figures).
"""

from __future__ import annotations

from collections.abc import Iterator

from loguru import logger

from firmware_app.core.engines import OpenTranscriber, SureTranscriber
from firmware_app.core.events import Event
from firmware_app.recognize.nearest import spoken
from firmware_app.recognize.phrases import PhraseTranscriber
from firmware_app.understand.actions import strip_wake_words

SURE_LOGPROB = -0.25
"""Whisper is sure of a transcript whose tokens' mean log-probability is at least this.
Chosen on the speech corpus (every woken request heard by both, docs/speech.md): the
sentences it read right where speech-to-phrase was wrong or took other speech for a
command scored -0.3 to -0.02, those it misheard where speech-to-phrase was right mostly
lower; from -0.3 to -0.2 the counts hardly move."""
OTHER_SPEECH_WORDS = 4
"""Whisper's transcript, when sure, overrules a command as other speech only when it is
a sentence this long: a word or two ("tap, tap" for "stop") is what it makes of a word it
barely heard."""
OTHER_SPEECH_APART = 1 / 3
"""... and only when it differs from the command in more than this share of the
command's words (each word said instead, added or left out): nearer, it is the command
with a slip of Whisper's ("set in egg timer for three minutes.", "set a timer for 45
seconds quality." for "... called tea")."""


class HybridTranscriber:
    """Commands from speech-to-phrase, checked by Whisper where it is sure; the open
    transcript for everything else. The open recognizer is finished only when it is
    needed: Whisper does all its work there, so with ``check_commands`` off (or Vosk) a
    command does not wait for it."""

    out_of_grammar = False
    open_speech = True
    near_command: str | None = None

    def __init__(
        self, phrases: PhraseTranscriber, open_: OpenTranscriber, check_commands: bool = False
    ) -> None:
        self.phrases = phrases
        self.vosk = open_  # the open recognizer, Vosk or Whisper
        self.check_commands = check_commands and isinstance(open_, SureTranscriber)
        self.source = ""  # "phrases" or the open recognizer's name: who answered last

    def hold_timers(self, timers: dict[str, str | None]) -> None:
        self.phrases.hold_timers(timers)

    def observe(self, event: Event) -> None:
        self.phrases.observe(event)

    def rebuild(self) -> None:
        self.phrases.rebuild()

    def start(self) -> None:
        self.phrases.start()
        self.vosk.start()

    def feed(self, pcm: bytes) -> None:
        self.phrases.feed(pcm)
        self.vosk.feed(pcm)

    def partial_command(self) -> str | None:
        return self.phrases.partial_command()

    def endings(self, command: str) -> Iterator[str] | None:
        return self.phrases.endings(command)

    def finish(self) -> str:
        self.near_command = None
        command = self.phrases.finish()
        if command and not self.check_commands:
            self.source = "phrases"
            self.vosk.start()  # what it heard is not needed: drop it unheard
            return command
        text = self.vosk.finish()
        reading = self.phrases.reading(text) if text else None
        if command and not self._overrules(command, text, reading):
            self.source = "phrases"
            return command
        if command:
            logger.info("speech-to-phrase heard {!r}; Whisper, sure, {!r}", command, text)
        self.source = self.vosk.name
        self.near_command = reading
        return text

    def _overrules(self, command: str, text: str, reading: str | None) -> bool:
        """Whether the open recognizer's ``text`` (``reading``: the command it is) wins
        over the ``command`` speech-to-phrase heard: it is sure of it, and it is another
        command, or a sentence that is none."""
        if not isinstance(self.vosk, SureTranscriber) or not text:
            return False
        if self.vosk.logprob is None or self.vosk.logprob < SURE_LOGPROB:
            return False
        if reading is not None:
            return reading != command
        words, said = spoken(strip_wake_words(text)), command.split()
        apart = _words_apart(words, said)
        return len(words) >= OTHER_SPEECH_WORDS and apart > OTHER_SPEECH_APART * len(said)


def _words_apart(one: list[str], other: list[str]) -> int:
    """Words said instead, added or left out from ``one`` to ``other`` (edit distance)."""
    row = list(range(len(other) + 1))
    for i, word in enumerate(one, 1):
        diagonal, row[0] = row[0], i
        for j, theirs in enumerate(other, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (word != theirs))
    return row[-1]
