"""This device's own announcement in its group: what it says about itself under its name in
the group's ``peers/`` topic, and keeping that true.

The announcement is a signed retained message: present, the session (a random id per
connection of the announcements to the broker: every claim carries it, and only the
session announced now counts), and the number of the device's next claim, so a device
that joins later knows where to listen. When the device closes it replaces it with a
signed "gone"; when it dies, the broker does, with the last will. Whatever else appears
under its name (an earlier session's announcement played back, the topic cleared) is
replaced again, so a device that starts later learns the session this one runs now.

The other devices' announcements, read, are ``peers.py``; the connection they share is
the arbiter's (``arbitration.py``), which also numbers the claims.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from firmware_app.edges.mqtt.claims import new_session, sign
from firmware_app.edges.mqtt.peers import peers_topic

REASSERT_EVERY_S = 1.0
"""At most this often a device puts its own announcement back when something else was
published in its place."""


class OwnAnnouncement:
    """This device's announcement, published on ``client`` (the connection that reads the
    group's announcements; its last will is set here, so build this before it connects).
    ``next_claim`` is the number of the claim the device will make next, read each time
    the announcement is published."""

    def __init__(
        self,
        client: mqtt.Client,
        key: bytes,
        group: str,
        device: str,
        next_claim: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topic = f"{peers_topic(group)}/{device}"
        self.session = new_session()
        """The session announced now; read and renewed under the arbiter's lock."""
        self._client = client
        self._key = key
        self._group = group
        self._device = device
        self._next_claim = next_claim
        self._clock = clock
        self._lock = threading.Lock()
        self._reasserted = -REASSERT_EVERY_S
        self._reassert: threading.Timer | None = None
        self._closing = False
        client.will_set(self.topic, self._message(False), qos=1, retain=True)

    def _message(self, present: bool) -> bytes:
        fields = {
            "device": self._device,
            "session": self.session,
            "present": present,
            "next": self._next_claim(),
        }
        return sign(self._key, self._group, "peer", fields)

    def publish(self) -> None:
        """Say, retained, that the device is here, in which session and where its next
        claim will be."""
        self._client.publish(self.topic, self._message(True), qos=1, retain=True)

    def renew(self) -> str | None:
        """After the announcing connection dropped: the broker sends its last will, "gone",
        and the group takes that session as ended for good, so the next connection is a new
        session, with a last will to match. None while closing: there is no next one."""
        if self._closing:
            return None
        self.session = new_session()
        self._client.will_set(self.topic, self._message(False), 1, True)
        return self.session

    def heard(self, payload: bytes) -> None:
        """What the broker holds under this device's name. Anything but this session's own
        announcement is replaced by it again, at most once a second (a flood waits for the
        next), so a flood is not echoed to the group."""
        if self._closing or payload == self._message(True):
            return
        with self._lock:
            if self._reassert is not None:
                return  # one is on its way
            wait = self._reasserted + REASSERT_EVERY_S - self._clock()
            self._reassert = threading.Timer(max(wait, 0.0), self._publish_again)
            self._reassert.daemon = True
            self._reassert.start()

    def _publish_again(self) -> None:
        with self._lock:
            self._reassert = None
            self._reasserted = self._clock()
            if self._closing:
                return
        self.publish()

    def close(self, connected: bool) -> None:
        """Say "gone" in place of the announcement; while ``connected``, wait a moment for
        the broker to take it (otherwise the last will says it)."""
        with self._lock:
            self._closing = True
            if self._reassert is not None:
                self._reassert.cancel()
        info = self._client.publish(self.topic, self._message(False), qos=1, retain=True)
        if connected:
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=1.0)


__all__ = ["REASSERT_EVERY_S", "OwnAnnouncement"]
