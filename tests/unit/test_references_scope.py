"""References name the accessor: never a variable declared with its name in scope, never an
argument of a macro that pastes or declares with it (cfront/declared.py,
cfront/macros.py defines_with_params, analysis/definitions.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmioscan.analysis.definitions import Definitions
from mmioscan.cfront.extract import Extractor
from mmioscan.cfront.macros import Directives, defines_with_params
from mmioscan.core.catalogue import load_catalogue
from mmioscan.core.model import Site

SOURCE = """\
struct seg { int byte_count; int readq; };
static int readw;
u8 inb(unsigned long port);
static void fill(struct seg *inl, int n)
{
	int outb = 3;
	inl->byte_count = n + outb;
	memcpy(inl + 1, 0, 4);
	use(readw);
}
static void table(struct seg *s)
{
	void *p = inl;
	int (*fn)(void) = outb;
	struct ops o = { .inw = inw, .readq = 3 };
	use(s->readq);
	{
		unsigned long readl = 0;
		use(readl);
	}
}
"""


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor(load_catalogue().names())


def test_locals_parameters_and_file_variables_are_not_references(extractor: Extractor
                                                                  ) -> None:
    facts = extractor.extract("drivers/x/x.c", "d", SOURCE.encode())
    found = [(r.name, r.line) for r in facts.reference_records()]
    # inl (parameter of fill), outb (local of fill), readw (file variable), s->readq and
    # .readq (members), readl (local of an inner block) are variables, not the accessors
    assert found == [("inl", 13), ("outb", 14), ("inw", 15)]


def test_a_function_pointer_variable_is_declared() -> None:
    src = "void f(void)\n{\n\tint (*inl)(int) = 0;\n\tuse(inl);\n}\n"
    facts = Extractor(["inl"]).extract("x.c", "d", src.encode())
    assert facts.reference_records() == ()


def test_a_prototype_declares_no_variable() -> None:
    # `u32 readl(...)` at file scope is the accessor's prototype: a value use stays a reference
    src = "u32 readl(const void *addr);\nstatic void *ops[] = { readl };\n"
    facts = Extractor(["readl"]).extract("x.c", "d", src.encode())
    assert [r.name for r in facts.reference_records()] == ["readl"]


MACROS = b"""\
#define DEFINE_READ(name, type) static type my_##name(void *p) { return name(p); }
#define DECLARE_OP(type, name) type name(void *p)
#define SHOW(x) pr_info(#x)
#define POLL(op, addr) read_poll_timeout(op, v, v, 1, 10, addr)
#define CONST 3
"""


def test_macros_that_define_with_a_parameter() -> None:
    found = {m.name: defines_with_params(m) for m in Directives(MACROS).definitions(MACROS)}
    assert found == {"DEFINE_READ": True, "DECLARE_OP": True, "SHOW": True, "POLL": False,
                     "CONST": False}


def test_extractor_lists_definition_macros() -> None:
    facts = Extractor(["readl"]).extract("x.h", "d", MACROS)
    assert facts.definition_macros == ("DECLARE_OP", "DEFINE_READ", "SHOW")


def _reference(line: str, callee: str) -> Site:
    return Site(path="drivers/x/x.c", line=1, column=line.index(callee) + 1, function=None,
                callee=callee, accessor=callee, kind="reference", access="read", width=32,
                family="mmio")


@pytest.mark.parametrize(("line", "expected"), [
    ("DEFINE_READ(readl, u32)", True),
    ("DECLARE_OP(u32, readl);", True),  # not the first argument
    ("DEFINE_READ(readl, (u32))", True),
    ("POLL(readl, addr);", False),  # POLL uses readl as a value
    ("x = wrap(DEFINE_X(1), readl);", False),  # the open call is wrap, not DEFINE_X
])
def test_definition_macro_arguments(line: str, expected: bool) -> None:
    defs = Definitions(frozenset({"readl"}), frozenset({"DEFINE_READ", "DECLARE_OP"}))
    assert defs.is_definition(_reference(line, "readl"), line) is expected


def test_a_macro_forwarding_to_a_pasting_macro_defines_too_across_files(
        tmp_path: Path) -> None:
    """alpha's io.h shape: CAT(a, b) forwards to _CAT(a, b), which pastes; a header calling
    CAT(PFX, readw)(addr) names a pasted function, not readw as a value. A macro that only
    calls an accessor with its parameter (WR) is no definition macro."""
    from tests.unit.helpers import scan_json
    from tests.unit.test_wrappers import mini_tree

    root = mini_tree(tmp_path / "linux", {
        "include/asm/cat.h": ("#define _CAT(a, b) a ## _ ## b\n#define CAT(a, b) _CAT(a, b)\n"
                              "#define WR(v, p) writel(v, p)\n"
                              "static inline void cat_wr(void __iomem *p)\n"
                              "{\n\tuse(WR, readl);\n}\n"),
        "include/asm/io_pfx.h": ("#include <asm/cat.h>\n"
                                 "static inline u16 pfx_rd(void __iomem *a)\n"
                                 "{\n\treturn CAT(PFX, readw)(a);\n}\n"),
    })
    data = scan_json(tmp_path, root)
    refs = {(s["path"], s["callee"]) for s in data["sites"] if s["kind"] == "reference"}
    assert ("include/asm/io_pfx.h", "readw") not in refs
    assert ("include/asm/cat.h", "readl") in refs  # WR forwards to writel: no definition


def test_forwarded_calls_only_when_a_parameter_is_used() -> None:
    text = b"#define F(a) G(a, 1)\n#define H(a) G(1)\n#define K() G(1)\n"
    macros = {m.name: m for m in Directives(text).definitions(text)}
    from mmioscan.cfront.macros import forwarded_calls

    assert forwarded_calls(macros["F"]) == ("G",)
    assert forwarded_calls(macros["H"]) == ()
    assert forwarded_calls(macros["K"]) == ()


def test_a_trace_entry_or_member_argument_is_no_reference() -> None:
    """`__field(int, writeq)` declares a trace-event entry and `container_of(p, struct s,
    readl)` names a member: neither is the accessor as a value; `use(inl)` still is, and
    so is an accessor as the first argument (the pointer) of container_of."""
    src = ("TRACE_EVENT(x_io, TP_STRUCT__entry(__field(int, writeq)\n"
           "\t__array(char, readb, 8)), TP_printk(\"%d\", 1));\n"
           "void f(void *p)\n{\n\tstruct s *q = container_of(p, struct s, readl);\n"
           "\tsize_t n = offsetof(struct s, inw);\n\tuse(inl);\n"
           "\tg(container_of(outb, struct s, m));\n}\n")
    facts = Extractor(["writeq", "readb", "readl", "inw", "inl", "outb"]).extract(
        "x.c", "d", src.encode())
    assert [r.name for r in facts.reference_records()] == ["inl", "outb"]
