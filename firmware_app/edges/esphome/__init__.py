"""The Home Assistant Assist satellite: the ESPHome native API served by the speaker.

Home Assistant connects to it as it does to an ESPHome voice device (plaintext, or Noise
encrypted with the key ESPHome writes), lists its entities and runs its own voice pipeline
with the speaker's wake word and audio. While Home Assistant is away, the local brain
answers; `satellite.Satellite` is the part the assistant is built with, `server.ApiServer`
the connections on their own asyncio thread. Nothing here is imported unless
``[esphome] enabled`` is set.
"""
