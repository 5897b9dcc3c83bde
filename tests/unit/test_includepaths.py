"""Include folders from Kbuild Makefiles (kernel/includepaths.py): `-I` in ccflags-y applies
to its folder (and folders below without a Makefile), subdir-ccflags-y to everything below;
a header found only through one brings its funnels to the files that include it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmioscan.kernel.includepaths import IncludePaths

from .helpers import scan_json
from .test_wrappers import mini_tree

_REGS_H = """\
struct fx_dev {
	void __iomem *base;
};

static inline u32 fx_rd(struct fx_dev *f, u32 reg)
{
	return readl(f->base + reg);
}
"""

_USER = """\
#include "fx_regs.h"

u32 {name}_status(struct fx_dev *f)
{{
	return fx_rd(f, 0x40);
}}
"""


def _tree(tmp_path: Path, makefile: str) -> Path:
    return mini_tree(tmp_path / "linux", {
        "drivers/fx/common/fx_regs.h": _REGS_H,
        "drivers/fy/Makefile": makefile,
        "drivers/fy/user.c": _USER.format(name="fy"),
        "drivers/fy/pci/glue.c": _USER.format(name="glue"),  # no Makefile of its own
        "drivers/fy/sub/Makefile": "obj-y += u2.o\n",
        "drivers/fy/sub/u2.c": _USER.format(name="u2"),
        "drivers/fz/other.c": _USER.format(name="fz"),  # another driver: no -I
    })


def _wrapper_files(root: Path, tmp_path: Path) -> set[str]:
    data = scan_json(tmp_path, root, extra=("--root", str(root)))
    return {s["path"] for s in data["sites"] if s["kind"] == "wrapper"}


@pytest.mark.parametrize(("makefile", "expected"), [
    ("obj-y += user.o pci/glue.o\nccflags-y += -I $(srctree)/drivers/fx/common\n",
     {"drivers/fy/user.c", "drivers/fy/pci/glue.c"}),
    ("FX := $(src)/../fx\nsubdir-ccflags-y += -I$(FX)/common\n",
     {"drivers/fy/user.c", "drivers/fy/pci/glue.c", "drivers/fy/sub/u2.c"}),
    ("ccflags-$(CONFIG_FY_DEBUG) += -Idrivers/fx/common\n",
     {"drivers/fy/user.c", "drivers/fy/pci/glue.c"}),  # a condition counts whatever it is
    ("ccflags-y += -I$(src)/../nowhere -I/usr/include\n", set()),
])
def test_headers_found_through_makefile_flags(tmp_path: Path, makefile: str,
                                              expected: set[str]) -> None:
    root = _tree(tmp_path, makefile)
    assert _wrapper_files(root, tmp_path) == expected


def test_search_order_and_limits(tmp_path: Path) -> None:
    root = mini_tree(tmp_path / "linux", {
        "drivers/a/Makefile": "subdir-ccflags-y += -I$(src)/inc\nccflags-y += -I$(src)/own\n",
        "drivers/a/b/Makefile": "ccflags-y := -I $(srctree)/drivers/a/b/x \\\n  -I$(obj)\n",
        "drivers/a/inc/h.h": "", "drivers/a/own/h.h": "", "drivers/a/b/x/h.h": "",
    })
    paths = IncludePaths(root)
    assert paths.dirs("drivers/a") == ("drivers/a/inc", "drivers/a/own")
    # the subdir flags of the folders above come first, then the own Makefile's
    assert paths.dirs("drivers/a/b") == ("drivers/a/inc", "drivers/a/b/x", "drivers/a/b")
    assert paths.dirs("drivers/a/b/c") == paths.dirs("drivers/a/b")  # no Makefile there
    assert paths.dirs("drivers/z") == ()
