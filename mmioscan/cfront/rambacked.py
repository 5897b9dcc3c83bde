"""`__iomem` pointers whose value is RAM (rules/ram.toml, docs/domain.md "RAM behind __iomem").

Some drivers annotate a pointer `__iomem` though it only ever holds ordinary memory: a buffer
from dma_pool_alloc, a DBDMA command ring from dma_alloc_coherent, the address of a static
object. Dereferences through such a pointer are memory accesses, not MMIO. The raw-deref
finder (cfront/iomem.py) asks `points_to_ram(expr)` of the expression each site was reached
from and leaves out the sites whose every origin does.

A variable (one declaration: a local, a static global, a parameter of a static function) or
a struct field (by name, over the file) is RAM-backed when it has at least one assignment and
every assignment of the file gives it a RAM value, where a RAM value may be another RAM-backed
name. That is a least fixed point over the names met: a name starts unknown and becomes
RAM-backed once all its sources are RAM, its own value counting as RAM in its sources (`p = p
+ 4` keeps p where it was) as long as one source is RAM without it. Anything unknown (a call
of another function, a value read from memory, a name whose address is taken or that a macro
body mentions) keeps the name MMIO: only what the file proves is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass

import tree_sitter as ts

from mmioscan.cfront.cnodes import (
    arguments,
    binding_block,
    declaration_of,
    declared,
    function_declarator,
    occurrences,
    same,
    text,
)
from mmioscan.core.ruleset import RamSources

# ("var", offset of the declared name) or ("field", field name)
Key = tuple[str, int | str]

# Nodes where a declaration's names become visible to the code after them.
_SCOPES = frozenset({"compound_statement", "for_statement", "translation_unit"})
# Conditional-compilation wrappers whose declarations belong to the enclosing block.
_PREPROC = frozenset({"preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif",
                      "preproc_elifdef"})
# An occurrence of a name inside one of these is no use of a variable.
_NOT_CODE = frozenset({"comment", "string_literal", "string_content", "char_literal",
                       "escape_sequence", "system_lib_string", "concatenated_string",
                       "field_identifier", "type_identifier", "statement_identifier",
                       "primitive_type", "number_literal"})
_KEEPING = frozenset({"+=", "-="})  # compound assignments that keep a pointer in its memory


@dataclass(slots=True)
class _Decl:
    """One declaration of a name the file makes."""

    name: ts.Node  # the declared identifier
    decl: ts.Node  # its declaration, parameter_declaration or function_definition
    array: bool  # `buf[64]`: the name is an array, its value the array's address
    function: bool


class _Everything:
    """A `ram` set holding every key, recording the ones asked: the names a value depends on."""

    def __init__(self) -> None:
        self.asked: set[Key] = set()

    def __contains__(self, key: object) -> bool:
        if isinstance(key, tuple):
            self.asked.add(key)
        return True


class _With:
    """The RAM-backed set and one name assumed RAM: its own value in its sources."""

    def __init__(self, ram: set[Key], key: Key) -> None:
        self.ram, self.key = ram, key

    def __contains__(self, key: object) -> bool:
        return key == self.key or key in self.ram


class RamBacked:
    """Which pointer values of one parse tree point into RAM."""

    def __init__(self, root: ts.Node, clean: bytes, rules: RamSources,
                 in_directive: Callable[[int], bool], skip: Callable[[int], bool],
                 macros: frozenset[str] = frozenset()) -> None:
        self.root, self.clean, self.rules = root, clean, rules
        self.in_directive, self.skip = in_directive, skip
        self.macros = macros  # the file's function-like macros: they may assign an argument
        self.tables: dict[int, dict[str, list[_Decl]]] = {}  # scope node id -> declarations
        self.sources: dict[Key, list[ts.Node] | None] = {}
        self.decls: dict[int, _Decl] = {}  # a var key's declaration
        self.ram: set[Key] = set()
        self.users: dict[Key, set[Key]] = {}  # key -> the keys whose sources mention it
        self.checked: dict[Key, int] = {}  # key -> how many of its first sources are RAM
        self.arrays: dict[str, bool] = {}  # field name -> every declaration of it an array

    # -- the question -----------------------------------------------------------------------

    def points_to_ram(self, expr: ts.Node) -> bool:
        """Does the pointer value of expr point into RAM, by what the file shows? Ask
        `prepare` with every expression first: one fixed point for all of them."""
        self.prepare([expr])
        return self._value(expr, self.ram)

    def prepare(self, exprs: Iterable[ts.Node]) -> None:
        """Collect the sources of every name the expressions depend on, transitively, then
        widen the RAM-backed set to the fixed point over the names met."""
        todo = [key for expr in exprs for key in self._depends(expr)]
        new: list[Key] = []
        while todo:
            key = todo.pop()
            if key in self.sources:
                continue
            new.append(key)
            values = self.sources[key] = self._collect(key)
            needs = {k for value in values or () for k in self._depends(value)}
            for need in needs:
                self.users.setdefault(need, set()).add(key)
            todo.extend(needs)
        self._fixpoint(new)

    def _depends(self, expr: ts.Node) -> set[Key]:
        everything = _Everything()
        self._value(expr, everything)
        return everything.asked

    def _fixpoint(self, keys: list[Key]) -> None:
        """A worklist: a name is checked again only when one it depends on became RAM, and
        from its first source not yet RAM on (a source once RAM stays RAM as the set grows;
        a static function called from every line of a file is not checked anew per call)."""
        todo = list(keys)
        while todo:
            key = todo.pop()
            values = self.sources.get(key)
            if key in self.ram or not values:
                continue
            assumed = _With(self.ram, key)
            done = self.checked.get(key, 0)
            while done < len(values) and self._value(values[done], assumed):
                done += 1
            self.checked[key] = done
            if done == len(values) and any(self._value(v, self.ram) for v in values):
                self.ram.add(key)
                todo.extend(self.users.get(key, ()))

    # -- values -----------------------------------------------------------------------------

    def _value(self, expr: ts.Node, ram: Container[Key]) -> bool:
        """Does the value of expr point into RAM, given the RAM-backed names?"""
        kind = expr.type
        if kind in ("parenthesized_expression", "cast_expression", "comma_expression"):
            inner = _operand(expr)
            return inner is not None and self._value(inner, ram)
        if kind == "conditional_expression":
            yes = expr.child_by_field_name("consequence") or expr.child_by_field_name(
                "condition")
            no = expr.child_by_field_name("alternative")
            return yes is not None and no is not None and self._value(yes, ram) \
                and self._value(no, ram)
        if kind == "assignment_expression":  # `a = b = v`: the value is v
            right = expr.child_by_field_name("right")
            return _operator(expr) == "=" and right is not None and self._value(right, ram)
        if kind == "binary_expression":
            return self._arithmetic(expr, ram)
        if kind == "call_expression":
            return self._call(expr, ram)
        if kind == "pointer_expression":
            argument = expr.child_by_field_name("argument")
            return _operator(expr) == "&" and argument is not None \
                and self._lvalue(argument, ram)
        if kind == "identifier":
            found = self._lookup(expr)
            if found is None or found.function:
                return False
            if found.array:
                return self._object(found)
            return self._var_key(found) in ram
        if kind == "field_expression":
            name = text(expr.child_by_field_name("field") or expr)
            if self._array_field(name):
                return self._lvalue(expr, ram)
            return ("field", name) in ram
        return False

    def _arithmetic(self, expr: ts.Node, ram: Container[Key]) -> bool:
        """`v + n`, `v & mask` and `v - 4` stay in v's memory. Only a constant is subtracted:
        `v - w` of two pointers is a number, and telling it from `v - n` needs types."""
        op = _operator(expr)
        left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
        if left is None or right is None or op not in ("+", "-", "&"):
            return False
        if op == "-" and right.type not in ("number_literal", "sizeof_expression"):
            return False
        return self._value(left, ram)

    def _call(self, expr: ts.Node, ram: Container[Key]) -> bool:
        function = expr.child_by_field_name("function")
        if function is None or function.type != "identifier":
            return False
        name = text(function)
        if name in self.rules.allocators:
            return True
        args = expr.child_by_field_name("arguments")
        given = arguments(args) if args is not None else []
        return name in self.rules.align and bool(given) and self._value(given[0], ram)

    def _lvalue(self, expr: ts.Node, ram: Container[Key]) -> bool:
        """Is the object expr denotes in RAM?"""
        kind = expr.type
        if kind == "parenthesized_expression":
            inner = _operand(expr)
            return inner is not None and self._lvalue(inner, ram)
        if kind == "identifier":
            found = self._lookup(expr)
            return found is not None and not found.function and self._object(found)
        argument = expr.child_by_field_name("argument")
        if argument is None:
            return False
        if kind == "field_expression":
            if _operator(expr) == ".":
                return self._lvalue(argument, ram)
            return self._value(argument, ram)
        if kind == "subscript_expression" or (kind == "pointer_expression"
                                              and _operator(expr) == "*"):
            return self._value(argument, ram)
        return False

    def _object(self, found: _Decl) -> bool:
        """An object the file defines: its storage is RAM, whatever its declaration says."""
        return self.rules.objects and "extern" not in _storage(found.decl)

    def _array_field(self, name: str) -> bool:
        """Is every field of that name the file declares an array (at least one)?"""
        known = self.arrays.get(name)
        if known is None:
            kinds = []
            for start, end in occurrences(self.clean, [name]):
                node = self.root.named_descendant_for_byte_range(start, end)
                if node is None or node.type != "field_identifier":
                    continue
                decl = declaration_of(node)
                if decl is not None and decl.type == "field_declaration":
                    kinds.append(_is_array(node))
            known = self.arrays[name] = bool(kinds) and all(kinds)
        return known

    # -- names and their declarations -------------------------------------------------------

    def _var_key(self, found: _Decl) -> Key:
        key: Key = ("var", found.name.start_byte)
        self.decls[found.name.start_byte] = found
        return key

    def _lookup(self, ident: ts.Node) -> _Decl | None:
        """The declaration an identifier in an expression refers to, by C's block scopes."""
        name = text(ident)
        offset = ident.start_byte
        up = ident.parent
        while up is not None:
            if up.type in _SCOPES:
                found = [d for d in self._table(up).get(name, ()) if d.name.start_byte < offset]
                if found:
                    return found[-1]
            elif up.type == "function_definition":
                for decl in _parameters(up):
                    got = _declarator_name(decl)
                    if got is not None and text(got[0]) == name:
                        return _Decl(got[0], decl, False, False)  # `buf[]`: a pointer
            up = up.parent
        return None

    def _table(self, scope: ts.Node) -> dict[str, list[_Decl]]:
        table = self.tables.get(scope.id)
        if table is None:
            table = self.tables[scope.id] = {}
            if scope.type == "for_statement":
                init = scope.child_by_field_name("initializer")
                children = [init] if init is not None else []
            else:
                children = scope.named_children
            for decl in _declarations(children):
                for entry in _declared_names(decl):
                    table.setdefault(text(entry.name), []).append(entry)
        return table

    # -- assignments ------------------------------------------------------------------------

    def _assigned(self, lvalue: ts.Node, values: list[ts.Node]) -> bool:
        return _assigned(lvalue, values, self._assigner)

    def _assigner(self, callee: str) -> bool:
        """May a call of this name assign a variable given to it bare (a macro)?"""
        return callee in self.macros or any(part in callee for part in self.rules.assigners)

    def _collect(self, key: Key) -> list[ts.Node] | None:
        kind, what = key
        if kind == "field" and isinstance(what, str):
            return self._field_sources(what)
        found = self.decls.get(what) if isinstance(what, int) else None
        return self._var_sources(found) if found is not None else None

    def _var_sources(self, found: _Decl) -> list[ts.Node] | None:
        decl = found.decl
        storage = _storage(decl)
        if "extern" in storage:
            return None
        values: list[ts.Node] = []
        if decl.type == "parameter_declaration":
            passed = self._arguments_passed(decl)
            if passed is None:
                return None
            values.extend(passed)
        elif _file_scope(decl) and "static" not in storage:
            return None  # another file may assign a global
        init = _initialiser(found.name, decl)
        if init is not None:
            if init.type == "initializer_list":
                return None
            values.append(init)
        block = binding_block(decl)
        if block is None:
            return None
        name = text(found.name)
        for start, end in occurrences(self.clean, [name], block):
            if start == found.name.start_byte:
                continue
            if self.in_directive(start):
                return None  # a macro body: an assignment there is not parsed
            if self.skip(start):
                continue
            node = self.root.named_descendant_for_byte_range(start, end)
            if node is None or node.type in _NOT_CODE:
                continue
            if node.type != "identifier" or node.start_byte != start or node.end_byte != end:
                return None
            if declaration_of(node) is not None:
                continue  # an inner declaration of the same name
            other = self._lookup(node)
            if other is None:
                return None
            if other.name.start_byte != found.name.start_byte:
                continue
            if not self._assigned(node, values):
                return None
        return values

    def _arguments_passed(self, param: ts.Node) -> list[ts.Node] | None:
        """The arguments every call in the file passes for a static function's parameter;
        None when the function is not static or its name is used other than by calls."""
        function = param.parent.parent if param.parent is not None else None
        definition = function
        while definition is not None and definition.type != "function_definition":
            definition = definition.parent
        if function is None or definition is None or "static" not in _storage(definition):
            return None
        params = _parameters(definition)
        index = next((i for i, p in enumerate(params) if p.id == param.id), -1)
        own = function.child_by_field_name("declarator")
        if index < 0 or own is None or own.type != "identifier":
            return None
        passed: list[ts.Node] = []
        for start, end in occurrences(self.clean, [text(own)]):
            if self.in_directive(start):
                return None
            if self.skip(start):
                continue
            node = self.root.named_descendant_for_byte_range(start, end)
            if node is None or node.type in _NOT_CODE:
                continue
            parent = node.parent
            if node.type != "identifier" or parent is None:
                return None
            if parent.type == "function_declarator" and same(
                    parent.child_by_field_name("declarator"), node):
                continue  # the definition, a prototype
            if parent.type != "call_expression" or not same(
                    parent.child_by_field_name("function"), node):
                return None  # its address: it may be called from anywhere
            args = parent.child_by_field_name("arguments")
            given = arguments(args) if args is not None else []
            if len(given) != len(params):
                return None
            passed.append(given[index])
        return passed

    def _field_sources(self, name: str) -> list[ts.Node] | None:
        values: list[ts.Node] = []
        for start, end in occurrences(self.clean, [name]):
            if self.in_directive(start):
                return None
            if self.skip(start):
                continue
            node = self.root.named_descendant_for_byte_range(start, end)
            if node is None:
                continue
            parent = node.parent
            if node.type == "field_identifier" and parent is not None:
                if parent.type == "field_expression" and same(
                        parent.child_by_field_name("field"), node):
                    if not self._assigned(parent, values):
                        return None
                elif parent.type == "field_designator":
                    value = _designated(parent)
                    if value is not None:
                        values.append(value)
                continue  # a declaration, offsetof()
            if node.type == "identifier" and declaration_of(node) is None \
                    and self._lookup(node) is None:
                return None  # perhaps a macro's argument naming the field
        return values


