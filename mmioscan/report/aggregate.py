"""Counts shared by the renderers (text summary, JSON stats)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from posixpath import dirname

from mmioscan.core.model import ScanResult, Site


def active_sites(result: ScanResult) -> list[Site]:
    """The sites summaries count: active ones, and with a .config (without --all) only those
    in files the config builds."""
    if result.counts_unreachable:
        return [s for s in result.sites if s.active]
    return [s for s in result.sites if s.active and s.reachable is not False]


def count_by(sites: Iterable[Site], key: Callable[[Site], str]) -> dict[str, int]:
    """Counts in a deterministic order: largest first, then by name."""
    counts = Counter(key(s) for s in sites)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def folder_of(path: str, depth: int = 3) -> str:
    parts = dirname(path).split("/")
    return "/".join(parts[:depth]) or "."


def top_folders(sites: Iterable[Site], limit: int = 15, depth: int = 3) -> list[tuple[str, int]]:
    return list(count_by(sites, lambda s: folder_of(s.path, depth)).items())[:limit]


def parse_error_share(result: ScanResult) -> float:
    parsed = result.stats.files_parsed
    return result.stats.files_with_errors / parsed if parsed else 0.0


def stats_dict(result: ScanResult) -> dict[str, object]:
    """The JSON `stats` object: counts over active sites plus parse quality."""
    sites = active_sites(result)
    st = result.stats
    return {
        "files": st.files_listed,
        "files_parsed": st.files_parsed,
        "files_skipped_by_prefilter": st.files_skipped,
        "files_with_parse_errors": st.files_with_errors,
        "parse_error_share": round(parse_error_share(result), 4),
        "functions": st.functions,
        "functions_with_parse_errors": st.functions_with_errors,
        "macros": st.macros,
        "sites": len(sites),
        "inactive_sites": sum(not s.active for s in result.sites),
        "unreachable_sites": sum(s.active and s.reachable is False for s in result.sites),
        "counts_unreachable": result.counts_unreachable,
        "by_group": count_by(sites, lambda s: s.group or "unknown"),
        "by_tdx_path": count_by(sites, lambda s: s.tdx.path if s.tdx else "not assessed"),
        "by_kind": count_by(sites, lambda s: s.kind),
        "by_family": count_by(sites, lambda s: s.family),
        "by_access": count_by(sites, lambda s: s.access),
        "by_accessor": count_by(sites, lambda s: s.accessor),
        # regmap sites by the kind of map they use; "unknown": the map was not traced
        "by_regmap_map": count_by([s for s in sites if s.kind == "regmap"],
                                  lambda s: s.map or "mmio"),
        "regmap_unknown_map": sum(s.kind == "regmap" and s.map == "unknown" for s in sites),
        # calls through function-pointer fields: wrapper sites, and mixes left out
        "indirect_sites": sum(bool(s.targets) for s in sites),
        "indirect_mixed": result.indirect_mixed,
        # raw derefs through `__iomem` pointers whose value is RAM: no sites (rules/ram.toml)
        "ram_backed_derefs": result.ram_backed_derefs,
        "problems": len(result.problems),
    }


PLATFORM_LABELS = {"tdx": "a TDX guest", "sev-snp": "an SEV-SNP guest"}
TRAPS = {"tdx": "#VE", "sev-snp": "#VC"}


def platform_answer(result: ScanResult, hottest: int = 3) -> tuple[str, list[Site]]:
    """The plain answer an audit opens with: how many counted sites would crash each
    platform asked for, and the hottest trapping sites (on the first platform)."""
    sites = active_sites(result)
    built = result.config is not None and not result.counts_unreachable
    scope = "Under this config" if built else "In the scanned code"
    which = "reachable sites" if built else "sites"
    parts: list[str] = []
    for name in result.platforms:
        crash = sum(1 for s in sites for n, v in s.verdicts()
                    if n == name and v.path == "unsupported")
        parts.append(f"{crash:,} {which if not parts else ''}".rstrip()
                     + f" would crash {PLATFORM_LABELS.get(name, name)}")
    first = result.platforms[0] if result.platforms else "tdx"
    trapping = [s for s in sites if s.hot and any(
        n == first and v.path == "ve" for n, v in s.verdicts())]

    def exits(site: Site) -> int:
        found = [v.ve_exits for n, v in site.verdicts() if n == first]
        return -(found[0] or 0) if found else 0

    trapping.sort(key=lambda s: (exits(s), s.path, s.line, s.column))
    return f"{scope}, {', '.join(parts)}.", trapping[:hottest]
