"""Raw dereferences of `__iomem` pointers from clang's types (the precise engine's kind
"deref"; the fast engine's is cfront/iomem.py, with the same forms and accesses).

The shim (clang/flags.py) makes `__iomem` a `btf_type_tag("iomem")` on the pointee type, so
an expression's type says how many dereferences it is from MMIO: `u32 __iomem **pp` is 2,
`*pp` is 1, `**pp` is an lvalue in MMIO. Clang keeps the tag through arithmetic, casts that
name it, typedefs and struct fields declared in any header, but not through member access:
`&r->ctrl` has the type `u32 *`. The engine carries it itself: the address of an lvalue in
MMIO, and an array in MMIO that decays, point at MMIO whatever their type says.

An lvalue in MMIO (`*p`, `p[i]`, `p->field`, and `.field` or `[i]` of one) is an access
unless only its address is taken (`&r->ctrl`), it decays (`r->fifo` passed as a pointer), it
is not evaluated (sizeof, typeof, the type of a cast or declaration) or it is an asm operand
(the asm names the instruction). Assignment writes, compound assignment and ++/-- read and
write, anything else reads.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from clang import cindex as ci

from mmioscan.clang import native
from mmioscan.clang.ast import PAREN, TRANSPARENT, UNEXPOSED, K, Tree

T = ci.TypeKind
_TAGGED_POINTER = re.compile(
    r'btf_type_tag\("iomem"\)\)\)\s*\*\s*(?:(?:const|volatile|restrict|__restrict)\s*)*$')
_ARRAYS = frozenset({T.CONSTANTARRAY, T.INCOMPLETEARRAY, T.VARIABLEARRAY})
_COMPOUND = frozenset({"+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="})
_UNEVALUATED = frozenset({K.CXX_UNARY_EXPR, K.ASM_STMT})
_DECLS = frozenset({K.VAR_DECL, K.FIELD_DECL, K.PARM_DECL, K.TYPEDEF_DECL, K.FUNCTION_DECL})
_STATEMENTS = frozenset({K.COMPOUND_STMT, K.DECL_STMT, K.IF_STMT, K.FOR_STMT, K.WHILE_STMT,
                         K.DO_STMT, K.RETURN_STMT, K.SWITCH_STMT, K.CASE_STMT})

# (line, column, file offset, access, form) of one dereference in the main file.
Found = tuple[int, int, int, str, str]


def _safe_kind(t: ci.Type) -> ci.TypeKind | None:
    try:
        return t.kind
    except ValueError:
        return None


class Derefs:
    """The dereferences of MMIO in one declaration's tree."""

    def __init__(self, tree: Tree, levels: dict[str, int]) -> None:
        self.tree = tree
        self.type_levels = levels  # memo by type spelling, shared across one file
        self._level: dict[int, int] = {}
        self._lvalue: dict[int, bool] = {}

    # -- types -------------------------------------------------------------------------------

    def type_level(self, t: ci.Type) -> int:
        """Dereferences from this type to MMIO memory (0: none, not a pointer to MMIO)."""
        spelling = t.spelling
        found = self.type_levels.get(spelling)
        if found is not None:
            return found
        depth, level = 0, 0
        for _ in range(12):
            kind = _safe_kind(t)
            if kind == T.POINTER:
                depth += 1
                if _TAGGED_POINTER.search(t.spelling):
                    level = depth
                    break
                t = t.get_pointee()
            elif kind == T.TYPEDEF:
                t = t.get_declaration().underlying_typedef_type
            elif kind == T.ELABORATED:
                t = t.get_named_type()
            else:
                break
        self.type_levels[spelling] = level
        return level

    def _is_array(self, index: int) -> bool:
        return self._kind_through_typedefs(index, _ARRAYS)

    def _is_pointer(self, index: int) -> bool:
        return self._kind_through_typedefs(index, (T.POINTER,))

    def _kind_through_typedefs(self, index: int, kinds: Collection[ci.TypeKind]) -> bool:
        """Is the expression's type, under typedefs and elaborations, one of kinds?"""
        t = self.tree.cursors[index].type
        for _ in range(6):
            kind = _safe_kind(t)
            if kind in kinds:
                return True
            if kind == T.TYPEDEF:
                t = t.get_declaration().underlying_typedef_type
            elif kind == T.ELABORATED:
                t = t.get_named_type()
            else:
                return False
        return False

    # -- expressions ---------------------------------------------------------------------

    def level(self, index: int) -> int:
        """Dereferences from this expression's value to MMIO: its type's, or carried."""
        if index < 0:
            return 0
        found = self._level.get(index)
        if found is None:
            self._level[index] = 0  # cycles cannot happen in a tree; this guards recursion
            found = self._level[index] = self._compute_level(index)
        return found

    def _compute_level(self, index: int) -> int:
        tree = self.tree
        kind = tree.kinds[index]
        if kind not in (K.INTEGER_LITERAL, K.CHARACTER_LITERAL, K.STRING_LITERAL):
            typed = self.type_level(tree.cursors[index].type)
            if typed:
                return typed
        kids = tree.children[index]
        if kind in TRANSPARENT and len(kids) == 1:
            inner = kids[0]
            if self.lvalue(inner) and self._is_array(inner):
                return 1  # an array in MMIO decays to a pointer at MMIO
            return self.level(inner)
        if kind == K.UNARY_OPERATOR and kids:
            op = native.unary_operator(tree.cursors[index])
            if op == "&":
                return 1 if self.lvalue(kids[0]) else 0
            if op in ("++", "--", "__extension__", "+"):
                return self.level(kids[0])
            return 0
        if kind == K.CSTYLE_CAST_EXPR and kids and self._is_pointer(index):
            return self.level(kids[-1])
        if kind == K.BINARY_OPERATOR and len(kids) == 2 and self._is_pointer(index):
            op = native.binary_operator(tree.cursors[index])
            if op in ("+", "-"):
                return max(self.level(kids[0]), self.level(kids[1]))
            if op == ",":
                return self.level(kids[1])
            return 0
        if kind == K.CONDITIONAL_OPERATOR and len(kids) >= 2:
            return max(self.level(k) for k in kids[1:])
        return 0

    def lvalue(self, index: int) -> bool:
        """Does this expression designate memory in MMIO?"""
        if index < 0:
            return False
        found = self._lvalue.get(index)
        if found is None:
            self._lvalue[index] = False
            found = self._lvalue[index] = self._compute_lvalue(index)
        return found

    def _compute_lvalue(self, index: int) -> bool:
        tree = self.tree
        kind = tree.kinds[index]
        kids = tree.children[index]
        if not kids:
            return False
        if kind == PAREN:
            return self.lvalue(kids[0])
        if kind == K.UNARY_OPERATOR:
            return native.unary_operator(tree.cursors[index]) == "*" and self.level(kids[0]) == 1
        if kind == K.ARRAY_SUBSCRIPT_EXPR:
            return self.level(kids[0]) == 1
        if kind == K.MEMBER_REF_EXPR:
            base = kids[0]
            if self._arrow(index):
                return self.level(base) == 1
            return self.lvalue(tree.strip(base, frozenset({PAREN})))
        return False

    def _arrow(self, member: int) -> bool:
        kids = self.tree.children[member]
        return bool(kids) and self._is_pointer(kids[0])

    def _form(self, index: int) -> str | None:
        """The form of a producer (an lvalue in MMIO not made from another one), else None."""
        tree = self.tree
        kind = tree.kinds[index]
        if kind == K.UNARY_OPERATOR:
            form = "*p"
        elif kind == K.ARRAY_SUBSCRIPT_EXPR:
            form = "p[i]"
        elif kind == K.MEMBER_REF_EXPR and self._arrow(index):
            form = "p->field"
        else:
            return None
        if not self.lvalue(index):
            return None
        base = tree.strip(tree.child(index, 0))
        return None if self.lvalue(base) else form

    # -- uses ----------------------------------------------------------------------------

    def use(self, index: int) -> str | None:
        """read, write or both for the producer at index; None when it is no access."""
        tree = self.tree
        node = index
        while True:
            parent = tree.parents[node]
            if parent < 0:
                return "read"
            kind = tree.kinds[parent]
            first = tree.positions[node] == 0
            if kind == PAREN:
                node = parent
                continue
            if kind == K.MEMBER_REF_EXPR and first and not self._arrow(parent):
                node = parent  # r->sub.field: a part of the same MMIO object
                continue
            if kind == K.ARRAY_SUBSCRIPT_EXPR and first and self._is_array(node):
                node = parent  # r->fifo[i]: an element of an array in MMIO
                continue
            if kind == UNEXPOSED and self._is_array(node):
                above = self._above_parens(parent)
                if above >= 0 and self._derefs_its_operand(above, parent):
                    node = above  # *r->fifo: the decayed array dereferenced again
                    continue
                return None  # the array's address: memcpy_fromio(buf, r->fifo, n)
            return self._access(node, parent, kind, first)

    def _above_parens(self, index: int) -> int:
        tree = self.tree
        parent = tree.parents[index]
        while parent >= 0 and tree.kinds[parent] == PAREN:
            index, parent = parent, tree.parents[parent]
        return parent

    def _derefs_its_operand(self, parent: int, operand: int) -> bool:
        tree = self.tree
        kind = tree.kinds[parent]
        if kind == K.UNARY_OPERATOR:
            return native.unary_operator(tree.cursors[parent]) == "*"
        if kind == K.ARRAY_SUBSCRIPT_EXPR:
            return tree.strip(tree.child(parent, 0), frozenset({PAREN})) == operand
        return kind == K.MEMBER_REF_EXPR and tree.child(parent, 0) == operand

    def _access(self, node: int, parent: int, kind: ci.CursorKind, first: bool) -> str | None:
        tree = self.tree
        if kind == K.UNARY_OPERATOR:
            op = native.unary_operator(tree.cursors[parent])
            if op == "&":
                return None
            return "both" if op in ("++", "--") else "read"
        if kind == K.BINARY_OPERATOR and first:
            return "write" if native.binary_operator(tree.cursors[parent]) == "=" else "read"
        if kind == K.COMPOUND_ASSIGNMENT_OPERATOR and first:
            return "both" if native.binary_operator(tree.cursors[parent]) in _COMPOUND else "read"
        if kind == K.CALL_EXPR and first:
            return None  # a function pointer: calling it runs code, it reads no MMIO
        if kind in _UNEVALUATED:
            return None
        return "read"

    def unevaluated(self, index: int) -> bool:
        """Inside sizeof, typeof, an asm statement, the type of a cast or a declaration."""
        tree = self.tree
        node, parent = index, tree.parents[index]
        while parent >= 0:
            kind = tree.kinds[parent]
            if kind in _UNEVALUATED:
                return True
            if kind == K.CSTYLE_CAST_EXPR and node != tree.children[parent][-1]:
                return True  # in the cast's type: (typeof(*p))x
            if kind in _DECLS:
                decl_at = tree.position(parent)[3]
                return tree.start(node)[3] < decl_at  # before the declared name: its type
            if kind in _STATEMENTS:
                return False
            node, parent = parent, tree.parents[parent]
        return False

    def found(self) -> list[tuple[int, str, str]]:
        """(tree index, access, form) of every dereference of MMIO in the tree."""
        out = []
        for index, kind in enumerate(self.tree.kinds):
            if kind not in (K.UNARY_OPERATOR, K.ARRAY_SUBSCRIPT_EXPR, K.MEMBER_REF_EXPR):
                continue
            form = self._form(index)
            if form is None:
                continue
            access = self.use(index)
            if access is None or self.unevaluated(index):
                continue
            out.append((index, access, form))
        return out
