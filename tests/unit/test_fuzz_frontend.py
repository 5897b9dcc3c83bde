"""Fuzz targets for the C front end (cfront/*, facts_for_bytes) and the .config reader.

Generated input: random bytes and text, kernel-style C assembled from a grammar of fragments
(well-formed and broken), and mutations of the C fixtures. The properties: nothing raises
(and no internal error is swallowed into a problem), every reported position lies inside the
file, the same bytes give the same facts, and an accessor call in plain live code is found.
The .config reader may only raise ConfigError with a one-line `file[:line]: ...` message; the
`#if` evaluators and the constant-expression reader never raise.

Bounded for the normal run: a few hundred examples per target, no database (nothing is
written to the clone). MMIOSCAN_FUZZ_EXAMPLES=5000 runs a longer campaign locally.

Plain regression tests for the bugs the fuzzers found sit at the end of the file.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import tree_sitter as ts
import tree_sitter_c as tsc
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from mmioscan.cfront import callargs, flows, lexer, macros, prefilter, preprocess
from mmioscan.cfront.cnodes import captures
from mmioscan.cfront.extract import Extractor
from mmioscan.core.model import Call, FileFacts
from mmioscan.core.ruleset import load_rules
from mmioscan.facts.runner import ExtractSpec, _init_worker, facts_for_bytes
from mmioscan.kernel.dotconfig import ConfigError, load_config
from mmioscan.kernel.ifconfig import ConfigConditions

from .helpers import FIXTURES

_EXAMPLES = int(os.environ.get("MMIOSCAN_FUZZ_EXAMPLES", "0") or 0)


def _budget(default: int) -> settings:
    return settings(max_examples=_EXAMPLES or default, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture])


_RULES = load_rules()
_SPEC = ExtractSpec(names=_RULES.catalogue.names() | _RULES.regmap.init,
                    registrations=tuple(sorted(_RULES.hot.registrations.items())),
                    hot_fields=_RULES.hot.fields)
_NAMES = sorted(_SPEC.names)
_C_FIXTURES = sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".c", ".h"))
_FIXTURE_BYTES = [p.read_bytes() for p in _C_FIXTURES]


@pytest.fixture(scope="module", autouse=True)
def _worker() -> None:
    _init_worker(_SPEC)


# -- properties of one file's facts ------------------------------------------------------


_IDENT_AT = re.compile(rb"[A-Za-z_$][\w$]*(\s*##)?")


def _check_positions(data: bytes, facts: FileFacts) -> None:
    """Every call, reference, deref and scope lies inside the file; a call or a reference
    stands at its name."""
    lines = data.split(b"\n")
    for kind, records in (("call", facts.calls), ("reference", facts.references)):
        for name, line, column, scope, _active in records:
            assert 1 <= line <= len(lines), (kind, name, line, column)
            assert -1 <= scope < len(facts.scopes), (kind, name, scope)
            if column > len(lines[line - 1]) and _instantiated(lines[line - 1], facts):
                continue  # inside a function a pasting macro's invocation defines there
            assert 1 <= column <= len(lines[line - 1]), (kind, name, line, column)
            word = _IDENT_AT.match(lines[line - 1], column - 1)
            assert word is not None, (kind, name, line, column)
            # A name built by `##` in a macro stands at its first part (`read##sfx(`).
            assert word[0] == name.encode() or (kind == "call" and word[1]), (
                kind, name, line, column, word[0])
    for line, column, scope, access, form, _active in facts.derefs:
        assert 1 <= line <= len(lines), ("deref", line, column)
        assert 1 <= column <= len(lines[line - 1]) or _instantiated(lines[line - 1], facts), (
            "deref", line, column)
        assert -1 <= scope < len(facts.scopes)
        assert access in ("read", "write", "both") and form in ("*p", "p->field", "p[i]")
    for scope in facts.scopes:
        assert 1 <= scope.line <= scope.end_line <= len(lines), scope
    for _fn, _how, line in facts.roots:
        assert 1 <= line <= len(lines)


def _instantiated(line: bytes, facts: FileFacts) -> bool:
    """Does the line invoke one of the file's definition macros? The functions it produces
    have their positions past the line's end (cfront/pasted.py)."""
    return any(re.search(rb"\b" + re.escape(m.encode()) + rb"\s*\(", line)
               for m in facts.definition_macros)


_EXTRACTOR = Extractor(_SPEC.names, dict(_SPEC.registrations), _SPEC.hot_fields)
_OTHER_FILE = (b"#define OTHER(sfx, a) read##sfx(a)\nOTHER(l, p);\n"
               b"static u32 other(u32 __iomem *p)\n{\n\treturn *p + readl(p);\n}\n")


