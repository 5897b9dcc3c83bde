"""clang/extract.py on the precise fixture (tests/fixtures/precise): the facts contract after
macro expansion, derefs from types, skipped blocks, function pointers, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmioscan.cfront.extract import Extractor
from mmioscan.cfront.flows import CONTEXT_USE
from mmioscan.clang.extract import NOT_BUILT, ClangExtractor
from mmioscan.clang.flags import SHIM, clang_args
from mmioscan.core.model import FileFacts
from mmioscan.core.ruleset import load_rules

from .precise_helpers import BUILT, PRECISE, gcc_words

DEMO = "drivers/demo/demo.c"


@pytest.fixture(scope="module")
def extractor(tmp_path_factory: pytest.TempPathFactory) -> ClangExtractor:
    shim = tmp_path_factory.mktemp("shim") / "iomem-shim.h"
    shim.write_text(SHIM)
    rules = load_rules()
    flags = [(rel, clang_args(gcc_words(PRECISE, rel)[:-1], PRECISE, shim)) for rel in BUILT]
    return ClangExtractor(rules.catalogue.names() | rules.regmap.init,
                          dict(rules.hot.registrations), rules.hot.fields, str(PRECISE), flags)


@pytest.fixture(scope="module")
def demo(extractor: ClangExtractor) -> FileFacts:
    return extractor.extract(DEMO, "digest", (PRECISE / DEMO).read_bytes())


def _line(text: str) -> int:
    lines = (PRECISE / DEMO).read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def _calls(facts: FileFacts, name: str) -> list[tuple[int, int, bool]]:
    return [(c[1], c[2], c[4]) for c in facts.calls if c[0] == name]


def test_the_facts_say_which_engine_made_them(demo: FileFacts) -> None:
    assert demo.engine == "clang" and demo.parsed and demo.error_nodes == 0
    assert demo.problems == ()
    assert [s.name for s in demo.scopes] == ["demo_irq", "demo_xmit", "demo_probe"]
    probe = demo.scopes[2]
    assert not probe.static and demo.scopes[0].static
    assert (probe.line, probe.end_line) == (_line("int demo_probe("), _line("return v +") + 1)


def test_calls_after_macro_expansion_at_their_spelling(demo: FileFacts) -> None:
    writes = [line for line, _, active in _calls(demo, "writel") if active]
    # DEMO_WR (a header macro) and DEMO_ALIAS (an object-like alias) expand to writel calls,
    # placed at the invocation; the written call is where it is written.
    assert writes == [_line("DEMO_WR(hw, 4, v)"), _line("DEMO_ALIAS(v, hw->base)"),
                      _line("writel(v, &hw->regs->ctrl)")]
    reads = [line for line, _, _ in _calls(demo, "readl")]
    assert reads == [_line("u32 v = readl(hw->base)"), _line("DEMO_RD_LOCAL(hw, 8)")]
    assert "DEMO_WR" not in {c[0] for c in demo.calls}  # macros are expanded, not called


def test_a_catalogued_macro_is_one_call_of_its_own_name(demo: FileFacts) -> None:
    line = _line("readl_poll_timeout(hw->base")
    assert _calls(demo, "readl_poll_timeout") == [(line, 2, True)]
    assert not [c for c in demo.calls if c[1] == line and c[0] != "readl_poll_timeout"]


def test_inline_wrappers_are_calls_and_values_are_references(demo: FileFacts) -> None:
    assert [line for line, _, _ in _calls(demo, "demo_rd")] == [_line("demo_rd(hw, 12)")]
    assert [(r[0], r[1]) for r in demo.references] == [("ioread32", _line(".rd = ioread32"))]


def test_a_block_the_config_skips_is_inactive(demo: FileFacts) -> None:
    line = _line("writel(0, hw->base)")
    assert (line, 2, False) in _calls(demo, "writel")
    assert any(first < line < last for first, last in demo.skipped)


def test_derefs_come_from_types_and_carry_through_member_access(demo: FileFacts) -> None:
    found = {(d[0], d[3], d[4]) for d in demo.derefs}
    assert found == {
        (_line("hw->regs->ctrl = v;"), "write", "p->field"),
        (_line("v = hw->regs->fifo[2]"), "read", "p->field"),
        (_line("hw->regs->sub.lo |= 1"), "both", "p->field"),
        (_line("*(&hw->regs->ctrl + 1) = 0"), "write", "*p"),  # the tag clang loses on &
    }  # not: writel(v, &hw->regs->ctrl), sizeof(hw->regs->ctrl), *plain = 1


def test_function_pointers_with_struct_types_and_hot_roots(demo: FileFacts) -> None:
    stored = {(s, f, fn) for s, f, fn, _ in demo.fnptrs}
    assert stored == {("struct demo_ops", "rd", "ioread32"), ("struct demo_ops", "irq", "demo_irq"),
                      ("struct demo_ops", "ndo_start_xmit", "demo_xmit")}
    assert ("struct demo_ops", "irq", "demo_irq", _line("ops->irq = demo_irq")) in demo.fnptrs
    roots = {(fn, how) for fn, how, _ in demo.roots}
    # the threaded handler is installed by request_threaded_irq[2], as the fast engine says
    assert roots == {("demo_xmit", ".ndo_start_xmit"), ("demo_irq", "request_irq"),
                     ("demo_irq", "request_threaded_irq[2]")}
    fast = Extractor(set(), dict(load_rules().hot.registrations), load_rules().hot.fields)
    assert {(fn, how) for fn, how, _ in fast.extract(
        DEMO, "d", (PRECISE / DEMO).read_bytes()).roots} == roots


@pytest.mark.parametrize(("struct", "kept"), [("demo_ops", True), ("net_device_ops", False)])
def test_hot_fields_count_only_in_their_ops_struct(struct: str, kept: bool) -> None:
    """Both engines drop `.ndo_start_xmit = fn` of a struct the rule does not name."""
    rules = load_rules()
    shim = PRECISE / "include" / "linux" / "io.h"  # any existing header: no shim needed here
    flags = [(rel, clang_args(gcc_words(PRECISE, rel)[:-1], PRECISE, shim)) for rel in BUILT]
    clang = ClangExtractor(rules.catalogue.names(), dict(rules.hot.registrations),
                           rules.hot.fields, str(PRECISE), flags,
                           hot_structs={"ndo_start_xmit": struct})
    fast = Extractor(set(), dict(rules.hot.registrations), rules.hot.fields,
                     hot_structs={"ndo_start_xmit": struct})
    data = (PRECISE / DEMO).read_bytes()
    for facts in (clang.extract(DEMO, "d", data), fast.extract(DEMO, "d", data)):
        assert (("demo_xmit", ".ndo_start_xmit") in {(f, h) for f, h, _ in facts.roots}) == kept


def test_headers_the_parse_read_are_recorded(demo: FileFacts) -> None:
    read = {Path(p).name for p, _, _ in demo.depends}
    assert {"io.h", "demo.h", "iomem-shim.h"} <= read
    assert all(Path(p).is_absolute() and size > 0 for p, size, _ in demo.depends)


def test_clang_errors_are_a_recorded_problem(extractor: ClangExtractor) -> None:
    rel = "drivers/demo/demo_bad.c"
    facts = extractor.extract(rel, "d", (PRECISE / rel).read_bytes())
    assert facts.parsed and facts.error_nodes == 1 and facts.scopes[0].has_error
    assert len(facts.problems) == 1
    assert facts.problems[0].message.startswith("clang: 1 error(s), first: "
                                                f"{rel}:5: expected expression")


def test_a_file_the_config_does_not_build_is_listed_not_parsed(
        extractor: ClangExtractor) -> None:
    rel = "drivers/demo/off.c"
    facts = extractor.extract(rel, "d", (PRECISE / rel).read_bytes())
    assert not facts.parsed and facts.engine == "clang"
    assert [p.message for p in facts.problems] == [NOT_BUILT]
    assert facts.includes == ("<linux/io.h>",)


def test_headers_go_to_the_fast_engine(extractor: ClangExtractor) -> None:
    rel = "drivers/demo/demo.h"
    facts = extractor.extract(rel, "d", (PRECISE / rel).read_bytes())
    assert facts.engine == "fast" and facts.parsed
    assert {s.name for s in facts.scopes} >= {"demo_rd", "DEMO_WR"}
    assert extractor.prefiltered(rel) and not extractor.prefiltered(DEMO)


def test_the_parse_reads_the_bytes_given_not_the_file(extractor: ClangExtractor) -> None:
    data = (PRECISE / DEMO).read_bytes().replace(b"u32 v = readl(hw->base);",
                                                 b"u32 v = 0;              ")
    facts = extractor.extract(DEMO, "other", data)
    assert _line("u32 v = readl(hw->base)") not in [c[1] for c in facts.calls]


def test_each_engine_keys_its_own_facts() -> None:
    """The fast engine's cache key never changes with the clang engine's code (the runner
    imports it by name); the clang engine's key covers the fast one it uses for headers."""
    from mmioscan.core.sources import closure

    fast = {p.relative_to(PRECISE.parents[2] / "mmioscan").as_posix()
            for p in closure("mmioscan.facts.runner")}
    assert not any(n.startswith("clang/") for n in fast)
    precise = {p.relative_to(PRECISE.parents[2] / "mmioscan").as_posix()
               for p in closure("mmioscan.clang.extract")}
    assert {"clang/extract.py", "clang/derefs.py", "cfront/extract.py"} <= precise


