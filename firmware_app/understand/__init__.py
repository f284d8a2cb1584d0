"""Text to meaning and action: intents, local actions, timers, the online model."""
