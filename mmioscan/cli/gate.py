"""Handlers of the submission gate's commands: gate, baseline, triage, history, diff.

Their arguments are defined in cli/gate_parser.py; cli/main.py dispatches here and turns
GateError (like UsageError) into one line on stderr and exit 2. Handlers return 0 (clean) or
1 (the gate found blocking findings).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmioscan.cli.options import cache_dir, cpu_features, jobs, platforms
from mmioscan.cli.output import target_name, write_output
from mmioscan.cli.precise import engine_options
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
from mmioscan.kernel.dotconfig import ConfigError, load_config
from mmioscan.kernel.tree import find_root

Handler = Callable[[argparse.Namespace], int]
GATE_FORMATS = ("text", "json", "sarif")
_INPUT_ERRORS = (PatchError, GitError, PolicyError, BaselineError, TriageError,
                 history.HistoryError, ConfigError, WorkspaceError)


class GateError(Exception):
    """Unusable input to a gate command: one line on stderr, exit 2."""




def _workspace(args: argparse.Namespace) -> Path | None:
    """The gate's reusable materialisation folder, next to the facts cache."""
    cache = cache_dir(args)
    return None if cache is None else cache / "gate"




def _scanner(args: argparse.Namespace, copies: bool = False
             ) -> Callable[[Path, tuple[str, ...]], ScanResult]:
    """analyse() over folders of a root, with the command's options. copies: the roots are
    the gate's copies of a version, bounded whatever they look like (products kept for them:
    cli/commands.cached_analysis); else a root has products only if it is a kernel tree."""
    workers, cache, config, strategy = jobs(args), cache_dir(args), args.config, args.strategy
    chosen, cpu = platforms(args), cpu_features(args)
    points, all_sites = args.patch_points, args.all_sites
    if config is not None and not config.exists():
        raise GateError(f"no such .config: {config}")
    if config is not None:
        load_config(config)  # unusable (a FIFO, not a .config): exit 2 before any work
    rules = load_rules(accessors=args.rules)  # a bad --rules file fails before any git work
    # The clang engine prepares the tree for --config: the gate's TREE (its flags and headers
    # serve both versions, whose files are parsed from the copies: docs/precise.md, "The
    # gate"), else the root of what is scanned.
    given = getattr(args, "tree", None)
    engines: dict[str, dict[str, Any]] = {}

    def engine(root: Path) -> dict[str, Any]:
        if getattr(args, "engine", "fast") == "fast":
            return {}
        tree = (find_root(Path(given).resolve()) or Path(given)) if given is not None else root
        if str(tree) not in engines:
            engines[str(tree)] = engine_options(args, tree)
        return engines[str(tree)]

    if given is not None:
        engine(Path(given))

    def scan(root: Path, folders: tuple[str, ...]) -> ScanResult:
        # Imported here: the analysis stack is heavy, and `history`/`diff` never need it.
        from mmioscan.analysis.pipeline import AnalysisOptions, ScanOptions
        from mmioscan.cli.commands import cached_analysis

        options = ScanOptions(tuple(root / f if f else root for f in folders), root, workers,
                              cache, **engine(root))
        return cached_analysis(args, AnalysisOptions(
            options, config=config, strategy=strategy, patch_points=points,
            all_sites=all_sites, platforms=chosen, cpu_features=cpu), rules, args.rules,
            bounded=copies)

    return scan


