"""Function pointers in one file: functions stored into fields, and calls through fields.

The fast engine's half of the indirect-call rule (analysis/callgraph.py resolves it): a
type-based reading in the spirit of multi-layer type analysis, at one layer. Recorded:

- stores: `.f = fn` in an initializer (`struct T x = { .f = fn }`, arrays of them, compound
  literals; nested `{ .ops = { .f = fn } }` with the type unknown) and `x->f = fn`,
  `x.f = fn`, as (struct type, field, function, line); the type is `struct T` when the
  declaration of the initialised object or of `x` (a parameter, a local, a global of the
  file) is in sight, "" otherwise;
- calls: `p->f(...)`, `p->ops->f(...)`, `p.f(...)`, `(*p->f)(...)`, as (field, struct type
  of the object holding the field when `p` is declared in sight, line, column, scope).

The value stored must be a plain identifier (or `&fn`); names in capitals are constants or
macros, never functions. Which of the names are functions is the call graph's to decide.
"""

from __future__ import annotations

from collections.abc import Callable

import tree_sitter as ts

FNPTR_QUERY = """
(call_expression function: (field_expression field: (field_identifier) @call_field))
(call_expression function: (parenthesized_expression (pointer_expression
    argument: (field_expression field: (field_identifier) @call_field))))
(initializer_pair) @pair
(assignment_expression left: (field_expression) right: (_)) @assign
(declaration type: (struct_specifier name: (type_identifier))) @typed
(parameter_declaration type: (struct_specifier name: (type_identifier))) @typed
"""

Stored = tuple[str, str, str, int]  # (struct type or "", field, function, line)
Indirect = tuple[str, str, int, int, int]  # (field, struct type or "", line, column, scope)

_DECLARATORS = frozenset({"init_declarator", "pointer_declarator", "array_declarator",
                          "parenthesized_declarator", "attributed_declarator"})


def _text(node: ts.Node | None) -> str:
    return (node.text or b"").decode("utf-8", "replace") if node is not None else ""


def _declared(node: ts.Node | None) -> str | None:
    """The name a declarator declares (`*p`, `x[4]`, `x = ...`); None for a function's."""
    while node is not None and node.type in _DECLARATORS:
        node = node.child_by_field_name("declarator")
    return _text(node) if node is not None and node.type == "identifier" else None


def function_value(node: ts.Node | None) -> str | None:
    """`fn` or `&fn` (through parentheses and casts): a name that may be a function."""
    while node is not None and node.type in ("parenthesized_expression", "cast_expression",
                                             "pointer_expression"):
        if node.type == "pointer_expression" and _text(node.child_by_field_name(
                "operator")) != "&":
            return None
        node = node.child_by_field_name("argument") or node.child_by_field_name("value") or (
            node.named_children[-1] if node.named_children else None)
    if node is None or node.type != "identifier":
        return None
    name = _text(node)
    return None if name.upper() == name else name  # NULL, constants, macros


class FileTypes:
    """`struct T` of the names declared in each scope of the file (-1: file scope)."""

    def __init__(self, typed: list[ts.Node], scope_at: Callable[[int], int]) -> None:
        self._types: dict[tuple[int, str], str] = {}
        for decl in typed:
            kind = decl.child_by_field_name("type")
            struct = f"struct {_text(kind.child_by_field_name('name'))}" if kind else ""
            scope = scope_at(decl.start_byte)
            for d in decl.children_by_field_name("declarator"):
                name = _declared(d)
                if name is not None:
                    self._types.setdefault((scope, name), struct)

    def of(self, node: ts.Node | None, scope: int) -> str:
        """The struct type `node` (an identifier) was declared with, or ""."""
        if node is None or node.type != "identifier":
            return ""
        name = _text(node)
        return self._types.get((scope, name)) or self._types.get((-1, name), "")


def _initialised_type(pair: ts.Node, types: FileTypes, scope: int) -> str:
    """The struct type an initializer_pair's list initialises: the declaration's (through
    array elements), a compound literal's, "" when nested in another field's list."""
    node = pair.parent
    while node is not None and node.type == "initializer_list":
        node = node.parent
    if node is None:
        return ""
    if node.type == "init_declarator":
        decl = node.parent
        kind = decl.child_by_field_name("type") if decl is not None else None
        if kind is not None and kind.type == "struct_specifier":
            name = kind.child_by_field_name("name")
            return f"struct {_text(name)}" if name is not None else ""
    if node.type == "compound_literal_expression":
        desc = node.child_by_field_name("type")
        kind = desc.child_by_field_name("type") if desc is not None else None
        if kind is not None and kind.type == "struct_specifier":
            name = kind.child_by_field_name("name")
            return f"struct {_text(name)}" if name is not None else ""
    return ""


