"""The default output: a summary a person reads at a glance."""

from __future__ import annotations

from mmioscan.model import ScanResult
from mmioscan.report.aggregate import active_sites, count_by, parse_error_share, top_folders

_MAX_PROBLEMS = 10


def _table(rows: list[tuple[str, int]], indent: str = "  ") -> list[str]:
    if not rows:
        return [f"{indent}(none)"]
    width = max(len(k) for k, _ in rows)
    return [f"{indent}{k:<{width}}  {v:>8,}" for k, v in rows]


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
    lines += ["", f"problems: {len(result.problems):,}"]
    for p in result.problems[:_MAX_PROBLEMS]:
        lines.append(f"  {p.path}: {p.message}")
    if len(result.problems) > _MAX_PROBLEMS:
        lines.append(f"  ... {len(result.problems) - _MAX_PROBLEMS:,} more (see --format json)")
    return "\n".join(lines) + "\n"
