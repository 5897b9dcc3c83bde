"""Accessor definitions are not sites (mmioscan/analysis/definitions.py)."""

from __future__ import annotations

import pytest

from mmioscan.analysis.definitions import Definitions
from mmioscan.core.model import Site

DEFS = Definitions(frozenset({"readl", "ioread8", "memcpy_fromio"}),
                   frozenset({"EXPORT_SYMBOL", "build_mmio_read"}))


def _site(kind: str, callee: str, line: str, function: str | None = None) -> tuple[Site, str]:
    column = line.index(callee) + 1
    site = Site(path="lib/x.c", line=1, column=column, function=function, callee=callee,
                accessor=callee, kind=kind, access="read", width=8,  # type: ignore[arg-type]
                family="mmio")
    return site, line


@pytest.mark.parametrize(("kind", "callee", "line", "function"), [
    ("direct", "readl", "\treturn readl(addr);", "ioread8"),  # inside an accessor's body
    ("reference", "ioread8", "EXPORT_SYMBOL(ioread8);", None),
    ("reference", "readl", 'build_mmio_read(readl, "l", unsigned int, "=r", :"memory")', None),
    ("direct", "memcpy_fromio", "void memcpy_fromio(void *, const volatile void __iomem *, "
                                "size_t);", None),
    ("direct", "memcpy_fromio", "extern void *memcpy_fromio(void *to, ...);", None),
])
def test_definitions(kind: str, callee: str, line: str, function: str | None) -> None:
    assert DEFS.is_definition(*_site(kind, callee, line, function))


@pytest.mark.parametrize(("kind", "callee", "line", "function"), [
    ("direct", "readl", "\tv = readl(base + 4);", "probe"),
    ("reference", "ioread8", "\t.read = ioread8,", None),  # an ops table uses it
    ("reference", "readl", "\tret = read_poll_timeout(readl, v, v & 1, 10, 100, addr);",
     "wait"),
    ("direct", "readl", "static u32 cached = readl(addr);", None),  # no type right before
    ("reference", "ioread8", "MY_EXPORT(ioread8);", None),  # not a listed macro
])
def test_uses(kind: str, callee: str, line: str, function: str | None) -> None:
    assert not DEFS.is_definition(*_site(kind, callee, line, function))
