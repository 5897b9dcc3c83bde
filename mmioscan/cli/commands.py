"""Handlers of scan, strategies, report, explain and kernel-tree (arguments: cli/main.py).

Each takes the parsed arguments (never changing them), runs the analysis, hands the result
to a renderer (report/) and writes what it returns; it returns the exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

from mmioscan.analysis.pipeline import Analysis, AnalysisOptions, ScanOptions, Timings, run
from mmioscan.analysis.unchanged import serve_unchanged
from mmioscan.cli.options import UsageError, cache_dir, cpu_features, jobs, platforms
from mmioscan.cli.output import encoded, target_name, write_data
from mmioscan.cli.precise import engine_options
from mmioscan.cli.progress import ProgressBar
from mmioscan.core.model import ScanResult
from mmioscan.core.ruleset import RuleSet, load_rules
from mmioscan.facts.products import Products, open_products, options_key
from mmioscan.kernel.dotconfig import ConfigError, load_config
from mmioscan.kernel.kernelsrc import ensure_cloud_config, ensure_tree
from mmioscan.kernel.tree import resolve_root
from mmioscan.report.explain import Location, explain_location, explain_name, parse_location
from mmioscan.report.formats import renderer, report_suffixes


def analysis_options(args: argparse.Namespace, compare: bool = False) -> AnalysisOptions:
    scan = ScanOptions(paths=tuple(args.paths), root=args.root, jobs=jobs(args),
                       cache_dir=cache_dir(args),
                       direct_only=bool(getattr(args, "direct_only", False)),
                       **engine_options(args))
    return AnalysisOptions(scan, config=args.config, strategy=args.strategy,
                           patch_points=args.patch_points, all_sites=args.all_sites,
                           compare_strategies=compare, platforms=platforms(args),
                           cpu_features=cpu_features(args))


def run_analysis(args: argparse.Namespace, options: AnalysisOptions,
                 rules: RuleSet | None = None, clock: Timings | None = None) -> Analysis:
    """Every stage, with a progress bar on a terminal and --timings on stderr."""
    bar = ProgressBar() if sys.stderr.isatty() and not args.no_progress else None
    clock = clock or Timings()
    try:
        analysis = run(options, rules, bar, timings=clock)
    finally:
        if bar is not None:
            bar.finish()
    _print_timings(args, clock)
    return analysis


def _print_timings(args: argparse.Namespace, clock: Timings) -> None:
    if args.timings:
        phases = ", ".join(f"{k} {v:.2f}s" for k, v in clock.phases.items())
        print(f"mmioscan: timings: {phases}", file=sys.stderr)
        peaks = ", ".join(f"{k} {v / 2**30:.2f} GiB" for k, v in clock.peaks.items())
        print(f"mmioscan: peak memory of the main process after each stage: {peaks}",
              file=sys.stderr)


@dataclasses.dataclass(slots=True)
class Served:
    """A command's result, and where its renderings are cached (facts/products.py). On a hit
    the result is unpickled only if a rendering asked for was not stored with it."""

    loaded: ScanResult | None
    products: Products | None = None
    hit: bool = False  # the result came from the products cache
    # Runs the analysis when the stored result cannot be read after all (damaged, removed)
    compute: Callable[[], ScanResult] | None = None

    @property
    def result(self) -> ScanResult:
        if self.loaded is None and self.products is not None:
            self.loaded = self.products.result()
        if self.loaded is None:
            assert self.compute is not None
            self.hit = False
            self.loaded = self.compute()
        return self.loaded


def _products(options: AnalysisOptions, rules: RuleSet, rules_file: Path | None,
              bounded: bool = False) -> Products | None:
    """The products cache of these options (None: --no-cache, or the precise engine, whose
    facts depend on a prepared build outside the tree). bounded: facts/products.py."""
    scan = options.scan
    if scan.cache_dir is None or scan.engine != "fast":
        return None
    asked = repr(dataclasses.replace(options, scan=dataclasses.replace(
        scan, jobs=1, cache_dir=None)))
    key = options_key(asked, (options.config, options.patch_points, rules_file), rules.digest)
    return open_products(scan.cache_dir, resolve_root(list(scan.paths), scan.root), key,
                         bounded)


def cached_analysis(args: argparse.Namespace, options: AnalysisOptions, rules: RuleSet,
                    rules_file: Path | None, bounded: bool = False) -> ScanResult:
    """The result of a scan, from the products cache when its inputs have not changed: the
    gate, run again before each push, scans the same two copies (a version's scanned folders,
    their headers and build files: bounded, facts/products.py)."""
    products = _products(options, rules, rules_file, bounded)
    if products is not None:
        stored = products.result()
        if stored is not None:
            return stored
    result = run_analysis(args, options, rules).result
    if products is not None:
        products.store_result(result)
    return result


def _result(args: argparse.Namespace, compare: bool = False) -> Served:
    options = analysis_options(args, compare)
    rules = load_rules(accessors=args.rules)
    clock = Timings()
    products = _products(options, rules, args.rules)
    clock.lap("inputs")

    def compute() -> ScanResult:
        result = run_analysis(args, options, rules, clock).result
        if products is not None:
            products.store_result(result)
        return result

    if products is not None and (products.has_result()
                                 or _unchanged(options, rules, products, clock)):
        _print_timings(args, clock)
        return Served(None, products, hit=True, compute=compute)
    return Served(compute(), products, compute=compute)


def _unchanged(options: AnalysisOptions, rules: RuleSet, products: Products,
               clock: Timings) -> bool:
    """Does an earlier entry answer for these inputs (analysis/unchanged.py)? An unusable
    .config is left to the analysis, which reports it."""
    scan = options.scan
    if scan.cache_dir is None or products.inputs is None:
        return False  # no cache, or a run that cannot be served (a cold one: no entry)
    try:
        config = load_config(options.config) if options.config is not None else None
    except ConfigError:
        return False
    served = serve_unchanged(products, resolve_root(list(scan.paths), scan.root), rules,
                             config, scan.cache_dir)
    clock.lap("unchanged")
    return served


# Renderers whose text shows how many files came from the cache: a rendering made on a miss
# says fewer than the same result served on a hit, so only hits store theirs.
_SHOWS_CACHE_HITS = frozenset({"text"})


def render(name: str, served: Served) -> bytes:
    """The rendering of a result as written, from the products cache when it was rendered
    before (the drivers/ JSON is 200 MB: stored as the very bytes, written as they are)."""
    products = served.products
    if products is not None:
        data = products.rendered(name)
        if data is not None:
            return data
    data = encoded(renderer(name)(served.result))
    if products is not None and (served.hit or name not in _SHOWS_CACHE_HITS):
        products.store_rendered(name, data)
    return data


def write(text: str | bytes, output: Path | None) -> None:
    try:
        write_data(text if isinstance(text, bytes) else encoded(text), output)
    except OSError as exc:
        raise UsageError(f"cannot write {target_name(output)}: "
                         f"{exc.strerror or exc}") from None


def scan(args: argparse.Namespace) -> int:
    write(render(args.format, _result(args)), args.output)
    return 0


def strategies(args: argparse.Namespace) -> int:
    write(render(f"strategies-{args.format}", _result(args, compare=True)), args.output)
    return 0


def report(args: argparse.Namespace) -> int:
    formats = report_suffixes()
    outputs: list[Path] = args.output
    for output in outputs:
        if output.suffix.lower() not in formats:
            raise UsageError(f"{output}: a report is .html, .md or .json")
    served = _result(args, compare=True)
    for output in outputs:
        write(render(formats[output.suffix.lower()], served), output)
    return 0


def explain(args: argparse.Namespace) -> int:
    location = parse_location(args.target)
    paths = list(args.paths)
    if location is not None:
        file = Path(location.path)
        if not file.exists() and args.root is not None:
            file = args.root / location.path
        if not file.exists():
            raise UsageError(f"no such file: {location.path}")
        paths = paths or [file.parent]
    rules = load_rules()
    scan_options = ScanOptions(tuple(paths or [Path(".")]), args.root, jobs(args),
                               cache_dir(args))
    analysis = run_analysis(args, AnalysisOptions(scan_options), rules)
    result = analysis.result
    if location is not None:
        rel = _relative_to_root(Path(location.path), Path(result.root), args.root)
        write(explain_location(result, Location(rel, location.line), analysis.graph), None)
        return 0
    assert analysis.graph is not None
    text = explain_name(result, analysis.graph, rules.catalogue, args.target)
    if text is None:
        raise UsageError(f"{args.target}: no accessor, function or macro of that name "
                         "in the scanned paths")
    write(text, None)
    return 0


def _relative_to_root(path: Path, root: Path, given_root: Path | None) -> str:
    candidate = path if path.exists() or given_root is None else given_root / path
    try:
        return candidate.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def kernel_tree(args: argparse.Namespace) -> int:
    path = ensure_cloud_config() if args.config else ensure_tree()
    print(path)
    return 0
