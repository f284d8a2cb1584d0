"""Speech to text: speech-to-phrase from the sentence templates, open speech, the models."""
