"""cfront/iomem.py: raw dereferences of __iomem pointers, as FileFacts.derefs and deref sites."""

from __future__ import annotations

import pytest

from mmioscan.analysis.sites import deref_sites
from mmioscan.cfront.extract import Extractor
from mmioscan.cfront.prefilter import mentions_iomem
from mmioscan.core.catalogue import load_catalogue
from mmioscan.core.model import FileFacts
from mmioscan.facts.runner import ExtractSpec, _init_worker, facts_for_bytes

from .helpers import TREE


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor(load_catalogue().names())


def _facts(extractor: Extractor, src: str) -> FileFacts:
    return extractor.extract("drivers/x/x.c", "digest", src.encode())


def _derefs(extractor: Extractor, body: str, head: str = "") -> list[tuple[str, str, str]]:
    """(statement text, access, form) of each dereference in `body`, a function's body."""
    src = head + "static void f(void __iomem *base, struct r __iomem *r, u32 __iomem *q)\n{\n" \
        + body + "\n}\n"
    facts = _facts(extractor, src)
    lines = src.splitlines()
    return [(lines[d[0] - 1].strip(), d[3], d[4]) for d in facts.derefs]


@pytest.mark.parametrize(("stmt", "access", "form"), [
    ("*q = 1;", "write", "*p"),
    ("v = *q;", "read", "*p"),
    ("q[2] = v;", "write", "p[i]"),
    ("v = q[i + 1];", "read", "p[i]"),
    ("r->ctrl = 1;", "write", "p->field"),
    ("v = r->status;", "read", "p->field"),
    ("r->ctrl |= 4;", "both", "p->field"),
    ("r->ctrl <<= 1;", "both", "p->field"),
    ("r->count++;", "both", "p->field"),
    ("--*q;", "both", "*p"),
    ("(*q)++;", "both", "*p"),
    ("v = r->sub.field;", "read", "p->field"),
    ("r->fifo[3] = v;", "write", "p->field"),
    ("return (*r).status;", "read", "*p"),
    ("*(q + 4) = 0;", "write", "*p"),
    ("*(volatile u32 __iomem *)(base + 4) = v;", "write", "*p"),
    ("v = *(u32 *)q;", "read", "*p"),
    ("v = ((struct r __iomem *)base)->status;", "read", "p->field"),
    ("*q++ = 0;", "write", "*p"),
    ("foo(r->status);", "read", "p->field"),
    ("v = (c ? q : q + 1)[0];", "read", "p[i]"),
    ("memcpy(buf, r->fifo, 8);", "read", "p->field"),
    ("v = (u8)*q;", "read", "*p"),
])
def test_each_form_is_a_deref(extractor: Extractor, stmt: str, access: str, form: str) -> None:
    assert _derefs(extractor, "\t" + stmt) == [(stmt, access, form)]


@pytest.mark.parametrize("stmt", [
    "writel(1, &r->ctrl);",
    "v = readl(&r->status);",
    "v = readl(&(r->fifo[2]));",
    "p = &r->fifo[2];",
    "v = readl(q + 4);",
    "memcpy_fromio(buf, r->fifo, 8);",
    "v = readl(r->fifo + 1);",
    "q = base + 8;",
    "q++;",
    "if (q == NULL || !r) return;",
    "v = sizeof(*q);",
    "v = sizeof *q + sizeof(r->ctrl);",
    "v = ARRAY_SIZE(r->fifo);",
    "typeof(*q) tmp;",
    "v = (unsigned long)q;",
    "v = *(unsigned long *)&q;",
    "v = q - (u32 __iomem *)base;",
    "pr_info(\"*q = 1\");",
    "/* *q = 1; r->ctrl = 0; */",
    "pr_info(\"%x\", (u32)&r->ctrl);",
    "v = (uintptr_t)&r->ctrl + 1;",
])
def test_not_a_deref(extractor: Extractor, stmt: str) -> None:
    assert _derefs(extractor, "\t" + stmt) == []


def test_pointer_to_pointer_and_arrays_of_pointers(extractor: Extractor) -> None:
    src = ("static void f(void __iomem **out, u32 __iomem *regs[4], void __iomem *base)\n{\n"
           "\t*out = base;\n"             # stores a pointer: not MMIO
           "\t**(u32 __iomem **)out = 1;\n"
           "\tregs[1] = base;\n"
           "\t*regs[2] = 3;\n"
           "\tregs[0][1] = 4;\n}\n")
    assert [(d[0], d[3]) for d in _facts(extractor, src).derefs] == [
        (4, "write"), (6, "write"), (7, "write")]


def test_a_local_without_iomem_shadows_the_parameter(extractor: Extractor) -> None:
    body = ("\t{\n\t\tu32 *q = kzalloc(8, GFP_KERNEL);\n\n\t\t*q = 1;\n\t\tq[1] = 2;\n\t}\n"
            "\t*q = 3;")
    assert _derefs(extractor, body) == [("*q = 3;", "write", "*p")]


