"""Local intents: what the speaker understands with no network.

``recognize`` returns the first matching Intent: built-in rules first, then the user's
custom home-automation templates. Speech recognizers output lower-case words with number
words spelled out, so everything here works on normalized words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Intent:
    name: str
    slots: dict[str, Any] = field(default_factory=dict)


def normalize(text: str) -> str:
    """Lower case, words and numbers only (keeps apostrophes, decimal points, colons)."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^\w\s'.:%]", " ", text)
    text = re.sub(r"(?<!\d)[.:]|[.:](?!\d)", " ", text)
    return " ".join(text.split())
