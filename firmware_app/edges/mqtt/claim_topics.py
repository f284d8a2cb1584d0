"""Where a group's claims are published and listened for: a topic per claim.

Each claim goes to ``ttbt5/group/<group>/wake/<device>/<token>``, the token an HMAC under
the group's key of the device's session and the claim's number, so only the group can
work out where a device's next claim will be, and a topic a stranger saw is never used
again. A device subscribes to exactly the next ``AHEAD`` claim topics of itself and of
each announced peer, and moves past a claim's topic as soon as that claim has arrived:
nothing a stranger publishes stands between it and the claims it waits for.
"""

from __future__ import annotations

import hashlib
import hmac

AHEAD = 8
"""Claim topics listened to ahead for each device: its next claims' (a device that missed
a few claims of a peer still hears the ones after)."""

Changes = tuple[list[str], list[str]]
"""Topics to subscribe to, and topics to leave."""


def group_topic(group: str) -> str:
    """Where the group's claims go: a topic per claim under this."""
    return f"ttbt5/group/{group}/wake"


def claims_topic(group: str, device: str, token: str = "+") -> str:
    """One claim's topic (``token`` from ``claim_token``); by default the filter that
    matches every claim of ``device``, for watching the wire."""
    return f"{group_topic(group)}/{device}/{token}"


def claim_token(key: bytes, group: str, device: str, session: str, seq: int) -> str:
    """The last level of the topic claim ``seq`` of ``device``'s ``session`` is published
    under: only holders of the group's key can work it out, and each is used once, so a
    stranger who sees one claim's topic learns nothing of the next one's."""
    context = f"{group}\ntopic\n{device}\n{session}\n{seq}".encode()
    return hmac.new(key, context, hashlib.sha256).hexdigest()[:24]


class ClaimTopics:
    """The claim topics listened to for each device. Not thread-safe: the arbiter holds
    its lock around it, and subscribes and leaves what the calls return after letting
    go."""

    def __init__(self, key: bytes, group: str) -> None:
        self._key = key
        self._group = group
        self._next: dict[str, tuple[str, int]] = {}
        """Device → (session, number of the first claim listened for)."""
        self._listening: dict[str, set[str]] = {}

    def topic(self, device: str, session: str, seq: int) -> str:
        """Where claim ``seq`` of ``device``'s ``session`` is published."""
        token = claim_token(self._key, self._group, device, session, seq)
        return claims_topic(self._group, device, token)

    def listen_from(self, device: str, session: str, first: int) -> Changes:
        """Listen for ``device``'s claims ``first`` to ``first + AHEAD - 1`` of ``session``
        (never back within one session)."""
        known = self._next.get(device)
        if known is not None and known[0] == session and first <= known[1]:
            return [], []
        self._next[device] = (session, first)
        wanted = {self.topic(device, session, n) for n in range(first, first + AHEAD)}
        had = self._listening.get(device, set())
        self._listening[device] = wanted
        return sorted(wanted - had), sorted(had - wanted)

    def forget(self, device: str) -> Changes:
        """Stop listening for ``device`` (it has gone)."""
        self._next.pop(device, None)
        return [], sorted(self._listening.pop(device, set()))

    def all(self) -> list[str]:
        """Every topic listened to, to subscribe to again on a new connection."""
        return sorted(t for topics in self._listening.values() for t in topics)
