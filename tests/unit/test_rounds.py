"""The caller rounds (analysis/gather.py): which unparsed files are parsed because they call
what the parsed ones define. Each test builds a small tree where the prefilter skips the
file in question (it names no accessor), so only the rounds can bring it in; the negative
cases are files the rounds used to parse for a name they merely mention."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from .helpers import scan_json
from .test_wrappers import mini_tree

_PCI_OPS = """\
#include "core.h"

static u32 c_pci_read32(struct c_dev *d, u32 reg)
{
	return readl(d->base + reg);
}

static const struct c_hci_ops c_pci_ops = {
	.read32 = c_pci_read32,
};
"""

_CORE_H = """\
struct c_dev;
struct c_hci_ops {
	u32 (*read32)(struct c_dev *d, u32 reg);
};
struct c_dev {
	void __iomem *base;
	const struct c_hci_ops *ops;
};

static inline u32 c_read32(struct c_dev *d, u32 reg)
{
	return d->ops->read32(d, reg);
}
"""


def _sites(data: dict[str, Any]) -> set[tuple[str, str]]:
    return {(s["path"], s["callee"]) for s in data["sites"]}


def test_a_header_funnel_over_a_field_call_brings_its_callers_in(tmp_path: Path) -> None:
    """c_read32 (core.h) reads through `->read32`, which only ever stores c_pci_read32, a
    funnel: c_read32 is a funnel, and phy.c, which calls it and names no accessor, is
    parsed and lists the call."""
    root = mini_tree(tmp_path / "linux", {
        "drivers/c/core.h": _CORE_H,
        "drivers/c/pci.c": _PCI_OPS,
        "drivers/c/phy.c": ('#include "core.h"\n\nu32 c_phy_status(struct c_dev *d)\n'
                            "{\n\treturn c_read32(d, 0x40);\n}\n"),
    })
    data = scan_json(tmp_path, root)
    assert ("drivers/c/phy.c", "c_read32") in _sites(data)


def test_a_field_that_also_stores_a_plain_function_selects_nothing(tmp_path: Path) -> None:
    """Control: a second store of a function that reaches no accessor makes the call
    through `->read32` no funnel call (as in the call graph), so phy.c lists nothing."""
    root = mini_tree(tmp_path / "linux", {
        "drivers/c/core.h": _CORE_H,
        "drivers/c/pci.c": _PCI_OPS,
        "drivers/c/usb.c": ('#include "core.h"\n\nstatic u32 c_usb_read32(struct c_dev *d, '
                            "u32 reg)\n{\n\treturn c_usb_control(d, reg);\n}\n\n"
                            "static const struct c_hci_ops c_usb_ops = {\n"
                            "\t.read32 = c_usb_read32,\n};\n"),
        "drivers/c/phy.c": ('#include "core.h"\n\nu32 c_phy_status(struct c_dev *d)\n'
                            "{\n\treturn c_read32(d, 0x40);\n}\n"),
    })
    data = scan_json(tmp_path, root)
    assert not {p for p, _c in _sites(data)} & {"drivers/c/phy.c", "drivers/c/core.h"}


def test_an_exported_funnel_is_seen_from_another_folder(tmp_path: Path) -> None:
    """lib_write is exported from drivers/lib: a driver elsewhere that calls it (and names
    no accessor) is parsed; the same funnel left unexported is seen from its folder only."""
    lib = ("void lib_write(void __iomem *base, u32 reg, u32 val)\n{\n"
           "\twritel(val, base + reg);\n}\n")
    user = "void user_kick(void __iomem *base)\n{\n\tlib_write(base, 0x10, 1);\n}\n"
    exported = mini_tree(tmp_path / "a", {
        "drivers/lib/lib.c": lib + "EXPORT_SYMBOL(lib_write);\n",
        "drivers/user/user.c": user,
    })
    assert ("drivers/user/user.c", "lib_write") in _sites(scan_json(tmp_path, exported))
    local = mini_tree(tmp_path / "b", {
        "drivers/lib/lib.c": lib,
        "drivers/user/user.c": user,
    })
    assert ("drivers/user/user.c", "lib_write") not in _sites(
        scan_json(tmp_path, local, name="local.json"))


def test_a_funnel_header_is_seen_by_a_c_file_included_by_another(tmp_path: Path) -> None:
    """d-q.c is #included by d-main.c and includes nothing itself: the funnel of its
    folder's header (d.h) is still looked for in it, as the call graph resolves it."""
    root = mini_tree(tmp_path / "linux", {
        "drivers/d/d.h": ("struct d_hw { void __iomem *base; };\n"
                          "static inline void d_writel(struct d_hw *hw, u32 reg, u32 v)\n"
                          "{\n\twritel(v, hw->base + reg);\n}\n"),
        "drivers/d/d-main.c": '#include "d.h"\n#include "d-q.c"\n',
        "drivers/d/d-q.c": ("static void d_ring(struct d_hw *hw)\n{\n"
                            "\td_writel(hw, 0x8, 1);\n}\n"),
    })
    assert ("drivers/d/d-q.c", "d_writel") in _sites(scan_json(tmp_path, root))


