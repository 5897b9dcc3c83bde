"""Command line: argv -> options -> use case -> output. The only module that prints."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from mmioscan import __version__
from mmioscan.analysis.callgraph import CallGraph
from mmioscan.analysis.explain import Location, explain_location, explain_name, parse_location
from mmioscan.analysis.pipeline import DEFAULT_STRATEGY, AnalysisOptions, analyse
from mmioscan.analysis.scan import ScanOptions, Timings
from mmioscan.cli.gate import GateError
from mmioscan.cli.gate import register as register_gate
from mmioscan.cli.output import write_output
from mmioscan.cli.progress import ProgressBar
from mmioscan.core.catalogue import RuleError
from mmioscan.core.model import ScanResult
from mmioscan.core.ruleset import load_rules
from mmioscan.kernel.kbuild import ConfigError
from mmioscan.kernel.kernelsrc import KernelSourceError, ensure_cloud_config, ensure_tree
from mmioscan.kernel.tree import TreeError
from mmioscan.platforms.tdx import TdxError
from mmioscan.report import csv as csv_report
from mmioscan.report import html as html_report
from mmioscan.report import json as json_report
from mmioscan.report import markdown as markdown_report
from mmioscan.report import sarif as sarif_report
from mmioscan.report import summary as summary_report
from mmioscan.report import text as text_report

RENDERERS: dict[str, Callable[[ScanResult], str]] = {
    "text": text_report.render,
    "json": json_report.render,
    "sarif": sarif_report.render,
    "csv": csv_report.render,
    "markdown": markdown_report.render,
    "summary": summary_report.render,
}


class UsageError(Exception):
    """Unusable arguments: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmioscan" / "facts"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mmioscan", description="Find every MMIO access in a Linux kernel "
                     "tree and say what it does in a confidential-computing (TDX) guest.")
    parser.add_argument("--version", action="version", version=f"mmioscan {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    scan = sub.add_parser("scan", help="list every MMIO accessor use under the given paths")
    add_scan_options(scan)
    scan.add_argument("--format", choices=sorted(RENDERERS), default="text")
    scan.add_argument("-o", "--output", type=Path, help="write the output to FILE")
    scan.add_argument("--direct-only", action="store_true",
                      help="only direct accessor calls and references: no call graph, "
                           "wrappers, regmap, hot paths or patch points (fastest)")
    strategies = sub.add_parser("strategies", help="every TDX strategy side by side, per "
                                "driver group (virtio, x86, generic)")
    add_scan_options(strategies)
    strategies.add_argument("--format", choices=("text", "json"), default="text")
    strategies.add_argument("-o", "--output", type=Path, help="write the output to FILE")
    report = sub.add_parser("report", help="write a self-contained HTML audit report "
                            "(every strategy compared)")
    add_scan_options(report)
    report.add_argument("-o", "--output", type=Path, required=True, action="append",
                        help="FILE.html (or .md for Markdown, .json for the JSON summary); "
                             "repeat to write several from one scan")
    explain = sub.add_parser("explain", help="explain a function, macro or accessor (NAME), "
                             "or the sites on one line (PATH:LINE)")
    explain.add_argument("target", metavar="NAME|PATH:LINE")
    explain.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                         help="what to scan (default: the folder of PATH:LINE, else .)")
    explain.add_argument("--root", type=Path, help="the tree root (default: found by walking up)")
    explain.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    explain.add_argument("--cache-dir", type=Path, default=None)
    explain.add_argument("--no-cache", action="store_true")
    kernel = sub.add_parser("kernel-tree", help="print (installing if needed) Debian's "
                            "linux-source-6.12 tree, or with --config its cloud .config")
    kernel.add_argument("--config", action="store_true",
                        help="print the cloud-amd64 .config path instead")
    register_gate(sub)  # gate, baseline, triage, history, diff (cli_gate.py)
    return parser


def add_scan_options(parser: argparse.ArgumentParser) -> None:
    """What every scanning command takes: paths, tree, cache, .config and strategy."""
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="a kernel tree, or any folder or file inside one")
    parser.add_argument("--root", type=Path, help="the tree root (default: found by walking up)")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                        help="parallel parser processes (default: all cores)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help=f"facts cache folder (default: {default_cache_dir()})")
    parser.add_argument("--no-cache", action="store_true", help="parse every file afresh")
    parser.add_argument("--rules", type=Path, help="an alternative accessors.toml")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--timings", action="store_true",
                        help="print the wall time of each phase on stderr")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="a kernel .config: sites say whether it builds them, and "
                             "summaries count only those (see --all)")
    parser.add_argument("--all", action="store_true", dest="all_sites",
                        help="with --config, count unreachable sites in summaries too")
    parser.add_argument("--strategy", default=DEFAULT_STRATEGY,
                        help="TDX strategy for the verdicts: upstream, iomap-paravirt, "
                             f"virtio-paravirt (default: {DEFAULT_STRATEGY})")
    parser.add_argument("--patch-points", type=Path, metavar="FILE",
                        help="your own strategy: a file of functions to patch, one per line")


