"""The JSON summary of an audit (reports/): counts, strategies, drivers; no per-site list.

Machine-independent on purpose: no absolute paths (the root and the .config appear by their
base names), so the committed summary can be compared byte for byte with a fresh run.
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from mmioscan import __version__
from mmioscan.core.findings import escaped
from mmioscan.core.model import ScanResult
from mmioscan.report.aggregate import active_sites, count_by, stats_dict
from mmioscan.report.json import SCHEMA_VERSION, driver_dict, strategy_row_dict

_TOP_POINTS = 10


def summary_dict(result: ScanResult) -> dict[str, Any]:
    sites = active_sites(result)
    unsupported = [s for s in sites if s.tdx is not None and s.tdx.path == "unsupported"]
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "mmioscan", "version": __version__},
        "kernel_version": result.kernel_version,
        "scanned": list(result.scanned),  # relative to the root
        "config": PurePath(result.config).name if result.config else None,
        "counts_unreachable": result.counts_unreachable,
        "strategy": result.strategy,
        "tdx_sources": {name: source for name, source in result.tdx_sources},
        "stats": stats_dict(result),
        "unsupported_by_insn": count_by(unsupported,
                                        lambda s: s.tdx.insn if s.tdx else "?"),
        "unsupported_by_accessor": count_by(unsupported, lambda s: s.accessor),
        "strategies": [strategy_row_dict(r) for r in result.strategies],
        "patch_points": {
            name: {"sites": cov.sites, "needed": {f"{p}%": n for p, n in cov.needed},
                   "top": [{"name": p.name, "path": p.path, "covered": p.covered,
                            "cumulative_share": p.cumulative_share}
                           for p in cov.points[:_TOP_POINTS]]}
            for name, cov in result.patch_points if name == "all" or name.startswith("group:")},
        "drivers": [driver_dict(d) for d in result.drivers],
    }


def render(result: ScanResult) -> str:
    return json.dumps(escaped(summary_dict(result)), indent=1, sort_keys=False) + "\n"
