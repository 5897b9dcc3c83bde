"""Issue 4 end to end through the command line, on tests/fixtures/tdtree (no real kernel).

The fixture (see its README.md) is a tiny kernel-style tree with Kbuild, Kconfig, a TD guest
.config (td.config), a virtio funnel in include/linux/, an x86-only DMA engine with an
interrupt handler, a generic device using every bulk and unsupported form, a driver the
.config does not build and an arm64 file, plus the io.h/iomem.c/iomap.c/iomap_copy.c the TDX
instruction forms are derived from. Every test drives `mmioscan.cli.main.main`.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from mmioscan.cli.main import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TDTREE = FIXTURES / "tdtree"
CONFIG = TDTREE / "td.config"
SARIF_SCHEMA = FIXTURES / "schemas" / "sarif-schema-2.1.0.json"

VPCI = "drivers/virtio/vpci_modern.c"
VHDR = "include/linux/virtio_pci_modern.h"
VNET = "drivers/net/vnet_mmio.c"
XDMA = "drivers/dma/xdma.c"
GDEV = "drivers/misc/gdev.c"
GOLD = "drivers/misc/gold.c"
TICKER = "arch/arm64/kernel/ticker.c"
IO_H = "arch/x86/include/asm/io.h"
IOMEM = "arch/x86/lib/iomem.c"
IOMAP = "lib/iomap.c"
IOMAP_COPY = "lib/iomap_copy.c"

GROUPS = ("virtio", "x86", "generic")
SHIPPED = ("upstream", "iomap-paravirt", "virtio-paravirt")
# The single accesses strategies.toml's iomap-paravirt patches (not the _rep forms).
IOMAP_SINGLE = frozenset({"ioread8", "ioread16", "ioread16be", "ioread32", "ioread32be",
                          "iowrite8", "iowrite16", "iowrite16be", "iowrite32", "iowrite32be"})

# path -> (driver, config_symbol, group, group_reason substring, reachable under td.config)
DRIVERS: dict[str, tuple[str, str | None, str, str, bool | None]] = {
    VPCI: ("virtio_pci", "VIRTIO_PCI", "virtio", "path rule drivers/virtio/", True),
    VHDR: ("include/linux", None, "virtio", "path rule include/linux/virtio", None),
    VNET: ("vnet_mmio", "VNET_MMIO", "virtio",
           "Kconfig VNET_MMIO: depends on NETDEVICES && VIRTIO", True),
    XDMA: ("xdma", "XDMA", "x86", "Kconfig XDMA: depends on PCI && X86_64", True),
    GDEV: ("gdev", "GDEV", "generic", "(Kconfig GDEV: depends on PCI)", True),
    GOLD: ("gold", "GOLD", "generic", "(Kconfig GOLD: depends on PCI)", False),
    TICKER: ("ticker", "ARM_TICKER", "generic", "no x86 or virtio dependency", False),
    IO_H: ("arch/x86/include/asm", None, "x86", "path rule arch/x86/", None),
    IOMEM: ("iomem", None, "x86", "path rule arch/x86/", True),
    IOMAP: ("iomap", "GENERIC_IOMAP", "generic", "(Kconfig GENERIC_IOMAP: no dependencies)",
            True),
}

# The Makefile line each built driver's row names.
EVIDENCE = {
    "virtio_pci": "drivers/virtio/Makefile: obj-$(CONFIG_VIRTIO_PCI) += virtio_pci.o; "
                  "virtio_pci-y := vpci_modern.o",
    "vnet_mmio": "drivers/net/Makefile: obj-$(CONFIG_VNET_MMIO) += vnet_mmio.o",
    "xdma": "drivers/dma/Makefile: obj-$(CONFIG_XDMA) += xdma.o",
    "gdev": "drivers/misc/Makefile: obj-$(CONFIG_GDEV) += gdev.o",
    "iomap": "lib/Makefile: obj-$(CONFIG_GENERIC_IOMAP) += iomap.o",
    "iomem": "arch/x86/lib/Makefile: lib-y := iomem.o",
}

# Sites per driver file, exactly (the fixture's own code).
FILE_SITES = {VPCI: 6, VHDR: 2, VNET: 2, XDMA: 3, GDEV: 8, GOLD: 2, TICKER: 1}

# gdev.c: the text of the line -> (callee, kind, tdx path, insn, #VE exits)
GDEV_CASES = {
    "__iowrite32_copy(gd->window, words, 4);":
        ("__iowrite32_copy", "direct", "unsupported", "movs", None),
    "memcpy_toio(gd->window, blob, 16);": ("memcpy_toio", "direct", "ve", "unrolled-mov", 16),
    "memcpy_toio(gd->window, blob, len);": ("memcpy_toio", "direct", "ve", "unrolled-mov", None),
    "ioread32_rep(gd->fifo, buf, 8);": ("ioread32_rep", "direct", "ve", "mov", 8),
    "regs->ctrl = 1;": ("p->field", "deref", "unsupported", "compiler-chosen", None),
    "iosubmit_cmds512(gd->portal, cmd, 1);":
        ("iosubmit_cmds512", "direct", "unsupported", "movdir64b", None),
    "u32 v = ioread32(gd->window);": ("ioread32", "direct", "ve", "out-of-line-mov", 1),
    "return v | readl(gd->window + 4);": ("readl", "direct", "ve", "mov", 1),
}


# -- running the command line ------------------------------------------------------------------


def _common(cache: Path) -> list[str]:
    return ["--cache-dir", str(cache), "--no-progress", "-j", "1"]


def _run_json(args: list[str], out: Path) -> dict[str, Any]:
    assert main([*args, "-o", str(out)]) == 0, args
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def _scan(cache: Path, out: Path, *extra: str, tree: Path = TDTREE,
          config: Path | None = CONFIG) -> dict[str, Any]:
    config_args = ["--config", str(config)] if config is not None else []
    return _run_json(["scan", str(tree), *config_args, "--format", "json", *extra,
                      *_common(cache)], out)


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int) -> str:
    captured = capsys.readouterr()
    assert code == 2
    err = captured.err
    assert err.startswith("mmioscan: error: "), err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert captured.out == ""
    return err


def _line_of(rel: str, text: str) -> int:
    """The 1-based line of the fixture file holding `text` (exactly one)."""
    lines = (TDTREE / rel).read_text(encoding="utf-8").splitlines()
    found = [i for i, line in enumerate(lines, 1) if text in line]
    assert len(found) == 1, (rel, text, found)
    return found[0]


def _counted(scan: dict[str, Any]) -> list[dict[str, Any]]:
    """The sites summaries count with a .config (and without --all)."""
    return [s for s in scan["sites"] if s["active"] and s["reachable"] is not False]


def _in(scan: dict[str, Any], path: str) -> list[dict[str, Any]]:
    return [s for s in scan["sites"] if s["path"] == path]


def _at(scan: dict[str, Any], path: str, line: int) -> dict[str, Any]:
    found = [s for s in scan["sites"] if s["path"] == path and s["line"] == line]
    assert len(found) == 1, (path, line, found)
    return found[0]


def _vp_site(site: dict[str, Any]) -> bool:
    """A site that goes through the virtio funnel (a vp_* call, or inside a vp_* helper)."""
    return site["callee"].startswith("vp_") or (site["function"] or "").startswith("vp_")


# -- module fixtures: each command run once ------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("analyse-cli")


@pytest.fixture(scope="module")
def cache(work: Path) -> Path:
    return work / "cache"


@pytest.fixture(scope="module")
def upstream(work: Path, cache: Path) -> dict[str, Any]:
    return _scan(cache, work / "upstream.json")


@pytest.fixture(scope="module")
def all_sites(work: Path, cache: Path) -> dict[str, Any]:
    return _scan(cache, work / "all.json", "--all")


@pytest.fixture(scope="module")
def by_strategy(work: Path, cache: Path) -> dict[str, dict[str, Any]]:
    return {name: _scan(cache, work / f"scan-{name}.json", "--strategy", name)
            for name in ("iomap-paravirt", "virtio-paravirt")}


@pytest.fixture(scope="module")
def strategies(work: Path, cache: Path) -> dict[str, Any]:
    return _run_json(["strategies", str(TDTREE), "--config", str(CONFIG), "--format", "json",
                      *_common(cache)], work / "strategies.json")


@pytest.fixture(scope="module")
def rows(strategies: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["strategy"], r["group"]): r for r in strategies["strategies"]}


# -- 1. scan --format json: drivers, groups, reachability, verdicts, stats ------------------------


def test_every_site_is_mapped_judged_and_fingerprinted(upstream: dict[str, Any]) -> None:
    assert upstream["strategy"] == "upstream"
    assert upstream["root"] == str(TDTREE.resolve())
    assert upstream["kernel_version"] == "6.12.0-td"
    assert upstream["sites"]
    for site in upstream["sites"]:
        for key in ("driver", "config_symbol", "group", "group_reason", "reachable", "tdx",
                    "fingerprint"):
            assert key in site, (key, site)
        assert site["driver"], site
        assert site["group"] in GROUPS, site
        assert site["group_reason"], site
        assert site["reachable"] in (True, False, None), site
        assert site["tdx"]["path"] in ("ve", "paravirt", "unsupported"), site
        assert site["tdx"]["insn"] and site["tdx"]["reason"], site
        assert isinstance(site["fingerprint"], str) and len(site["fingerprint"]) == 32
    prints = [s["fingerprint"] for s in upstream["sites"]]
    assert len(prints) == len(set(prints))
    # nothing is paravirt in mainline
    assert not [s for s in upstream["sites"] if s["tdx"]["path"] == "paravirt"]


@pytest.mark.parametrize("path", sorted(DRIVERS))
def test_driver_group_reason_and_reachability(upstream: dict[str, Any], path: str) -> None:
    driver, symbol, group, reason, reachable = DRIVERS[path]
    sites = _in(upstream, path)
    assert sites, f"no site in {path}"
    for site in sites:
        assert site["driver"] == driver, site
        assert site["config_symbol"] == symbol, site
        assert site["group"] == group, site
        assert reason in site["group_reason"], site
        assert site["reachable"] is reachable, site


@pytest.mark.parametrize("path", sorted(FILE_SITES))
def test_sites_per_driver_file(upstream: dict[str, Any], path: str) -> None:
    assert len(_in(upstream, path)) == FILE_SITES[path]


def test_without_a_config_nothing_is_reachable_or_not(work: Path, cache: Path) -> None:
    scan = _scan(cache, work / "noconfig.json", config=None)
    assert {s["reachable"] for s in scan["sites"]} == {None}
    assert scan["stats"]["unreachable_sites"] == 0
    assert scan["stats"]["sites"] == sum(s["active"] for s in scan["sites"])
    # groups do not need a .config
    assert {s["group"] for s in _in(scan, XDMA)} == {"x86"}


@pytest.mark.parametrize("text", sorted(GDEV_CASES))
def test_gdev_accessor_verdicts(upstream: dict[str, Any], text: str) -> None:
    callee, kind, path, insn, exits = GDEV_CASES[text]
    site = _at(upstream, GDEV, _line_of(GDEV, text))
    assert (site["callee"], site["kind"]) == (callee, kind)
    tdx = site["tdx"]
    assert (tdx["path"], tdx["insn"], tdx["ve_exits"]) == (path, insn, exits), tdx


def test_forms_come_from_the_trees_own_files(upstream: dict[str, Any]) -> None:
    sources = upstream["tdx_sources"]
    assert sources["__iowrite32_copy"] == f"tree:{IO_H}"
    assert sources["iosubmit_cmds512"] == f"tree:{IO_H}"
    assert sources["readl"] == f"tree:{IO_H}"
    assert sources["memcpy_toio"] == f"tree:{IOMEM}"
    assert sources["ioread32_rep"] == f"tree:{IOMAP}"
    assert sources["ioread32"] == f"tree:{IOMAP}"
    copy = _at(upstream, GDEV, _line_of(GDEV, "__iowrite32_copy(gd->window"))
    assert "rep ; movsl" in copy["tdx"]["reason"]
    assert f"[tree:{IO_H}]" in copy["tdx"]["reason"]
    toio = _at(upstream, GDEV, _line_of(GDEV, "memcpy_toio(gd->window, blob, 16)"))
    assert "CC_ATTR_GUEST_UNROLL_STRING_IO" in toio["tdx"]["reason"]


def test_accessor_implementations_are_not_sites(upstream: dict[str, Any]) -> None:
    """Bodies of catalogued accessors, EXPORT_SYMBOL(accessor), build_mmio_read(readb, ...)
    and prototypes define accessors; only the tree's own helpers (bytes_from_io) stay."""
    assert _in(upstream, IOMAP_COPY) == []
    names = {s["accessor"] for s in upstream["sites"] if s["kind"] == "direct"}
    for site in upstream["sites"]:
        assert site["function"] not in names, site
        code = site["code"] or ""
        assert not code.startswith(("EXPORT_SYMBOL", "build_mmio_", "void ")), site
    assert {s["function"] for s in _in(upstream, IOMEM)} >= {"bytes_from_io", "bytes_to_io"}


