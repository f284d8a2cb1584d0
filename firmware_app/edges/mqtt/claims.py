"""Wake claims that only the group can make: signed, counted, rate-limited.

Anything on the broker can publish to a group's topic, so a claim counts only when it
carries an HMAC-SHA256, under the group's shared key, of the group's name, the message's
kind and its exact bytes (compact JSON). A stranger without the key can neither claim
("I heard it better") nor announce or remove a device.

A signed claim seen again is a replay: every device numbers its claims within a session
(a random id per connection to the broker, which it announces, signed, under the group's
``peers/`` topic), and a claim counts only when it belongs to the session its device
announces now and its number is above the last one seen from it. Anything else is stale:
a copy of a claim just made, or one recorded in an earlier session of the device (before a
restart or a reconnection) and played back later. Stale and unsigned claims are dropped
before they touch the sender's rate, so replaying a device's claims cannot use up the
claims it is allowed.

Claims are judged by when they *arrive*, on the receiving device's own monotonic clock;
the sender's wall-clock ``t`` is carried for the logs and decides nothing, so devices whose
clocks disagree (no NTP yet, a clock stepped) arbitrate as well as any.

Even a key holder is held to a rate (a few claims a second, a burst of a few more): a
device wakes at most once per utterance, so more is a fault or an attack, and it must not
crowd out the claims of the others (each sender keeps its own few).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

MAX_PAYLOAD = 1024
"""Bytes; a longer message on the group's topics is not a claim."""
MAX_SENDERS = 128
"""Devices remembered (their session, last claim number, rate and recent claims); the one
announced longest ago is forgotten first, never this device."""
CLAIMS_PER_SENDER = 8
RATE_PER_S = 4.0
BURST = 8.0
SEEN_KEPT = 1024
"""Signed claims remembered by their MAC, so the same message played back again is
turned away before its MAC is even checked."""
KEEP_S = 10.0
"""Claims older than this (by arrival) are forgotten."""
COUNTERS = ("accepted", "unauthenticated", "stale", "rate_limited", "malformed")


@dataclass(frozen=True)
class Claim:
    device: str
    score: float
    model: str = ""
    level_db: float = -120.0
    session: str = ""
    seq: int = 0
    t: float = 0.0
    """The sender's wall clock, for the logs only."""
    at: float = 0.0
    """When it arrived, on this device's monotonic clock."""

    def rank(self) -> tuple[int, float]:
        return (math.floor(self.score * 10 + 1e-9), round(self.level_db, 1))

    def beats(self, other: Claim) -> bool:
        """The rule every device applies: score step, then loudness, then smaller id."""
        return (self.rank(), other.device) > (other.rank(), self.device)


MAC_FIELD = b',"mac":"'
MAC_TAIL = len(MAC_FIELD) + 64 + len(b'"}')
"""The MAC is the message's last field: ``,"mac":"<64 hex digits>"}``."""


def _mac(key: bytes, group: str, kind: str, body: bytes) -> bytes:
    context = f"{group}\n{kind}\n".encode()
    return hmac.new(key, context + body, hashlib.sha256).hexdigest().encode("ascii")


def new_session() -> str:
    return secrets.token_hex(8)


def sign(key: bytes, group: str, kind: str, fields: dict[str, Any]) -> bytes:
    """The message to publish: ``fields`` as compact JSON, with an HMAC over those exact
    bytes, the group and the kind (``claim`` or ``peer``) as its last field, so a signed
    message cannot be moved to another group or use. Checking it takes one HMAC and no
    JSON, so a flood of forgeries costs a device little."""
    if not fields or "mac" in fields:
        raise ValueError("a signed message needs fields, none of them named mac")
    body = json.dumps(fields, separators=(",", ":")).encode()
    return body[:-1] + MAC_FIELD + _mac(key, group, kind, body) + b'"}'


def verify(key: bytes, group: str, kind: str, payload: bytes) -> dict[str, Any] | None:
    """The signed fields, or None when the message is not one this group's key made."""
    if not MAC_TAIL < len(payload) <= MAX_PAYLOAD:
        return None
    tail = payload[-MAC_TAIL:]
    if not tail.startswith(MAC_FIELD) or not tail.endswith(b'"}'):
        return None
    body = payload[:-MAC_TAIL] + b"}"
    mac = tail[len(MAC_FIELD) : len(MAC_FIELD) + 64]
    if not hmac.compare_digest(mac, _mac(key, group, kind, body)):
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and "mac" not in data else None


