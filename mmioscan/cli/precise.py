"""Handlers of prepare and crosscheck, and the --engine choice of scan, report and gate
(arguments: cli/main.py, cli/options.py add_engine_option; docs/precise.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mmioscan.clang.prepare import Prepared, PrepareError, prepare
from mmioscan.cli.options import UsageError, cache_dir, jobs
from mmioscan.cli.output import write_output
from mmioscan.kernel.tree import find_root, resolve_root


def _prepared(tree: Path, config: Path | None, workers: int, verbose: bool) -> Prepared:
    if config is None:
        raise UsageError("the clang engine needs --config FILE: the .config to prepare "
                         "the tree for (mmioscan prepare TREE --config FILE)")
    if not config.is_file():
        raise UsageError(f"no such .config: {config}")
    if verbose and sys.stderr.isatty():
        print(f"mmioscan: preparing {tree} for {config} (reused when done before)",
              file=sys.stderr)
    return prepare(tree, config, jobs=workers)


def engine_options(args: argparse.Namespace, tree: Path | None = None) -> dict[str, Any]:
    """ScanOptions' engine fields for the command's --engine: the clang engine prepares the
    tree (the scan's root, or `tree`) for --config first (cached)."""
    engine = getattr(args, "engine", "fast")
    if engine == "fast":
        return {}
    if tree is None:
        tree = resolve_root(list(args.paths), getattr(args, "root", None))
    prepared = _prepared(tree, args.config, jobs(args), not args.no_progress)
    return {"engine": engine, "prepared": prepared}


def prepare_command(args: argparse.Namespace) -> int:
    tree = Path(args.tree)
    if not tree.is_dir():
        raise UsageError(f"no such folder: {tree}")
    root = find_root(tree.resolve()) or tree.resolve()
    prepared = _prepared(root, args.config, jobs(args), verbose=False)
    info = {**prepared.as_json(), "reused": prepared.seconds is None,
            "seconds": prepared.seconds}
    if args.format == "json":
        text = json.dumps(info, indent=2, sort_keys=True) + "\n"
    else:
        how = "reused" if prepared.seconds is None else f"made in {prepared.seconds:.0f}s"
        text = (f"prepared build of {prepared.tree} (linux {prepared.version}) for "
                f"{args.config}: {prepared.build} ({how}, key {prepared.key})\n")
    write_output(text, None)
    return 0


def crosscheck_command(args: argparse.Namespace) -> int:
    from mmioscan.analysis.crosscheck import crosscheck
    from mmioscan.cli.progress import ProgressBar
    from mmioscan.report.crosscheck import render_json, render_text

    tree = resolve_root(list(args.paths), args.root)
    prepared = _prepared(tree, args.config, jobs(args), not args.no_progress)
    bar = ProgressBar() if sys.stderr.isatty() and not args.no_progress else None
    try:
        result = crosscheck(tuple(args.paths), prepared, tree, jobs(args), cache_dir(args),
                            progress=bar)
    finally:
        if bar is not None:
            bar.finish()
    text = render_json(result) if args.format == "json" else render_text(result)
    try:
        write_output(text, args.output)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    return 0


def input_errors() -> tuple[type[BaseException], ...]:
    """The precise engine's unusable-input errors (exit 2)."""
    from mmioscan.clang.flags import FlagsError

    return (PrepareError, FlagsError)
