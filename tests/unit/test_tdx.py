"""TDX verdicts: forms derived from (fixture) trees, the catalogue fallback, strategies."""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mmioscan.core.catalogue import Catalogue, RuleError, load_catalogue
from mmioscan.core.model import Site
from mmioscan.core.rules_path import rules_dir
from mmioscan.platforms.x86 import (
    IO_H,
    IOMAP_C,
    IOMAP_COPY_C,
    IOMAP_COPY_S,
    IOMEM_C,
    Strategy,
    TdxError,
    X86Model,
    load_forms,
    load_patch_points,
    load_strategies,
    verdict,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tdx"
TREE_612 = {IO_H: "io_612.h", IOMEM_C: "iomem_612.c", IOMAP_C: "iomap.c",
            IOMAP_COPY_C: "iomap_copy_612.c"}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="module")
def strategies() -> dict[str, Strategy]:
    return load_strategies()


def _tree(tmp: Path, files: dict[str, str]) -> Path:
    for rel, fixture in files.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIXTURES / fixture, tmp / rel)
    return tmp


def _model(tmp: Path, catalogue: Catalogue, **override: str) -> X86Model:
    files = {**TREE_612}
    for key, fixture in override.items():
        rel = {"io": IO_H, "iomem": IOMEM_C, "iomap": IOMAP_C, "copy": IOMAP_COPY_C,
               "asm": IOMAP_COPY_S}[key]
        if fixture:
            files[rel] = fixture
        else:
            files.pop(rel, None)
    return X86Model.derive(_tree(tmp, files), catalogue)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, catalogue: Catalogue) -> X86Model:
    return _model(tmp_path_factory.mktemp("tree612"), catalogue)


def _site(**fields: Any) -> Site:
    base: dict[str, Any] = dict(path="drivers/foo/foo.c", line=10, column=2, function="foo_io",
                                callee="readl", accessor="readl", kind="direct", access="read",
                                width=32, family="mmio")
    base.update(fields)
    if base["kind"] == "direct" and "callee" not in fields:
        base["callee"] = base["accessor"]
    return Site(**base)


def _direct(accessor: str, **fields: Any) -> Site:
    return _site(callee=accessor, accessor=accessor, **fields)


def _wrapper(accessors: tuple[str, ...], callee: str = "foo_rd", **fields: Any) -> Site:
    nearest = fields.pop("accessor", accessors[0])
    via = fields.pop("via", (callee, nearest))
    return _site(kind="wrapper", callee=callee, accessor=nearest, accessors=accessors,
                 via=via, **fields)


def _form(model: X86Model, name: str) -> tuple[str, str, int | None, bool, str]:
    f = model.forms[name]
    return f.path, f.insn, f.exits, f.per_count, f.source


# -- forms derived from a 6.12-shaped tree --------------------------------------------------------


def test_mmio_accessors_are_movs_from_the_generators(model: X86Model) -> None:
    for name in ("readb", "readl", "writel", "readq", "__writeq", "__readw"):
        assert _form(model, name) == ("ve", "mov", 1, False, f"tree:{IO_H}"), name
    for alias in ("readl_relaxed", "writel_relaxed", "__raw_readl", "__raw_writeq"):
        assert _form(model, alias) == ("ve", "mov", 1, False, f"tree:{IO_H}"), alias
    assert "movl" in model.forms["readl"].reason


def test_iowrite32_copy_rep_movs_is_unsupported(model: X86Model) -> None:
    assert _form(model, "__iowrite32_copy") == ("unsupported", "movs", None, False,
                                                f"tree:{IO_H}")
    assert "rep ; movsl" in model.forms["__iowrite32_copy"].reason


def test_generic_copies_are_loops_of_single_accesses(model: X86Model) -> None:
    assert _form(model, "__iowrite64_copy") == ("ve", "mov", None, True, f"tree:{IOMAP_COPY_C}")
    assert model.forms["__iowrite64_copy"].trap_bits == 64
    assert _form(model, "__ioread32_copy") == ("ve", "mov", None, True, f"tree:{IOMAP_COPY_C}")
    assert model.forms["__ioread32_copy"].trap_bits == 32


