"""Arguments of the submission gate's commands: gate, baseline, triage, history, diff.

Kept apart from their handlers (cli/gate.py) so that building the parser imports nothing of
the gate or the analysis.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from mmioscan.cli.options import add_analysis_options

GATE_FORMATS = ("text", "json", "sarif")
Command = Callable[..., argparse.ArgumentParser]
_HANDLERS = "mmioscan.cli.gate"


def _add_gate(sub: argparse._SubParsersAction, command: Command) -> None:  # type: ignore[type-arg]
    p = command(sub, "gate", f"{_HANDLERS}:gate_command",
                help="fail when a change adds MMIO findings the policy blocks",
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
    add_analysis_options(p)  # --root: another name for TREE


def _add_baseline(sub: argparse._SubParsersAction, command: Command) -> None:  # type: ignore[type-arg]
    p = command(sub, "baseline", f"{_HANDLERS}:baseline_command",
                help="accept today's findings (for gate --baseline)")
    actions = p.add_subparsers(dest="baseline_command", parser_class=type(p))
    write = actions.add_parser("write", help="scan PATHs and write their findings to FILE")
    write.add_argument("file", type=Path, metavar="FILE")
    write.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                       help="what to scan (default: .)")
    add_analysis_options(write)


def _add_triage(sub: argparse._SubParsersAction, command: Command) -> None:  # type: ignore[type-arg]
    p = command(sub, "triage", f"{_HANDLERS}:triage_command",
                help="list the findings no triage label covers yet")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="what to scan (default: .)")
    p.add_argument("--triage", type=Path, metavar="FILE",
                   help="the triage file (TOML or JSON); none: every finding is unlabelled")
    p.add_argument("--format", choices=("text", "json", "toml"), default="text",
                   help="toml: entries with empty labels, to append to the triage file")
    p.add_argument("-o", "--output", type=Path)
    add_analysis_options(p)


def _add_history(sub: argparse._SubParsersAction, command: Command) -> None:  # type: ignore[type-arg]
    p = command(sub, "history", f"{_HANDLERS}:history_command",
                help="list recorded scans (or record one)")
    p.add_argument("--db", type=Path,
                   help="history database (default: ~/.cache/mmioscan/history.sqlite)")
    actions = p.add_subparsers(dest="history_command", parser_class=type(p))
    rec = actions.add_parser("record", help="scan PATHs and record the findings")
    rec.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    rec.add_argument("--label", default="", help="a name for the run (a tag, a version)")
    rec.add_argument("--db", type=Path, dest="record_db", help="history database")
    add_analysis_options(rec)
    actions.add_parser("list", help="list the recorded runs (the default)")
    diff = command(sub, "diff", f"{_HANDLERS}:diff_command",
                   help="new and fixed findings between two recorded runs")
    diff.add_argument("old", type=int, metavar="RUN")
    diff.add_argument("new", type=int, metavar="RUN")
    diff.add_argument("--db", type=Path, help="history database")
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.add_argument("--limit", type=int, default=20,
                      help="findings listed per side in text (default: 20)")


def register(sub: argparse._SubParsersAction, command: Command) -> None:  # type: ignore[type-arg]
    """Add gate, baseline, triage, history and diff; `command` makes each subparser and
    names its handler."""
    for add in (_add_gate, _add_baseline, _add_triage, _add_history):
        add(sub, command)
