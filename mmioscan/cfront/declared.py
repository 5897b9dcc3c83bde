"""Names a file declares as variables: locals, parameters and file-scope variables.

A catalogued name used as a value is a reference to the accessor only when nothing in scope
declares a variable of that name: `struct mlx4_wqe_inline_seg *inl; ... inl + 1` uses a
local, not the port accessor inl(). Function prototypes (`u8 inb(unsigned long);`) declare
the accessor itself and do not count.
"""

from __future__ import annotations

import sys

import tree_sitter as ts

# Declarator wrappers to look through down to the declared identifier.
_WRAPPERS = frozenset({"pointer_declarator", "array_declarator", "init_declarator",
                       "parenthesized_declarator", "attributed_declarator"})
_HOLDERS = frozenset({"declaration", "parameter_declaration"})


def _declared_identifier(node: ts.Node | None) -> str | None:
    """The variable a declarator declares, or None for a function prototype."""
    while node is not None:
        kind = node.type
        if kind == "identifier":
            return sys.intern((node.text or b"").decode("utf-8", "replace"))
        if kind == "function_declarator":
            node = node.child_by_field_name("declarator")
            if node is None or node.type != "parenthesized_declarator":
                return None  # a prototype: `u8 inb(unsigned long port)`
            continue  # `int (*inl)(void)`: a function pointer variable
        if kind == "parenthesized_declarator":
            node = node.named_children[0] if node.named_children else None
            continue
        if kind in _WRAPPERS:
            node = node.child_by_field_name("declarator")
            continue
        return None
    return None


def _collect(node: ts.Node, into: set[str], descend: bool) -> None:
    """Variables declared by node (and, with descend, by every node below it)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in _HOLDERS:
            for decl in current.children_by_field_name("declarator"):
                name = _declared_identifier(decl)
                if name is not None:
                    into.add(name)
        if descend:
            stack.extend(current.named_children)


class DeclaredNames:
    """Memoised per function: the variables declared in it, and those at file scope."""

    def __init__(self, root: ts.Node) -> None:
        self.root = root
        self._by_function: dict[int, frozenset[str]] = {}
        self._file: frozenset[str] | None = None

    def file_scope(self) -> frozenset[str]:
        if self._file is None:
            names: set[str] = set()
            for child in self.root.named_children:
                if child.type == "declaration":
                    _collect(child, names, descend=False)
            self._file = frozenset(names)
        return self._file

    def function_scope(self, function: ts.Node) -> frozenset[str]:
        found = self._by_function.get(function.id)
        if found is None:
            names: set[str] = set()
            declarator = function.child_by_field_name("declarator")
            if declarator is not None:
                _collect(declarator, names, descend=True)  # the parameters
            body = function.child_by_field_name("body")
            if body is not None:
                _collect(body, names, descend=True)
            found = self._by_function[function.id] = frozenset(names)
        return found

    def declares(self, node: ts.Node, name: str) -> bool:
        """Is `name`, used at node, a variable declared in an enclosing scope?"""
        parent = node.parent
        while parent is not None and parent.type != "function_definition":
            parent = parent.parent
        if parent is not None and name in self.function_scope(parent):
            return True
        return name in self.file_scope()
