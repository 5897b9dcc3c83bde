"""One declaration's cursors as flat arrays (kinds, parents, child positions), walked once.

The Python bindings build a Cursor per child through a callback; reading kinds, parents and
child positions again for every question would walk the tree many times. A `Tree` holds
them in lists, indexed in pre-order, so the extractor (clang/extract.py) and the
dereference analysis (clang/derefs.py) look things up by index.
"""

from __future__ import annotations

from clang import cindex as ci

from mmioscan.clang import native

K = ci.CursorKind
PAREN = K.PAREN_EXPR
UNEXPOSED = K.UNEXPOSED_EXPR
TRANSPARENT = frozenset({K.PAREN_EXPR, K.UNEXPOSED_EXPR})


_KINDS: dict[int, ci.CursorKind] = {}


def _kind(cursor: ci.Cursor) -> ci.CursorKind:
    kind = _KINDS.get(cursor._kind_id)
    if kind is None:
        try:
            kind = ci.CursorKind.from_id(cursor._kind_id)
        except ValueError:  # a kind newer than the bindings know
            kind = ci.CursorKind.UNEXPOSED_EXPR
        _KINDS[cursor._kind_id] = kind
    return kind


class Tree:
    """The cursors of one declaration in pre-order: parent and position among siblings."""

    def __init__(self, root: ci.Cursor) -> None:
        self.cursors, self.parents = native.preorder(root)
        self.kinds: list[ci.CursorKind] = [_kind(c) for c in self.cursors]
        self.children: list[list[int]] = [[] for _ in self.cursors]
        self.positions: list[int] = [0] * len(self.cursors)  # index among the siblings
        for index, parent in enumerate(self.parents):
            if parent >= 0:
                self.positions[index] = len(self.children[parent])
                self.children[parent].append(index)
        self._offsets: dict[int, tuple[int, int, int, int]] = {}

    def __len__(self) -> int:
        return len(self.cursors)

    def child(self, index: int, n: int = 0) -> int:
        kids = self.children[index]
        return kids[n] if -len(kids) <= n < len(kids) else -1

    def strip(self, index: int, kinds: frozenset[ci.CursorKind] = TRANSPARENT) -> int:
        """Down through parentheses and implicit conversions to the expression inside."""
        while index >= 0 and self.kinds[index] in kinds and len(self.children[index]) == 1:
            index = self.children[index][0]
        return index

    def position(self, index: int) -> tuple[int, int, int, int]:
        """(file handle, line, column, offset) of a cursor's location in a file."""
        found = self._offsets.get(index)
        if found is None:
            found = native.file_position(self.cursors[index].location)
            self._offsets[index] = found
        return found

    def start(self, index: int) -> tuple[int, int, int, int]:
        """(file handle, line, column, offset) where the cursor's extent starts."""
        return native.file_position(self.cursors[index].extent.start)
