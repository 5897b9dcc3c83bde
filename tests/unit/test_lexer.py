"""lexer: identifiers in macro bodies and dead code, with call/member/paste context."""

from __future__ import annotations

import pytest

from mmioscan.cfront import lexer
from mmioscan.cfront.lexer import IdentUse, identifiers, position


def _uses(text: bytes) -> dict[str, IdentUse]:
    return {u.name: u for u in identifiers(text)}


def _names(text: bytes) -> list[str]:
    return [u.name for u in identifiers(text)]


def test_plain_call_and_arguments() -> None:
    uses = list(identifiers(b"readl(base + reg)"))
    assert [u.name for u in uses] == ["readl", "base", "reg"]
    assert uses[0].called and not uses[0].member and not uses[0].pasted
    assert uses[0].offset == 0
    assert not uses[1].called
    assert uses[2].offset == len(b"readl(base + ")


def test_call_with_space_or_newline_before_the_parenthesis() -> None:
    assert _uses(b"readl (x)")["readl"].called
    assert _uses(b"readl\n\t(x)")["readl"].called
    assert _uses(b"readl \\\n\t(x)")["readl"].called  # backslash continuation in a macro
    assert _uses(b"readl /* why */ (x)")["readl"].called


def test_value_is_not_called() -> None:
    uses = _uses(b"fn = writel; .read = ioread32, poll(readl, v)")
    assert not uses["writel"].called
    assert not uses["ioread32"].called
    assert not uses["readl"].called
    assert uses["poll"].called


def test_members_are_marked() -> None:
    uses = list(identifiers(b"hw->ops->readl(hw, r); x.writel(1); p -> inb(); s . outb"))
    by_name = {u.name: u for u in uses}
    assert by_name["readl"].member and by_name["readl"].called
    assert by_name["writel"].member
    assert by_name["inb"].member
    assert by_name["outb"].member
    assert not by_name["hw"].member and not by_name["x"].member
    assert by_name["ops"].member


def test_token_pasting_and_stringification() -> None:
    uses = list(identifiers(b"read##sfx(a) foo_##n##_readl(n) #name writel(v, REG_##n)"))
    pasted = {u.name for u in uses if u.pasted}
    assert {"read", "sfx", "foo_", "n", "_readl", "name", "REG_"} <= pasted
    writel = next(u for u in uses if u.name == "writel")
    assert writel.called and not writel.pasted
    assert [u.name for u in uses if not u.pasted] == ["a", "n", "writel", "v"]


def test_comments_and_strings_are_skipped() -> None:
    text = (b'/* readl(a) */ x; // writel(1, b)\n y = "ioread32(c) \\" iowrite32(d)"; '
            b"c = 'r'; d = '\\''; z = inb(p);")
    assert _names(text) == ["x", "y", "c", "d", "z", "inb", "p"]


def test_unterminated_comment_and_string_end_at_text_end() -> None:
    assert _names(b"a /* readl(x)") == ["a"]
    assert _names(b'b "readl(x)') == ["b"]


def test_multiline_comment_in_a_macro_body() -> None:
    assert _names(b"a; \\\n/* readl(x) \\\n writel(y) */ \\\n inb(z)") == ["a", "inb", "z"]


def test_numbers_are_not_identifiers() -> None:
    assert _names(b"0x1fUL + 10ULL + 1.5e+3 + .5f + 0b101 + BIT(3)") == ["BIT"]


def test_dollar_and_underscore_identifiers() -> None:
    assert _names(b"__raw_readl(a) + _x + $y") == ["__raw_readl", "a", "_x", "$y"]


def test_offsets_index_the_text() -> None:
    text = b"  do { v = readl(b); \\\n\twritel(v, b); } while (0)"
    for use in identifiers(text):
        assert text[use.offset:use.offset + len(use.name)] == use.name.encode()


def test_position_on_the_first_line_adds_the_base_column() -> None:
    assert position(b"abc readl", 4, 10, 7) == (10, 11)


def test_position_on_later_lines_is_absolute() -> None:
    text = b"a \\\n\treadl(x) \\\n  writel(1, y)"
    off = text.index(b"readl")
    assert position(text, off, 10, 20) == (11, 2)
    off = text.index(b"writel")
    assert position(text, off, 10, 20) == (12, 3)


def test_position_at_offset_zero() -> None:
    assert position(b"readl(x)", 0, 1, 1) == (1, 1)


def test_pasted_calls_finds_glued_callees_but_not_definitions() -> None:
    from mmioscan.cfront.lexer import pasted_calls

    body = b"static inline void out##bwl(int v) { out##bwl##_p(v, 1); x = in##bwl(2); }"
    found = [parts for _, parts in pasted_calls(body)]
    assert found == [("out", "bwl", "_p"), ("in", "bwl")]


def test_split_arguments_respects_nesting() -> None:
    from mmioscan.cfront.lexer import split_arguments

    text = b"GEN(l, f(a, b), \"x,y\", { 1, 2 })"
    split = split_arguments(text, text.index(b"("))
    assert split is not None
    args, end = split
    assert args == [b"l", b"f(a, b)", b"\"x,y\"", b"{ 1, 2 }"]
    assert end == len(text)


def test_identifier_after_a_type_is_declared() -> None:
    from mmioscan.cfront.lexer import identifiers

    uses = {u.name: u for u in identifiers(b"static u32 my_read(void) { return readl(p); }")}
    assert uses["my_read"].declared
    assert not uses["readl"].declared


@pytest.mark.parametrize("text", [
    b'#include <linux/io.h>\n  #  include "a.h"\n\t#include<b.h>\n',
    b'x = 1; #include "not.h"\n#include "yes.h" #include "same_line.h"\n',
    b'#include "unterminated\n#include "next.h"\r\n# define X\n#includes <x.h>\n',
    b'/* #include "in_comment.h" */\n#if 0\n#include "dead.h"\n#endif\n#include',
])
def test_include_targets_agree_with_the_line_anchored_pattern(text: bytes) -> None:
    expected = tuple(m.group(1).decode() for m in lexer.INCLUDE_RE.finditer(text))
    assert lexer.include_targets(text) == expected
