"""The main use case: scan, then map drivers, judge every site under a TDX strategy, count.

    analyse(AnalysisOptions(ScanOptions(paths, ...), config=..., strategy=...)) -> ScanResult

The scan (scan.py) finds the sites; this module adds what needs the whole tree: Kbuild and
Kconfig (kbuild.py), the instruction forms of the tree's io.h (tdx.py), the driver table and,
on request, every strategy side by side (strategies.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from mmioscan.analysis.callgraph import CallGraph
from mmioscan.analysis.definitions import Definitions
from mmioscan.analysis.enrich import Enricher, IncludedDrivers, SiteKey, includers
from mmioscan.analysis.scan import ScanOptions, Timings, run_scan
from mmioscan.analysis.strategies import compare, driver_summaries
from mmioscan.core.model import FileFacts, Problem, ScanResult, Site, StrategyRow
from mmioscan.core.ruleset import RuleSet, load_rules
from mmioscan.core.toml import RuleError
from mmioscan.facts.runner import Progress
from mmioscan.kernel.dotconfig import load_config
from mmioscan.kernel.drivermap import DriverMap
from mmioscan.kernel.groups import load_group_rules
from mmioscan.kernel.ifconfig import ConfigConditions
from mmioscan.platforms.strategies import Strategy, load_patch_points, load_strategies
from mmioscan.platforms.tdx.model import TdxModel

DEFAULT_STRATEGY = "upstream"


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    scan: ScanOptions
    config: Path | None = None  # a .config: sites get `reachable`
    strategy: str = DEFAULT_STRATEGY
    patch_points: Path | None = None  # a user's list of functions to patch (a strategy)
    all_sites: bool = False  # count unreachable sites too in summaries (--all)
    compare_strategies: bool = False  # fill ScanResult.strategies (every strategy)
    kconfig_cache: Path | None = None


def choose_strategy(name: str, patch_points: Path | None,
                    strategies: dict[str, Strategy]) -> Strategy:
    """The named strategy, or the user's patch-point list; RuleError for an unknown name."""
    if patch_points is not None:
        return load_patch_points(patch_points)
    if name not in strategies:
        raise RuleError(f"unknown strategy {name!r}: choose one of "
                        f"{', '.join(sorted(strategies))} or give --patch-points FILE")
    return strategies[name]


def counted_predicate(options: AnalysisOptions) -> Callable[[Site], bool]:
    """Which sites summaries count: with a .config only the reachable ones, unless --all."""
    if options.config is None or options.all_sites:
        return lambda s: True
    return lambda s: s.reachable is not False


class _Finisher:
    """The scan's site-finishing hook; keeps what the strategy comparison needs later."""

    def __init__(self, options: AnalysisOptions, rules: RuleSet,
                 config: dict[str, str] | None, strategy: Strategy) -> None:
        self.options, self.rules, self.config, self.strategy = options, rules, config, strategy
        self.enricher: Enricher | None = None
        self.arguments: dict[SiteKey, list[str]] = {}
        self.problems: list[Problem] = []

    def __call__(self, root: Path, sites: tuple[Site, ...],
                 facts: Iterable[FileFacts]) -> tuple[Site, ...]:
        cache = self.options.scan.cache_dir
        drivers = DriverMap.build(root, load_group_rules(), self.config,
                                  sorted({s.path for s in sites}),
                                  cache_dir=cache / "kconfig" if cache is not None else None)
        self.problems += list(drivers.problems)
        model = TdxModel.derive(root, self.rules.catalogue)
        # A partial tree falls back to the shipped forms: say so where users look.
        if model.notes:
            self.problems.append(Problem(".", "TDX instruction forms: " + "; ".join(model.notes)))
        conditions = ConfigConditions(self.config) if self.config is not None else None
        definitions = Definitions(self.rules.catalogue.names(),
                                  self.rules.wrappers.definition_macros)
        self.enricher = Enricher(root, IncludedDrivers(drivers, includers(facts)), model,
                                 self.strategy, self.rules.catalogue, conditions, definitions)
        done, self.arguments = self.enricher.run(sites)
        return done


def analyse(options: AnalysisOptions, rules: RuleSet | None = None,
            progress: Progress | None = None, timings: Timings | None = None,
            on_graph: Callable[[CallGraph], None] | None = None) -> ScanResult:
    """Raises RuleError, kbuild.ConfigError or tree.TreeError for unusable input, before any
    parsing starts where it can."""
    rules = rules or load_rules()
    config = load_config(options.config) if options.config is not None else None
    strategies = load_strategies()
    strategy = choose_strategy(options.strategy, options.patch_points, strategies)
    finisher = _Finisher(options, rules, config, strategy)
    graphs: list[CallGraph] = []

    def keep_graph(graph: CallGraph) -> None:
        graphs.append(graph)
        if on_graph is not None:
            on_graph(graph)

    counted = counted_predicate(options)
    clock = timings or Timings()
    result = run_scan(options.scan, rules, progress, keep_graph, clock, finisher, counted)
    problems = tuple(sorted(set(result.problems) | set(finisher.problems),
                            key=lambda p: (p.path, p.message)))
    enricher = finisher.enricher
    lookup = enricher.drivers.lookup if enricher is not None else None
    drivers = driver_summaries(result.sites, result.patch_points, counted, lookup)
    rows: tuple[StrategyRow, ...] = ()
    if options.compare_strategies and enricher is not None:
        if strategy.name not in strategies:
            strategies = {**strategies, strategy.name: strategy}
        graph = graphs[0] if graphs else None
        rows = compare(result.sites, graph, strategies, enricher, finisher.arguments, counted)
        clock.lap("strategies")
    return replace(result, problems=problems, drivers=drivers, strategy=strategy.name,
                   config=str(options.config) if options.config is not None else None,
                   tdx_sources=enricher.model.sources if enricher is not None else (),
                   strategies=rows,
                   counts_unreachable=options.config is None or options.all_sites)
