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
    return json.dumps(result_dict(result), indent=1, sort_keys=False) + "\n"
