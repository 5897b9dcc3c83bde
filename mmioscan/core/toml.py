"""Rules files (accessors, groups, forms, platforms, strategies) are TOML read through
core/datafile.py; their one error class lives here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmioscan.core import datafile


class RuleError(Exception):
    """A rules file (or a user file read like one) is unusable: one line naming the file."""


def read_toml(path: Path) -> tuple[dict[str, Any], bytes]:
    """A rules file's data and raw bytes; RuleError naming the file when unusable."""
    return datafile.read_toml(path, RuleError)
