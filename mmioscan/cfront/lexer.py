"""A small C lexer for text tree-sitter leaves opaque: macro bodies and `#if 0` blocks."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass

# The bytes (and characters) of a C identifier: one home for every "is this a whole word" test.
IDENT_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
IDENT_CHARS = frozenset(chr(b) for b in IDENT_BYTES)
# Every byte that cannot be part of an identifier, as a space (see words)
_NON_IDENT_AS_SPACE = bytes(c if c in IDENT_BYTES else 0x20 for c in range(256))


def words(data: bytes) -> list[bytes]:
    """The maximal runs of IDENT_BYTES in data (identifiers, and numbers too), in order:
    `bytes.translate` and `split` run at C speed, several times faster than a regex."""
    return data.translate(_NON_IDENT_AS_SPACE).split()
# An `#include` directive at the start of a line; group 1 is the target as written.
INCLUDE_RE = re.compile(rb"^[ \t]*#[ \t]*include[ \t]*([<\"][^>\"\n]+[>\"])", re.MULTILINE)
# The same from its `#`: a pattern opening with a literal lets `re` skip ahead (the `^[ \t]*`
# of INCLUDE_RE is tried at every line start: seven times slower on drivers/).
_INCLUDE_HASH_RE = re.compile(rb"#[ \t]*include[ \t]*([<\"][^>\"\n]+[>\"])")


# Where an identifier may start: a letter not glued to a word or a number before it, or any
# `$` (a number does not take it in: `0x1f$` is a number and an identifier).
_IDENT_START_RE = re.compile(rb"(?<![\w$])[A-Za-z_]|\$")


def may_hold_identifier(text: bytes) -> bool:
    """False when text holds no identifier token of _TOKEN_RE (`0x04`, `(1 << 3)`: a letter
    after a digit belongs to the number, `0x1fUL`); True may still be a comment or a string.
    One regex search, against lexing the whole text."""
    return _IDENT_START_RE.search(text) is not None


def include_targets(data: bytes) -> tuple[str, ...]:
    """The targets of INCLUDE_RE's matches as written (`<linux/io.h>`, `"foo.h"`), in order.

    A match of _INCLUDE_HASH_RE counts when only blanks stand before it on its line; one that
    does not lies within its line, so it never hides the `#` of a directive after it."""
    found: list[str] = []
    for m in _INCLUDE_HASH_RE.finditer(data):
        line = data.rfind(b"\n", 0, m.start()) + 1
        if not data[line:m.start()].strip(b" \t"):
            found.append(sys.intern(m.group(1).decode("utf-8", "replace")))
    return tuple(found)

_TOKEN_RE = re.compile(
    rb"""
     (?P<skip>/\*.*?(?:\*/|\Z)|//[^\n]*|"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?|\\\n|\s+)
    |(?P<num>\.?[0-9](?:[eEpP][+-]|[\w.])*)
    |(?P<ident>[A-Za-z_$][\w$]*)
    |(?P<punct>\#\#|->|[^\s\w"'])
    """,
    re.DOTALL | re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class IdentUse:
    """An identifier in lexed text: its name, byte offset and how it is used."""

    name: str
    offset: int
    called: bool  # followed by `(`
    member: bool  # preceded by `.` or `->`: a struct member, not a function
    pasted: bool  # glued to `##` or stringified with `#`: not a name of its own
    declared: bool = False  # follows a type name (`u32 name(`): a definition, not a call


# Words that may stand right before a called name in an expression.
_EXPRESSION_WORDS = frozenset({b"return", b"case", b"else", b"do", b"sizeof", b"typeof",
                               b"__typeof__", b"defined", b"goto"})


def _after_type(tokens: list[tuple[str | None, bytes, int]], i: int) -> bool:
    """Is token i preceded by an identifier used as a type (`void name(`, `u32 name(`)?"""
    if i == 0:
        return False
    kind, value, _ = tokens[i - 1]
    return kind == "ident" and value not in _EXPRESSION_WORDS and (
        i < 2 or tokens[i - 2][1] not in (b"##", b"#"))


def identifiers(text: bytes) -> Iterator[IdentUse]:
    """Yield identifiers outside comments and string literals, with their context."""
    return iter(_remembered(text) if len(text) <= _REMEMBERED_BYTES else _lexed(text))


# A macro body is lexed by each reader of it (its uses, its flows, whether it forwards,
# pastes or defines): the uses of the last short texts are kept (IdentUse is frozen). A long
# text (an `#if 0` block) is lexed once, and would hold its uses in memory.
_REMEMBERED_BYTES = 4096


def _lexed(text: bytes) -> tuple[IdentUse, ...]:
    tokens = [(m.lastgroup, m.group(), m.start()) for m in _TOKEN_RE.finditer(text)
              if m.lastgroup != "skip"]
    uses: list[IdentUse] = []
    for i, (kind, value, offset) in enumerate(tokens):
        if kind != "ident":
            continue
        prev = tokens[i - 1][1] if i > 0 else b""
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else b""
        uses.append(IdentUse(
            name=sys.intern(value.decode("ascii", "replace")),  # cfront/cnodes.py text
            offset=offset,
            called=nxt == b"(",
            member=prev in (b".", b"->"),
            pasted=prev in (b"##", b"#") or nxt == b"##",
            declared=_after_type(tokens, i),
        ))
    return tuple(uses)


_remembered = functools.lru_cache(maxsize=4096)(_lexed)


def position(text: bytes, offset: int, base_line: int, base_column: int,
             start: int = 0) -> tuple[int, int]:
    """1-based (line, column) of offset in text whose byte `start` is at (base_line,
    base_column). Callers walking forward pass the previous position as the base: counting
    from the beginning each time is quadratic on a large `#if 0` block."""
    newlines = text.count(b"\n", start, offset)
    if newlines == 0:
        return base_line, base_column + offset - start
    return base_line + newlines, offset - text.rfind(b"\n", start, offset)


def pasted_calls(text: bytes) -> list[tuple[int, tuple[str, ...]]]:
    """Calls whose callee is glued with `##` (`out##bwl(v, port)`): (offset, parts)."""
    if b"##" not in text:
        return []  # most bodies: no `##` token, no pasted call
    tokens = [(m.lastgroup, m.group(), m.start()) for m in _TOKEN_RE.finditer(text)
              if m.lastgroup != "skip"]
    found: list[tuple[int, tuple[str, ...]]] = []
    i = 0
    while i < len(tokens):
        if tokens[i][0] != "ident" or (i > 0 and tokens[i - 1][1] in (b"##", b".", b"->")):
            i += 1
            continue
        parts = [tokens[i][1].decode("ascii", "replace")]
        j = i + 1
        while j + 1 < len(tokens) and tokens[j][1] == b"##" and tokens[j + 1][0] in ("ident",
                                                                                     "num"):
            parts.append(tokens[j + 1][1].decode("ascii", "replace"))
            j += 2
        if (len(parts) > 1 and j < len(tokens) and tokens[j][1] == b"("
                and not _after_type(tokens, i)):
            found.append((tokens[i][2], tuple(parts)))
        i = j
    return found


def split_arguments(text: bytes, open_paren: int) -> tuple[list[bytes], int] | None:
    """Top-level comma-separated arguments of the call whose `(` is at open_paren."""
    depth = 0
    args: list[bytes] = []
    start = open_paren + 1
    for m in _TOKEN_RE.finditer(text, open_paren):
        tok = m.group()
        if tok in (b"(", b"[", b"{"):
            depth += 1
        elif tok in (b")", b"]", b"}"):
            depth -= 1
            if depth == 0:
                args.append(text[start:m.start()].strip())
                return args, m.end()
        elif tok == b"," and depth == 1:
            args.append(text[start:m.start()].strip())
            start = m.end()
    return None


_OPENING = frozenset({b"(", b"[", b"{"})
# _TOKEN_RE's skip group without blanks, and the tokens Brackets keeps (see there)
_HIDING = rb"""/\*.*?(?:\*/|\Z)|//[^\n]*|"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?"""
_BRACKET_RE = re.compile(rb"(?P<skip>" + _HIDING + rb")|[()\[\]{},]", re.DOTALL)
# What _TOKEN_RE skips between two tokens: comments, literals, continuations, blanks
_SKIPS_RE = re.compile(rb"(?:" + _HIDING + rb"|\\\n|\s+)*", re.DOTALL)
_CLOSING = frozenset({b")", b"]", b"}"})


class Brackets:
    """Every bracket of a text and its match, from one pass over the tokens.

    The top-level arguments of a call then cost its own top-level tokens: split_arguments
    rescans to the end of the text for every call that never closes, and rescans a nested
    call once per level (quadratic on `X(X(X(...)))` or many unclosed `X(`).

    Only brackets and commas are kept: they are single-character tokens, never part of a
    longer one (_TOKEN_RE's numbers, identifiers, `##` and `->` hold none), so a scan for
    them and for what hides them (comments, string and character literals) finds exactly the
    ones _TOKEN_RE's tokens are; identifiers and blanks, nine tokens in ten, are skipped at C
    speed (building a tuple for every token was 3% of the extraction).
    """

    def __init__(self, text: bytes) -> None:
        self.text = text
        self.tokens: list[tuple[int, int, bytes]] = [
            (m.start(), m.end(), m.group()) for m in _BRACKET_RE.finditer(text)
            if m.lastgroup != "skip"]
        self.at: dict[int, int] = {}  # byte offset of an opening bracket -> its token index
        self.partner: dict[int, int] = {}  # token index of an opening bracket -> of its close
        stack: list[int] = []
        for index, (start, _end, tok) in enumerate(self.tokens):
            if tok in _OPENING:
                self.at[start] = index
                stack.append(index)
            elif tok in _CLOSING and stack:
                self.partner[stack.pop()] = index

    def semicolon_after(self, open_paren: int) -> bool:
        """Is the token after the bracket that closes the one at open_paren a `;`?"""
        first = self.at.get(open_paren)
        last = self.partner.get(first) if first is not None else None
        if last is None:
            return False
        after = _SKIPS_RE.match(self.text, self.tokens[last][1])
        end = after.end() if after is not None else self.tokens[last][1]
        return self.text[end:end + 1] == b";"

    def arguments(self, open_paren: int) -> list[bytes] | None:
        """What split_arguments gives for the bracket at open_paren; None when it never
        closes, or lies in a comment or a string literal."""
        first = self.at.get(open_paren)
        last = self.partner.get(first) if first is not None else None
        if first is None or last is None:
            return None
        args: list[bytes] = []
        start = self.tokens[first][1]
        k = first + 1
        while k < last:
            nested = self.partner.get(k)
            if nested is not None:
                k = nested + 1
                continue
            begin, end, tok = self.tokens[k]
            if tok == b",":
                args.append(self.text[start:begin].strip())
                start = end
            k += 1
        args.append(self.text[start:self.tokens[last][0]].strip())
        return args
