"""The scan use case: paths in, ScanResult out (no terminal, no files written).

Rounds, each through the same cached runner:
1. the files in scope, parsed when the byte scan finds a catalogued name (or regmap_init_mmio);
2. headers they include from outside the scope (include/, the driver's own folders),
   transitively, so their macros and inline functions join the call graph;
3. files in scope that call wrappers (or regmap, in a driver with an MMIO regmap) but mention
   no accessor: found by a byte scan for the wrapper names defined in their folder or its
   parent, then parsed. Repeated while it finds more, at most MAX_ROUNDS times.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mmioscan.analysis.callgraph import (
    CallGraph,
    IncludeIndex,
    approximate_wrappers,
    folder_of,
    include_candidates,
)
from mmioscan.analysis.sites import deref_sites, direct_sites
from mmioscan.analysis.wrappers import (
    driver_of,
    finish_sites,
    hot_roots,
    patch_points,
    regmap_folders,
    regmap_sites,
    wrapper_sites,
)
from mmioscan.core.model import FileFacts, Problem, ScanResult, ScanStats, Site
from mmioscan.core.ruleset import RuleSet
from mmioscan.facts.runner import ExtractSpec, Progress, collect_facts, open_cache
from mmioscan.kernel.tree import FileSet, collect, kernel_version

MAX_ROUNDS = 5
_IDENT_RE = re.compile(rb"[A-Za-z_]\w*")
_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
MAX_INCLUDE_DEPTH = 4


@dataclass(frozen=True, slots=True)
class ScanOptions:
    paths: tuple[Path, ...]
    root: Path | None = None
    jobs: int = 1
    cache_dir: Path | None = None
    direct_only: bool = False  # issue-2 inventory: no context headers, rounds or call graph


def _spec(rules: RuleSet) -> ExtractSpec:
    return ExtractSpec(
        names=rules.catalogue.names() | rules.regmap.init,
        registrations=tuple(sorted(rules.hot.registrations.items())),
        hot_fields=rules.hot.fields)


class Timings:
    """Wall time per phase, for --timings and bench/ (never part of the output)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._start = time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self._start
        self._start = now


class _Facts:
    """Facts gathered over the rounds, and the problems met on the way."""

    def __init__(self, root: Path, options: ScanOptions, rules: RuleSet,
                 progress: Progress | None) -> None:
        self.root, self.options, self.rules, self.progress = root, options, rules, progress
        self.spec = _spec(rules)
        self.by_path: dict[str, FileFacts] = {}
        self.problems: list[Problem] = []
        self.cache_hits = 0

    def add(self, files: Iterable[str], force: frozenset[str] = frozenset(),
            progress: bool = False) -> list[FileFacts]:
        wanted = tuple(sorted(set(files)))
        if not wanted:
            return []
        run = collect_facts(self.root, wanted, self.spec, self.rules.digest,
                            self.options.jobs, self.options.cache_dir,
                            self.progress if progress else None, force)
        self.cache_hits += run.cache_hits
        self.problems.extend(p for p in run.problems if p not in self.problems)
        for facts in run.facts:
            self.by_path[facts.path] = facts
        return list(run.facts)


def _context_headers(store: _Facts, new: list[FileFacts], scoped: set[str]) -> None:
    """Parse the headers the parsed files include from outside the scope, transitively."""
    resolved: dict[tuple[str, str], str | None] = {}
    for _ in range(MAX_INCLUDE_DEPTH):
        wanted: set[str] = set()
        for facts in new:
            # Unparsed files count too: one that only calls an include/ funnel is parsed in a
            # later round, and needs the funnel's header parsed to see it.
            folder = folder_of(facts.path)
            for target in facts.includes:
                memo = (folder if target.startswith('"') else "", target)
                if memo not in resolved:
                    resolved[memo] = next(
                        (c for c in include_candidates(facts.path, target)
                         if (store.root / c).is_file()), None)
                found = resolved[memo]
                if found is not None and found not in store.by_path and found not in scoped:
                    wanted.add(found)
        if not wanted:
            return
        new = store.add(wanted)


