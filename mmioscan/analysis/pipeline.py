"""The analysis as a visible sequence of stages (docs/design.md, "Stages"):

    inputs -> facts -> graph -> sites -> drivers and verdicts -> patch points -> strategies

Each stage is a function from the previous stage's frozen result to the next; nothing calls
back into a stage and nothing is read off an object afterwards.

    run(AnalysisOptions(ScanOptions(paths, ...), config=..., strategy=...)) -> Analysis
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mmioscan.analysis.callgraph import CallGraph
from mmioscan.analysis.enrich import Judged, judge
from mmioscan.analysis.gather import Gathered, ScanOptions, gather
from mmioscan.analysis.heap import hold, release, settle
from mmioscan.analysis.sites import find_sites
from mmioscan.analysis.strategies import compare, driver_summaries
from mmioscan.analysis.timings import Timings
from mmioscan.analysis.wrappers import hot_roots, indirect_mixed, patch_points
from mmioscan.core.model import Coverage, ScanResult, Site, StrategyRow
from mmioscan.core.ruleset import RuleSet, load_rules
from mmioscan.core.toml import RuleError
from mmioscan.facts.runner import Progress
from mmioscan.kernel.dotconfig import load_config
from mmioscan.kernel.tree import kernel_version
from mmioscan.platforms.strategies import (
    DEFAULT_STRATEGY,
    Strategy,
    load_patch_points,
    load_strategies,
)

__all__ = ["Analysis", "AnalysisOptions", "ScanOptions", "Timings", "analyse", "run",
           "run_scan"]


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    scan: ScanOptions
    config: Path | None = None  # a .config: sites get `reachable`
    strategy: str = DEFAULT_STRATEGY
    patch_points: Path | None = None  # a user's list of functions to patch (a strategy)
    all_sites: bool = False  # count unreachable sites too in summaries (--all)
    compare_strategies: bool = False  # fill ScanResult.strategies (every strategy)
    judge: bool = True  # drivers and verdicts (False: sites and patch points only)
    platforms: tuple[str, ...] = ("tdx",)  # --platform: verdicts on each (sites keep `tdx`)
    cpu_features: tuple[tuple[str, bool], ...] = ()  # --cpu-features: known present/absent


@dataclass(frozen=True, slots=True)
class Inputs:
    """The user's files, read (and refused when unusable) before any parsing starts."""

    config: dict[str, str] | None
    strategies: dict[str, Strategy]  # the shipped ones, plus the user's own when given
    strategy: Strategy


@dataclass(frozen=True, slots=True)
class Analysis:
    result: ScanResult
    graph: CallGraph | None  # None with --direct-only; `explain` walks it


def choose_strategy(name: str, patch_points: Path | None,
                    strategies: dict[str, Strategy]) -> Strategy:
    """The named strategy, or the user's patch-point list; RuleError for an unknown name."""
    if patch_points is not None:
        return load_patch_points(patch_points)
    if name not in strategies:
        raise RuleError(f"unknown strategy {name!r}: choose one of "
                        f"{', '.join(sorted(strategies))} or give --patch-points FILE")
    return strategies[name]


def read_inputs(options: AnalysisOptions) -> Inputs:
    config = load_config(options.config) if options.config is not None else None
    strategies = load_strategies()
    strategy = choose_strategy(options.strategy, options.patch_points, strategies)
    if strategy.name not in strategies:
        strategies = {**strategies, strategy.name: strategy}
    return Inputs(config, strategies, strategy)


def counted_predicate(options: AnalysisOptions) -> Callable[[Site], bool]:
    """Which sites summaries count: with a .config only the reachable ones, unless --all."""
    if options.config is None or options.all_sites:
        return lambda s: True
    return lambda s: s.reachable is not False


def build_graph(gathered: Gathered, rules: RuleSet) -> CallGraph:
    return CallGraph(gathered.facts.values(), rules.catalogue.accessors,
                     max_function_lines=rules.wrappers.max_function_lines,
                     max_funnel_lines=rules.wrappers.max_funnel_lines,
                     scope_calls=gathered.scope_calls,
                     include_paths=gathered.include_paths)


