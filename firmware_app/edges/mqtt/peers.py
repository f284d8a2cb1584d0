"""The group's members, as their signed announcements say: which devices are in the group
and which session each runs now.

Every device announces itself with a signed retained message under the group's ``peers/``
topic: present, its session (a random id per connection of its announcements), and the
number of its next claim; a signed "gone" replaces it when the device closes, and its last
will when it dies. A session seen to end is never taken back from an announcement played
back later, so a stranger who recorded one cannot revive an earlier run of a device.
This device's own announcement, published and kept true, is ``own_announcement.py``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from firmware_app.edges.mqtt.claims import verify

MAX_PEERS = 64
ENDED_KEPT = 256
"""Sessions seen to end (a signed "gone"), remembered so a replay of one of their
announcements cannot bring them back."""


def peers_topic(group: str) -> str:
    return f"ttbt5/group/{group}/peers"


@dataclass(frozen=True)
class Heard:
    """What an announcement changed: the device's session now (None: not in the group),
    whether it was in the group before, and the first of its claims to listen for."""

    session: str | None
    was_peer: bool
    first: int


class PeerBook:
    """The other devices of the group (``sessions``: device → session) and how many
    announcements were ignored. Not thread-safe: the arbiter holds its lock around it."""

    def __init__(self, key: bytes, group: str) -> None:
        self._key = key
        self._group = group
        self.sessions: dict[str, str] = {}
        self.ignored = 0
        self._ended: deque[tuple[str, str]] = deque(maxlen=ENDED_KEPT)

    def heard(self, device: str, payload: bytes) -> Heard | None:
        """Take one message from ``peers/<device>``; None when it changes nothing (unsigned,
        cleared by someone else, or an ended session's announcement played back)."""
        data = verify(self._key, self._group, "peer", payload) if payload else None
        if data is None or data.get("device") != device:
            self.ignored += 1
            return None
        session = str(data.get("session", ""))
        present = data.get("present") is True
        if not present:
            if (device, session) not in self._ended:
                self._ended.append((device, session))
        elif (device, session) in self._ended:
            self.ignored += 1
            return None
        was_peer = device in self.sessions
        if present:
            if was_peer or len(self.sessions) < MAX_PEERS:
                self.sessions[device] = session
        elif self.sessions.get(device) == session:  # an old "gone" replayed changes nothing
            del self.sessions[device]
        return Heard(self.sessions.get(device), was_peer, _first_claim(data.get("next", 1)))


def _first_claim(next_seq: object) -> int:
    """From the claim before the announced next one: the announcement travels on another
    connection than the claims and may overtake that claim, whose topic must still be
    listened to."""
    try:
        return max(1, int(next_seq) - 1)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 1
