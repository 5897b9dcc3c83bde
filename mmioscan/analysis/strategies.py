"""Per-driver tables and every TDX strategy side by side, per driver group.

The answer to "why not patch the MMIO sites": for each group (virtio, x86, generic), how many
sites trap, how many a strategy turns paravirt, how many would oops, and how many patch points
still cover 90% of what traps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from mmioscan.analysis.callgraph import CallGraph
from mmioscan.analysis.enrich import Enricher, SiteKey
from mmioscan.analysis.patchpoints import plan
from mmioscan.analysis.wrappers import candidate_sets, patchable
from mmioscan.core.model import Coverage, DriverInfo, DriverSummary, Site, StrategyRow, Tdx
from mmioscan.platforms.strategies import Strategy

GROUPS = ("virtio", "x86", "generic")
# Mainline first, then the shipped alternatives, then a user's own list.
STRATEGY_ORDER = ("upstream", "iomap-paravirt", "virtio-paravirt")


def _info(site: Site, lookup: Callable[[str], DriverInfo] | None) -> DriverInfo:
    if lookup is not None:
        return lookup(site.path)
    return DriverInfo(site.driver or ".", site.config_symbol, site.group or "generic",
                      site.group_reason or "", site.reachable)


def driver_summaries(sites: Iterable[Site], points: Sequence[tuple[str, Coverage]],
                     counted: Callable[[Site], bool],
                     lookup: Callable[[str], DriverInfo] | None = None
                     ) -> tuple[DriverSummary, ...]:
    """One line per driver with counted active sites, in driver-name order."""
    by_driver: dict[str, list[Site]] = {}
    for site in sites:
        if site.active and counted(site):
            by_driver.setdefault(site.driver or ".", []).append(site)
    needed = {name: dict(cov.needed).get(90) for name, cov in points}
    rows = []
    for name in sorted(by_driver):
        group = by_driver[name]
        rows.append(DriverSummary(
            info=_info(group[0], lookup),
            folders=tuple(sorted({s.path.rsplit("/", 1)[0] for s in group})),
            sites=len(group),
            ve=sum(1 for s in group if s.tdx is not None and s.tdx.path == "ve"),
            paravirt=sum(1 for s in group if s.tdx is not None and s.tdx.path == "paravirt"),
            unsupported=sum(1 for s in group
                            if s.tdx is not None and s.tdx.path == "unsupported"),
            hot=sum(s.hot for s in group),
            ve_exits=sum(s.tdx.ve_exits or 0 for s in group
                         if s.tdx is not None and s.tdx.path == "ve"),
            points_90=needed.get(name)))
    return tuple(rows)


def ordered(strategies: dict[str, Strategy]) -> list[Strategy]:
    known = [strategies[n] for n in STRATEGY_ORDER if n in strategies]
    return known + [strategies[n] for n in sorted(strategies) if n not in STRATEGY_ORDER]


def compare(sites: Sequence[Site], graph: CallGraph | None, strategies: dict[str, Strategy],
            enricher: Enricher, arguments: dict[SiteKey, list[str]],
            counted: Callable[[Site], bool]) -> tuple[StrategyRow, ...]:
    """Rows for every platform, strategy and group (plus "all"), over the counted active
    sites: platforms side by side, each in the order asked for."""
    chosen = [s for s in sites if s.active and counted(s)]
    candidates = candidate_sets(patchable(chosen), graph) if graph is not None else None
    rows: list[StrategyRow] = []
    for model in enricher.models():
        for strategy in ordered(strategies):
            verdicts = [enricher.reverdict(s, strategy, arguments, model) for s in chosen]
            for group in (*GROUPS, "all"):
                members = [(s, v) for s, v in zip(chosen, verdicts, strict=True)
                           if group == "all" or s.group == group]
                rows.append(_row(strategy.name, group, members, candidates,
                                 model.platform.name))
    return tuple(rows)


def _row(strategy: str, group: str, members: list[tuple[Site, Tdx]],
         candidates: dict[int, frozenset[str]] | None, platform: str) -> StrategyRow:
    ve = [(s, v) for s, v in members if v.path == "ve"]
    return StrategyRow(
        strategy=strategy, group=group,
        drivers=len({s.driver for s, _ in members}),
        sites=len(members),
        ve=len(ve),
        paravirt=sum(1 for _, v in members if v.path == "paravirt"),
        unsupported=sum(1 for _, v in members if v.path == "unsupported"),
        hot=sum(1 for s, _ in members if s.hot),
        hot_ve=sum(1 for s, _ in ve if s.hot),
        ve_exits=sum(v.ve_exits or 0 for _, v in ve),
        ve_exits_unknown=sum(1 for _, v in ve if v.ve_exits is None),
        points_90=_points_90(members, candidates), platform=platform)


def _points_90(members: list[tuple[Site, Tdx]],
               candidates: dict[int, frozenset[str]] | None) -> int | None:
    """Patch points still needed for 90% of the sites that are not paravirt already."""
    if candidates is None:
        return None
    left = [candidates[id(s)] for s, v in members if v.path != "paravirt" and id(s) in candidates]
    chosen = plan(left).points_for(90)
    return None if chosen is None else len(chosen)
