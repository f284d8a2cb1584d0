"""The assistant itself: states, the table, the dispatcher, messages in, events out."""
