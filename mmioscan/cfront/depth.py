"""How deep a parse tree is, measured cheaply, so that a tree too deep to analyse becomes a
recorded problem instead of a silent loss.

tree-sitter parses any depth, but its query cursor keeps depths in 16 bits: captures below
about 65,531 levels are silently dropped (a `readl` inside 100,000 nested `{`, or at the
bottom of 70,000 chained `+`, is simply not reported). Walking up from a node is also
O(depth) per step in tree-sitter (`Node.parent` descends from the root), so very deep trees
make every upward walk quadratic. Brackets are not the only way down: `else if` chains,
operator chains and `#elif` chains nest too, so the tree itself is measured.
"""

from __future__ import annotations

import tree_sitter as ts

# Deeper than this, tree-sitter's queries lose captures (measured: 65,531 on 0.25 and 0.26).
TREE_SITTER_DEPTH = 65_000
# One node in every SAMPLE (in pre-order) is looked at. Between a node of a deep chain and
# the next one down the chain, pre-order only visits nodes deeper than the first, so the
# deepest sample is at most SAMPLE levels above the deepest node: a tree deeper than
# limit + SAMPLE is always caught, and one that is not deeper than limit never is.
SAMPLE = 256


class TooDeep(Exception):
    """A parse tree deeper than the extractor's limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"nesting deeper than {limit:,} levels: not parsed")
        self.limit = limit


def deeper_than(root: ts.Node, limit: int) -> bool:
    """Is some node of the tree more than `limit` levels below root? (see SAMPLE)"""
    count = root.descendant_count
    if count <= limit:
        return False  # a chain needs a node per level
    cursor = root.walk()
    for index in range(0, count, SAMPLE):
        cursor.goto_descendant(index)
        if cursor.depth > limit:
            return True
    return False
