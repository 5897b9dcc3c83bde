"""TDX and SEV-SNP side by side on linux-source-6.12: the verdicts that differ, checked on
sites read by hand (bnxt's __iowrite32_copy doorbells, memset_io and memcpy_toio users)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mmioscan.cli.main import main
from mmioscan.platforms.x86.platform import derive_platforms

pytestmark = pytest.mark.integration

BNXT = "drivers/net/ethernet/broadcom/bnxt"
QM = "drivers/crypto/hisilicon/qm.c"  # memcpy_toio(fun_base, src, 16) at line 548
PDS = "drivers/net/ethernet/amd/pds_core"  # memset_io of a command region in dev.c


@pytest.fixture(scope="module")
def scan(kernel_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("platforms") / "scan.json"
    paths = [str(kernel_tree / p) for p in (BNXT, QM, PDS)]
    assert main(["scan", *paths, "--root", str(kernel_tree), "--platform", "all",
                 "--no-progress", "--format", "json", "-o", str(out)]) == 0
    sites: list[dict[str, Any]] = json.loads(out.read_text())["sites"]
    return sites


def _direct(sites: list[dict[str, Any]], accessor: str) -> list[dict[str, Any]]:
    return [s for s in sites if s["kind"] == "direct" and s["accessor"] == accessor
            and s["active"]]


def test_the_612_tree_decides_every_platform_fact(kernel_tree: Path) -> None:
    tdx, sev = derive_platforms(kernel_tree, ("tdx", "sev-snp"))
    assert dict(tdx.sources)["movs_handler"] == "tree:arch/x86/coco/tdx/tdx.c"
    assert tdx.movs_handler is None and tdx.unroll_string_io
    assert sev.movs_handler == "arch/x86/coco/sev/core.c:vc_handle_mmio_movs"
    assert not sev.unroll_string_io and sev.string_io
    assert sev.memset_stos_feature == "FSRS"


def test_bnxt_iowrite32_copy_crashes_tdx_and_traps_on_sev(scan: list[dict[str, Any]]) -> None:
    sites = [s for s in _direct(scan, "__iowrite32_copy") if s["path"].startswith(BNXT)]
    assert sites, "bnxt writes its HWRM requests with __iowrite32_copy"
    for site in sites:
        assert site["tdx"]["path"] == "unsupported" and site["tdx"]["insn"] == "movs"
        assert site["platforms"]["tdx"] == site["tdx"]
        sev = site["platforms"]["sev-snp"]
        assert sev["path"] == "ve" and sev["insn"] == "movs"
        assert "arch/x86/coco/sev/core.c:vc_handle_mmio_movs" in sev["reason"]
        assert "arch/x86/coco/tdx/tdx.c:handle_mmio" in site["tdx"]["reason"]


def test_memset_io_is_unsupported_on_sev_with_fsrs(scan: list[dict[str, Any]]) -> None:
    sites = _direct(scan, "memset_io")
    assert sites
    for site in sites:
        assert site["tdx"]["path"] == "ve" and site["tdx"]["insn"] == "unrolled-mov"
        sev = site["platforms"]["sev-snp"]
        assert sev["path"] == "unsupported" and sev["insn"] == "stos"
        assert "FSRS" in sev["reason"] and "memset_64.S" in sev["reason"]


def test_memcpy_toio_with_a_constant_length(scan: list[dict[str, Any]]) -> None:
    site = next(s for s in _direct(scan, "memcpy_toio") if s["path"] == QM and s["line"] == 548)
    assert site["tdx"]["ve_exits"] == 16  # one #VE per byte, unrolled in a TD
    assert site["platforms"]["sev-snp"]["ve_exits"] == 8  # 4 dwords x (MOVS + nested #VC)
    assert "#VC" in site["platforms"]["sev-snp"]["reason"]
