"""TDX forms and verdicts on the real tree (linux-source-6.12): the hard acceptance facts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmioscan.analysis.pipeline import ScanOptions, run_scan
from mmioscan.cfront.callargs import call_arguments
from mmioscan.cfront.extract import Extractor
from mmioscan.core.catalogue import Catalogue, load_catalogue
from mmioscan.core.model import Site
from mmioscan.core.ruleset import load_rules
from mmioscan.platforms.x86 import (
    IO_H,
    IOMAP_C,
    IOMAP_COPY_C,
    IOMEM_C,
    Strategy,
    X86Model,
    load_strategies,
    verdict,
)

pytestmark = pytest.mark.integration

BNXT_HWRM = "drivers/net/ethernet/broadcom/bnxt/bnxt_hwrm.c"
MHI_EP_RING = "drivers/bus/mhi/ep/ring.c"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="module")
def model(kernel_tree: Path, catalogue: Catalogue) -> X86Model:
    return X86Model.derive(kernel_tree, catalogue)


@pytest.fixture(scope="module")
def strategies() -> dict[str, Strategy]:
    return load_strategies()


def _direct_sites(tree: Path, rel: str, name: str,
                  catalogue: Catalogue) -> list[tuple[Site, list[str] | None]]:
    """The calls of `name` in one real file, at the extractor's positions, with arguments."""
    data = (tree / rel).read_bytes()
    facts = Extractor(catalogue.names()).extract(rel, "0", data)
    text = data.decode("utf-8")
    acc = catalogue.accessors[name]
    found = []
    for callee, line, column, _scope, _active in facts.calls:
        if callee == name:
            site = Site(rel, line, column, None, name, name, "direct", acc.access, acc.width,
                        acc.family)
            found.append((site, call_arguments(text, line, column)))
    return found


def test_every_form_from_the_tree_files(model: X86Model, catalogue: Catalogue) -> None:
    sources = dict(model.sources)
    assert set(sources) == set(catalogue.accessors)
    assert model.notes == ()  # nothing fell back for want of a file or a definition
    assert sources["readl"] == f"tree:{IO_H}"
    assert sources["__raw_writeq"] == f"tree:{IO_H}"
    assert sources["__iowrite32_copy"] == f"tree:{IO_H}"
    assert sources["iosubmit_cmds512"] == f"tree:{IO_H}"
    assert sources["__iowrite64_copy"] == f"tree:{IOMAP_COPY_C}"
    assert sources["__ioread32_copy"] == f"tree:{IOMAP_COPY_C}"
    for name in ("memcpy_fromio", "memcpy_toio", "memset_io"):
        assert sources[name] == f"tree:{IOMEM_C}"
    for name in ("ioread32", "iowrite16be", "ioread8_rep", "iowrite32_rep", "ioread64_lo_hi"):
        assert sources[name] == f"tree:{IOMAP_C}"


def test_hard_acceptance_forms(model: X86Model) -> None:
    readl = model.forms["readl"]
    assert (readl.path, readl.insn, readl.exits) == ("ve", "mov", 1)
    copy32 = model.forms["__iowrite32_copy"]
    assert (copy32.path, copy32.insn) == ("unsupported", "movs")
    assert "rep ; movsl" in copy32.reason
    # lib/iomap_copy.c, CONFIG_64BIT: a loop of __raw_writeq, one #VE per 64-bit word
    copy64 = model.forms["__iowrite64_copy"]
    assert (copy64.path, copy64.insn, copy64.per_count, copy64.trap_bits) == (
        "ve", "mov", True, 64)
    submit = model.forms["iosubmit_cmds512"]
    assert (submit.path, submit.insn) == ("unsupported", "movdir64b")
    toio = model.forms["memcpy_toio"]
    assert (toio.path, toio.insn, toio.trap_bits) == ("ve", "unrolled-mov", 8)
    assert toio.exits_for(16) == 16
    assert model.forms["ioread32_rep"].exits_for(5) == 5
    assert model.forms["outsl"].insn == "port-io"  # unrolled under CC_ATTR_GUEST_UNROLL_STRING_IO


def test_bnxt_iowrite32_copy_is_unsupported(kernel_tree: Path, model: X86Model,
                                            catalogue: Catalogue,
                                            strategies: dict[str, Strategy]) -> None:
    found = _direct_sites(kernel_tree, BNXT_HWRM, "__iowrite32_copy", catalogue)
    assert found
    for site, args in found:
        assert args is not None and len(args) == 3
        for strategy in strategies.values():
            tdx = verdict(site, model, strategy, args)
            assert (tdx.path, tdx.insn, tdx.ve_exits) == ("unsupported", "movs", None)


def test_memcpy_toio_constant_length(kernel_tree: Path, model: X86Model, catalogue: Catalogue,
                                     strategies: dict[str, Strategy]) -> None:
    found = _direct_sites(kernel_tree, MHI_EP_RING, "memcpy_toio", catalogue)
    counted = [verdict(s, model, strategies["upstream"], a) for s, a in found]
    assert ("ve", "unrolled-mov", 8) in {(t.path, t.insn, t.ve_exits) for t in counted}


def test_virtio_under_each_strategy(kernel_tree: Path, tmp_path: Path, model: X86Model,
                                    strategies: dict[str, Strategy]) -> None:
    result = run_scan(ScanOptions(paths=(kernel_tree / "drivers/virtio",), root=kernel_tree,
                                  cache_dir=tmp_path / "cache"), load_rules()).result
    sites = [s for s in result.sites if s.active]
    paths = {name: [verdict(s, model, st, None).path for s in sites]
             for name, st in strategies.items()}
    assert "paravirt" not in paths["upstream"]
    funnel = [i for i, s in enumerate(sites) if "vp_ioread16" in (s.callee, *s.via)]
    assert funnel
    assert all(paths["virtio-paravirt"][i] == "paravirt" for i in funnel)
    assert paths["virtio-paravirt"].count("paravirt") > paths["virtio-paravirt"].count("ve")
    iomap_only = [i for i, s in enumerate(sites)
                  if s.kind == "direct" and s.accessor in ("ioread32", "iowrite16")]
    assert iomap_only
    assert all(paths["iomap-paravirt"][i] == "paravirt" for i in iomap_only)
    # virtio_mmio.c uses readl/writel: no strategy makes those paravirt
    mmio = [i for i, s in enumerate(sites)
            if s.path.endswith("virtio_mmio.c") and s.kind == "direct" and s.accessor == "readl"]
    assert mmio
    assert all(paths[name][i] == "ve" for name in paths for i in mmio)