def test_text_facts_and_flows_come_from_the_fast_reading(extractor: ClangExtractor,
                                                         demo: FileFacts) -> None:
    fast = extractor.fast.extract(DEMO, "digest", (PRECISE / DEMO).read_bytes())
    assert demo.exports == fast.exports and demo.regmap_uses == fast.regmap_uses

    def by_name(facts: FileFacts) -> dict[str, tuple[int, ...]]:
        return {facts.scopes[i].name: sel for i, sel in facts.selectors
                if facts.scopes[i].kind == "function"}

    assert by_name(demo) == by_name(fast)
    moved = {(demo.scopes[f[0]].name, *f[1:]) for f in demo.flows}
    assert {(fast.scopes[f[0]].name, *f[1:]) for f in fast.flows
            if fast.scopes[f[0]].kind == "function"} <= moved
    # DEMO_WR(hw, 4, v) expands to writel((v), (hw)->base + (4)): writel's first argument is
    # written in the macro's third, its second in the first two (hw, used as a context)
    line = _line("DEMO_WR(hw, 4, v)")
    wr = next(f for f in fast.flows if f[1] == "DEMO_WR")
    expanded = next(f for f in demo.flows if f[1] == "writel" and f[2] == line)
    assert expanded[4] == (wr[4][2], tuple(sorted(set(wr[4][0]) | set(wr[4][1]))))
    assert expanded[4][1] == (CONTEXT_USE,)
