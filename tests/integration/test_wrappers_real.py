"""Wrappers, patch points and hot paths on the real tree (linux-source-6.12), issue 3.

Only two driver folders are scanned (about a second each): e1000e, whose er32()/ew32() macros
funnel nearly every register access through __er32()/__ew32(), and virtio, whose modern PCI
code goes through the vp_ioread*/vp_iowrite* inlines of include/linux/virtio_pci_modern.h.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mmioscan.analysis.pipeline import ScanOptions, run_scan
from mmioscan.core.ruleset import load_rules

from .helpers import scan_folder

pytestmark = pytest.mark.integration

E1000E = "drivers/net/ethernet/intel/e1000e"
VIRTIO = "drivers/virtio"
VIRTIO_MODERN_H = "include/linux/virtio_pci_modern.h"



@pytest.fixture(scope="module")
def e1000e(kernel_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scan_folder(kernel_tree, E1000E, tmp_path_factory.mktemp("e1000e"))


@pytest.fixture(scope="module")
def virtio(kernel_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scan_folder(kernel_tree, VIRTIO, tmp_path_factory.mktemp("virtio"))


# -- e1000e ----------------------------------------------------------------------------------------


def test_e1000e_er32_ew32_are_wrapper_sites(e1000e: dict[str, Any]) -> None:
    calls = [s for s in e1000e["sites"]
             if s["callee"] in ("er32", "ew32") and s["path"].endswith(".c")]
    assert 900 <= len(calls) <= 1100, len(calls)
    assert all(s["kind"] == "wrapper" for s in calls)
    chains = {(s["callee"], tuple(s["via"])) for s in calls}
    assert chains == {("er32", ("er32", "__er32", "readl")),
                      ("ew32", ("ew32", "__ew32", "writel"))}
    reads = [s for s in calls if s["callee"] == "er32"]
    writes = [s for s in calls if s["callee"] == "ew32"]
    assert reads and writes
    assert {(s["access"], s["width"], tuple(s["accessors"])) for s in reads} == {
        ("read", 32, ("readl",))}
    # __ew32() first polls FWSM through er32() on parts with the PCIm2PCI workaround: the
    # write path reaches readl as well, so the access is "both"; the nearest stays writel.
    assert {(s["access"], s["width"], tuple(s["accessors"])) for s in writes} == {
        ("both", 32, ("readl", "writel"))}
    assert {s["driver"] for s in calls} == {"e1000e"}  # the module, from its Makefile
    assert len({s["path"] for s in calls}) >= 8  # spread over the driver's files


def test_e1000e_ew32_is_declared_in_the_header_and_defined_elsewhere(
        kernel_tree: Path, e1000e: dict[str, Any]) -> None:
    header = f"{E1000E}/e1000.h"
    text = (kernel_tree / header).read_text(encoding="utf-8", errors="replace")
    assert re.search(r"\b__ew32\s*\(", text)
    assert re.search(r"#define\s+ew32\b", text)
    graph = run_scan(ScanOptions(paths=(kernel_tree / E1000E,)), load_rules()).graph
    assert graph is not None
    key = graph.resolve(header, "__ew32")
    assert key is not None and f"{header}:__ew32" not in graph.definitions
    definition = graph.definitions[key]
    assert definition.path != header and definition.path.startswith(f"{E1000E}/")
    assert definition.path.endswith(".c") and not definition.static
    assert graph.reach[f"{header}:ew32"].via_keys == (f"{header}:ew32", key, "writel")
    # the JSON agrees: the patch point __ew32 sits in that .c file
    points = {p["name"]: p for p in e1000e["patch_points"]["e1000e"]["points"]}
    assert points["__ew32"]["path"] == definition.path


def test_e1000e_patch_points_start_with_the_two_funnels(e1000e: dict[str, Any]) -> None:
    cov = e1000e["patch_points"]["e1000e"]
    assert {p["name"] for p in cov["points"][:2]} == {"__er32", "__ew32"}
    assert cov["needed"]["90%"] is not None and cov["needed"]["90%"] <= 3


# -- virtio ----------------------------------------------------------------------------------------


def test_virtio_patch_points_name_the_include_funnel(virtio: dict[str, Any]) -> None:
    cov = virtio["patch_points"]["all"]  # drivers/virtio holds several modules
    first = cov["points"][:5]
    names = {p["name"]: p["path"] for p in first}
    assert names.get("vp_ioread16") == VIRTIO_MODERN_H, first
    assert names.get("vp_iowrite16") == VIRTIO_MODERN_H, first
    assert all(cov["needed"][k] is not None for k in ("50%", "90%"))


def test_virtio_modern_dev_calls_the_funnel(virtio: dict[str, Any]) -> None:
    sites = [s for s in virtio["sites"]
             if s["path"] == f"{VIRTIO}/virtio_pci_modern_dev.c" and s["kind"] == "wrapper"]
    funnel = [s for s in sites if s["callee"].startswith(("vp_ioread", "vp_iowrite"))]
    assert len(funnel) >= 20
    for s in funnel:
        assert s["via"][0] == s["callee"]
        assert re.fullmatch(r"io(read|write)(8|16|32)", s["via"][-1]), s["via"]
    assert {"vp_ioread16", "vp_iowrite16", "vp_iowrite32"} <= {s["callee"] for s in funnel}
    # the header itself is context: its sites are not reported
    assert not [s for s in virtio["sites"] if s["path"] == VIRTIO_MODERN_H]


def test_virtio_hot_roots_and_hot_sites(virtio: dict[str, Any]) -> None:
    roots = {(r["function"], r["how"]) for r in virtio["hot_roots"]}
    assert ("vm_interrupt", "request_irq") in roots
    vm = [r for r in virtio["hot_roots"] if r["function"] == "vm_interrupt"]
    assert {r["path"] for r in vm} == {f"{VIRTIO}/virtio_mmio.c"}
    hot = [s for s in virtio["sites"] if s["hot"]]
    assert hot
    assert any(s["function"] == "vm_interrupt" for s in hot)
    assert len(hot) < len(virtio["sites"])  # probe and setup code stay cold
    assert not [s for s in virtio["sites"] if s["function"] == "virtio_mmio_probe" and s["hot"]]
