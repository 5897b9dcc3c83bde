"""The default output: a summary a person reads at a glance."""

from __future__ import annotations

from collections import Counter

from mmioscan.core.findings import clean
from mmioscan.core.model import Coverage, ScanResult, Site
from mmioscan.report.aggregate import active_sites, count_by, parse_error_share, top_folders

_MAX_PROBLEMS = 10
_TOP_POINTS = 8


def _table(rows: list[tuple[str, int]], indent: str = "  ") -> list[str]:
    if not rows:
        return [f"{indent}(none)"]
    width = max(len(k) for k, _ in rows)
    return [f"{indent}{k:<{width}}  {v:>8,}" for k, v in rows]


def _needed(cov: Coverage) -> str:
    return ", ".join(f"{p}% {'-' if n is None else n}" for p, n in cov.needed)


def _graph_summary(result: ScanResult, sites: list[Site]) -> list[str]:
    """Hot paths and patch points, when the call graph ran (not with --direct-only)."""
    if not result.patch_points:
        return []
    hot = sum(s.hot for s in sites)
    lines = ["", f"hot: {hot:,} sites reachable from {len(result.hot_roots):,} interrupt, "
             "poll, xmit or I/O roots"]
    kinds = Counter(k for s in sites if s.hot for k in s.hot_kinds)
    if kinds:
        lines.append("  by kind (a site may have several): " + ", ".join(
            f"{k} {n:,}" for k, n in sorted(kinds.items())))
    reset = sum(s.hot_only_via is not None for s in sites)
    if reset:
        lines.append(f"  not hot: {reset:,} sites reachable from a root only through reset or "
                     "error handling")
    coverage = dict(result.patch_points)
    total = coverage["all"]
    lines += ["", f"patch points over all {total.sites:,} sites (points needed): "
              f"{_needed(total)}"]
    for p in total.points[:_TOP_POINTS]:
        lines.append(f"  {p.name:<28} {p.path}:{p.line}  {p.covered:,} sites, "
                     f"{p.cumulative_share:.1%} cumulative")
    groups = [(name, cov) for name, cov in result.patch_points if name.startswith("group:")]
    if groups:
        lines += ["", "patch points per group (sites; points needed):"]
        for name, cov in groups:
            lines.append(f"  {name[6:]:<40} {cov.sites:>7,}  {_needed(cov)}")
    drivers = [(name, cov) for name, cov in result.patch_points
               if name != "all" and not name.startswith("group:")]
    drivers.sort(key=lambda nc: (-nc[1].sites, nc[0]))
    if drivers:
        lines += ["", "largest drivers (sites; patch points needed):"]
        for name, cov in drivers[:_TOP_POINTS]:
            lines.append(f"  {name:<40} {cov.sites:>7,}  {_needed(cov)}")
    return lines


def _tdx_summary(result: ScanResult, sites: list[Site]) -> list[str]:
    """Groups and TDX paths, once the sites have been judged."""
    if not any(s.tdx is not None for s in sites):
        return []
    scope = ("reachable under " + result.config if not result.counts_unreachable
             and result.config else "all active sites")
    lines = ["", f"in a TDX guest, strategy {result.strategy} ({scope}):"]
    for group in ("virtio", "x86", "generic"):
        members = [s for s in sites if s.group == group]
        paths = count_by(members, lambda s: s.tdx.path if s.tdx else "not assessed")
        mix = ", ".join(f"{k} {v:,}" for k, v in paths.items()) or "none"
        lines.append(f"  {group:<8} {len(members):>8,} sites: {mix}")
    unsupported = count_by([s for s in sites if s.tdx and s.tdx.path == "unsupported"],
                           lambda s: f"{s.tdx.insn if s.tdx else ''}: {s.accessor}")
    if unsupported:
        lines += ["", "unsupported (would oops in a TD), by instruction form:"]
        lines += _table(list(unsupported.items())[:10])
    if result.config and not result.counts_unreachable:
        dropped = sum(s.active and s.reachable is False for s in result.sites)
        lines += ["", f"{dropped:,} more active sites are in files or #ifdef blocks "
                  f"{result.config} does not build (--all counts them)"]
    return lines


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def strategies(result: ScanResult) -> str:
    """`mmioscan strategies`: one block per strategy, one row per group."""
    head = (f"{'group':<8} {'drivers':>7} {'sites':>8} {'#VE':>8} {'paravirt':>8} "
            f"{'unsupp.':>7} {'hot':>7} {'hot #VE':>7} {'#VE exits':>10} {'90% pts':>7}")
    version = result.kernel_version or "unknown version"
    scope = (f"reachable under {result.config}" if result.config and not
             result.counts_unreachable else "all active sites")
    lines = [f"mmioscan strategies: {', '.join(result.scanned)} (Linux {version}), {scope}"]
    current: tuple[str, str] | None = None
    for row in result.strategies:
        if (row.platform, row.strategy) != current:
            current = (row.platform, row.strategy)
            where = f" on {row.platform}" if len(result.platforms) > 1 or \
                row.platform != "tdx" else ""
            lines += ["", f"strategy {row.strategy}{where}:", "  " + head]
        exits = f"{row.ve_exits:,}" + ("+" if row.ve_exits_unknown else "")
        points = "-" if row.points_90 is None else f"{row.points_90:,}"
        lines.append(f"  {row.group:<8} {row.drivers:>7,} {row.sites:>8,} {row.ve:>8,} "
                     f"{row.paravirt:>8,} {row.unsupported:>7,} {row.hot:>7,} "
                     f"{row.hot_ve:>7,} {exits:>10} {points:>7}")
    lines += ["", "#VE exits: per execution of every site once (#VC on SEV), where the count "
              "is known "
              "('+': some sites' counts are unknown); 90% pts: patch points still needed to "
              "cover 90% of the sites that are not paravirt."]
    return clean("\n".join(lines) + "\n")


def render(result: ScanResult) -> str:
    sites = active_sites(result)
    st = result.stats
    version = result.kernel_version or "unknown version"
    lines = [
        f"mmioscan: {', '.join(result.scanned)} in {result.root} (Linux {version})",
        f"files: {st.files_listed:,} listed, {st.files_parsed:,} parsed, "
        f"{st.files_skipped:,} skipped by the byte prefilter, {st.cache_hits:,} from cache",
        f"parse quality: {st.files_with_errors:,} parsed files with syntax errors "
        f"({parse_error_share(result):.1%}), {st.functions_with_errors:,} of "
        f"{st.functions:,} functions",
        "",
        f"sites: {len(sites):,} active ({sum(not s.active for s in result.sites):,} more "
        "in #if 0)",
        "",
        "by family and access:",
    ]
    fam_acc = count_by(sites, lambda s: f"{s.family} {s.access}")
    lines += _table(list(fam_acc.items()))
    lines += ["", "by kind:"] + _table(list(count_by(sites, lambda s: s.kind).items()))
    lines += ["", "top accessors:"]
    lines += _table(list(count_by(sites, lambda s: s.accessor).items())[:10])
    lines += ["", "top folders:"] + _table(top_folders(sites))
    lines += _tdx_summary(result, sites)
    lines += _graph_summary(result, sites)
    lines += ["", f"problems: {len(result.problems):,}"]
    for p in result.problems[:_MAX_PROBLEMS]:
        lines.append(f"  {p.path}: {p.message}")
    if len(result.problems) > _MAX_PROBLEMS:
        lines.append(f"  ... {len(result.problems) - _MAX_PROBLEMS:,} more (see --format json)")
    return clean("\n".join(lines) + "\n")