def test_a_registration_naming_no_driver_function_is_not_parsed(tmp_path: Path) -> None:
    """A file registering an interrupt handler is parsed when it names a function of the
    driver that makes an access (its handler may be that function); one whose handler
    calls nothing of the kind is left alone (it was parsed for `request_irq` alone)."""
    root = mini_tree(tmp_path / "linux", {
        "drivers/e/e_hw.c": ("u32 e_status(void __iomem *base)\n{\n"
                             "\treturn readl(base + 4) + readl(base + 8);\n}\n"),
        "drivers/e/e_timer.c": ("static irqreturn_t e_tick(int irq, void *data)\n{\n"
                                "\treturn IRQ_HANDLED;\n}\n\n"
                                "int e_timer_setup(int irq, void *data)\n{\n"
                                '\treturn request_irq(irq, e_tick, 0, "e", data);\n}\n'),
        "drivers/e/e_irq.c": ("static irqreturn_t e_isr(int irq, void *data)\n{\n"
                              "\treturn e_status(data) ? IRQ_HANDLED : IRQ_NONE;\n}\n\n"
                              "int e_irq_setup(int irq, void *data)\n{\n"
                              '\treturn request_irq(irq, e_isr, 0, "e", data);\n}\n'),
    })
    data = scan_json(tmp_path, root)
    roots = {(r["function"], r["path"]) for r in data["hot_roots"]}
    assert ("e_isr", "drivers/e/e_irq.c") in roots
    assert not any(p == "drivers/e/e_timer.c" for _f, p in roots)
    assert data["stats"]["files_parsed"] == 2
    assert all(s["hot"] for s in data["sites"] if s["function"] == "e_status")


def test_a_field_is_looked_for_as_a_call_not_as_a_word(tmp_path: Path) -> None:
    """`.read_reg` stores a funnel: a file calling `gc->read_reg(...)` is parsed and lists
    the call; one that only has a local named read_reg is not parsed."""
    root = mini_tree(tmp_path / "linux", {
        "drivers/f/f_mmio.c": ("struct f_chip { u32 (*read_reg)(void __iomem *reg); };\n\n"
                               "static u32 f_read32(void __iomem *reg)\n{\n"
                               "\treturn readl(reg);\n}\n\n"
                               "void f_init(struct f_chip *gc)\n{\n"
                               "\tgc->read_reg = f_read32;\n}\n"),
        "drivers/f/f_gpio.c": ("u32 f_get(struct f_chip *gc, void __iomem *dat)\n{\n"
                               "\treturn gc->read_reg(dat);\n}\n"),
        "drivers/f/f_other.c": ("int f_count(int read_reg)\n{\n"
                                "\treturn read_reg + 1;\n}\n"),
    })
    data = scan_json(tmp_path, root)
    assert any(s["path"] == "drivers/f/f_gpio.c" and s.get("indirect")
               for s in data["sites"])
    assert data["stats"]["files_parsed"] == 2


