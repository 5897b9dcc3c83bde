"""SARIF 2.1.0: the findings (report/findings.py) for GitHub and GitLab code scanning.

One run, one rule per finding class (ids never change: code scanning matches alerts by ruleId
and by `partialFingerprints["mmioscan/v1"]`, the line-free fingerprint of mmioscan/
fingerprint.py, so alerts survive line shifts). Locations are relative to the tree root under
uriBaseId SRCROOT; `run.originalUriBaseIds` maps SRCROOT to the root's file URI when the root
is absolute. Columns are the scanner's 1-based byte columns, equal to character columns on the
ASCII lines kernel C is written in.

What is emitted: active sites that are findings; inactive sites (`#if 0`) never; sites a
--config does not build (reachable False) only with `include_unreachable`. Paravirt and
not-assessed sites are not findings (see findings.py).

Truncation: GitHub code scanning rejects a run with more than 25,000 results (and shows only
the 5,000 most severe; an upload is at most 10 MB gzipped). When there are more findings than
`max_results`, the most severe are kept (classes in severity order, then path, line, column),
`run.properties` records `truncated`, `results_total` and `results_emitted`, and the
invocation carries a `results-truncated` toolExecutionNotification saying how many were left
out and where to get them all (--format json or csv).

Deterministic: no timestamps, sorted keys, results in severity then source order.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from mmioscan import __version__
from mmioscan.core.findings import (
    FINDING_CLASSES,
    HELP_URI,
    Finding,
    FindingClass,
    clean,
    escaped,
    finding_class,
    findings,
    hot_text,
    tdx_text,
    via_text,
)
from mmioscan.core.model import Problem, ScanResult, Site

SARIF_SCHEMA = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                "sarif-schema-2.1.0.json")
DEFAULT_MAX_RESULTS = 25_000  # GitHub's hard limit of results per run
FINGERPRINT_KEY = "mmioscan/v1"
MAX_PROBLEM_NOTIFICATIONS = 100  # problems beyond these are counted in run.properties
_RULE_INDEX = {c.id: i for i, c in enumerate(FINDING_CLASSES)}
_SENTINEL = "\0results"  # replaced by the one-result-per-line list after dumping the rest


def render(result: ScanResult, max_results: int = DEFAULT_MAX_RESULTS,
           include_unreachable: bool = False) -> str:
    """The SARIF log: at most `max_results` results, most severe first (see module doc)."""
    found = findings(result.sites, include_unreachable)
    emitted = found[:max(max_results, 0)]
    run: dict[str, Any] = {
        "tool": {"driver": _driver()},
        "invocations": [_invocation(result, len(emitted), len(found))],
        "properties": _run_properties(result, found, len(emitted), include_unreachable),
        "results": _SENTINEL,
    }
    base = _root_uri(result.root)
    if base is not None:
        run["originalUriBaseIds"] = {"SRCROOT": {"uri": base}}
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    results = [_result(f) for f in emitted]
    text = _dumps(doc, results)
    # A byte that is not UTF-8 left in a property (a driver named after its folder, a via
    # chain) is dumped as \\udcXX: dump again with every string cleaned (`\\xNN`).
    return _dumps(escaped(doc), escaped(results)) if "\\udc" in text else text


def _dumps(doc: dict[str, Any], results: list[Any]) -> str:
    text = json.dumps(doc, indent=1, sort_keys=True)
    # Compact results, one per line: json.dumps with indent runs the slow pure-Python encoder.
    rows = ",\n".join(json.dumps(r, sort_keys=True) for r in results)
    return text.replace(json.dumps(_SENTINEL), f"[\n{rows}\n  ]" if rows else "[]") + "\n"


def _driver() -> dict[str, Any]:
    return {
        "name": "mmioscan",
        "fullName": "mmioscan: MMIO access sites in Linux kernel sources for TDX guests",
        "version": __version__,
        "semanticVersion": __version__,
        "rules": [_rule(c) for c in FINDING_CLASSES],
    }


def _rule(cls: FindingClass) -> dict[str, Any]:
    markdown = (f"**{cls.short}**\n\n{cls.full}\n\n{cls.help}\n\n"
                f"See [MMIO handling in TDX guests]({HELP_URI}).")
    return {
        "id": cls.id,
        "name": cls.name,
        "shortDescription": {"text": cls.short},
        "fullDescription": {"text": cls.full},
        "help": {"text": f"{cls.full} {cls.help}", "markdown": markdown},
        "helpUri": HELP_URI,
        "defaultConfiguration": {"level": cls.level},
        "properties": {"tags": ["tdx", "mmio", "confidential-computing"]},
    }


def _root_uri(root: str) -> str | None:
    """file:// URI of an absolute root, ending with '/' as SARIF requires for a base."""
    path = PurePosixPath(root)
    if not path.is_absolute():
        return None
    uri = path.as_uri()
    return uri if uri.endswith("/") else uri + "/"