def _scan_paths(args: argparse.Namespace, paths: list[Path],
               given_root: Path | None = None) -> ScanResult:
    """A scan of paths in a tree found by walking up (or --root, or given_root)."""
    targets = paths or [Path(".")]
    root = given_root or getattr(args, "root", None) or find_root(targets[0].resolve()) or (
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
        raise GateError(f"cannot write {target_name(output)}: "
                        f"{exc.strerror or exc}") from None


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




def _cmd_gate(args: argparse.Namespace) -> int:
    if args.head is not None and args.base is None:
        raise GateError("--head needs --base")
    if args.patch is not None and args.head is not None:
        raise GateError("--patch applies to the tree or to --base; --head makes no sense")
    if args.base is None and args.patch is None and args.baseline is None:
        raise GateError("gate needs --base REV, --patch FILE or --baseline FILE")
    if args.scope and (args.base is not None or args.patch is not None):
        raise GateError("--scope goes with --baseline alone (a diff scans what changed)")
    tree: Path = args.tree
    if args.root is not None:  # the common scan option: here, another name for TREE
        if args.tree != Path(".") and args.tree.resolve() != args.root.resolve():
            raise GateError("give the tree once: TREE or --root")
        tree = args.root
    baseline = load_baseline(args.baseline) if args.baseline is not None else None
    options = GateOptions(
        policy=load_policy(args.policy), scanner=_scanner(args, copies=True),
        triage=load_triage(args.triage) if args.triage is not None else EMPTY,
        baseline=baseline, keep_temp=args.keep_temp, workspace=_workspace(args))
    report = _gate_report(args, options, tree)
    renderer = {"text": gate_report.render_text, "json": gate_report.render_json,
                "sarif": gate_report.render_sarif}[args.format]
    _write(renderer(report), args.output)
    if args.sarif is not None:
        _write(gate_report.render_sarif(report), args.sarif)
    return report.exit_code


def _gate_report(args: argparse.Namespace, options: GateOptions, tree: Path) -> GateReport:
    if args.patch is not None:
        return gate_patch(tree, args.patch, args.base, options)
    if args.base is not None:
        return gate_revisions(tree, args.base, args.head, options)
    assert options.baseline is not None
    start = time.monotonic()
    root = find_root(tree.resolve()) or tree.resolve()
    scope = args.scope or [root / s for s in options.baseline.scanned] or [root]
    result = _scan_paths(args, scope, root)
    return gate_baseline(result, args.baseline.name, options, time.monotonic() - start)


# ---- baseline, triage ----------------------------------------------------------------------




def _cmd_baseline(args: argparse.Namespace) -> int:
    if args.baseline_command != "write":
        raise GateError("baseline needs a command: write FILE [PATH...]")
    result = _scan_paths(args, args.paths)
    baseline = baseline_from_sites(result, result.sites)
    _write(dump_baseline(baseline), args.file)
    print(f"mmioscan: {len(baseline.entries)} findings accepted in {args.file}",
          file=sys.stderr)
    return 0




def _cmd_triage(args: argparse.Namespace) -> int:
    labels = load_triage(args.triage) if args.triage is not None else EMPTY
    result = _scan_paths(args, args.paths)
    found = unlabelled(result.sites, labels)
    render = {"toml": template, "json": gate_report.render_triage_json,
              "text": gate_report.render_triage_text}[args.format]
    _write(render(found), args.output)
    return 0


# ---- history, diff -------------------------------------------------------------------------


def _db(args: argparse.Namespace) -> Path:
    given = getattr(args, "record_db", None) or args.db
    return Path(given) if given is not None else history.default_db()




def _cmd_history(args: argparse.Namespace) -> int:
    db = _db(args)
    if args.history_command == "record":
        result = _scan_paths(args, args.paths)
        run_id = history.record(db, result, args.label)
        print(f"mmioscan: recorded run {run_id} in {db}", file=sys.stderr)
        print(run_id)
        return 0
    _write(gate_report.render_runs(history.runs(db), db), None)
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    result = history.diff(_db(args), args.old, args.new)
    if args.format == "json":
        _write(gate_report.render_diff_json(result), None)
    else:
        _write(gate_report.render_diff_text(result, args.limit), None)
    return 0


gate_command = _guarded(_cmd_gate)
baseline_command = _guarded(_cmd_baseline)
triage_command = _guarded(_cmd_triage)
history_command = _guarded(_cmd_history)
diff_command = _guarded(_cmd_diff)
