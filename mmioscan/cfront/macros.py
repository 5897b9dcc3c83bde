"""#define directives read lexically, independent of tree-sitter's error recovery.

tree-sitter sometimes swallows `#define` lines into an ERROR node when the code before them
is a macro invocation it cannot parse (arch/x86/include/asm/io.h's `build_mmio_read(...)`
lines): the definitions are then lost and `name(` in them looks like a call. Reading the
directives with a regex keeps every definition, and lets the extractor ignore any call
tree-sitter reports inside a directive.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from mmioscan.cfront import lexer

# A directive with its backslash continuations (runs of plain bytes between the escapes: an
# alternation tried per byte took twice as long).
_DIRECTIVE_SPAN_RE = re.compile(rb"^[ \t]*#[^\\\n]*(?:\\(?:\r?\n|.)[^\\\n]*)*", re.MULTILINE)
_DEFINE_RE = re.compile(
    rb"[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)(\((?:[^)\\\n]|\\\r?\n)*\))?")


@dataclass(frozen=True, slots=True)
class MacroDef:
    name: str
    params: tuple[str, ...] | None  # None for an object-like macro
    body: bytes
    body_start: int  # byte offset of the body in the file
    start: int
    end: int


class Directives:
    """The byte spans of all preprocessor directives in a file, for fast look-ups."""

    def __init__(self, data: bytes) -> None:
        self.spans = [(m.start(), m.end()) for m in _DIRECTIVE_SPAN_RE.finditer(data)]
        self._starts = [s for s, _ in self.spans]

    def contains(self, offset: int) -> bool:
        i = bisect.bisect_right(self._starts, offset) - 1
        return i >= 0 and offset < self.spans[i][1]

    def definitions(self, data: bytes) -> Iterator[MacroDef]:
        for start, end in self.spans:
            m = _DEFINE_RE.match(data, start, end)
            if m is None:
                continue
            params = None
            if m.group(2) is not None:
                inner = re.sub(rb"\\\r?\n", b" ", m.group(2)[1:-1])
                params = tuple(p.strip().decode("ascii", "replace")
                               for p in inner.split(b",") if p.strip())
            yield MacroDef(m.group(1).decode("ascii", "replace"), params,
                           data[m.end():end], m.end(), start, end)


class Invocations:
    """Where each name stands before a `(` in one file: (offset of the name, of the `(`).

    One regex pass per macro for the first few; past _FEW_MACROS (8,000 pasting macros, a
    pass over the file each, took 37 s) one pass over the file's words indexes them all.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.asked = 0
        self.index: dict[bytes, list[tuple[int, int]]] | None = None

    def of(self, name: str) -> list[tuple[int, int]]:
        self.asked += 1
        word = name.encode()
        if self.asked <= _FEW_MACROS:
            return [(m.start(), m.end() - 1) for m in
                    re.finditer(rb"\b" + re.escape(word) + rb"\s*\(", self.data)]
        if self.index is None:
            self.index = {}
            for m in _WORD_CALL_RE.finditer(self.data):
                if m.group(1) is not None:
                    self.index.setdefault(m.group(0)[:m.start(1) - m.start()], []).append(
                        (m.start(), m.end() - 1))
        return self.index.get(word, [])


_FEW_MACROS = 16
_WORD_CALL_RE = re.compile(rb"\w+(\s*\()?")  # a word, and the `(` after it if any


@functools.lru_cache(maxsize=1)
def _brackets(data: bytes) -> lexer.Brackets:
    """One bracket pass per file, shared by the macros expanded in it."""
    return lexer.Brackets(data)


def expand_pasted(data: bytes, macro: MacroDef, directives: Directives,
                  wanted: frozenset[str], invocations: Invocations | None = None
                  ) -> Iterator[tuple[int, str]]:
    """Names of `wanted` produced by the macro's `a##b(` calls at its invocations in this file.

    `BUILDIO(l, u32)` with a body calling `out##bwl(...)` produces `outl`: yields
    (offset of the pasted call in the body, "outl") once per distinct name. invocations:
    shared by the calls for one file's macros (data must be the same bytes).
    """
    if not macro.params:
        return
    templates = [t for t in lexer.pasted_calls(macro.body)
                 if any(p in macro.params for p in t[1])]
    if not templates:
        return
    seen: set[tuple[int, str]] = set()
    for start, paren in (invocations or Invocations(data)).of(macro.name):
        if directives.contains(start):
            continue
        split = _brackets(data).arguments(paren)
        if split is None:
            continue
        values = dict(zip(macro.params, (a.decode("ascii", "replace") for a in split),
                          strict=False))
        for offset, parts in templates:
            name = "".join(values.get(p, p) for p in parts)
            if name in wanted and (offset, name) not in seen:
                seen.add((offset, name))
                yield offset, name


def forwarded_calls(macro: MacroDef) -> tuple[str, ...]:
    """The names a function-like macro calls when its body uses one of its parameters (the
    macros it may forward a parameter to), sorted; () for one that uses none."""
    if not macro.params:
        return ()
    params = set(macro.params)
    uses = list(lexer.identifiers(macro.body))
    if not any(u.name in params for u in uses):
        return ()
    return tuple(sorted({u.name for u in uses if u.called and u.name not in params}))


def defines_with_params(macro: MacroDef) -> bool:
    """Does the macro paste, stringify or declare with one of its parameters?

    `#define DEFINE_ACCESSOR(name, type) static type my_##name(...)` or `... type name(...)`:
    an accessor's name given to it is the name of something defined, not a value used.
    """
    if not macro.params:
        return False
    params = set(macro.params)
    return any(use.name in params and (use.pasted or use.declared)
               for use in lexer.identifiers(macro.body))