def test_iowrite32_copy_is_unsupported_only_when_io_h_says_so(tmp_path: Path) -> None:
    """Without the x86 inline `rep ; movsl`, lib/iomap_copy.c's generic loop decides."""
    tree = tmp_path / "tree"
    shutil.copytree(TDTREE, tree)
    io_h = tree / IO_H
    text = io_h.read_text(encoding="utf-8")
    start = text.index("#ifdef CONFIG_X86_64\n/* the whole copy")
    end_marker = "#define __iowrite32_copy __iowrite32_copy\n#endif\n"
    end = text.index(end_marker) + len(end_marker)
    io_h.write_text(text[:start] + text[end:], encoding="utf-8")
    scan = _scan(tmp_path / "cache", tmp_path / "out.json", tree=tree,
                 config=tree / "td.config")
    site = _at(scan, GDEV, _line_of(GDEV, "__iowrite32_copy(gd->window"))
    tdx = site["tdx"]
    assert (tdx["path"], tdx["insn"], tdx["ve_exits"]) == ("ve", "mov", 4), tdx
    assert scan["tdx_sources"]["__iowrite32_copy"] == f"tree:{IOMAP_COPY}"


def test_virtio_funnel_wrappers_trap_under_upstream(upstream: dict[str, Any]) -> None:
    wrappers = [s for s in _in(upstream, VPCI) if s["kind"] == "wrapper"]
    assert sorted(Counter(s["callee"] for s in wrappers).items()) == [
        ("vp_ioread16", 2), ("vp_iowrite16", 3)]
    for site in wrappers:
        assert site["accessor"] in ("ioread16", "iowrite16"), site
        tdx = site["tdx"]
        assert (tdx["path"], tdx["insn"], tdx["ve_exits"]) == ("ve", "out-of-line-mov", 1)
    helpers = _in(upstream, VHDR)
    assert sorted((s["function"], s["callee"], s["kind"]) for s in helpers) == [
        ("vp_ioread16", "ioread16", "direct"), ("vp_iowrite16", "iowrite16", "direct")]
    direct = _at(upstream, VPCI, _line_of(VPCI, "return ioread32(vd->isr);"))
    assert (direct["kind"], direct["tdx"]["path"]) == ("direct", "ve")


