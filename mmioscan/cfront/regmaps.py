"""Regmap facts of one file: which maps are made where, and which map each API call uses.

A map is named the way the code names it: the last field or variable of the expression that
holds it (`priv->regmap`, `map`, `data->fields[F_EN]` -> "regmap", "map", "fields"), with its
owner: the struct type of the expression's base when the file declares it (`struct foo *priv`
-> "foo"), "@function" for a local variable or parameter, "" otherwise. The analysis
(analysis/regmaps.py) matches API calls to makers by name and owner within a driver.

Records are plain tuples (they pickle fast and cross the cache):
- maps: (maker, target, owner, line, args): a call of a maker whose result (or, for
  regmap_field_bulk_alloc, whose output argument) is stored in target; args are the call's
  arguments' names normalised the same way; for a regmap_field maker, (map name, map owner)
  of its map argument. maker "=" is a copy: `priv->map = map`, args (source name, owner).
- uses: (line, column, target, owner): the first argument of a regmap API call.
- configs: (name, fields): `struct regmap_config NAME = { .reg_read = fn, ... }` -> (NAME,
  (("reg_read", "fn"), ...)).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import tree_sitter as ts

from mmioscan.cfront.cnodes import text as _text  # interned

MapRecord = tuple[str, str, str, int, tuple[str, ...]]
UseRecord = tuple[int, int, str, str]
ConfigRecord = tuple[str, tuple[tuple[str, str], ...]]

_TRANSPARENT = frozenset({"parenthesized_expression", "cast_expression", "pointer_expression"})
_DECLARATOR_WRAPPERS = frozenset({"pointer_declarator", "array_declarator", "init_declarator",
                                  "parenthesized_declarator", "attributed_declarator"})


def _strip(node: ts.Node) -> ts.Node:
    while node.type in _TRANSPARENT:
        inner = (node.child_by_field_name("value") if node.type == "cast_expression"
                 else node.child_by_field_name("argument") if node.type == "pointer_expression"
                 else (node.named_children[0] if node.named_children else None))
        if inner is None:
            break
        node = inner
    return node


def _declarator_name(node: ts.Node | None) -> str | None:
    while node is not None:
        if node.type == "identifier":
            return _text(node)
        if node.type == "function_declarator":
            inner = node.child_by_field_name("declarator")
            if inner is None or inner.type != "parenthesized_declarator":
                return None
            node = inner
            continue
        if node.type == "parenthesized_declarator":
            node = node.named_children[0] if node.named_children else None
            continue
        if node.type in _DECLARATOR_WRAPPERS:
            node = node.child_by_field_name("declarator")
            continue
        return None
    return None


def _type_name(holder: ts.Node) -> str:
    """`struct foo` -> "foo", `foo_t` -> "foo_t", anything else ""."""
    kind = holder.child_by_field_name("type")
    if kind is None:
        return ""
    if kind.type in ("struct_specifier", "union_specifier"):
        return _text(kind.child_by_field_name("name"))
    return _text(kind) if kind.type == "type_identifier" else ""


def _declarations(node: ts.Node, descend: bool) -> dict[str, str]:
    """Variables declared by node (and below it): name -> type name."""
    found: dict[str, str] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in ("declaration", "parameter_declaration"):
            type_name = _type_name(current)
            for decl in current.children_by_field_name("declarator"):
                name = _declarator_name(decl)
                if name is not None:
                    found.setdefault(name, type_name)
        if descend:
            stack.extend(current.named_children)
    return found


def _function_name(node: ts.Node) -> str:
    decl = node.child_by_field_name("declarator")
    while decl is not None and decl.type != "function_declarator":
        decl = decl.child_by_field_name("declarator")
    return _declarator_name(decl.child_by_field_name("declarator")) or "" if decl else ""


class _Scopes:
    """Declared variables per function (memoised) and at file scope."""

    def __init__(self, root: ts.Node) -> None:
        self.root = root
        self._functions: dict[int, tuple[str, dict[str, str]]] = {}
        self._file: dict[str, str] | None = None

    def function_of(self, node: ts.Node) -> ts.Node | None:
        parent = node.parent
        while parent is not None and parent.type != "function_definition":
            parent = parent.parent
        return parent

    def local(self, function: ts.Node) -> tuple[str, dict[str, str]]:
        found = self._functions.get(function.id)
        if found is None:
            names: dict[str, str] = {}
            for part in (function.child_by_field_name("declarator"),
                         function.child_by_field_name("body")):
                if part is not None:
                    names.update(_declarations(part, descend=True))
            found = self._functions[function.id] = (_function_name(function), names)
        return found

    def file(self) -> dict[str, str]:
        if self._file is None:
            self._file = {}
            for child in self.root.named_children:
                if child.type == "declaration":
                    self._file.update(_declarations(child, descend=False))
        return self._file

    def type_of(self, name: str, function: ts.Node | None) -> str:
        if function is not None:
            _, names = self.local(function)
            if name in names:
                return names[name]
        return self.file().get(name, "")

    def name(self, expr: ts.Node, function: ts.Node | None) -> tuple[str, str]:
        """(target, owner) of an expression that holds a map (see the module docstring)."""
        node = _strip(expr)
        if node.type == "subscript_expression":
            inner = node.child_by_field_name("argument")
            node = _strip(inner) if inner is not None else node
        if node.type == "identifier":
            text = _text(node)
            if function is not None:
                fname, names = self.local(function)
                if text in names:
                    return text, "@" + fname
            return text, ""
        if node.type == "field_expression":
            base = node.child_by_field_name("argument")
            field = _text(node.child_by_field_name("field"))
            base = _strip(base) if base is not None else None
            owner = ""
            if base is not None and base.type == "identifier":
                owner = self.type_of(_text(base), function)
            return field, owner
        if node.type == "call_expression":
            return "()" + _text(node.child_by_field_name("function")), ""
        return _text(node), ""


def _receiver(call: ts.Node) -> ts.Node | None:
    """The expression that receives the call's value: `x = call`, `T *x = call`, `return`."""
    node = call
    parent = node.parent
    while parent is not None and parent.type in ("parenthesized_expression", "cast_expression"):
        node, parent = parent, parent.parent
    if parent is None:
        return None
    if parent.type == "assignment_expression" and parent.child_by_field_name("right") == node:
        return parent.child_by_field_name("left")
    if parent.type == "init_declarator" and parent.child_by_field_name("value") == node:
        return parent.child_by_field_name("declarator")
    if parent.type == "return_statement":
        return parent
    return None


