"""Platform models: what an MMIO site does in each kind of confidential guest.

Each model is data (rules/*.toml) plus code in its own subpackage (tdx/ today); this module
is the one place that lists them, so the gate's materialised trees and the docs follow.
"""

from __future__ import annotations

from mmioscan.platforms.x86.model import TREE_FILES as _TDX_FILES

# Adding a platform: its model in platforms/NAME/, then one line here (docs/design.md).
MODEL_TREE_FILES: dict[str, tuple[str, ...]] = {"tdx": _TDX_FILES}


def tree_files() -> tuple[str, ...]:
    """Every file of the scanned tree that some platform model reads."""
    return tuple(dict.fromkeys(f for files in MODEL_TREE_FILES.values() for f in files))