def test_interrupt_handler_sites_are_hot(upstream: dict[str, Any]) -> None:
    hot = {(s["function"], s["callee"]): s["hot"] for s in _in(upstream, XDMA)}
    assert hot == {("xdma_irq", "readl"): True, ("xdma_irq", "writel"): True,
                   ("xdma_probe", "writel"): False}
    assert [(r["function"], r["how"]) for r in upstream["hot_roots"]] == [
        ("xdma_irq", "request_irq")]


def test_stats_count_only_reachable_sites(upstream: dict[str, Any]) -> None:
    stats = upstream["stats"]
    active = [s for s in upstream["sites"] if s["active"]]
    unreachable = [s for s in active if s["reachable"] is False]
    assert stats["counts_unreachable"] is False
    assert sorted(s["path"] for s in unreachable) == [TICKER, GOLD, GOLD]
    assert stats["unreachable_sites"] == 3
    assert stats["sites"] == len(active) - 3 == len(_counted(upstream))
    assert sum(stats["by_group"].values()) == stats["sites"]
    assert sum(stats["by_tdx_path"].values()) == stats["sites"]
    assert stats["by_group"] == dict(Counter(s["group"] for s in _counted(upstream)))


def test_all_counts_every_active_site(all_sites: dict[str, Any],
                                      upstream: dict[str, Any]) -> None:
    stats = all_sites["stats"]
    active = [s for s in all_sites["sites"] if s["active"]]
    assert stats["counts_unreachable"] is True
    assert stats["sites"] == len(active) == upstream["stats"]["sites"] + 3
    assert stats["unreachable_sites"] == 3
    # --all changes what is counted, not the sites or their verdicts
    assert all_sites["sites"] == upstream["sites"]