def _check(data: bytes, force: bool = False) -> FileFacts:
    facts = facts_for_bytes("drivers/fuzz/f.c", data, force)
    assert isinstance(facts, FileFacts)
    for problem in facts.problems:
        assert "internal error" not in problem.message, problem.message
    _check_positions(data, facts)
    facts_for_bytes("drivers/fuzz/g.c", _OTHER_FILE, True)  # no state kept between files
    assert facts_for_bytes("drivers/fuzz/f.c", data, force) == facts, "not deterministic"
    if b"\0" in data:  # facts_for_bytes skips binary files: drive the extractor itself
        _check_positions(data, _EXTRACTOR.extract("drivers/fuzz/f.c", "digest", data))
    if facts.parsed:
        text = data.decode("utf-8", "surrogateescape")
        for name, line, column, *_ in facts.calls[:50]:
            args = callargs.call_arguments(text, line, column)
            assert args is None or isinstance(args, list), name
    return facts


# -- grammar of kernel-style C fragments ---------------------------------------------------

_IDENT = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)
_UPPER = st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True)
_ACCESSOR = st.sampled_from(["readl", "writel", "readb", "ioread32", "iowrite32", "inb",
                             "outl", "readq", "memcpy_toio", "memcpy_fromio", "readl_relaxed",
                             "writel_relaxed", "ioread32_rep"])
_NUMBER = st.one_of(st.integers(0, 2**64).map(str), st.integers(0, 2**32).map(hex),
                    st.sampled_from(["0x10", "4", "0", "1UL", "0x1fULL", "077", "1e3"]))
# Comment text: anything but the end of a comment; `#if 0` lines in a comment are not
# directives, and `*/`-free text never ends the comment early.
_COMMENT_TEXT = st.lists(st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\0\r"), max_size=30),
    st.sampled_from(["\n#if 0\n", "\n#endif\n", "\n#else\n", "\n#define readl(x) x\n",
                     "readl(p)", "\"", "'", "/*", "//", "\\\n", "{", "}", "(", "\n"])),
    max_size=6).map("".join).filter(lambda s: "*/" not in s and not s.endswith("*")
                                    and not s.endswith("/"))
# Line-comment text: no newline, and no trailing backslash (which would continue it).
_LINE_COMMENT_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\0\r\n"),
                             max_size=40).map(lambda s: s.rstrip("\\"))
_STRING_TEXT = st.lists(st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\0\r\n\"\\"), max_size=20),
    st.sampled_from(["\\n", "\\\"", "\\\\", "\\x41", "\\0", "readl(", "/*", "*/", "//",
                     "#if 0", "'"])), max_size=5).map("".join)


@st.composite
def _expression(draw: st.DrawFn, depth: int = 0) -> str:
    base = st.one_of(_IDENT, _NUMBER, st.just("base"), st.just("regs->ctrl"),
                     _STRING_TEXT.map(lambda s: f'"{s}"'), st.just("'\\n'"))
    if depth > 2:
        return draw(base)
    choice = draw(st.integers(0, 6))
    sub = _expression(depth + 1)
    if choice == 0:
        return f"{draw(sub)} {draw(st.sampled_from(['+', '-', '|', '&', '<<', '*', '/']))} " \
               f"{draw(sub)}"
    if choice == 1:
        return f"({draw(sub)})"
    if choice == 2:
        args = draw(st.lists(sub, max_size=3))
        return f"{draw(st.one_of(_IDENT, _ACCESSOR))}({', '.join(args)})"
    if choice == 3:
        return f"*{draw(st.sampled_from(['p', 'base', '(u32 *)p']))}"
    if choice == 4:
        return f"{draw(st.sampled_from(['p', 'regs']))}[{draw(sub)}]"
    return draw(base)


@st.composite
def _statement(draw: st.DrawFn, depth: int = 0) -> str:
    expr = _expression()
    choice = draw(st.integers(0, 11))
    if choice == 0 and depth < 2:
        body = "\n".join(draw(st.lists(_statement(depth + 1), max_size=3)))
        return f"if ({draw(expr)}) {{\n{body}\n}} else {{\n}}"
    if choice == 1 and depth < 2:
        body = "\n".join(draw(st.lists(_statement(depth + 1), max_size=3)))
        return f"while ({draw(expr)}) {{\n{body}\n}}"
    if choice == 2:
        return f"u32 __iomem *{draw(_IDENT)} = base + {draw(_NUMBER)};"
    if choice == 3:
        return f"*p = {draw(expr)};"
    if choice == 4:
        return f"{draw(_ACCESSOR)}({draw(expr)}, base + {draw(_NUMBER)});"
    if choice == 5:
        return f"/* {draw(_COMMENT_TEXT)} */"
    if choice == 6:
        return f"// {draw(_LINE_COMMENT_TEXT)}"
    if choice == 7:
        return f"return {draw(expr)};"
    if choice == 8:
        return f"regs->ctrl |= {draw(expr)};"
    if choice == 9:
        return f'pr_info("{draw(_STRING_TEXT)}");'
    if choice == 10 and depth < 2:
        return f"list_for_each_entry(pos, &head, node) {{\n{draw(_statement(depth + 1))}\n}}"
    return f"{draw(expr)};"