def test_a_local_stored_into_a_field_is_no_function_store(tmp_path: Path) -> None:
    """`j->reset = reset` stores a parameter, not the funnel `reset` another driver defines
    (non-static, not exported: job.c cannot see it). The field stores no function at all,
    so a file that only writes `j->reset = false` is not parsed for it (it was: by name the
    stored value was that funnel, and the field counted as one storing only funnels)."""
    root = mini_tree(tmp_path / "linux", {
        "drivers/x/x_hw.c": ("void reset(void __iomem *base, u32 reg)\n{\n"
                             "\twritel(1, base + reg);\n}\n"),
        "drivers/c/c_job.c": ("struct c_job { bool reset; void __iomem *base; };\n\n"
                              "void c_job_note(struct c_job *j, bool reset)\n{\n"
                              "\tj->reset = reset;\n}\n\n"
                              "u32 c_job_status(struct c_job *j)\n{\n"
                              "\treturn readl(j->base);\n}\n"),
        "drivers/c/c_run.c": ("void c_run_done(struct c_job *j)\n{\n"
                              "\tj->reset = false;\n}\n"),
    })
    data = scan_json(tmp_path, root)
    assert {s["path"] for s in data["sites"]} == {"drivers/x/x_hw.c", "drivers/c/c_job.c"}
    assert data["stats"]["files_parsed"] == 2


def test_a_funnel_is_seen_two_folders_down(tmp_path: Path) -> None:
    """g_load32 (drivers/g/access.c, not static) is a funnel; the call graph resolves a
    call of it from anywhere in drivers/g's subtree, so a file two folders below, naming no
    accessor, is parsed and lists the call (only the folder and its parent's were seen)."""
    root = mini_tree(tmp_path / "linux", {
        "drivers/g/access.c": ("u32 g_load32(u32 addr)\n{\n"
                               "\treturn readl(g_base + addr);\n}\n"),
        "drivers/g/runtime/debug/dump.c": ("u32 g_dump_status(void)\n{\n"
                                           "\treturn g_load32(0x40);\n}\n"),
    })
    data = scan_json(tmp_path, root)
    assert ("drivers/g/runtime/debug/dump.c", "g_load32") in _sites(data)


def test_a_handler_reading_through_a_funnel_field_makes_its_registration_hot(
        tmp_path: Path) -> None:
    """h_isr (h_vec.c) reads its status through `self->ops->irq_read`, which stores
    h_b0_irq_read, a function making an access (no funnel: its offset is fixed): h_isr
    makes an access, so h_pci.c, which registers it and names no accessor, is parsed and
    its handler is a hot root."""
    root = mini_tree(tmp_path / "linux", {
        "drivers/h/h_hw.h": ("struct h_hw;\nstruct h_ops {\n"
                             "\tu32 (*irq_read)(struct h_hw *hw);\n};\n"
                             "struct h_vec { const struct h_ops *ops; struct h_hw *hw; };\n"),
        "drivers/h/h_b0.c": ('#include "h_hw.h"\n\nstatic u32 h_b0_irq_read(struct h_hw *hw)'
                             "\n{\n\treturn readl(hw->base + 0x10);\n}\n\n"
                             "const struct h_ops h_b0_ops = {\n"
                             "\t.irq_read = h_b0_irq_read,\n};\n"),
        "drivers/h/h_vec.c": ('#include "h_hw.h"\n\nirqreturn_t h_isr(int irq, void *data)'
                              "\n{\n\tstruct h_vec *self = data;\n\n"
                              "\treturn self->ops->irq_read(self->hw) ? IRQ_HANDLED : "
                              "IRQ_NONE;\n}\n\n"
                              "void h_vec_ack(void __iomem *base)\n{\n"
                              "\twritel(1, base);\n}\n"),
        "drivers/h/h_pci.c": ('#include "h_hw.h"\n\nint h_setup(int irq, void *vec)\n{\n'
                              '\treturn request_irq(irq, h_isr, 0, "h", vec);\n}\n'),
    })
    data = scan_json(tmp_path, root)
    roots = {(r["function"], r["path"]) for r in data["hot_roots"]}
    assert ("h_isr", "drivers/h/h_pci.c") in roots
    assert any(s["function"] == "h_b0_irq_read" and s["hot"] for s in data["sites"])