def _operator(expr: ts.Node) -> str:
    return text(expr.child_by_field_name("operator") or expr)


def _operand(expr: ts.Node) -> ts.Node | None:
    """The value of a parenthesised, cast or comma expression."""
    if expr.type == "cast_expression":
        return expr.child_by_field_name("value")
    if expr.type == "comma_expression":
        return expr.child_by_field_name("right")
    inner = [c for c in expr.named_children if c.type != "comment"]
    return inner[0] if len(inner) == 1 else None


def _assigned(lvalue: ts.Node, values: list[ts.Node], assigner: Callable[[str], bool]
              ) -> bool:
    """Add what a use of the name assigns it to values; False when the use may change it
    unseen (its address taken, `x |= v`, `swap(x, y)`)."""
    outer = lvalue
    while outer.parent is not None and outer.parent.type == "parenthesized_expression":
        outer = outer.parent
    parent = outer.parent
    if parent is None:
        return True
    if parent.type == "assignment_expression" and same(parent.child_by_field_name("left"),
                                                        outer):
        op = _operator(parent)
        right = parent.child_by_field_name("right")
        if op == "=" and right is not None:
            values.append(right)
            return True
        return op in _KEEPING
    if parent.type == "pointer_expression" and _operator(parent) == "&":
        return False
    if parent.type == "argument_list" and parent.parent is not None:
        function = parent.parent.child_by_field_name("function")
        if function is not None and function.type == "identifier" and assigner(text(function)):
            return False
    # `(u32)&x` parses as a bitwise and; anything else is a read, or `x++`
    return not (parent.type == "binary_expression" and _operator(parent) == "&"
                and same(parent.child_by_field_name("right"), outer))


