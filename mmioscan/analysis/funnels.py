"""Strategies by rule: which funnels a rule patches, on this scan's call graph.

A funnel is a definition the call graph knows as a wrapper (it has a `Reach`): calls of it
are wrapper sites. A rule chooses funnels by what they are, whatever their names:
- `group = "virtio", cover = "100%"`: the fewest funnels (greedy set cover, patchpoints.py)
  that cover that share of the group's sites a funnel can cover at all (a site inside a
  funnel, or whose chain runs through one);
- `reaches = ["iomap"]`: every funnel that reaches an accessor of those families (within the
  group when one is given).
The resolved strategy patches its named functions plus the chosen funnels' `path:name` keys.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from mmioscan.analysis.callgraph import CallGraph
from mmioscan.analysis.patchpoints import plan
from mmioscan.core.catalogue import Catalogue
from mmioscan.core.model import Site
from mmioscan.platforms.strategies import Strategy, StrategyRule


def funnel_candidates(site: Site, graph: CallGraph) -> frozenset[str]:
    """The funnels whose patching would cover the site."""
    keys: set[str] = set()
    if site.scope_key is not None and site.scope_key in graph.reach:
        keys.add(site.scope_key)
    if site.kind == "wrapper":
        reach = graph.reach.get(graph.resolve(site.path, site.callee) or "")
        if reach is not None:
            keys.update(k for k in reach.via_keys if k in graph.reach)
    return frozenset(keys)


def _by_cover(rule: StrategyRule, sites: Sequence[Site], graph: CallGraph) -> set[str]:
    assert rule.cover is not None
    candidates = [c for s in sites if (c := funnel_candidates(s, graph))]
    need = math.ceil(rule.cover * len(candidates) - 1e-9)
    chosen: set[str] = set()
    for step in plan(candidates).steps:
        if len(chosen) and step.cumulative - step.covered >= need:
            break  # the points so far already reach the share
        chosen.add(step.point)
    return chosen


def _by_family(rule: StrategyRule, sites: Sequence[Site], graph: CallGraph,
               catalogue: Catalogue) -> set[str]:
    keys = {k for s in sites for k in funnel_candidates(s, graph)}
    found = set()
    for key in keys:
        families = {a.family for n in graph.reach[key].accessors
                    if (a := catalogue.get(n)) is not None}
        if families & rule.reaches:
            found.add(key)
    return found


def resolve(strategy: Strategy, sites: Iterable[Site], graph: CallGraph | None,
            group_of: Callable[[Site], str], catalogue: Catalogue) -> Strategy:
    """The strategy with its rules turned into patched funnel keys (no graph: none)."""
    if not strategy.rules or graph is None:
        return strategy
    pool = [s for s in sites if s.active and s.kind != "reference"]
    patched = set(strategy.patched)
    for rule in strategy.rules:
        members = [s for s in pool if rule.group is None or group_of(s) == rule.group]
        chosen: set[str] | None = None
        if rule.cover is not None:
            chosen = _by_cover(rule, members, graph)
        if rule.reaches:
            by_family = _by_family(rule, members, graph, catalogue)
            chosen = by_family if chosen is None else chosen & by_family
        patched |= chosen or set()
    return replace(strategy, patched=frozenset(patched))
