"""One exception root for the product; each error also inherits the built-in it resembles,
so callers that only know Python's exceptions still catch it sensibly."""


class TTBT5Error(Exception):
    """Root of every error the product raises on purpose."""


class ConfigError(TTBT5Error, ValueError):
    """The configuration file or an environment override is wrong. The message is one line
    naming the key, the bad value and what is allowed."""


class ModelMissingError(TTBT5Error, FileNotFoundError):
    """A model file or directory is not installed. The message says what to run."""


class EngineUnavailableError(TTBT5Error, ImportError):
    """An optional engine's library is not installed or cannot load."""


class AudioDeviceError(TTBT5Error, OSError):
    """An ALSA device is missing, busy or went away."""


class BadInputError(TTBT5Error, ValueError):
    """Outside input (a WAV file, a payload, a reply) is malformed."""
