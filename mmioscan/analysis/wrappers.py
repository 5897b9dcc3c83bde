"""Sites found through the call graph: wrapper calls, regmap calls, hot flags, patch points."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace

from mmioscan.analysis.callgraph import CallGraph, Reach, folder_of
from mmioscan.analysis.hotpaths import HotMark, all_roots
from mmioscan.analysis.patchpoints import THRESHOLDS, plan
from mmioscan.core.catalogue import Catalogue
from mmioscan.core.evolve import placed
from mmioscan.core.model import Coverage, FileFacts, HotRoot, PatchPoint, Site
from mmioscan.core.ruleset import RESET_KIND, HotPaths, Regmap

# Regmap sites are all covered by patching the regmap-mmio bus (one funnel for every driver).
REGMAP_FUNNEL = "drivers/base/regmap/regmap-mmio.c:regmap_mmio"


def driver_of(path: str) -> str:
    """The driver a file belongs to: its folder, until Kbuild maps files to modules."""
    return folder_of(path) or "."


def _access(accessors: Iterable[str], catalogue: Catalogue) -> str:
    kinds = {acc.access for name in accessors if (acc := catalogue.get(name)) is not None}
    return kinds.pop() if len(kinds) == 1 else "both"


def _width(accessors: Iterable[str], catalogue: Catalogue) -> int | None:
    widths = {acc.width for name in accessors if (acc := catalogue.get(name)) is not None}
    return widths.pop() if len(widths) == 1 else None


def wrapper_sites(scoped: Iterable[FileFacts], graph: CallGraph,
                  catalogue: Catalogue) -> Iterator[Site]:
    """Every call of a wrapper (a definition from which an accessor is reachable)."""
    names = graph.wrapper_names()
    for facts in scoped:
        polls = frozenset(facts.polls)
        for name, line, column, scope, active in facts.calls:
            if name not in names or scope < 0:
                continue  # at file scope a macro "call" generates definitions, it runs nothing
            key = graph.resolve(facts.path, name)
            reach = graph.reach.get(key) if key is not None else None
            if reach is None:
                continue
            if (line, column) in polls:  # the op of an iopoll loop: repeated, count unknown
                reach = replace(reach, counts=tuple((a, None) for a in reach.accessors))
            yield _wrapper_site(facts, graph, catalogue, reach, name, line, column, scope, active)
        yield from _indirect_sites(facts, graph, catalogue)


def _indirect_sites(facts: FileFacts, graph: CallGraph, catalogue: Catalogue) -> Iterator[Site]:
    """Calls through a function-pointer field all of whose candidates are funnels."""
    for field, struct, line, column, scope in facts.indirect:
        if scope < 0:
            continue
        reach, targets = graph.indirect_reach(facts.path, field, struct)
        if reach is not None:
            site = _wrapper_site(facts, graph, catalogue, reach, "->" + field, line, column,
                                 scope, True)
            yield replace(site, targets=targets)


def indirect_mixed(scoped: Iterable[FileFacts], graph: CallGraph) -> int:
    """Calls through a field whose candidates mix funnels and other functions: no sites,
    counted apart (stats `indirect_mixed`)."""
    mixed = 0
    for facts in scoped:
        for field, struct, _line, _column, scope in facts.indirect:
            if scope >= 0:
                reach, targets = graph.indirect_reach(facts.path, field, struct)
                mixed += reach is None and bool(targets)
    return mixed


def _wrapper_site(facts: FileFacts, graph: CallGraph, catalogue: Catalogue, reach: Reach,
                  name: str, line: int, column: int, scope: int, active: bool) -> Site:
    acc = catalogue.get(reach.accessor)
    return Site(
        path=facts.path, line=line, column=column,
        function=facts.scopes[scope].name if scope >= 0 else None, callee=name,
        accessor=reach.accessor, kind="wrapper",
        access=_access(reach.accessors, catalogue), width=_width(reach.accessors, catalogue),
        family=acc.family if acc is not None else "regmap", active=active, via=reach.via,
        accessors=reach.accessors,
        scope_key=graph.key_of(facts.path, scope) if scope >= 0 else None,
        access_counts=reach.counts)


def regmap_folders(facts: Iterable[FileFacts], regmap: Regmap) -> frozenset[str]:
    """Folders that make a map that may be MMIO (regmap_init_mmio*, syscon, regmap_init) in a
    .c file (a header defining the API, like include/linux/regmap.h, makes nothing): the
    gathering parses their regmap users; analysis/regmaps.py decides per map."""
    maybe = regmap.maybe_mmio()
    return frozenset(driver_of(f.path) for f in facts
                     if f.path.endswith(".c") and any(c[0] in maybe for c in f.calls))


def hot_roots(facts: Iterable[FileFacts], rules: HotPaths | None = None
              ) -> tuple[HotRoot, ...]:
    """The roots of hot paths, each with its kind; a reset function installed in an ops
    table (.ndo_tx_timeout) is no root (analysis/hotpaths.py)."""
    return tuple(r for r in all_roots(facts, rules) if r.kind != RESET_KIND)


def finish_sites(sites: Iterable[Site], graph: CallGraph,
                 hot: Mapping[str, HotMark]) -> list[Site]:
    """Fill in driver, the enclosing scope's graph key and how it is hot."""
    done = []
    for site in sites:
        key = site.scope_key
        if key is None and site.function is not None:
            key = f"{site.path}:{site.function}"  # functions and macros are file-local keys
        mark = hot.get(key) if key else None
        done.append(placed(site, driver_of(site.path), key, mark is not None and mark.hot,
                           mark.kinds if mark else (), mark.only_via if mark else None))
    return done


