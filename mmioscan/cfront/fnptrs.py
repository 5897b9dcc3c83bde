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

from mmioscan.cfront.cnodes import text as _text  # interned

FNPTR_QUERY = """
(call_expression function: (field_expression field: (field_identifier) @call_field))
(call_expression function: (parenthesized_expression (pointer_expression
    argument: (field_expression field: (field_identifier) @call_field))))
(initializer_pair) @pair
(assignment_expression left: (field_expression) right: (_)) @field_store
(declaration type: (struct_specifier name: (type_identifier))) @typed
(parameter_declaration type: (struct_specifier name: (type_identifier))) @typed
(field_declaration type: (struct_specifier name: (type_identifier))) @member
"""

Stored = tuple[str, str, str, int]  # (struct type or "", field, function, line)
Indirect = tuple[str, str, int, int, int]  # (field, struct type or "", line, column, scope)

_DECLARATORS = frozenset({"init_declarator", "pointer_declarator", "array_declarator",
                          "parenthesized_declarator", "attributed_declarator"})


def _declared(node: ts.Node | None) -> str | None:
    """The name a declarator declares (`*p`, `x[4]`, `x = ...`, a member's); None for a
    function's."""
    while node is not None and node.type in _DECLARATORS:
        node = node.child_by_field_name("declarator")
    return _text(node) if node is not None and node.type in ("identifier",
                                                              "field_identifier") else None


def _struct_name(kind: ts.Node | None) -> str:
    """`struct T` of a struct_specifier with a name, else ""."""
    if kind is None or kind.type != "struct_specifier":
        return ""
    name = kind.child_by_field_name("name")
    return f"struct {_text(name)}" if name is not None else ""


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
        """The type of an object expression: `struct T` of an identifier declared with it,
        `struct T.f.g` for `x->f.g` (the type of member g of member f of T, which the call
        graph looks up in the members' types: one more layer per field), or ""."""
        fields: list[str] = []
        while node is not None and node.type in ("field_expression",
                                                 "parenthesized_expression"):
            if node.type == "field_expression":
                fields.append(_text(node.child_by_field_name("field")))
                node = node.child_by_field_name("argument")
            else:
                node = node.named_children[-1] if node.named_children else None
        if node is None or node.type != "identifier":
            return ""
        name = _text(node)
        base = self._types.get((scope, name)) or self._types.get((-1, name), "")
        return ".".join((base, *reversed(fields))) if base else ""


def member_types(members: list[ts.Node]) -> tuple[tuple[str, str, str], ...]:
    """(struct, member, member's struct type) of the members declared with a struct type in
    a named struct (`struct e1000_hw { struct e1000_mac_info mac; }`), pointers included."""
    found: set[tuple[str, str, str]] = set()
    for member in members:
        body = member.parent
        outer = _struct_name(body.parent if body is not None else None)
        inner = _struct_name(member.child_by_field_name("type"))
        if not outer or not inner:
            continue
        for d in member.children_by_field_name("declarator"):
            name = _declared(d)
            if name is not None:
                found.add((outer, name, inner))
    return tuple(sorted(found))


class _Initialised:
    """The type each initializer list initialises, memoised per list (nested lists ask
    their parents once): `struct T x = { .ops = { .f = fn } }` -> `struct T.ops` for `.f`."""

    def __init__(self) -> None:
        self._memo: dict[int, str] = {}

    def of_pair(self, pair: ts.Node) -> str:
        """The type whose member the pair's (last) designator names."""
        base = self.of_list(pair.parent)
        steps = _steps(pair)
        if not base or steps is None:
            return ""
        return ".".join((base, *steps[:-1]))

    def of_list(self, node: ts.Node | None) -> str:
        """Walks up to a list of known type, then down again (no recursion: nesting may be
        deep in a hostile file)."""
        if node is None or node.type != "initializer_list":
            return ""
        pending: list[tuple[ts.Node, tuple[str, ...] | None]] = []
        cur = node
        while cur.id not in self._memo:
            parent = cur.parent
            if parent is not None and parent.type == "initializer_list":  # an array element
                pending.append((cur, ()))
                cur = parent
            elif (parent is not None and parent.type == "initializer_pair"
                  and parent.parent is not None and parent.parent.type == "initializer_list"):
                pending.append((cur, _steps(parent)))  # `.ops = { ... }`
                cur = parent.parent
            else:
                self._memo[cur.id] = _base_type(parent)
        found = self._memo[cur.id]
        for lst, steps in reversed(pending):
            found = ".".join((found, *steps)) if found and steps is not None else ""
            self._memo[lst.id] = found
        return found


