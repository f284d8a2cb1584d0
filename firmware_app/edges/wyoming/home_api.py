"""The home's names asked of Home Assistant over its websocket API.

One short connection per look-up, authenticated with a long-lived access token, asks:

- ``homeassistant/expose_entity/list``: which entities are exposed to Assist
- ``subscribe_entities`` for just those: their names as Home Assistant shows them (the
  friendly name, which its own agent matches); unsubscribed at once
- ``config/entity_registry/get_entries`` for them: their aliases, and which are disabled
- ``config/area_registry/list``, ``config/floor_registry/list``: areas and floors

Home Assistant may be down, slow, answer with something else, or be something else
listening at that address: every message is capped (``MAX_MESSAGE_BYTES``, checked by the
websocket library before a message is buffered whole), the whole look-up has a deadline,
at most ``max_names`` entities are asked about, and any failure is one ``HomeApiError``
line. The token is sent only in the ``auth`` message and never appears in an error.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pydantic import SecretStr

from firmware_app.core.errors import TTBT5Error
from firmware_app.edges.wyoming.home_names import (
    Home,
    build_home,
    exposed_ids,
    place_names,
    registry_names,
    state_names,
)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest websocket message read. The biggest answer asked for is the registry entries
of the exposed entities (about 1 KB each), so this holds thousands; a bigger message
ends the look-up instead of filling memory."""
FETCH_TIMEOUT_S = 30.0
"""The whole look-up, connecting included."""
MAX_SKIPPED = 200
"""Messages that answer something else, read while waiting for an answer, before giving
up (changes of the exposed entities' states, between subscribing and unsubscribing)."""


class HomeApiError(TTBT5Error, ConnectionError):
    """Home Assistant could not be asked, or answered something unusable."""


def websocket_url(base: str) -> str:
    """``http://host:8123`` → ``ws://host:8123/api/websocket`` (https → wss)."""
    scheme, rest = base.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest.rstrip('/')}/api/websocket"


async def fetch_home(
    base_url: str, token: SecretStr, max_names: int, timeout_s: float = FETCH_TIMEOUT_S
) -> Home:
    """The names of the home Home Assistant at ``base_url`` exposes to Assist."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

    url = websocket_url(base_url)
    try:
        async with asyncio.timeout(timeout_s):
            async with connect(
                url,
                max_size=MAX_MESSAGE_BYTES,
                max_queue=2,
                compression=None,
                open_timeout=timeout_s,
                close_timeout=2,
                ping_interval=None,
                proxy=None,
                user_agent_header="TTBT5",
            ) as ws:
                return await _Session(ws).home(token, max_names)
    except HomeApiError:
        raise
    except TimeoutError:
        raise HomeApiError(f"{base_url} did not answer within {timeout_s:g} s") from None
    except InvalidURI as exc:
        raise HomeApiError(f"{base_url} is not a usable address: {exc}") from None
    except InvalidHandshake as exc:
        raise HomeApiError(f"{base_url} did not open a websocket ({exc})") from None
    except WebSocketException as exc:  # closed, a message over the cap, a protocol error
        raise HomeApiError(f"{base_url}: the connection failed ({_why(exc)})") from None
    except OSError as exc:
        raise HomeApiError(f"{base_url} cannot be reached: {exc.strerror or exc}") from None


def _why(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


class _Session:
    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._next_id = 0

    async def _receive(self) -> dict[str, Any]:
        raw = await self._ws.recv()
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise HomeApiError("Home Assistant sent something that is not JSON") from None
        if not isinstance(message, dict):
            raise HomeApiError("Home Assistant sent a message that is not a JSON object")
        return message

    async def _send(self, message: dict[str, Any]) -> int:
        self._next_id += 1
        await self._ws.send(json.dumps({"id": self._next_id, **message}))
        return self._next_id

    async def _answer(self, msg_id: int, kind: str = "result") -> dict[str, Any]:
        """The next message of ``kind`` for ``msg_id``; others are skipped (bounded)."""
        for _ in range(MAX_SKIPPED):
            message = await self._receive()
            if message.get("id") == msg_id and message.get("type") == kind:
                return message
        raise HomeApiError(f"Home Assistant never answered request {msg_id}")

    async def command(self, kind: str, **fields: Any) -> Any:
        msg_id = await self._send({"type": kind, **fields})
        answer = await self._answer(msg_id)
        if answer.get("success") is not True:
            error = answer.get("error")
            code = str(error.get("code") if isinstance(error, dict) else None)[:60]
            hint = ": the token must be an administrator's" if code == "unauthorized" else ""
            raise HomeApiError(f"Home Assistant refused {kind} ({code}){hint}")
        return answer.get("result")

    async def authenticate(self, token: SecretStr) -> None:
        hello = await self._receive()
        if hello.get("type") != "auth_required":
            raise HomeApiError("this is not Home Assistant's websocket API (no auth_required)")
        await self._ws.send(json.dumps({"type": "auth", "access_token": token.get_secret_value()}))
        answer = await self._receive()
        if answer.get("type") == "auth_invalid":
            raise HomeApiError("Home Assistant refused the access token (auth_invalid)")
        if answer.get("type") != "auth_ok":
            raise HomeApiError("Home Assistant did not accept the login")

    async def friendly_names(self, ids: list[str]) -> dict[str, str]:
        """Names as Home Assistant shows them, from one snapshot of just these states."""
        if not ids:
            return {}
        msg_id = await self._send({"type": "subscribe_entities", "entity_ids": ids})
        answer = await self._answer(msg_id)
        if answer.get("success") is not True:
            raise HomeApiError("Home Assistant refused subscribe_entities")
        snapshot = await self._answer(msg_id, "event")
        await self._send({"type": "unsubscribe_events", "subscription": msg_id})
        return state_names(snapshot.get("event"))

    async def home(self, token: SecretStr, max_names: int) -> Home:
        await self.authenticate(token)
        ids = exposed_ids(await self.command("homeassistant/expose_entity/list"))
        asked = ids[:max_names]
        friendly = await self.friendly_names(asked)
        registry = registry_names(
            await self.command("config/entity_registry/get_entries", entity_ids=asked)
            if asked
            else {}
        )
        areas = place_names(await self.command("config/area_registry/list"))
        floors = place_names(await self.command("config/floor_registry/list"))
        home = build_home(asked, registry, friendly, areas, floors, max_names)
        left_out = home.left_out + len(ids) - len(asked)
        return Home(home.entities, home.areas, home.floors, left_out)