def test_a_handler_field_counts_as_a_registration_argument_only(tmp_path: Path) -> None:
    """`chip->isr` stores k_isr, which makes an access: k_irq.c, registering the handler
    it reads from that field, is parsed and the handler is a hot root; k_misc.c, which
    registers a handler of its own and only clears the field, is not parsed (it was: the
    field's name as a word in a file naming request_irq)."""
    root = mini_tree(tmp_path / "linux", {
        "drivers/k/k_core.c": ("struct k_chip { void __iomem *base; int irq; int irq2;\n"
                               "\tirqreturn_t (*isr)(int irq, void *data); };\n\n"
                               "static irqreturn_t k_isr(int irq, void *data)\n{\n"
                               "\tstruct k_chip *chip = data;\n\n"
                               "\treturn readl(chip->base) ? IRQ_HANDLED : IRQ_NONE;\n}\n\n"
                               "void k_init(struct k_chip *chip)\n{\n"
                               "\tchip->isr = k_isr;\n}\n"),
        "drivers/k/k_irq.c": ("int k_irq_on(struct k_chip *chip)\n{\n"
                              '\treturn request_irq(chip->irq, chip->isr, 0, "k", chip);\n'
                              "}\n"),
        "drivers/k/k_misc.c": ("static irqreturn_t k_misc_isr(int irq, void *data)\n{\n"
                               "\treturn IRQ_HANDLED;\n}\n\n"
                               "int k_misc_on(struct k_chip *chip)\n{\n"
                               "\tchip->isr = NULL;\n"
                               '\treturn request_irq(chip->irq2, k_misc_isr, 0, "m", chip);\n'
                               "}\n"),
    })
    data = scan_json(tmp_path, root)
    assert {r["path"] for r in data["hot_roots"]} == {"drivers/k/k_irq.c"}
    assert all(s["hot"] for s in data["sites"] if s["function"] == "k_isr")
    assert data["stats"]["files_parsed"] == 2


def test_a_handler_reaching_an_access_calls_down_brings_its_registration_in(
        tmp_path: Path) -> None:
    """t_rx_poll (t_rx.c) reaches the doorbell write three calls down, through t_rx.c and
    t_hw.c; t_net.c registers it as a NAPI poll and names no accessor: it is parsed, the
    poll is a hot root and the doorbell is hot. A file registering its own handler that
    reaches nothing stays unparsed."""
    root = mini_tree(tmp_path / "linux", {
        "drivers/t/t_hw.c": ("void t_ring_doorbell(void __iomem *base)\n{\n"
                             "\twritel(1, base + 0x100);\n}\n"),
        "drivers/t/t_rx.c": ("static void t_rx_refill(struct t_ctx *c)\n{\n"
                             "\tt_ring_doorbell(c->base);\n}\n\n"
                             "static int t_rx_collect(struct t_ctx *c, int budget)\n{\n"
                             "\tt_rx_refill(c);\n\treturn budget;\n}\n\n"
                             "int t_rx_poll(struct napi_struct *napi, int budget)\n{\n"
                             "\treturn t_rx_collect(t_ctx_of(napi), budget);\n}\n"),
        "drivers/t/t_net.c": ("void t_net_setup(struct t_ctx *c)\n{\n"
                              "\tnetif_napi_add(c->dev, &c->napi, t_rx_poll);\n}\n"),
        "drivers/t/t_timer.c": ("static irqreturn_t t_tick(int irq, void *data)\n{\n"
                                "\treturn IRQ_HANDLED;\n}\n\n"
                                "int t_timer_on(int irq)\n{\n"
                                '\treturn request_irq(irq, t_tick, 0, "t", NULL);\n}\n'),
    })
    data = scan_json(tmp_path, root)
    assert {(r["function"], r["path"]) for r in data["hot_roots"]} == {
        ("t_rx_poll", "drivers/t/t_net.c")}
    assert all(s["hot"] for s in data["sites"] if s["function"] == "t_ring_doorbell")
    assert data["stats"]["files_parsed"] == 3


