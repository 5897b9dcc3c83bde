"""Functions defined by token-pasting macros (cfront/pasted.py): instantiated at their
file-scope invocations, they join the call graph with the invocation's line, so calls of the
funnels among them are wrapper sites and the accesses in them are sites at the invocation.

The C below is written for the tests, in kernel style: a driver `pst` whose register
accessors come from one macro per family, a context-pointer-only status reader (no funnel),
a stringifying macro, a macro that pastes a variable (defines no function), a statement
macro, and a family defined in the driver's header and instantiated in its .c file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmioscan.analysis.gather import extract_spec
from mmioscan.cfront import pasted
from mmioscan.cfront.extract import Extractor
from mmioscan.cfront.macros import Directives
from mmioscan.core.model import FileFacts
from mmioscan.core.ruleset import load_rules

from .helpers import line_starting, scan_json
from .test_wrappers import mini_tree

PST_H = """\
/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _PST_H
#define _PST_H

struct pst {
	void __iomem *base;
	void __iomem *ctl;
};

/* one accessor per block, defined here and instantiated in pst_main.c */
#define PST_HDR_IO(blk, off)						\\
static inline u32 pst_##blk##_hrd(struct pst *p, u32 reg)		\\
{									\\
	return ioread32(p->base + (off) + reg);				\\
}

#endif
"""

PST_MAIN = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/io.h>
#include "pst.h"

#define PST_IO(blk, off)						\\
static inline u32 pst_##blk##_rd(struct pst *p, u32 reg)		\\
{									\\
	return readl(p->base + (off) + reg);				\\
}									\\
static inline void pst_##blk##_wr(struct pst *p, u32 reg, u32 val)	\\
{									\\
	writel(val, p->base + (off) + reg);				\\
}

PST_IO(mac, 0x100)
PST_IO(dma,
       0x200);

/* the context pointer alone: a fixed register, no funnel */
#define PST_STATUS(blk, reg)						\\
static inline u32 pst_##blk##_status(struct pst *p)			\\
{									\\
	u32 __iomem *r = p->ctl + (reg);				\\
	return *r;							\\
}
PST_STATUS(mac, 0x10);

#define PST_NAMED(blk)							\\
static const char *pst_##blk##_name(void)				\\
{									\\
	return #blk;							\\
}
PST_NAMED(mac);

/* pastes a variable's name: defines no function */
#define PST_REG(name, off) static const u32 pst_reg_##name = (off)
PST_REG(ctrl, 0x4);

/* pastes a call: a statement, no definition */
#define PST_POKE(p, blk, v) do { pst_##blk##_wr(p, 0, v); } while (0)

PST_HDR_IO(phy, 0x300);

int pst_probe(struct pst *p)
{
	u32 id = pst_mac_rd(p, 4);

	pst_dma_wr(p, 8, id);
	PST_POKE(p, mac, 1);
	if (!pst_mac_status(p))
		return -1;
	return pst_phy_hrd(p, 12) ? 0 : -1;
}
"""

MAIN = "drivers/pst/pst_main.c"


def _line(needle: str) -> int:
    return line_starting(PST_MAIN, needle)


INVOKE_MAC, INVOKE_DMA = _line("PST_IO(mac"), _line("PST_IO(dma")
INVOKE_STATUS, INVOKE_NAMED = _line("PST_STATUS(mac"), _line("PST_NAMED(mac")
INVOKE_PHY = _line("PST_HDR_IO(phy")
CALL_RD, CALL_WR = _line("u32 id = pst_mac_rd("), _line("pst_dma_wr(")
CALL_STATUS, CALL_HRD = _line("if (!pst_mac_status("), _line("return pst_phy_hrd(")


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    spec = extract_spec(load_rules())
    return Extractor(spec.names, dict(spec.registrations), spec.hot_fields, spec.regmap)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mini_tree(tmp_path_factory.mktemp("pst") / "linux",
                     {"drivers/pst/pst.h": PST_H, MAIN: PST_MAIN})