def test_iomem_local_and_plain_local_of_the_same_name_in_two_functions(
        extractor: Extractor) -> None:
    src = ("static void a(void)\n{\n\tu32 *p = buf;\n\n\t*p = 1;\n}\n"
           "static void b(void __iomem *base)\n{\n\tu32 __iomem *p = base;\n\n\t*p = 1;\n}\n"
           "static void c(u32 *p)\n{\n\t*p = 1;\n}\n")
    facts = _facts(extractor, src)
    assert [(d[0], facts.scopes[d[2]].name) for d in facts.derefs] == [(11, "b")]


def test_globals_are_tracked_in_every_function(extractor: Extractor) -> None:
    src = ("static u8 __iomem *win, *win2;\nstatic struct r __iomem *hw;\n"
           "static void a(void)\n{\n\twin[4] = 1;\n\t*win2 = 2;\n}\n"
           "static int b(void)\n{\n\treturn hw->status;\n}\n")
    facts = _facts(extractor, src)
    assert [(d[0], d[3], d[4], facts.scopes[d[2]].name) for d in facts.derefs] == [
        (5, "write", "p[i]", "a"), (6, "write", "*p", "a"), (10, "read", "p->field", "b")]


def test_struct_fields_of_the_same_file(extractor: Extractor) -> None:
    head = ("struct priv {\n\tu32 __iomem *doorbell;\n\tstruct regs __iomem *hw;\n"
            "\tvoid __iomem *bars[2];\n\tint irq;\n};\n")
    body = ("\t*p->doorbell = 1;\n\tp->doorbell[2] = 1;\n\tp->hw->ctrl = 1;\n"
            "\tv = *(u32 *)p->bars[1];\n\twritel(1, p->doorbell);\n\tp->irq = 3;\n"
            "\tp->bars[0] = base;")
    assert [(a, f) for _, a, f in _derefs(extractor, body, head)] == [
        ("write", "*p"), ("write", "p[i]"), ("write", "p->field"), ("read", "*p")]


def test_a_field_name_also_declared_without_iomem_is_not_tracked(extractor: Extractor) -> None:
    head = ("struct ring {\n\tu32 *doorbell;\n};\n"
            "struct port {\n\tu32 __iomem *doorbell;\n\tu32 __iomem *kick;\n};\n")
    body = "\t*x->doorbell = 1;\n\t*x->kick = 1;"
    assert _derefs(extractor, body, head) == [("*x->kick = 1;", "write", "*p")]


def test_function_returning_an_iomem_pointer(extractor: Extractor) -> None:
    src = ("static u32 __iomem *reg(struct x *x, int n)\n{\n\treturn x->base + n;\n}\n"
           "static void f(struct x *x)\n{\n\t*reg(x, 4) = 1;\n\twritel(1, reg(x, 8));\n}\n")
    assert [(d[0], d[3]) for d in _facts(extractor, src).derefs] == [(7, "write")]


def test_macro_bodies_cast_form_only(extractor: Extractor) -> None:
    src = ("#define REG(x)\t(*(volatile u32 __iomem *)(base + (x)))\n"
           "#define POKE(a, v)\t*(u32 __iomem *)(a) = (v)\n"
           "#define BUMP(a)\t*(u32 __iomem *)a |= 1\n"
           "#define PTR(a)\t((u32 __iomem *)(a))\n")
    facts = _facts(extractor, src)
    got = [(d[0], d[1], facts.scopes[d[2]].name, d[3]) for d in facts.derefs]
    assert got == [(1, 17, "REG", "read"), (2, 20, "POKE", "write"), (3, 17, "BUMP", "both")]


def test_inactive_blocks(extractor: Extractor) -> None:
    src = ("static void f(u32 __iomem *q)\n{\n#if 0\n\t*q = 1;\n#else\n\tq[1] = 2;\n#endif\n"
           "}\n#if 0\nstatic void g(u8 __iomem *w)\n{\n\tw[0] = 1;\n}\n#endif\n")
    facts = _facts(extractor, src)
    assert [(d[0], d[4], d[5]) for d in facts.derefs] == [
        (4, "*p", False), (6, "p[i]", True), (12, "p[i]", False)]
    assert facts.scopes[facts.derefs[0][2]].name == "f"


def test_positions_are_one_based_at_the_expression_start(extractor: Extractor) -> None:
    facts = _facts(extractor, "void f(u32 __iomem *q, struct r __iomem *r)\n{\n"
                              "\tv = *q;\n\tv = r->x;\n}\n")
    assert [(d[0], d[1]) for d in facts.derefs] == [(3, 6), (4, 6)]