@st.composite
def _function(draw: st.DrawFn) -> str:
    name = draw(_IDENT)
    static = draw(st.sampled_from(["", "static ", "static inline ", "static __always_inline "]))
    params = draw(st.sampled_from(["void", "void __iomem *base", "u32 __iomem *p, u32 v",
                                   "struct foo_regs __iomem *regs, u32 __iomem *p",
                                   "struct device *dev"]))
    body = "\n\t".join(draw(st.lists(_statement(), max_size=5)))
    return f"{static}u32 {name}({params})\n{{\n\t{body}\n}}"


@st.composite
def _macro(draw: st.DrawFn) -> str:
    name = draw(_UPPER)
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return f"#define {name} {draw(_NUMBER)}"
    if choice == 1:
        return f"#define {name}(a, b) {draw(_ACCESSOR)}((a), (b))"
    if choice == 2:
        return (f"#define {name}(a, v) do {{\t\\\n\tu32 __t = readl(a);\t\\\n"
                f"\twritel(__t | (v), (a));\t\\\n}} while (0)")
    if choice == 3:
        return f"#define {name}(sfx, addr) read##sfx(addr)\n{name}(l, base);"
    if choice == 4:
        return f"#define {name}(x) /* {draw(_COMMENT_TEXT)} */ (x) \\\n\t+ 1"
    return f"#define {name}(p) (*(volatile u32 __iomem *)(p) = 0)"


@st.composite
def _conditional(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(["#if 0", "#if 1", "#ifdef CONFIG_FOO", "#ifndef __KERNEL__",
                                 "#if defined(CONFIG_X) && IS_ENABLED(CONFIG_Y)",
                                 "#if 0 /* off */", "# if 0"]))
    first = draw(st.one_of(_function(), _macro(), st.just("int x;")))
    tail = draw(st.sampled_from(["", "#else\n", "#elif 1\n", "#elif 0\n"]))
    second = draw(_function()) if tail else ""
    return f"{head}\n{first}\n{tail}{second}\n#endif"


_GOOD_FRAGMENT = st.one_of(
    _function(), _macro(), _conditional(),
    _COMMENT_TEXT.map(lambda s: f"/*{s}*/"), _LINE_COMMENT_TEXT.map(lambda s: f"//{s}"),
    st.just("struct foo_regs {\n\tu32 ctrl;\n\tu32 __iomem *fifo;\n};"),
    st.just("static void __iomem *regs_base;"), st.just("#include <linux/io.h>"),
    st.just("\f"), st.just(""), st.just("static const char *s = \"a\\\"b/*c\";"),
    st.just("static SIMPLE_DEV_PM_OPS(foo_pm, foo_suspend, foo_resume);"),
    st.sampled_from([
        "EXPORT_SYMBOL_GPL(foo_read);", "MODULE_LICENSE(\"GPL\");",
        "module_pci_driver(foo_driver);", "static DEFINE_SPINLOCK(foo_lock);",
        "static const struct pci_device_id foo_ids[] = {\n\t{ PCI_DEVICE(0x8086, 0x1234) },"
        "\n\t{ }\n};",
        "static const struct net_device_ops foo_ops = {\n\t.ndo_open = foo_open,\n"
        "\t.ndo_start_xmit = foo_xmit,\n};",
        "typedef u32 (*foo_rd_fn)(void __iomem *addr);", "enum { FOO_A = 1, FOO_B = FOO_A << 2 };",
        "#define FOO_REG(n) (0x100 + (n) * 4)", "#define readl readl", "#undef writel",
        "#pragma once", "#ifdef CONFIG_FOO\nint foo_x;\n#endif /* CONFIG_FOO */",
        "#if 0\ndon't \"do this\n#error it's off\n#endif",
        "/*\n * A comment block: readl(p) here is prose.\n * #if 0 and #endif in prose\n */",
        "static char foo_q = '\\'', foo_b[] = \"\\\\\";",
        "static const char *foo_url = \"http://example.com/*\";",
        "static inline u32 foo_rd(struct foo *f, u32 reg)\n{\n\treturn readl(f->base + reg);"
        "\n}",
        "static void foo_asm(u32 __iomem *p)\n{\n\tu32 x;\n"
        "\tasm volatile(\"mov %0, %1\" : \"=r\"(x) : \"m\"(*p));\n}",
        "static int foo_sw(int x)\n{\n\tswitch (x) {\n\tcase 1 ... 4:\n\t\tbreak;\n"
        "\tdefault:\n\t\tgoto out;\n\t}\nout:\n\treturn 0;\n}",
        "static void foo_log(int v)\n{\n\tprintk(KERN_INFO \"foo %d\\n\", v);\n}",
        "#define FOO_WAIT(p) \\\n\t({ u32 __v = readl(p); \\\n\t   __v; })",
        "static void __init foo_init(void) __attribute__((unused));",
        "struct foo_regs __iomem *foo_regs_of(struct device *dev);",
        "// a line comment with /* an opening",
    ]),
)

