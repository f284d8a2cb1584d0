"""Hearing: echo cancelling, the wake word, voice activity, the stop word, the request's audio."""