def _candidates(site: Site, graph: CallGraph) -> frozenset[str]:
    """Definitions whose rewriting would cover the site: its scope, and wrappers on its chain."""
    points = set()
    if site.scope_key is not None and site.scope_key in graph.definitions:
        points.add(site.scope_key)
    if site.kind == "wrapper":
        reach = graph.reach.get(graph.resolve(site.path, site.callee) or "")
        if reach is not None:
            points.update(k for k in reach.via_keys if k in graph.definitions)
    if site.kind == "regmap":
        points.add(REGMAP_FUNNEL)
    return frozenset(points)


def coverage(sites: Sequence[Site], graph: CallGraph,
             candidates: dict[int, frozenset[str]]) -> Coverage:
    """candidates: id(site) -> its candidate points, computed once for all groupings."""
    result = plan([candidates[id(s)] for s in sites])
    points = []
    for step in result.steps:
        definition = graph.definitions.get(step.point)
        name, path, line = ((definition.name, definition.path, definition.line) if definition
                            else (step.point.rsplit(":", 1)[-1], step.point.rsplit(":", 1)[0], 0))
        share = step.cumulative / result.sites if result.sites else 0.0
        points.append(PatchPoint(step.point, name, path, line, step.covered, round(share, 4)))
    needed = []
    for percent in THRESHOLDS:
        chosen = result.points_for(percent)
        needed.append((percent, None if chosen is None else len(chosen)))
    return Coverage(result.sites, tuple(points), tuple(needed))


def patchable(sites: Iterable[Site], include: Callable[[Site], bool] | None = None) -> list[Site]:
    """The sites patch points are planned for: active, not a mere reference (an accessor
    used as a value is covered where it is called), and chosen by `include`."""
    return [s for s in sites if s.active and s.kind != "reference"
            and (include is None or include(s))]


def candidate_sets(sites: Iterable[Site], graph: CallGraph) -> dict[int, frozenset[str]]:
    return {id(s): _candidates(s, graph) for s in sites}


def patch_points(sites: Sequence[Site], graph: CallGraph,
                 include: Callable[[Site], bool] | None = None
                 ) -> tuple[tuple[str, Coverage], ...]:
    """Coverage of the whole scan ("all"), of each group ("group:virtio", ...) when sites have
    groups, and of each driver."""
    counted = patchable(sites, include)
    by_driver: dict[str, list[Site]] = {}
    by_group: dict[str, list[Site]] = {}
    for site in counted:
        by_driver.setdefault(site.driver or ".", []).append(site)
        if site.group is not None:
            by_group.setdefault(f"group:{site.group}", []).append(site)
    candidates = candidate_sets(counted, graph)
    result = [("all", coverage(counted, graph, candidates))]
    result += [(g, coverage(by_group[g], graph, candidates)) for g in sorted(by_group)]
    result += [(d, coverage(by_driver[d], graph, candidates)) for d in sorted(by_driver)]
    return tuple(result)