# -- 2. the drivers table ----------------------------------------------------------------------


def test_one_driver_row_per_driver_with_its_counted_sites(upstream: dict[str, Any]) -> None:
    rows = upstream["drivers"]
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names))
    counted = Counter(s["driver"] for s in _counted(upstream))
    assert {r["name"]: r["sites"] for r in rows} == dict(counted)
    assert "gold" not in names and "ticker" not in names  # not built: not counted
    for row in rows:
        assert row["ve"] + row["paravirt"] + row["unsupported"] == row["sites"], row
    by_name = {r["name"]: r for r in rows}
    assert by_name["xdma"]["hot"] == 2 and by_name["xdma"]["group"] == "x86"
    assert by_name["gdev"]["unsupported"] == 3  # __iowrite32_copy, the deref, MOVDIR64B
    # 16 (memcpy_toio of 16 bytes) + 8 (ioread32_rep of 8) + ioread32 + readl; len unknown
    assert by_name["gdev"]["ve_exits"] == 26
    assert by_name["vnet_mmio"]["group_reason"] == DRIVERS[VNET][3]


@pytest.mark.parametrize("name", sorted(EVIDENCE))
def test_driver_evidence_names_the_makefile_line(upstream: dict[str, Any], name: str) -> None:
    row = next(r for r in upstream["drivers"] if r["name"] == name)
    assert row["evidence"] == EVIDENCE[name]
    assert row["reachable"] is True


