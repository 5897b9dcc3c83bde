"""Platform models side by side (platforms/x86/platform.py): the facts each guest's
handlers decide, read from the tree (both layouts) or from rules/platforms.toml, and the
verdicts they give the same accessors on TDX and on SEV-ES/SNP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmioscan.analysis.funnels import resolve
from mmioscan.cli.main import main
from mmioscan.cli.options import UsageError
from mmioscan.core.catalogue import Catalogue, load_catalogue
from mmioscan.core.toml import RuleError
from mmioscan.platforms.strategies import Strategy, load_strategies
from mmioscan.platforms.x86.model import X86Model
from mmioscan.platforms.x86.platform import derive_platforms
from mmioscan.platforms.x86.platform import load_catalogue as platforms_toml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TDX = FIXTURES / "tdx"
PLAT = FIXTURES / "platforms"
NEW_LAYOUT = {
    "arch/x86/include/asm/io.h": TDX / "io_612.h",
    "arch/x86/lib/iomem.c": TDX / "iomem_612.c",
    "lib/iomap.c": TDX / "iomap.c",
    "lib/iomap_copy.c": TDX / "iomap_copy_612.c",
    "arch/x86/coco/tdx/tdx.c": PLAT / "tdx_handler.c",
    "arch/x86/coco/sev/core.c": PLAT / "sev_core.c",
    "arch/x86/coco/core.c": PLAT / "coco_core.c",
    "arch/x86/lib/memset_64.S": PLAT / "memset_64.S",
    "arch/x86/lib/insn-eval.c": PLAT / "coco_core.c",  # any file: the decoder is named
}


def _tree(tmp: Path, files: dict[str, Path]) -> Path:
    for rel, src in files.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, tmp / rel)
    return tmp


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="module")
def new_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tree(tmp_path_factory.mktemp("new"), NEW_LAYOUT)


def test_handlers_are_read_from_the_tree(new_tree: Path) -> None:
    tdx, sev = derive_platforms(new_tree, ("tdx", "sev-snp"))
    assert tdx.movs_handler is None and not tdx.string_io and tdx.unroll_string_io
    assert tdx.mmio_handler == "arch/x86/coco/tdx/tdx.c:handle_mmio"
    assert sev.movs_handler == "arch/x86/coco/sev/core.c:vc_emulate_movs"  # the fixture's name
    assert sev.string_io and not sev.unroll_string_io
    assert sev.memset_stos_feature == "FSRS"
    sources = dict(sev.sources)
    assert sources["movs_handler"] == "tree:arch/x86/coco/sev/core.c"
    assert sources["unroll_string_io"] == "tree:arch/x86/coco/core.c"
    assert sources["memset_stos_feature"] == "tree:arch/x86/lib/memset_64.S"


def test_older_layout_sev_c_under_arch_x86_kernel(tmp_path: Path) -> None:
    files = {k: v for k, v in NEW_LAYOUT.items() if "coco/sev" not in k}
    files["arch/x86/kernel/sev.c"] = PLAT / "sev_core.c"
    sev = derive_platforms(_tree(tmp_path, files), ("sev-es",))[0]
    assert sev.name == "sev-snp"  # one #VC model for SEV-ES and SEV-SNP
    assert sev.mmio_handler == "arch/x86/kernel/sev.c:vc_handle_mmio"
    assert dict(sev.sources)["movs_handler"] == "tree:arch/x86/kernel/sev.c"


def test_a_partial_tree_falls_back_to_the_catalogue(tmp_path: Path) -> None:
    shipped = platforms_toml()
    sev = derive_platforms(tmp_path, ("sev-snp",))[0]
    assert sev == shipped["sev-snp"]
    assert all(src == "catalogue" for _, src in sev.sources)


def _forms(root: Path, catalogue: Catalogue, platform: str,
           cpu: dict[str, bool] | None = None) -> X86Model:
    return X86Model.derive(root, catalogue, platform=platform, cpu=cpu)


def test_movs_copy_is_unsupported_on_tdx_and_emulated_on_sev(new_tree: Path,
                                                              catalogue: Catalogue) -> None:
    tdx = _forms(new_tree, catalogue, "tdx").forms["__iowrite32_copy"]
    sev = _forms(new_tree, catalogue, "sev-snp").forms["__iowrite32_copy"]
    assert (tdx.path, tdx.insn) == ("unsupported", "movs")
    assert "arch/x86/coco/tdx/tdx.c:handle_mmio rejects" in tdx.reason
    assert (sev.path, sev.insn, sev.per_count) == ("ve", "movs", True)
    assert sev.exits_for(4) == 8  # 4 dwords: the MOVS and its nested #VC each
    assert "vc_emulate_movs" in sev.reason and "arch/x86/lib/insn-eval.c:insn_decode_mmio" \
        in sev.reason


def test_memcpy_toio_per_byte_on_tdx_per_element_on_sev(new_tree: Path,
                                                        catalogue: Catalogue) -> None:
    tdx = _forms(new_tree, catalogue, "tdx").forms["memcpy_toio"]
    sev = _forms(new_tree, catalogue, "sev-snp").forms["memcpy_toio"]
    assert (tdx.insn, tdx.exits_for(16)) == ("unrolled-mov", 16)
    assert (sev.insn, sev.exits_for(16)) == ("movs", 8)


def test_memset_io_depends_on_fsrs_on_sev(new_tree: Path, catalogue: Catalogue) -> None:
    worst = _forms(new_tree, catalogue, "sev-snp").forms["memset_io"]
    assert (worst.path, worst.insn) == ("unsupported", "stos")
    assert "FSRS" in worst.reason and "--cpu-features no-fsrs" in worst.reason
    without = _forms(new_tree, catalogue, "sev-snp", {"fsrs": False}).forms["memset_io"]
    assert (without.path, without.insn) == ("ve", "mov")
    with_it = _forms(new_tree, catalogue, "sev-snp", {"fsrs": True}).forms["memset_io"]
    assert with_it.path == "unsupported" and "the CPU has FSRS" in with_it.reason
    tdx = _forms(new_tree, catalogue, "tdx").forms["memset_io"]
    assert (tdx.path, tdx.insn) == ("ve", "unrolled-mov")


def test_string_port_io_on_each_platform(new_tree: Path, catalogue: Catalogue) -> None:
    tdx = _forms(new_tree, catalogue, "tdx").forms["insb"]
    sev = _forms(new_tree, catalogue, "sev-snp").forms["insb"]
    assert (tdx.path, tdx.insn) == ("ve", "port-io")  # unrolled to IN in a TD
    assert (sev.path, sev.insn, sev.per_count) == ("ve", "string-port-io", True)


def test_assembly_copy_of_older_trees_on_sev(tmp_path: Path, catalogue: Catalogue) -> None:
    files = {**NEW_LAYOUT, "arch/x86/include/asm/io.h": TDX / "io_old.h",
             "arch/x86/lib/iomap_copy_64.S": TDX / "iomap_copy_64.S",
             "lib/iomap_copy.c": TDX / "iomap_copy_weak.c"}
    root = _tree(tmp_path, files)
    tdx = _forms(root, catalogue, "tdx").forms["__iowrite32_copy"]
    sev = _forms(root, catalogue, "sev-snp").forms["__iowrite32_copy"]
    assert tdx.source == sev.source == "tree:arch/x86/lib/iomap_copy_64.S"
    assert tdx.path == "unsupported" and sev.path == "ve"


def test_cpu_features_option() -> None:
    from argparse import Namespace

    from mmioscan.cli.options import cpu_features, platforms
    assert cpu_features(Namespace(cpu_features="FSRS,no-erms")) == (("erms", False),
                                                                   ("fsrs", True))
    assert platforms(Namespace(platform="all")) == ("tdx", "sev-snp")
    assert platforms(Namespace(platform="sev-es")) == ("sev-snp",)
    with pytest.raises(UsageError):
        cpu_features(Namespace(cpu_features="fs rs;"))


def _scan_json(tmp_path: Path, *extra: str) -> dict[str, object]:
    tree = FIXTURES / "tdtree"
    out = tmp_path / "out.json"
    assert main(["scan", str(tree), "--no-cache", "-j", "1", "--no-progress", "--format",
                 "json", "-o", str(out), *extra]) == 0
    data: dict[str, object] = json.loads(out.read_text())
    return data


def test_json_carries_platforms_only_when_asked(tmp_path: Path) -> None:
    plain = _scan_json(tmp_path)
    both = _scan_json(tmp_path, "--platform", "all")
    assert all("platforms" not in s for s in plain["sites"])  # type: ignore[attr-defined]
    sites = both["sites"]
    assert isinstance(sites, list) and sites
    for site in sites:
        if site["tdx"] is not None:
            assert set(site["platforms"]) == {"tdx", "sev-snp"}
            assert site["platforms"]["tdx"] == site["tdx"]
    assert set(both["platforms"]) == {"tdx", "sev-snp"}  # type: ignore[arg-type]


def test_strategy_rules_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "s.toml"
    bad.write_text('[strategy.x]\ndescription = "d"\npatched = []\n'
                   '[[strategy.x.rule]]\ngroup = "virtio"\ncover = "150%"\n')
    with pytest.raises(RuleError, match="cover"):
        load_strategies(bad)
    bad.write_text('[strategy.x]\ndescription = "d"\npatched = []\n'
                   '[[strategy.x.rule]]\ngroup = "nope"\n')
    with pytest.raises(RuleError, match="group"):
        load_strategies(bad)


def test_a_rule_without_a_graph_patches_only_its_names() -> None:
    strategy = load_strategies()["virtio-paravirt"]
    assert strategy.rules and strategy.rules[0].group == "virtio"
    same = resolve(strategy, [], None, lambda s: "virtio", load_catalogue())
    assert isinstance(same, Strategy) and same.patched == strategy.patched
