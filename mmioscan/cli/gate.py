"""Command line of the submission gate: gate, baseline, triage, history, diff.

`register(sub)` adds the subcommands to mmioscan's parser and returns their handlers; cli.py
dispatches to them and turns GateError (like its own UsageError) into one line on stderr and
exit 2. Handlers return 0 (clean) or 1 (the gate found blocking findings).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mmioscan.cli.output import write_output
from mmioscan.cli.progress import ProgressBar
from mmioscan.core.model import ScanResult
from mmioscan.core.ruleset import load_rules
from mmioscan.gate import history
from mmioscan.gate import report as gate_report
from mmioscan.gate.baseline import BaselineError
from mmioscan.gate.baseline import dumps as dump_baseline
from mmioscan.gate.baseline import from_sites as baseline_from_sites
from mmioscan.gate.baseline import load as load_baseline
from mmioscan.gate.compare import (
    GateOptions,
    GateReport,
    WorkspaceError,
    gate_baseline,
    gate_patch,
    gate_revisions,
)
from mmioscan.gate.gitrev import GitError
from mmioscan.gate.patchfile import PatchError
from mmioscan.gate.policy import PolicyError, load_policy
from mmioscan.gate.triage import EMPTY, TriageError, template, unlabelled
from mmioscan.gate.triage import load as load_triage
from mmioscan.kernel.kbuild import ConfigError
from mmioscan.kernel.tree import find_root

Handler = Callable[[argparse.Namespace], int]
GATE_FORMATS = ("text", "json", "sarif")
_INPUT_ERRORS = (PatchError, GitError, PolicyError, BaselineError, TriageError,
                 history.HistoryError, ConfigError, WorkspaceError)


class GateError(Exception):
    """Unusable input to a gate command: one line on stderr, exit 2."""


def _cache_dir(args: argparse.Namespace) -> Path | None:
    if args.no_cache:
        return None
    if args.cache_dir is not None:
        return Path(args.cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mmioscan" / "facts"


def _workspace(args: argparse.Namespace) -> Path | None:
    """The gate's reusable materialisation folder, next to the facts cache."""
    cache = _cache_dir(args)
    return None if cache is None else cache / "gate"


def _scan_options(parser: argparse.ArgumentParser) -> None:
    """What every command that scans accepts: the options of `mmioscan scan` (cli/main.py's
    add_scan_options) but its PATHs, which each command names its own way."""
    parser.add_argument("--root", type=Path, help="the tree root (default: found by walking up)")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                        help="parallel parser processes (default: all cores)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="facts cache folder (default: ~/.cache/mmioscan/facts)")
    parser.add_argument("--no-cache", action="store_true", help="parse every file afresh")
    parser.add_argument("--rules", type=Path, help="an alternative accessors.toml")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--timings", action="store_true",
                        help="print the wall time of each phase on stderr")
    parser.add_argument("--config", type=Path, default=None,
                        help="a kernel .config: sites learn whether their driver is built")
    parser.add_argument("--all", action="store_true", dest="all_sites",
                        help="with --config, count unreachable sites in summaries too")
    parser.add_argument("--strategy", default="upstream",
                        help="the TDX strategy the verdicts follow (default: upstream)")
    parser.add_argument("--patch-points", type=Path, metavar="FILE",
                        help="your own strategy: a file of functions to patch, one per line")


def _scanner(args: argparse.Namespace) -> Callable[[Path, tuple[str, ...]], ScanResult]:
    """analyse() over folders of a root, with the command's options."""
    if args.jobs < 1:
        raise GateError("--jobs must be at least 1")
    jobs, cache, config, strategy = args.jobs, _cache_dir(args), args.config, args.strategy
    points, all_sites, timings = args.patch_points, args.all_sites, args.timings
    if config is not None and not config.is_file():
        raise GateError(f"no such .config: {config}")
    rules = load_rules(accessors=args.rules)  # a bad --rules file fails before any git work
    bar = ProgressBar() if sys.stderr.isatty() and not args.no_progress else None

    def scan(root: Path, folders: tuple[str, ...]) -> ScanResult:
        # Imported here: the analysis stack is heavy, and `history`/`diff` never need it.
        from mmioscan.analysis.pipeline import AnalysisOptions, analyse
        from mmioscan.analysis.scan import ScanOptions, Timings

        options = ScanOptions(tuple(root / f if f else root for f in folders), root, jobs,
                              cache)
        clock = Timings()
        try:
            result = analyse(AnalysisOptions(options, config=config, strategy=strategy,
                                             patch_points=points, all_sites=all_sites),
                             rules, bar, timings=clock)
        finally:
            if bar is not None:
                bar.finish()
        if timings:
            phases = ", ".join(f"{k} {v:.2f}s" for k, v in clock.phases.items())
            print(f"mmioscan: timings: {phases}", file=sys.stderr)
        return result

    return scan


