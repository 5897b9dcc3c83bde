"""Where mmioscan keeps its caches: one home for the folder every cache lives under."""

from __future__ import annotations

import os
from pathlib import Path


def cache_base() -> Path:
    """$XDG_CACHE_HOME/mmioscan, else ~/.cache/mmioscan: facts, Kconfig facts, the gate's
    workspace, the history database and extracted kernel trees live below it."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmioscan"