def run(options: AnalysisOptions, rules: RuleSet | None = None,
        progress: Progress | None = None, timings: Timings | None = None) -> Analysis:
    """Every stage in order. Raises RuleError, dotconfig.ConfigError or tree.TreeError for
    unusable input, before any parsing starts where it can."""
    collecting = hold()  # analysis/heap.py: settled after each stage instead
    try:
        return _run(options, rules or load_rules(), progress, timings or Timings())
    finally:
        release(collecting)


def _run(options: AnalysisOptions, rules: RuleSet, progress: Progress | None,
         clock: Timings) -> Analysis:
    inputs = read_inputs(options)
    counted = counted_predicate(options)
    gathered = gather(options.scan, rules, progress, clock)
    graph = None if options.scan.direct_only else build_graph(gathered, rules)
    settle()
    clock.lap("graph")
    sites = find_sites(gathered, graph, rules)
    settle()
    clock.lap("sites")
    judged = _judge(gathered, sites, graph, rules, inputs, options) if options.judge else None
    settle()
    clock.lap("drivers and verdicts")
    if judged is not None:
        sites = judged.sites
    points = patch_points(sites, graph, counted) if graph is not None else ()
    clock.lap("patch points")
    rows = _strategy_rows(sites, graph, inputs, judged, counted, options)
    clock.lap("strategies")
    result = _result(gathered, sites, points, rows, judged, inputs, options, counted, rules)
    if graph is not None:
        result = replace(result, indirect_mixed=indirect_mixed(gathered.scoped, graph))
    return Analysis(result, graph)


def _judge(gathered: Gathered, sites: tuple[Site, ...], graph: CallGraph | None,
           rules: RuleSet, inputs: Inputs, options: AnalysisOptions) -> Judged:
    cache = options.scan.cache_dir
    return judge(gathered.root, sites, gathered.facts.values(), rules, inputs.config,
                 inputs.strategy, cache / "kconfig" if cache is not None else None,
                 options.platforms, dict(options.cpu_features), graph, inputs.strategies)


def _strategy_rows(sites: tuple[Site, ...], graph: CallGraph | None, inputs: Inputs,
                   judged: Judged | None, counted: Callable[[Site], bool],
                   options: AnalysisOptions) -> tuple[StrategyRow, ...]:
    if not options.compare_strategies or judged is None:
        return ()
    return compare(sites, graph, judged.strategies, judged.enricher, judged.arguments, counted)


def _result(gathered: Gathered, sites: tuple[Site, ...],
            points: tuple[tuple[str, Coverage], ...], rows: tuple[StrategyRow, ...],
            judged: Judged | None, inputs: Inputs, options: AnalysisOptions,
            counted: Callable[[Site], bool], rules: RuleSet) -> ScanResult:
    problems = set(gathered.problems) | set(judged.problems if judged is not None else ())
    lookup = judged.enricher.drivers.lookup if judged is not None else None
    full = not options.scan.direct_only
    return ScanResult(
        root=str(gathered.root), kernel_version=kernel_version(gathered.root),
        scanned=gathered.fileset.targets, sites=sites,
        problems=tuple(sorted(problems, key=lambda p: (p.path, p.message))),
        stats=gathered.stats, facts=gathered.scoped, patch_points=points,
        hot_roots=hot_roots(gathered.facts.values(), rules.hot) if full else (),
        drivers=driver_summaries(sites, points, counted, lookup) if judged is not None else (),
        strategy=inputs.strategy.name if judged is not None else None,
        config=str(options.config) if options.config is not None else None,
        tdx_sources=judged.enricher.model.sources if judged is not None else (),
        platforms=options.platforms,
        platform_sources=tuple((m.platform.name, m.platform.sources)
                               for m in judged.enricher.platforms) if judged is not None else (),
        strategies=rows,
        counts_unreachable=options.config is None or options.all_sites,
        ram_backed_derefs=sum(f.ram_backed_derefs for f in gathered.scoped),
        text_reads=judged.reads if judged is not None else ())


def analyse(options: AnalysisOptions, rules: RuleSet | None = None,
            progress: Progress | None = None, timings: Timings | None = None) -> ScanResult:
    """The result of every stage (see `run` for the graph as well)."""
    return run(options, rules, progress, timings).result


def run_scan(options: ScanOptions, rules: RuleSet | None = None,
             progress: Progress | None = None) -> Analysis:
    """Sites and patch points without drivers and verdicts (the call graph's view)."""
    return run(AnalysisOptions(options, judge=False), rules, progress)
