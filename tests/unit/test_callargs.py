"""callargs: the argument texts of a call at an extractor position, and constant values."""

from __future__ import annotations

import pytest

from mmioscan.cfront.callargs import call_arguments, constant_value
from mmioscan.cfront.extract import Extractor


def _at(text: str, name: str, nth: int = 0) -> tuple[int, int]:
    """1-based line and 1-based byte column of the nth occurrence of name (the extractor's
    convention)."""
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(name, offset + 1)
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    return line, len(text[start:offset].encode("utf-8")) + 1


def _args(text: str, name: str, nth: int = 0) -> list[str] | None:
    return call_arguments(text, *_at(text, name, nth))


def test_simple_call() -> None:
    text = "void f(void)\n{\n\tmemcpy_toio(dst, src, 16);\n}\n"
    assert _args(text, "memcpy_toio") == ["dst", "src", "16"]


def test_nested_brackets_and_casts() -> None:
    text = "x = readl(base + REG(a, b[1, 2]) + (int)(c ? d : e));"
    assert _args(text, "readl") == ["base + REG(a, b[1, 2]) + (int)(c ? d : e)"]


def test_strings_and_chars_hide_commas_and_parens() -> None:
    text = 'dev_warn(dev, "a, b) c", \',\', \')\', "\\"x, y\\"");'
    assert _args(text, "dev_warn") == ["dev", '"a, b) c"', "','", "')'", '"\\"x, y\\""']


def test_comments_are_dropped_and_calls_span_lines() -> None:
    text = ("\tmemset_io(p, /* fill, with zero */ 0,\n"
            "\t\t  sizeof(u32) * 4 // bytes (four words)\n"
            "\t\t  );\n")
    assert _args(text, "memset_io") == ["p", "0", "sizeof(u32) * 4"]


def test_macro_body_with_continuations() -> None:
    text = "#define W(hw, r, v) \\\n\twritel((v), \\\n\t       (hw)->base + (r))\n"
    assert _args(text, "writel") == ["(v)", "(hw)->base + (r)"]


def test_empty_and_blank_argument_lists() -> None:
    assert _args("x = f();", "f") == []
    assert _args("x = f( /* nothing */ );", "f") == []


def test_comment_between_name_and_paren() -> None:
    assert _args("readl /* why */ (p);", "readl") == ["p"]


def test_not_a_call_or_wrong_position() -> None:
    text = "p = &readl; q = xreadl(a); r = readl(b);"
    assert _args(text, "readl") is None  # a reference, not a call
    line, col = _at(text, "readl", 1)  # inside xreadl
    assert call_arguments(text, line, col) is None
    assert _args(text, "readl", 2) == ["b"]
    assert call_arguments(text, 5, 1) is None  # no such line
    assert call_arguments(text, 1, 500) is None  # past the end of the line
    assert call_arguments(text, 0, 1) is None


def test_unbalanced_or_unterminated() -> None:
    assert _args("readl(a, (b;\n}\n", "readl") is None
    assert _args('readl("abc\n);', "readl") is None
    assert _args("readl(a]);", "readl") is None


def test_byte_columns_after_non_ascii_text() -> None:
    text = 'pr_info("größe"); writel(v, p);\n'
    line, col = _at(text, "writel")
    assert col == text.index("writel") + 1 + 2  # two extra bytes for ö and ß
    assert call_arguments(text, line, col) == ["v", "p"]


def test_positions_match_the_extractor() -> None:
    """The same numbers the extractor records for a call find its arguments."""
    text = ("static void f(void __iomem *b)\n{\n"
            "\t/* ünïcode */ memcpy_toio(b, buf, 4 * sizeof(u32));\n"
            "\t__iowrite32_copy(b + 8,\n\t\t\t buf, 16);\n}\n")
    facts = Extractor({"memcpy_toio", "__iowrite32_copy"}).extract(
        "a.c", "0", text.encode("utf-8"))
    found = {c[0]: call_arguments(text, c[1], c[2]) for c in facts.calls}
    assert found == {"memcpy_toio": ["b", "buf", "4 * sizeof(u32)"],
                     "__iowrite32_copy": ["b + 8", "buf", "16"]}


@pytest.mark.parametrize(("expr", "value"), [
    ("16", 16), ("0x10", 16), ("0X1f", 31), ("010", 8), ("0", 0), ("0b101", 5),
    ("16U", 16), ("16UL", 16), ("0x10ull", 16), ("4LU", 4),
    ("4 * 4", 16), ("(1 << 4)", 16), ("256 >> 4", 16), ("2 + 3 * 4", 14), ("(2 + 3) * 4", 20),
    ("7 / 2", 3), ("-7 / 2", -3), ("7 % 3", 1), ("0xf0 | 0x0f", 255), ("0xff & 0x0f", 15),
    ("5 ^ 1", 4), ("~0 & 0xff", 255), ("-1", -1), ("+3", 3), ("!0", 1),
    ("sizeof(u32)", 4), ("sizeof(u8) * 3", 3), ("sizeof(__le64)", 8),
    ("sizeof(unsigned long)", 8), ("sizeof(unsigned int)", 4), ("sizeof(long long)", 8),
    ("sizeof(void *)", 8), ("sizeof(const u16)", 2), ("sizeof(struct_foo *)", 8),
    ("(u32)16", 16), ("(size_t)(4 * 4)", 16), (" 16 ", 16),
])
def test_constant_values(expr: str, value: int) -> None:
    assert constant_value(expr) == value


@pytest.mark.parametrize("expr", [
    "", "n", "len", "foo(4)", "1.5", "08", "1 / 0", "4 %", "(4", "4)", "sizeof(struct foo)",
    "sizeof(*p)", "sizeof u32", "ARRAY_SIZE(x)", "a ? 1 : 2", "1 << 100", "\"16\"", "'a'",
    "x + 1", "4 4",
])
def test_not_constant(expr: str) -> None:
    assert constant_value(expr) is None