def _designated(designator: ts.Node) -> ts.Node | None:
    """The value of `.f = v` when f is the last designator (`.a.f = v`), else None."""
    pair = designator.parent
    if pair is None or pair.type != "initializer_pair":
        return None
    designators = pair.children_by_field_name("designator")
    if not designators or not same(designators[-1], designator):
        return None
    return pair.child_by_field_name("value")


def _file_scope(decl: ts.Node) -> bool:
    up = decl.parent
    while up is not None and up.type in _PREPROC:
        up = up.parent
    return up is not None and up.type == "translation_unit"


def _storage(decl: ts.Node) -> set[str]:
    return {text(c) for c in decl.children if c.type == "storage_class_specifier"}


def _is_array(name: ts.Node) -> bool:
    parent = name.parent
    return parent is not None and parent.type == "array_declarator" and same(
        parent.child_by_field_name("declarator"), name)


def _declarator_name(decl: ts.Node) -> tuple[ts.Node, bool] | None:
    declarator = decl.child_by_field_name("declarator")
    got = declared(declarator) if declarator is not None else None
    return (got[0], _is_array(got[0])) if got is not None and not got[2] else None


def _parameters(definition: ts.Node) -> list[ts.Node]:
    node = function_declarator(definition)
    plist = node.child_by_field_name("parameters") if node is not None else None
    return [c for c in plist.named_children if c.type == "parameter_declaration"] \
        if plist is not None else []


def _declarations(children: Iterable[ts.Node]) -> Iterable[ts.Node]:
    for child in children:
        if child.type in ("declaration", "function_definition"):
            yield child
        elif child.type in _PREPROC:
            yield from _declarations(child.named_children)


def _declared_names(decl: ts.Node) -> Iterable[_Decl]:
    for declarator in decl.children_by_field_name("declarator"):
        got = declared(declarator)
        if got is not None:
            yield _Decl(got[0], decl, _is_array(got[0]),
                        got[2] or decl.type == "function_definition")


def _initialiser(name: ts.Node, decl: ts.Node) -> ts.Node | None:
    node = name.parent
    while node is not None and node.id != decl.id:
        if node.type == "init_declarator":
            return node.child_by_field_name("value")
        node = node.parent
    return None