def test_all_lists_the_unbuilt_drivers_too(all_sites: dict[str, Any]) -> None:
    by_name = {r["name"]: r for r in all_sites["drivers"]}
    assert by_name["gold"]["sites"] == 2 and by_name["gold"]["reachable"] is False
    assert by_name["ticker"]["sites"] == 1 and by_name["ticker"]["reachable"] is False
    counted = Counter(s["driver"] for s in all_sites["sites"] if s["active"])
    assert {n: r["sites"] for n, r in by_name.items()} == dict(counted)


# -- 3. strategies -----------------------------------------------------------------------------


def test_strategy_rows_cover_every_strategy_and_group(strategies: dict[str, Any]) -> None:
    assert strategies["counts_unreachable"] is False
    assert [(r["strategy"], r["group"]) for r in strategies["strategies"]] == [
        (s, g) for s in SHIPPED for g in (*GROUPS, "all")]
    for row in strategies["strategies"]:
        assert row["ve"] + row["paravirt"] + row["unsupported"] == row["sites"], row


def test_upstream_rows_match_the_scan(rows: dict[tuple[str, str], dict[str, Any]],
                                      upstream: dict[str, Any]) -> None:
    counted = _counted(upstream)
    for group in GROUPS:
        members = [s for s in counted if s["group"] == group]
        row = rows["upstream", group]
        assert row["sites"] == len(members), group
        assert row["paravirt"] == 0
        assert row["unsupported"] == sum(s["tdx"]["path"] == "unsupported" for s in members)
        assert row["hot"] == sum(s["hot"] for s in members)
        assert row["drivers"] == len({s["driver"] for s in members})
    assert rows["upstream", "all"]["sites"] == upstream["stats"]["sites"]
    assert rows["upstream", "x86"]["hot_ve"] == 2


@pytest.mark.parametrize("strategy", SHIPPED)
def test_all_row_is_the_sum_of_the_groups(rows: dict[tuple[str, str], dict[str, Any]],
                                          strategy: str) -> None:
    for key in ("sites", "ve", "paravirt", "unsupported", "hot", "hot_ve", "ve_exits",
                "drivers"):
        assert rows[strategy, "all"][key] == sum(rows[strategy, g][key] for g in GROUPS), key


def test_virtio_paravirt_patches_every_virtio_funnel_and_nothing_else(
        rows: dict[tuple[str, str], dict[str, Any]], upstream: dict[str, Any]) -> None:
    """By rule (group virtio, cover 100%): the named vp_* funnels and every other funnel of
    a virtio-group driver, however named (vnet_mmio's status and kick helpers, the ISR
    reader); other groups keep the upstream verdicts."""
    virtio = [s for s in _counted(upstream) if s["group"] == "virtio"]
    funnel = [s for s in virtio if _vp_site(s)]
    assert len(funnel) == 7  # 5 vp_* calls in the transport, 2 accesses in the helpers
    row = rows["virtio-paravirt", "virtio"]
    # The funnel rule (item 1): vnet_mmio_status(vn), vnet_mmio_kick(vn, queue) and
    # vpm_isr_status(vd) take a context pointer (and a value) only, fixed registers: no
    # funnels, so the rule patches nothing more and their 3 accesses still trap (was:
    # paravirt == len(virtio) == len(funnel) + 3, ve == 0).
    assert len(virtio) == len(funnel) + 3
    assert row["paravirt"] == len(funnel)
    assert row["ve"] == 3
    for group in ("x86", "generic"):
        mine = {k: v for k, v in rows["virtio-paravirt", group].items() if k != "strategy"}
        base = {k: v for k, v in rows["upstream", group].items() if k != "strategy"}
        assert mine == base, group