def test_a_file_calling_through_a_field_that_reaches_an_access_is_on_the_path(
        tmp_path: Path) -> None:
    """f_irq (f_fimc.c) ends a task through f_task_done (f_ipp.c, no accessor named),
    which commits the next one through `ipp->funcs->commit`, a field storing f_commit, a
    function making an access: f_ipp.c is parsed, so the chain from the root reaches the
    write and it is hot. A file of the folder only storing into the field stays
    unparsed (a store is no step on a path)."""
    root = mini_tree(tmp_path / "linux", {
        "drivers/f/f_ipp.h": ("struct f_ipp;\nstruct f_funcs {\n"
                              "\tint (*commit)(struct f_ipp *ipp);\n};\n"
                              "struct f_ipp { const struct f_funcs *funcs;"
                              " void __iomem *regs; };\n"
                              "void f_task_done(struct f_ipp *ipp);\n"),
        "drivers/f/f_fimc.c": ('#include "f_ipp.h"\n\n'
                               "static int f_commit(struct f_ipp *ipp)\n{\n"
                               "\twritel(1, ipp->regs + 0x20);\n\treturn 0;\n}\n\n"
                               "static const struct f_funcs f_fimc_funcs = {\n"
                               "\t.commit = f_commit,\n};\n\n"
                               "static irqreturn_t f_irq(int irq, void *data)\n{\n"
                               "\tf_task_done(data);\n\treturn IRQ_HANDLED;\n}\n\n"
                               "int f_probe(struct f_ipp *ipp, int irq)\n{\n"
                               "\tipp->funcs = &f_fimc_funcs;\n"
                               '\treturn request_irq(irq, f_irq, 0, "f", ipp);\n}\n'),
        "drivers/f/f_ipp.c": ('#include "f_ipp.h"\n\n'
                              "void f_task_done(struct f_ipp *ipp)\n{\n"
                              "\tipp->funcs->commit(ipp);\n}\n"),
        "drivers/f/f_stub.c": ('#include "f_ipp.h"\n\n'
                               "static int f_nop(struct f_ipp *ipp)\n{\n\treturn 0;\n}\n\n"
                               "static const struct f_funcs f_stub_funcs = {\n"
                               "\t.commit = f_nop,\n};\n"),
    })
    data = scan_json(tmp_path, root)
    commits = [s for s in data["sites"] if s["function"] == "f_commit"]
    assert commits and all(s["hot"] for s in commits)
    assert data["stats"]["files_parsed"] == 3


def test_a_file_read_once_is_read_again_only_for_names_it_mentions() -> None:
    """After a round read a file, a later round's new names are tested against the file's
    identifier hashes: a name it mentions (as a word, or as a field it calls through)
    lets it be read again, names it does not mention rule it out; a partner counts only
    with a hot registration name in the file."""
    from mmioscan.analysis.rounds import FIELD_CALL, PARTNER, Rounds

    data = (b"static int x_poll(struct x_dev *d)\n{\n\treturn d->ops->kick(d, X_REG);\n}\n"
            b"int x_setup(struct x_dev *d)\n{\n\treturn x_start(d);\n}\n")
    rounds = Rounds(frozenset({"request_irq"}), frozenset({"request_irq"}))
    first = rounds.names(frozenset({"y_write32", FIELD_CALL + "doorbell"}))
    assert not rounds.matches("drivers/x/x.c", data, (first,))
    for wanted, expected in (({"x_start"}, True), ({FIELD_CALL + "kick"}, True),
                             ({"y_read32", "z_start", FIELD_CALL + "poll_ring"}, False),
                             ({FIELD_CALL + "ops"}, False),  # a member, never called
                             ({PARTNER + "x_start"}, False)):
        names = rounds.names(frozenset(wanted))
        assert rounds.may_match("drivers/x/x.c", (names,)) is expected, wanted
    assert rounds.may_match("drivers/x/other.c", (first,))  # never read: must be read


