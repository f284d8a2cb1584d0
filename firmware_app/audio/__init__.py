"""Audio in and out: ALSA devices, WAV files, chimes, and the speaker used by ``simulate``."""