def analysis_options(args: argparse.Namespace, compare: bool = False) -> AnalysisOptions:
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    scan = ScanOptions(paths=tuple(args.paths), root=args.root, jobs=args.jobs,
                       cache_dir=cache_dir,
                       direct_only=bool(getattr(args, "direct_only", False)))
    return AnalysisOptions(scan, config=args.config, strategy=args.strategy,
                           patch_points=args.patch_points, all_sites=args.all_sites,
                           compare_strategies=compare)


def run_analysis(args: argparse.Namespace, compare: bool = False) -> ScanResult:
    """Scan with the command's options, a progress bar on a terminal and --timings."""
    options = analysis_options(args, compare)
    rules = load_rules(accessors=args.rules)
    bar = ProgressBar() if sys.stderr.isatty() and not args.no_progress else None
    clock = Timings()
    try:
        result = analyse(options, rules, bar, timings=clock)
    finally:
        if bar is not None:
            bar.finish()
    if args.timings:
        phases = ", ".join(f"{k} {v:.2f}s" for k, v in clock.phases.items())
        print(f"mmioscan: timings: {phases}", file=sys.stderr)
    return result


def _write(text: str, output: Path | None) -> None:
    try:
        write_output(text, output)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None


def _cmd_scan(args: argparse.Namespace) -> int:
    result = run_analysis(args)
    _write(RENDERERS[args.format](result), args.output)
    return 0


def _cmd_strategies(args: argparse.Namespace) -> int:
    result = run_analysis(args, compare=True)
    render = json_report.render_strategies if args.format == "json" else text_report.strategies
    _write(render(result), args.output)
    return 0


REPORTS: dict[str, Callable[[ScanResult], str]] = {
    ".html": html_report.render, ".htm": html_report.render, ".md": markdown_report.render,
    ".json": summary_report.render}


def _cmd_report(args: argparse.Namespace) -> int:
    outputs: list[Path] = args.output
    for output in outputs:
        if output.suffix.lower() not in REPORTS:
            raise UsageError(f"{output}: a report is .html, .md or .json")
    result = run_analysis(args, compare=True)
    for output in outputs:
        _write(REPORTS[output.suffix.lower()](result), output)
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
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
    cache_dir = None if args.no_cache else (args.cache_dir or default_cache_dir())
    graphs: list[CallGraph] = []
    scan = ScanOptions(tuple(paths or [Path(".")]), args.root, max(args.jobs, 1), cache_dir)
    result = analyse(AnalysisOptions(scan), rules, on_graph=graphs.append)
    if location is not None:
        rel = _relative_to_root(Path(location.path), Path(result.root), args.root)
        _write(explain_location(result, Location(rel, location.line)), None)
        return 0
    text = explain_name(result, graphs[0], rules.catalogue, args.target)
    if text is None:
        raise UsageError(f"{args.target}: no accessor, function or macro of that name "
                         "in the scanned paths")
    _write(text, None)
    return 0


def _relative_to_root(path: Path, root: Path, given_root: Path | None) -> str:
    candidate = path if path.exists() or given_root is None else given_root / path
    try:
        return candidate.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _cmd_kernel_tree(args: argparse.Namespace) -> int:
    path = ensure_cloud_config() if args.config else ensure_tree()
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 usage or input error)."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "scan":
            return _cmd_scan(args)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "strategies":
            return _cmd_strategies(args)
        if args.command == "explain":
            return _cmd_explain(args)
        if args.command == "kernel-tree":
            return _cmd_kernel_tree(args)
        if getattr(args, "gate_handler", None) is not None:
            return int(args.gate_handler(args))
        raise UsageError("a command is required: scan, explain or kernel-tree (see --help)")
    except (UsageError, TreeError, RuleError, KernelSourceError, ConfigError,
            GateError, TdxError) as exc:
        line = " ".join(str(exc).splitlines())  # one line, whatever a message quotes
        print(f"mmioscan: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmioscan: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last resort: a bug is exit 3, never 1 (the gate's FAIL)
        if os.environ.get("MMIOSCAN_DEBUG") == "1":
            import traceback

            traceback.print_exc()
        message = " ".join(str(exc).split())
        print(f"mmioscan: internal error: {type(exc).__name__}: {message} "
              "(please report it with the command line)", file=sys.stderr)
        return 3


def main_entry() -> None:
    sys.exit(main(sys.argv[1:]))
