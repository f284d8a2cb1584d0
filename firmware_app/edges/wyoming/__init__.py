"""The speaker's own engines for Home Assistant, over the Wyoming protocol.

Home Assistant's Wyoming integration, added by host and port, then offers the speaker's
recognizer (speech-to-phrase compiled from the command sentences, with Vosk for open
speech when a model is installed) and its Piper voice to any Assist pipeline, so the
whole pipeline can stay on the device. Events are the ``wyoming`` package's own; what
this package adds is what a port open on a network needs: every frame, request and
connection bounded, and a client that stalls or lies costs nothing but its own socket.

``ttbt5 wyoming`` serves on its own; ``[wyoming] enabled = true`` serves inside
``ttbt5 run`` as well.
"""