_BROKEN_FRAGMENT = st.one_of(
    st.sampled_from(["{", "}", "(", ")", "/*", "*/", "\"", "'", "#if 0", "#endif", "#else",
                     "#elif", "#if", "#define", "#define X(", "##", "#", "\\", "readl(",
                     "writel(1,", "__iomem", "*(", "->", "#ifdef", "#if defined",
                     "#if (((((", "\0", "\r", "\x0b", "\u2028", "\x85", "\\\r\n"]),
    st.integers(200, 5000).map(lambda n: "a" * n),
    st.integers(1, 300).map(lambda n: "(" * n), st.integers(1, 300).map(lambda n: "{" * n),
    st.integers(1, 100).map(lambda n: "#if 1\n" * n),
    st.text(max_size=40),
)


def _join(fragments: list[str], crlf: bool, final_newline: bool) -> bytes:
    text = "\n".join(fragments) + ("\n" if final_newline else "")
    if crlf:
        text = text.replace("\n", "\r\n")
    return text.encode("utf-8", "surrogatepass")


# -- the C front end ---------------------------------------------------------------------


@_budget(150)
@given(st.binary(max_size=2000), st.booleans())
def test_random_bytes(data: bytes, force: bool) -> None:
    _check(data, force)


@_budget(150)
@given(st.text(max_size=1000), st.booleans())
def test_random_text(text: str, force: bool) -> None:
    _check(text.encode("utf-8", "surrogatepass"), force)


@_budget(120)
@given(st.lists(st.one_of(_GOOD_FRAGMENT, _BROKEN_FRAGMENT), max_size=12),
       st.booleans(), st.booleans())
def test_kernel_style_c(fragments: list[str], crlf: bool, final_newline: bool) -> None:
    _check(_join(fragments, crlf, final_newline), force=True)


_PROBE = "static u32 fuzz_probe(void __iomem *b)\n{\n\treturn readl(b + 4);\n}"


@_budget(120)
@given(st.lists(_GOOD_FRAGMENT, max_size=8), st.integers(0, 8), st.booleans(), st.booleans())
def test_live_readl_is_found(fragments: list[str], at: int, crlf: bool,
                             final_newline: bool) -> None:
    """A readl call in plain live code, between well-formed fragments, is always found."""
    at = min(at, len(fragments))
    before = _join(fragments[:at], crlf, True) if at else b""
    data = before + _join([_PROBE, *fragments[at:]], crlf, final_newline)
    facts = _check(data)
    line = before.count(b"\n") + 3
    expected = Call("readl", line, 9, -1, True)
    found = [c for c in facts.call_records() if c.name == "readl" and c.line == line]
    assert found and found[0].column == expected.column and found[0].active, (
        found, facts.calls)
    assert facts.scopes[found[0].scope].name == "fuzz_probe"


@_budget(150)
@given(st.sampled_from(range(len(_FIXTURE_BYTES))), st.data())
def test_mutated_fixtures(index: int, data: st.DataObject) -> None:
    original = _FIXTURE_BYTES[index]
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        if not mutated:
            break
        op = data.draw(st.integers(0, 3))
        pos = data.draw(st.integers(0, len(mutated) - 1))
        if op == 0:  # flip a byte
            mutated[pos] ^= data.draw(st.integers(1, 255))
        elif op == 1:  # truncate
            del mutated[pos:]
        elif op == 2:  # delete a span
            del mutated[pos:pos + data.draw(st.integers(1, 40))]
        else:  # insert a piece of C
            mutated[pos:pos] = data.draw(st.sampled_from(
                [b"/*", b"*/", b"\"", b"{", b"}", b"#if 0\n", b"\n#endif\n", b"\\\n",
                 b"\r\n", b"\f", b"__iomem ", b"readl(", b"##", b"\xff", b"\xc3"]))
    _check(bytes(mutated), force=data.draw(st.booleans()))


def test_fixtures_unmutated() -> None:
    for data in _FIXTURE_BYTES:
        _check(data, force=True)


# -- the pieces under facts_for_bytes ------------------------------------------------------


_SCANNER = prefilter.NameScanner(_NAMES)
_PIECE_INPUT = st.one_of(
    st.binary(max_size=600),
    st.lists(st.one_of(_GOOD_FRAGMENT, _BROKEN_FRAGMENT), max_size=6).map(
        lambda f: _join(f, False, True)))


@_budget(100)
@given(_PIECE_INPUT)
def test_preprocess_pieces_keep_length_and_newlines(data: bytes) -> None:
    def newlines(b: bytes) -> list[int]:
        return [m.start() for m in re.finditer(rb"\n", b)]

    for rewrite in (preprocess.blank_define_comments, preprocess.blank_annotations):
        out = rewrite(data)
        assert len(out) == len(data) and newlines(out) == newlines(data)
    ranges = preprocess.inactive_ranges(data)
    for r in ranges:
        assert 0 <= r.start <= r.end <= len(data)
    blanked = preprocess.blank_ranges(data, ranges)
    assert len(blanked) == len(data) and newlines(blanked) == newlines(data)


