"""preprocess: length-preserving blanking of annotations and of `#if 0` code."""

from __future__ import annotations

import re

import pytest

from mmioscan.cfront.macros import Directives
from mmioscan.cfront.preprocess import (
    Inactive,
    blank_annotations,
    blank_define_comments,
    blank_ranges,
    inactive_ranges,
)

from .helpers import fixture_sources


def _newlines(data: bytes) -> list[int]:
    return [m.start() for m in re.finditer(rb"\n", data)]


def _dead_lines(src: str) -> set[int]:
    """1-based numbers of the lines lying wholly inside an inactive range."""
    data = src.encode()
    ranges = inactive_ranges(data)
    dead: set[int] = set()
    start = 0
    for number, line in enumerate(data.split(b"\n"), start=1):
        end = start + len(line)
        if any(r.start <= start and end <= r.end for r in ranges):
            dead.add(number)
        start = end + 1
    return dead


def _marked(src: str, word: str) -> set[int]:
    return {n for n, line in enumerate(src.split("\n"), start=1) if word in line}


def _check_marks(src: str) -> None:
    """Lines saying `dead` must be inactive; lines saying `live` must not be."""
    dead = _dead_lines(src)
    missed = _marked(src, "dead") - dead
    wrong = _marked(src, "live") & dead
    assert not missed, f"not inactive: lines {sorted(missed)}"
    assert not wrong, f"wrongly inactive: lines {sorted(wrong)}"


# -- blank_annotations -------------------------------------------------------------------


ANNOTATED = b"""static int __init __must_check foo_probe(void __iomem *base)
{
\treturn readl(base);
}
static void foo_lock(struct foo *f) __acquires(&f->lock) __releases(f->other)
{
}
struct foo { u32 data[4] __aligned(sizeof(long)); } __packed;
int foo_printf(const char *fmt, ...) __printf(1, 2);
static u32 foo_cache __read_mostly;
"""


def test_annotations_keep_length_and_newlines() -> None:
    out = blank_annotations(ANNOTATED)
    assert len(out) == len(ANNOTATED)
    assert _newlines(out) == _newlines(ANNOTATED)


@pytest.mark.parametrize("word", [b"__init", b"__must_check", b"__iomem", b"__acquires",
                                  b"__releases", b"__aligned", b"__packed", b"__printf",
                                  b"__read_mostly"])
def test_annotations_are_removed(word: bytes) -> None:
    assert re.search(rb"\b" + word + rb"\b", blank_annotations(ANNOTATED)) is None


def test_annotation_arguments_go_with_the_annotation() -> None:
    out = blank_annotations(ANNOTATED)
    assert b"&f->lock" not in out and b"f->other" not in out
    assert b"sizeof(long)" not in out
    assert b"(1, 2)" not in out
    # ... but the code around them stays byte for byte
    assert b"readl(base)" in out
    assert b"foo_probe(void" in out
    assert b"foo_lock(struct foo *f)" in out
    assert out.count(b"{") == ANNOTATED.count(b"{")
    assert ANNOTATED.count(b")") - out.count(b")") == 5  # the annotation arguments only


def test_identifiers_that_contain_annotation_words_are_kept() -> None:
    src = b"int my__init = foo__iomem + __iomem_base + __initx;\n"
    assert blank_annotations(src) == src


def test_iterator_macro_becomes_a_loop() -> None:
    src = b"\tlist_for_each_entry(pos, &head, node) {\n\t\twritel(0, pos->regs);\n\t}\n"
    out = blank_annotations(src)
    assert len(out) == len(src)
    assert out.startswith(b"\twhile")
    assert b"(pos, &head, node) {" in out  # the arguments stay, as an expression
    assert b"list_for_each_entry" not in out


def test_iterator_macro_definition_is_not_rewritten() -> None:
    src = (b"#define foo_for_each_port(p, d) \\\n"
           b"\tfor ((p) = (d)->ports; (p); (p) = (p)->next)\n")
    assert blank_annotations(src) == src


def test_annotations_inside_strings_keep_the_length() -> None:
    src = b'pr_info("__init done\\n"); x = __init_begin;\n'
    assert len(blank_annotations(src)) == len(src)


@pytest.mark.parametrize("path", fixture_sources(), ids=lambda p: p.name)
def test_fixture_files_keep_length_and_newlines(path: object) -> None:
    data = path.read_bytes()  # type: ignore[attr-defined]
    out = blank_annotations(data)
    assert len(out) == len(data)
    assert _newlines(out) == _newlines(data)


# -- inactive_ranges -----------------------------------------------------------------------


def test_no_conditionals_no_ranges() -> None:
    assert inactive_ranges(b"int x;\n#ifdef CONFIG_FOO\nint y;\n#endif\n") == ()


def test_if0_block() -> None:
    src = "live();\n#if 0\ndead();\ndead();\n#endif\nlive();\n"
    _check_marks(src)
    (r,) = inactive_ranges(src.encode())
    body = src.encode()[r.start:r.end]
    assert body.count(b"dead();") == 2
    assert b"#if" not in body and b"#endif" not in body


@pytest.mark.parametrize("head", ["#if 0", "#if (0)", "# if 0", "  #  if 0", "#if 0 /* old */",
                                  "#if 0 // old", "#if\t0"])
def test_if0_spellings(head: str) -> None:
    _check_marks(f"live();\n{head}\ndead();\n#endif\nlive();\n")


