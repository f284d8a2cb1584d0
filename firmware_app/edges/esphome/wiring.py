"""Building the satellite from settings: the key, the id, the server and the
advertisement, before the assistant (it is one of the assistant's parts)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING

from loguru import logger

from firmware_app.config.home import check_noise_key
from firmware_app.config.settings import Settings, read_secret
from firmware_app.core.errors import ConfigError
from firmware_app.core.messages import Message
from firmware_app.edges.esphome.advertise import Advertisement
from firmware_app.edges.esphome.identity import device_mac, device_name
from firmware_app.edges.esphome.satellite import Satellite, wake_id

if TYPE_CHECKING:
    from firmware_app.system.store import Store

WAKE_WORDS_KEY = "wake_words"
"""The store's ``settings`` row that keeps Home Assistant's choice of wake words."""


def noise_key(settings: Settings) -> bytes | None:
    """The configured key as 32 bytes, or None (plaintext). ConfigError when unusable."""
    cfg = settings.esphome
    secret = read_secret(
        cfg.encryption_key, cfg.encryption_key_file, "esphome.encryption_key_file", "esphome_key"
    )
    if secret is None:
        return None
    try:
        check_noise_key(secret.get_secret_value())
    except ValueError as exc:
        raise ConfigError(f"esphome.encryption_key: {exc}") from None
    return base64.b64decode(secret.get_secret_value())


def build_satellite(
    settings: Settings,
    post: Callable[[Message], None],
    status: Callable[[], dict[str, object]],
    stack: ExitStack,
    *,
    volume: int = 100,
    muted: bool = False,
    advertise: bool = True,
    store: Store | None = None,
) -> Satellite | None:
    """The satellite, listening and advertised; None (logged) when its port is taken:
    the speaker then works as if it were not configured. With ``store``, the wake words
    Home Assistant chose are kept there and chosen again at start."""
    cfg = settings.esphome
    psk = noise_key(settings)
    device_id = settings.mqtt.device_id
    name = device_name(cfg.name, device_id)
    mac = device_mac(device_id, settings.data_dir / "esphome.json")
    words = [wake_id(w) for w in settings.wake.models]
    satellite = Satellite(
        cfg,
        post=post,
        status=status,
        name=name,
        mac=mac,
        psk=psk,
        wake_words=words or ["wake_word"],
        volume=volume,
        muted=muted,
        chosen=None if store is None else store.get("settings", WAKE_WORDS_KEY),
        remember=None if store is None else _keeper(store),
    )
    try:
        port = satellite.serve()
    except OSError as exc:
        logger.error("esphome: cannot listen on {}:{}: {}", cfg.host, cfg.port, exc.strerror)
        satellite.close()
        return None
    stack.callback(satellite.close)
    if advertise:
        friendly = f"TTBT5 {device_id}"
        ad = Advertisement(name, friendly, mac, port, cfg.host, psk is not None)
        if satellite.loop.run(ad.start(), timeout=15):
            stack.callback(lambda: satellite.loop.run(ad.close(), timeout=5))
    return satellite


def _keeper(store: Store) -> Callable[[list[str]], None]:
    def remember(words: list[str]) -> None:
        store.put("settings", WAKE_WORDS_KEY, words)

    return remember