def artifact_uri(path: str) -> str:
    """A root-relative path as a relative URI reference: its bytes on disk, percent-encoded
    but for letters, digits, `-._~` and `/` (a space is %20, '#' %23, a byte that is not
    UTF-8 such as 0xFF %FF, é %C3%A9), so it is a valid URI whatever the name."""
    return quote(path.encode("utf-8", "surrogateescape"), safe="/")


def _result(f: Finding) -> dict[str, Any]:
    site = f.site
    region: dict[str, Any] = {"startLine": site.line, "startColumn": max(site.column, 1)}
    if site.code:
        region["snippet"] = {"text": clean(site.code)}
    location: dict[str, Any] = {"physicalLocation": {
        "artifactLocation": {"uri": artifact_uri(site.path), "uriBaseId": "SRCROOT"},
        "region": region}}
    if site.function:
        location["logicalLocations"] = [{"name": clean(site.function), "kind": "function"}]
    out: dict[str, Any] = {
        "ruleId": f.cls.id,
        "ruleIndex": _RULE_INDEX[f.cls.id],
        "level": f.cls.level,
        "message": {"text": message(site)},
        "locations": [location],
        "properties": _site_properties(site),
    }
    if site.fingerprint:
        out["partialFingerprints"] = {FINGERPRINT_KEY: site.fingerprint}
    return out


def message(site: Site) -> str:
    """What happens at the site, in one sentence: callee, accessor, via chain, TDX reason."""
    if site.kind == "deref":  # callee is the form: *p, p->field, p[i]
        text = f"Raw __iomem dereference (`{site.callee}`, {site.access})"
    elif site.kind == "reference":
        text = f"`{site.accessor}` used as a value (called later through a pointer)"
    elif site.kind == "direct":
        text = f"Call of `{site.callee}`"
    else:
        text = f"`{site.callee}()` reaches `{site.accessor}`"
        if len(site.via) > 1:
            text += f" via {via_text(site)}"
        if site.kind == "regmap":
            text += " (regmap over MMIO)"
    where = f" in `{site.function}`" if site.function else ""
    hot = f" On a hot path ({hot_text(site)})." if site.hot else ""
    return clean(f"{text}{where}. TDX: {tdx_text(site)}.{hot}")


def _site_properties(site: Site) -> dict[str, Any]:
    tdx = site.tdx
    return {
        "accessor": site.accessor,
        "callee": site.callee,
        "kind": site.kind,
        "family": site.family,
        "access": site.access,
        "group": site.group,
        "driver": site.driver,
        "config_symbol": site.config_symbol,
        "reachable": site.reachable,
        "hot": site.hot,
        "hot_kinds": list(site.hot_kinds),
        "hot_only_via": site.hot_only_via,
        "via": list(site.via),
        "tdx": None if tdx is None else {"path": tdx.path, "insn": tdx.insn,
                                         "ve_exits": tdx.ve_exits, "reason": clean(tdx.reason)},
    }


def _run_properties(result: ScanResult, found: list[Finding], emitted: int,
                    include_unreachable: bool) -> dict[str, Any]:
    unreachable = 0
    if not include_unreachable:
        unreachable = sum(1 for s in result.sites
                          if s.reachable is False and finding_class(s) is not None)
    return {
        "root": clean(result.root),
        "scanned": [clean(p) for p in result.scanned],
        "kernel_version": result.kernel_version,
        "strategy": result.strategy,
        "config": result.config,
        "results_total": len(found),
        "results_emitted": emitted,
        "truncated": emitted < len(found),
        "results_by_rule": dict(sorted(Counter(f.cls.id for f in found).items())),
        "unreachable_findings_excluded": unreachable,
        "problems": len(result.problems),
    }


def _invocation(result: ScanResult, emitted: int, total: int) -> dict[str, Any]:
    notes: list[dict[str, Any]] = []
    if emitted < total:
        notes.append({
            "level": "warning",
            "descriptor": {"id": "results-truncated"},
            "message": {"text": (
                f"{total - emitted:,} of {total:,} results left out (limit {emitted:,}; the "
                "most severe are kept). Every site is in mmioscan's --format json or csv "
                "output.")},
        })
    notes += [_problem(p) for p in result.problems[:MAX_PROBLEM_NOTIFICATIONS]]
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if notes:
        invocation["toolExecutionNotifications"] = notes
    return invocation


def _problem(problem: Problem) -> dict[str, Any]:
    """A file the scan could not read or parse cleanly: its sites may be missing."""
    return {
        "level": "note",
        "descriptor": {"id": "file-problem"},
        "message": {"text": clean(problem.message)},
        "locations": [{"physicalLocation": {"artifactLocation": {
            "uri": artifact_uri(problem.path), "uriBaseId": "SRCROOT"}}}],
    }
