"""JSON: the contract every other format and the tests build on (see DESIGN.md)."""

from __future__ import annotations

import json
from typing import Any

from mmioscan import __version__
from mmioscan.model import Coverage, ScanResult, Site
from mmioscan.report.aggregate import stats_dict

SCHEMA_VERSION = 1


def site_dict(site: Site) -> dict[str, Any]:
    return {
        "path": site.path, "line": site.line, "column": site.column,
        "function": site.function, "callee": site.callee, "accessor": site.accessor,
        "kind": site.kind, "access": site.access, "width": site.width,
        "family": site.family, "active": site.active, "via": list(site.via),
        "accessors": list(site.accessors) or [site.accessor], "driver": site.driver,
        "hot": site.hot,
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
        "strategy": None,
        "stats": stats_dict(result),
        "sites": [site_dict(s) for s in result.sites],
        "drivers": [],
        "patch_points": {name: coverage_dict(cov) for name, cov in result.patch_points},
        "hot_roots": [{"function": r.function, "path": r.path, "line": r.line, "how": r.how}
                      for r in result.hot_roots],
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
    dumps of each site use the C encoder.
    """
    doc = result_dict(result)
    parts = []
    for key, value in doc.items():
        if key in ("sites", "problems", "hot_roots") and value:
            parts.append(f" {json.dumps(key)}: [\n  {_rows(value)}\n ]")
        elif key == "patch_points":
            rows = ",\n  ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in value.items())
            parts.append(f' "patch_points": {{\n  {rows}\n }}')
        else:
            nested = json.dumps(value, indent=1).replace("\n", "\n ")
            parts.append(f" {json.dumps(key)}: {nested}")
    return "{\n" + ",\n".join(parts) + "\n}\n"