def test_submit_is_movdir64b(model: X86Model) -> None:
    assert _form(model, "iosubmit_cmds512")[:2] == ("unsupported", "movdir64b")
    assert model.forms["iosubmit_cmds512"].source == f"tree:{IO_H}"


def test_memcpy_helpers_are_unrolled_per_byte(model: X86Model) -> None:
    for name in ("memcpy_fromio", "memcpy_toio", "memset_io"):
        f = model.forms[name]
        assert (f.path, f.insn, f.per_count, f.trap_bits, f.source) == (
            "ve", "unrolled-mov", True, 8, f"tree:{IOMEM_C}"), name
        assert "CC_ATTR_GUEST_UNROLL_STRING_IO" in f.reason


def test_iomap_accessors_are_out_of_line(model: X86Model) -> None:
    for name in ("ioread8", "ioread16be", "ioread32", "iowrite32", "ioread64_lo_hi"):
        assert _form(model, name) == ("ve", "out-of-line-mov", 1, False, f"tree:{IOMAP_C}"), name
    assert "port" in model.forms["ioread32"].reason
    for name, bits in (("ioread32_rep", 32), ("iowrite8_rep", 8)):
        f = model.forms[name]
        assert (f.path, f.insn, f.per_count, f.trap_bits) == ("ve", "mov", True, bits), name


def test_port_io_forms(model: X86Model) -> None:
    # item 7: the _p forms count their pause (an OUT to port 0x80): was 1
    assert _form(model, "inb_p") == ("ve", "port-io", 2, False, f"tree:{IO_H}")
    assert "port 0x80" in model.forms["inb_p"].reason
    assert _form(model, "outsb") == ("ve", "port-io", None, True, f"tree:{IO_H}")
    assert _form(model, "inb")[:3] == ("ve", "port-io", 1)  # shared/io.h is not read


def test_split_poll_and_like_names_follow_their_target(model: X86Model) -> None:
    assert _form(model, "lo_hi_readq") == ("ve", "mov", 2, False, "catalogue")
    assert _form(model, "readl_poll_timeout") == ("ve", "mov", None, False, "catalogue")
    assert _form(model, "fb_readl") == ("ve", "mov", 1, False, "catalogue")
    assert "__raw_readl" in model.forms["fb_readl"].reason
    fb = model.forms["fb_memcpy_toio"]
    assert (fb.insn, fb.per_count, fb.count_arg, fb.count_bits) == ("unrolled-mov", True, 2, 8)


def test_sources_name_every_catalogued_accessor(model: X86Model, catalogue: Catalogue) -> None:
    sources = dict(model.sources)
    assert set(sources) == set(catalogue.accessors)
    assert sources["readl"] == f"tree:{IO_H}"
    assert sources["check_signature"] == "catalogue"
    assert all(s == "catalogue" or s.startswith("tree:") for s in sources.values())


# -- variants of the tree ------------------------------------------------------------------------


def test_iowrite32_copy_as_a_c_loop_is_ve(tmp_path: Path, catalogue: Catalogue) -> None:
    model = _model(tmp_path, catalogue, io="io_loopcopy.h")
    f = model.forms["__iowrite32_copy"]
    assert (f.path, f.insn, f.per_count, f.trap_bits, f.source) == (
        "ve", "mov", True, 32, f"tree:{IO_H}")


def test_old_tree_assembly_beats_weak_generic(tmp_path: Path, catalogue: Catalogue) -> None:
    model = _model(tmp_path, catalogue, io="io_old.h", copy="iomap_copy_weak.c",
                   asm="iomap_copy_64.S")
    assert _form(model, "__iowrite32_copy") == ("unsupported", "movs", None, False,
                                                f"tree:{IOMAP_COPY_S}")
    assert _form(model, "__iowrite64_copy")[:4] == ("ve", "mov", None, True)


def test_generic_iowrite32_copy_without_arch_version(tmp_path: Path,
                                                     catalogue: Catalogue) -> None:
    model = _model(tmp_path, catalogue, io="io_old.h")
    assert _form(model, "__iowrite32_copy") == ("ve", "mov", None, True, f"tree:{IOMAP_COPY_C}")


