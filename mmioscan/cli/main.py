"""Entry point: argv -> the command's parser -> its handler -> exit code.

One dispatch style: every subcommand names its handler as "module:function" (set_defaults),
and main() imports that module only when the command runs, so `--version` and `--help` load
no analysis. Handlers take the parsed arguments, never change them, and return the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from mmioscan import __version__
from mmioscan.cli import gate_parser
from mmioscan.cli.options import UsageError, add_common, add_scan_options
from mmioscan.report.formats import scan_formats

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _command(sub: argparse._SubParsersAction, name: str, handler: str,  # type: ignore[type-arg]
             **kwargs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, **kwargs)
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mmioscan", description="Find every MMIO access in a Linux kernel "
                     "tree and say what it does in a confidential-computing (TDX) guest.")
    parser.add_argument("--version", action="version", version=f"mmioscan {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    scan = _command(sub, "scan", "mmioscan.cli.commands:scan",
                    help="list every MMIO accessor use under the given paths")
    add_scan_options(scan)
    scan.add_argument("--format", choices=scan_formats(), default="text")
    scan.add_argument("-o", "--output", type=Path, help="write the output to FILE")
    scan.add_argument("--direct-only", action="store_true",
                      help="only direct accessor calls and references: no call graph, "
                           "wrappers, regmap, hot paths or patch points (fastest)")
    strategies = _command(sub, "strategies", "mmioscan.cli.commands:strategies",
                          help="every TDX strategy side by side, per driver group "
                               "(virtio, x86, generic)")
    add_scan_options(strategies)
    strategies.add_argument("--format", choices=("text", "json"), default="text")
    strategies.add_argument("-o", "--output", type=Path, help="write the output to FILE")
    report = _command(sub, "report", "mmioscan.cli.commands:report",
                      help="write a self-contained HTML audit report (every strategy "
                           "compared)")
    add_scan_options(report)
    report.add_argument("-o", "--output", type=Path, required=True, action="append",
                        help="FILE.html (or .md for Markdown, .json for the JSON summary); "
                             "repeat to write several from one scan")
    explain = _command(sub, "explain", "mmioscan.cli.commands:explain",
                       help="explain a function, macro or accessor (NAME), or the sites on "
                            "one line (PATH:LINE)")
    explain.add_argument("target", metavar="NAME|PATH:LINE")
    explain.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                         help="what to scan (default: the folder of PATH:LINE, else .)")
    add_common(explain)
    kernel = _command(sub, "kernel-tree", "mmioscan.cli.commands:kernel_tree",
                      help="print (installing if needed) Debian's linux-source-6.12 tree, "
                           "or with --config its cloud .config")
    kernel.add_argument("--config", action="store_true",
                        help="print the cloud-amd64 .config path instead")
    _add_precise(sub)
    gate_parser.register(sub, _command)  # gate, baseline, triage, history, diff
    return parser


def _add_precise(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """prepare and crosscheck: the precise engine's commands (docs/precise.md)."""
    prep = _command(sub, "prepare", "mmioscan.cli.precise:prepare_command",
                    help="make an out-of-tree prepared build of TREE for a .config (make "
                         "O=DIR olddefconfig prepare, under the cache; reused by key)")
    prep.add_argument("tree", type=Path, metavar="TREE")
    prep.add_argument("--config", type=Path, metavar="FILE", required=True)
    prep.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                      help="make jobs (default: all cores)")
    prep.add_argument("--format", choices=("text", "json"), default="text")
    cross = _command(sub, "crosscheck", "mmioscan.cli.precise:crosscheck_command",
                     help="run both engines on the same files: sites both find, the "
                          "fast-only and clang-only ones, and why they differ")
    cross.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add_common(cross)
    cross.add_argument("--config", type=Path, metavar="FILE", required=True,
                       help="the .config the tree is prepared for")
    cross.add_argument("--format", choices=("text", "json"), default="text")
    cross.add_argument("-o", "--output", type=Path, help="write the output to FILE")


def _handler(spec: str) -> Handler:
    module, function = spec.split(":")
    return cast(Handler, getattr(importlib.import_module(module), function))


def _input_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean unusable input (exit 2), loaded with the commands."""
    from mmioscan.cli.gate import GateError
    from mmioscan.cli.precise import input_errors
    from mmioscan.core.toml import RuleError
    from mmioscan.kernel.dotconfig import ConfigError
    from mmioscan.kernel.kernelsrc import KernelSourceError
    from mmioscan.kernel.tree import TreeError

    return (UsageError, TreeError, RuleError, KernelSourceError, ConfigError, GateError,
            *input_errors())


def _error(exc: BaseException) -> int:
    line = " ".join(str(exc).splitlines())  # one line, whatever a message quotes
    print(f"mmioscan: error: {line}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 blocking gate findings, 2 usage
    or input error, 3 an internal error: a bug, never mistaken for the gate's FAIL)."""
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "handler", None) is None:
            raise UsageError("a command is required: scan, strategies, report, explain, "
                             "gate, ... (see --help)")
        handler = _handler(args.handler)
        errors = _input_errors()
        try:
            return handler(args)
        except errors as exc:
            return _error(exc)
    except UsageError as exc:
        return _error(exc)
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
