"""extract.Extractor: scopes (functions and macros), calls and references of one file."""

from __future__ import annotations

import pytest

from mmioscan.cfront.extract import Extractor
from mmioscan.core.catalogue import load_catalogue
from mmioscan.core.model import Call, FileFacts, Scope


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor(load_catalogue().names())


def _facts(extractor: Extractor, src: str) -> FileFacts:
    return extractor.extract("drivers/x/x.c", "digest", src.encode())


def _scope(facts: FileFacts, name: str) -> Scope:
    (scope,) = [s for s in facts.scopes if s.name == name]
    return scope


def _owner(facts: FileFacts, call: Call) -> str | None:
    return facts.scopes[call.scope].name if call.scope >= 0 else None


def _calls(facts: FileFacts, name: str) -> list[Call]:
    return [c for c in facts.call_records() if c.name == name]


# -- functions -------------------------------------------------------------------------


def test_file_facts_header_fields(extractor: Extractor) -> None:
    src = "int f(void)\n{\n\treturn 0;\n}\n"
    facts = _facts(extractor, src)
    assert (facts.path, facts.digest, facts.size, facts.parsed) == (
        "drivers/x/x.c", "digest", len(src), True)
    assert facts.error_nodes == 0 and facts.problems == ()


def test_function_names_and_lines(extractor: Extractor) -> None:
    src = ("static u32 foo_read(void __iomem *b)\n{\n\treturn readl(b);\n}\n"
           "\n"
           "int\nfoo_probe(struct device *dev)\n{\n\treturn 0;\n}\n")
    facts = _facts(extractor, src)
    read = _scope(facts, "foo_read")
    assert (read.kind, read.line, read.end_line, read.static, read.inline) == (
        "function", 1, 4, True, False)
    probe = _scope(facts, "foo_probe")
    assert (probe.kind, probe.line, probe.end_line, probe.static) == ("function", 6, 10, False)


@pytest.mark.parametrize(("decl", "name"), [
    ("static void __iomem *foo_map(struct foo *f)", "foo_map"),
    ("static u32 **foo_table(void)", "foo_table"),
    ("const char *const *foo_names(int n)", "foo_names"),
    ("static int (*foo_pick(int which))(void __iomem *)", "foo_pick"),
    ("static struct foo_dev *__init foo_alloc(void)", "foo_alloc"),
    ("static unsigned long long foo_ull(void)", "foo_ull"),
    ("static int __must_check foo_checked(void)", "foo_checked"),
    ("static void foo_locked(struct foo *f) __acquires(&f->lock)", "foo_locked"),
])
def test_function_name_through_declarators(extractor: Extractor, decl: str, name: str) -> None:
    facts = _facts(extractor, f"{decl}\n{{\n\treadl(0);\n}}\n")
    functions = [s.name for s in facts.scopes if s.kind == "function"]
    assert functions == [name]
    (call,) = _calls(facts, "readl")
    assert _owner(facts, call) == name


def test_function_named_like_an_iterator_keeps_its_name(extractor: Extractor) -> None:
    src = ("int foo_for_each_port(struct foo *f, int (*cb)(void __iomem *))\n{\n"
           "\treturn cb(f->regs) + readl(f->regs);\n}\n")
    facts = _facts(extractor, src)
    assert [s.name for s in facts.scopes if s.kind == "function"] == ["foo_for_each_port"]
    (call,) = _calls(facts, "readl")
    assert _owner(facts, call) == "foo_for_each_port"


def test_for_each_function_called_as_a_value_stays_a_callee(extractor: Extractor) -> None:
    """Only iterator macros followed by a loop body are loops; `ret = x_for_each(...)` is a call."""
    src = ("static int foo_count(struct device *dev)\n{\n"
           "\tint ret = device_for_each_child(dev, NULL, foo_cb);\n"
           "\twritel(1, foo_base);\n"
           "\treturn ret + bus_for_each_dev(&foo_bus, NULL, NULL, foo_cb);\n}\n")
    scope = _scope(_facts(extractor, src), "foo_count")
    assert scope.callees == ("bus_for_each_dev", "device_for_each_child", "writel")


def test_iterator_macro_is_not_a_callee(extractor: Extractor) -> None:
    src = ("static void foo_all(struct list_head *head)\n{\n\tstruct foo *f;\n\n"
           "\tlist_for_each_entry(f, head, node) {\n\t\twritel(0, f->regs);\n\t}\n}\n")
    facts = _facts(extractor, src)
    (call,) = _calls(facts, "writel")
    assert (call.line, _owner(facts, call)) == (6, "foo_all")
    assert "while" not in _scope(facts, "foo_all").callees


