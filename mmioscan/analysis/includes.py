"""Which files each file includes, transitively, over every file a scan read (parsed or not:
an include chain may pass through a header that mentions no accessor), for name resolution
(analysis/callgraph.py) and for finding the wrappers a file can see (analysis/gather.py).

A driver file includes thousands of headers transitively: the questions asked here (the first
of a few candidate files in precedence order, the union of per-file names) are answered from
the direct includes and a per-node closure of the condensed include graph, never by walking
one file's closure.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from mmioscan.cfront.includes import folder_of, include_candidates
from mmioscan.core.model import FileFacts
from mmioscan.kernel.includepaths import IncludePaths

_UNSEEN = "\0unseen"


class IncludeIndex:
    """Which parsed files each file includes, transitively (for resolution and for finding
    the wrappers a file can see)."""

    def __init__(self, files: Mapping[str, FileFacts],
                 paths: IncludePaths | None = None) -> None:
        self.files = files
        self.paths = paths  # the Makefiles' -I folders, tried last (kernel/includepaths.py)
        self._direct: dict[str, tuple[str, ...]] = {}
        self._reach: tuple[dict[str, int], dict[str, int]] | None = None
        self._last_closure: tuple[str, int] = ("", 0)
        self._cond: _Condensed | None = None
        self._seen_for: Mapping[str, frozenset[str]] | None = None
        self._seen: dict[str, frozenset[str]] = {}
        self._resolved_include: dict[tuple[str, str], str | None] = {}
        self._resolved_flags: dict[tuple[str, str], str | None] = {}
        self._positions: dict[str, dict[str, int]] = {}  # first_of: each direct include's rank

    def _condensed(self) -> _Condensed:
        """The include graph's condensation (a cycle is one node), leaves first: the shape
        every transitive question below is answered on."""
        if self._cond is None:
            self._cond = _condense(sorted(self.files), self.direct)
        return self._cond

    def _include_reach(self) -> tuple[dict[str, int], dict[str, int]]:
        """Every included file -> all files it includes, transitively (itself and its cycle
        included), as a bit set over the included files (a Python int; the second mapping
        gives each file's bit), by dynamic programming over the condensation of the include
        graph. Files no file includes (the .c files) get none: first_of asks only about a
        file's direct includes. frozensets of paths here took 16 s and gigabytes for the
        60,000 files of the tree; OR-ing ints runs at C speed."""
        if self._reach is None:
            cond = self._condensed()
            included = {h for path in self.files for h in self.direct(path)}
            # a cycle's files include each other, whatever includes them
            needed = [len(m) > 1 or not included.isdisjoint(m) for m in cond.members]
            index = {p: i for i, p in enumerate(sorted(
                p for c, m in enumerate(cond.members) if needed[c] for p in m))}
            reach: dict[int, int] = {}
            for comp, members in enumerate(cond.members):  # leaves first
                if not needed[comp]:
                    continue  # no file includes it: never a direct include
                bits = 0
                for member in members:
                    bits |= 1 << index[member]
                for below in cond.below[comp]:
                    bits |= reach[below]
                reach[comp] = bits
            self._reach = ({p: reach[c] for p, c in cond.comp_of.items() if c in reach},
                           index)
        return self._reach

    def direct(self, path: str, targets: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """The files path includes itself, in order (targets: its own `#include` targets when
        path was not parsed)."""
        found = self._direct.get(path)
        if found is None:
            own = self.files[path].includes if path in self.files else (targets or ())
            found = tuple(dict.fromkeys(h for h in self._direct_includes(path, own)
                                        if h != path))
            self._direct[path] = found
        return found

    def _closure(self, path: str) -> int:
        """The files path includes, transitively, as a bit set (_include_reach); kept for
        the last file asked about (the call graph resolves one file's calls in a row)."""
        if self._last_closure[0] != path:
            reach = self._include_reach()[0]
            bits = 0
            for header in self.direct(path):
                bits |= reach.get(header, 0)
            self._last_closure = (path, bits)
        return self._last_closure[1]

    def first_of(self, path: str, candidates: Collection[str]) -> str | None:
        """Of the candidate files, the first that path includes in resolution precedence:
        its direct includes first, in their order, then the others it includes
        (transitively) by path; None when it includes none of them. Most names the call
        graph resolves are defined in no header: no candidates, no work."""
        if not candidates:
            return None
        position = self._positions.get(path)
        if position is None:
            position = self._positions[path] = {
                h: i for i, h in enumerate(self.direct(path))}
        best_direct: tuple[int, str] | None = None
        best_rest: str | None = None
        for c in candidates:
            if c == path:
                continue
            if c in position:
                if best_direct is None or position[c] < best_direct[0]:
                    best_direct = (position[c], c)
            elif best_direct is None and (best_rest is None or c < best_rest):
                bit = self._include_reach()[1].get(c)
                if bit is not None and self._closure(path) >> bit & 1:
                    best_rest = c
        return best_direct[1] if best_direct is not None else best_rest

    def names_seen(self, path: str, targets: tuple[str, ...] | None,
                   per_file: Mapping[str, frozenset[str]]) -> frozenset[str]:
        """The union of per_file[h] over every file h that path includes, transitively. One
        union per include-graph node for a given per_file (the caller keeps the mapping for
        the life of this index)."""
        if self._seen_for is not per_file:
            cond = self._condensed()
            none: frozenset[str] = frozenset()
            seen: list[frozenset[str]] = []
            for comp, members in enumerate(cond.members):  # leaves first
                parts = [per_file[m] for m in members if m in per_file]
                parts.extend(seen[b] for b in cond.below[comp] if seen[b])
                seen.append(none if not parts else parts[0] if len(parts) == 1
                            else frozenset().union(*parts))
            self._seen_for = per_file
            self._seen = {p: seen[c] for p, c in cond.comp_of.items()}
        direct = self.direct(path, targets)
        return frozenset().union(*(self._seen.get(h, frozenset()) for h in direct))

    def _direct_includes(self, path: str, targets: tuple[str, ...]) -> Iterator[str]:
        folder = folder_of(path)
        for target in targets:
            # `<x.h>` resolves the same from every file; `"x.h"` the same within a folder.
            memo = (folder if target.startswith('"') else "", target)
            found = self._resolved_include.get(memo, _UNSEEN)
            if found is _UNSEEN:
                found = next((c for c in include_candidates(path, target) if c in self.files),
                             None)
                self._resolved_include[memo] = found
            if found is None and self.paths is not None:
                found = self._through_flags(folder, target)
            if found is not None:
                yield found

    def _through_flags(self, folder: str, target: str) -> str | None:
        """An include found nowhere else, in the folders folder's Makefiles add with -I."""
        memo = (folder, target)
        found = self._resolved_flags.get(memo, _UNSEEN)
        if found is _UNSEEN:
            assert self.paths is not None
            found = self._resolved_flags[memo] = next(
                (c for c in self.paths.candidates(folder, target) if c in self.files), None)
        return found


@dataclass(frozen=True, slots=True)
class _Condensed:
    """A graph's strongly connected components, numbered leaves first (a component's
    successors have smaller numbers)."""

    comp_of: dict[str, int]
    members: list[tuple[str, ...]]
    below: list[tuple[int, ...]]  # each component's successors


def _condense(nodes: Iterable[str], successors: Callable[[str], Sequence[str]]
              ) -> _Condensed:
    """Tarjan's algorithm, iteratively (an include chain is deeper than Python's stack may
    be), over plain dicts: networkx's condensation of the tree's 60,000 files and their
    include edges took 7 s of a warm whole-tree scan. Tarjan emits a component after every
    component it reaches: numbering in emission order is leaves first."""
    order: dict[str, int] = {}  # discovery number
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comp_of: dict[str, int] = {}
    members: list[tuple[str, ...]] = []
    for root in nodes:
        if root in order:
            continue
        order[root] = low[root] = len(order)
        stack.append(root)
        on_stack.add(root)
        work: list[tuple[str, Iterator[str]]] = [(root, iter(successors(root)))]
        while work:
            node, pending = work[-1]
            for nxt in pending:
                if nxt not in order:
                    order[nxt] = low[nxt] = len(order)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(successors(nxt))))
                    break
                if nxt in on_stack and order[nxt] < low[node]:
                    low[node] = order[nxt]
            else:
                work.pop()
                if work and low[node] < low[work[-1][0]]:
                    low[work[-1][0]] = low[node]
                if low[node] == order[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        comp_of[member] = len(members)
                        component.append(member)
                        if member == node:
                            break
                    members.append(tuple(sorted(component)))
    below = [tuple(sorted({comp_of[h] for m in component for h in successors(m)} - {c}))
             for c, component in enumerate(members)]
    return _Condensed(comp_of, members, below)