def test_string_port_io_without_unrolling_is_unsupported(tmp_path: Path,
                                                         catalogue: Catalogue) -> None:
    model = _model(tmp_path, catalogue, io="io_old.h")
    assert _form(model, "outsb")[:2] == ("unsupported", "string-port-io")
    assert _form(model, "insb")[:2] == ("ve", "port-io")  # this variant still unrolls ins


def test_memcpy_without_unrolling(tmp_path: Path, catalogue: Catalogue) -> None:
    model = _model(tmp_path, catalogue, iomem="iomem_string.c")
    assert _form(model, "memcpy_toio")[:2] == ("unsupported", "movs")
    assert _form(model, "memcpy_fromio")[:2] == ("unsupported", "movs")
    assert _form(model, "memset_io")[:2] == ("unsupported", "compiler-chosen")


def test_negated_guard_takes_the_else_branch(tmp_path: Path, catalogue: Catalogue) -> None:
    model = _model(tmp_path, catalogue, iomem="iomem_negated.c")
    assert _form(model, "memcpy_toio") == ("ve", "unrolled-mov", None, True, f"tree:{IOMEM_C}")


def test_volatile_dereference_accessors(tmp_path: Path, catalogue: Catalogue) -> None:
    model = X86Model.derive(_tree(tmp_path, {IO_H: "io_deref.h"}), catalogue)
    assert _form(model, "readl") == ("unsupported", "compiler-chosen", None, False,
                                     f"tree:{IO_H}")
    assert _form(model, "readb")[4] == "catalogue"


def test_partial_tree_falls_back_per_file(tmp_path: Path, catalogue: Catalogue) -> None:
    model = X86Model.derive(_tree(tmp_path, {IO_H: "io_612.h"}), catalogue)
    sources = dict(model.sources)
    assert sources["readl"] == f"tree:{IO_H}"
    assert sources["__iowrite32_copy"] == f"tree:{IO_H}"
    assert sources["memcpy_toio"] == "catalogue"
    assert sources["ioread32"] == "catalogue"
    assert _form(model, "memcpy_toio")[:4] == ("ve", "unrolled-mov", None, True)
    assert any(n.startswith(IOMEM_C) and "catalogue" in n for n in model.notes)
    assert any(n.startswith(IOMAP_C) for n in model.notes)


def test_empty_tree_is_the_catalogue(tmp_path: Path, catalogue: Catalogue) -> None:
    derived = X86Model.derive(tmp_path, catalogue)
    plain = X86Model.from_catalogue(catalogue)
    assert {n: _form(derived, n) for n in derived.forms} == {
        n: _form(plain, n) for n in plain.forms}
    assert all(source == "catalogue" for _, source in derived.sources)
    assert len(derived.notes) == 4  # the four files, each missing


def test_odd_files_never_raise(tmp_path: Path, catalogue: Catalogue) -> None:
    odd = {
        IO_H: "#if (\n#define readl(\nstatic inline int readl(void { asm(\"movl\"\n",
        IOMEM_C: "void memcpy_toio(void) { if (cc_platform_has(CC_ATTR_GUEST_UNROLL_STRING_IO)"
                 " { {{{ \n#else\n#endif\n#endif\n",
        IOMAP_C: "\x00\x01\x02 unsigned int ioread32(x) { IO_COND(a, b); }\n}}}}",
        IOMAP_COPY_C: "#define __iowrite64_copy __iowrite64_copy(__iowrite64_copy)\n"
                      "void __iowrite64_copy(void) { __iowrite64_copy(); }\n",
    }
    for rel, text in odd.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    (tmp_path / IOMAP_COPY_S).mkdir(parents=True)  # a folder where a file is expected
    model = X86Model.derive(tmp_path, catalogue)
    assert set(model.forms) == set(catalogue.accessors)
    assert model.forms["readl"].path == "ve"
    assert model.forms["__iowrite64_copy"].source == "catalogue"


def test_non_utf8_file_is_read_leniently(tmp_path: Path, catalogue: Catalogue) -> None:
    _tree(tmp_path, TREE_612)
    io_h = tmp_path / IO_H
    io_h.write_bytes(b"/* \xff\xfe latin-1 comment */\n" + io_h.read_bytes())
    model = X86Model.derive(tmp_path, catalogue)
    assert _form(model, "readl") == ("ve", "mov", 1, False, f"tree:{IO_H}")


