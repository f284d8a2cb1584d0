"""Replies to sound: utterances, the announcement queue, synthesis, the speaker worker."""
