"""Regmap sites per map and references on the real tree (linux-source-6.12), hand-judged.

The regmap samples were drawn with random.Random(12).sample(15) from the regmap sites whose map
is not "unknown" in sound/soc/codecs, drivers/clk, drivers/pinctrl, drivers/iio/adc and the
mlx4/mlx5 InfiniBand folders, and judged by reading the source: each map is made by
regmap_init_mmio*, a syscon getter, or regmap_init with a readl-based reg_read. The references
are every reference in five Ethernet folders (fewer than 15 there), all judged true: the
accessor is passed to a poll macro or aliased by an object macro.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mmioscan.cli.main import main

pytestmark = pytest.mark.integration

REGMAP_FOLDERS = ("sound/soc/codecs", "drivers/clk", "drivers/pinctrl", "drivers/iio/adc")
IB_FOLDERS = ("drivers/infiniband/hw/mlx4", "drivers/infiniband/hw/mlx5")
REF_FOLDERS = ("drivers/net/ethernet/8390", "drivers/net/ethernet/engleder",
               "drivers/net/ethernet/oki-semi/pch_gbe", "drivers/net/ethernet/sunplus")

# (path, line, callee, map): judged true
REGMAP_SAMPLES = [
    ("drivers/pinctrl/spear/pinctrl-plgpio.c", 666, "regmap_read", "syscon"),
    ("drivers/iio/adc/adi-axi-adc.c", 230, "regmap_read", "mmio"),
    ("sound/soc/codecs/jz4770.c", 741, "regmap_update_bits", "funnel"),
    ("drivers/pinctrl/bcm/pinctrl-bcm63268.c", 514, "regmap_update_bits", "syscon"),
    ("drivers/clk/davinci/da8xx-cfgchip.c", 553, "regmap_write_bits", "syscon"),
    ("drivers/pinctrl/mvebu/pinctrl-armada-37xx.c", 361, "regmap_update_bits", "mmio"),
    ("drivers/clk/at91/clk-audio-pll.c", 86, "regmap_update_bits", "syscon"),
    ("drivers/pinctrl/mediatek/pinctrl-mtk-common.c", 848, "regmap_read", "syscon"),
    ("drivers/pinctrl/ti/pinctrl-ti-iodelay.c", 718, "regmap_read", "mmio"),
    ("drivers/iio/adc/bcm_iproc_adc.c", 172, "regmap_read", "syscon"),
    ("drivers/pinctrl/pinctrl-st.c", 612, "regmap_field_read", "syscon"),
    ("drivers/clk/ralink/clk-mtmips.c", 576, "regmap_read", "syscon"),
    ("sound/soc/codecs/rk3308_codec.c", 571, "regmap_update_bits", "mmio"),
    ("drivers/clk/actions/owl-factor.c", 154, "regmap_read", "mmio"),
    ("drivers/clk/davinci/psc.c", 120, "regmap_read", "mmio"),
]

# (path, line, callee): judged true references
REFERENCE_SAMPLES = [
    ("drivers/net/ethernet/8390/mcf8390.c", 131, "inb"),
    ("drivers/net/ethernet/8390/mcf8390.c", 132, "outb"),
    ("drivers/net/ethernet/8390/mcf8390.c", 133, "insb"),
    ("drivers/net/ethernet/8390/mcf8390.c", 134, "insw"),
    ("drivers/net/ethernet/8390/mcf8390.c", 135, "outsb"),
    ("drivers/net/ethernet/8390/mcf8390.c", 136, "outsw"),
    ("drivers/net/ethernet/engleder/tsnep_main.c", 371, "ioread32"),
    ("drivers/net/ethernet/engleder/tsnep_main.c", 1065, "ioread32"),
    ("drivers/net/ethernet/oki-semi/pch_gbe/pch_gbe_main.c", 293, "ioread32"),
    ("drivers/net/ethernet/oki-semi/pch_gbe/pch_gbe_main.c", 482, "ioread32"),
    ("drivers/net/ethernet/oki-semi/pch_gbe/pch_gbe_main.c", 491, "ioread32"),
    ("drivers/net/ethernet/sunplus/spl2sw_mac.c", 72, "readl"),
    ("drivers/net/ethernet/sunplus/spl2sw_mac.c", 108, "readl"),
    ("drivers/net/ethernet/sunplus/spl2sw_mdio.c", 42, "readl"),
]


def _scan(kernel_tree: Path, folders: tuple[str, ...], tmp: Path) -> list[dict[str, Any]]:
    out = tmp / "scan.json"
    code = main(["scan", *(str(kernel_tree / f) for f in folders), "--format", "json",
                 "-o", str(out), "--cache-dir", str(tmp / "cache"), "--no-progress"])
    assert code == 0
    sites: list[dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))["sites"]
    return sites


@pytest.fixture(scope="module")
def regmap_scan(kernel_tree: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> list[dict[str, Any]]:
    return _scan(kernel_tree, REGMAP_FOLDERS, tmp_path_factory.mktemp("regmap"))


@pytest.fixture(scope="module")
def ref_scan(kernel_tree: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> list[dict[str, Any]]:
    return _scan(kernel_tree, REF_FOLDERS + IB_FOLDERS, tmp_path_factory.mktemp("refs"))


def test_judged_regmap_samples(regmap_scan: list[dict[str, Any]]) -> None:
    found = {(s["path"], s["line"], s["callee"]): s.get("map") for s in regmap_scan
             if s["kind"] == "regmap"}
    missing = [x for x in REGMAP_SAMPLES if found.get(x[:3]) != x[3]]
    assert not missing


def test_i2c_and_spi_codecs_have_no_mmio_regmap_sites(regmap_scan: list[dict[str, Any]]
                                                      ) -> None:
    # rt5663 and rt5682 are I2C codecs, cs42l42 is I2C or SoundWire (114 rt5663 sites before)
    for name in ("rt5663.c", "rt5682-i2c.c", "cs42l42-i2c.c", "rt5640.c"):
        path = f"sound/soc/codecs/{name}"
        assert not [s for s in regmap_scan if s["path"] == path and s["kind"] == "regmap"
                    and s.get("map") != "unknown"], path
    assert not [s for s in regmap_scan if s["path"] == "sound/soc/codecs/rt5663.c"
                and s["kind"] == "regmap"]


def test_syscon_and_mmio_users_are_still_found(regmap_scan: list[dict[str, Any]]) -> None:
    by_path: dict[str, set[str]] = {}
    for s in regmap_scan:
        if s["kind"] == "regmap":
            by_path.setdefault(s["path"], set()).add(s.get("map") or "")
    assert "syscon" in by_path["drivers/pinctrl/mediatek/pinctrl-mtk-common.c"]
    assert "syscon" in by_path["drivers/clk/ralink/clk-mtmips.c"]
    assert "mmio" in by_path["drivers/pinctrl/ti/pinctrl-ti-iodelay.c"]
    assert "mmio" in by_path["drivers/clk/davinci/psc.c"]


def test_regmap_sites_say_their_map(regmap_scan: list[dict[str, Any]]) -> None:
    maps = {s.get("map") for s in regmap_scan if s["kind"] == "regmap"}
    assert maps <= {"mmio", "syscon", "port", "funnel", "unknown"}
    assert {"mmio", "syscon", "funnel"} <= maps


def test_judged_references(ref_scan: list[dict[str, Any]]) -> None:
    found = {(s["path"], s["line"], s["callee"]) for s in ref_scan if s["kind"] == "reference"}
    assert set(REFERENCE_SAMPLES) <= found


def test_locals_named_like_accessors_are_not_references(ref_scan: list[dict[str, Any]]
                                                        ) -> None:
    # mlx4's `struct mlx4_wqe_inline_seg *inl` and mlx5's `void *outb` (53 before)
    assert not [s for s in ref_scan if s["kind"] == "reference"
                and s["path"].startswith(IB_FOLDERS)]