def regmap_facts(root: ts.Node, callees: Iterable[ts.Node], fields: Iterable[ts.Node],
                 wanted: Callable[[str], bool], api: frozenset[str],
                 field_alloc: dict[str, tuple[int, ...]], callback_fields: frozenset[str],
                 generic: frozenset[str] = frozenset(),
                 ) -> tuple[tuple[MapRecord, ...], tuple[UseRecord, ...],
                            tuple[ConfigRecord, ...]]:
    """The maps, uses and configs of one file (see the module docstring). `wanted` says which
    callee names make or find a map; `api` are the regmap API names."""
    scopes = _Scopes(root)
    maps: list[MapRecord] = []
    uses: list[UseRecord] = []
    local_targets: dict[int, tuple[ts.Node, set[tuple[str, str]]]] = {}
    configured: dict[int, ts.Node] = {}  # functions calling a generic maker
    for callee in callees:
        name = _text(callee)
        is_api = name in api
        if not is_api and not wanted(name):
            continue
        call = callee.parent
        args_node = call.child_by_field_name("arguments") if call is not None else None
        if call is None or args_node is None:
            continue
        function = scopes.function_of(call)
        if name in generic and function is not None:
            configured[function.id] = function
        args = args_node.named_children
        if is_api:
            if args:
                target, owner = scopes.name(args[0], function)
                uses.append((callee.start_point[0] + 1, callee.start_point[1] + 1, target, owner))
            continue
        named = tuple(scopes.name(a, function) for a in args)
        out = field_alloc.get(name, (0, -1))[1]
        if out >= 0:
            target, owner = named[out] if out < len(named) else ("", "")
        else:
            receiver = _receiver(call)
            if receiver is None:
                target, owner = "", ""
            elif receiver.type == "return_statement":
                target, owner = "()" + (scopes.local(function)[0] if function else ""), ""
            elif receiver.type in _DECLARATOR_WRAPPERS or receiver.type == "identifier" and (
                    receiver.parent is not None and receiver.parent.type == "init_declarator"):
                declared = _declarator_name(receiver) or ""
                target = declared
                owner = "@" + scopes.local(function)[0] if function is not None else ""
            else:
                target, owner = scopes.name(receiver, function)
        kept: tuple[str, ...]
        if name in field_alloc:  # the map the field is of: (name, owner)
            index = field_alloc[name][0]
            kept = named[index] if index < len(named) else ("", "")
        else:
            kept = tuple(n for n, _ in named)
        maps.append((name, target, owner, call.start_point[0] + 1, kept))
        if owner.startswith("@") and function is not None:
            local_targets.setdefault(function.id, (function, set()))[1].add((target, owner))
    for function, targets in local_targets.values():
        maps.extend(_copies(function, targets, scopes))
    configs = _configs(fields, callback_fields) + tuple(
        c for f in configured.values() for c in _assigned_configs(f, callback_fields))
    return tuple(maps), tuple(uses), configs