@_budget(100)
@given(_PIECE_INPUT)
def test_lexer_and_macros(data: bytes) -> None:
    for use in lexer.identifiers(data):
        assert 0 <= use.offset < len(data)
        assert data[use.offset:use.offset + len(use.name)] == use.name.encode("ascii", "replace")
    for offset, parts in lexer.pasted_calls(data):
        assert 0 <= offset < len(data) and parts
    directives = macros.Directives(data)
    names = frozenset(_NAMES)
    for macro in directives.definitions(data):
        assert 0 <= macro.start <= macro.body_start <= macro.end <= len(data)
        for offset, _name in macros.expand_pasted(data, macro, directives, names):
            assert 0 <= offset <= len(macro.body)
    brackets = lexer.Brackets(data)
    for open_paren in list(brackets.at)[:40]:
        split = lexer.split_arguments(data, open_paren)
        assert brackets.arguments(open_paren) == (split[0] if split else None)


def _full_tokens(data: bytes) -> list[tuple[int, int, bytes]]:
    """Every token of _TOKEN_RE, blanks and comments left out: what Brackets kept before it
    kept only brackets and commas (the reference its answers are held to)."""
    return [(m.start(), m.end(), m.group()) for m in lexer._TOKEN_RE.finditer(data)
            if m.lastgroup != "skip"]


_BRACKETY = st.lists(st.sampled_from(
    [b"(", b")", b"[", b"]", b"{", b"}", b",", b";", b" ", b"\n", b"/*", b"*/", b"//", b"\"",
     b"'", b"\\", b"\\\n", b"a", b"1e+5", b"0x1.", b"->", b"##", b"#", b"x", b"/"]),
    max_size=60).map(b"".join)


@_budget(150)
@given(st.one_of(_PIECE_INPUT, _BRACKETY))
@example(b"f(a, (b, c)) /* c */ ;")
@example(b"f(a) \"s\" ;")
@example(b"f(a) \\\n ;")
@example(b"f(a) x;")
@example(b"f(a, ')', \"(\") // (\n;")
def test_brackets_keep_what_the_full_token_stream_says(data: bytes) -> None:
    full = _full_tokens(data)
    brackets = lexer.Brackets(data)
    # the brackets and commas are exactly the full stream's
    assert brackets.tokens == [t for t in full if t[2] in (b"(", b")", b"[", b"]", b"{", b"}",
                                                             b",")]
    starts = {t[0]: i for i, t in enumerate(full)}
    for open_paren, index in brackets.at.items():
        split = lexer.split_arguments(data, open_paren)
        assert brackets.arguments(open_paren) == (split[0] if split else None)
        close = brackets.partner.get(index)
        if close is None:
            assert not brackets.semicolon_after(open_paren)
            continue
        after = starts[brackets.tokens[close][0]] + 1
        expected = after < len(full) and full[after][2] == b";"
        assert brackets.semicolon_after(open_paren) == expected


_NUMBERISH = st.lists(st.sampled_from(
    [b"0x1f", b"UL", b"1.5e+3f", b" ", b"(", b"<<", b".", b"x", b"$", b"_", b"9", b"->", b"'a'",
     b"\"s\"", b"/* c */", b"0", b"p", b"#", b"##"]), max_size=12).map(b"".join)


@_budget(150)
@given(st.one_of(_PIECE_INPUT, _NUMBERISH))
@example(b"0x1fUL | (1 << 3)")
@example(b".x")
@example(b"1.5e+3f + $y")
@example(b"0x1f$")
def test_a_text_said_to_hold_no_identifier_lexes_none(data: bytes) -> None:
    if not lexer.may_hold_identifier(data):
        assert list(lexer.identifiers(data)) == []
    if list(lexer.identifiers(data)):
        assert lexer.may_hold_identifier(data)


_TS_LANGUAGE = ts.Language(tsc.language())
_TS_PARSER = ts.Parser(_TS_LANGUAGE)
_FLOW_QUERY = ts.Query(_TS_LANGUAGE, flows.FLOW_QUERY)


@_budget(100)
@given(st.one_of(_PIECE_INPUT, st.sampled_from(_FIXTURE_BYTES)), st.randoms(use_true_random=False))
def test_parameter_flows_found_by_name_are_those_of_every_identifier(
        data: bytes, rnd: random.Random) -> None:
    """FileFlows._deps looks for the tainted names' bytes and checks the node there; reading
    every identifier below the argument (_deps_read) must give the same parameters."""
    caps = captures(_FLOW_QUERY, _TS_PARSER.parse(data).root_node)
    file_flows = flows.FileFlows(caps, data)
    words = sorted({w.decode("ascii") for w in lexer.words(data)
                    if w[:1].isalpha() or w[:1] == b"_"})
    chosen = [w for w in words if rnd.random() < 0.3]
    taint = {w: frozenset({i % 3}) for i, w in enumerate(chosen)}
    contexts = frozenset(w for w in chosen if rnd.random() < 0.2)
    watched = file_flows._watched(taint, contexts)
    for callee in caps.get("callee", [])[:60]:
        args = callee.parent.child_by_field_name("arguments") if callee.parent else None
        for arg in args.named_children if args is not None else ():
            assert file_flows._deps(arg, taint, contexts, watched) == \
                file_flows._deps_read(arg, taint, contexts)


