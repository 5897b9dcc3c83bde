"""Cheap byte scan: does a file mention any name of interest as a whole identifier?

Python's `re` is slow on a large alternation (about 40 s for drivers/), and a loop over the
hits of substrings the names share ("read", "write") runs in Python for every `thread` or
`already`. So a file's identifiers are taken at C speed (`bytes.translate` turns every byte
that cannot be part of one into a space, `split` gives the words) and intersected with the
name set; only the few names a file does mention are then located, with `bytes.find`.
"""

from __future__ import annotations

import re
import zlib
from array import array
from collections.abc import Iterable, Iterator

from mmioscan.cfront import lexer
from mmioscan.cfront.lexer import IDENT_BYTES


class NameScanner:
    """Answers `mentions(data)` for a fixed set of identifiers."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(n.encode("ascii") for n in names)

    def mentions(self, data: bytes) -> bool:
        return self.mentioned(lexer.words(data))

    def mentioned(self, words: Iterable[bytes]) -> bool:
        """Is one of the names among words (lexer.words of a file)?"""
        return not self.names.isdisjoint(words)

    def occurrences(self, data: bytes) -> Iterator[tuple[int, int, str]]:
        """(start, end, name) of each whole-identifier occurrence, in file order."""
        present = self.names.intersection(lexer.words(data))
        found: list[tuple[int, int, str]] = []
        size = len(data)
        for name in present:
            text, length = name.decode("ascii"), len(name)
            at = data.find(name)
            while at >= 0:
                end = at + length
                if ((at == 0 or data[at - 1] not in IDENT_BYTES)
                        and (end == size or data[end] not in IDENT_BYTES)):
                    found.append((at, end, text))
                    at = data.find(name, end)
                else:  # inside a longer identifier (`my_readl`, `readl_relaxed`)
                    at = data.find(name, at + 1)
        found.sort()  # whole identifiers never overlap: one order, the file's
        yield from found


def name_hashes(names: Iterable[bytes]) -> frozenset[int]:
    """The CRC-32 of each name, as identifier_hashes has it: stable across processes and runs
    (`hash` of bytes is salted per process, and the workers that hash a file's identifiers
    are other processes than the one hashing the names it looks for), and taken at C speed
    (`map` over a builtin: no Python bytecode per name)."""
    return frozenset(map(zlib.crc32, names))


def identifier_hashes(words: Iterable[bytes]) -> bytes:
    """A file's identifiers (lexer.words, or the set of them) as their sorted, unique CRC-32s,
    4 bytes each (1.7 KB for the average file of the tree): the caller rounds test a name set
    against them and read again only a file that may mention one (a collision only costs a
    read)."""
    # unique words first: a file repeats each identifier about seven times, and a CRC costs
    # more than a set insertion (the outer set drops the rare collisions)
    unique = words if isinstance(words, (set, frozenset)) else set(words)
    return array("I", sorted(set(map(zlib.crc32, unique)))).tobytes()


# A name called or stored through a member access: `->f(`, `.f(`, `->f)(` of `(*p->f)(`,
# `.f =`, `p->f =` (never `==`). Every text analysis/rounds.py's field patterns match is
# one of these (same prefix, same tail; a field is a whole word): the name set it gives is
# a superset of the fields a round may find the file calling or storing. Two patterns,
# one per operator: each opens with a literal `re` can skip ahead to, where the
# alternation `(?:->|\.)` was tried at every byte (2.5 times slower over the tree's
# unparsed files, whose field uses the workers take).
_TAIL = rb"\s*(\w+)\s*(?:\)?\s*\(|=(?!=))"
FIELD_USE_RES = (re.compile(rb"->" + _TAIL), re.compile(rb"\." + _TAIL))


def field_use_hashes(data: bytes) -> bytes:
    """The sorted, unique CRC-32s of the names a file calls or stores through a member
    access (FIELD_USE_RES): a round looking for a field call reads again only a file that
    uses the field so, not every file naming it (`read`, `write` and `init` are in most
    files: 16,800 of the 22,700 files a whole-tree scan's rounds read were such misses)."""
    found = set(FIELD_USE_RES[0].findall(data))
    found.update(FIELD_USE_RES[1].findall(data))
    return array("I", sorted(set(map(zlib.crc32, found)))).tobytes()


def mentions_iomem(data: bytes) -> bool:
    """Files naming `__iomem` are parsed even without an accessor: they may dereference an
    __iomem pointer (cfront/iomem.py). One `in` test: memory speed."""
    return b"__iomem" in data




def include_targets(data: bytes) -> tuple[str, ...]:
    """`#include` targets as written (`<linux/io.h>`, `"foo.h"`), by a cheap byte scan.

    Kept even for files the prefilter skips: a later round needs to know which headers a
    file includes to find the wrappers it may call.
    """
    return lexer.include_targets(data)