@pytest.fixture(scope="module")
def scan(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scan_json(tmp_path_factory.mktemp("out"), tree / "drivers/pst")


def _facts(extractor: Extractor, tree: Path) -> FileFacts:
    path = tree / MAIN
    return extractor.extract(MAIN, "digest", path.read_bytes(), str(path.parent))


def _sites(scan: dict[str, Any]) -> set[tuple[int, str, str, str | None]]:
    return {(s["line"], s["kind"], s["accessor"], s["function"])
            for s in scan["sites"] if s["path"] == MAIN}


# -- the expansion ---------------------------------------------------------------------------


def _macros(text: bytes) -> tuple[Directives, list[pasted.MacroDef]]:
    directives = Directives(text)
    return directives, list(directives.definitions(text))


def test_only_macros_defining_a_function_are_instantiated() -> None:
    _, macros = _macros(PST_MAIN.encode())
    defining = {m.name for m in pasted.defining_macros(macros)}
    assert defining == {"PST_IO", "PST_STATUS", "PST_NAMED"}  # not PST_REG nor PST_POKE


def test_expansion_pastes_stringifies_and_keeps_the_semicolon() -> None:
    text = PST_MAIN.encode()
    directives, macros = _macros(text)
    found = pasted.instances(text, pasted.defining_macros(macros), directives)
    named = [i for i in found.instances if i.macro == "PST_NAMED"]
    assert [i.text for i in named] == [
        b'static const char *pst_mac_name(void) { return "mac"; } ;']
    io = [i for i in found.instances if i.macro == "PST_IO"]
    assert [i.line for i in io] == [INVOKE_MAC, INVOKE_DMA]
    assert b"pst_dma_rd(" in io[1].text and b"0x200" in io[1].text
    assert not io[0].text.endswith(b";")  # PST_IO(mac, 0x100) has none
    assert found.left_out == 0 and found.elsewhere == frozenset()


def test_invocations_in_a_function_or_of_another_shape_produce_nothing() -> None:
    text = (b"#define MK(n) static int mk_##n(void) { return readl(0); }\n"
            b"MK(a);\n"
            b"MK(b, c);\n"  # two arguments for one parameter: not this macro's shape
            b"void f(void)\n{\n\tMK(d);\n}\n"
            b"static int t[] = { MK(e) };\n")
    directives, macros = _macros(text)
    found = pasted.instances(text, macros, directives)
    assert [i.text for i in found.instances] == [
        b"static int mk_a(void) { return readl(0); } ;"]
    assert found.elsewhere == {"MK"}


def test_produced_text_is_capped_per_file(extractor: Extractor,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    text = (b"#define MK(n) static u32 mk_##n(void __iomem *b, u32 r) { return readl(b + r); }\n"
            + b"".join(b"MK(f%d);\n" % i for i in range(50)))
    monkeypatch.setattr(pasted, "MAX_PRODUCED_BYTES", 1000)
    facts = extractor.extract("drivers/x/x.c", "d", text)
    made = [s.name for s in facts.scopes if s.kind == "function"]
    assert made and len(made) < 50
    assert any("not instantiated past 1,000 bytes" in p.message for p in facts.problems)


# -- the facts -------------------------------------------------------------------------------


def test_produced_functions_are_scopes_at_the_invocation(extractor: Extractor,
                                                        tree: Path) -> None:
    facts = _facts(extractor, tree)
    made = {s.name: s for s in facts.scopes if s.kind == "function"}
    for name, line in (("pst_mac_rd", INVOKE_MAC), ("pst_mac_wr", INVOKE_MAC),
                       ("pst_dma_rd", INVOKE_DMA), ("pst_mac_status", INVOKE_STATUS),
                       ("pst_mac_name", INVOKE_NAMED), ("pst_phy_hrd", INVOKE_PHY)):
        assert (made[name].line, made[name].end_line) == (line, line), name
        assert made[name].static and made[name].inline == (name != "pst_mac_name")
    assert made["pst_dma_wr"].callees == ("writel",)
    assert "pst_reg_ctrl" not in made and not any("poke" in n for n in made)
    lines = PST_MAIN.split("\n")
    readl = [c for c in facts.calls if c[0] == "readl"]
    # One readl per instance, none in the template; each past the end of its line
    assert [c[1] for c in readl] == [INVOKE_MAC, INVOKE_DMA]
    assert all(c[2] > len(lines[c[1] - 1]) for c in readl)
    assert not any(c[0] in ("PST_IO", "PST_HDR_IO") for c in facts.calls)
    assert [d[:1] + d[3:5] for d in facts.derefs] == [(INVOKE_STATUS, "read", "*p")]
    assert facts.depends and facts.depends[0][0].endswith("pst.h")


def test_the_header_family_needs_the_folder(extractor: Extractor, tree: Path) -> None:
    facts = extractor.extract(MAIN, "digest", (tree / MAIN).read_bytes())
    assert "pst_phy_hrd" not in {s.name for s in facts.scopes}
    assert facts.depends == ()


# -- the sites -------------------------------------------------------------------------------


def test_calls_of_pasted_funnels_are_wrapper_sites(scan: dict[str, Any]) -> None:
    sites = _sites(scan)
    assert (CALL_RD, "wrapper", "readl", "pst_probe") in sites
    assert (CALL_WR, "wrapper", "writel", "pst_probe") in sites
    assert (CALL_HRD, "wrapper", "ioread32", "pst_probe") in sites  # from the header


def test_a_context_pointer_only_reader_is_no_funnel(scan: dict[str, Any]) -> None:
    sites = _sites(scan)
    assert not any(line == CALL_STATUS for line, *_ in sites)
    assert (INVOKE_STATUS, "deref", "deref", "pst_mac_status") in sites


def test_accesses_in_produced_bodies_are_sites_at_the_invocation(scan: dict[str, Any]) -> None:
    assert _sites(scan) == {
        (INVOKE_MAC, "direct", "readl", "pst_mac_rd"),
        (INVOKE_MAC, "direct", "writel", "pst_mac_wr"),
        (INVOKE_DMA, "direct", "readl", "pst_dma_rd"),
        (INVOKE_DMA, "direct", "writel", "pst_dma_wr"),
        (INVOKE_STATUS, "deref", "deref", "pst_mac_status"),
        (INVOKE_PHY, "direct", "ioread32", "pst_phy_hrd"),
        (CALL_RD, "wrapper", "readl", "pst_probe"),
        (CALL_WR, "wrapper", "writel", "pst_probe"),
        (CALL_HRD, "wrapper", "ioread32", "pst_probe"),
    }
    assert not any(p["path"] == MAIN for p in scan["problems"]), scan["problems"]


def test_one_level_of_forwarding(extractor: Extractor) -> None:
    """`IO(n)` forwards to the defining `__IO(n, m)`: its invocations define too, and the
    inner macro's body, invoked only there, is a template (no site of its own)."""
    text = (b"#define __IO(n, m) static inline u32 n##_rd(struct x *x, u32 off) "
            b"{ return readl(x->m + off); }\n"
            b"#define IO(n) __IO(n, res.n)\n"
            b"#define IO2(n) IO(n)\n"  # two levels: not expanded
            b"IO(mac);\nIO2(phy);\n"
            b"u32 probe(struct x *x)\n{\n\treturn mac_rd(x, 4);\n}\n")
    facts = extractor.extract("drivers/x/x.c", "d", text)
    made = {s.name: s.line for s in facts.scopes if s.kind == "function"}
    assert made == {"mac_rd": 4, "probe": 6}
    assert [(c[0], c[1]) for c in facts.calls if c[0] == "readl"] == [("readl", 4)]


def test_syntax_errors_of_the_produced_text_count_for_the_file() -> None:
    """A produced function that does not parse is a file parsed with errors: the problem says
    so, and the file's error count (stats files_with_parse_errors) agrees."""
    from mmioscan.cfront.extract import Extractor

    text = (b"#define MK(n) static inline u32 mk_##n(void __iomem *p) { return readl(p + ; }\n"
            b"MK(a)\n")
    facts = Extractor(["readl"]).extract("drivers/x/x.h", "d", text)
    assert any("pasting macros" in p.message and "syntax error" in p.message
               for p in facts.problems)
    assert facts.error_nodes > 0