def test_virtio_paravirt_site_verdicts(by_strategy: dict[str, dict[str, Any]]) -> None:
    scan = by_strategy["virtio-paravirt"]
    assert scan["strategy"] == "virtio-paravirt"
    for site in _in(scan, VPCI) + _in(scan, VHDR):
        # item 1: vpm_isr_status(vd), context pointer only, is no funnel: its read traps
        want = "ve" if site["function"] == "vpm_isr_status" else "paravirt"
        assert site["tdx"]["path"] == want, site
    # Item 1: vnet_mmio's helpers take a context pointer only: no funnels, not patched by
    # the rule any more (was: paravirt, the reason naming the helper).
    for site in _in(scan, VNET):
        assert site["tdx"]["path"] == "ve", site


def test_iomap_paravirt_patches_ioread_iowrite_not_readl(
        rows: dict[tuple[str, str], dict[str, Any]], upstream: dict[str, Any],
        by_strategy: dict[str, dict[str, Any]]) -> None:
    virtio = [s for s in _counted(upstream) if s["group"] == "virtio"]
    iomap = [s for s in virtio if s["accessor"] in IOMAP_SINGLE]
    assert len(iomap) == 8  # the funnel's 7 and the ISR's ioread32
    assert rows["iomap-paravirt", "virtio"]["paravirt"] == len(iomap)
    assert rows["iomap-paravirt", "virtio"]["ve"] == 2  # vnet_mmio's readl and writel
    scan = by_strategy["iomap-paravirt"]
    drivers = [s for p in (VPCI, VHDR, VNET, XDMA, GDEV) for s in _in(scan, p)]
    for site in drivers:
        if site["accessor"] in IOMAP_SINGLE:
            assert site["tdx"]["path"] == "paravirt", site
        elif site["accessor"] in ("readl", "writel", "ioread32_rep", "memcpy_toio"):
            assert site["tdx"]["path"] == "ve", site
    assert rows["iomap-paravirt", "x86"] == {**rows["upstream", "x86"],
                                             "strategy": "iomap-paravirt"}


def test_unsupported_never_changes(rows: dict[tuple[str, str], dict[str, Any]]) -> None:
    for group in (*GROUPS, "all"):
        counts = {rows[s, group]["unsupported"] for s in SHIPPED}
        assert len(counts) == 1, (group, counts)
    assert rows["upstream", "generic"]["unsupported"] >= 3  # gdev's three


def test_strategies_text_prints_a_table_per_strategy(
        cache: Path, capsys: pytest.CaptureFixture[str],
        rows: dict[tuple[str, str], dict[str, Any]]) -> None:
    code = main(["strategies", str(TDTREE), "--config", str(CONFIG), *_common(cache)])
    out = capsys.readouterr().out
    assert code == 0
    blocks = out.split("\nstrategy ")[1:]
    assert [b.split(":", 1)[0] for b in blocks] == list(SHIPPED)
    for block in blocks:
        name = block.split(":", 1)[0]
        lines = block.splitlines()
        assert lines[1].split()[:3] == ["group", "drivers", "sites"]
        table = {ln.split()[0]: ln.split() for ln in lines[2:6]}
        assert list(table) == [*GROUPS, "all"]
        for group, cells in table.items():
            row = rows[name, group]
            assert [int(c.replace(",", "")) for c in cells[1:6]] == [
                row["drivers"], row["sites"], row["ve"], row["paravirt"], row["unsupported"]]


# -- 4. a user's patch points, and bad input -----------------------------------------------------


@pytest.mark.parametrize("entry", ["xdma_irq", "drivers/dma/xdma.c:xdma_irq"])
def test_patch_points_make_a_function_paravirt(tmp_path: Path, cache: Path,
                                               upstream: dict[str, Any], entry: str) -> None:
    points = tmp_path / "points.txt"
    points.write_text(f"# the x86 engine's interrupt handler\n{entry}\n", encoding="utf-8")
    scan = _scan(cache, tmp_path / "out.json", "--patch-points", str(points))
    assert scan["strategy"] == "patch-points:points.txt"
    before = {(s["path"], s["line"], s["column"], s["callee"]): s["tdx"]
              for s in upstream["sites"]}
    changed = []
    for site in scan["sites"]:
        key = (site["path"], site["line"], site["column"], site["callee"])
        if site["function"] == "xdma_irq":
            assert site["tdx"]["path"] == "paravirt", site
            assert site["tdx"]["ve_exits"] == 0
            changed.append(key)
        else:
            assert site["tdx"] == before[key], site
    assert len(changed) == 2
    xdma = next(r for r in scan["drivers"] if r["name"] == "xdma")
    assert (xdma["ve"], xdma["paravirt"]) == (1, 2)