@pytest.mark.parametrize(("spec", "static", "inline"), [
    ("", False, False),
    ("static", True, False),
    ("static inline", True, True),
    ("inline", False, True),
    ("static __always_inline", True, True),
    ("static __inline__", True, True),
    ("static noinline", True, False),
    ("extern inline", False, True),
])
def test_static_and_inline_flags(extractor: Extractor, spec: str, static: bool,
                                 inline: bool) -> None:
    facts = _facts(extractor, f"{spec} u32 foo_get(void __iomem *b)\n{{\n\treturn readl(b);\n}}\n")
    scope = _scope(facts, "foo_get")
    assert (scope.static, scope.inline) == (static, inline)


def test_callees_are_unique_sorted_and_include_helpers(extractor: Extractor) -> None:
    src = ("static void foo(struct foo *f)\n{\n"
           "\twritel(1, f->b);\n\tudelay(10);\n\twritel(0, f->b);\n"
           "\tf->ops->readl(f);\n\tbar_helper(f);\n"
           "#if 0\n\tioread32(f->b);\n\told_helper(f);\n#endif\n}\n")
    scope = _scope(_facts(extractor, src), "foo")
    assert scope.callees == ("bar_helper", "udelay", "writel")
    assert scope.values == ()


def test_values_are_catalogued_names_used_as_values(extractor: Extractor) -> None:
    src = ("static void foo(struct foo *f)\n{\n"
           "\tf->rd = ioread32;\n\tregister_op(f, writel, my_writel);\n}\n")
    scope = _scope(_facts(extractor, src), "foo")
    assert scope.values == ("ioread32", "writel")


# -- calls and references ----------------------------------------------------------------


def test_call_positions_are_one_based_on_the_callee(extractor: Extractor) -> None:
    src = "void f(void __iomem *b)\n{\n\tu32 v = readl\n\t\t(b);\n\twritel (v, b);\n}\n"
    facts = _facts(extractor, src)
    (rd,) = _calls(facts, "readl")
    (wr,) = _calls(facts, "writel")
    assert (rd.line, rd.column, rd.active, _owner(facts, rd)) == (3, 10, True, "f")
    assert (wr.line, wr.column) == (5, 2)


def test_calls_are_in_source_order(extractor: Extractor) -> None:
    src = "void f(void *b)\n{\n\tb_one(); a_two(); c_three();\n\td_four();\n}\n"
    facts = _facts(extractor, src)
    assert [c.name for c in facts.call_records()] == ["b_one", "a_two", "c_three", "d_four"]


def test_member_calls_are_not_calls_of_the_name(extractor: Extractor) -> None:
    src = ("void f(struct hw *hw, struct io x)\n{\n"
           "\thw->ops->readl(hw, 4);\n\tx.writel(1);\n\t(*hw->inb)(2);\n}\n")
    facts = _facts(extractor, src)
    names = {c.name for c in facts.call_records()} | {r.name for r in facts.reference_records()}
    assert not names & {"readl", "writel", "inb"}


@pytest.mark.parametrize("line", [
    "static const struct ops o = { .read = ioread32 };",
    "static u32 (*rd)(const void __iomem *) = ioread32;",
    "void f(void) { g(ioread32); }",
    "void f(void) { fn = ioread32; }",
    "void f(void) { return &ioread32; }",
    "void f(int be) { fn = be ? ioread32be : ioread32; }",
])
def test_references(extractor: Extractor, line: str) -> None:
    facts = _facts(extractor, line + "\n")
    assert "ioread32" in {r.name for r in facts.reference_records()}
    assert "ioread32" not in {c.name for c in facts.call_records()}


@pytest.mark.parametrize("line", [
    "u32 ioread32(const void __iomem *addr);",
    "extern void iowrite32(u32 v, void __iomem *addr);",
    "#define ioread32 ioread32",
    "struct ops { u32 (*ioread32)(void __iomem *a); };",
    "void f(struct ops *o) { o->ioread32 = NULL; }",
    "/* ioread32 */ int x;",
    'const char *s = "ioread32";',
])
def test_not_uses(extractor: Extractor, line: str) -> None:
    facts = _facts(extractor, line + "\n")
    used = {r.name for r in facts.reference_records()} | {c.name for c in facts.call_records()}
    assert "ioread32" not in used


def test_call_through_parenthesised_name_is_a_call(extractor: Extractor) -> None:
    """`(readl)(addr)` calls the function readl, bypassing a function-like macro."""
    facts = _facts(extractor, "u32 f(void __iomem *b)\n{\n\treturn (readl)(b);\n}\n")
    assert [c.name for c in facts.call_records()] == ["readl"]
    assert not facts.reference_records()


def test_file_scope_use_has_no_scope(extractor: Extractor) -> None:
    facts = _facts(extractor, "static struct ops o = { .write = iowrite32 };\n")
    (ref,) = facts.reference_records()
    column = "static struct ops o = { .write = iowrite32 };".index("iowrite32") + 1
    assert (ref.name, ref.scope, ref.line, ref.column) == ("iowrite32", -1, 1, column)


# -- #if 0 ---------------------------------------------------------------------------------


