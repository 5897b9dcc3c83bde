"""Options shared by the commands, and where their defaults live (one home each).

Imported by the parser, so it stays light: argparse and paths only, no analysis.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mmioscan.core.paths import cache_base

# The default TDX strategy; platforms/strategies.py holds the same name as its
# DEFAULT_STRATEGY (a test checks they agree) so that `--help` need not load the rules.
DEFAULT_STRATEGY = "upstream"


class UsageError(Exception):
    """Unusable arguments: one line on stderr, exit 2."""


def default_cache_dir() -> Path:
    return cache_base() / "facts"


def cache_dir(args: argparse.Namespace) -> Path | None:
    """The facts cache of a command's options: None with --no-cache."""
    if args.no_cache:
        return None
    return Path(args.cache_dir) if args.cache_dir is not None else default_cache_dir()


def jobs(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    return int(args.jobs)


def add_common(parser: argparse.ArgumentParser, root: bool = True) -> None:
    """What every command that scans takes: tree, processes, cache, progress, timings."""
    if root:
        parser.add_argument("--root", type=Path,
                            help="the tree root (default: found by walking up)")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                        help="parallel parser processes (default: all cores)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help=f"facts cache folder (default: {default_cache_dir()})")
    parser.add_argument("--no-cache", action="store_true", help="parse every file afresh")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--timings", action="store_true",
                        help="print the wall time of each phase on stderr")


PLATFORM_CHOICES = ("tdx", "sev-snp", "sev-es", "all")


def platforms(args: argparse.Namespace) -> tuple[str, ...]:
    """--platform as model names: `all` is every model, `sev-es` shares SEV-SNP's #VC
    handler and decoder (one model, platforms/x86/platform.py)."""
    chosen = getattr(args, "platform", None) or "tdx"
    if chosen == "all":
        return ("tdx", "sev-snp")
    return ("sev-snp",) if chosen == "sev-es" else (chosen,)


def cpu_features(args: argparse.Namespace) -> tuple[tuple[str, bool], ...]:
    """--cpu-features fsrs,no-erms -> (("erms", False), ("fsrs", True))."""
    given = getattr(args, "cpu_features", None) or ""
    found: dict[str, bool] = {}
    for word in given.lower().replace(" ", ",").split(","):
        if not word:
            continue
        absent = word.startswith(("no-", "-", "!"))
        name = word.removeprefix("no-").lstrip("-!")
        if not name.replace("_", "").isalnum():
            raise UsageError(f"--cpu-features: not a feature name: {word!r}")
        found[name] = not absent
    return tuple(sorted(found.items()))


def add_verdict_options(parser: argparse.ArgumentParser) -> None:
    """The .config, the platforms and the strategy the verdicts follow."""
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="a kernel .config: sites say whether it builds them, and "
                             "summaries count only those (see --all)")
    parser.add_argument("--strategy", default=DEFAULT_STRATEGY,
                        help="TDX strategy for the verdicts: upstream, iomap-paravirt, "
                             f"virtio-paravirt (default: {DEFAULT_STRATEGY})")
    parser.add_argument("--platform", choices=PLATFORM_CHOICES, default="tdx",
                        help="the confidential guest the verdicts are for: tdx (default), "
                             "sev-snp (sev-es: the same #VC model) or all, side by side")
    parser.add_argument("--cpu-features", metavar="LIST",
                        help="CPU features the guest has (fsrs) or lacks (no-fsrs), for "
                             "verdicts that depend on one; default: the worst case")


def add_engine_option(parser: argparse.ArgumentParser) -> None:
    """--engine: the fast engine (tree-sitter) or the precise one (libclang, docs/precise.md)."""
    parser.add_argument("--engine", choices=("fast", "clang"), default="fast",
                        help="fast: tree-sitter on every file (default); clang: libclang on "
                             "every .c file --config builds, with Kbuild's flags (prepares "
                             "the tree first: mmioscan prepare)")


def add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """Every option of `mmioscan scan` but its PATHs (which each command names its own way):
    the common ones, rules, .config, platforms, strategy, --all and patch points. Every
    command that scans takes them all."""
    add_common(parser)
    parser.add_argument("--rules", type=Path, help="an alternative accessors.toml")
    add_verdict_options(parser)
    add_engine_option(parser)
    parser.add_argument("--all", action="store_true", dest="all_sites",
                        help="with --config, count unreachable sites in summaries too")
    parser.add_argument("--patch-points", type=Path, metavar="FILE",
                        help="your own strategy: a file of functions to patch, one per line")


def add_scan_options(parser: argparse.ArgumentParser) -> None:
    """What scan, strategies and report take: paths and the analysis options."""
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="a kernel tree, or any folder or file inside one")
    add_analysis_options(parser)
