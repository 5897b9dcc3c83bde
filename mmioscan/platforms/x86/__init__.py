"""The Intel TDX platform model: instruction forms read from the tree (shapes.py), the
shipped catalogue (forms.py, rules/tdx.toml) and per-site verdicts (model.py)."""

from mmioscan.platforms.strategies import (
    Strategy,
    TdxError,
    load_patch_points,
    load_strategies,
)
from mmioscan.platforms.x86.forms import Form, FormEntry, load_forms
from mmioscan.platforms.x86.model import (
    IO_H,
    IOMAP_C,
    IOMAP_COPY_C,
    IOMAP_COPY_S,
    IOMEM_C,
    TREE_FILES,
    X86Model,
    verdict,
)

__all__ = [
    "IOMAP_C", "IOMAP_COPY_C", "IOMAP_COPY_S", "IOMEM_C", "IO_H", "TREE_FILES", "Form",
    "FormEntry", "Strategy", "TdxError", "X86Model", "load_forms", "load_patch_points",
    "load_strategies", "verdict",
]
