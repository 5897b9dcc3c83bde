#!/usr/bin/env python3
"""Accuracy harness: draw sites for a person to judge, then measure precision on the judged set.

Two modes over one scan JSON (`mmioscan scan ... --format json`):

* ``sample``: a seeded random sample per bucket -- every site kind the JSON has (direct,
  wrapper, reference, regmap, deref, ...), the sites whose TDX verdict is ``unsupported`` and
  the ``hot`` ones -- each shown with its source lines from the tree, the chain (``via``), the
  accessors, access and width, the driver, group and verdict. ``--graph`` also scans each
  sampled site's folder again to print where every link of the chain is defined and, for a hot
  site, one chain from a hot root to it. ``--skeleton FILE`` writes the drawn sites as an
  expectations file whose verdicts are ``"todo"``, for the judge to fill in.
* ``check``: an expectations file (TOML, ``[[site]]`` tables with path, line, callee, kind,
  bucket, verdict true/false and a reason) against a scan JSON: per bucket, how many judged
  sites the scan still lists, how many of those were judged true (precision), which judged-true
  sites it lost and which judged-false ones it still lists.

A site is matched by (path, line, callee, kind); a hot entry also needs ``hot`` and an
unsupported entry the ``unsupported`` verdict. Only sites that count are drawn: active ones
and, when the scan had a .config, those it does not call unreachable (``--all``: those too;
the cloud config builds no regmap or deref site). ``check`` matches every active site.

Usage:
  python bench/accuracy.py sample --json scan.json [--tree PATH] [--seed 2026] [--per-kind 20]
                                  [--unsupported 15] [--hot 15] [--graph] [--skeleton FILE]
  python bench/accuracy.py sample --scan [--tree PATH] [--config FILE] ...   (scans first)
  python bench/accuracy.py check --json scan.json --expect tests/integration/judged/sites-2026.toml
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # a checkout, not installed

Site = dict[str, Any]
SPECIAL = ("unsupported", "hot")  # buckets that are a verdict or a flag, not a kind


def counts(site: Site, all_sites: bool = False) -> bool:
    """Active, and (unless all_sites) not called unreachable by the scan's .config."""
    active = bool(site.get("active", True))
    return active and (all_sites or site.get("reachable") is not False)


def verdict(site: Site) -> str | None:
    tdx = site.get("tdx")
    return tdx.get("path") if isinstance(tdx, dict) else None


def buckets(sites: Iterable[Site], all_sites: bool = False) -> dict[str, list[Site]]:
    """Bucket -> its sites in a stable order (the sample must not depend on the JSON's order)."""
    out: dict[str, list[Site]] = {}
    for site in sites:
        if not counts(site, all_sites):
            continue
        out.setdefault(str(site["kind"]), []).append(site)
        if verdict(site) == "unsupported":
            out.setdefault("unsupported", []).append(site)
        if site.get("hot"):
            out.setdefault("hot", []).append(site)
    for members in out.values():
        members.sort(key=lambda s: (s["path"], s["line"], s["column"], s["callee"], s["kind"]))
    return out


def draw(by_bucket: dict[str, list[Site]], seed: int, sizes: dict[str, int],
         per_kind: int) -> dict[str, list[Site]]:
    """Each bucket's own generator (seed and bucket name), so adding a kind to the JSON does
    not change the other buckets' samples."""
    drawn = {}
    for name in sorted(by_bucket):
        members = by_bucket[name]
        n = min(sizes.get(name, per_kind), len(members))
        rng = random.Random(f"{seed}:{name}")
        drawn[name] = sorted(rng.sample(members, n),
                             key=lambda s: (s["path"], s["line"], s["column"]))
    return drawn


# -- showing a site --------------------------------------------------------------------------


def source_lines(tree: Path, path: str, line: int, context: int) -> list[str]:
    try:
        text = (tree / path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return [f"    (cannot read {path}: {exc.strerror})"]
    lo, hi = max(1, line - context), min(len(text), line + context)
    return [f"  {'>' if n == line else '|'} {n:6} {text[n - 1]}" for n in range(lo, hi + 1)]


@dataclass
class GraphNotes:
    """Per folder: where each chain link is defined, and hot chains (from a rescan)."""

    definitions: dict[tuple[str, str], str] = field(default_factory=dict)
    hot: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)


def graph_notes(tree: Path, sites: Sequence[Site], cache: Path | None) -> GraphNotes:
    """Scan each sampled site's folder once, with the call graph kept, for the judge."""
    from mmioscan.analysis.pipeline import ScanOptions, run_scan

    notes = GraphNotes()
    folders = sorted({str(Path(s["path"]).parent) for s in sites})
    for folder in folders:
        analysis = run_scan(ScanOptions(paths=(tree / folder,), root=tree, cache_dir=cache,
                                        jobs=1))
        graph = analysis.graph
        if graph is None:
            continue
        roots = [(r.path, r.function) for r in analysis.result.hot_roots]
        for site in (s for s in sites if str(Path(s["path"]).parent) == folder):
            for name in site.get("via") or []:
                key = graph.resolve(site["path"], name)
                if key is not None and key in graph.definitions:
                    d = graph.definitions[key]
                    notes.definitions[(site["path"], name)] = f"{d.path}:{d.line}"
            if site.get("hot") and site.get("function"):
                chain = graph.hot_path(roots, f"{site['path']}:{site['function']}")
                notes.hot[(site["path"], site["function"])] = chain
    return notes