def test_dead_code_keeps_catalogued_calls_as_inactive(extractor: Extractor) -> None:
    src = ("void f(void __iomem *b)\n{\n#if 0\n\twritel(1, b);\n\tfoo_helper(b);\n"
           "\tset_reader(readl);\n#else\n\twritel(2, b);\n#endif\n}\n")
    facts = _facts(extractor, src)
    dead = [c for c in facts.call_records() if not c.active]
    assert [(c.name, c.line, c.column, c.scope) for c in dead] == [("writel", 4, 2, -1)]
    assert [(r.name, r.line, r.active) for r in facts.reference_records()] == [("readl", 6, False)]
    live = [c for c in facts.call_records() if c.active and c.name == "writel"]
    assert [(c.line, _owner(facts, c)) for c in live] == [(8, "f")]
    assert "foo_helper" not in {c.name for c in facts.call_records()}


# -- macros --------------------------------------------------------------------------------


def test_macro_scopes_params_and_callees(extractor: Extractor) -> None:
    src = ("#define FOO_RD(fd, reg) readl((fd)->base + (reg))\n"
           "#define FOO_BASE 0x1000\n"
           "#define FOO_LOG(fmt, ...) pr_info(fmt, ##__VA_ARGS__)\n"
           "#define FOO_RMW(a, v) do { \\\n"
           "\tu32 t = readl(a); \\\n"
           "\twritel(t | (v), a); \\\n"
           "} while (0)\n")
    facts = _facts(extractor, src)
    rd = _scope(facts, "FOO_RD")
    assert (rd.kind, rd.line, rd.end_line, rd.params, rd.callees) == (
        "macro", 1, 1, ("fd", "reg"), ("readl",))
    base = _scope(facts, "FOO_BASE")
    assert (base.kind, base.params, base.callees) == ("object-macro", (), ())
    log = _scope(facts, "FOO_LOG")
    assert log.params[0] == "fmt" and log.callees == ("pr_info",)
    rmw = _scope(facts, "FOO_RMW")
    assert (rmw.line, rmw.end_line) == (4, 7)
    assert {"readl", "writel"} <= set(rmw.callees)
    positions = {(c.name, c.line, c.column) for c in facts.call_records() if c.scope >= 0
                 and facts.scopes[c.scope].name == "FOO_RMW" and c.name in ("readl", "writel")}
    assert positions == {("readl", 5, 10), ("writel", 6, 2)}


def test_macro_callees_are_not_c_keywords(extractor: Extractor) -> None:
    src = ("#define FOO_WAIT(a) do { \\\n"
           "\tif (readl(a) & 1) \\\n"
           "\t\twhile (!(readl(a) & 2)) cpu_relax(); \\\n"
           "\tfor (;;) break; \\\n"
           "\tswitch (sizeof(a)) { default: return (void)0; } \\\n"
           "} while (0)\n")
    scope = _scope(_facts(extractor, src), "FOO_WAIT")
    assert scope.callees == ("cpu_relax", "readl")


def test_macro_parameters_members_and_pasting_are_not_calls(extractor: Extractor) -> None:
    src = ("#define CALL(readl, a) readl(a)\n"
           "#define OP(o, a) (o)->writel(a)\n"
           "#define GEN(sfx, a) read##sfx(a)\n"
           "#define NAME(x) #x\n")
    facts = _facts(extractor, src)
    names = {c.name for c in facts.call_records()} | {r.name for r in facts.reference_records()}
    assert not names & {"readl", "writel", "read", "readb"}


def test_macro_body_comment_before_continuation_keeps_the_macro(extractor: Extractor) -> None:
    src = ("#define FOO_PULSE(b) do { \\\n"
           "\twritel(1, (b)); /* assert */ \\\n"
           "\twritel(0, (b)); /* release */ \\\n"
           "} while (0)\n"
           "static void f(void __iomem *b)\n{\n\tFOO_PULSE(b);\n}\n")
    facts = _facts(extractor, src)
    writes = [(c.line, _owner(facts, c)) for c in _calls(facts, "writel")]
    assert writes == [(2, "FOO_PULSE"), (3, "FOO_PULSE")]
    assert [s.name for s in facts.scopes if s.kind == "function"] == ["f"]
    assert facts.error_nodes == 0


# -- broken code ---------------------------------------------------------------------------


def test_syntax_errors_are_counted_and_reported(extractor: Extractor) -> None:
    src = "void f(void __iomem *b)\n{\n\twritel(1, b) +;\n\t} }\n"
    facts = _facts(extractor, src)
    assert facts.error_nodes > 0
    assert any("syntax error" in p.message for p in facts.problems)
    assert all(p.path == "drivers/x/x.c" for p in facts.problems)


def test_sites_survive_a_broken_neighbour(extractor: Extractor) -> None:
    src = ("static void broken(void)\n{\n\tint x = ;\n}\n"
           "static u32 fine(void __iomem *b)\n{\n\treturn readl(b);\n}\n")
    facts = _facts(extractor, src)
    (call,) = _calls(facts, "readl")
    assert (call.line, _owner(facts, call)) == (7, "fine")
