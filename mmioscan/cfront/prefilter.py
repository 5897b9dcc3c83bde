"""Cheap byte scan: does a file mention any name of interest as a whole identifier?

Python's `re` is slow on a large alternation (about 40 s for drivers/), while `bytes.find` runs
at memory speed. So every name is reduced to an anchor substring it contains ("read", "write",
or the name itself), the anchors are found with `bytes.find`, and each hit is widened to the
identifier around it and looked up in the name set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from mmioscan.cfront.lexer import IDENT_BYTES, INCLUDE_RE

_COMMON_ANCHORS = (b"read", b"write")


class NameScanner:
    """Answers `mentions(data)` for a fixed set of identifiers."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(n.encode("ascii") for n in names)
        anchors: set[bytes] = set()
        for name in self.names:
            anchor = next((a for a in _COMMON_ANCHORS if a in name), name)
            anchors.add(anchor)
        # Drop anchors that contain another anchor: the shorter one finds them too.
        self.anchors = tuple(sorted(a for a in anchors
                                    if not any(b != a and b in a for b in anchors)))
        # The bytes that may stand just before and just after each anchor inside a name
        # (-1 for "nothing": the anchor starts or ends the name). Most hits of "read" are
        # "thread", "already" or "ready", rejected here by one byte without widening.
        self._before: dict[bytes, frozenset[int]] = {}
        self._after: dict[bytes, frozenset[int]] = {}
        for anchor in self.anchors:
            before: set[int] = set()
            after: set[int] = set()
            for name in self.names:
                pos = name.find(anchor)
                while pos >= 0:
                    end = pos + len(anchor)
                    before.add(name[pos - 1] if pos else -1)
                    after.add(name[end] if end < len(name) else -1)
                    pos = name.find(anchor, pos + 1)
            self._before[anchor] = frozenset(before)
            self._after[anchor] = frozenset(after)
        longest_first = sorted(self.anchors, key=lambda a: (-len(a), a))
        self._anchor_re = re.compile(b"|".join(re.escape(a) for a in longest_first))

    def mentions(self, data: bytes) -> bool:
        return next(self.occurrences(data), None) is not None

    def occurrences(self, data: bytes) -> Iterator[tuple[int, int, str]]:
        """(start, end, name) of each whole-identifier occurrence, in file order.

        One regex pass over an alternation of the anchors: about twice as fast as one
        `bytes.find` pass per anchor once there are twenty of them (on files with no hit,
        which is most of the bytes of drivers/). The search resumes one byte after each
        candidate, so anchors overlapping a rejected candidate are still seen.
        """
        if not self.anchors:
            return  # an empty alternation would match the empty string everywhere
        size = len(data)
        search = self._anchor_re.search
        match = search(data)
        while match is not None:
            start, end = match.span()
            anchor = match.group()
            prev = data[start - 1] if start else -1
            nxt = data[end] if end < size else -1
            if ((prev in self._before[anchor] or prev not in IDENT_BYTES)
                    and (nxt in self._after[anchor] or nxt not in IDENT_BYTES)):
                first, last = self._identifier_at(data, start, end)
                word = data[first:last]
                if word in self.names:
                    yield first, last, word.decode("ascii")
                    match = search(data, last)
                    continue
            match = search(data, start + 1)

    @staticmethod
    def _identifier_at(data: bytes, start: int, end: int) -> tuple[int, int]:
        while start > 0 and data[start - 1] in IDENT_BYTES:
            start -= 1
        size = len(data)
        while end < size and data[end] in IDENT_BYTES:
            end += 1
        return start, end


def mentions_iomem(data: bytes) -> bool:
    """Files naming `__iomem` are parsed even without an accessor: they may dereference an
    __iomem pointer (cfront/iomem.py). One `in` test: memory speed, like the anchors."""
    return b"__iomem" in data




def include_targets(data: bytes) -> tuple[str, ...]:
    """`#include` targets as written (`<linux/io.h>`, `"foo.h"`), by a cheap byte scan.

    Kept even for files the prefilter skips: a later round needs to know which headers a
    file includes to find the wrappers it may call.
    """
    return tuple(m.group(1).decode("utf-8", "replace") for m in INCLUDE_RE.finditer(data))
