"""Issue 4 end to end on the real tree: drivers, groups, .config, verdicts, strategies.

A handful of folders are scanned once with Debian's cloud-amd64 config (a TD guest config):
the virtio transports, virtio_net, bnxt (its __iowrite32_copy must oops), e1000e (not built
by the cloud config), the x86 HPET and IO-APIC code and an old driver with raw dereferences.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from mmioscan.cli.main import main
from mmioscan.kernel.kernelsrc import ensure_cloud_config

pytestmark = pytest.mark.integration

FOLDERS = ("drivers/virtio", "drivers/net/virtio_net.c", "drivers/net/ethernet/broadcom/bnxt",
           "drivers/net/ethernet/intel/e1000e", "arch/x86/kernel/hpet.c",
           "arch/x86/kernel/apic/io_apic.c", "drivers/scsi/mesh.c")


def _run(args: list[str], out: Path) -> dict[str, Any]:
    assert main(args + ["-o", str(out)]) == 0
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def scan(kernel_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("analyse")
    paths = [str(kernel_tree / f) for f in FOLDERS]
    return _run(["scan", *paths, "--config", str(ensure_cloud_config()), "--format", "json",
                 "--cache-dir", str(tmp / "cache"), "--no-progress"], tmp / "scan.json")


@pytest.fixture(scope="module")
def strategies(kernel_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("strategies")
    paths = [str(kernel_tree / f) for f in FOLDERS]
    return _run(["strategies", *paths, "--config", str(ensure_cloud_config()),
                 "--format", "json", "--cache-dir", str(tmp / "cache"), "--no-progress"],
                tmp / "strategies.json")


def _sites(scan: dict[str, Any], path_prefix: str) -> list[dict[str, Any]]:
    return [s for s in scan["sites"] if s["path"].startswith(path_prefix) and s["active"]]


def test_every_site_is_mapped_judged_and_fingerprinted(scan: dict[str, Any]) -> None:
    assert scan["strategy"] == "upstream"
    assert scan["config"].endswith("cloud-amd64")
    for site in scan["sites"]:
        assert site["group"] in ("virtio", "x86", "generic"), site
        assert site["group_reason"], site
        assert site["reachable"] in (True, False, None)
        assert site["tdx"]["path"] in ("ve", "paravirt", "unsupported"), site
        assert site["tdx"]["reason"] and site["tdx"]["insn"]
        assert len(site["fingerprint"]) == 32
    prints = [s["fingerprint"] for s in scan["sites"]]
    assert len(prints) == len(set(prints)), "fingerprints must tell every site apart"


def test_drivers_and_groups_come_from_kbuild_and_kconfig(scan: dict[str, Any]) -> None:
    # virtio_net.c itself has no MMIO (it talks to virtqueues): no site, no driver row
    assert not _sites(scan, "drivers/net/virtio_net.c")
    by_path = {s["path"]: s for s in scan["sites"]}
    vpci = by_path["drivers/virtio/virtio_pci_modern.c"]
    assert (vpci["driver"], vpci["config_symbol"], vpci["group"]) == (
        "virtio_pci", "VIRTIO_PCI", "virtio")
    assert "drivers/virtio/" in vpci["group_reason"] and vpci["reachable"] is True
    bnxt = _sites(scan, "drivers/net/ethernet/broadcom/bnxt/")
    assert {s["driver"] for s in bnxt} == {"bnxt_en"} and {s["group"] for s in bnxt} == {
        "generic"}
    hpet = _sites(scan, "arch/x86/kernel/hpet.c")
    assert hpet and {s["group"] for s in hpet} == {"x86"}
    modern = _sites(scan, "drivers/virtio/virtio_pci_modern")
    assert modern and all(s["group"] == "virtio" and s["reachable"] for s in modern)


def test_the_cloud_config_does_not_build_e1000e(scan: dict[str, Any]) -> None:
    e1000e = _sites(scan, "drivers/net/ethernet/intel/e1000e/")
    assert e1000e and all(s["reachable"] is False for s in e1000e)
    counted = scan["stats"]["sites"]
    unreachable = scan["stats"]["unreachable_sites"]
    active = sum(s["active"] for s in scan["sites"])
    assert counted + unreachable == active and unreachable >= len(e1000e)
    assert scan["stats"]["counts_unreachable"] is False


def test_iowrite32_copy_in_bnxt_is_unsupported(scan: dict[str, Any]) -> None:
    copies = [s for s in _sites(scan, "drivers/net/ethernet/broadcom/bnxt/bnxt_hwrm.c")
              if s["accessor"] == "__iowrite32_copy" and s["kind"] == "direct"]
    assert copies
    for site in copies:
        assert (site["tdx"]["path"], site["tdx"]["insn"]) == ("unsupported", "movs")
    assert scan["tdx_sources"]["__iowrite32_copy"] == "tree:arch/x86/include/asm/io.h"


def test_plain_accessors_trap_once_and_derefs_are_unsupported(scan: dict[str, Any]) -> None:
    readl = [s for s in scan["sites"] if s["kind"] == "direct" and s["accessor"] == "readl"]
    assert readl and all(s["tdx"] == {**s["tdx"], "path": "ve", "ve_exits": 1} for s in readl)
    derefs = [s for s in scan["sites"] if s["kind"] == "deref"]
    assert len(derefs) > 50  # mesh.c overlays its register block
    assert {s["tdx"]["path"] for s in derefs} == {"unsupported"}
    assert {s["tdx"]["insn"] for s in derefs} == {"compiler-chosen"}


def test_wrapper_takes_the_worst_access_it_reaches(scan: dict[str, Any]) -> None:
    rank = {"paravirt": 0, "ve": 1, "unsupported": 2}
    verdicts = {(s["kind"], s["accessor"]): s["tdx"]["path"] for s in scan["sites"]
                if s["kind"] == "direct"}
    for site in scan["sites"]:
        if site["kind"] != "wrapper":
            continue
        reached = [verdicts[("direct", a)] for a in site["accessors"]
                   if ("direct", a) in verdicts]
        if reached:
            assert rank[site["tdx"]["path"]] >= max(rank[v] for v in reached), site


def test_drivers_table_matches_the_sites(scan: dict[str, Any]) -> None:
    counted = [s for s in scan["sites"] if s["active"] and s["reachable"] is not False]
    per_driver = Counter(s["driver"] for s in counted)
    table = {d["name"]: d for d in scan["drivers"]}
    assert {n: d["sites"] for n, d in table.items()} == dict(per_driver)
    for row in table.values():
        assert row["ve"] + row["paravirt"] + row["unsupported"] == row["sites"]
    assert "virtio_pci.o" in table["virtio_pci"]["evidence"]
    assert "drivers/virtio/Makefile" in table["virtio_pci"]["evidence"]


def test_strategies_side_by_side(strategies: dict[str, Any]) -> None:
    rows = {(r["strategy"], r["group"]): r for r in strategies["strategies"]}
    names = {s for s, _ in rows}
    assert {"upstream", "iomap-paravirt", "virtio-paravirt"} <= names
    for row in rows.values():
        assert row["ve"] + row["paravirt"] + row["unsupported"] == row["sites"]
    for name in names:  # the groups add up to "all"
        parts = [rows[(name, g)] for g in ("virtio", "x86", "generic")]
        assert sum(p["sites"] for p in parts) == rows[(name, "all")]["sites"]
    upstream, virtio = rows[("upstream", "virtio")], rows[("virtio-paravirt", "virtio")]
    assert upstream["paravirt"] == 0 and upstream["sites"] == virtio["sites"]
    assert virtio["paravirt"] > virtio["sites"] // 2 > 0
    assert virtio["points_90"] < upstream["points_90"]
    # patching the virtio funnels changes nothing outside the virtio group
    assert rows[("virtio-paravirt", "x86")]["ve"] == rows[("upstream", "x86")]["ve"]
    # no strategy makes an unsupported access safe
    for name in names:
        assert rows[(name, "all")]["unsupported"] == rows[("upstream", "all")]["unsupported"]


def test_a_malformed_config_is_one_line_and_exit_2(
        kernel_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.config"
    bad.write_text("CONFIG_VIRTIO=y\nthis is not a config line\n", encoding="utf-8")
    code = main(["scan", str(kernel_tree / "drivers/virtio"), "--config", str(bad),
                 "--no-cache", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "bad.config:2" in err
