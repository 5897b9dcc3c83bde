"""The gate's outputs: text for a person, JSON for scripts, SARIF for code review tools.

SARIF reuses report/sarif.py's rules and result shape (one rule per finding class, the
line-free fingerprint in partialFingerprints) and adds what only the gate knows:
`baselineState` (new, unchanged, absent), the level the policy gives a new finding (block ->
error, warn -> warning, everything else -> note), and a `suppressions` entry for findings a
triage label keeps out of the gate.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmioscan import __version__
from mmioscan.core.findings import clean, escaped, tdx_text, via_text
from mmioscan.core.model import ScanResult, ScanStats, Site
from mmioscan.gate import history
from mmioscan.gate.compare import GateFinding, GateReport
from mmioscan.gate.policy import Decision
from mmioscan.report import sarif

_LEVELS = {"block": "error", "warn": "warning", "info": "note"}
SHOWN_PER_SECTION = 50  # text output; JSON and SARIF carry everything


def _where(f: GateFinding) -> str:
    site = f.site
    function = f" {site.function}()" if site.function else ""
    return f"{site.path}:{site.line}{function}"


def _line(f: GateFinding) -> str:
    site = f.site
    what = f"{site.callee}" if site.callee == site.accessor else \
        f"{site.callee} -> {site.accessor}"
    rule = f" [{f.decision.rule}]" if f.decision.rule else ""
    label = f" (triage: {f.triage})" if f.triage else ""
    return clean(f"  {_where(f)}: {what} {f.class_id}{rule}{label}")


def _details(f: GateFinding) -> list[str]:
    site = f.site
    out = []
    if site.code:
        out.append(f"      {site.code}")
    if len(site.via) > 1:
        out.append(f"      via {via_text(site)}")
    if f.decision.message:
        out.append(f"      {f.decision.message}")
    out.append(f"      TDX: {tdx_text(site)}; fingerprint {site.fingerprint or '-'}")
    return [clean(t) for t in out]


def _section(title: str, items: list[GateFinding], details: bool) -> list[str]:
    if not items:
        return []
    lines = [f"{title} ({len(items)}):"]
    for f in items[:SHOWN_PER_SECTION]:
        lines.append(_line(f))
        if details:
            lines.extend(_details(f))
    if len(items) > SHOWN_PER_SECTION:
        lines.append(f"  ... {len(items) - SHOWN_PER_SECTION} more (--format json lists all)")
    return [*lines, ""]


def render_text(report: GateReport) -> str:
    new = report.of("new")
    other = [f for f in new if not f.blocking and not f.warning]
    lines = [
        f"mmioscan gate: {report.base} -> {report.head}",
        f"changed: {len(report.changed)} file(s); scanned: "
        f"{', '.join(report.scanned) or 'nothing'} ({report.seconds:.1f} s)",
        *(f"note: {n}" for n in report.notes),
        "",
    ]
    lines += _section("new blocking findings", report.blocking, True)
    lines += _section("new warnings", report.warnings, True)
    lines += _section("fixed", report.of("absent"), False)
    if other:
        counts = Counter(f.class_id if not f.triaged else f"triaged {f.triage}" for f in other)
        lines.append("other new findings, not gated: "
                     + ", ".join(f"{n} {c}" for c, n in sorted(counts.items())))
    unchanged = report.of("unchanged")
    if unchanged:
        baselined = sum(f.baselined for f in unchanged)
        extra = f" ({baselined} accepted by the baseline)" if baselined else ""
        lines.append(f"unchanged findings: {len(unchanged)}{extra}")
    if report.problems:
        lines.append(f"problems: {len(report.problems)} file(s) could not be read or parsed "
                     "cleanly (--format json lists them)")
    verdict = (f"FAIL: {len(report.blocking)} new blocking finding(s)" if report.blocking
               else "PASS")
    lines.append(f"result: {verdict}, {len(report.warnings)} warning(s), "
                 f"{len(report.of('absent'))} fixed")
    return clean("\n".join(lines) + "\n")


def _finding_json(f: GateFinding) -> dict[str, Any]:
    site = f.site
    return {
        "state": f.state, "class": f.class_id, "action": f.decision.action,
        "rule": f.decision.rule, "triage": f.triage, "baselined": f.baselined,
        "fingerprint": site.fingerprint, "path": site.path, "line": site.line,
        "column": site.column, "function": site.function, "callee": site.callee,
        "accessor": site.accessor, "kind": site.kind, "via": list(site.via),
        "driver": site.driver, "group": site.group, "hot": site.hot,
        "hot_kinds": list(site.hot_kinds), "hot_only_via": site.hot_only_via,
        "reachable": site.reachable, "code": site.code,
        "tdx": None if site.tdx is None else {"path": site.tdx.path, "insn": site.tdx.insn,
                                              "ve_exits": site.tdx.ve_exits},
    }


def render_json(report: GateReport) -> str:
    data = {
        "schema_version": 1,
        "tool": {"name": "mmioscan", "version": __version__},
        "root": report.root, "base": report.base, "head": report.head,
        "kernel_version": report.kernel_version,
        "changed": list(report.changed), "scanned": list(report.scanned),
        "notes": list(report.notes),
        "result": "fail" if report.blocking else "pass", "exit_code": report.exit_code,
        "counts": {"blocking": len(report.blocking), "warnings": len(report.warnings),
                   "new": len(report.of("new")), "fixed": len(report.of("absent")),
                   "unchanged": len(report.of("unchanged"))},
        "findings": [_finding_json(f) for f in report.findings if f.state != "unchanged"],
        "problems": [{"path": p.path, "message": p.message} for p in report.problems],
    }
    return json.dumps(escaped(data), indent=1, ensure_ascii=False) + "\n"


def render_sarif(report: GateReport) -> str:
    """sarif.render once per group of findings the gate treats alike (state, decision,
    triage label), each result annotated with its group's fields, merged into one run."""
    groups: dict[tuple[str, Decision, str | None, bool], list[GateFinding]] = {}
    for f in report.findings:
        groups.setdefault((f.state, f.decision, f.triage, f.baselined), []).append(f)
    doc: dict[str, Any] | None = None
    results: list[dict[str, Any]] = []
    for members in groups.values() or [[]]:
        part = json.loads(sarif.render(_result_of(report, members), max_results=len(members),
                                       include_unreachable=True))
        doc = doc or part
        for entry in part["runs"][0]["results"]:
            _annotate(entry, members[0])
            results.append(entry)
    assert doc is not None
    run = doc["runs"][0]
    run["results"] = results
    run["properties"].update(results_total=len(results), results_emitted=len(results),
                             results_by_rule=dict(sorted(Counter(
                                 r["ruleId"] for r in results).items())))
    run["properties"]["gate"] = {
        "base": report.base, "head": report.head,
        "result": "fail" if report.blocking else "pass", "blocking": len(report.blocking),
        "warnings": len(report.warnings), "changed": list(report.changed)}
    run["automationDetails"] = {"id": "mmioscan/gate/"}
    return json.dumps(escaped(doc), indent=1, sort_keys=True) + "\n"


