"""A small C lexer for text tree-sitter leaves opaque: macro bodies and `#if 0` blocks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

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


def identifiers(text: bytes) -> Iterator[IdentUse]:
    """Yield identifiers outside comments and string literals, with their context."""
    tokens = [(m.lastgroup, m.group(), m.start()) for m in _TOKEN_RE.finditer(text)
              if m.lastgroup != "skip"]
    for i, (kind, value, offset) in enumerate(tokens):
        if kind != "ident":
            continue
        prev = tokens[i - 1][1] if i > 0 else b""
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else b""
        yield IdentUse(
            name=value.decode("ascii", "replace"),
            offset=offset,
            called=nxt == b"(",
            member=prev in (b".", b"->"),
            pasted=prev in (b"##", b"#") or nxt == b"##",
        )


def position(text: bytes, offset: int, base_line: int, base_column: int) -> tuple[int, int]:
    """1-based (line, column) of offset in text that starts at (base_line, base_column)."""
    newlines = text.count(b"\n", 0, offset)
    if newlines == 0:
        return base_line, base_column + offset
    return base_line + newlines, offset - text.rfind(b"\n", 0, offset)
