"""The zeroconf advertisement Home Assistant discovers: ``_esphomelib._tcp`` with the
TXT records its ESPHome integration reads (version, mac, platform, network, friendly
name, and ``api_encryption`` when a key is set, so it asks for the key up front)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from loguru import logger

if TYPE_CHECKING:
    from zeroconf import ServiceInfo
    from zeroconf.asyncio import AsyncZeroconf

SERVICE = "_esphomelib._tcp.local."
ESPHOME_VERSION = "2025.4.0"
"""The ESPHome release whose API this server speaks (Home Assistant reads it)."""
RENAMES = 8
"""How many ``name-N`` alternatives to try when the name is taken on the network."""
LOOKUP_S = 2.0
"""How long to ask the network whether a name is taken before probing for it: mDNS's
own probe waits only 250 ms for an answer, too little for a busy speaker to give one (a
speaker whose cores are saturated was seen to take more than a second)."""


def addresses(host: str) -> list[bytes]:
    """The IPv4 addresses to advertise: the one listened on, else every non-loopback one."""
    if host not in ("", "0.0.0.0", "::"):
        return [socket.inet_aton(host)]
    import ifaddr

    out: list[bytes] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ip.ip.startswith("127."):
                out.append(socket.inet_aton(ip.ip))
    return out


class Advertisement:
    """Registered on the satellite's loop (``start``/``close`` are coroutines)."""

    def __init__(
        self, name: str, friendly: str, mac: str, port: int, host: str, encrypted: bool
    ) -> None:
        self.name = name
        self.properties = {
            "version": ESPHOME_VERSION,
            "mac": mac.replace(":", "").lower(),
            "platform": "linux",
            "board": "ttbt5",
            "network": "ethernet",
            "friendly_name": friendly,
        }
        if encrypted:
            self.properties["api_encryption"] = "Noise_NNpsk0_25519_ChaChaPoly_SHA256"
        self.port = port
        self.host = host
        self._zc: object | None = None
        self._info: object | None = None
        self._broadcast: Awaitable[object] | None = None
        """The announcements still being sent (they repeat for a second or two)."""

    async def start(self) -> bool:
        """Register under the device's name, or the first free ``name-N`` when another
        speaker on the network already holds it (two speakers set up with the same
        ``device_id``): a name conflict must never cost the service, only the name."""
        from zeroconf import Error as ZeroconfError
        from zeroconf import NonUniqueNameException
        from zeroconf.asyncio import AsyncZeroconf

        found = addresses(self.host)
        if not found:
            logger.warning("esphome: no network address to advertise; add it by host and port")
            return False
        try:
            zc = AsyncZeroconf()
        except OSError as exc:
            logger.warning("esphome: zeroconf advertisement failed: {}", exc)
            return False
        for name in self.candidates():
            info = self.info(name, found)
            try:
                if await self.taken(zc, info.name):
                    continue
                self._broadcast = await zc.async_register_service(info)
            except NonUniqueNameException:
                continue
            except (OSError, ZeroconfError) as exc:
                logger.warning("esphome: zeroconf advertisement failed: {}", exc)
                await zc.async_close()
                return False
            self._zc, self._info = zc, info
            if name != self.name:
                logger.warning(
                    "esphome: another device on the network is called {}; advertised as {}"
                    " (give each speaker its own mqtt.device_id)",
                    self.name,
                    name,
                )
            logger.info("esphome: advertised as {}.{}", name, SERVICE)
            return True
        taken = self.candidates()
        logger.warning("esphome: {} to {} are all taken; not advertised", taken[0], taken[-1])
        await zc.async_close()
        return False

    @staticmethod
    async def taken(zc: AsyncZeroconf, service: str) -> bool:
        """Whether another device on the network answers for ``service`` now."""
        from zeroconf.asyncio import AsyncServiceInfo

        return await AsyncServiceInfo(SERVICE, service).async_request(zc.zeroconf, LOOKUP_S * 1000)

    def candidates(self) -> list[str]:
        return [self.name] + [f"{self.name}-{n}" for n in range(2, RENAMES + 2)]

    def info(self, name: str, found: list[bytes]) -> ServiceInfo:
        from zeroconf import ServiceInfo

        return ServiceInfo(
            SERVICE,
            f"{name}.{SERVICE}",
            addresses=found,
            port=self.port,
            properties=self.properties,
            server=f"{name}.local.",
        )

    async def close(self) -> None:
        from zeroconf.asyncio import AsyncZeroconf

        zc, info = self._zc, self._info
        if isinstance(zc, AsyncZeroconf) and info is not None:
            try:
                if self._broadcast is not None:
                    await asyncio.wait_for(self._broadcast, 3.0)
                goodbye = await zc.async_unregister_service(info)  # type: ignore[arg-type]
                await asyncio.wait_for(goodbye, 3.0)
            except (TimeoutError, OSError) as exc:
                logger.warning("esphome: zeroconf goodbye not sent: {}", exc)
            finally:
                await zc.async_close()
        self._zc = self._info = None