def test_strategies_include_the_users_list(tmp_path: Path, cache: Path) -> None:
    points = tmp_path / "mine.txt"
    points.write_text("xdma_irq\n", encoding="utf-8")
    doc = _run_json(["strategies", str(TDTREE), "--config", str(CONFIG), "--format", "json",
                     "--patch-points", str(points), *_common(cache)], tmp_path / "s.json")
    mine = {r["group"]: r for r in doc["strategies"] if r["strategy"] == "patch-points:mine.txt"}
    assert set(mine) == {*GROUPS, "all"}
    assert mine["x86"]["paravirt"] == 2 and mine["x86"]["hot_ve"] == 0
    assert mine["virtio"]["paravirt"] == mine["generic"]["paravirt"] == 0


@pytest.mark.parametrize("content", [b"", b"# only a comment\n\n", bytes(range(256)),
                                     b"xdma_irq\x00\x01\x02garbage\n"],
                         ids=["empty", "comments-only", "binary", "nul-bytes"])
def test_bad_patch_points_file(tmp_path: Path, cache: Path,
                               capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    points = tmp_path / "points.bin"
    points.write_bytes(content)
    code = main(["scan", str(TDTREE), "--config", str(CONFIG), "--format", "json",
                 "--patch-points", str(points), *_common(cache)])
    err = _one_line_error(capsys, code)
    assert str(points) in err


def test_unknown_strategy(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", str(TDTREE), "--config", str(CONFIG), "--strategy", "nosuch",
                 *_common(cache)])
    err = _one_line_error(capsys, code)
    assert "nosuch" in err