@_budget(100)
@given(_PIECE_INPUT)
def test_prefilter(data: bytes) -> None:
    scanner = _SCANNER
    found = list(scanner.occurrences(data))
    for start, end, name in found:
        assert data[start:end] == name.encode()
    assert scanner.mentions(data) == bool(found)
    prefilter.include_targets(data)


@_budget(150)
@given(st.one_of(st.text(max_size=300), _PIECE_INPUT.map(
    lambda b: b.decode("utf-8", "surrogateescape"))),
    st.integers(-2, 40), st.integers(-2, 80))
def test_callargs_positions(text: str, line: int, column: int) -> None:
    args = callargs.call_arguments(text, line, column)
    assert args is None or all(isinstance(a, str) for a in args)
    for i in range(len(text)):
        if text[i] == "(":
            callargs.split_arguments(text, i)
            break


# -- #if evaluation ------------------------------------------------------------------------


@st.composite
def _condition(draw: st.DrawFn, depth: int = 0) -> str:
    atoms = st.one_of(
        st.sampled_from(["CONFIG_Y", "CONFIG_M", "CONFIG_N", "CONFIG_ABSENT", "CONFIG_NR",
                         "LOCAL", "0", "1", "0x10", "1UL", "defined", "defined(", "defined()",
                         "defined CONFIG_Y", "defined(CONFIG_M_MODULE)", "IS_ENABLED(",
                         "IS_ENABLED(CONFIG_Y)", "IS_MODULE(CONFIG_M", "IS_BUILTIN()",
                         "/* c */", "// c", "\\", "", "(", ")", "!", "&&", "||", "?", ":",
                         "1 / 0", "1 % 0", "1 << 100000", "1 >> -1", "-", "~", "'a'",
                         "\"s\"", "\u00b2", "\u0663", "_\u00b2"]),
        st.integers(0, 5000).map(lambda n: "9" * n or "0"),
        st.integers(0, 2000).map(lambda n: "(" * n + "1" + ")" * n),
        st.integers(0, 2000).map(lambda n: "!" * n + "CONFIG_Y"),
        st.integers(0, 2000).map(lambda n: "(" * n),
    )
    if depth > 2:
        return draw(atoms)
    parts = draw(st.lists(st.one_of(atoms, _condition(depth + 1)), max_size=5))
    ops = draw(st.lists(st.sampled_from([" && ", " || ", " ", "", " == ", " / ", " << "]),
                        min_size=len(parts), max_size=len(parts)))
    return "".join(p + o for p, o in zip(parts, ops, strict=True))


_WORDS = st.sampled_from([b"if", b"ifdef", b"ifndef", b"elif", b"else", b"endif", b"define"])
_CONFIG = {"CONFIG_Y": "y", "CONFIG_M": "m", "CONFIG_N": "n", "CONFIG_NR": "64",
           "CONFIG_S": '"abc"', "CONFIG_E": ""}


@_budget(120)
@given(_WORDS, st.one_of(_condition(), st.text(max_size=100)))
def test_if_conditions_never_raise(word: bytes, cond: str) -> None:
    text = cond.encode("utf-8", "surrogatepass")
    assert ConfigConditions(_CONFIG)(word, text) in (True, False, None)
    assert preprocess.literal_condition(word, text) in (True, False, None)


@_budget(50)
@given(st.lists(st.tuples(_WORDS, _condition()), max_size=8))
def test_if_blocks_never_raise(directives: list[tuple[bytes, str]]) -> None:
    text = "".join(f"#{w.decode()} {c}\nint x;\n" for w, c in directives)
    conditions = ConfigConditions(_CONFIG)
    lines = text.count("\n") + 1
    for first, last in conditions.dead_lines(text):
        assert 1 <= first <= last <= lines
    data = text.encode("utf-8", "surrogatepass")
    for r in preprocess.inactive_ranges(data, conditions):
        assert 0 <= r.start <= r.end <= len(data)


@_budget(120)
@given(st.one_of(_condition().map(lambda s: s[:200]), st.text(max_size=200),
                 st.sampled_from(["1 << 64", "1 << 65", "0x" + "f" * 198, "9" * 199,
                                  "10 / 0", "-1 % 0", "(" * 100 + "1" + ")" * 100,
                                  "-" * 199 + "1", "~" * 199 + "1", "sizeof(", "(u32)",
                                  "sizeof(u32 *)", "08", "0b2"])))