def _steps(pair: ts.Node) -> tuple[str, ...] | None:
    """The member names of a pair's designators (`.a.b`), None with an array index."""
    designators = pair.children_by_field_name("designator")
    if not designators or any(d.type != "field_designator" or not d.named_children
                              for d in designators):
        return None
    return tuple(_text(d.named_children[0]) for d in designators)


def _base_type(parent: ts.Node | None) -> str:
    """The type an outermost initializer list initialises: a declaration's, a compound
    literal's, "" otherwise."""
    if parent is None:
        return ""
    if parent.type == "init_declarator":
        decl = parent.parent
        return _struct_name(decl.child_by_field_name("type") if decl is not None else None)
    if parent.type == "compound_literal_expression":
        desc = parent.child_by_field_name("type")
        kind = desc.child_by_field_name("type") if desc is not None else None
        glued = _text(kind)  # `(struct T){`: preprocess.py joined a type in parentheses
        if kind is not None and kind.type == "type_identifier" and glued.startswith("struct_"):
            return "struct " + glued[len("struct_"):]
        return _struct_name(kind)
    return ""


def field_stores(caps: dict[str, list[ts.Node]], types: FileTypes,
                 scope_at: Callable[[int], int]) -> set[Stored]:
    """The stores of the `pair` and `field_store` captures, typed by types in the scope
    scope_at gives for a store's offset (a macro's expansion: the invocation's)."""
    stored: set[Stored] = set()
    initialised = _Initialised()
    for pair in caps.get("pair", []):
        designators = pair.children_by_field_name("designator")
        last = designators[-1] if designators else None
        if last is None or last.type != "field_designator":
            continue
        name = function_value(pair.child_by_field_name("value"))
        if name is not None:
            field = _text(last.named_children[0]) if last.named_children else ""
            stored.add((initialised.of_pair(pair), field, name, pair.start_point[0] + 1))
    for assign in caps.get("field_store", []):
        name = function_value(assign.child_by_field_name("right"))
        left = assign.child_by_field_name("left")
        if name is None or left is None:
            continue
        struct = types.of(left.child_by_field_name("argument"), scope_at(assign.start_byte))
        field = _text(left.child_by_field_name("field"))
        stored.add((struct, field, name, assign.start_point[0] + 1))
    return stored


def file_fnptrs(caps: dict[str, list[ts.Node]], scope_at: Callable[[int], int]
                ) -> tuple[tuple[Stored, ...], tuple[Indirect, ...],
                           tuple[tuple[str, str, str], ...], FileTypes]:
    """Stores into fields, calls through fields and the struct types of members, from the
    captures of FNPTR_QUERY over the file (and the declared types, for the registrations)."""
    types = FileTypes(caps.get("typed", []), scope_at)
    stored = field_stores(caps, types, scope_at)
    calls: list[Indirect] = []
    for node in caps.get("call_field", []):
        member = node.parent
        scope = scope_at(node.start_byte)
        struct = types.of(member.child_by_field_name("argument") if member else None, scope)
        row, col = node.start_point
        calls.append((_text(node), struct, row + 1, col + 1, scope))
    return (tuple(sorted(stored, key=lambda s: (s[3], s[0], s[1], s[2]))),
            tuple(sorted(set(calls), key=lambda c: (c[2], c[3], c[0]))),
            member_types(caps.get("member", [])), types)


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