def test_the_prefilters_identifier_hashes_answer_without_a_read() -> None:
    """A file the prefilter skipped carries its identifiers' hashes in its facts (hashed on
    the workers): a round tests names against them without reading the file, with the
    same answers as after a read; the hashes are CRC-32s, the same in every process."""
    import zlib

    from mmioscan.analysis.rounds import FIELD_CALL, Rounds
    from mmioscan.cfront.lexer import words
    from mmioscan.cfront.prefilter import field_use_hashes, identifier_hashes

    data = (b"static int x_poll(struct x_dev *d)\n{\n\treturn d->ops->kick(d, X_REG);\n}\n"
            b"int x_setup(struct x_dev *d)\n{\n\td->poll = x_poll;\n"
            b"\treturn x_start(d);\n}\n")
    identifiers = identifier_hashes(words(data))
    uses = field_use_hashes(data)
    assert len(identifiers) == 4 * len(set(words(data)))
    assert zlib.crc32(b"x_start") in memoryview(identifiers).cast("I")
    assert sorted(memoryview(uses).cast("I")) == sorted(map(zlib.crc32, (b"kick", b"poll")))
    rounds = Rounds(frozenset({"request_irq"}), frozenset({"request_irq"}))
    for wanted, expected in (({"x_start"}, True), ({FIELD_CALL + "kick"}, True),
                             ({FIELD_CALL + "poll"}, True),  # stored into: must be read
                             ({FIELD_CALL + "ops"}, False),  # named, never called or stored
                             ({FIELD_CALL + "x_start"}, False),  # called, not through a field
                             ({"y_read32", "z_start", FIELD_CALL + "poll_ring"}, False)):
        names = rounds.names(frozenset(wanted))
        assert rounds.may_match("drivers/x/x.c", (names,), identifiers, uses) is expected, \
            wanted
        assert rounds.may_match("drivers/x/x.c", (names,)), "no hashes: must be read"


def test_an_unparsed_record_carries_its_identifier_hashes(tmp_path: Path) -> None:
    """The facts of a file the prefilter skips hold the hashes of its identifiers; a parsed
    file's hold none (the rounds never search it)."""
    from mmioscan.analysis.gather import extract_spec
    from mmioscan.cfront.lexer import words
    from mmioscan.cfront.prefilter import field_use_hashes, identifier_hashes
    from mmioscan.core.ruleset import load_rules
    from mmioscan.facts.runner import collect_facts

    (tmp_path / "a.c").write_bytes(b"int a_setup(struct a *p)\n{\n\treturn p->start(1);\n}\n")
    (tmp_path / "b.c").write_bytes(b"u32 b_get(void __iomem *r)\n{\n\treturn readl(r);\n}\n")
    rules = load_rules(None)
    run = collect_facts(tmp_path, ("a.c", "b.c"), extract_spec(rules), rules.digest, 1, None)
    skipped, parsed = run.facts
    assert not skipped.parsed and parsed.parsed
    assert skipped.identifiers == identifier_hashes(words((tmp_path / "a.c").read_bytes()))
    assert skipped.field_uses == field_use_hashes((tmp_path / "a.c").read_bytes())
    assert len(skipped.field_uses) == 4  # `start`
    assert parsed.identifiers == b"" and parsed.field_uses == b""


_FIELD_TEXT = st.lists(st.sampled_from(
    [b"p", b"->", b".", b"(", b")", b"=", b"==", b" ", b"\n", b"*", b"f", b"ff", b"read",
     b"x1", b"->f", b"0.5", b"..."]), max_size=14).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(_FIELD_TEXT)
def test_field_use_hashes_cover_every_field_a_round_can_find(data: bytes) -> None:
    """The prefilter's field uses are a superset of what the rounds' field patterns match
    (calls with stores, and calls alone): a file they rule out is one a read would not
    have matched either."""
    import zlib

    from mmioscan.analysis.rounds import _calls_field
    from mmioscan.cfront.lexer import words
    from mmioscan.cfront.prefilter import field_use_hashes

    uses = set(memoryview(field_use_hashes(data)).cast("I"))
    idents = frozenset(words(data))
    for field in idents:
        if _calls_field(data, frozenset({field}), idents):
            assert zlib.crc32(field) in uses, (data, field)
        if _calls_field(data, frozenset({field}), idents, stores=False):
            assert zlib.crc32(field) in uses, (data, field)