@pytest.mark.parametrize("head", ["#if 00x", "#if 0 && CONFIG_X", "#if defined(CONFIG_X)",
                                  "#ifdef ZERO", "#ifndef ZERO", "#if IS_ENABLED(CONFIG_Y)"])
def test_configuration_dependent_conditions_stay_live(head: str) -> None:
    src = f"{head}\nlive();\n#else\nlive();\n#endif\n"
    assert inactive_ranges(src.encode()) == ()


def test_if0_else_keeps_else_side() -> None:
    _check_marks("#if 0\ndead();\n#else\nlive();\n#endif\nlive();\n")


def test_if1_else_kills_else_side() -> None:
    _check_marks("#if 1\nlive();\n#else\ndead();\ndead();\n#endif\nlive();\n")


def test_if1_elif_else_kills_every_later_branch() -> None:
    _check_marks("#if 1\nlive();\n#elif defined(X)\ndead();\n#else\ndead();\n#endif\nlive();\n")


def test_if0_elif_keeps_elif_side() -> None:
    _check_marks("#if 0\ndead();\n#elif defined(CONFIG_X)\nlive();\n#else\nlive();\n#endif\n")


def test_nested_conditionals_inside_if0() -> None:
    src = ("#if 0\ndead();\n#ifdef CONFIG_A\ndead();\n#else\ndead();\n#endif\ndead();\n#endif\n"
           "live();\n")
    _check_marks(src)
    assert len(inactive_ranges(src.encode())) == 1


def test_if0_nested_inside_live_conditionals() -> None:
    src = ("#ifdef CONFIG_A\nlive();\n#if 0\ndead();\n#endif\nlive();\n#else\nlive();\n"
           "#if 0\ndead();\n#else\nlive();\n#endif\n#endif\nlive();\n")
    _check_marks(src)
    assert len(inactive_ranges(src.encode())) == 2


def test_if0_inside_if1_and_dead_else() -> None:
    _check_marks("#if 1\n#if 0\ndead();\n#endif\nlive();\n#else\n#ifdef B\ndead();\n#endif\n"
                 "dead();\n#endif\nlive();\n")


def test_if0_nested_in_if0_gives_one_range() -> None:
    src = "#if 0\ndead();\n#if 0\ndead();\n#endif\ndead();\n#endif\nlive();\n"
    _check_marks(src)
    assert len(inactive_ranges(src.encode())) == 1


def test_unterminated_if0_runs_to_the_end() -> None:
    src = "live();\n#if 0\ndead();\ndead();"
    _check_marks(src)
    (r,) = inactive_ranges(src.encode())
    assert r.end == len(src)


def test_stray_else_and_endif_do_not_crash() -> None:
    src = "#endif\n#else\nlive();\n#if 0\ndead();\n#endif\n#endif\nlive();\n"
    _check_marks(src)


def test_ranges_are_sorted_and_disjoint() -> None:
    src = "#if 0\na\n#endif\n#if 1\nb\n#else\nc\n#endif\n#if 0\nd\n#else\ne\n#endif\n"
    ranges = inactive_ranges(src.encode())
    assert len(ranges) == 3
    assert list(ranges) == sorted(ranges, key=lambda r: r.start)
    assert all(a.end <= b.start for a, b in zip(ranges, ranges[1:], strict=False))


def test_elif_0_branch_is_dead() -> None:
    """`#elif 0` never compiles, whatever came before it."""
    _check_marks("#ifdef CONFIG_A\nlive();\n#elif 0\ndead();\n#else\nlive();\n#endif\n")


def test_else_after_elif_1_is_dead() -> None:
    """After `#if 0 ... #elif 1` the `#else` side can never compile."""
    _check_marks("#if 0\ndead();\n#elif 1\nlive();\n#else\ndead();\n#endif\nlive();\n")


# -- blank_ranges --------------------------------------------------------------------------


def test_blank_ranges_without_ranges_is_identity() -> None:
    data = b"int x;\n"
    assert blank_ranges(data, ()) is data or blank_ranges(data, ()) == data


def test_blank_ranges_keeps_length_and_newlines_and_blanks_only_the_ranges() -> None:
    src = b"keep();\n#if 0\n\tgone(1);\n\tgone(2);\n#else\nkeep();\n#endif\nkeep();\n"
    ranges = inactive_ranges(src)
    out = blank_ranges(src, ranges)
    assert len(out) == len(src)
    assert _newlines(out) == _newlines(src)
    assert b"gone" not in out
    assert out.count(b"keep();") == 3
    assert b"#if 0" in out and b"#else" in out and b"#endif" in out
    for i, (a, b) in enumerate(zip(src, out, strict=True)):
        inside = any(r.start <= i < r.end for r in ranges)
        if not inside:
            assert a == b
        elif a != ord("\n"):
            assert b == ord(" ")


def test_blank_ranges_explicit_range() -> None:
    assert blank_ranges(b"ab\ncd\nef", (Inactive(1, 5),)) == b"a \n  \nef"


def test_a_comment_in_a_define_does_not_end_it() -> None:
    """C drops comments after joining lines: a define goes on past the newlines of a comment
    in it. The blanked comment keeps a backslash before each of them (lines stay put)."""
    data = b"#define RD(p) { /* first\n * second\n */ readl(p); }\nint x;\n"
    blanked = blank_define_comments(data)
    assert len(blanked) == len(data) and blanked.count(b"\n") == data.count(b"\n")
    spans = Directives(blanked).spans
    assert len(spans) == 1 and blanked[spans[0][0]:spans[0][1]].endswith(b"readl(p); }")