def _visible_wrappers(store: _Facts) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Possible wrapper names callable from other files, by folder and by header."""
    parsed = {p: f for p, f in store.by_path.items() if f.parsed}
    by_folder: dict[str, set[str]] = {}
    by_header: dict[str, set[str]] = {}
    leaves = store.rules.catalogue.names()
    for path, scope in approximate_wrappers(parsed, leaves,
                                            store.rules.wrappers.max_function_lines):
        if path.endswith(".h"):
            by_header.setdefault(path, set()).add(scope.name)
        elif scope.static or scope.kind != "function":
            continue  # static functions and macros of a .c file are seen only in that file
        by_folder.setdefault(posixpath.dirname(path), set()).add(scope.name)
    for folder in regmap_folders(parsed.values(), store.rules.regmap):
        by_folder.setdefault(folder, set()).update(store.rules.regmap.api)
    # A file registering an interrupt handler (request_irq, .ndo_start_xmit = ...) in a driver
    # folder with MMIO is parsed too: its handler may live in another file of the driver.
    hot_names = set(store.rules.hot.registrations) | store.rules.hot.fields
    for path in parsed:
        by_folder.setdefault(posixpath.dirname(path), set()).update(hot_names)
    return by_folder, by_header


def _mentions(data: bytes, names: set[bytes]) -> bool:
    """Does data hold one of names as a whole identifier? `find` per name while the set is
    small, one identifier pass over the file when it is large."""
    if len(names) > 40:
        return not names.isdisjoint(_IDENT_RE.findall(data))
    for name in names:
        start = data.find(name)
        while start >= 0:
            end = start + len(name)
            if ((start == 0 or data[start - 1] not in _WORD)
                    and (end == len(data) or data[end] not in _WORD)):
                return True
            start = data.find(name, end)
    return False


def _callers_round(store: _Facts, scoped: list[str], checked: dict[str, set[bytes]],
                   negatives: set[tuple[str, str]],
                   fresh_negatives: list[tuple[str, str]]) -> set[str]:
    """Unparsed files in scope that mention a wrapper they can see: one defined in their
    folder or its parent, or in a header they include (transitively). `checked` remembers
    the names each file was already searched for, so later rounds only look for new ones."""
    by_folder, by_header = _visible_wrappers(store)
    includes = IncludeIndex({p: f for p, f in store.by_path.items() if f.parsed})
    found: set[str] = set()
    for path in scoped:
        facts = store.by_path.get(path)
        if facts is None or facts.parsed or not facts.digest:
            continue
        folder = folder_of(path)
        seen: set[str] = set()
        seen.update(by_folder.get(folder, ()), by_folder.get(folder_of(folder), ()))
        for header in includes.includes_of(path, facts.includes):
            seen.update(by_header.get(header, ()))
        done = checked.setdefault(path, set())
        visible = {n.encode() for n in seen} - done
        if not visible:
            continue
        done.update(visible)
        names_key = hashlib.sha1(b"\0".join(sorted(visible)), usedforsecurity=False).hexdigest()
        if (facts.digest, names_key) in negatives:
            continue  # an earlier scan searched this very file for these very names
        try:
            data = (store.root / path).read_bytes()
        except OSError:
            continue
        if _mentions(data, visible):
            found.add(path)
        else:
            fresh_negatives.append((facts.digest, names_key))
    return found


def _graph(store: _Facts, rules: RuleSet) -> CallGraph:
    return CallGraph(store.by_path.values(), rules.catalogue.accessors,
                     max_function_lines=rules.wrappers.max_function_lines)


def _stats(facts: list[FileFacts], cache_hits: int) -> ScanStats:
    return ScanStats(
        files_listed=len(facts),
        files_parsed=sum(f.parsed for f in facts),
        files_skipped=sum(not f.parsed for f in facts),
        files_with_errors=sum(f.error_nodes > 0 for f in facts),
        functions=sum(1 for f in facts for s in f.scopes if s.kind == "function"),
        functions_with_errors=sum(1 for f in facts for s in f.scopes if s.has_error),
        macros=sum(1 for f in facts for s in f.scopes if s.kind != "function"),
        cache_hits=cache_hits)


# Turns the scan's sites into their final form (driver mapping, TDX verdicts: analyse.py)
# before patch points are counted per driver: (tree root, sites, every file's facts) ->
# sites, same order.
SiteFinisher = Callable[[Path, tuple[Site, ...], Iterable[FileFacts]], tuple[Site, ...]]


def run_scan(options: ScanOptions, rules: RuleSet,
             progress: Progress | None = None,
             on_graph: Callable[[CallGraph], None] | None = None,
             timings: Timings | None = None,
             finish: SiteFinisher | None = None,
             counted: Callable[[Site], bool] | None = None) -> ScanResult:
    """Scan the paths; raises tree.TreeError for unusable arguments.

    `counted` chooses the sites patch points are planned for (default: every active one)."""
    clock = timings or Timings()
    fileset = collect(list(options.paths), options.root)
    store = _Facts(fileset.root, options, rules, progress)
    scoped_set = set(fileset.files)
    first = store.add(fileset.files, progress=True)
    clock.lap("facts")
    if options.direct_only:
        return _direct_result(fileset, store, first, finish, clock)
    _context_headers(store, first, scoped_set)
    clock.lap("context headers")
    checked: dict[str, set[bytes]] = {}
    cache = open_cache(options.cache_dir, rules.digest)
    negatives = cache.negatives()
    fresh_negatives: list[tuple[str, str]] = []
    for _ in range(MAX_ROUNDS):
        extra = _callers_round(store, list(fileset.files), checked, negatives, fresh_negatives)
        clock.lap("wrapper callers")
        if not extra:
            break
        added = store.add(extra, force=frozenset(extra))
        _context_headers(store, added, scoped_set)
        clock.lap("facts")
    cache.store_negatives(fresh_negatives)
    cache.close()
    graph = _graph(store, rules)
    clock.lap("graph")
    if on_graph is not None:
        on_graph(graph)
    scoped = [store.by_path[p] for p in fileset.files]
    sites = _all_sites(scoped, store, graph, rules)
    clock.lap("sites")
    if finish is not None:
        sites = finish(fileset.root, sites, store.by_path.values())
        clock.lap("drivers and verdicts")
    problems = list(fileset.problems) + store.problems
    problems += [p for f in scoped for p in f.problems]
    points = patch_points(sites, graph, counted)
    clock.lap("patch points")
    return ScanResult(
        root=str(fileset.root), kernel_version=kernel_version(fileset.root),
        scanned=fileset.targets, sites=sites,
        problems=tuple(sorted(set(problems), key=lambda p: (p.path, p.message))),
        stats=_stats(scoped, store.cache_hits), facts=tuple(scoped),
        patch_points=points, hot_roots=hot_roots(f for f in store.by_path.values()))


def _direct_result(fileset: FileSet, store: _Facts, scoped: list[FileFacts],
                   finish: SiteFinisher | None, clock: Timings) -> ScanResult:
    """Direct and reference sites only, without the call graph (--direct-only)."""
    catalogue = store.rules.catalogue
    found = [*direct_sites(scoped, catalogue), *deref_sites(scoped, catalogue.names())]
    sites = tuple(s.placed(driver_of(s.path), None, False)
                  for s in sorted(found, key=Site.sort_key))
    if finish is not None:
        sites = finish(fileset.root, sites, store.by_path.values())
        clock.lap("drivers and verdicts")
    problems = list(fileset.problems) + store.problems + [p for f in scoped for p in f.problems]
    return ScanResult(
        root=str(fileset.root), kernel_version=kernel_version(fileset.root),
        scanned=fileset.targets, sites=sites,
        problems=tuple(sorted(set(problems), key=lambda p: (p.path, p.message))),
        stats=_stats(scoped, store.cache_hits), facts=tuple(scoped))


def _all_sites(scoped: list[FileFacts], store: _Facts, graph: CallGraph,
               rules: RuleSet) -> tuple[Site, ...]:
    catalogue = rules.catalogue
    found: list[Site] = list(direct_sites(scoped, catalogue))
    found += deref_sites(scoped, catalogue.names())
    found += wrapper_sites(scoped, graph, catalogue)
    found += regmap_sites(scoped, regmap_folders(store.by_path.values(), rules.regmap),
                          rules.regmap)
    roots = [(r.path, r.function) for r in hot_roots(store.by_path.values())]
    finished = finish_sites(found, graph, graph.hot_nodes(roots))
    return tuple(sorted(finished, key=Site.sort_key))
