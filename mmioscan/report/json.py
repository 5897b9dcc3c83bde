"""JSON: the contract every other format and the tests build on (docs/design.md)."""

from __future__ import annotations

import json
from typing import Any

from mmioscan import __version__
from mmioscan.core.findings import escaped
from mmioscan.core.model import Coverage, DriverSummary, ScanResult, Site, StrategyRow, Tdx
from mmioscan.report.aggregate import stats_dict

SCHEMA_VERSION = 1


def site_dict(site: Site) -> dict[str, Any]:
    return {
        "path": site.path, "line": site.line, "column": site.column,
        "function": site.function, "callee": site.callee, "accessor": site.accessor,
        "kind": site.kind, "access": site.access, "width": site.width,
        "family": site.family, "active": site.active, "via": list(site.via),
        "accessors": list(site.accessors) or [site.accessor], "driver": site.driver,
        "hot": site.hot, "hot_kinds": list(site.hot_kinds), "hot_only_via": site.hot_only_via,
        "config_symbol": site.config_symbol, "group": site.group,
        "group_reason": site.group_reason, "reachable": site.reachable,
        "tdx": tdx_dict(site.tdx), "fingerprint": site.fingerprint, "code": site.code,
        **({"platforms": {name: tdx_dict(v) for name, v in site.platforms}}
           if site.platforms else {}),
        **({"map": site.map} if site.map is not None else {}),
        **({"indirect": True, "targets": list(site.targets)} if site.targets else {}),
    }


def tdx_dict(tdx: Tdx | None) -> dict[str, Any] | None:
    if tdx is None:
        return None
    return {"path": tdx.path, "insn": tdx.insn, "ve_exits": tdx.ve_exits, "reason": tdx.reason}


def driver_dict(d: DriverSummary) -> dict[str, Any]:
    info = d.info
    return {
        "name": info.name, "config_symbol": info.config_symbol, "group": info.group,
        "group_reason": info.group_reason, "reachable": info.reachable,
        "evidence": info.evidence, "folders": list(d.folders), "sites": d.sites,
        "ve": d.ve, "paravirt": d.paravirt, "unsupported": d.unsupported, "hot": d.hot,
        "ve_exits": d.ve_exits, "points_90": d.points_90,
    }


def strategy_row_dict(row: StrategyRow) -> dict[str, Any]:
    return {
        "strategy": row.strategy, "group": row.group, "drivers": row.drivers,
        "sites": row.sites, "ve": row.ve, "paravirt": row.paravirt,
        "unsupported": row.unsupported, "hot": row.hot, "hot_ve": row.hot_ve,
        "ve_exits": row.ve_exits, "ve_exits_unknown": row.ve_exits_unknown,
        "points_90": row.points_90, "platform": row.platform,
    }


def coverage_dict(cov: Coverage) -> dict[str, Any]:
    return {
        "sites": cov.sites,
        "needed": {f"{p}%": n for p, n in cov.needed},
        "max_share": cov.points[-1].cumulative_share if cov.points else 0.0,
        "points": [{"name": p.name, "path": p.path, "line": p.line, "covered": p.covered,
                    "cumulative_share": p.cumulative_share} for p in cov.points],
    }


def result_dict(result: ScanResult) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "mmioscan", "version": __version__},
        "root": result.root,
        "kernel_version": result.kernel_version,
        "scanned": list(result.scanned),
        "strategy": result.strategy,
        "config": result.config,
        "tdx_sources": {name: source for name, source in result.tdx_sources},
        "platforms": {name: dict(sources) for name, sources in result.platform_sources},
        "stats": stats_dict(result),
        "strategies": [strategy_row_dict(r) for r in result.strategies],
        "sites": [site_dict(s) for s in result.sites],
        "drivers": [driver_dict(d) for d in result.drivers],
        "patch_points": {name: coverage_dict(cov) for name, cov in result.patch_points},
        "hot_roots": [{"function": r.function, "path": r.path, "line": r.line, "how": r.how,
                       "kind": r.kind} for r in result.hot_roots],
        "problems": [{"path": p.path, "message": p.message} for p in result.problems],
    }


def _rows(items: list[dict[str, Any]]) -> str:
    """One object per line. A single dumps of the list runs the C encoder once; each object
    starts with the same first key, and `}, {"key"` cannot occur inside a JSON string (its
    quotes would be escaped), so splitting there is exact."""
    first = json.dumps(next(iter(items[0])))
    text = json.dumps(items)[1:-1]
    return text.replace("}, {" + first, "},\n  {" + first)


def render(result: ScanResult) -> str:
    """Indented at the top, one site per line: readable, diffable, and fast to write.

    json.dumps with `indent` runs the pure-Python encoder (seconds for 70k sites); compact
    dumps of each site use the C encoder. A byte that is not UTF-8 in a file name or a line
    (a surrogate escape, dumped as `\\udcXX`) is written as the text `\\xNN` (findings.clean):
    the document is dumped again with every string cleaned, only when one is there.
    """
    doc = result_dict(result)
    text = _dumps(doc)
    return _dumps(escaped(doc)) if "\\udc" in text else text


def _dumps(doc: dict[str, Any]) -> str:
    parts = []
    for key, value in doc.items():
        if key in ("sites", "problems", "hot_roots", "drivers", "strategies") and value:
            parts.append(f" {json.dumps(key)}: [\n  {_rows(value)}\n ]")
        elif key == "patch_points":
            rows = ",\n  ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in value.items())
            parts.append(f' "patch_points": {{\n  {rows}\n }}')
        else:
            nested = json.dumps(value, indent=1).replace("\n", "\n ")
            parts.append(f" {json.dumps(key)}: {nested}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def render_strategies(result: ScanResult) -> str:
    """`mmioscan strategies --format json`: the comparison table alone."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "mmioscan", "version": __version__},
        "root": result.root, "kernel_version": result.kernel_version,
        "scanned": list(result.scanned), "config": result.config,
        "counts_unreachable": result.counts_unreachable,
        "strategies": [strategy_row_dict(r) for r in result.strategies],
    }
    return json.dumps(escaped(doc), indent=1) + "\n"