def _assigned_configs(function: ts.Node, callback_fields: frozenset[str]
                      ) -> list[ConfigRecord]:
    """`conf.reg_read = fn;` in a function that calls regmap_init: (conf, (("reg_read", fn),))."""
    found: list[ConfigRecord] = []
    stack = [function]
    while stack:
        node = stack.pop()
        stack.extend(node.named_children)
        if node.type != "assignment_expression":
            continue
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        if left is None or right is None or left.type != "field_expression":
            continue
        field = _text(left.child_by_field_name("field"))
        base = left.child_by_field_name("argument")
        if field not in callback_fields or base is None:
            continue
        base = _strip(base)
        value = _strip(right)
        name = (_text(base.child_by_field_name("field")) if base.type == "field_expression"
                else _text(base))
        if value.type == "identifier":
            found.append((name, ((field, _text(value)),)))
    return found


def _copies(function: ts.Node, targets: set[tuple[str, str]], scopes: _Scopes
            ) -> list[MapRecord]:
    """`priv->regmap = map` (and `struct regmap *m = map`) where map holds a made map."""
    found: list[MapRecord] = []
    stack = [function]
    while stack:
        node = stack.pop()
        stack.extend(node.named_children)
        if node.type == "assignment_expression":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        elif node.type == "init_declarator":
            left, right = node.child_by_field_name("declarator"), node.child_by_field_name(
                "value")
        else:
            continue
        if left is None or right is None or _strip(right).type != "identifier":
            continue
        source = scopes.name(right, function)
        if source not in targets:
            continue
        if node.type == "init_declarator":
            target = (_declarator_name(left) or "", "@" + scopes.local(function)[0])
        else:
            target = scopes.name(left, function)
        if target != source:
            found.append(("=", target[0], target[1], node.start_point[0] + 1, source))
    return found


def _configs(fields: Iterable[ts.Node], callback_fields: frozenset[str]
             ) -> tuple[ConfigRecord, ...]:
    """Initialisers with a callback field: `NAME = { .reg_read = fn, ... }`."""
    lists: dict[int, ts.Node] = {}
    for field in fields:
        if _text(field) not in callback_fields:
            continue
        pair = field.parent.parent if field.parent is not None else None
        body = pair.parent if pair is not None else None
        if body is not None and body.type == "initializer_list":
            lists[body.id] = body
    found: list[ConfigRecord] = []
    for body in sorted(lists.values(), key=lambda n: n.start_byte):
        holder = body.parent
        if holder is None or holder.type != "init_declarator":
            continue
        name = _declarator_name(holder.child_by_field_name("declarator"))
        if name is None:
            continue
        pairs: list[tuple[str, str]] = []
        for pair in body.named_children:
            if pair.type != "initializer_pair":
                continue
            designator = pair.child_by_field_name("designator")
            value = pair.child_by_field_name("value")
            if designator is None or value is None or designator.type != "field_designator":
                continue
            key = _text(designator.named_children[0]) if designator.named_children else ""
            if key in callback_fields or key == "io_port":
                pairs.append((key, _text(_strip(value))))
        found.append((name, tuple(pairs)))
    return tuple(found)