# -- the catalogue fallback ----------------------------------------------------------------------


def test_catalogue_has_a_form_for_every_accessor(catalogue: Catalogue) -> None:
    model = X86Model.from_catalogue(catalogue)
    assert set(model.forms) == set(catalogue.accessors)
    assert not [n for n in model.notes if n.startswith("no instruction form")]
    assert set(load_forms()) <= set(catalogue.accessors)


def test_catalogue_matches_the_6_12_facts(catalogue: Catalogue) -> None:
    model = X86Model.from_catalogue(catalogue)
    assert _form(model, "readl")[:3] == ("ve", "mov", 1)
    assert _form(model, "__iowrite32_copy")[:2] == ("unsupported", "movs")
    assert _form(model, "iosubmit_cmds512")[:2] == ("unsupported", "movdir64b")
    assert _form(model, "memcpy_toio")[:4] == ("ve", "unrolled-mov", None, True)
    assert _form(model, "ioread32")[:3] == ("ve", "out-of-line-mov", 1)


@pytest.mark.parametrize(("text", "message"), [
    ("[[form]]\nnames = []\npath = 've'\nreason = 'x'\n", "names"),
    ("[[form]]\nnames = ['readl']\npath = 'maybe'\nreason = 'x'\n", "path"),
    ("[[form]]\nnames = ['readl']\nexits = -1\nreason = 'x'\n", "exits"),
    ("[[form]]\nnames = ['readl']\n", "reason"),
    ("[[form]]\nnames = ['readl']\nreason = 'x'\n[[form]]\nnames = ['readl']\nreason = 'y'\n",
     "two forms"),
    ("form = 1\n", "no [[form]]"),
    ("[[form]]\nnames = ['readl']\nreason = 'x'\nexit = 1\n", "unknown field 'exit'"),
    ("[[form\n", "not valid TOML"),
])
def test_broken_forms_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tdx.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError, match=message.replace("[", r"\[")):
        load_forms(path)


# -- verdicts per family ---------------------------------------------------------------------


def test_plain_accessor(model: X86Model, strategies: dict[str, Strategy]) -> None:
    tdx = verdict(_direct("readl"), model, strategies["upstream"], ["base + 4"])
    assert (tdx.path, tdx.insn, tdx.ve_exits) == ("ve", "mov", 1)
    assert "insn_decode_mmio" in tdx.reason


def test_bulk_counts(model: X86Model, strategies: dict[str, Strategy]) -> None:
    up = strategies["upstream"]
    tdx = verdict(_direct("memcpy_toio", family="bulk"), model, up, ["p", "q", "16"])
    assert (tdx.path, tdx.insn, tdx.ve_exits) == ("ve", "unrolled-mov", 16)
    tdx = verdict(_direct("memset_io", family="bulk"), model, up, ["p", "0", "sizeof(u32) * 2"])
    assert tdx.ve_exits == 8
    tdx = verdict(_direct("ioread32_rep", family="bulk"), model, up, ["p", "buf", "4"])
    assert (tdx.insn, tdx.ve_exits) == ("mov", 4)  # count of 32-bit elements
    tdx = verdict(_direct("__iowrite64_copy", family="bulk"), model, up, ["p", "q", "0x4"])
    assert tdx.ve_exits == 4
    tdx = verdict(_direct("outsw", family="pio"), model, up, ["port", "buf", "3"])
    assert (tdx.insn, tdx.ve_exits) == ("port-io", 3)
    assert verdict(_direct("memcpy_toio"), model, up, ["p", "q", "len"]).ve_exits is None
    assert verdict(_direct("memcpy_toio"), model, up, None).ve_exits is None
    assert verdict(_direct("memcpy_toio"), model, up, ["p"]).ve_exits is None
    ref = _site(kind="reference", callee="memcpy_toio", accessor="memcpy_toio")
    assert verdict(ref, model, up, ["p", "q", "16"]).ve_exits is None  # not its arguments


def test_needs_args_only_for_counted_direct_calls(model: X86Model) -> None:
    assert model.needs_args(_direct("memcpy_toio"))
    assert model.needs_args(_direct("ioread32_rep"))
    assert not model.needs_args(_direct("readl"))
    assert not model.needs_args(_direct("__iowrite32_copy"))  # unsupported: no count needed
    assert not model.needs_args(_wrapper(("memcpy_toio",)))
    assert not model.needs_args(_site(kind="reference", callee="memcpy_toio",
                                      accessor="memcpy_toio"))