def test_no_iomem_no_derefs(extractor: Extractor) -> None:
    assert _facts(extractor, "void f(u32 *q)\n{\n\t*q = 1;\n}\n").derefs == ()


def test_files_naming_iomem_are_parsed_without_an_accessor() -> None:
    assert mentions_iomem(b"u32 __iomem *p;") and not mentions_iomem(b"u32 *p;")
    _init_worker(ExtractSpec(names=frozenset({"readl"})))
    src = b"void f(u32 __iomem *q)\n{\n\t*q = 1;\n}\n"
    facts = facts_for_bytes("drivers/x/x.c", src)
    assert facts.parsed and facts.derefs == ((3, 2, 0, "write", "*p", True),)
    assert not facts_for_bytes("drivers/x/y.c", b"void f(u32 *q)\n{\n\t*q = 1;\n}\n").parsed


def test_deref_sites(extractor: Extractor) -> None:
    src = (TREE / "drivers/deref/dr_forms.c").read_bytes()
    facts = extractor.extract("drivers/deref/dr_forms.c", "d", src)
    sites = list(deref_sites([facts]))
    assert len(sites) == len(facts.derefs) >= 30
    first = sites[0]
    assert (first.kind, first.accessor, first.family, first.width) == (
        "deref", "deref", "deref", None)
    assert {s.callee for s in sites} == {"*p", "p->field", "p[i]"}
    assert {s.function for s in sites if s.active} >= {"dr_params", "DR_REG", "dr_casts"}
    assert [s.function for s in sites if not s.active] == ["dr_dead"]


def test_asm_memory_operands_are_not_derefs(extractor: Extractor) -> None:
    body = '\tasm volatile("movdir64b (%1), %0" : "+m" (*q) : "r" (src) : "memory");'
    assert _derefs(extractor, body) == []


@pytest.mark.parametrize("stmt", [
    "core->shm->tx_prepare(m);",                        # a call through a member: not MMIO
    "iop_data = (u32 __iomem *)r->data;",               # an array of the MMIO struct, decayed
    "fifo = r->fifo;",                                  # stored in an __iomem pointer
    "take_regs(dev, r->fifo);",                         # a parameter of the file, __iomem
    "take_words(dev, r->fifo);",                        # or a plain pointer: an array's address
    "take_bytes(r->fifo, 4);",                          # (a prototype without names)
    "SET_BITS(r->ctrl, 1, 0);",                         # a macro of the file that takes &addr
])
def test_addresses_of_mmio_arrays_and_members(extractor: Extractor, stmt: str) -> None:
    head = ("struct ops { void (*tx_prepare)(int); };\n"
            "struct chan { struct ops __iomem *shm; };\n"
            "static int take_regs(struct device *dev, u32 __iomem *regs);\n"
            "static void take_words(struct device *dev, u32 *words)\n{\n}\n"
            "void take_bytes(u8 *, int);\n"
            "#define SET_BITS(addr, or, nand) writel((readl(&addr) | or) & ~nand, &(addr))\n")
    body = "\tu32 __iomem *fifo = r->fifo;\n\tvoid __iomem *iop_data;\n\n\t" + stmt
    assert _derefs(extractor, body, head) == []


def test_a_cast_array_address_is_still_a_pointer_to_mmio(extractor: Extractor) -> None:
    assert _derefs(extractor, "\tv = *(u32 *)r->data;") == [("v = *(u32 *)r->data;", "read", "*p")]
    assert _derefs(extractor, "\tv = r->ctrl + 1;") == [("v = r->ctrl + 1;", "read", "p->field")]
    assert _derefs(extractor, "\tshow(dev, r->ctrl);") == [("show(dev, r->ctrl);", "read",
                                                            "p->field")]


def test_asm_operands_after_error_recovery(extractor: Extractor) -> None:
    body = ('\tasm volatile(".byte 0xf3" CC_SET(z) : CC_OUT(z) (zf), "+m" (*q) : "m" (*src));\n'
            '\t*q = 1;')
    assert _derefs(extractor, body) == [("*q = 1;", "write", "*p")]


def test_derefs_inside_an_accessor_definition_are_its_implementation(
        extractor: Extractor) -> None:
    """asm-generic style `__raw_readl` bodies dereference __iomem by design: not a finding."""
    src = ("static inline u32 __raw_readl(const volatile void __iomem *addr)\n{\n"
           "\treturn *(const volatile u32 __force *)addr;\n}\n"
           "static u32 peek(u32 __iomem *q)\n{\n\treturn *q;\n}\n")
    facts = _facts(extractor, src)
    assert len(facts.derefs) == 2  # the facts keep both
    names = load_catalogue().names()
    sites = list(deref_sites([facts], names))
    assert [(s.function, s.line) for s in sites] == [("peek", 7)]
