"""``ttbt5 check`` for the satellite: the key is usable, and the API answers as Home
Assistant's own client sees it (the running service), or its port is free for it."""

from __future__ import annotations

import asyncio
import base64
import socket

from firmware_app.config.settings import Settings
from firmware_app.edges.esphome.wiring import noise_key

PROBE_S = 5.0


def probe_satellite(settings: Settings) -> str:
    """One line; raises with the reason when the satellite could not serve."""
    cfg = settings.esphome
    psk = noise_key(settings)  # ConfigError when the key is unusable
    host = "127.0.0.1" if cfg.host in ("0.0.0.0", "", "::") else cfg.host
    try:
        with socket.create_connection((host, cfg.port), timeout=PROBE_S):
            pass
    except OSError:
        return _port_free(cfg.host, cfg.port, psk is not None)
    key = base64.b64encode(psk).decode() if psk is not None else None
    from aioesphomeapi.core import APIConnectionCancelledError

    try:
        name, mac = asyncio.run(_device_info(host, cfg.port, key))
    except (TimeoutError, APIConnectionCancelledError):
        raise RuntimeError(
            f"port {cfg.port} answers, but not as the ESPHome API (nothing in {PROBE_S:g} s)"
        ) from None
    crypto = "encrypted" if key else "plaintext"
    return f"serving on port {cfg.port} as {name} ({mac}), {crypto}"


def _port_free(host: str, port: int, encrypted: bool) -> str:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise RuntimeError(f"port {port} is taken by another program: {exc.strerror}") from None
    crypto = "encrypted" if encrypted else "plaintext"
    return f"port {port} free for the service ({crypto}); the service is not running"


async def _device_info(host: str, port: int, key: str | None) -> tuple[str, str]:
    from aioesphomeapi import APIClient

    client = APIClient(host, port, "", noise_psk=key, client_info="ttbt5 check")
    await asyncio.wait_for(client.connect(login=True), PROBE_S)
    try:
        info = await asyncio.wait_for(client.device_info(), PROBE_S)
    finally:
        await client.disconnect()
    return str(info.name), str(info.mac_address)