def _result_of(report: GateReport, members: list[GateFinding]) -> ScanResult:
    return ScanResult(report.root, report.kernel_version, report.scanned,
                      tuple(f.site for f in members), report.problems,
                      ScanStats(0, 0, 0, 0, 0, 0, 0, 0))


def _annotate(entry: dict[str, Any], finding: GateFinding) -> None:
    entry["baselineState"] = finding.state
    entry["level"] = _LEVELS[finding.decision.action] if finding.state == "new" else "note"
    entry["properties"] = {**entry.get("properties", {}), "gate": {
        "action": finding.decision.action, "rule": finding.decision.rule,
        "baselined": finding.baselined, "triage": finding.triage}}
    if finding.triaged:
        entry["suppressions"] = [{"kind": "external", "status": "accepted",
                                  "justification": f"triage label {finding.triage}"}]


# ---- triage, history and diff listings -------------------------------------------------------


def render_triage_text(found: Sequence[tuple[Site, str]]) -> str:
    text = "".join(f"{s.fingerprint or '-'} {c} {s.path}:{s.line} "
                   f"{s.function or '-'}: {s.code or s.callee}\n" for s, c in found)
    return text + f"{len(found)} unlabelled finding(s)\n"


def render_triage_json(found: Sequence[tuple[Site, str]]) -> str:
    return json.dumps(escaped([{"fingerprint": s.fingerprint, "class": c, "path": s.path,
                                "line": s.line, "function": s.function, "callee": s.callee,
                                "code": s.code} for s, c in found]), indent=1,
                      ensure_ascii=False) + "\n"


def render_runs(rows: Sequence[history.Run], db: Path) -> str:
    if not rows:
        return f"no runs recorded in {db} (mmioscan history record PATH)\n"
    lines = [f"{'run':>4}  {'when':16}  {'kernel':10}  {'findings':>8}  label / root / scanned"]
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))
        lines.append(f"{r.id:>4}  {when:16}  {r.kernel_version or '-':10}  {r.findings:>8}  "
                     f"{r.label or '-'} {r.root} {r.scanned}")
    return "\n".join(lines) + "\n"


def render_diff_json(result: history.RunDiff) -> str:
    def rows(items: tuple[history.StoredFinding, ...]) -> list[dict[str, object]]:
        return [{"fingerprint": f.fingerprint, "class": f.class_id, "path": f.path,
                 "line": f.line, "function": f.function, "callee": f.callee,
                 "driver": f.driver} for f in items]

    return json.dumps({"old": result.old.id, "new": result.new.id,
                       "added": rows(result.added), "fixed": rows(result.fixed),
                       "unchanged": result.unchanged}, indent=1) + "\n"


def render_diff_text(d: history.RunDiff, limit: int) -> str:
    def name(r: history.Run) -> str:
        return f"run {r.id} ({r.label or r.kernel_version or r.root})"

    lines = [f"{name(d.old)} -> {name(d.new)}: {len(d.added)} new, {len(d.fixed)} fixed, "
             f"{d.unchanged} unchanged", "", "by class:        new   fixed"]
    lines += [f"  {c:14} {n:>5} {f:>7}" for c, n, f in d.by_class()]
    lines += ["", "by driver:       new   fixed"]
    lines += [f"  {c:14} {n:>5} {f:>7}" for c, n, f in d.by_driver()]
    for title, items in (("new", d.added), ("fixed", d.fixed)):
        if items:
            lines += ["", f"{title}:"]
            lines += [f"  {f.path}:{f.line} {f.function or '-'}: {f.callee} {f.class_id}"
                      for f in items[:limit]]
            if len(items) > limit:
                lines.append(f"  ... {len(items) - limit} more (--format json lists all)")
    return "\n".join(lines) + "\n"
