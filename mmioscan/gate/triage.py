"""Triage labels that survive kernel versions: keyed by fingerprint, not by line.

The labels are those of Intel's guest-hardening audit (excluded, wrapper, trusted, safe,
concern). A triage file is TOML or JSON (by its suffix):

    version = 1
    [findings.3f2a...]            # the fingerprint
    label = "safe"
    comment = "reads a constant ID register once at probe"
    path = "drivers/net/foo/foo.c"   # optional, for people
    function = "foo_probe"           # optional, for people

JSON holds the same: {"version": 1, "findings": {"3f2a...": {"label": ..., ...}}}.
An empty label marks an entry still to be decided (what `mmioscan triage --format toml`
writes). `safe` and `excluded` keep a finding out of the gate; the others are notes for people
and the finding still counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmioscan.core import datafile
from mmioscan.core.findings import clean, finding_class
from mmioscan.core.model import Site
from mmioscan.gate.baseline import site_key

LABELS = ("excluded", "wrapper", "trusted", "safe", "concern")
SUPPRESSING = frozenset({"safe", "excluded"})
TRIAGE_VERSION = 1


class TriageError(Exception):
    """The triage file cannot be read or is malformed."""


@dataclass(frozen=True, slots=True)
class Label:
    label: str  # one of LABELS, or "" when not decided yet
    comment: str = ""
    path: str | None = None
    function: str | None = None


@dataclass(frozen=True, slots=True)
class Triage:
    labels: Mapping[str, Label]

    def label_of(self, site: Site) -> str | None:
        entry = self.labels.get(site_key(site))
        return entry.label if entry is not None and entry.label else None

    def comment_of(self, site: Site) -> str:
        entry = self.labels.get(site_key(site))
        return entry.comment if entry is not None else ""

    def suppresses(self, site: Site) -> bool:
        return self.label_of(site) in SUPPRESSING


EMPTY = Triage({})


def load(path: Path) -> Triage:
    read = datafile.read_json if path.suffix == ".json" else datafile.read_toml
    data, _ = read(path, TriageError)
    return parse(data, str(path))


def parse(data: Any, where: str) -> Triage:
    if not isinstance(data, dict) or data.get("version", TRIAGE_VERSION) != TRIAGE_VERSION:
        raise TriageError(f"{where}: not an mmioscan triage file (version "
                          f"{TRIAGE_VERSION} expected)")
    findings = data.get("findings", {})
    if not isinstance(findings, dict):
        raise TriageError(f"{where}: `findings` must map fingerprints to labels")
    return Triage({fp: _label(entry, f"{where}: {fp if fp.isprintable() else repr(fp)}")
                   for fp, entry in findings.items()})


def _label(entry: Any, where: str) -> Label:
    if not isinstance(entry, dict):
        raise TriageError(f"{where}: expected a table with `label`")
    label, comment = entry.get("label", ""), entry.get("comment", "")
    if label not in LABELS and label != "":
        raise TriageError(f"{where}: label {label!r} is not one of {', '.join(LABELS)}")
    if not isinstance(comment, str):
        raise TriageError(f"{where}: `comment` must be a string")
    path, function = entry.get("path"), entry.get("function")
    return Label(label, comment, path if isinstance(path, str) else None,
                 function if isinstance(function, str) else None)


def unlabelled(sites: Iterable[Site], triage: Triage) -> list[tuple[Site, str]]:
    """(site, finding class) of every finding without a label, in source order."""
    found = []
    for site in sorted(sites, key=Site.sort_key):
        class_id = finding_class(site)
        if class_id is not None and triage.label_of(site) is None:
            found.append((site, class_id))
    return found


def _toml_string(text: str) -> str:
    # A JSON string is a valid TOML basic string; bytes that are not UTF-8 become `\\xNN`.
    return json.dumps(clean(text), ensure_ascii=False)


def template(findings: Iterable[tuple[Site, str]]) -> str:
    """TOML entries with empty labels, to append to a triage file and fill in."""
    parts = [f"# labels: {', '.join(LABELS)}; safe and excluded keep a finding out of "
             "the gate\n"]
    for site, class_id in findings:
        parts.append(
            f"\n[findings.{site_key(site) if site.fingerprint else _toml_string(site_key(site))}]"
            f"\nlabel = \"\"\ncomment = \"\"\n"
            f"# {class_id} at line {site.line}: {site.code or site.callee}\n"
            f"path = {_toml_string(site.path)}\n"
            f"function = {_toml_string(site.function or '')}\n")
    return "".join(parts)