def show(site: Site, tree: Path, context: int, notes: GraphNotes | None) -> list[str]:
    where = f"in {site['function']}" if site.get("function") else "at file scope"
    head = (f"{site['path']}:{site['line']}:{site['column']} {where} -- kind {site['kind']}, "
            f"callee {site['callee']}, access {site['access']}, width {site['width']}")
    lines = [head, f"    via {' -> '.join(site.get('via') or [site['callee']])}; "
                   f"accessors {', '.join(site.get('accessors') or [])}"]
    if "map" in site:
        lines.append(f"    regmap map: {site['map']}")
    tdx = site.get("tdx") or {}
    lines.append(f"    driver {site.get('driver')}, group {site.get('group')}, "
                 f"verdict {tdx.get('path')}, hot {'yes' if site.get('hot') else 'no'}")
    if notes is not None:
        for name in site.get("via") or []:
            if (where_def := notes.definitions.get((site["path"], name))) is not None:
                lines.append(f"    {name} defined at {where_def}")
        if site.get("hot"):
            chain = notes.hot.get((site["path"], site.get("function") or ""), ())
            lines.append("    hot chain: " + (" -> ".join(chain) if chain else
                                              "(no root in the folder alone)"))
    return lines + source_lines(tree, site["path"], site["line"], context)


def toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def skeleton(drawn: dict[str, list[Site]], seed: int) -> str:
    out = [f"# Sites drawn with seed {seed} by bench/accuracy.py; judged by reading the tree.",
           ""]
    for bucket, sites in drawn.items():
        for site in sites:
            out += ["[[site]]", f"bucket = {toml_string(bucket)}",
                    f"path = {toml_string(site['path'])}", f"line = {site['line']}",
                    f"callee = {toml_string(site['callee'])}",
                    f"kind = {toml_string(site['kind'])}",
                    f"access = {toml_string(site['access'])}",
                    f"width = {site['width'] if site['width'] is not None else 0}",
                    'verdict = "todo"', 'reason = ""', ""]
    return "\n".join(out)


# -- checking a judged set ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expected:
    bucket: str
    path: str
    line: int
    callee: str
    kind: str
    access: str
    verdict: bool
    reason: str


@dataclass
class BucketScore:
    judged: int = 0
    listed: int = 0
    listed_true: int = 0
    lost: list[Expected] = field(default_factory=list)  # judged true, no longer listed
    changed: list[Expected] = field(default_factory=list)  # judged true, other access now
    false_listed: list[Expected] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.listed_true / self.listed if self.listed else None


class ExpectationError(ValueError):
    pass


def load_expectations(path: Path) -> list[Expected]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ExpectationError(f"{path}: {exc}") from exc
    out = []
    for i, entry in enumerate(data.get("site", [])):
        if not isinstance(entry.get("verdict"), bool):
            raise ExpectationError(f"{path}: site {i + 1} ({entry.get('path')}:"
                                   f"{entry.get('line')}) has no true/false verdict")
        try:
            out.append(Expected(str(entry["bucket"]), str(entry["path"]), int(entry["line"]),
                                str(entry["callee"]), str(entry["kind"]),
                                str(entry.get("access", "")), entry["verdict"],
                                str(entry.get("reason", ""))))
        except (KeyError, TypeError, ValueError) as exc:
            raise ExpectationError(f"{path}: site {i + 1}: {exc!r}") from exc
    return out


def _listed(entry: Expected, by_key: dict[tuple[str, int, str, str], list[Site]]) -> list[Site]:
    found = by_key.get((entry.path, entry.line, entry.callee, entry.kind), [])
    if entry.bucket == "hot" or entry.bucket.endswith("-hot"):
        # judged: a real hot root reaches the site. The tool says so with `hot`, or with
        # `hot_only_via` when the only chains pass through reset or error handling
        return [s for s in found if s.get("hot") or s.get("hot_only_via")]
    if entry.bucket == "unsupported":
        return [s for s in found if verdict(s) == "unsupported"]
    return found


def check(expected: Iterable[Expected], sites: Iterable[Site]) -> dict[str, BucketScore]:
    by_key: dict[tuple[str, int, str, str], list[Site]] = {}
    for site in sites:
        if counts(site, all_sites=True):  # a judged site is judged whatever a .config says
            by_key.setdefault((site["path"], site["line"], site["callee"], site["kind"]),
                              []).append(site)
    scores: dict[str, BucketScore] = {}
    for entry in expected:
        score = scores.setdefault(entry.bucket, BucketScore())
        score.judged += 1
        listed = _listed(entry, by_key)
        if listed:
            score.listed += 1
            score.listed_true += entry.verdict
            if not entry.verdict:
                score.false_listed.append(entry)
            elif entry.access and all(s["access"] != entry.access for s in listed):
                score.changed.append(entry)
        elif entry.verdict:
            score.lost.append(entry)
    return dict(sorted(scores.items()))


