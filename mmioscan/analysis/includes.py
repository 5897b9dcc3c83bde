"""Which files each file includes, transitively, over every file a scan read (parsed or not:
an include chain may pass through a header that mentions no accessor), for name resolution
(analysis/callgraph.py) and for finding the wrappers a file can see (analysis/gather.py).

A driver file includes thousands of headers transitively: the questions asked here (the first
of a few candidate files in precedence order, the union of per-file names) are answered from
the direct includes and a per-node closure of the condensed include graph, never by walking
one file's closure.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping

import networkx as nx

from mmioscan.cfront.includes import folder_of, include_candidates
from mmioscan.core.model import FileFacts

_UNSEEN = "\0unseen"


class IncludeIndex:
    """Which parsed files each file includes, transitively (for resolution and for finding
    the wrappers a file can see)."""

    def __init__(self, files: Mapping[str, FileFacts]) -> None:
        self.files = files
        self._direct: dict[str, tuple[str, ...]] = {}
        self._reach: tuple[dict[str, int], dict[str, int]] | None = None
        self._last_closure: tuple[str, int] = ("", 0)
        self._cond: tuple[nx.DiGraph, dict[str, int], list[int]] | None = None
        self._seen_for: Mapping[str, frozenset[str]] | None = None
        self._seen: dict[str, frozenset[str]] = {}
        self._resolved_include: dict[tuple[str, str], str | None] = {}
        self._positions: dict[str, dict[str, int]] = {}  # first_of: each direct include's rank

    def _condensed(self) -> tuple[nx.DiGraph, dict[str, int], list[int]]:
        """The include graph's condensation (cycles are one node), its node of each file and
        its nodes leaves first: the shape every transitive question below is answered on."""
        if self._cond is None:
            graph = nx.DiGraph()
            for path, facts in self.files.items():
                graph.add_node(path)
                graph.add_edges_from((path, h)
                                     for h in self._direct_includes(path, facts.includes))
            cond = nx.condensation(graph)
            self._cond = (cond, cond.graph["mapping"], list(reversed(list(
                nx.topological_sort(cond)))))
        return self._cond

    def _include_reach(self) -> tuple[dict[str, int], dict[str, int]]:
        """Every included file -> all files it includes, transitively (itself and its cycle
        included), as a bit set over the included files (a Python int; the second mapping
        gives each file's bit), by dynamic programming over the condensation of the include
        graph. Files no file includes (the .c files) get none: first_of asks only about a
        file's direct includes. frozensets of paths here took 16 s and gigabytes for the
        60,000 files of the tree; OR-ing ints runs at C speed."""
        if self._reach is None:
            cond, mapping, order = self._condensed()
            members = nx.get_node_attributes(cond, "members")
            # a cycle's files include each other, whatever includes them
            needed = {c for c in order if cond.in_degree(c) or len(members[c]) > 1}
            included = sorted(p for p, comp in mapping.items() if comp in needed)
            index = {p: i for i, p in enumerate(included)}
            reach: dict[int, int] = {}
            for comp in order:
                if comp not in needed:
                    continue  # no file includes it: never a direct include
                bits = 0
                for member in members[comp]:
                    bits |= 1 << index[member]
                for below in cond.successors(comp):
                    bits |= reach[below]
                reach[comp] = bits
            self._reach = ({p: reach[comp] for p, comp in mapping.items() if comp in reach},
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
            cond, mapping, order = self._condensed()
            members = nx.get_node_attributes(cond, "members")
            seen: dict[int, frozenset[str]] = {}
            for comp in order:
                own = [per_file[m] for m in members[comp] if m in per_file]
                below = [seen[s] for s in cond.successors(comp)]
                seen[comp] = frozenset().union(*own, *below)
            self._seen_for, self._seen = per_file, {p: seen[c] for p, c in mapping.items()}
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
            if found is not None:
                yield found
