"""Baselines: today's findings, accepted, so the gate fails only on new ones.

A baseline is JSON:

    {"version": 1, "tool": {"name", "version"},
     "created_from": {"root", "kernel_version", "scanned": [...]},
     "findings": [{"fingerprint", "class", "path", "function", "callee", "count"}]}

Matching is by fingerprint, counted: fingerprints carry an occurrence index (the second
identical line in one function gets another fingerprint), so a new copy of a baselined line
is a new finding; `count` keeps the matching a multiset should two sites ever share one.
Only the fingerprint and count decide; the other fields are for the people reading the file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmioscan import __version__
from mmioscan.core import datafile
from mmioscan.core.findings import escaped, finding_class, unclean
from mmioscan.core.model import ScanResult, Site

BASELINE_VERSION = 1


class BaselineError(Exception):
    """The baseline file cannot be read or is malformed."""


@dataclass(frozen=True, slots=True)
class Entry:
    fingerprint: str
    class_id: str
    path: str
    function: str | None
    callee: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class Baseline:
    root: str
    kernel_version: str | None
    scanned: tuple[str, ...]
    entries: tuple[Entry, ...]

    def counts(self) -> Counter[str]:
        return Counter({e.fingerprint: e.count for e in self.entries})


def site_key(site: Site) -> str:
    """The matching key: the fingerprint, or for a site without one (a scan that computed
    none) its fingerprint's ingredients without the line number."""
    if site.fingerprint:
        return site.fingerprint
    return "\0".join((site.path, site.function or "", site.kind, site.callee, site.code or ""))


def from_sites(result: ScanResult, sites: Iterable[Site]) -> Baseline:
    """The baseline accepting these sites (those that are findings)."""
    counted: Counter[str] = Counter()
    first: dict[str, tuple[Site, str]] = {}
    for site in sites:
        class_id = finding_class(site)
        if class_id is None:
            continue
        key = site_key(site)
        counted[key] += 1
        first.setdefault(key, (site, class_id))
    entries = tuple(Entry(key, cls, s.path, s.function, s.callee, counted[key])
                    for key, (s, cls) in sorted(first.items(),
                                                key=lambda kv: (kv[1][0].sort_key(), kv[0])))
    return Baseline(result.root, result.kernel_version, result.scanned, entries)


def dumps(baseline: Baseline) -> str:
    data = {
        "version": BASELINE_VERSION,
        "tool": {"name": "mmioscan", "version": __version__},
        "created_from": {"root": baseline.root, "kernel_version": baseline.kernel_version,
                         "scanned": list(baseline.scanned)},
        "findings": [{"fingerprint": e.fingerprint, "class": e.class_id, "path": e.path,
                      "function": e.function, "callee": e.callee, "count": e.count}
                     for e in baseline.entries],
    }
    return json.dumps(escaped(data), indent=1, ensure_ascii=False) + "\n"


def load(path: Path) -> Baseline:
    data, _ = datafile.read_json(path, BaselineError, "a JSON baseline")
    return parse(data, str(path))


def parse(data: Any, where: str) -> Baseline:
    # A missing version means this one, as in a triage file (what people write by hand).
    if not isinstance(data, dict) or data.get("version", BASELINE_VERSION) != BASELINE_VERSION:
        raise BaselineError(f"{where}: not an mmioscan baseline (version "
                            f"{BASELINE_VERSION} expected)")
    origin = data.get("created_from", {})
    findings = data.get("findings")
    if not isinstance(origin, dict) or not isinstance(findings, list):
        raise BaselineError(f"{where}: needs `created_from` and a `findings` list")
    scanned = origin.get("scanned", [])
    if not isinstance(scanned, list) or not all(isinstance(s, str) for s in scanned):
        raise BaselineError(f"{where}: `created_from.scanned` must be a list of paths")
    entries = tuple(_entry(f, f"{where}: finding #{i}") for i, f in enumerate(findings, 1))
    version = origin.get("kernel_version")
    # Names that were not UTF-8 are written as `\\xNN` text (findings.clean): the scanned
    # folders are paths again (gate --baseline scans them).
    return Baseline(unclean(str(origin.get("root", ""))),
                    version if isinstance(version, str) else None,
                    tuple(unclean(s) for s in scanned), entries)


def _entry(item: Any, where: str) -> Entry:
    if not isinstance(item, dict):
        raise BaselineError(f"{where}: expected an object")
    fp, count = item.get("fingerprint"), item.get("count", 1)
    if not isinstance(fp, str) or not fp:
        raise BaselineError(f"{where}: `fingerprint` must be a non-empty string")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise BaselineError(f"{where}: `count` must be a positive integer")
    function = item.get("function")
    return Entry(fp, str(item.get("class", "")), str(item.get("path", "")),
                 function if isinstance(function, str) else None,
                 str(item.get("callee", "")), count)