def render_scores(scores: dict[str, BucketScore]) -> list[str]:
    lines = [f"{'bucket':12} {'judged':>6} {'listed':>6} {'true':>6} {'precision':>9}"]
    for name, s in scores.items():
        p = "-" if s.precision is None else f"{100 * s.precision:.1f}%"
        lines.append(f"{name:12} {s.judged:6} {s.listed:6} {s.listed_true:6} {p:>9}")
    for name, s in scores.items():
        for label, entries in (("judged false, still listed", s.false_listed),
                               ("judged true, no longer listed", s.lost),
                               ("judged true, access changed", s.changed)):
            lines += [f"{name}: {label}: {e.path}:{e.line} {e.callee} -- {e.reason}"
                      for e in entries]
    return lines


# -- command line ------------------------------------------------------------------------------


def scan_json(args: argparse.Namespace, tree: Path) -> dict[str, Any]:
    if args.json is not None:
        data: dict[str, Any] = json.loads(Path(args.json).read_text(encoding="utf-8"))
        return data
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scan.json"
        cmd = [sys.executable, "-m", "mmioscan", "scan", str(tree), "--format", "json",
               "-o", str(out), "--no-progress"]
        if args.config is not None:
            cmd += ["--config", str(args.config)]
        subprocess.run(cmd, check=True, cwd=REPO)
        scanned: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return scanned


def default_cache_dir() -> Path:
    from mmioscan.cli.options import default_cache_dir as cli_default
    return cli_default()


def default_tree() -> Path:
    from mmioscan.kernel.kernelsrc import ensure_tree
    return ensure_tree()


def cmd_sample(args: argparse.Namespace) -> int:
    tree = Path(args.tree) if args.tree else default_tree()
    data = scan_json(args, tree)
    tree = Path(args.tree) if args.tree else Path(data.get("root") or tree)
    drawn = draw(buckets(data.get("sites", []), args.all), args.seed,
                 {"unsupported": args.unsupported, "hot": args.hot}, args.per_kind)
    every = [s for sites in drawn.values() for s in sites]
    notes = graph_notes(tree, every, args.cache_dir or default_cache_dir()) if args.graph else None
    out = [f"seed {args.seed}; " + ", ".join(f"{k} {len(v)}" for k, v in drawn.items())]
    for bucket, sites in drawn.items():
        for i, site in enumerate(sites, 1):
            out += ["", f"[{bucket} {i}/{len(sites)}]", *show(site, tree, args.context, notes)]
    print("\n".join(out))
    if args.skeleton is not None:
        Path(args.skeleton).write_text(skeleton(drawn, args.seed), encoding="utf-8")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    tree = Path(args.tree) if args.tree else None
    data = scan_json(args, tree or default_tree())
    try:
        expected = load_expectations(Path(args.expect))
    except ExpectationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    scores = check(expected, data.get("sites", []))
    print("\n".join(render_scores(scores)))
    kinds = Counter(e.bucket for e in expected)
    print(f"judged: {sum(kinds.values())} sites; " + ", ".join(f"{k} {n}" for k, n in
                                                                sorted(kinds.items())))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    for name in ("sample", "check"):
        s = sub.add_parser(name)
        src = s.add_mutually_exclusive_group(required=True)
        src.add_argument("--json", type=Path, help="a scan's JSON")
        src.add_argument("--scan", action="store_true", help="scan the tree first")
        s.add_argument("--tree", type=Path, help="the kernel tree (default: the cached one)")
        s.add_argument("--config", type=Path, help="a .config for --scan")
    s = sub.choices["sample"]
    s.add_argument("--seed", type=int, default=2026)
    s.add_argument("--all", action="store_true",
                   help="draw unreachable sites too (a .config leaves few regmap, deref and "
                        "unsupported sites)")
    s.add_argument("--per-kind", type=int, default=20)
    s.add_argument("--unsupported", type=int, default=15)
    s.add_argument("--hot", type=int, default=15)
    s.add_argument("--context", type=int, default=2, help="source lines either side")
    s.add_argument("--graph", action="store_true",
                   help="rescan each site's folder: chain definitions, hot chains")
    s.add_argument("--cache-dir", type=Path, help="facts cache for --graph (default: mmioscan's)")
    s.add_argument("--skeleton", type=Path, help="write an expectations file to judge")
    sub.choices["check"].add_argument("--expect", type=Path, required=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return cmd_sample(args) if args.mode == "sample" else cmd_check(args)


if __name__ == "__main__":
    sys.exit(main())