def test_unsupported_helpers(model: X86Model, strategies: dict[str, Strategy]) -> None:
    up = strategies["upstream"]
    tdx = verdict(_direct("__iowrite32_copy", family="bulk"), model, up, ["p", "q", "16"])
    assert (tdx.path, tdx.insn, tdx.ve_exits) == ("unsupported", "movs", None)
    assert "handle_mmio" in tdx.reason
    tdx = verdict(_direct("iosubmit_cmds512", family="submit"), model, up, ["p", "q", "1"])
    assert (tdx.path, tdx.insn) == ("unsupported", "movdir64b")


def test_split_poll_and_port_io(model: X86Model, strategies: dict[str, Strategy]) -> None:
    up = strategies["upstream"]
    assert verdict(_direct("lo_hi_readq"), model, up, None).ve_exits == 2
    assert verdict(_direct("ioread64_lo_hi"), model, up, None).ve_exits == 1
    poll = verdict(_direct("readl_poll_timeout"), model, up, None)
    assert (poll.path, poll.insn, poll.ve_exits) == ("ve", "mov", None)
    pio = verdict(_direct("inb", family="pio"), model, up, None)
    assert (pio.path, pio.insn, pio.ve_exits) == ("ve", "port-io", 1)
    assert "port I/O" in pio.reason


def test_deref_and_regmap(model: X86Model, strategies: dict[str, Strategy]) -> None:
    up = strategies["upstream"]
    deref = verdict(_site(kind="deref", callee="*", accessor="*", family="deref"), model, up,
                    None)
    assert (deref.path, deref.insn, deref.ve_exits) == ("unsupported", "compiler-chosen", None)

    def reg(name: str, access: str) -> tuple[str, str, int | None]:
        t = verdict(_site(kind="regmap", callee=name, accessor=name, family="regmap",
                          access=access, via=(name, "regmap-mmio")), model, up, None)
        return t.path, t.insn, t.ve_exits
    assert reg("regmap_read", "read") == ("ve", "mov", 1)
    assert reg("regmap_write", "write") == ("ve", "mov", 1)
    assert reg("regmap_update_bits", "both") == ("ve", "mov", 2)
    assert reg("regmap_bulk_read", "read") == ("ve", "mov", None)


def test_unknown_accessor_is_not_an_error(model: X86Model,
                                          strategies: dict[str, Strategy]) -> None:
    tdx = verdict(_direct("frobnicate"), model, strategies["upstream"], None)
    assert (tdx.path, tdx.insn, tdx.ve_exits) == ("ve", "unknown", None)


# -- wrappers: the worst access ------------------------------------------------------------------


def test_wrapper_single_accessor(model: X86Model, strategies: dict[str, Strategy]) -> None:
    tdx = verdict(_wrapper(("readl",), "er32", via=("er32", "__er32", "readl")), model,
                  strategies["upstream"], ["hw", "CTRL"])
    assert (tdx.path, tdx.insn, tdx.ve_exits) == ("ve", "mov", 1)
    tdx = verdict(_wrapper(("memcpy_toio",)), model, strategies["upstream"], ["a", "b", "16"])
    assert tdx.ve_exits is None  # the wrapper's arguments are not the helper's


def test_wrapper_worst_of(model: X86Model, strategies: dict[str, Strategy]) -> None:
    up, iomap = strategies["upstream"], strategies["iomap-paravirt"]
    both = _wrapper(("__iowrite32_copy", "readl"), accessor="readl")
    tdx = verdict(both, model, up, None)
    assert (tdx.path, tdx.insn, tdx.ve_exits) == ("unsupported", "movs", None)
    assert "worst of 2" in tdx.reason
    mixed = _wrapper(("ioread32", "readl"))
    assert verdict(mixed, model, up, None).path == "ve"
    assert verdict(mixed, model, iomap, None).path == "ve"  # readl still traps
    assert verdict(mixed, model, iomap, None).insn == "mov"
    assert verdict(_wrapper(("ioread32", "iowrite32")), model, iomap, None).ve_exits == 0
    bad = _wrapper(("ioread32", "__iowrite32_copy"))
    assert verdict(bad, model, iomap, None).path == "unsupported"
    assert verdict(_wrapper(("readl", "writel")), model, up, None).ve_exits is None


