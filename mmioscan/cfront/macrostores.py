"""Functions stored into fields by statement macros, recorded at the macros' invocations.

Drivers fill their ops fields with one macro per family of functions:

    #define DEMO_SET_OPS(d, x) do { (d)->ops.rd = x##_rd32; (d)->ops.wr = x##_wr32; } while (0)
    #define DEMO_SET_ALL(d, x) do { DEMO_SET_OPS(d, x); (d)->ops.sync = x##_sync; } while (0)
    ...
    DEMO_SET_ALL(dev, fast);

tree-sitter reads a macro body as opaque text, and the invocation as a call: without
expansion no store of fast_rd32 into `rd` is seen, and a call through `d->ops.rd` has no
candidates. Here each invocation of a macro whose body stores into a field (`->f =`, `.f =`)
is expanded the way the C preprocessor does it (cfront/pasted.py's expansion: parameters
replaced, `a ## b` pasted), and so is each invocation of another such macro in the
expansion (nesting bounded by MAX_DEPTH). The expansions are parsed together, each wrapped in
a function of its own on one line, and their stores are recorded like written ones
(cfront/fnptrs.field_stores), at the invocation's line, typed by the declarations in sight of
the invocation (`dev` declared `struct demo *` in the invoking function gives `struct demo.ops`).

Macros that define functions are cfront/pasted.py's: their instances' stores are recorded
there. Only the file's own macros are expanded (a header's storing macros are not read).
Bounded: invocations are found in one pass per macro (macros.Invocations), and the produced
text of one file stops at MAX_STORE_BYTES (a recorded problem).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import tree_sitter as ts

from mmioscan.cfront import lexer, pasted
from mmioscan.cfront.cnodes import captures
from mmioscan.cfront.fnptrs import FileTypes, Stored, field_stores
from mmioscan.cfront.macros import Directives, Invocations, MacroDef
from mmioscan.core.model import Problem

# Levels of macros expanded from one invocation: the macro invoked, and the storing macros
# its expansion invokes, and theirs (i915's ASSIGN_WRITE_MMIO_VFUNCS -> ..._RAW_...: two).
MAX_DEPTH = 3

# Produced text per file: real files produce a few kilobytes; a file of many thousand
# invocations stops here instead of making its parse slow.
MAX_STORE_BYTES = 1024 * 1024

STORE_QUERY = """
(initializer_pair) @pair
(assignment_expression left: (field_expression) right: (_)) @field_store
"""

# A store into a field: `->f =`, `.f =` (not `==`, `<=`, `+=`: the `=` follows the name).
_STORE_RE = re.compile(rb"(?:->|\.)\s*[A-Za-z_]\w*\s*=(?!=)")
_WORD_PAREN_RE = re.compile(rb"([A-Za-z_]\w*)\s*\(")
# Each expansion is parsed as a statement of a function of its own, or, when it begins as
# an initializer does (`{ .rd = x##_rd }`, `.rd = x##_rd`: an element of an ops table), as
# the initializer of an array (its stores then have no type: "").
_STATEMENT = (b"void __macro_stores(void) { ", b" ; }")
_INITIALIZER = (b"int __macro_stores[] = { ", b" };")


@dataclass(frozen=True, slots=True)
class Expansion:
    """The text one invocation (or a macro its expansion invokes) produces."""

    line: int  # 1-based line of the invocation in the file
    scope: int  # the invocation's scope: the declarations its stores are typed by
    text: bytes  # on one line


def storing_macros(macros: Iterable[MacroDef]) -> dict[str, MacroDef]:
    """The function-like macros whose body stores into a field, or invokes (nested at most
    MAX_DEPTH - 1 levels) one that does; the first definition of a name wins. A macro that
    defines a function is left to cfront/pasted.py."""
    first: dict[str, MacroDef] = {}
    for macro in macros:
        if macro.params is not None:
            first.setdefault(macro.name, macro)
    candidates = {n: m for n, m in first.items() if not pasted.defines_function(m)}
    found = {n: m for n, m in candidates.items() if _STORE_RE.search(m.body)}
    for _ in range(MAX_DEPTH - 1):
        names = {n.encode() for n in found}
        more = {n: m for n, m in candidates.items() if n not in found and any(
            w.group(1) in names for w in _WORD_PAREN_RE.finditer(m.body))}
        if not more:
            break
        found.update(more)
    return found


def expansions(data: bytes, storing: dict[str, MacroDef], directives: Directives,
               invocations: Invocations, scope_at: Callable[[int], int],
               limit: int | None = None) -> tuple[list[Expansion], int]:
    """The expansions of the invocations of the storing macros in data (outside directives:
    one in another macro's body is expanded with that macro's invocation), in file order,
    and the number of invocations left out past limit bytes of produced text."""
    limit = MAX_STORE_BYTES if limit is None else limit
    found: list[tuple[int, int, MacroDef]] = []
    for name, macro in storing.items():
        found.extend((start, paren, macro) for start, paren in invocations.of(name)
                     if not directives.contains(start))
    produced: list[Expansion] = []
    left_out, total = 0, 0
    line, counted = 1, 0
    for start, paren, macro in sorted(found, key=lambda f: f[0]):
        pieces = list(_pieces(pasted.expand_invocation(data, paren, macro), storing,
                              (macro.name,)))
        size = sum(len(p) for p in pieces)
        if not pieces:
            continue
        if total + size > limit:
            left_out += 1
            continue
        total += size
        line += data.count(b"\n", counted, start)
        counted = start
        scope = scope_at(start)
        produced.extend(Expansion(line, scope, p) for p in pieces)
    return produced, left_out


def _pieces(text: bytes | None, storing: dict[str, MacroDef], stack: tuple[str, ...]
            ) -> Iterator[bytes]:
    """text, and the expansions of the storing macros it invokes (not one being expanded:
    the preprocessor does not expand a macro inside itself), to MAX_DEPTH levels."""
    if text is None:
        return
    yield text
    if len(stack) >= MAX_DEPTH:
        return
    brackets: lexer.Brackets | None = None
    for m in _WORD_PAREN_RE.finditer(text):
        name = m.group(1).decode("ascii", "replace")
        inner = storing.get(name)
        if inner is None or name in stack:
            continue
        brackets = brackets or lexer.Brackets(text)
        yield from _pieces(pasted.expand_invocation(text, m.end() - 1, inner, brackets),
                           storing, (*stack, name))


def _balanced(text: bytes) -> bool:
    """Does the text close every bracket it opens (`#define BEGIN(d) { (d)->f = g;` does
    not: wrapped, it would swallow the next lines' wrappers)?"""
    return all(text.count(a) == text.count(b) for a, b in ((b"{", b"}"), (b"(", b")")))


def _broken(store: ts.Node) -> bool:
    """Is a store, or its statement, parsed with an error? An argument that is no
    identifier pastes into no name (`3##_rd32`, `tab[1]##_rd32`): what error recovery reads
    as the value then is a piece of it."""
    statement = store.parent
    return store.has_error or (statement is not None
                               and statement.type == "expression_statement"
                               and statement.has_error)


def _wrapped(text: bytes) -> bytes:
    head, tail = _INITIALIZER if text[:1] in (b"{", b".") else _STATEMENT
    return head + text + tail


class MacroStores:
    """Parses the expansions of one file's storing macros and reads their stores; one per
    Extractor (the parser and query are reused)."""

    def __init__(self, language: ts.Language, parser: ts.Parser) -> None:
        self.parser = parser
        self.query = ts.Query(language, STORE_QUERY)

    def added(self, path: str, stored: tuple[Stored, ...], data: bytes,
              macros: Iterable[MacroDef], directives: Directives, invocations: Invocations,
              types: FileTypes, scope_at: Callable[[int], int]
              ) -> tuple[tuple[Stored, ...], tuple[Problem, ...]]:
        """stored with the stores the file's storing macros make at their invocations, and
        the problem of the invocations left out (if any)."""
        storing = storing_macros(macros)
        if not storing:
            return stored, ()
        produced, left_out = expansions(data, storing, directives, invocations, scope_at)
        produced = [e for e in produced if _balanced(e.text)]
        problems = (Problem(path, (
            f"macro stores: {left_out} invocation(s) not expanded past "
            f"{MAX_STORE_BYTES:,} bytes of produced text")),) if left_out else ()
        if not produced:
            return stored, problems
        more = self._stores(produced, types)
        merged = set(stored) | more
        return tuple(sorted(merged, key=lambda s: (s[3], s[0], s[1], s[2]))), problems

    def _stores(self, produced: list[Expansion], types: FileTypes) -> set[Stored]:
        lines = [_wrapped(e.text) for e in produced]
        starts: list[int] = []
        offset = 0
        for text in lines:
            starts.append(offset)
            offset += len(text) + 1
        tree = self.parser.parse(b"\n".join(lines) + b"\n")
        caps = {name: [n for n in nodes if not _broken(n)]
                for name, nodes in captures(self.query, tree.root_node).items()}

        def scope_of(at: int) -> int:
            return produced[bisect.bisect_right(starts, at) - 1].scope

        return {(struct, field, function, produced[k - 1].line)
                for struct, field, function, k in field_stores(caps, types, scope_of)}
