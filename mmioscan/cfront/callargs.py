"""The arguments of one call in C text, and the value of simple integer constant expressions.

Used by the TDX verdicts: `memcpy_toio(p, q, 16)` traps 16 times in a TD, `ioread32_rep(a, b,
n)` n times. The extractor (cfront/extract.py) records a call by the 1-based line and the
1-based column of its callee identifier, counted in bytes (tree-sitter's byte column + 1);
`call_arguments` takes the same two numbers.

No eval(): the expression evaluator is a small recursive-descent parser over C integer syntax.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from mmioscan.cfront.lexer import IDENT_CHARS

# Calls longer than this (in characters from the callee) are not followed: a runaway scan
# means the text is not what the position says.
_MAX_CALL_CHARS = 20_000

_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = frozenset(")]}")


@functools.lru_cache(maxsize=16)
def _line_starts(text: str) -> tuple[int, ...]:
    """Offsets where each line starts; cached because a file has many sites."""
    starts = [0]
    find = text.find
    i = find("\n")
    while i >= 0:
        starts.append(i + 1)
        i = find("\n", i + 1)
    return tuple(starts)


def _offset(text: str, line: int, column: int) -> int | None:
    """Character offset of (1-based line, 1-based byte column), or None when out of range."""
    starts = _line_starts(text)
    if line < 1 or line > len(starts) or column < 1:
        return None
    start = starts[line - 1]
    end = starts[line] - 1 if line < len(starts) else len(text)
    row = text[start:end]
    if row.isascii():
        col = column - 1
    else:  # the column counts UTF-8 bytes; convert to characters. Bytes that are not UTF-8
        # come as surrogates (the text is read with surrogateescape) and count one byte each.
        try:
            head = row.encode("utf-8", "surrogateescape")[:column - 1]
        except UnicodeEncodeError:  # a surrogate that stands for no byte of a file
            return None
        col = len(head.decode("utf-8", "surrogateescape"))
    return start + col if col < len(row) else None


def _skip_blank(text: str, i: int) -> int:
    """Past whitespace, comments and backslash-newlines (calls in macro bodies)."""
    n = len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n\f\v":
            i += 1
        elif c == "\\" and text.startswith("\n", i + 1):
            i += 2
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                return n
            i = end + 2
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        else:
            break
    return i


def _skip_quoted(text: str, i: int) -> int:
    """Past a string or char literal starting at i; -1 when it does not end on its line."""
    quote = text[i]
    i += 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == quote:
            return i + 1
        elif c == "\n":
            return -1
        else:
            i += 1
    return -1


def split_arguments(text: str, open_paren: int) -> tuple[list[str], int] | None:
    """Top-level arguments of the parenthesised list opening at `open_paren`, and the offset
    just past its `)`. Comments become one space; None when the list does not close."""
    args: list[str] = []
    current: list[str] = []
    stack = [")"]
    i = open_paren + 1
    limit = min(len(text), open_paren + _MAX_CALL_CHARS)
    piece_start = i
    while i < limit:
        c = text[i]
        if c in "\"'":
            end = _skip_quoted(text, i)
            if end < 0:
                return None
            i = end
        elif c == "/" and text.startswith(("/*", "//"), i):
            current.append(text[piece_start:i])
            current.append(" ")
            i = _skip_blank(text, i)
            piece_start = i
        elif c == "\\" and text.startswith("\n", i + 1):
            current.append(text[piece_start:i])
            current.append(" ")
            i += 2
            piece_start = i
        elif c in _OPEN:
            stack.append(_OPEN[c])
            i += 1
        elif c in _CLOSE:
            if c != stack.pop():
                return None
            if not stack:
                current.append(text[piece_start:i])
                last = "".join(current).strip()
                if args or last:
                    args.append(last)
                return args, i + 1
            i += 1
        elif c == "," and len(stack) == 1:
            current.append(text[piece_start:i])
            args.append("".join(current).strip())
            current = []
            i += 1
            piece_start = i
        else:
            i += 1
    return None


def call_arguments(text: str, line: int, column: int) -> list[str] | None:
    """Argument texts of the call whose callee identifier starts at (line, column).

    line and column are 1-based, the column in bytes, as cfront/extract.py records them.
    Returns [] for `f()`, None when the position does not hold `identifier (` or the list
    does not close (broken code, a call split by #if, a name that is not called).
    """
    start = _offset(text, line, column)
    if start is None or text[start] not in IDENT_CHARS or text[start].isdigit():
        return None
    if start > 0 and text[start - 1] in IDENT_CHARS:
        return None  # the position is inside a longer identifier
    i = start
    n = len(text)
    while i < n and text[i] in IDENT_CHARS:
        i += 1
    i = _skip_blank(text, i)
    if i >= n or text[i] != "(":
        return None
    found = split_arguments(text, i)
    return None if found is None else found[0]


# -- constant expressions -------------------------------------------------------------------

# x86_64 (LP64) sizes of the types drivers write in sizeof().
_TYPE_SIZES = {
    "char": 1, "signed char": 1, "unsigned char": 1, "bool": 1, "_Bool": 1,
    "short": 2, "short int": 2, "unsigned short": 2, "signed short": 2,
    "unsigned short int": 2,
    "int": 4, "signed": 4, "unsigned": 4, "signed int": 4, "unsigned int": 4,
    "long": 8, "long int": 8, "unsigned long": 8, "signed long": 8, "unsigned long int": 8,
    "long long": 8, "long long int": 8, "unsigned long long": 8, "signed long long": 8,
    "unsigned long long int": 8,
    "float": 4, "double": 8,
    "size_t": 8, "ssize_t": 8, "ptrdiff_t": 8, "uintptr_t": 8, "intptr_t": 8,
    "phys_addr_t": 8, "dma_addr_t": 8, "resource_size_t": 8,
}
for _bits in (8, 16, 32, 64):
    _size = _bits // 8
    for _name in (f"u{_bits}", f"s{_bits}", f"__u{_bits}", f"__s{_bits}", f"uint{_bits}_t",
                  f"int{_bits}_t", f"u_int{_bits}_t"):
        _TYPE_SIZES[_name] = _size
    if _bits > 8:
        for _name in (f"__le{_bits}", f"__be{_bits}"):
            _TYPE_SIZES[_name] = _size

_TOKEN_RE = re.compile(r"""
    \s*(?:
      (?P<num>(?:0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9]+)(?:[uU](?:ll|LL|l|L)?|(?:ll|LL|l|L)[uU]?)?)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op><<|>>|[-+*/%&|^~!()])
    )""", re.VERBOSE)
_SUFFIX_RE = re.compile(r"[uUlL]+$")


class _NotConstant(Exception):
    pass


def _tokens(expr: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _TOKEN_RE.match(expr, pos)
        if m is None or m.end() == pos:
            raise _NotConstant
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _literal(text: str) -> int:
    digits = _SUFFIX_RE.sub("", text)
    if digits[:2] in ("0x", "0X"):
        return int(digits[2:], 16)
    if digits[:2] in ("0b", "0B"):
        return int(digits[2:], 2)
    if len(digits) > 1 and digits[0] == "0":
        return int(digits[1:], 8)  # raises ValueError on 8 or 9: not a C literal
    return int(digits)


def _c_div(a: int, b: int) -> int:
    if b == 0:
        raise _NotConstant
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _c_mod(a: int, b: int) -> int:
    return a - _c_div(a, b) * b


def _shift_left(a: int, b: int) -> int:
    if b < 0 or b > 64:
        raise _NotConstant
    return a << b


def _shift_right(a: int, b: int) -> int:
    if b < 0 or b > 64:
        raise _NotConstant
    return a >> b


# Binary operators by C precedence, lowest first.
_LEVELS: tuple[dict[str, Callable[[int, int], int]], ...] = (
    {"|": lambda a, b: a | b},
    {"^": lambda a, b: a ^ b},
    {"&": lambda a, b: a & b},
    {"<<": _shift_left, ">>": _shift_right},
    {"+": lambda a, b: a + b, "-": lambda a, b: a - b},
    {"*": lambda a, b: a * b, "/": _c_div, "%": _c_mod},
)


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, ahead: int = 0) -> tuple[str, str] | None:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise _NotConstant
        self.i += 1
        return tok

    def parse(self) -> int:
        value = self.binary(0)
        if self.peek() is not None:
            raise _NotConstant
        return value

    def binary(self, level: int) -> int:
        if level == len(_LEVELS):
            return self.unary()
        ops = _LEVELS[level]
        value = self.binary(level + 1)
        while (tok := self.peek()) is not None and tok[0] == "op" and tok[1] in ops:
            self.i += 1
            value = ops[tok[1]](value, self.binary(level + 1))
        return value

    def type_name(self) -> int | None:
        """Size of the type named by the tokens from here to the next `)`, if it is one."""
        j = self.i
        words: list[str] = []
        pointer = False
        while (tok := self.peek(j - self.i)) is not None and tok[1] != ")":
            if tok[0] == "ident":
                if pointer:
                    return None
                words.append(tok[1])
            elif tok[1] == "*":
                pointer = True
            else:
                return None
            j += 1
        words = [w for w in words if w not in ("const", "volatile")]
        if not words:
            return None
        size = 8 if pointer else _TYPE_SIZES.get(" ".join(words))
        if size is None:
            return None
        self.i = j
        return size

    def unary(self) -> int:
        tok = self.take()
        kind, text = tok
        if kind == "num":
            try:
                return _literal(text)
            except ValueError:
                raise _NotConstant from None
        if kind == "ident":
            if text != "sizeof":
                raise _NotConstant
            self.take("(")
            size = self.type_name()
            if size is None:
                raise _NotConstant
            self.take(")")
            return size
        if text == "(":
            size = self.type_name()
            if size is not None:  # a cast to a basic type: keep the value
                self.take(")")
                return self.unary()
            value = self.binary(0)
            self.take(")")
            return value
        if text == "-":
            return -self.unary()
        if text == "+":
            return self.unary()
        if text == "~":
            return ~self.unary()
        if text == "!":
            return int(not self.unary())
        raise _NotConstant


@functools.lru_cache(maxsize=4096)
def constant_value(expr: str) -> int | None:
    """Value of an integer constant expression: literals (decimal, hex, octal, binary, U/L
    suffixes), + - * / % << >> & | ^ ~ !, parentheses, casts to and sizeof of basic kernel
    types (x86_64 sizes). Anything else (names, calls, floats) gives None."""
    if not expr or len(expr) > 200:
        return None
    try:
        return _Parser(_tokens(expr)).parse()
    except (_NotConstant, RecursionError):
        return None