def _scan_paths(args: argparse.Namespace, paths: list[Path]) -> ScanResult:
    """A scan of paths in a tree found by walking up (or --root)."""
    targets = paths or [Path(".")]
    root = args.root or find_root(targets[0].resolve()) or (
        targets[0] if targets[0].is_dir() else targets[0].parent)
    root = Path(root).resolve()
    folders = []
    for p in targets:
        try:
            rel = p.resolve().relative_to(root).as_posix()
        except ValueError:
            raise GateError(f"{p} is not inside the tree root {root}") from None
        folders.append("" if rel == "." else rel)
    return _scanner(args)(root, tuple(folders))


def _write(text: str, output: Path | None) -> None:
    try:
        write_output(text, output)
    except OSError as exc:
        raise GateError(f"cannot write {output}: {exc.strerror}") from None


def _guarded(handler: Handler) -> Handler:
    """Input errors of the gate's modules become GateError (exit 2, one line)."""
    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except _INPUT_ERRORS as exc:
            raise GateError(str(exc)) from None
    return run


# ---- gate ----------------------------------------------------------------------------------


def _add_gate(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("gate", help="fail when a change adds MMIO findings the policy blocks",
                       description="Compare two versions of a kernel tree (git revisions, "
                       "or the tree before and after a patch, or the tree against a "
                       "baseline) and report new and fixed MMIO findings. Exit 0 clean, "
                       "1 blocking findings, 2 usage or input error.")
    p.add_argument("tree", nargs="?", type=Path, default=Path("."), metavar="TREE",
                   help="the kernel tree (default: .)")
    p.add_argument("--base", metavar="REV", help="the git revision to compare against")
    p.add_argument("--head", metavar="REV",
                   help="the revision under review (default: the working tree)")
    p.add_argument("--patch", type=Path, metavar="FILE", help="a unified diff, git "
                   "format-patch file or mbox series, applied to the tree (or to --base)")
    p.add_argument("--baseline", type=Path, metavar="FILE",
                   help="accepted findings (mmioscan baseline write): never new")
    p.add_argument("--scope", type=Path, action="append", default=[], metavar="PATH",
                   help="with --baseline only: what to scan (default: what the baseline "
                   "scanned)")
    p.add_argument("--policy", type=Path, help="gate policy (default: rules/policy.toml)")
    p.add_argument("--triage", type=Path, help="triage labels by fingerprint (TOML or JSON)")
    p.add_argument("--format", choices=GATE_FORMATS, default="text")
    p.add_argument("-o", "--output", type=Path, help="write the output to FILE")
    p.add_argument("--sarif", type=Path, metavar="FILE",
                   help="also write SARIF (with baselineState) to FILE")
    p.add_argument("--keep-temp", type=Path, metavar="DIR",
                   help="materialise the two versions under DIR and keep them")
    _scan_options(p)


def _cmd_gate(args: argparse.Namespace) -> int:
    if args.head is not None and args.base is None:
        raise GateError("--head needs --base")
    if args.patch is not None and args.head is not None:
        raise GateError("--patch applies to the tree or to --base; --head makes no sense")
    if args.base is None and args.patch is None and args.baseline is None:
        raise GateError("gate needs --base REV, --patch FILE or --baseline FILE")
    if args.scope and (args.base is not None or args.patch is not None):
        raise GateError("--scope goes with --baseline alone (a diff scans what changed)")
    if args.root is not None:  # the common scan option: here, another name for TREE
        if args.tree != Path(".") and args.tree.resolve() != args.root.resolve():
            raise GateError("give the tree once: TREE or --root")
        args.tree = args.root
    baseline = load_baseline(args.baseline) if args.baseline is not None else None
    options = GateOptions(
        policy=load_policy(args.policy), scanner=_scanner(args),
        triage=load_triage(args.triage) if args.triage is not None else EMPTY,
        baseline=baseline, keep_temp=args.keep_temp, workspace=_workspace(args))
    report = _gate_report(args, options)
    renderer = {"text": gate_report.render_text, "json": gate_report.render_json,
                "sarif": gate_report.render_sarif}[args.format]
    _write(renderer(report), args.output)
    if args.sarif is not None:
        _write(gate_report.render_sarif(report), args.sarif)
    return report.exit_code


def _gate_report(args: argparse.Namespace, options: GateOptions) -> GateReport:
    if args.patch is not None:
        return gate_patch(args.tree, args.patch, args.base, options)
    if args.base is not None:
        return gate_revisions(args.tree, args.base, args.head, options)
    assert options.baseline is not None
    start = time.monotonic()
    root = find_root(args.tree.resolve()) or args.tree.resolve()
    scope = args.scope or [root / s for s in options.baseline.scanned] or [root]
    args.root = root
    result = _scan_paths(args, scope)
    return gate_baseline(result, args.baseline.name, options, time.monotonic() - start)


# ---- baseline, triage ----------------------------------------------------------------------


def _add_baseline(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("baseline", help="accept today's findings (for gate --baseline)")
    actions = p.add_subparsers(dest="baseline_command", parser_class=type(p))
    write = actions.add_parser("write", help="scan PATHs and write their findings to FILE")
    write.add_argument("file", type=Path, metavar="FILE")
    write.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                       help="what to scan (default: .)")
    _scan_options(write)


def _cmd_baseline(args: argparse.Namespace) -> int:
    if args.baseline_command != "write":
        raise GateError("baseline needs a command: write FILE [PATH...]")
    result = _scan_paths(args, args.paths)
    baseline = baseline_from_sites(result, result.sites)
    _write(dump_baseline(baseline), args.file)
    print(f"mmioscan: {len(baseline.entries)} findings accepted in {args.file}",
          file=sys.stderr)
    return 0


def _add_triage(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("triage", help="list the findings no triage label covers yet")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="what to scan (default: .)")
    p.add_argument("--triage", type=Path, metavar="FILE",
                   help="the triage file (TOML or JSON); none: every finding is unlabelled")
    p.add_argument("--format", choices=("text", "json", "toml"), default="text",
                   help="toml: entries with empty labels, to append to the triage file")
    p.add_argument("-o", "--output", type=Path)
    _scan_options(p)


def _cmd_triage(args: argparse.Namespace) -> int:
    labels = load_triage(args.triage) if args.triage is not None else EMPTY
    result = _scan_paths(args, args.paths)
    found = unlabelled(result.sites, labels)
    if args.format == "toml":
        text = template(found)
    elif args.format == "json":
        import json

        text = json.dumps([{"fingerprint": s.fingerprint, "class": c, "path": s.path,
                            "line": s.line, "function": s.function, "callee": s.callee,
                            "code": s.code} for s, c in found], indent=1,
                          ensure_ascii=False) + "\n"
    else:
        text = "".join(f"{s.fingerprint or '-'} {c} {s.path}:{s.line} "
                       f"{s.function or '-'}: {s.code or s.callee}\n" for s, c in found)
        text += f"{len(found)} unlabelled finding(s)\n"
    _write(text, args.output)
    return 0


# ---- history, diff -------------------------------------------------------------------------


def _db(args: argparse.Namespace) -> Path:
    return Path(args.db) if args.db is not None else history.default_db()


def _add_history(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("history", help="list recorded scans (or record one)")
    p.add_argument("--db", type=Path, help=f"history database (default: "
                   f"{history.default_db()})")
    actions = p.add_subparsers(dest="history_command", parser_class=type(p))
    rec = actions.add_parser("record", help="scan PATHs and record the findings")
    rec.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    rec.add_argument("--label", default="", help="a name for the run (a tag, a version)")
    rec.add_argument("--db", type=Path, dest="record_db", help="history database")
    _scan_options(rec)
    actions.add_parser("list", help="list the recorded runs (the default)")
    diff = sub.add_parser("diff", help="new and fixed findings between two recorded runs")
    diff.add_argument("old", type=int, metavar="RUN")
    diff.add_argument("new", type=int, metavar="RUN")
    diff.add_argument("--db", type=Path, help="history database")
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.add_argument("--limit", type=int, default=20,
                      help="findings listed per side in text (default: 20)")


def _cmd_history(args: argparse.Namespace) -> int:
    if getattr(args, "record_db", None) is not None:
        args.db = args.record_db
    db = _db(args)
    if args.history_command == "record":
        result = _scan_paths(args, args.paths)
        run_id = history.record(db, result, args.label)
        print(f"mmioscan: recorded run {run_id} in {db}", file=sys.stderr)
        print(run_id)
        return 0
    rows = history.runs(db)
    lines = [f"{'run':>4}  {'when':16}  {'kernel':10}  {'findings':>8}  label / root / scanned"]
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))
        lines.append(f"{r.id:>4}  {when:16}  {r.kernel_version or '-':10}  {r.findings:>8}  "
                     f"{r.label or '-'} {r.root} {r.scanned}")
    if not rows:
        lines = [f"no runs recorded in {db} (mmioscan history record PATH)"]
    _write("\n".join(lines) + "\n", None)
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    result = history.diff(_db(args), args.old, args.new)
    if args.format == "json":
        import json

        def rows(items: tuple[history.StoredFinding, ...]) -> list[dict[str, object]]:
            return [{"fingerprint": f.fingerprint, "class": f.class_id, "path": f.path,
                     "line": f.line, "function": f.function, "callee": f.callee,
                     "driver": f.driver} for f in items]

        _write(json.dumps({"old": result.old.id, "new": result.new.id,
                           "added": rows(result.added), "fixed": rows(result.fixed),
                           "unchanged": result.unchanged}, indent=1) + "\n", None)
        return 0
    _write(_diff_text(result, args.limit), None)
    return 0