def test_the_makers_read_off_the_caller_index_are_the_scopes_making_an_access() -> None:
    """_Reaching's makers (a call or value use of an accessing name, or a dereference, in a
    scope's own body) come from the caller index: the same scopes as testing each scope."""
    from mmioscan.analysis.approximate import CallerIndex
    from mmioscan.analysis.rounds import _makers
    from mmioscan.cfront.extract import Extractor

    source = (b"#define X_WR(v) writel(v, x_base)\n"
              b"static void __iomem *x_base;\n"
              b"static u32 x_rd(u32 r) { return readl(x_base + r); }\n"
              b"static void x_kick(void) { X_WR(1); }\n"
              b"static void x_poke(u32 __iomem *p) { *p = 1; }\n"
              b"static int x_pick(void) { return use(readl); }\n"
              b"static int x_none(int a) { return a + 1; }\n")
    facts = Extractor({"readl", "writel"}).extract("drivers/x/x.c", "d", source)
    accessing = {"readl", "writel", "x_rd"}
    index = CallerIndex(frozenset({"readl", "writel"}), 15, 400).update({facts.path: facts})
    derefs = {d[2] for d in facts.derefs}
    expected = {i for i, s in enumerate(facts.scopes)
                if i in derefs or not accessing.isdisjoint((*s.callees, *s.values))}
    found = _makers({facts.path: facts}, accessing, index)[facts.path]
    names = {facts.scopes[i].name for i in found}
    assert found == expected
    assert {"X_WR", "x_rd", "x_poke", "x_pick"} <= names and "x_none" not in names


def _facts_of(path: str, source: bytes) -> Any:
    from mmioscan.cfront.extract import Extractor

    return Extractor({"readl", "writel"}).extract(path, path, source)


# Files parsed round by round: the second makes x_rd a function too (it was a macro only),
# stores a plain function into the `read` field a funnel call went through, and the third
# calls a funnel found before
_ROUND_FILES = (
    {"drivers/x/a.c": b"#define x_rd(r) readl(x_base + (r))\n"
                      b"static void __iomem *x_base;\n"
                      b"u32 x_get(u32 r) { return x_rd(r); }\n"
                      b"static u32 x_fun(void __iomem *a) { return readl(a); }\n"
                      b"static const struct x_ops x_mmio = { .read = x_fun };\n"
                      b"u32 x_via(struct x_dev *d, u32 r) { return d->ops->read(d->base + r); }\n"
                      b"u32 x_outer(struct x_dev *d, u32 r) { return x_via(d, r); }\n"},
    {"drivers/x/b.c": b"u32 x_rd(u32 r) { return r; }\n"
                      b"static u32 x_plain(void __iomem *a) { return 0; }\n"
                      b"static const struct x_ops x_fake = { .read = x_plain };\n"
                      b"u32 x_more(u32 r) { return x_get(r); }\n"},
    {"drivers/x/c.c": b"u32 x_top(u32 r) { return x_more(r) + x_get(r + 4); }\n"},
)


def test_the_funnel_search_going_on_finds_what_a_fresh_one_finds() -> None:
    """FunnelSearch carried from round to round (taking back what a macro turned function
    or a field's new candidate unmakes) ends where a fresh search over the same files ends,
    round after round."""
    from mmioscan.analysis.approximate import CallerIndex, FunnelSearch
    from mmioscan.analysis.fnptrs import FieldStores

    leaves = frozenset({"readl", "writel"})
    addr = {"readl": 0, "writel": 1}
    search = FunnelSearch(leaves, addr, {}, CallerIndex(leaves, 15, 400))
    files: dict[str, Any] = {}
    found_by_round = []
    for added in _ROUND_FILES:
        files.update({p: _facts_of(p, s) for p, s in added.items()})
        going_on = search.run(files, FieldStores(files, leaves))
        fresh = FunnelSearch(leaves, addr, {}, CallerIndex(leaves, 15, 400)).run(
            files, FieldStores(files, leaves))
        assert [(p, s.name) for p, s in going_on] == [(p, s.name) for p, s in fresh]
        found_by_round.append({s.name for _p, s in going_on})
    assert found_by_round == [
        {"x_rd", "x_get", "x_fun", "x_via", "x_outer"},
        # the `read` field may hold a plain function now: x_via and its caller taken back
        {"x_rd", "x_get", "x_fun", "x_more"},
        {"x_rd", "x_get", "x_fun", "x_more", "x_top"}]
    assert search.retracted > 0 and search.restarts == 0
