"""Home Assistant's websocket API as far as the speaker asks it, served for real on
127.0.0.1 (the ``websockets`` server), with faults: for the unit tests of the name
look-up. It records every request. The real Home Assistant is in ``ha_harness.py``."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

TOKEN = "long-lived-test-token-0123456789"

FAULTS = (None, "bad-json", "silent", "huge", "http-401", "not-json-object", "flood", "not-admin")


@dataclass
class Home:
    """What the fake knows: states' friendly names, registry entries, areas, floors."""

    exposed: dict[str, bool] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    registry: dict[str, dict[str, Any]] = field(default_factory=dict)
    areas: list[dict[str, Any]] = field(default_factory=list)
    floors: list[dict[str, Any]] = field(default_factory=list)


class FakeHomeAssistant:
    def __init__(self, home: Home, fault: str | None = None) -> None:
        assert fault in FAULTS
        self.home = home
        self.fault = fault
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def types(self) -> list[str]:
        return [str(r.get("type")) for r in self.requests]

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        self._stop = asyncio.Event()

        def refuse(connection: Any, request: Any) -> Any:
            if self.fault == "http-401":
                return connection.respond(HTTPStatus.UNAUTHORIZED, "401: Unauthorized\n")
            return None

        async with serve(
            self._handle, "127.0.0.1", 0, process_request=refuse, max_size=2**20
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    async def _handle(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await ws.send(json.dumps({"type": "auth_required", "ha_version": "2025.4.4"}))
            auth = json.loads(await ws.recv())
            if auth.get("type") != "auth" or auth.get("access_token") != TOKEN:
                await ws.send(json.dumps({"type": "auth_invalid", "message": "Invalid access"}))
                return
            await ws.send(json.dumps({"type": "auth_ok", "ha_version": "2025.4.4"}))
            async for raw in ws:
                message = json.loads(raw)
                self.requests.append(message)
                await self._answer(ws, message)
        except ConnectionClosed:
            pass

    async def _answer(self, ws: Any, message: dict[str, Any]) -> None:
        msg_id, kind = message.get("id"), message.get("type")
        if self.fault == "silent":
            return
        if self.fault == "bad-json":
            await ws.send('{"id": ' + str(msg_id) + ', "type": "result", "succ')
            return
        if self.fault == "not-json-object":
            await ws.send("[1, 2, 3]")
            return
        if self.fault == "huge":  # 6 MB: one message over the speaker's cap
            await ws.send(json.dumps({"id": msg_id, "type": "result", "junk": "x" * 6_000_000}))
            return
        if self.fault == "flood":  # answers to nothing, forever
            while True:
                await ws.send(json.dumps({"id": 999_999, "type": "event", "event": {}}))
        home = self.home
        if self.fault == "not-admin":  # as Home Assistant answers a user's token here
            error = {"code": "unauthorized", "message": "Unauthorized"}
            await ws.send(
                json.dumps({"id": msg_id, "type": "result", "success": False, "error": error})
            )
            return
        if kind == "subscribe_entities":
            await ws.send(json.dumps({"id": msg_id, "type": "result", "success": True}))
            states = {
                entity_id: {"s": "off", "a": {"friendly_name": home.names[entity_id]}}
                for entity_id in message.get("entity_ids", [])
                if entity_id in home.names
            }
            await ws.send(json.dumps({"id": msg_id, "type": "event", "event": {"a": states}}))
            return
        results: dict[str, Any] = {
            "homeassistant/expose_entity/list": {
                "exposed_entities": {
                    entity_id: {"conversation": exposed, "cloud.alexa": True}
                    for entity_id, exposed in home.exposed.items()
                }
            },
            "config/area_registry/list": home.areas,
            "config/floor_registry/list": home.floors,
            "unsubscribe_events": None,
        }
        if kind == "config/entity_registry/get_entries":
            result: Any = {e: home.registry.get(e) for e in message.get("entity_ids", [])}
        elif kind in results:
            result = results[str(kind)]
        else:
            await ws.send(
                json.dumps(
                    {
                        "id": msg_id,
                        "type": "result",
                        "success": False,
                        "error": {"code": "unknown_command", "message": "Unknown command."},
                    }
                )
            )
            return
        await ws.send(
            json.dumps({"id": msg_id, "type": "result", "success": True, "result": result})
        )


def registry_entry(
    name: str | None = None, aliases: list[str] | None = None, **more: Any
) -> dict[str, Any]:
    """An entity registry entry as ``get_entries`` sends it (the fields read, and some)."""
    return {
        "aliases": aliases or [],
        "area_id": None,
        "disabled_by": None,
        "name": name,
        "original_name": None,
        "platform": "template",
        "capabilities": None,
        **more,
    }


def small_home() -> Home:
    """A kitchen light, a living room lamp with an alias, a thermostat, a disabled fan, a
    sensor not exposed, areas with aliases, a floor."""
    return Home(
        exposed={
            "light.kitchen": True,
            "light.living_room_lamp": True,
            "climate.hall": True,
            "fan.attic": True,
            "sensor.hidden": False,
            "light.no_state": True,
        },
        names={
            "light.kitchen": "Kitchen Light",
            "light.living_room_lamp": "Living Room Lamp",
            "climate.hall": "Hall Thermostat",
            "fan.attic": "Attic Fan",
            "sensor.hidden": "Secret Sensor",
        },
        registry={
            "light.kitchen": registry_entry(),
            "light.living_room_lamp": registry_entry(aliases=["Reading Lamp", "Lamp #2"]),
            "fan.attic": registry_entry(disabled_by="user"),
            "light.no_state": registry_entry(original_name="Porch Light"),
        },
        areas=[
            {"area_id": "kitchen", "name": "Kitchen", "aliases": [], "floor_id": "ground"},
            {"area_id": "living_room", "name": "Living Room", "aliases": ["Lounge"]},
        ],
        floors=[{"floor_id": "ground", "name": "Downstairs", "aliases": ["Ground Floor"]}],
    )
