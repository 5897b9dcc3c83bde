"""The facts stage: the files in scope and every file the analysis needs, parsed (or cached).

Rounds, each through the same cached runner (facts/runner.py):
1. the files in scope, parsed when the byte scan finds a catalogued name (or regmap_init_mmio);
2. headers they include from outside the scope (include/, the driver's own folders),
   transitively, so their macros and inline functions join the call graph; and the driver's
   own headers a file with hot roots includes, parsed whatever they mention (a static inline
   on the path from a root to an access must not break the chain);
3. files in scope that call wrappers (or regmap, in a driver with an MMIO regmap) but mention
   no accessor: found by a byte scan for the wrapper names defined in their folder or its
   parent, then parsed. Repeated while it finds more, at most MAX_ROUNDS times.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mmioscan.analysis.callgraph import (
    IncludeIndex,
    approximate_wrappers,
    folder_of,
    include_candidates,
)
from mmioscan.analysis.dataflow import ScopeCalls
from mmioscan.analysis.engines import engine_spec
from mmioscan.analysis.timings import Timings
from mmioscan.analysis.wrappers import regmap_folders
from mmioscan.clang.prepare import Prepared
from mmioscan.core.model import FileFacts, Problem, ScanStats
from mmioscan.core.ruleset import RuleSet
from mmioscan.core.sources import source_digest
from mmioscan.facts.runner import ExtractSpec, Progress, collect_facts, open_cache
from mmioscan.kernel.tree import FileSet, collect

MAX_ROUNDS = 5
_IDENT_RE = re.compile(rb"[A-Za-z_]\w*")
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


def _spec(rules: RuleSet) -> ExtractSpec:
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
        self.spec = _spec(rules)
        self.by_path: dict[str, FileFacts] = {}
        self.problems: list[Problem] = []
        self.hit_paths: set[str] = set()  # a forced file read again counts once
        self.scope_calls: dict[str, tuple[FileFacts, dict[int, ScopeCalls]]] = {}

    def add(self, files: Iterable[str], force: frozenset[str] = frozenset(),
            progress: bool = False) -> list[FileFacts]:
        wanted = tuple(sorted(set(files)))
        if not wanted:
            return []
        run = collect_facts(self.root, wanted, self.spec, self.rules.digest,
                            self.options.jobs, self.options.cache_dir,
                            self.progress if progress else None, force)
        self.hit_paths.update(run.hit_paths)
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


def _hot_headers(store: _Facts, scoped: set[str]) -> None:
    """Parse, whatever they mention, the driver's own headers that a file with hot roots
    includes (transitively): a static inline on the path from a root (a doorbell helper in
    drivers/net/ethernet/<vendor>/<drv>/<x>.h called from the xmit function) that names no
    accessor would otherwise stay unparsed and break the chain from the root to the access.
    Headers of include/ and arch/ are not forced: too many, and the helpers there that touch
    registers name an accessor (or a wrapper) and are parsed anyway."""
    defined: dict[str, frozenset[str]] = {}
    for _ in range(MAX_INCLUDE_DEPTH):
        includes = IncludeIndex(store.by_path)
        candidates = {header for path, facts in sorted(store.by_path.items())
                      if facts.parsed and facts.roots
                      for header in _driver_headers(includes, path)
                      if _own_header(header, path) and _forcible(store.by_path[header])}
        if not candidates:
            return
        # Only a header defining code that some parsed file calls can be a link of a chain
        # (ice: 25 of its 66 headers; register macros like GLINT_DYN_CTL(i) count as calls).
        called = {c[0] for f in store.by_path.values() if f.parsed for c in f.calls}
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


# Names in the visible sets below carry a prefix saying how a file must mention them:
# FIELD_CALL: called through a field (`p->read_reg(`, `p->ops.read_reg(`, `(*p->read_reg)(`);
# PARTNER: a function the file may reach, counted only in a file that also registers a hot
# root (a request_irq call, an `.ndo_start_xmit =`); unprefixed: anywhere, as an identifier.
FIELD_CALL, PARTNER = ".", "&"


@dataclass(slots=True)
class _Visible:
    """Names that make an unparsed file worth parsing (prefixed as FIELD_CALL and PARTNER
    say): seen from a folder (and from its subfolders), from the files including a header,
    and from everywhere."""

    by_folder: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    by_header: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    everywhere: set[str] = dataclasses.field(default_factory=set)


def _visible_wrappers(store: _Facts) -> _Visible:
    """The names each unparsed file should be searched for, after the rounds so far."""
    parsed = {p: f for p, f in store.by_path.items() if f.parsed}
    visible = _Visible()
    by_folder, by_header = visible.by_folder, visible.by_header
    leaves = store.rules.catalogue.names()
    addr_args = {n: a.addr_arg for n, a in store.rules.catalogue.accessors.items()}
    funnels: set[str] = set()
    for path, scope in approximate_wrappers(parsed, leaves,
                                            store.rules.wrappers.max_function_lines, addr_args,
                                            store.rules.wrappers.max_funnel_lines,
                                            store.scope_calls):
        funnels.add(scope.name)
        if path.endswith(".h"):
            by_header.setdefault(path, set()).add(scope.name)
            # also where the call graph looks when an include is not seen (a .c file
            # #included by another, like ehci-q.c): headers of the same or the parent folder
            by_folder.setdefault(posixpath.dirname(path), set()).add(scope.name)
        elif scope.static or scope.kind != "function":
            continue  # static functions and macros of a .c file are seen only in that file
        elif scope.name in store.by_path[path].exports:
            visible.everywhere.add(scope.name)  # EXPORT_SYMBOL: any driver may call it
        else:
            by_folder.setdefault(posixpath.dirname(path), set()).add(scope.name)
    _field_calls(parsed, funnels | leaves, visible)
    for folder in regmap_folders(parsed.values(), store.rules.regmap):
        by_folder.setdefault(folder, set()).update(store.rules.regmap.api,
                                                   store.rules.regmap.bus)
    # A file registering an interrupt handler (request_irq, .ndo_start_xmit = ...) is parsed
    # when it also names a function of the driver that makes an access (an accessor or a
    # funnel call in its body): its handler may be that function, or call it. Functions
    # that only reach an access further down are not counted: each file parsed for them
    # would bring its own functions in, and the rounds would parse every driver.
    # A handler stored in a field the file registers through (`request_irq(irq,
    # chip->handler, ...)`) counts by the field's name, in the storing folder.
    accessing = funnels | leaves | frozenset(store.rules.regmap.api)
    for path, facts in parsed.items():
        deref_scopes = {d[2] for d in facts.derefs}
        makers = {i for i, s in enumerate(facts.scopes) if s.kind == "function"
                  and (i in deref_scopes or not accessing.isdisjoint((*s.callees, *s.values)))}
        partners = {PARTNER + facts.scopes[i].name for i in makers
                    if path.endswith(".h") or not facts.scopes[i].static}
        names = {facts.scopes[i].name for i in makers}
        fields = {PARTNER + field for _s, field, fn, _l in facts.fnptrs if fn in names}
        if fields:
            by_folder.setdefault(posixpath.dirname(path), set()).update(fields)
        if not partners:
            continue
        if path.endswith(".h"):
            if not path.startswith(("include/", "arch/")):  # a driver's own header
                by_header.setdefault(path, set()).update(partners)
        else:
            by_folder.setdefault(posixpath.dirname(path), set()).update(partners)
    return visible


def _field_calls(parsed: Mapping[str, FileFacts], funnels: set[str] | frozenset[str],
                 visible: _Visible) -> None:
    """A field storing funnels (`gc->read_reg = bgpio_read32`): files calling through it
    (`gc->read_reg(...)`) make wrapper sites, accessor or not in sight. Only a call through
    the field counts (a bare `read` is in most files), and only a field that stores nothing
    but funnels: a call through one that may hold another function is no funnel call for
    the call graph either (`.read` stores funnels in a few drivers and plain functions in
    hundreds). Looked for in the storing folder, its parent's files and their subfolders
    (where the call graph resolves an untyped call by name); a field of a known struct that
    stores only funnels anywhere (`->ndo_fcoe_ddp_setup` of net_device_ops, called from
    drivers/scsi) in every file."""
    stores: dict[str, dict[str, bool]] = {}  # folder -> field -> stores only funnels
    typed: set[str] = set()
    mixed: set[str] = set()
    # a stored value no parsed file defines as a function (`p->len = len`) is no candidate
    functions = {s.name for f in parsed.values() for s in f.scopes if s.kind == "function"}
    for path, facts in parsed.items():
        fields = stores.setdefault(posixpath.dirname(path), {})
        for struct, field, fn, _line in facts.fnptrs:
            if fn not in funnels and fn not in functions:
                continue
            only = fn in funnels
            fields[field] = fields.get(field, True) and only
            if not only:
                mixed.add(field)
            elif struct:
                typed.add(field)
    for folder, fields in stores.items():
        parent = stores.get(posixpath.dirname(folder), {})
        for field, only in fields.items():
            if only and parent.get(field, True):
                visible.by_folder.setdefault(folder, set()).add(FIELD_CALL + field)
                visible.by_folder.setdefault(posixpath.dirname(folder), set()).add(
                    FIELD_CALL + field)
    visible.everywhere.update(FIELD_CALL + field for field in typed - mixed)


@dataclass(frozen=True, slots=True)
class _Names:
    """A set of visible names split by how a file must mention them, as bytes."""

    plain: frozenset[bytes]
    fields: frozenset[bytes]
    partners: frozenset[bytes]
    key: bytes  # a digest of the names (the negatives cache remembers files by it)


_NO_NAMES = _Names(frozenset(), frozenset(), frozenset(), b"")


def _split(names: frozenset[str]) -> _Names:
    if not names:
        return _NO_NAMES
    groups: dict[str, set[bytes]] = {"": set(), FIELD_CALL: set(), PARTNER: set()}
    encoded = sorted(n.encode("utf-8", "surrogateescape") for n in names)
    for name in encoded:
        prefix = name[:1].decode() if name[:1] in (b".", b"&") else ""
        groups[prefix].add(name[len(prefix):])
    key = hashlib.sha1(b"\0".join(encoded), usedforsecurity=False).digest()
    return _Names(frozenset(groups[""]), frozenset(groups[FIELD_CALL]),
                  frozenset(groups[PARTNER]), key)


def _calls_field(data: bytes, fields: frozenset[bytes], idents: frozenset[bytes]) -> bool:
    """Does data call through one of the fields (`->f(`, `.f(`, `->f)(` of `(*p->f)(`) or
    store into it (`.f = fn`, `p->f = fn`)? A store of another function there makes the
    calls through the field no funnel calls: the file must be read to know."""
    named = fields & idents
    if not named:
        return False
    alternatives = b"|".join(re.escape(f) for f in sorted(named))
    return re.search(rb"(?:->|\.)\s*(?:" + alternatives + rb")\s*(?:\)?\s*\(|=(?!=))",
                     data) is not None


_MASK_BITS = 1 << 14  # per file: 2 KiB; about 3% false positives per name for 500 names


def _mask(idents: frozenset[bytes]) -> bytes:
    """A one-hash Bloom filter of a file's identifiers: a later round tests its new names
    against it and reads again only the files that may mention one (no false negatives)."""
    bits = bytearray(_MASK_BITS // 8)
    for ident in idents:
        h = hash(ident) & (_MASK_BITS - 1)
        bits[h >> 3] |= 1 << (h & 7)
    return bytes(bits)


def _may_hold(mask: bytes, names: frozenset[bytes]) -> bool:
    for name in names:
        h = hash(name) & (_MASK_BITS - 1)
        if mask[h >> 3] & (1 << (h & 7)):
            return True
    return False


class _Rounds:
    """The caller rounds' memory: which names every folder, header and the whole tree made
    visible in the rounds before, so that a round searches the unparsed files only for the
    names that are new (a file searched for a name once does not mention it: its content
    has not changed), and a mask of the identifiers of each file read, so that a later
    round reads again only the files that may mention a new name. A name new to a header
    may be one a file saw through another header before: searched twice, found the same."""

    def __init__(self, hot: frozenset[str]) -> None:
        self.hot = frozenset(n.encode("utf-8") for n in hot)
        self.folders: dict[str, frozenset[str]] = {}
        self.headers: dict[str, frozenset[str]] = {}
        self.everywhere: frozenset[str] = frozenset()
        self.masks: dict[str, bytes] = {}
        self._split: dict[frozenset[str], _Names] = {}

    def names(self, names: frozenset[str]) -> _Names:
        found = self._split.get(names)
        if found is None:
            found = self._split[names] = _split(names)
        return found

    def advance(self, visible: _Visible, folders: Iterable[str]
                ) -> tuple[dict[str, _Names], dict[str, frozenset[str]], _Names]:
        """The names new since the last round: per folder of a candidate (its own and its
        parent's), per header, and everywhere."""
        self._split.clear()  # last round's sets are not asked for again
        new_folders: dict[str, _Names] = {}
        for folder in folders:
            now = frozenset(visible.by_folder.get(folder, set())
                            | visible.by_folder.get(folder_of(folder), set()))
            new_folders[folder] = self.names(now - self.folders.get(folder, frozenset()))
            self.folders[folder] = now
        new_headers: dict[str, frozenset[str]] = {}
        for header, names in visible.by_header.items():
            delta = frozenset(names) - self.headers.get(header, frozenset())
            if delta:
                new_headers[header] = delta
            self.headers[header] = frozenset(names) | self.headers.get(header, frozenset())
        now_everywhere = frozenset(visible.everywhere)
        new_everywhere = self.names(now_everywhere - self.everywhere)
        self.everywhere = self.everywhere | now_everywhere
        return new_folders, new_headers, new_everywhere

    def may_match(self, path: str, groups: tuple[_Names, ...]) -> bool:
        """False when the file was read before and its mask rules every name out."""
        mask = self.masks.get(path)
        if mask is None:
            return True
        for names in groups:
            if _may_hold(mask, names.plain) or _may_hold(mask, names.fields):
                return True
            if _may_hold(mask, names.partners) and _may_hold(mask, self.hot):
                return True
        return False

    def matches(self, path: str, data: bytes, groups: tuple[_Names, ...]) -> bool:
        idents = frozenset(_IDENT_RE.findall(data))
        self.masks[path] = _mask(idents)
        hot: bool | None = None
        for names in groups:
            if not names.plain.isdisjoint(idents) or _calls_field(data, names.fields, idents):
                return True
            if not names.partners.isdisjoint(idents):
                if hot is None:
                    hot = not self.hot.isdisjoint(idents)
                if hot:
                    return True
        return False


@functools.cache
def _matching_salt() -> bytes:
    """Part of every negatives key: what a search for a name set means is this module's
    code (prefixes, the field-call pattern, the hot conjunction); a negative recorded by
    another version of it must not answer for this one."""
    return source_digest(__name__).encode("ascii")


def _callers_round(store: _Facts, scoped: list[str], rounds: _Rounds,
                   negatives: set[tuple[str, str]],
                   fresh_negatives: list[tuple[str, str]]) -> set[str]:
    """Unparsed files in scope that mention a name made visible to them since the last
    round: a funnel of their folder or its parent, of a header they include (transitively),
    an exported funnel, a call through a field that stores one, or a function of the
    driver in a file that registers a hot root."""
    candidates = [path for path in scoped
                  if (facts := store.by_path.get(path)) is not None and not facts.parsed
                  and facts.digest]
    folders, headers, everywhere = rounds.advance(
        _visible_wrappers(store), sorted({folder_of(p) for p in candidates}))
    includes = IncludeIndex(store.by_path)  # unparsed headers pass their includes on
    found: set[str] = set()
    for path in candidates:
        facts = store.by_path[path]
        through = includes.names_seen(path, facts.includes, headers) if headers else None
        groups = tuple(g for g in (folders[folder_of(path)], everywhere,
                                   rounds.names(through) if through else _NO_NAMES)
                       if g.key)
        if not groups:
            continue
        names_key = hashlib.sha1(_matching_salt() + b"".join(g.key for g in groups),
                                 usedforsecurity=False).hexdigest()
        if (facts.digest, names_key) in negatives:
            continue  # an earlier scan searched this very file for these very names
        if not rounds.may_match(path, groups):
            fresh_negatives.append((facts.digest, names_key))
            continue
        try:
            data = (store.root / path).read_bytes()
        except OSError:
            continue
        if rounds.matches(path, data, groups):
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
    scope_calls: Mapping[str, tuple[FileFacts, dict[int, ScopeCalls]]] = \
        dataclasses.field(default_factory=dict)

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
    first = store.add(fileset.files, progress=True)
    clock.lap("facts")
    if not options.direct_only:
        _more_files(store, fileset, first, clock)
    scoped = tuple(store.by_path[p] for p in fileset.files)
    problems = [*fileset.problems, *store.problems, *(p for f in scoped for p in f.problems)]
    return Gathered(fileset, dict(store.by_path), scoped, _stats(scoped, len(store.hit_paths)),
                    tuple(problems), store.scope_calls)


def _more_files(store: _Facts, fileset: FileSet, first: list[FileFacts],
                clock: Timings) -> None:
    """Context headers, then files in scope that call the wrappers found so far (rounds)."""
    scoped_set = set(fileset.files)
    _context_headers(store, first, scoped_set)
    _hot_headers(store, scoped_set)
    clock.lap("context headers")
    rounds = _Rounds(frozenset(store.rules.hot.registrations) | store.rules.hot.fields)
    cache = open_cache(store.options.cache_dir, store.rules.digest, store.spec)
    negatives = cache.negatives()
    fresh_negatives: list[tuple[str, str]] = []
    for _ in range(MAX_ROUNDS):
        extra = _callers_round(store, list(fileset.files), rounds, negatives,
                               fresh_negatives)
        clock.lap("wrapper callers")
        if not extra:
            break
        added = store.add(extra, force=frozenset(extra))
        _context_headers(store, added, scoped_set)
        _hot_headers(store, scoped_set)
        clock.lap("facts")
    cache.store_negatives(fresh_negatives)
    cache.close()