def parse_claim(data: dict[str, Any], at: float) -> Claim | None:
    try:
        claim = Claim(
            device=str(data["device"])[:64],
            score=float(data["score"]),
            model=str(data.get("model", ""))[:64],
            level_db=float(data.get("level_db", -120.0)),
            session=str(data["session"])[:32],
            seq=int(data["seq"]),
            t=float(data.get("t", 0.0)),
            at=at,
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    if not all(map(math.isfinite, (claim.score, claim.level_db))):
        return None
    return claim


class _Sender:
    """One device in the session it announces now: its last claim number, rate and
    recent claims."""

    def __init__(self, session: str, now: float) -> None:
        self.session = session
        self.last_seq: int | None = None
        self.tokens = BURST
        self.refilled = now
        self.claims: deque[Claim] = deque(maxlen=CLAIMS_PER_SENDER)

    def take_token(self, now: float) -> bool:
        self.tokens = min(BURST, self.tokens + (now - self.refilled) * RATE_PER_S)
        self.refilled = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def fresh(self, claim: Claim) -> bool:
        """True for a claim of the announced session numbered above every one seen."""
        if claim.session != self.session:
            return False
        if self.last_seq is not None and claim.seq <= self.last_seq:
            return False
        self.last_seq = claim.seq
        return True


class ClaimBook:
    """The claims heard from the group, bounded per sender and in senders, with counts of
    what was turned away. Only devices whose session is known count: this one (``own``,
    ``session``) and those announced through :meth:`announced`. Not thread-safe: the
    arbiter holds its lock around it."""

    def __init__(self, key: bytes, group: str, own: str, session: str) -> None:
        self._key = key
        self._group = group
        self._own = own
        self._senders: OrderedDict[str, _Sender] = OrderedDict()
        self.counts = dict.fromkeys(COUNTERS, 0)
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self.announced(own, session, now=0.0)

    def announced(self, device: str, session: str | None, now: float) -> None:
        """``device`` now runs ``session`` (None: it has gone). A new session starts it
        afresh; claims of any other session are stale from now on."""
        known = self._senders.get(device)
        if session is None:
            self._senders.pop(device, None)
        elif known is None or known.session != session:
            self._senders[device] = _Sender(session, now)
            while len(self._senders) > MAX_SENDERS:
                del self._senders[next(d for d in self._senders if d != self._own)]

    def take(self, payload: bytes, now: float, topic_device: str) -> Claim | None:
        """Check one message from ``topic_device``'s claims topic; the claim if it counts."""
        mac = payload[-MAC_TAIL:]
        if mac in self._seen:  # the very same message again: a replay, known by its MAC
            self.counts["stale"] += 1
            return None
        data = verify(self._key, self._group, "claim", payload)
        if data is None:
            self.counts["unauthenticated"] += 1
            return None
        self._seen[mac] = None
        while len(self._seen) > SEEN_KEPT:
            self._seen.popitem(last=False)
        claim = parse_claim(data, now)
        if claim is None or claim.device != topic_device:  # signed, but under another name
            self.counts["malformed"] += 1
            return None
        sender = self._senders.get(claim.device)
        if sender is None or not sender.fresh(claim):
            self.counts["stale"] += 1  # a replay, or a device not announced (any more)
            return None
        if claim.device != self._own and not sender.take_token(now):
            self.counts["rate_limited"] += 1
            return None
        sender.claims.append(claim)
        self.counts["accepted"] += 1
        return claim

    def last_seq(self, device: str) -> int | None:
        """The number of ``device``'s last fresh claim (counted or held to its rate)."""
        sender = self._senders.get(device)
        return None if sender is None else sender.last_seq

    def recent(self, now: float) -> list[Claim]:
        """Every claim that arrived in the last KEEP_S."""
        return [c for s in self._senders.values() for c in s.claims if now - c.at < KEEP_S]
