"""The Intel TDX platform model: instruction forms read from the tree (shapes.py), the
shipped catalogue (forms.py, rules/tdx.toml) and per-site verdicts (model.py)."""

from mmioscan.platforms.strategies import (
    Strategy,
    TdxError,
    load_patch_points,
    load_strategies,
)
from mmioscan.platforms.tdx.forms import Form, FormEntry, load_forms
from mmioscan.platforms.tdx.model import (
    IO_H,
    IOMAP_C,
    IOMAP_COPY_C,
    IOMAP_COPY_S,
    IOMEM_C,
    TREE_FILES,
    TdxModel,
    verdict,
)

__all__ = [
    "IOMAP_C", "IOMAP_COPY_C", "IOMAP_COPY_S", "IOMEM_C", "IO_H", "TREE_FILES", "Form",
    "FormEntry", "Strategy", "TdxError", "TdxModel", "load_forms", "load_patch_points",
    "load_strategies", "verdict",
]
