"""Over-the-air updates: signed release bundles, safe unpacking, install beside the running
release, an atomic switch of the ``current`` link, a health gate, and rollback.

Layout under the update root (``/opt/ttbt5``)::

    releases/<version>/venv/        one virtual environment per release
    releases/<version>/release.json written last: a release without it is incomplete
    current -> releases/<version>   what systemd starts
    previous -> releases/<version>  where a rollback goes
    pending.json                    an update switched over but not yet committed
    state/                          the updater's journal, lock, failed versions and the
                                    last pointer serial: root's, read-only to the service

Config lives in /etc/ttbt5 and data in /var/lib/ttbt5, never inside a release, so updates
and rollbacks cannot touch them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from firmware_app.ota.remote import make_updater as make_updater


def __getattr__(name: str) -> Any:
    # The assistant's hook, imported lazily so ``import firmware_app.ota`` stays cheap.
    if name == "make_updater":
        from firmware_app.ota.remote import make_updater

        return make_updater
    raise AttributeError(name)
