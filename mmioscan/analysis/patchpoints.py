"""Patch points: the fewest functions or macros whose rewriting covers a share of the sites.

Each site comes with the set of definitions whose rewriting would cover it (the function or
macro it sits in, and the wrappers on its via-chain). Choosing the smallest covering set is set
cover, NP-hard; the greedy choice (the point covering most uncovered sites next, ties by name)
is within a factor ln(n) of the optimum and gives the whole coverage curve in one pass.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

THRESHOLDS = (50, 90, 100)


@dataclass(frozen=True, slots=True)
class Step:
    point: str  # node key of the definition
    covered: int  # sites this point covers that earlier points did not
    cumulative: int


@dataclass(frozen=True, slots=True)
class Plan:
    sites: int
    coverable: int  # sites with at least one candidate (file-scope sites have none)
    steps: tuple[Step, ...]

    def points_for(self, percent: int) -> tuple[str, ...] | None:
        """The first points reaching percent% of all sites, or None if it cannot be reached."""
        need = -(-self.sites * percent // 100)  # ceiling
        if need == 0:
            return ()
        for i, step in enumerate(self.steps):
            if step.cumulative >= need:
                return tuple(s.point for s in self.steps[: i + 1])
        return None


def plan(candidates: Sequence[frozenset[str]]) -> Plan:
    """Greedy set cover over the sites' candidate sets; deterministic."""
    covers: dict[str, list[int]] = {}
    for site, points in enumerate(candidates):
        for point in points:
            covers.setdefault(point, []).append(site)
    covered = [False] * len(candidates)
    # Lazy greedy: a heap of (-stale gain, point); re-count a popped point before taking it.
    heap = [(-len(sites), point) for point, sites in covers.items()]
    heapq.heapify(heap)
    steps: list[Step] = []
    total = 0
    while heap:
        neg_gain, point = heapq.heappop(heap)
        gain = sum(1 for s in covers[point] if not covered[s])
        if gain == 0:
            continue
        if gain != -neg_gain:  # stale: gains only shrink, so re-queue with the true one
            heapq.heappush(heap, (-gain, point))
            continue
        for s in covers[point]:
            covered[s] = True
        total += gain
        steps.append(Step(point, gain, total))
    coverable = sum(1 for c in candidates if c)
    return Plan(len(candidates), coverable, tuple(steps))