def test_malformed_config_names_file_and_line(tmp_path: Path, cache: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.config"
    bad.write_text("# a TD config\nCONFIG_PCI=y\nCONFIG_XDMA m\n", encoding="utf-8")
    code = main(["scan", str(TDTREE), "--config", str(bad), "--format", "json",
                 *_common(cache)])
    err = _one_line_error(capsys, code)
    assert f"{bad}:3" in err


# -- 5. report ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(work: Path, cache: Path) -> dict[str, str]:
    outs = {ext: work / f"report.{ext}" for ext in ("html", "md", "json")}
    args = ["report", str(TDTREE), "--config", str(CONFIG), *_common(cache)]
    for out in outs.values():
        args += ["-o", str(out)]
    assert main(args) == 0
    return {ext: out.read_text(encoding="utf-8") for ext, out in outs.items()}


def test_report_html_names_the_drivers(report: dict[str, str]) -> None:
    html = report["html"]
    assert html.lstrip().lower().startswith("<!doctype html")
    for name in ("virtio_pci", "vnet_mmio", "xdma", "gdev"):
        assert name in html, name


def test_report_markdown_has_the_strategies_table(report: dict[str, str],
                                                  rows: dict[tuple[str, str],
                                                             dict[str, Any]]) -> None:
    md = report["md"]
    assert "### Strategies" in md
    table = md.split("### Strategies", 1)[1]
    for strategy in SHIPPED:
        for group in (*GROUPS, "all"):
            row = rows[strategy, group]
            assert f"| {strategy} | {group} | {row['drivers']} | {row['sites']} | " in table, (
                strategy, group)


def test_report_json_summary_is_machine_independent(report: dict[str, str],
                                                    strategies: dict[str, Any]) -> None:
    text = report["json"]
    assert str(TDTREE) not in text and str(TDTREE.resolve()) not in text
    summary = json.loads(text)
    assert summary["strategies"] == strategies["strategies"]
    assert summary["config"] == "td.config"
    assert summary["scanned"] == ["."]
    assert summary["unsupported_by_insn"]["movs"] >= 1
    assert summary["unsupported_by_insn"]["movdir64b"] >= 1


def test_report_rejects_other_suffixes(tmp_path: Path, cache: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    html, txt = tmp_path / "out.html", tmp_path / "out.txt"
    code = main(["report", str(TDTREE), "--config", str(CONFIG), "-o", str(html),
                 "-o", str(txt), *_common(cache)])
    err = _one_line_error(capsys, code)
    assert "out.txt" in err
    assert not html.exists() and not txt.exists()


# -- 6. SARIF, CSV, determinism ----------------------------------------------------------------


def _render(fmt: str, cache: Path, out: Path) -> bytes:
    assert main(["scan", str(TDTREE), "--config", str(CONFIG), "--format", fmt, "-o", str(out),
                 *_common(cache)]) == 0
    return out.read_bytes()


def test_sarif_is_valid_and_flags_the_oopses(work: Path, cache: Path) -> None:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    Draft4Validator.check_schema(schema)
    doc = json.loads(_render("sarif", cache, work / "scan.sarif"))
    errors = list(Draft4Validator(schema).iter_errors(doc))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    found = set()
    for res in doc["runs"][0]["results"]:
        loc = res["locations"][0]["physicalLocation"]
        found.add((res["ruleId"], loc["artifactLocation"]["uri"], loc["region"]["startLine"]))
    assert ("unsupported-mmio", GDEV, _line_of(GDEV, "__iowrite32_copy(gd->window")) in found
    assert ("unsupported-mmio", GDEV, _line_of(GDEV, "iosubmit_cmds512(gd->portal")) in found
    assert ("raw-iomem-deref", GDEV, _line_of(GDEV, "regs->ctrl = 1;")) in found
    assert not [f for f in found if f[1] in (GOLD, TICKER)]  # not built: not findings


def test_csv_has_one_row_per_site(work: Path, cache: Path, upstream: dict[str, Any]) -> None:
    text = _render("csv", cache, work / "scan.csv").decode("utf-8")
    table = list(csv.reader(io.StringIO(text)))
    header, body = table[0], table[1:]
    assert header[:3] == ["path", "line", "column"]
    assert len(body) == len(upstream["sites"])
    col: Callable[[str], int] = header.index
    assert [(r[0], int(r[1]), int(r[2]), r[col("tdx_path")]) for r in body] == [
        (s["path"], s["line"], s["column"], s["tdx"]["path"]) for s in upstream["sites"]]


@pytest.mark.parametrize("fmt", ["json", "sarif", "csv"])
def test_scan_output_is_deterministic(tmp_path: Path, fmt: str) -> None:
    cache = tmp_path / "cache"  # first run cold, second from the cache
    first = _render(fmt, cache, tmp_path / f"first.{fmt}")
    second = _render(fmt, cache, tmp_path / f"second.{fmt}")
    assert first == second


# -- 7. explain --------------------------------------------------------------------------------


def test_explain_a_line_prints_the_tdx_verdict(cache: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    line = _line_of(GDEV, "__iowrite32_copy(gd->window")
    code = main(["explain", f"{TDTREE / GDEV}:{line}", "--cache-dir", str(cache), "-j", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"{GDEV}:{line}: 1 site(s)")
    verdicts = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("TDX:")]
    assert len(verdicts) == 1
    assert verdicts[0].startswith("TDX: unsupported, movs")
    assert "driver gdev (CONFIG_GDEV), group generic" in out


def test_explain_a_counted_bulk_copy(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _line_of(GDEV, "memcpy_toio(gd->window, blob, 16)")
    assert main(["explain", f"{TDTREE / GDEV}:{line}", "--cache-dir", str(cache),
                 "-j", "1"]) == 0
    assert "TDX: ve, unrolled-mov, #VE exits 16" in capsys.readouterr().out


def test_text_summary_counts_reachable_inactive_and_unbuilt_apart(
        cache: Path, capsys: pytest.CaptureFixture[str], upstream: dict[str, Any]) -> None:
    code = main(["scan", str(TDTREE), "--config", str(CONFIG), *_common(cache)])
    out = capsys.readouterr().out
    assert code == 0
    sites = upstream["sites"]
    active = sum(s["active"] and s["reachable"] is not False for s in sites)
    inactive = sum(not s["active"] for s in sites)
    unbuilt = sum(s["active"] and s["reachable"] is False for s in sites)
    assert unbuilt > 0
    assert f"sites: {active:,} active ({inactive:,} more in #if 0)" in out
    assert f"{unbuilt:,} more active sites are in files" in out
    assert "in a TDX guest, strategy upstream" in out
