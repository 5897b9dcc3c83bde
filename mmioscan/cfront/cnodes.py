"""Small tree-sitter helpers shared by the analyses of declarations: the raw-dereference
finder (cfront/iomem.py), the RAM-backed pointer rule (cfront/rambacked.py), the extractor's
scopes and the parameter flows (cfront/extract.py, cfront/flows.py)."""

from __future__ import annotations

import operator
import re
import sys
from collections.abc import Iterable

import tree_sitter as ts

from mmioscan.cfront.lexer import IDENT_BYTES

WORD_RE = re.compile(rb"\w+")  # a maximal run of IDENT_BYTES bytes (bytes patterns: ASCII \w)

# Up to this many names, one `find` pass per name beats one pass over every word of the file.
FEW_NAMES = 16

# Declarator nodes between a declaration and the name it declares.
DECLARATOR_STEPS = frozenset({
    "pointer_declarator", "array_declarator", "parenthesized_declarator", "init_declarator",
    "attributed_declarator", "function_declarator"})
DECLARATIONS = frozenset({"declaration", "parameter_declaration", "field_declaration"})
# Where a declaration's name is visible: the innermost of these around it.
BLOCKS = frozenset({"compound_statement", "for_statement", "translation_unit"})


_START = operator.attrgetter("start_byte")
_SPAN = operator.attrgetter("start_byte", "end_byte")


def captures(query: ts.Query, node: ts.Node) -> dict[str, list[ts.Node]]:
    """The nodes of each capture of query under node, in source order (by start, then end).

    py-tree-sitter gathers each capture's nodes in a set: its lists come in the order of
    the nodes' hashes, memory addresses that change from run to run. Read in that order,
    the regmap records came out shuffled and the last declaration of a name (fnptrs.py's
    types) was a random one; sorted, a file's facts are the same in every run. (Two nodes
    of one span under one capture, an ERROR in an ERROR, are only counted.)"""
    found = ts.QueryCursor(query).captures(node)
    for nodes in found.values():
        # By start alone is four times cheaper (no tuples to compare); nodes starting
        # together are rare (a capture of nested nodes, a zero-width MISSING node).
        nodes.sort(key=_START)
        if len(set(map(_START, nodes))) < len(nodes):
            nodes.sort(key=_SPAN)
    return found


def text(node: ts.Node | None) -> str:
    """A node's source text, interned: a file names the same callees, fields and types many
    times, and one shared string per name keeps its record small (the pickle writes a string
    object once, and a whole-tree run holds 2.5 million calls in memory)."""
    return sys.intern((node.text or b"").decode("utf-8", "replace")) if node is not None else ""


def function_declarator(definition: ts.Node) -> ts.Node | None:
    """The function_declarator of a function_definition, through pointer and parenthesised
    declarators (`static int (*f(void))(int)`)."""
    node = definition.child_by_field_name("declarator")
    while node is not None and node.type != "function_declarator":
        node = node.child_by_field_name("declarator")
    return node


def same(a: ts.Node | None, b: ts.Node) -> bool:
    return a is not None and a.id == b.id


def declared(declarator: ts.Node) -> tuple[ts.Node, int, bool] | None:
    """(name node, pointer/array levels, declares a function) of a declarator.

    `*regs[4]` is 2 levels; `*foo(void)` a function returning 1 level; a pointer to a
    function (`(*fn)(...)`) is None: calling it is not a dereference of MMIO.
    """
    depth = 0
    function_at: int | None = None
    node: ts.Node | None = declarator
    while node is not None:
        kind = node.type
        if kind in ("identifier", "field_identifier", "type_identifier"):
            if function_at is not None and depth > function_at:
                return None
            return node, (function_at if function_at is not None else depth), (
                function_at is not None)
        if kind in ("pointer_declarator", "array_declarator"):
            depth += 1
        elif kind == "function_declarator":
            if function_at is not None:
                return None
            function_at = depth
        elif kind not in DECLARATOR_STEPS:
            return None
        if kind == "parenthesized_declarator":
            node = node.named_children[0] if node.named_children else None
        else:
            node = node.child_by_field_name("declarator")
    return None


def binding_block(decl: ts.Node) -> tuple[int, int] | None:
    """Byte range in which a declaration's names are visible; None for prototype parameters."""
    if decl.type == "parameter_declaration":
        up = decl.parent.parent if decl.parent is not None else None  # parameter_list, declarator
        if up is None or up.type != "function_declarator":
            return None
        up = up.parent
        while up is not None and up.type in ("pointer_declarator", "parenthesized_declarator",
                                             "attributed_declarator"):
            up = up.parent
        if up is None or up.type != "function_definition":
            return None
        return up.start_byte, up.end_byte
    up = decl.parent
    while up is not None and up.type not in BLOCKS:
        up = up.parent
    return (up.start_byte, up.end_byte) if up is not None else None


def declaration_of(name: ts.Node) -> ts.Node | None:
    """The declaration (or parameter, or field) whose declarator names this identifier."""
    node = name
    parent = node.parent
    while parent is not None and parent.type in DECLARATOR_STEPS:
        if parent.type == "parenthesized_declarator":
            pass
        elif not same(parent.child_by_field_name("declarator"), node):
            return None  # an array size or an initialiser: a use
        if parent.type == "function_declarator":
            return None  # the function's own name
        node, parent = parent, parent.parent
    if parent is None or parent.type not in DECLARATIONS:
        return None
    return parent if any(same(d, node) for d in parent.children_by_field_name("declarator")) \
        else None


def occurrences(data: bytes, names: Iterable[str], within: tuple[int, int] | None = None
                ) -> list[tuple[int, int]]:
    """(start, end) of every whole-word occurrence of the names, in file order (only inside
    the byte range `within` if given: a block's names are looked for in the block). A `find`
    loop per name: a file tracks a handful, and a per-file alternation regex costs its
    compile. Past FEW_NAMES names (8,000 globals, one pass each, took 2 s) one pass over the
    file's words is cheaper."""
    names = list(names)
    size = len(data)
    low, high = within if within is not None else (0, size)
    if len(names) > FEW_NAMES:
        wanted = {n.encode() for n in names}
        return [m.span() for m in WORD_RE.finditer(data, low, high) if m.group() in wanted
                and (m.start() == 0 or data[m.start() - 1] not in IDENT_BYTES)]
    found: list[tuple[int, int]] = []
    for name in names:
        word = name.encode()
        start = data.find(word, low, high)
        while start >= 0:
            end = start + len(word)
            if (start == 0 or data[start - 1] not in IDENT_BYTES) and (
                    end == size or data[end] not in IDENT_BYTES):
                found.append((start, end))
            start = data.find(word, end, high)
    return sorted(found)


def arguments(args: ts.Node) -> list[ts.Node]:
    return [a for a in args.named_children if a.type != "comment"]
