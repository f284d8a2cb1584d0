#!/usr/bin/env python3
"""Write docs/configuration.md from the settings' field docstrings."""

from pathlib import Path

from firmware_app.config.reference import reference_markdown

target = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
target.write_text(reference_markdown(), encoding="utf-8")
print(f"wrote {target}")