def test_wrapper_verdicts_are_cached(model: X86Model, strategies: dict[str, Strategy]) -> None:
    up = strategies["upstream"]
    a = verdict(_wrapper(("readl", "writel"), "x_rd"), model, up, None)
    b = verdict(_wrapper(("readl", "writel"), "y_rd", path="drivers/bar/b.c"), model, up, None)
    assert a is b


# -- strategies ----------------------------------------------------------------------------------


def test_shipped_strategies(strategies: dict[str, Strategy]) -> None:
    assert set(strategies) == {"upstream", "iomap-paravirt", "virtio-paravirt"}
    assert not strategies["upstream"].patched
    assert strategies["upstream"].groups is None
    assert {"ioread32", "iowrite32", "ioread16be"} <= strategies["iomap-paravirt"].patched
    assert not any(n.endswith("_rep") for n in strategies["iomap-paravirt"].patched)
    virtio = strategies["virtio-paravirt"]
    assert virtio.groups == frozenset({"virtio"})
    assert {"vp_ioread16", "vp_iowrite32", "vp_iowrite64_twopart"} <= virtio.patched


def test_upstream_has_no_paravirt(model: X86Model, strategies: dict[str, Strategy]) -> None:
    up = strategies["upstream"]
    for site in (_direct("ioread32"), _wrapper(("ioread8",), "vp_ioread8", group="virtio"),
                 _site(function="vp_ioread16", group="virtio")):
        assert verdict(site, model, up, None).path != "paravirt"


def test_iomap_paravirt(model: X86Model, strategies: dict[str, Strategy]) -> None:
    iomap = strategies["iomap-paravirt"]
    tdx = verdict(_direct("iowrite32", family="iomap"), model, iomap, None)
    assert (tdx.path, tdx.insn, tdx.ve_exits) == ("paravirt", "tdvmcall", 0)
    assert "iowrite32" in tdx.reason
    assert verdict(_direct("readl"), model, iomap, None).path == "ve"
    assert verdict(_direct("ioread32_rep"), model, iomap, ["a", "b", "2"]).ve_exits == 2
    ref = _site(kind="reference", callee="ioread32", accessor="ioread32", family="iomap")
    assert verdict(ref, model, iomap, None).path == "paravirt"
    # the readl inside lib/iomap.c's ioread32 is covered by its enclosing function
    inside = _direct("readl", path="lib/iomap.c", function="ioread32")
    assert verdict(inside, model, iomap, None).path == "paravirt"


def test_virtio_paravirt_by_chain_callee_and_function(
        model: X86Model, strategies: dict[str, Strategy]) -> None:
    virtio = strategies["virtio-paravirt"]
    chain = _wrapper(("ioread16",), "vp_modern_get_num_queues", group="virtio",
                     via=("vp_modern_get_num_queues", "vp_ioread16", "ioread16"))
    tdx = verdict(chain, model, virtio, None)
    assert (tdx.path, tdx.ve_exits) == ("paravirt", 0)
    assert "vp_ioread16" in tdx.reason
    callee = _wrapper(("iowrite32",), "vp_iowrite32", group="virtio")
    assert verdict(callee, model, virtio, None).path == "paravirt"
    inside = _direct("ioread8", path="include/linux/virtio_pci_modern.h", function="vp_ioread8",
                     group="virtio")
    assert verdict(inside, model, virtio, None).path == "paravirt"
    legacy = _direct("iowrite16", path="drivers/virtio/virtio_pci_legacy_dev.c",
                     function="vp_legacy_set_queue_address", group="virtio")
    assert verdict(legacy, model, virtio, None).path == "paravirt"


