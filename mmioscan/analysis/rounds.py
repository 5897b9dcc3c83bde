"""Which unparsed files the caller rounds parse (analysis/gather.py runs the rounds): the names
that make a file worth parsing after the rounds so far, per folder, header and the whole tree
(visible_names), and the search for them in a file's bytes, each round for the names new
since the last one (Rounds). docs/design.md, "Caller rounds", states the rules.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import posixpath
import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from mmioscan.analysis.approximate import CallerIndex, FunnelSearch, ScopeCallsMemo
from mmioscan.analysis.callgraph import folder_of
from mmioscan.analysis.fnptrs import FieldStores, FileFunctions, NameScopes
from mmioscan.analysis.wrappers import regmap_folders
from mmioscan.cfront.lexer import words
from mmioscan.cfront.prefilter import field_use_hashes, identifier_hashes, name_hashes
from mmioscan.core.model import FileFacts
from mmioscan.core.ruleset import RuleSet
from mmioscan.core.sources import source_digest

# Names in the visible sets below carry a prefix saying how a file must mention them:
# FIELD_CALL: called through a field (`p->read_reg(`, `p->ops.read_reg(`, `(*p->read_reg)(`);
# PARTNER: a function the file may reach, counted only in a file that also registers a hot
# root (a request_irq call, an `.ndo_start_xmit =`); HANDLER_FIELD: a field storing such a
# function, counted only as an argument of a registration call (`request_irq(irq,
# chip->interrupt, ...)`); PATH_FIELD: called through a field that stores a function reaching
# an access (`ipp->funcs->commit(`, nand_base.c's `chip->ecc.read_page(`): the file may be on
# the path from a root to that access; unprefixed: anywhere, as an identifier.
FIELD_CALL, PARTNER, HANDLER_FIELD, PATH_FIELD = ".", "&", "*", "^"
_PREFIXES = (FIELD_CALL, PARTNER, HANDLER_FIELD, PATH_FIELD)
# Scope names a parse error makes of a statement (`if (...) {` read as a definition)
_KEYWORDS = frozenset({"if", "for", "while", "switch", "return", "sizeof", "do", "else"})


@dataclass(slots=True)
class Visible:
    """Names that make an unparsed file worth parsing (prefixed as FIELD_CALL, PARTNER,
    HANDLER_FIELD and PATH_FIELD say): seen from a folder (and from its subfolders), from the files
    including a header, and from everywhere."""

    by_folder: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    by_header: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    everywhere: set[str] = dataclasses.field(default_factory=set)
    # non-static functions of a folder's .c files: seen from the folders above it and below
    # it, as the call graph resolves them (same_subtree: atomisp's pci/runtime/debug/src
    # calls a function of pci/)
    by_subtree: dict[str, set[str]] = dataclasses.field(default_factory=dict)

    _below: dict[str, set[str]] | None = None  # by_subtree names of the folders under each

    def in_subtree(self, folder: str) -> set[str]:
        """The by_subtree names a file of folder sees (its folder, those above and below)."""
        if self._below is None:
            self._below = {}
            for other, names in self.by_subtree.items():
                for above in _ancestors(other):
                    self._below.setdefault(above, set()).update(names)
        seen = set(self._below.get(folder, ()))
        for above in (folder, *_ancestors(folder)):
            seen |= self.by_subtree.get(above, set())
        return seen


def _ancestors(folder: str) -> Iterator[str]:
    """drivers/a/b -> drivers/a, drivers (same_subtree's folders above)."""
    while "/" in folder:
        folder = folder_of(folder)
        yield folder


@dataclass(slots=True)
class RoundsMemo:
    """What visible_names keeps from round to round: each file's scope calls (the call
    graph reuses them) and the caller index over the parsed files."""

    scope_calls: ScopeCallsMemo = dataclasses.field(default_factory=dict)
    index: CallerIndex | None = None
    functions: FileFunctions | None = None  # what the files may store as functions
    funnels: FunnelSearch | None = None  # the funnel search, going on from the last round
    # whether each file makes a map that may be MMIO (wrappers.regmap_folders), by the facts
    # object it was asked of
    makes_maps: dict[str, tuple[FileFacts, bool]] = dataclasses.field(default_factory=dict)


def visible_names(by_path: Mapping[str, FileFacts], rules: RuleSet,
                  memo: RoundsMemo) -> Visible:
    """The names each unparsed file should be searched for, after the rounds so far."""
    parsed = {p: f for p, f in by_path.items() if f.parsed}
    visible = Visible()
    by_folder, by_header = visible.by_folder, visible.by_header
    leaves = rules.catalogue.names()
    addr_args = {n: a.addr_arg for n, a in rules.catalogue.accessors.items()}
    funnels: set[str] = set()
    if memo.functions is None:
        memo.functions = FileFunctions(leaves)
    stores = FieldStores(parsed, leaves, memo.functions)
    if memo.index is None:
        memo.index = CallerIndex(leaves, rules.wrappers.max_function_lines,
                                 rules.wrappers.max_funnel_lines)
    index = memo.index.update(parsed)
    if memo.funnels is None:
        memo.funnels = FunnelSearch(leaves, addr_args, memo.scope_calls, memo.index)
    for path, scope in memo.funnels.run(parsed, stores):
        funnels.add(scope.name)
        if path.endswith(".h"):
            by_header.setdefault(path, set()).add(scope.name)
            # also where the call graph looks when an include is not seen (a .c file
            # #included by another, like ehci-q.c): headers of the same or the parent folder
            by_folder.setdefault(posixpath.dirname(path), set()).add(scope.name)
        elif scope.static or scope.kind != "function":
            continue  # static functions and macros of a .c file are seen only in that file
        elif scope.name in by_path[path].exports:
            visible.everywhere.add(scope.name)  # EXPORT_SYMBOL: any driver may call it
        else:
            visible.by_subtree.setdefault(posixpath.dirname(path), set()).add(scope.name)
    _field_calls(stores, funnels | leaves, visible)
    for folder in regmap_folders(_map_makers(parsed, rules, memo), rules.regmap):
        by_folder.setdefault(folder, set()).update(rules.regmap.api,
                                                   rules.regmap.bus)
    _hot_partners(parsed, stores, funnels | leaves | frozenset(rules.regmap.api),
                  visible, index)
    return visible


def _map_makers(parsed: Mapping[str, FileFacts], rules: RuleSet, memo: RoundsMemo
                ) -> list[FileFacts]:
    """The parsed files regmap_folders would find a map maker in, each asked once."""
    found = []
    for path, facts in parsed.items():
        known = memo.makes_maps.get(path)
        if known is None or known[0] is not facts:
            known = memo.makes_maps[path] = (facts, bool(regmap_folders((facts,), rules.regmap)))
        if known[1]:
            found.append(facts)
    return found


def _hot_partners(parsed: Mapping[str, FileFacts], stores: FieldStores, accessing: set[str],
                  visible: Visible, index: CallerIndex) -> None:
    """A file registering an interrupt handler (request_irq, .ndo_start_xmit = ...) is parsed
    when it also names a function of the driver that reaches an access (_Reaching): its
    handler may be that function, or call it. Static ones count in their folder too (sonic.c
    is #included by jazzsonic.c, which registers its handlers). A handler stored in a field
    the file registers through (`request_irq(irq, chip->handler, ...)`) counts by the
    field's name, in the storing folder."""
    reaching = _Reaching(parsed, stores, accessing, index)
    _path_fields(parsed, stores, reaching, visible)
    for path, facts in parsed.items():
        names = {facts.scopes[i].name for i in reaching.by_path[path]} - _KEYWORDS
        fields = {HANDLER_FIELD + field for _s, field, fn, _l in facts.fnptrs if fn in names}
        partners = {PARTNER + name for name in names}
        if path.endswith(".h"):
            if not path.startswith(("include/", "arch/")):  # a driver's own header
                visible.by_header.setdefault(path, set()).update(partners)
            partners = set()
        if fields or partners:
            visible.by_folder.setdefault(folder_of(path), set()).update(fields | partners)


# Where a driver's own ops fields make path fields (not arch/ or mm/: see _path_fields)
_DRIVER_TREES = ("drivers/", "sound/")


def _path_fields(parsed: Mapping[str, FileFacts], stores: FieldStores, reaching: _Reaching,
                 visible: Visible) -> None:
    """A field a driver with hot roots stores a function reaching an access into
    (`.commit = fimc_commit` in exynos_drm_fimc.c, which registers its interrupt handler):
    a file of the storing folder calling through the field (exynos_drm_ipp.c's
    `ipp->funcs->commit(...)`, called from that handler) may be on the path from the root
    back to the access, and an unparsed file there breaks the chain. Only calls count, only
    in the storing folder, and only for a storing file with roots: by field name alone
    (`.probe`, `.init`, `.read` store a function making an access in most drivers) a
    sixth of the tree's unparsed files called one, and the bus and arch code they brought
    in made `ioremap` and `vmalloc` look like funnels by name. Drivers only (drivers/,
    sound/): an architecture's or the core's own ops (arch/arm/mm, mm/) brought in the
    other architectures' definitions of the mm API, which by name then stood for all."""
    for path, _struct, field, function in stores.kept:
        if (path.startswith(_DRIVER_TREES) and parsed[path].roots
                and reaching.seen(path, function)):
            visible.by_folder.setdefault(folder_of(path), set()).add(PATH_FIELD + field)

# How many calls deep a handler may reach its first access and still bring its
# registration in: t7xx's NAPI poll reaches the doorbell three calls down.
MAX_REACH_DEPTH = 4


class _Reaching:
    """The functions (and macros) of the parsed files that reach an access within
    MAX_REACH_DEPTH calls, resolved by name as the call graph would: a function of the same
    file, a non-static one of the driver's subtree, one of a header or exported; and
    through a field storing such a function (atlantic's legacy ISR reads its status through
    `self->aq_hw_ops->hw_irq_read`)."""

    def __init__(self, parsed: Mapping[str, FileFacts], stores: FieldStores,
                 accessing: set[str], index: CallerIndex) -> None:
        self.by_path = _makers(parsed, accessing, index)
        self._names = NameScopes(accessing)  # the names known to reach an access
        callers = index.calling  # callee name -> (path, scope), over the parsed files
        # the callers of `accessing` itself are makers already: only the makers' own names
        # can bring new scopes in
        learned = self._learn(parsed, self.by_path)
        calling_through = [(p, f) for p, f in parsed.items() if f.indirect]
        for _depth in range(MAX_REACH_DEPTH):
            through = _AccessFields(stores, frozenset(self._names.names()))
            fresh: dict[str, set[int]] = {}
            for path, i in {c for name in learned for c in callers.get(name, ())}:
                if i not in self.by_path[path] and any(
                        self._names.seen(path, c) for c in parsed[path].scopes[i].callees):
                    fresh.setdefault(path, set()).add(i)
            for path, facts in calling_through:
                found = through.callers(path, facts) - self.by_path[path]
                if found:
                    fresh.setdefault(path, set()).update(found)
            for path, found in fresh.items():
                self.by_path[path] |= found
            learned = self._learn(parsed, fresh)
            if not learned:
                break

    def seen(self, path: str, name: str) -> bool:
        """Does name, as a file of path would resolve it, reach an access?"""
        return self._names.seen(path, name)

    def _learn(self, parsed: Mapping[str, FileFacts], fresh: Mapping[str, set[int]]
               ) -> set[str]:
        """Record the names of the fresh scopes as reaching; returns them."""
        names: set[str] = set()
        for path, scopes in fresh.items():
            facts = parsed[path]
            for i in scopes:
                scope = facts.scopes[i]
                names.add(scope.name)
                self._names.add(path, scope.name, scope.static, scope.name in facts.exports)
        return names


def _makers(parsed: Mapping[str, FileFacts], accessing: set[str], index: CallerIndex
            ) -> dict[str, set[int]]:
    """Per parsed file, its functions and macros that make an access: an accessor, funnel
    or regmap call, or a dereference, in their own body (a macro writing a fixed register
    makes one in every function using it). Read off the caller index (the names' callers
    and users), not by testing every scope of every file each round."""
    found: dict[str, set[int]] = {
        path: {d[2] for d in facts.derefs if 0 <= d[2] < len(facts.scopes)}
        for path, facts in parsed.items()}
    for table in (index.calling, index.valuing):
        for name in accessing:
            for path, i in table.get(name, ()):
                scopes = found.get(path)
                if scopes is not None:
                    scopes.add(i)
    return found


class _AccessFields:
    """Which functions of a file call through a field that may hold a function making an
    access (an interrupt handler reading its status through `self->hw_ops->irq_read(...)`
    makes one)."""

    def __init__(self, stores: FieldStores, accessing: frozenset[str]) -> None:
        self._stores = stores
        self._accessing = accessing
        self._known: dict[tuple[str, str, str], bool] = {}

    def callers(self, path: str, facts: FileFacts) -> set[int]:
        found: set[int] = set()
        folder = folder_of(path)
        for field, struct, _line, _column, scope in facts.indirect:
            if scope < 0 or scope in found:
                continue
            key = (folder, field, struct)
            holds = self._known.get(key)
            if holds is None:
                holds = self._known[key] = any(
                    fn in self._accessing for _w, fn in self._stores.stores(*key))
            if holds:
                found.add(scope)
        return found


def _field_calls(stores: FieldStores, funnels: set[str] | frozenset[str],
                 visible: Visible) -> None:
    """A field storing funnels (`gc->read_reg = bgpio_read32`): files calling through it
    (`gc->read_reg(...)`) make wrapper sites, accessor or not in sight. Only a call through
    the field counts (a bare `read` is in most files), and only a field that stores nothing
    but funnels: a call through one that may hold another function is no funnel call for
    the call graph either (`.read` stores funnels in a few drivers and plain functions in
    hundreds). Looked for in the storing folder and its subfolders (the call graph resolves
    an untyped call by name among the stores of the caller's folder); a field of a known struct that
    stores only funnels anywhere (`->ndo_fcoe_ddp_setup` of net_device_ops, called from
    drivers/scsi) in every file. The stores are those the call graph sees (FieldStores: a
    local stored into a field, `p->start = start`, is none)."""
    stores_by_folder: dict[str, dict[str, bool]] = {}  # folder -> field -> only funnels
    typed: set[str] = set()
    mixed: set[str] = set()
    for path, struct, field, fn in stores.kept:
        fields = stores_by_folder.setdefault(folder_of(path), {})
        only = fn in funnels
        fields[field] = fields.get(field, True) and only
        if not only:
            mixed.add(field)
        elif struct:
            typed.add(field)
    for folder, fields in stores_by_folder.items():
        for field, only in fields.items():
            if only:
                visible.by_folder.setdefault(folder, set()).add(FIELD_CALL + field)
    visible.everywhere.update(FIELD_CALL + field for field in typed - mixed)


@dataclass(frozen=True, slots=True)
class Names:
    """A set of visible names split by how a file must mention them, as bytes."""

    plain: frozenset[bytes]
    fields: frozenset[bytes]
    partners: frozenset[bytes]
    handler_fields: frozenset[bytes]
    path_fields: frozenset[bytes]
    key: bytes  # a digest of the names (the negatives cache remembers files by it)
    # identifier hashes (prefilter.name_hashes) of the names a file may match by: plain
    # names (among its identifiers); fields and path fields (among the names it calls or
    # stores through a member access); partners; handler fields
    mentioned: frozenset[int] = frozenset()
    field_hashes: frozenset[int] = frozenset()
    partner_hashes: frozenset[int] = frozenset()
    handler_hashes: frozenset[int] = frozenset()


NO_NAMES = Names(frozenset(), frozenset(), frozenset(), frozenset(), frozenset(), b"")


def _split(names: frozenset[str]) -> Names:
    if not names:
        return NO_NAMES
    groups: dict[str, set[bytes]] = {"": set(), **{p: set() for p in _PREFIXES}}
    encoded = sorted(n.encode("utf-8", "surrogateescape") for n in names)
    for name in encoded:
        prefix = name[:1].decode() if name[:1].decode() in _PREFIXES else ""
        groups[prefix].add(name[len(prefix):])
    key = hashlib.sha1(b"\0".join(encoded), usedforsecurity=False).digest()
    return Names(frozenset(groups[""]), frozenset(groups[FIELD_CALL]),
                 frozenset(groups[PARTNER]), frozenset(groups[HANDLER_FIELD]),
                 frozenset(groups[PATH_FIELD]), key,
                 name_hashes(groups[""]), name_hashes(groups[FIELD_CALL] | groups[PATH_FIELD]),
                 name_hashes(groups[PARTNER]), name_hashes(groups[HANDLER_FIELD]))


def _calls_field(data: bytes, fields: frozenset[bytes], idents: frozenset[bytes],
                 stores: bool = True) -> bool:
    """Does data call through one of the fields (`->f(`, `.f(`, `->f)(` of `(*p->f)(`) or,
    with stores, store into it (`.f = fn`, `p->f = fn`)? A store of another function there
    makes the calls through a funnel field no funnel calls: the file must be read to know."""
    return any(_field_pattern(field, stores).search(data) is not None
               for field in sorted(fields & idents))


@functools.lru_cache(maxsize=65536)
def _field_pattern(field: bytes, stores: bool) -> re.Pattern[bytes]:
    """One pattern per field, compiled once: a pattern of the alternatives a file names
    was compiled anew for nearly every file (a tenth of a warm whole-tree round)."""
    after = rb"(?:\)?\s*\(|=(?!=))" if stores else rb"\)?\s*\("
    return re.compile(rb"(?:->|\.)\s*" + re.escape(field) + rb"\s*" + after)


def _registers_field(data: bytes, calls: frozenset[bytes], fields: frozenset[bytes],
                     idents: frozenset[bytes]) -> bool:
    """Does data pass one of the fields to a registration call (`request_irq(irq,
    chip->handler, ...)`), within the call's statement?"""
    named, registering = fields & idents, calls & idents
    return any(_registration_pattern(call, field).search(data) is not None
               for call in sorted(registering) for field in sorted(named))


@functools.lru_cache(maxsize=65536)
def _registration_pattern(call: bytes, field: bytes) -> re.Pattern[bytes]:
    return re.compile(rb"\b" + re.escape(call) + rb"\s*\([^;]{0,400}?(?:->|\.)\s*"
                      + re.escape(field) + rb"\b")


# A name set this small is looked up name by name (bisect); a larger one scans the file's
# hashes once
_FEW = 64


def _hits(hashes: Sequence[int], wanted: frozenset[int]) -> bool:
    """May the file with these identifier hashes mention one of the wanted names?"""
    if len(wanted) > _FEW:
        return not wanted.isdisjoint(hashes)
    size = len(hashes)
    for h in wanted:
        at = bisect_left(hashes, h)
        if at < size and hashes[at] == h:
            return True
    return False


class Rounds:
    """The caller rounds' memory: which names every folder, header and the whole tree made
    visible in the rounds before, so that a round searches the unparsed files only for the
    names that are new (a file searched for a name once does not mention it: its content
    has not changed), and the identifier hashes of each file read, so that a later round
    reads again only the files that may mention a new name. A name new to a header
    may be one a file saw through another header before: searched twice, found the same."""

    def __init__(self, hot: frozenset[str], calls: frozenset[str] = frozenset()) -> None:
        self.hot = frozenset(n.encode("utf-8") for n in hot)
        self.calls = frozenset(n.encode("utf-8") for n in calls)  # registration calls
        self._hot_hashes, self._call_hashes = name_hashes(self.hot), name_hashes(self.calls)
        self.folders: dict[str, frozenset[str]] = {}
        self.headers: dict[str, frozenset[str]] = {}
        self.everywhere: frozenset[str] = frozenset()
        # identifier and field-use hashes of each file read here (prefilter), for a file
        # whose facts carry none (too large to parse, over its CPU budget, or no identifier)
        self.idents: dict[str, tuple[Sequence[int], Sequence[int]]] = {}
        self._split: dict[frozenset[str], Names] = {}

    def names(self, names: frozenset[str]) -> Names:
        found = self._split.get(names)
        if found is None:
            found = self._split[names] = _split(names)
        return found

    def advance(self, visible: Visible, folders: Iterable[str]
                ) -> tuple[dict[str, Names], dict[str, frozenset[str]], Names]:
        """The names new since the last round: per folder of a candidate (its own and its
        parent's), per header, and everywhere."""
        self._split.clear()  # last round's sets are not asked for again
        new_folders: dict[str, Names] = {}
        for folder in folders:
            now = frozenset(visible.by_folder.get(folder, set())
                            | visible.by_folder.get(folder_of(folder), set())
                            | visible.in_subtree(folder))
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

    def may_match(self, path: str, groups: tuple[Names, ...], identifiers: bytes = b"",
                  field_uses: bytes = b"") -> bool:
        """False when the file's identifiers and field uses (hashed by the prefilter, or
        here when a round read the file) rule every name out."""
        known = self.idents.get(path)
        if known is not None:
            hashes, uses = known
        elif not identifiers:
            return True
        else:
            hashes, uses = memoryview(identifiers).cast("I"), memoryview(field_uses).cast("I")
        for names in groups:
            if _hits(hashes, names.mentioned) or _hits(uses, names.field_hashes):
                return True
            if _hits(hashes, names.partner_hashes) and _hits(hashes, self._hot_hashes):
                return True
            if _hits(hashes, names.handler_hashes) and _hits(hashes, self._call_hashes):
                return True
        return False

    def matches(self, path: str, data: bytes, groups: tuple[Names, ...],
                hashed: bool = False) -> bool:
        """Does the file (data) mention one of the names as the groups' prefixes ask?
        hashed: its facts carry its identifier hashes (else they are kept here)."""
        found = words(data)
        idents = frozenset(found)
        if not hashed and path not in self.idents:
            self.idents[path] = (memoryview(identifier_hashes(found)).cast("I"),
                                 memoryview(field_use_hashes(data)).cast("I"))
        hot: bool | None = None
        for names in groups:
            if not names.plain.isdisjoint(idents) or _calls_field(data, names.fields, idents):
                return True
            if _calls_field(data, names.path_fields, idents, stores=False):
                return True
            if not names.partners.isdisjoint(idents):
                if hot is None:
                    hot = not self.hot.isdisjoint(idents)
                if hot:
                    return True
            if _registers_field(data, self.calls, names.handler_fields, idents):
                return True
        return False


@functools.cache
def matching_salt() -> bytes:
    """Part of every negatives key: what a search for a name set means is this module's
    code (prefixes, the field-call pattern, the hot conjunction); a negative recorded by
    another version of it must not answer for this one."""
    return source_digest(__name__).encode("ascii")
