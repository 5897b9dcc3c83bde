"""Entry point: argv -> the command's parser -> its handler -> exit code.

One dispatch style: every subcommand names its handler as "module:function" (set_defaults),
and main() imports that module only when the command runs, so `--version` and `--help` load
no analysis. Handlers take the parsed arguments, never change them, and return the exit code.
"""

from __future__ import annotations

import argparse
import importlib
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
    gate_parser.register(sub, _command)  # gate, baseline, triage, history, diff
    return parser


def _handler(spec: str) -> Handler:
    module, function = spec.split(":")
    return cast(Handler, getattr(importlib.import_module(module), function))


def _input_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean unusable input (exit 2), loaded with the commands."""
    from mmioscan.cli.gate import GateError
    from mmioscan.core.toml import RuleError
    from mmioscan.kernel.dotconfig import ConfigError
    from mmioscan.kernel.kernelsrc import KernelSourceError
    from mmioscan.kernel.tree import TreeError

    return (UsageError, TreeError, RuleError, KernelSourceError, ConfigError, GateError)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 blocking gate findings, 2 usage
    or input error)."""
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "handler", None) is None:
            raise UsageError("a command is required: scan, strategies, report, explain, "
                             "gate, ... (see --help)")
        handler = _handler(args.handler)
        try:
            return handler(args)
        except _input_errors() as exc:
            print(f"mmioscan: error: {exc}", file=sys.stderr)
            return 2
    except UsageError as exc:
        print(f"mmioscan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmioscan: interrupted", file=sys.stderr)
        return 130


def main_entry() -> None:
    sys.exit(main(sys.argv[1:]))
