"""Keeping the recognizer's home sentences in step with Home Assistant.

The names are asked for when the server starts and every ``refresh_s`` after that; a
failed look-up is tried again after 10 s, then 20, 40... up to ``refresh_s``. While
Home Assistant is down or answers nonsense the last good names stay in the grammar and
the server goes on serving; the log says so once per change of trouble, not once per try.
The grammar is rebuilt only when the names changed, between two requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from loguru import logger

from firmware_app.config.secrets import read_secret
from firmware_app.config.settings import Settings
from firmware_app.core.errors import ConfigError, TTBT5Error
from firmware_app.edges.wyoming.engines import SharedRecognizer
from firmware_app.edges.wyoming.home_api import HomeApiError, fetch_home
from firmware_app.edges.wyoming.home_names import Home
from firmware_app.edges.wyoming.home_sentences import HomeSentences

FIRST_RETRY_S = 10.0
REBUILD_WAIT_S = 60.0
"""How long a rebuild waits for the recognizer to finish the requests it serves."""


class HomeRefresh:
    def __init__(
        self,
        fetch: Callable[[], Awaitable[Home]],
        sentences: HomeSentences,
        recognizer: SharedRecognizer,
        refresh_s: float,
    ) -> None:
        self._fetch = fetch
        self._sentences = sentences
        self._recognizer = recognizer
        self._refresh_s = refresh_s
        self._trouble: str | None = None
        self._left_out = 0
        self.updates = 0  # grammars built from Home Assistant's names so far

    async def run(self) -> None:
        """Until cancelled."""
        retry_s = FIRST_RETRY_S
        while True:
            try:
                read = await self.refresh_once()
            except Exception as exc:  # a bug here must not end the refreshing for good
                logger.error("wyoming: learning Home Assistant's names failed: {!r}", exc)
                read = False
            if read:
                retry_s = FIRST_RETRY_S
                await asyncio.sleep(self._refresh_s)
            else:
                await asyncio.sleep(retry_s)
                retry_s = min(self._refresh_s, retry_s * 2)

    async def refresh_once(self) -> bool:
        """Ask once; True when the names were read (changed or not)."""
        try:
            home = await self._fetch()
        except HomeApiError as exc:
            if str(exc) != self._trouble:
                kept = self._sentences.home.size
                logger.warning(
                    "wyoming: Home Assistant's names not read: {}; {}",
                    exc,
                    f"keeping the last {kept} names" if kept else "only the speaker's sentences",
                )
            self._trouble = str(exc)
            return False
        if self._trouble is not None:
            logger.info("wyoming: Home Assistant answers again")
            self._trouble = None
        if home.left_out != self._left_out:
            self._left_out = home.left_out
            logger.warning(
                "wyoming: {} of Home Assistant's names left out (over homeassistant_max_names, "
                "or not plain English words)",
                home.left_out,
            )
        previous = self._sentences.home
        loop = asyncio.get_running_loop()
        # the templates are read with the names in them: off the event loop
        changed = await loop.run_in_executor(None, self._sentences.update, home)
        if changed and not await self._rebuild(home):
            await loop.run_in_executor(None, self._sentences.update, previous)
            return False
        return True

    async def _rebuild(self, home: Home) -> bool:
        stt = self._recognizer.stt
        started = time.monotonic()
        try:
            done = await self._recognizer.rebuild(REBUILD_WAIT_S)
        except TimeoutError:
            logger.warning("wyoming: the recognizer stayed busy; Home Assistant's names wait")
            return False
        except TTBT5Error as exc:
            logger.error("wyoming: the grammar with Home Assistant's names failed: {}", exc)
            return False
        if not done:
            logger.warning("wyoming: {} cannot learn Home Assistant's names", type(stt).__name__)
            return True
        self.updates += 1
        logger.info(
            "wyoming: hears {} entities, {} areas, {} floors of Home Assistant "
            "(grammar built in {:.1f} s)",
            len(home.entities),
            len(home.areas),
            len(home.floors),
            time.monotonic() - started,
        )
        return True


def home_link(
    settings: Settings,
) -> tuple[HomeSentences, Callable[[], Awaitable[Home]]] | None:
    """The home's sentences (empty until Home Assistant answers) and how to ask for the
    names, when ``[wyoming] homeassistant_url`` and a token are given. A token that
    cannot be read is a warning: the server serves the speaker's own sentences then."""
    cfg = settings.wyoming
    if cfg.homeassistant_url is None:
        return None
    try:
        token = read_secret(
            cfg.homeassistant_token,
            cfg.homeassistant_token_file,
            "wyoming.homeassistant_token_file",
            "homeassistant_token",
        )
    except ConfigError as exc:
        logger.warning("wyoming: {}: Home Assistant's names are not learned", exc)
        return None
    if token is None:
        logger.warning(
            "wyoming: homeassistant_url is set but no token (homeassistant_token_file, "
            "or the homeassistant_token credential): Home Assistant's names are not learned"
        )
        return None
    url, max_names = cfg.homeassistant_url, cfg.homeassistant_max_names
    return HomeSentences(), lambda: fetch_home(url, token, max_names)