def test_virtio_paravirt_keys_and_groups(model: X86Model,
                                         strategies: dict[str, Strategy]) -> None:
    virtio = strategies["virtio-paravirt"]
    modern = _direct("ioread8", path="drivers/virtio/virtio_pci_modern.c", function="vp_get",
                     group="virtio", scope_key="drivers/virtio/virtio_pci_modern.c:vp_get")
    assert verdict(modern, model, virtio, None).path == "paravirt"
    other = _direct("ioread8", path="drivers/virtio/virtio_mmio.c", function="vp_get",
                    group="virtio")
    assert verdict(other, model, virtio, None).path == "ve"  # same name, other definition
    chain = _wrapper(("ioread16",), "foo", via=("foo", "vp_ioread16", "ioread16"))
    assert verdict(replace(chain, group="generic"), model, virtio, None).path == "ve"
    assert verdict(replace(chain, group="virtio"), model, virtio, None).path == "paravirt"
    assert verdict(chain, model, virtio, None).path == "paravirt"  # group not known yet
    assert verdict(chain, model, virtio, None, group="x86").path == "ve"


def test_user_patch_points(tmp_path: Path, model: X86Model) -> None:
    path = tmp_path / "points.txt"
    path.write_text("# patched by hand\n__er32   # the read funnel\n\n"
                    "drivers/foo/foo.h:foo_rd\nregmap-mmio\n", encoding="utf-8")
    mine = load_patch_points(path)
    assert mine.patched == frozenset({"__er32", "drivers/foo/foo.h:foo_rd", "regmap-mmio"})
    assert mine.groups is None
    er32 = _wrapper(("readl",), "er32", via=("er32", "__er32", "readl"))
    assert verdict(er32, model, mine, None).path == "paravirt"
    foo = _wrapper(("readl",), "foo_rd", path="drivers/foo/foo_main.c")
    assert verdict(foo, model, mine, None).path == "paravirt"
    elsewhere = _wrapper(("readl",), "foo_rd", path="drivers/bar/bar.c")
    assert verdict(elsewhere, model, mine, None).path == "ve"  # another header's foo_rd
    regmap = _site(kind="regmap", callee="regmap_write", accessor="regmap_write",
                   family="regmap", access="write", via=("regmap_write", "regmap-mmio"))
    assert verdict(regmap, model, mine, None).path == "paravirt"
    assert verdict(_direct("readl"), model, mine, None).path == "ve"


def test_regmap_funnel_per_direction(tmp_path: Path, model: X86Model) -> None:
    path = tmp_path / "points.txt"
    path.write_text("regmap_mmio_read\n", encoding="utf-8")
    mine = load_patch_points(path)

    def reg(name: str, access: str) -> str:
        return verdict(_site(kind="regmap", callee=name, accessor=name, family="regmap",
                             access=access, via=(name, "regmap-mmio")), model, mine, None).path
    assert reg("regmap_read", "read") == "paravirt"
    assert reg("regmap_write", "write") == "ve"
    assert reg("regmap_update_bits", "both") == "ve"


@pytest.mark.parametrize(("text", "message"), [
    ("", "no function names"),
    ("# only a comment\n", "no function names"),
    ("good_name\nnot a name\n", ":2: not a function name"),
    ("foo()\n", ":1: not a function name"),
])
def test_bad_patch_point_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "points.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TdxError, match=message) as info:
        load_patch_points(path)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, RuleError)


def test_unreadable_patch_point_files(tmp_path: Path) -> None:
    with pytest.raises(TdxError, match="cannot read"):
        load_patch_points(tmp_path / "missing.txt")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TdxError, match="not UTF-8"):
        load_patch_points(binary)


@pytest.mark.parametrize(("text", "message"), [
    ("[strategy\n", "not valid TOML"),
    ("x = 1\n", "no \\[strategy"),
    ("[strategy.a]\npatched = []\n", "description"),
    ("[strategy.a]\ndescription = 'd'\npatched = 'readl'\n", "list of names"),
    ("[strategy.a]\ndescription = 'd'\npatched = ['a b']\n", "not a function name"),
    ("[strategy.a]\ndescription = 'd'\npatched = []\ngroups = ['arm']\n", "groups"),
    ("[strategy.a]\ndescription = 'd'\npatched = []\npached = []\n", "unknown field"),
])
def test_broken_strategies_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "strategies.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError, match=message):
        load_strategies(path)


def test_strategies_file_is_valid_toml_with_comments() -> None:
    data = tomllib.loads((rules_dir() / "strategies.toml").read_text(encoding="utf-8"))
    assert "upstream" in data["strategy"]
