"""What every settings section is: a frozen model that refuses unknown keys and whose field
docstrings are the reference documentation (``config/reference.py`` reads them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)
