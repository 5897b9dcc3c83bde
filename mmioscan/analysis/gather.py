"""The facts stage: the files in scope and every file the analysis needs, parsed (or cached).

Rounds, each through the same cached runner (facts/runner.py):
1. the files in scope, parsed when the byte scan finds a catalogued name (or regmap_init_mmio);
2. headers they include from outside the scope (include/, the driver's own folders),
   transitively, so their macros and inline functions join the call graph; and the driver's
   own headers a file with hot roots includes, parsed whatever they mention (a static inline
   on the path from a root to an access must not break the chain);
3. files in scope that call wrappers (or regmap, in a driver with an MMIO regmap) but mention
   no accessor: found by a byte scan for the names analysis/rounds.py makes visible to
   them, then parsed. Repeated while it finds more, at most MAX_ROUNDS times.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mmioscan.analysis import replay
from mmioscan.analysis.callgraph import (
    IncludeIndex,
    folder_of,
    include_candidates,
)
from mmioscan.analysis.dataflow import ScopeCalls
from mmioscan.analysis.engines import engine_spec
from mmioscan.analysis.heap import keep
from mmioscan.analysis.rounds import NO_NAMES, Rounds, RoundsMemo, matching_salt, visible_names
from mmioscan.analysis.timings import Timings
from mmioscan.clang.prepare import Prepared
from mmioscan.core.model import FileFacts, Problem, ScanStats
from mmioscan.core.ruleset import RuleSet
from mmioscan.facts.runner import ExtractSpec, Progress, Workers, collect_facts, open_cache
from mmioscan.kernel.includepaths import IncludePaths
from mmioscan.kernel.tree import FileSet, collect

MAX_ROUNDS = 5
MAX_INCLUDE_DEPTH = 4
# The name of an inline function or of a function-like macro (`#define kick(r) ...`).
_CODE_RE = re.compile(rb"\b(?:inline|__inline|__inline__|__always_inline)\b[^;{}()]*?"
                      rb"\b([A-Za-z_]\w*)\s*\(|^[ \t]*#[ \t]*define[ \t]+(\w+)\(",
                      re.MULTILINE)


@dataclass(frozen=True, slots=True)
class ScanOptions:
    paths: tuple[Path, ...]
    root: Path | None = None
    jobs: int = 1
    cache_dir: Path | None = None
    direct_only: bool = False  # issue-2 inventory: no context headers, rounds or call graph
    engine: str = "fast"  # or "clang": libclang over `prepared` (docs/precise.md)
    prepared: Prepared | None = None


def extract_spec(rules: RuleSet) -> ExtractSpec:
    return ExtractSpec(
        names=rules.catalogue.names() | rules.regmap.maybe_mmio(),
        registrations=tuple(sorted(rules.hot.registrations.items())),
        hot_fields=rules.hot.fields, regmap=rules.regmap,
        hot_structs=tuple(sorted(rules.hot.structs.items())), ram=rules.ram)




class _Facts:
    """Facts gathered over the rounds, and the problems met on the way."""

    def __init__(self, root: Path, options: ScanOptions, rules: RuleSet,
                 progress: Progress | None) -> None:
        self.root, self.options, self.rules, self.progress = root, options, rules, progress
        self.spec = extract_spec(rules)
        self.by_path: dict[str, FileFacts] = {}
        self.problems: list[Problem] = []
        self.hit_paths: set[str] = set()  # a forced file read again counts once
        self.memo = RoundsMemo()  # kept from round to round (scope calls, caller index)
        self._includes: IncludeIndex | None = None  # over by_path, until a file's includes change
        self.called: set[str] = set()  # every name a parsed file calls (_hot_headers)
        self.code_names: dict[str, frozenset[str]] = {}  # a header's code names (_hot_headers)
        self.workers: Workers | None = None  # kept across the rounds (gather sets it)
        self.include_paths = IncludePaths(root)  # the Makefiles' -I folders
        # (folder or "", #include target) -> the tree file it names, or None: the files of
        # the tree do not change during a run, and the context and hot headers resolved
        # the same includes again after every round (a stat each, through pathlib)
        self.resolved: dict[tuple[str, str], str | None] = {}
        self._root = str(root)

    def is_file(self, rel: str) -> bool:
        return os.path.isfile(os.path.join(self._root, rel))

    def includes(self) -> IncludeIndex:
        """The include index of every file read. Kept while no file is added and no file's
        includes change: a file a round parses was read before, unparsed, with the same
        `#include` lines (the index is rebuilt over 60,000 files otherwise, twice a round)."""
        if self._includes is None:
            self._includes = IncludeIndex(self.by_path, self.include_paths)
        return self._includes

    def add(self, files: Iterable[str], force: frozenset[str] = frozenset(),
            progress: bool = False) -> list[FileFacts]:
        wanted = tuple(sorted(set(files)))
        if not wanted:
            return []
        run = collect_facts(self.root, wanted, self.spec, self.rules.digest,
                            self.workers or self.options.jobs, self.options.cache_dir,
                            self.progress if progress else None, force)
        self.hit_paths.update(run.hit_paths)
        self.problems.extend(p for p in run.problems if p not in self.problems)
        for facts in run.facts:
            before = self.by_path.get(facts.path)
            if before is None or before.includes != facts.includes:
                self._includes = None
            self.by_path[facts.path] = facts
            if facts.parsed:
                self.called.update(c[0] for c in facts.calls)
        keep()  # the facts live until the run ends, and hold no cycle (analysis/heap.py)
        return list(run.facts)


def _context_headers(store: _Facts, new: list[FileFacts], scoped: set[str]) -> None:
    """Parse the headers the parsed files include from outside the scope, transitively."""
    resolved = store.resolved
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
                         if store.is_file(c)), None)
                found = resolved[memo]
                if found is None:  # then in the folders its Makefiles add with -I
                    found = _through_flags(store, folder, target, resolved)
                if found is not None and found not in store.by_path and found not in scoped:
                    wanted.add(found)
        if not wanted:
            return
        new = store.add(wanted)


def _through_flags(store: _Facts, folder: str, target: str,
                   resolved: dict[tuple[str, str], str | None]) -> str | None:
    memo = (folder, "-I" + target)
    if memo not in resolved:
        resolved[memo] = next((c for c in store.include_paths.candidates(folder, target)
                               if store.is_file(c)), None)
    return resolved[memo]


def _hot_headers(store: _Facts, scoped: set[str]) -> None:
    """Parse, whatever they mention, the driver's own headers that a file with hot roots
    includes (transitively): a static inline on the path from a root (a doorbell helper in
    drivers/net/ethernet/<vendor>/<drv>/<x>.h called from the xmit function) that names no
    accessor would otherwise stay unparsed and break the chain from the root to the access.
    Headers of include/ and arch/ are not forced: too many, and the helpers there that touch
    registers name an accessor (or a wrapper) and are parsed anyway."""
    defined = store.code_names
    for _ in range(MAX_INCLUDE_DEPTH):
        includes = store.includes()
        candidates = {header for path, facts in sorted(store.by_path.items())
                      if facts.parsed and facts.roots
                      for header in _driver_headers(includes, path)
                      if _own_header(header, path) and _forcible(store.by_path[header])}
        if not candidates:
            return
        # Only a header defining code that some parsed file calls can be a link of a chain
        # (ice: 25 of its 66 headers; register macros like GLINT_DYN_CTL(i) count as calls).
        called = store.called
        wanted = set()
        for header in sorted(candidates):
            if header not in defined:
                defined[header] = _code_names(store.root / header)
            if not called.isdisjoint(defined[header]):
                wanted.add(header)
        if not wanted:
            return
        added = store.add(wanted, force=frozenset(wanted))
        _context_headers(store, added, scoped)


def _driver_headers(includes: IncludeIndex, path: str) -> set[str]:
    """The headers path includes transitively without passing through include/ or arch/:
    those never include a driver's own header, and walking them (thousands per driver
    file, for every file with a hot root in every round) was a third of a warm whole-tree
    run."""
    found: set[str] = set()
    todo = [path]
    while todo:
        for header in includes.direct(todo.pop()):
            if header not in found and not header.startswith(("include/", "arch/")):
                found.add(header)
                todo.append(header)
    found.discard(path)
    return found


def _own_header(header: str, path: str) -> bool:
    """Is header one of the driver's own: in path's folder, below it, or in its parent?"""
    if not header.endswith(".h") or header.startswith(("include/", "arch/")):
        return False
    folder, own = posixpath.dirname(path), posixpath.dirname(header)
    return own == folder or own.startswith(folder + "/") or own == posixpath.dirname(folder)


def _code_names(path: Path) -> frozenset[str]:
    """The inline functions and function-like macros a header defines, by a byte scan (a
    header of structs, enums and register offsets defines none)."""
    try:
        data = path.read_bytes()
    except OSError:
        return frozenset()
    return frozenset((m.group(1) or m.group(2)).decode("utf-8", "surrogateescape")
                     for m in _CODE_RE.finditer(data))


def _forcible(facts: FileFacts) -> bool:
    """An unparsed header the prefilter skipped (not one too large or unreadable)."""
    return not facts.parsed and bool(facts.digest) and not facts.problems


def _callers_round(store: _Facts, scoped: list[str], rounds: Rounds,
                   negatives: set[tuple[str, str]],
                   fresh_negatives: list[tuple[str, str]]) -> set[str]:
    """Unparsed files in scope that mention a name made visible to them since the last
    round: a funnel of their folder or its parent, of a header they include (transitively),
    an exported funnel, a call through a field that stores one, or a function of the
    driver in a file that registers a hot root."""
    candidates = [path for path in scoped
                  if (facts := store.by_path.get(path)) is not None and not facts.parsed
                  and facts.digest]
    visible = visible_names(store.by_path, store.rules, store.memo)
    folders, headers, everywhere = rounds.advance(
        visible, sorted({folder_of(p) for p in candidates}))
    includes = store.includes()  # unparsed headers pass their includes on
    found: set[str] = set()
    for path in candidates:
        facts = store.by_path[path]
        through = includes.names_seen(path, facts.includes, headers) if headers else None
        groups = tuple(g for g in (folders[folder_of(path)], everywhere,
                                   rounds.names(through) if through else NO_NAMES)
                       if g.key)
        if not groups:
            continue
        names_key = hashlib.sha1(matching_salt() + b"".join(g.key for g in groups),
                                 usedforsecurity=False).hexdigest()
        if (facts.digest, names_key) in negatives:
            continue  # an earlier scan searched this very file for these very names
        if not rounds.may_match(path, groups, facts.identifiers, facts.field_uses):
            fresh_negatives.append((facts.digest, names_key))
            continue
        try:
            data = (store.root / path).read_bytes()
        except OSError:
            continue
        if rounds.matches(path, data, groups, bool(facts.identifiers)):
            found.add(path)
        else:
            fresh_negatives.append((facts.digest, names_key))
    return found


def _stats(facts: Iterable[FileFacts], cache_hits: int) -> ScanStats:
    facts = list(facts)
    return ScanStats(
        files_listed=len(facts),
        files_parsed=sum(f.parsed for f in facts),
        files_skipped=sum(not f.parsed for f in facts),
        files_with_errors=sum(f.error_nodes > 0 for f in facts),
        functions=sum(1 for f in facts for s in f.scopes if s.kind == "function"),
        functions_with_errors=sum(1 for f in facts for s in f.scopes if s.has_error),
        macros=sum(1 for f in facts for s in f.scopes if s.kind != "function"),
        cache_hits=cache_hits)


@dataclass(frozen=True, slots=True)
class Gathered:
    """What the facts stage hands on: the files in scope and every file parsed for them."""

    fileset: FileSet
    facts: Mapping[str, FileFacts]  # every file read: scope, context headers, caller rounds
    scoped: tuple[FileFacts, ...]  # the files in scope, in path order
    stats: ScanStats
    problems: tuple[Problem, ...]  # the tree's, the runner's and the scoped files' own
    # Each file's scope calls as the caller rounds derived them (keyed by path, with the
    # facts object they were derived from): the call graph reuses them
    scope_calls: Mapping[str, tuple[FileFacts, Mapping[int, ScopeCalls]]] = \
        dataclasses.field(default_factory=dict)
    include_paths: IncludePaths | None = None  # the Makefiles' -I folders

    @property
    def root(self) -> Path:
        return self.fileset.root


def gather(options: ScanOptions, rules: RuleSet, progress: Progress | None = None,
           clock: Timings | None = None) -> Gathered:
    """Facts for the paths (and, unless direct_only, the headers and callers the call graph
    needs); raises tree.TreeError for unusable paths."""
    clock = clock or Timings()
    fileset = collect(list(options.paths), options.root)
    store = _Facts(fileset.root, options, rules, progress)
    store.spec = engine_spec(store.spec, options.engine, options.prepared, fileset)
    with Workers(store.spec, options.jobs) as store.workers:
        first = store.add(fileset.files, progress=True)
        clock.lap("facts")
        if not options.direct_only:
            _more_files(store, fileset, first, clock)
    store.workers = None
    scoped = tuple(store.by_path[p] for p in fileset.files)
    problems = [*fileset.problems, *store.problems, *(p for f in scoped for p in f.problems)]
    return Gathered(fileset, dict(store.by_path), scoped, _stats(scoped, len(store.hit_paths)),
                    tuple(problems), store.memo.scope_calls, store.include_paths)


def _more_files(store: _Facts, fileset: FileSet, first: list[FileFacts],
                clock: Timings) -> None:
    """Context headers, then files in scope that call the wrappers found so far (rounds)."""
    scoped_set = set(fileset.files)
    _context_headers(store, first, scoped_set)
    _hot_headers(store, scoped_set)
    clock.lap("context headers")
    rounds = Rounds(frozenset(store.rules.hot.registrations) | store.rules.hot.fields,
                     frozenset(store.rules.hot.registrations))
    cache = open_cache(store.options.cache_dir, store.rules.digest, store.spec)
    key = replay.record_key(fileset.files, str(fileset.root))
    start = replay.digests_of(store.by_path)
    record = replay.load(cache, key)
    if record is not None and replay.replayable(record, store.by_path, cache,
                                                store.include_paths):
        for found in record.rounds:  # what the rounds would find again (analysis/replay.py)
            _add_round(store, found, scoped_set)
        clock.lap("wrapper callers")
        replay.store(cache, key, replay.Record(start, record.rounds,
                                               store.include_paths.read_so_far()))
        cache.close()
        return
    negatives = cache.negatives()
    fresh_negatives: list[tuple[str, str]] = []
    added_by_round: list[tuple[str, ...]] = []
    for _ in range(MAX_ROUNDS):
        extra = _callers_round(store, list(fileset.files), rounds, negatives,
                               fresh_negatives)
        clock.lap("wrapper callers")
        if not extra:
            break
        added_by_round.append(tuple(sorted(extra)))
        _add_round(store, extra, scoped_set)
        clock.lap("facts")
    cache.store_negatives(fresh_negatives)
    replay.store(cache, key, replay.Record(start, tuple(added_by_round),
                                           store.include_paths.read_so_far()))
    cache.close()


def _add_round(store: _Facts, extra: Iterable[str], scoped: set[str]) -> None:
    """Parse the files a round found, then the headers they bring (context, hot)."""
    wanted = frozenset(extra)
    added = store.add(wanted, force=wanted)
    _context_headers(store, added, scoped)
    _hot_headers(store, scoped)
