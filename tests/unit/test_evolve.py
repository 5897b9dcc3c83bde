"""core/evolve.py copies sites exactly as dataclasses.replace does."""

from __future__ import annotations

import dataclasses

import pytest

from mmioscan.core.evolve import enriched, evolved, placed
from mmioscan.core.model import DriverInfo, Site, Tdx

SITE = Site("drivers/x/a.c", 12, 5, "poke", "writel", "writel", "direct", "write", 32, "mmio",
            via=("a", "b"), accessors=("writel",))


def test_evolved_is_replace() -> None:
    changes = {"driver": "x", "hot": True, "hot_kinds": ("irq",), "line": 13, "code": "c"}
    got = evolved(SITE, **changes)
    assert got == dataclasses.replace(SITE, **changes)
    assert all(getattr(got, f.name) == getattr(dataclasses.replace(SITE, **changes), f.name)
               for f in dataclasses.fields(Site))  # compare=False fields too
    assert evolved(SITE) == SITE and evolved(SITE) is not SITE
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.line = 1  # type: ignore[misc]


def test_unknown_field_is_refused() -> None:
    with pytest.raises(TypeError, match="no field 'nope'"):
        evolved(SITE, nope=1)


def test_placed_and_enriched_set_their_fields() -> None:
    assert placed(SITE, "x", "k", True, ("napi",), None) == dataclasses.replace(
        SITE, driver="x", scope_key="k", hot=True, hot_kinds=("napi",), hot_only_via=None)
    info = DriverInfo("e1000e", "E1000E", "generic", "Kconfig E1000E", True, "Makefile")
    tdx = Tdx("ve", "mov", 1, "decoded")
    assert enriched(SITE, info, tdx, "fp", "code", (("tdx", tdx),)) == dataclasses.replace(
        SITE, driver="e1000e", config_symbol="E1000E", group="generic",
        group_reason="Kconfig E1000E", reachable=True, tdx=tdx, fingerprint="fp", code="code",
        platforms=(("tdx", tdx),))