def test_constant_value_never_raises(expr: str) -> None:
    value = callargs.constant_value(expr)
    assert value is None or isinstance(value, int)


# -- the .config reader --------------------------------------------------------------------

_CONFIG_LINE = st.one_of(
    st.tuples(st.from_regex(r"CONFIG_[A-Z0-9_]{1,20}", fullmatch=True), st.one_of(
        st.sampled_from(["y", "m", "n", "", '""', '"a b"', '"unterminated', "0x10", "-1",
                         " y", "y ", "=", "\t", "\\", "\u2028", "\x85", "\x0c", "\x1c"]),
        st.text(max_size=30), st.integers(0, 200000).map(lambda n: "9" * n))).map(
            lambda kv: f"{kv[0]}={kv[1]}"),
    st.from_regex(r"# CONFIG_[A-Z0-9_]{1,20} is not set", fullmatch=True),
    st.sampled_from(["#", "# comment", "", "   ", "\t", "CONFIG_", "CONFIG_X", "=y",
                     "config_x=y", "CONFIG_X y", "#CONFIG_X is not set", "\ufeffCONFIG_X=y",
                     "CONFIG_X=y\x00", "CONFIG_\u00e9=y"]),
    st.text(max_size=40),
)


def _config_bytes(lines: list[str], crlf: bool, final: bool, encoding: str) -> bytes:
    sep = "\r\n" if crlf else "\n"
    text = sep.join(lines) + (sep if final else "")
    return text.encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace")


def _load(data: bytes) -> dict[str, str] | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.config"
        path.write_bytes(data)
        try:
            values = load_config(path)
        except ConfigError as exc:
            message = str(exc)
            assert message.startswith(f"{path}:"), message
            assert "\n" not in message and "\r" not in message, message
            return None
    assert values and all(k.startswith("CONFIG_") for k in values)
    assert all(isinstance(v, str) for v in values.values())
    return values


@_budget(80)
@given(st.lists(_CONFIG_LINE, max_size=12), st.booleans(), st.booleans(),
       st.sampled_from(["utf-8", "latin-1", "utf-16"]))
def test_load_config_generated(lines: list[str], crlf: bool, final: bool,
                               encoding: str) -> None:
    _load(_config_bytes(lines, crlf, final, encoding))


@_budget(100)
@given(st.binary(max_size=500))
def test_load_config_random_bytes(data: bytes) -> None:
    _load(data)


@_budget(80)
@given(st.lists(st.tuples(st.from_regex(r"CONFIG_[A-Z0-9_]{1,12}", fullmatch=True),
                          st.text(st.characters(codec="utf-8", exclude_characters="\0"),
                                  max_size=20).map(str.strip)),
                max_size=10, min_size=1), st.booleans(), st.booleans())
def test_load_config_valid_lines_kept(pairs: list[tuple[str, str]], crlf: bool,
                                      final: bool) -> None:
    """Every `CONFIG_X=value` line is read back, value as written (last one wins)."""
    assume(all("\n" not in v and "\r" not in v for _, v in pairs))
    lines = [f"{k}={v}" for k, v in pairs]
    values = _load(_config_bytes(lines, crlf, final, "utf-8"))
    assert values == dict(pairs)


# -- regressions: concrete examples of what the fuzzers found ------------------------------


def test_call_arguments_on_a_line_with_invalid_utf8() -> None:
    """callargs._offset encoded a line holding an undecodable byte (a surrogate from
    surrogateescape, as enrich.py reads files) with strict UTF-8: UnicodeEncodeError."""
    line = b'\ts = "\xff\xc3\xa9"; memcpy_toio(p, q, 16);\n'
    text = line.decode("utf-8", "surrogateescape")
    column = line.index(b"memcpy_toio") + 1
    assert callargs.call_arguments(text, 1, column) == ["p", "q", "16"]
    assert callargs.call_arguments(text, 1, column + 1) is None  # inside the name


def test_if_0_inside_a_comment_is_not_a_directive() -> None:
    """`#if 0` on a line of a block comment opened the dead region of a real `#if 0`: every
    call after it was marked inactive (never counted), to the end of the file."""
    src = (b"/*\n#if 0\n*/\n"
           b"static u32 f(void __iomem *b)\n{\n\treturn readl(b);\n}\n")
    assert preprocess.inactive_ranges(src) == ()
    facts = facts_for_bytes("drivers/x/x.c", src)
    assert [c for c in facts.call_records() if c.name == "readl"] == [
        Call("readl", 6, 9, 0, True)]


def test_endif_inside_a_comment_does_not_close_a_block() -> None:
    src = (b"#if 0\n/*\n#endif\n*/\nold_code();\n#endif\n"
           b"static u32 f(void __iomem *b)\n{\n\treturn readl(b);\n}\n")
    (dead,) = preprocess.inactive_ranges(src)
    assert src[dead.start:dead.end].count(b"old_code") == 1
    assert dead.end == src.index(b"#endif\nstatic")


