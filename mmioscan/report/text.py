"""The default output: a summary a person reads at a glance."""

from __future__ import annotations

from mmioscan.model import Coverage, ScanResult, Site
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
             "poll or xmit roots"]
    coverage = dict(result.patch_points)
    total = coverage["all"]
    lines += ["", f"patch points over all {total.sites:,} sites (points needed): "
              f"{_needed(total)}"]
    for p in total.points[:_TOP_POINTS]:
        lines.append(f"  {p.name:<28} {p.path}:{p.line}  {p.covered:,} sites, "
                     f"{p.cumulative_share:.1%} cumulative")
    drivers = [(name, cov) for name, cov in result.patch_points if name != "all"]
    drivers.sort(key=lambda nc: (-nc[1].sites, nc[0]))
    if drivers:
        lines += ["", "largest drivers (sites; patch points needed):"]
        for name, cov in drivers[:_TOP_POINTS]:
            lines.append(f"  {name:<40} {cov.sites:>7,}  {_needed(cov)}")
    return lines


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
        f"sites: {len(sites):,} active ({len(result.sites) - len(sites):,} more in #if 0)",
        "",
        "by family and access:",
    ]
    fam_acc = count_by(sites, lambda s: f"{s.family} {s.access}")
    lines += _table(list(fam_acc.items()))
    lines += ["", "by kind:"] + _table(list(count_by(sites, lambda s: s.kind).items()))
    lines += ["", "top accessors:"]
    lines += _table(list(count_by(sites, lambda s: s.accessor).items())[:10])
    lines += ["", "top folders:"] + _table(top_folders(sites))
    lines += _graph_summary(result, sites)
    lines += ["", f"problems: {len(result.problems):,}"]
    for p in result.problems[:_MAX_PROBLEMS]:
        lines.append(f"  {p.path}: {p.message}")
    if len(result.problems) > _MAX_PROBLEMS:
        lines.append(f"  ... {len(result.problems) - _MAX_PROBLEMS:,} more (see --format json)")
    return "\n".join(lines) + "\n"
