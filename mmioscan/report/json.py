"""JSON: the contract every other format and the tests build on (see DESIGN.md)."""

from __future__ import annotations

import json
from typing import Any

from mmioscan import __version__
from mmioscan.model import ScanResult, Site
from mmioscan.report.aggregate import stats_dict

SCHEMA_VERSION = 1


def site_dict(site: Site) -> dict[str, Any]:
    return {
        "path": site.path, "line": site.line, "column": site.column,
        "function": site.function, "callee": site.callee, "accessor": site.accessor,
        "kind": site.kind, "access": site.access, "width": site.width,
        "family": site.family, "active": site.active, "via": list(site.via),
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
        "problems": [{"path": p.path, "message": p.message} for p in result.problems],
    }


def render(result: ScanResult) -> str:
    """Indented at the top, one site per line: readable, diffable, and fast to write.

    json.dumps with `indent` runs the pure-Python encoder (seconds for 70k sites); compact
    dumps of each site use the C encoder.
    """
    doc = result_dict(result)
    parts = []
    for key, value in doc.items():
        if key in ("sites", "problems") and value:
            rows = ",\n  ".join(json.dumps(v, ensure_ascii=True) for v in value)
            parts.append(f" {json.dumps(key)}: [\n  {rows}\n ]")
        else:
            nested = json.dumps(value, indent=1).replace("\n", "\n ")
            parts.append(f" {json.dumps(key)}: {nested}")
    return "{\n" + ",\n".join(parts) + "\n}\n"