def _diff_text(d: history.RunDiff, limit: int) -> str:
    def name(r: history.Run) -> str:
        return f"run {r.id} ({r.label or r.kernel_version or r.root})"

    lines = [f"{name(d.old)} -> {name(d.new)}: {len(d.added)} new, {len(d.fixed)} fixed, "
             f"{d.unchanged} unchanged", "", "by class:        new   fixed"]
    lines += [f"  {c:14} {n:>5} {f:>7}" for c, n, f in d.by_class()]
    lines += ["", "by driver:       new   fixed"]
    lines += [f"  {c:14} {n:>5} {f:>7}" for c, n, f in d.by_driver()]
    for title, items in (("new", d.added), ("fixed", d.fixed)):
        if items:
            lines += ["", f"{title}:"]
            lines += [f"  {f.path}:{f.line} {f.function or '-'}: {f.callee} {f.class_id}"
                      for f in items[:limit]]
            if len(items) > limit:
                lines.append(f"  ... {len(items) - limit} more (--format json lists all)")
    return "\n".join(lines) + "\n"


def register(sub: argparse._SubParsersAction) -> dict[str, Handler]:  # type: ignore[type-arg]
    """Add gate, baseline, triage, history and diff to the parser; their handlers by name."""
    _add_gate(sub)
    _add_baseline(sub)
    _add_triage(sub)
    _add_history(sub)
    handlers = {"gate": _cmd_gate, "baseline": _cmd_baseline, "triage": _cmd_triage,
                "history": _cmd_history, "diff": _cmd_diff}
    guarded = {name: _guarded(h) for name, h in handlers.items()}
    for name, handler in guarded.items():
        # cli.main dispatches on this default: no second table of command names to keep.
        sub.choices[name].set_defaults(gate_handler=handler)
    return guarded