def test_directive_words_in_strings_and_line_comments_still_leave_real_ones() -> None:
    src = (b"char *s = \"/*\";\n// a /* in a line comment\nchar c = '\"';\n"
           b"#if 0\nold();\n#endif\n")
    (dead,) = preprocess.inactive_ranges(src)
    assert src[dead.start:dead.end].strip() == b"old();"


def test_load_config_keeps_control_characters_in_values(tmp_path: Path) -> None:
    """str.splitlines() also breaks lines at \\x0b, \\x0c, \\x1c-\\x1e, \\x85, U+2028 and
    U+2029: a string value holding one was cut, its rest rejected as a bad line."""
    path = tmp_path / "ctl.config"
    path.write_bytes('CONFIG_A="x\x1ey"\nCONFIG_B="p\x0cq\u2028r"\nCONFIG_C=y\n'.encode())
    assert load_config(path) == {"CONFIG_A": '"x\x1ey"', "CONFIG_B": '"p\x0cq\u2028r"',
                                 "CONFIG_C": "y"}


def test_load_config_line_numbers_count_newlines(tmp_path: Path) -> None:
    path = tmp_path / "bad.config"
    path.write_bytes(b'CONFIG_A="\x0b"\nCONFIG_B="\x0c"\nnot a line\n')
    with pytest.raises(ConfigError, match=r"bad\.config:3: not a \.config line"):
        load_config(path)
    path.write_bytes(b"CONFIG_A=y\r\nCONFIG_B=m\rCONFIG_C=n\n")  # CR alone ends a line too
    assert load_config(path) == {"CONFIG_A": "y", "CONFIG_B": "m", "CONFIG_C": "n"}


@pytest.mark.parametrize(("content", "where"), [
    (b"CONFIG_A=y\nCONFIG_B=\x00\n", ":2: binary file"),
    (b"CONFIG_A=y\n\nCONFIG_B=\xff\n", ":3: not UTF-8"),
])
def test_load_config_undecodable_names_the_line(tmp_path: Path, content: bytes,
                                                where: str) -> None:
    path = tmp_path / "bin.config"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}{where}")


@pytest.mark.parametrize(("text", "value"), [
    pytest.param("9" * 5000, True, id="5000-digits"),  # int() refuses > 4300 digits
    pytest.param("0" * 5000, False, id="5000-zeros"),
    pytest.param("(" * 1000 + "CONFIG_Y" + ")" * 1000, None, id="deep-parens"),
    pytest.param("!" * 3000 + "CONFIG_Y", None, id="deep-not"),  # RecursionError
    # Every operator copied the rest of the token list: quadratic, minutes on a long line.
    pytest.param(" || ".join(["CONFIG_N"] * 30_000), None, id="long-chain"),
    pytest.param(" || ".join(["CONFIG_N"] * 100) + " || CONFIG_Y", True, id="chain-of-100"),
])
def test_if_conditions_pathological(text: str, value: bool | None) -> None:
    assert ConfigConditions({"CONFIG_Y": "y"})(b"if", text.encode()) is value


class _CountingTokenizer:
    """Stands for lexer._TOKEN_RE and counts the passes over a text."""

    def __init__(self, real: re.Pattern[bytes]) -> None:
        self.real = real
        self.passes = 0

    def finditer(self, text: bytes, pos: int = 0) -> Iterator[re.Match[bytes]]:
        self.passes += 1
        return self.real.finditer(text, pos)


@pytest.mark.parametrize("invocations", [
    pytest.param(b"X(read);\n" + b"X(read,\n" * 2000, id="unclosed"),
    pytest.param(b"X(" * 2000 + b"read" + b")" * 2000 + b";\n", id="nested"),
])
def test_pasted_macro_invocations_cost_one_pass(monkeypatch: pytest.MonkeyPatch,
                                                invocations: bytes) -> None:
    """expand_pasted split the arguments of each `X(` by lexing from it to its close, to the
    end of the file when it never closed: quadratic (9 s for 16 KB of `X(read,` lines)."""
    data = b"#define X(a) a##l(p)\n" + invocations
    counting = _CountingTokenizer(lexer._TOKEN_RE)
    monkeypatch.setattr(lexer, "_TOKEN_RE", counting)
    directives = macros.Directives(data)
    (macro,) = directives.definitions(data)
    found = list(macros.expand_pasted(data, macro, directives, frozenset({"readl"})))
    assert found == [(macro.body.index(b"a##l"), "readl")]
    assert counting.passes <= 3  # the body once, the file once


def test_pasted_macro_invocation_in_a_comment_is_not_expanded() -> None:
    data = b"#define X(a) a##l(p)\n/* X(read) */\nchar *s = \"X(read)\";\n"
    directives = macros.Directives(data)
    (macro,) = directives.definitions(data)
    assert list(macros.expand_pasted(data, macro, directives, frozenset({"readl"}))) == []
