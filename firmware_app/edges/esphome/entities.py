"""The entities Home Assistant shows for the speaker, besides the Assist satellite itself
(which it makes from the voice assistant feature flags): a media player that plays WAV
(announcements included, so Home Assistant never asks for MP3), the wake word in use, a
mute switch and the health figures the speaker already keeps."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message as Proto

from firmware_app.edges.esphome.proto import pb

MEDIA_PLAYER, WAKE_WORD, MUTE = 1, 2, 3


@dataclass(frozen=True)
class Sensor:
    key: int
    object_id: str
    name: str
    status_key: str
    icon: str


SENSORS = (
    Sensor(10, "wake_count", "Wake words heard", "wake_count", "mdi:account-voice"),
    Sensor(11, "errors", "Errors", "errors", "mdi:alert-circle-outline"),
    Sensor(12, "timers", "Local timers", "timers", "mdi:timer-outline"),
)


def entity_list(mac: str, wake_words: list[str]) -> list[Proto]:
    def uid(object_id: str) -> str:
        return f"{mac.replace(':', '').lower()}-{object_id}"

    wav = [
        pb.MediaPlayerSupportedFormat(format="wav", purpose=purpose)
        for purpose in (0, 1)  # DEFAULT, ANNOUNCEMENT; any rate and channels: resampled here
    ]
    out: list[Proto] = [
        pb.ListEntitiesMediaPlayerResponse(
            object_id="media_player",
            key=MEDIA_PLAYER,
            name="Media Player",
            unique_id=uid("media_player"),
            supports_pause=False,
            supported_formats=wav,
        ),
        pb.ListEntitiesSelectResponse(
            # not "wake_word": Home Assistant makes a select of that name itself from the
            # voice assistant configuration
            object_id="wake_word_model",
            key=WAKE_WORD,
            name="Wake word model",
            unique_id=uid("wake_word_model"),
            icon="mdi:microphone-message",
            options=wake_words,
            entity_category=1,  # config
        ),
        pb.ListEntitiesSwitchResponse(
            object_id="mute",
            key=MUTE,
            name="Mute",
            unique_id=uid("mute"),
            icon="mdi:microphone-off",
            entity_category=1,
        ),
    ]
    for sensor in SENSORS:
        out.append(
            pb.ListEntitiesSensorResponse(
                object_id=sensor.object_id,
                key=sensor.key,
                name=sensor.name,
                unique_id=uid(sensor.object_id),
                icon=sensor.icon,
                accuracy_decimals=0,
                state_class=1 if sensor.object_id == "timers" else 2,  # measurement, total
                entity_category=2,  # diagnostic
            )
        )
    return out


def media_state(playing: bool, volume: int, muted: bool) -> Proto:
    return pb.MediaPlayerStateResponse(
        key=MEDIA_PLAYER, state=2 if playing else 1, volume=volume / 100, muted=muted
    )


def sensor_states(status: dict[str, object]) -> list[Proto]:
    out: list[Proto] = []
    for sensor in SENSORS:
        value = status.get(sensor.status_key)
        if isinstance(value, int | float):
            out.append(pb.SensorStateResponse(key=sensor.key, state=float(value)))
        else:
            out.append(pb.SensorStateResponse(key=sensor.key, missing_state=True))
    return out


def voice_configuration(wake_words: list[str], active: list[str]) -> Proto:
    """The wake words Home Assistant may choose among (its "Wake word" select)."""
    words = [
        pb.VoiceAssistantWakeWord(id=w, wake_word=w.replace("_", " "), trained_languages=["en"])
        for w in wake_words
    ]
    return pb.VoiceAssistantConfigurationResponse(
        available_wake_words=words, active_wake_words=active, max_active_wake_words=len(wake_words)
    )