def file_fnptrs(query: ts.Query, root: ts.Node, scope_at: Callable[[int], int]
                ) -> tuple[tuple[Stored, ...], tuple[Indirect, ...], FileTypes]:
    """Stores into fields and calls through fields, in one query over the file (and the
    declared types, for the registrations)."""
    caps = ts.QueryCursor(query).captures(root)
    types = FileTypes(caps.get("typed", []), scope_at)
    stored: set[Stored] = set()
    for pair in caps.get("pair", []):
        designators = pair.children_by_field_name("designator")
        last = designators[-1] if designators else None
        if last is None or last.type != "field_designator":
            continue
        name = function_value(pair.child_by_field_name("value"))
        if name is not None:
            field = _text(last.named_children[0]) if last.named_children else ""
            struct = _initialised_type(pair, types, scope_at(pair.start_byte))
            if len(designators) > 1:
                struct = ""  # `.a.b = fn`: the type of a is not known here
            stored.add((struct, field, name, pair.start_point[0] + 1))
    for assign in caps.get("assign", []):
        name = function_value(assign.child_by_field_name("right"))
        left = assign.child_by_field_name("left")
        if name is None or left is None:
            continue
        struct = types.of(left.child_by_field_name("argument"), scope_at(assign.start_byte))
        field = _text(left.child_by_field_name("field"))
        stored.add((struct, field, name, assign.start_point[0] + 1))
    calls: list[Indirect] = []
    for node in caps.get("call_field", []):
        member = node.parent
        scope = scope_at(node.start_byte)
        struct = types.of(member.child_by_field_name("argument") if member else None, scope)
        row, col = node.start_point
        calls.append((_text(node), struct, row + 1, col + 1, scope))
    return (tuple(sorted(stored, key=lambda s: (s[3], s[0], s[1], s[2]))),
            tuple(sorted(set(calls), key=lambda c: (c[2], c[3], c[0]))), types)


def field_root(arg: ts.Node, types: FileTypes | None, scope: int) -> str | None:
    """A registration argument read from a field (`chip->interrupt`, `&priv->ops.poll`):
    `->field`, or `struct T->field` when the object's type is in sight; the call graph
    expands it into the functions stored there."""
    node = arg
    while node.type in ("parenthesized_expression", "cast_expression"):
        inner = node.child_by_field_name("value") or (
            node.named_children[-1] if node.named_children else None)
        if inner is None:
            return None
        node = inner
    if node.type != "field_expression":
        return None
    field = _text(node.child_by_field_name("field"))
    struct = types.of(node.child_by_field_name("argument"), scope) if types else ""
    return f"{struct}->{field}"


ASSIGN_QUERY = """
(assignment_expression left: (identifier) @name right: (_) @value)
(init_declarator declarator: (_) @name value: (_) @value)
"""


def _choices(node: ts.Node | None) -> list[str]:
    """Functions an expression may evaluate to: `fn`, `&fn`, `c ? a : b` (nested)."""
    while node is not None and node.type == "parenthesized_expression" and node.named_children:
        node = node.named_children[-1]
    if node is not None and node.type == "conditional_expression":
        return [*_choices(node.child_by_field_name("consequence")),
                *_choices(node.child_by_field_name("alternative"))]
    name = function_value(node)
    return [name] if name is not None else []


class Assignments:
    """Functions assigned to each local of a function (`poll = fast ? a : b`), read once
    per function that registers a callback through a variable (linear in the file)."""

    def __init__(self, query: ts.Query) -> None:
        self._query = query
        self._memo: dict[int, dict[str, list[str]]] = {}

    def choices(self, arg: ts.Node) -> list[str]:
        """The functions a variable passed as a registration argument may hold."""
        function = arg.parent
        while function is not None and function.type != "function_definition":
            function = function.parent
        if function is None:
            return []
        found = self._memo.get(function.id)
        if found is None:
            found = self._memo[function.id] = {}
            cursor = ts.QueryCursor(self._query)
            cursor.set_byte_range(function.start_byte, function.end_byte)
            for _, match in cursor.matches(function):
                names, values = match.get("name", []), match.get("value", [])
                target = _declared(names[0]) if names else None
                if target is not None and values:
                    found.setdefault(target, []).extend(_choices(values[0]))
        return sorted(set(found.get(_text(arg), ())))
