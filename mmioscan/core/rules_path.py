"""Where the rules live: inside the installed wheel, or rules/ of a source checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def rules_dir() -> Path:
    """The installed package `mmioscan.rules`, else the checkout's rules/ folder."""
    try:
        installed = Path(str(resources.files("mmioscan.rules")))
        if (installed / "accessors.toml").exists():
            return installed
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "rules"
