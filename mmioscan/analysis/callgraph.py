"""All facts of a scan -> the call graph: funnels (wrappers), via-chains and hot paths.

Nodes are definitions (functions and function-like or object-like macros) keyed
`path:name`, so two static functions of the same name in different files stay apart, and
catalogued accessors keyed by their bare name. A call of NAME from a file resolves, in order,
to: the accessor NAME; a definition in the same file; one in a header the file includes
(transitively, through every file read, parsed or not: an include chain may pass through a
header that mentions no accessor), unless it is a static function and the caller's folder
tree defines a non-static one of that name (the header's is the `#else` stub); a non-static
function of that name in the caller's folder, a folder above it or below it (the nearest
wins); a definition in a header of the same or the parent folder (when the include could not
be resolved); an exported (EXPORT_SYMBOL*) function elsewhere (the nearest folder wins).
Another driver's definition that is neither included nor exported is never chosen: a driver's
sites do not depend on what else is scanned.

A wrapper (a funnel) is a definition through whose parameters its callers select the register
an access uses (analysis/dataflow.py, rules/wrappers.toml): found by a reverse breadth-first
search from the accessors that only ever looks at callers of names already known to be
funnels, to a fixpoint. The networkx DiGraph holds that subgraph (funnels, accessors and the
edges between them), not the whole program.

A call through a function-pointer field (`p->ops->f(...)`, cfront/fnptrs.py) stands for a
call of each function stored into that field (`indirect_targets`): by struct type when the
type of the call's object and of some store are both known, else by field name among the
stores of the caller's folder. It makes its caller a funnel once every candidate is one (a
field that may also hold a function reaching no accessor selects nothing), and it is a wrapper
site then (analysis/wrappers.py); hot reach follows it to every candidate, up to HOT_FANOUT,
and a call resolved by field name only from roots of its folder or above (callees_of).
"""

from __future__ import annotations

import posixpath
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import networkx as nx

from mmioscan.analysis.dataflow import (
    ANY,
    ScopeCalls,
    add_counts,
    file_scope_calls,
    indirect_name,
    selected,
)
from mmioscan.analysis.fnptrs import HOT_FANOUT, FieldStores, IndirectCall, alternatives
from mmioscan.analysis.includes import IncludeIndex
from mmioscan.cfront.includes import INCLUDE_DIRS, folder_of, include_candidates, same_subtree
from mmioscan.core.model import FileFacts
from mmioscan.kernel.includepaths import IncludePaths

__all__ = ["INCLUDE_DIRS", "CallGraph", "IncludeIndex", "folder_of", "include_candidates"]

class Definition(NamedTuple):
    key: str
    name: str
    path: str
    line: int
    end_line: int
    kind: str  # function | macro | object-macro
    static: bool


class Definitions(Mapping[str, Definition]):
    """The graph's definitions by node key, read off the facts' scopes when asked: a copy
    of each of the 477,000 definitions of a whole-tree run was 100 MB."""

    def __init__(self, files: Mapping[str, FileFacts], scope_of: Mapping[str, tuple[str, int]]
                 ) -> None:
        self._files = files
        self._scope_of = scope_of

    def __getitem__(self, key: str) -> Definition:
        path, i = self._scope_of[key]
        scope = self._files[path].scopes[i]
        return Definition(key, scope.name, path, scope.line, scope.end_line, scope.kind,
                          scope.static)

    def __contains__(self, key: object) -> bool:
        return key in self._scope_of

    def __iter__(self) -> Iterator[str]:
        return iter(self._scope_of)

    def __len__(self) -> int:
        return len(self._scope_of)



@dataclass(frozen=True, slots=True)
class Reach:
    """What a wrapper reaches: the nearest accessor and its chain, and every accessor."""

    accessor: str
    via: tuple[str, ...]  # names from the wrapper to the accessor, both included
    via_keys: tuple[str, ...]  # the same chain as node keys
    accessors: tuple[str, ...]  # every accessor reachable, sorted
    # Accesses one call makes, per accessor (sorted); None: not known (a loop, a value)
    counts: tuple[tuple[str, int | None], ...] = ()




def _self_and_above(folder: str) -> Iterator[str]:
    """drivers/a/b, drivers/a, drivers (not the tree's top, "")."""
    while folder:
        yield folder
        folder = posixpath.dirname(folder)


def _at_or_below(folder: str, home: str | None) -> bool:
    return home is not None and (folder == home or folder.startswith(home + "/"))


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.split("/"), b.split("/"), strict=False):
        if x != y:
            break
        n += 1
    return n


class CallGraph:
    """Definitions, name resolution, wrappers and hot nodes over all facts of a scan."""

    def __init__(self, facts: Iterable[FileFacts], accessors: Mapping[str, object],
                 extra_leaves: Iterable[str] = (), max_function_lines: int = 15,
                 max_funnel_lines: int = 400,
                 scope_calls: Mapping[str, tuple[FileFacts, Mapping[int, ScopeCalls]]]
                 | None = None, include_paths: IncludePaths | None = None) -> None:
        self.max_function_lines = max_function_lines
        self.max_funnel_lines = max_funnel_lines
        every = {f.path: f for f in facts}
        self.files = {p: f for p, f in every.items() if f.parsed}
        # The address argument of each accessor (rules/accessors.toml addr_arg); other leaves
        # (regmap API) have none known: every argument counts.
        self._addr_arg = {name: getattr(acc, "addr_arg", ANY) for name, acc in accessors.items()}
        # Accessors end every chain; extra leaves (regmap API) may be added as sinks too.
        self.leaves = frozenset(accessors) | frozenset(extra_leaves)
        self._scope_of: dict[str, tuple[str, int]] = {}  # node key -> (path, scope index)
        self.definitions = Definitions(self.files, self._scope_of)
        self._local: dict[str, dict[str, str]] = {}
        self._header_defs: dict[str, list[str]] = {}  # name -> files defining it
        self._globals: dict[str, list[str]] = {}
        self._headers_by_dir: dict[str, dict[str, str]] = {}
        self._exported: set[tuple[str, str]] = {
            (p, name) for p, f in self.files.items() for name in f.exports}
        self._index()
        # Includes through every file read: a header that mentions no accessor is not parsed
        # but still carries its own #include lines.
        self.include_index = IncludeIndex(every, include_paths)
        # Scope calls the facts stage already derived (its caller rounds), for the same facts
        # objects: deriving them again was a tenth of a warm folder scan.
        self._scope_calls: dict[str, Mapping[int, ScopeCalls]] = {
            path: calls for path, (known, calls) in (scope_calls or {}).items()
            if self.files.get(path) is known}
        self._selects: dict[str, frozenset[int]] = {}
        self._resolved: dict[tuple[str, str], str | None] = {}
        self._index_fnptrs()
        self.reach: dict[str, Reach] = {}
        self._wrapper_names: frozenset[str] | None = None
        self.graph: nx.DiGraph = nx.DiGraph()
        self._reached: dict[str, frozenset[str]] = {}  # leaves each node reaches, helpers too
        self._find_wrappers()

    # -- index -----------------------------------------------------------------------------

    def _index(self) -> None:
        for path in sorted(self.files):
            local: dict[str, str] = {}
            is_header = path.endswith(".h")
            for i, scope in enumerate(self.files[path].scopes):
                if scope.name in self.leaves:
                    continue  # `static inline u32 readl(...)` is the accessor itself
                if scope.kind == "object-macro" and not scope.callees and not scope.values:
                    continue  # a constant (`#define REG_CTRL 0x10`): never called, reaches nothing
                key = f"{path}:{scope.name}"
                if key in self._scope_of:
                    continue  # the first definition in a file wins (#ifdef alternatives)
                self._scope_of[key] = (path, i)
                local[scope.name] = key
                if scope.kind == "function" and not scope.static and not is_header:
                    self._globals.setdefault(scope.name, []).append(key)
                if is_header:
                    self._headers_by_dir.setdefault(posixpath.dirname(path), {}).setdefault(
                        scope.name, key)
            self._local[path] = local
            for name in local:  # who defines a name, for resolution through includes
                self._header_defs.setdefault(name, []).append(path)

    def resolve(self, path: str, name: str) -> str | None:
        """The node a call of name from path reaches, or None when it is outside the graph."""
        memo = (path, name)
        if memo in self._resolved:
            return self._resolved[memo]
        key = self._resolve(path, name)
        self._resolved[memo] = key
        return key

    def _resolve(self, path: str, name: str) -> str | None:
        if name in self.leaves:
            return name
        local = self._local.get(path, {})
        if name in local:
            return local[name]
        candidates = self._globals.get(name, ())
        folder = posixpath.dirname(path)
        near = [k for k in candidates if same_subtree(posixpath.dirname(k), folder)]
        defining = self._header_defs.get(name, ())
        if near:  # a header's static stub loses to the driver's own function (_stub)
            defining = [h for h in defining if not self._stub(self._local[h][name])]
        header = self.include_index.first_of(path, defining)
        if header is not None:
            return self._local[header][name]
        if near:
            return max(near, key=lambda k: (_common_prefix(k, path), k))
        for directory in (folder, posixpath.dirname(folder)):
            found = self._headers_by_dir.get(directory, {}).get(name)
            if found is not None:
                return found
        exported = [k for k in candidates if (self.definitions[k].path, name) in self._exported]
        if exported:
            return max(exported, key=lambda k: (_common_prefix(k, path), k))
        return None

    # -- calls through function-pointer fields ------------------------------------------------

    def _index_fnptrs(self) -> None:
        """Every call through a field of a parsed file with its candidates (the callers'
        side of the fixpoint)."""
        self._stores = FieldStores(self.files, self.leaves)
        self._targets: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self._indirect: dict[str, list[IndirectCall]] = {}
        self._indirect_named: dict[tuple[str, str], IndirectCall] = {}
        self._indirect_by_target: dict[str, list[IndirectCall]] = {}
        guessed: set[str] = set()  # folders of by-name calls hot reach may follow
        for path in sorted(self.files):
            for field, struct, line, column, scope in self.files[path].indirect:
                if scope < 0:
                    continue
                key = self.key_of(path, scope)
                if self._scope_of.get(key) != (path, scope):
                    continue  # a second definition of the name in the file: not in the graph
                targets = tuple(t for t in self.indirect_targets(path, field, struct) if t != key)
                if not targets:
                    continue
                guessed_targets = () if self._stores.by_type(field, struct) else tuple(
                    t for t in targets if t not in self._stored_by(path, field, struct))
                call = IndirectCall(key, indirect_name(field, line, column), targets,
                                    guessed_targets)
                self._indirect.setdefault(key, []).append(call)
                self._indirect_named[(key, call.name)] = call
                for target in targets:
                    self._indirect_by_target.setdefault(target, []).append(call)
                if call.guessed and len(targets) <= HOT_FANOUT:
                    guessed.add(folder_of(path))
        # Every folder holding one, and the folders above: the root homes that matter
        self._guess_homes = frozenset(
            f for g in guessed for f in _self_and_above(g))

    def indirect_targets(self, path: str, field: str, struct: str = "") -> tuple[str, ...]:
        """The functions (node keys, sorted) a call through `field` from path may reach
        (analysis/fnptrs.py FieldStores.stores), resolved from where they were stored."""
        memo = (folder_of(path), field, struct)
        found = self._targets.get(memo)
        if found is None:
            keys = set()
            for where, function in self._stores.stores(memo[0], field, struct):
                key = self.resolve(where, function)
                if key is not None and (key in self.leaves
                                        or self.definitions[key].kind == "function"):
                    keys.add(key)
            found = self._targets[memo] = tuple(sorted(keys))
        return found

    def _stored_by(self, path: str, field: str, struct: str) -> set[str]:
        """The candidates of a call through `field` from path that path itself stores."""
        keys = set()
        for where, function in self._stores.stores(folder_of(path), field, struct):
            if where == path and (key := self.resolve(where, function)) is not None:
                keys.add(key)
        return keys

    def root_keys(self, path: str, name: str) -> tuple[str, ...]:
        """The definitions a hot-path root names: a function, or a field a registration read
        the callback from (`struct T->field`, `->field`: cfront/fnptrs.py), expanded into the
        functions stored there."""
        if "->" in name:
            struct, field = name.split("->", 1)
            targets = self.indirect_targets(path, field, struct)
            if len(targets) > HOT_FANOUT:
                return ()  # a framework registering whatever its users stored
            return tuple(k for k in targets if k in self.definitions)
        key = self.resolve(path, name)
        return (key,) if key is not None and key in self.definitions else ()

    def _leaf_or_reach(self, key: str) -> Reach | None:
        if key in self.leaves:
            return Reach(key, (key,), (key,), (key,), ((key, 1),))
        return self.reach.get(key)

    def indirect_reach(self, path: str, field: str, struct: str
                       ) -> tuple[Reach | None, tuple[str, ...]]:
        """What a call through a field reaches, when every candidate is a funnel (or an
        accessor): the first candidate's chain behind the field, every accessor, the counts
        the candidates agree on; and the candidates' names. None with names: a mix of
        funnels and other functions; None without: no funnel among them."""
        targets = self.indirect_targets(path, field, struct)
        reaches = [self._leaf_or_reach(t) for t in targets]
        names = tuple(sorted({self._name(t) for t in targets}))
        known = [r for r in reaches if r is not None]
        if not known:
            return None, ()
        if len(known) < len(reaches):
            return None, names
        first = known[0]
        callee = "->" + field
        return Reach(first.accessor, (callee, *first.via), first.via_keys,
                     tuple(sorted({a for r in known for a in r.accessors})),
                     alternatives(r.counts for r in known)), names

    def _stub(self, key: str) -> bool:
        """A static function of a header: when the driver also defines a non-static function
        of that name, the header's is the other branch of an #if (the `#else` stub of
        `#if IS_ENABLED(CONFIG_X)`: both cannot be in one build), and the real one wins."""
        definition = self.definitions[key]
        return definition.static and definition.kind == "function"

    def key_of(self, path: str, index: int) -> str:
        """The node key of scope `index` of path (also for duplicate definitions)."""
        return f"{path}:{self.files[path].scopes[index].name}"

    def hot_home(self, path: str) -> str | None:
        """The home of a root registered in path, for callees_of: its folder, or None when
        no by-name call with a guessed candidate lies in or below that folder (then the home
        changes nothing, and roots of such folders share one breadth-first state)."""
        folder = folder_of(path)
        return folder if folder in self._guess_homes else None

    def callees_of(self, key: str, home: str | None) -> Iterator[str]:
        """The definitions a definition's calls resolve to on a hot path from a root whose
        home is `home` (hot_home; analysis/hotpaths.py). A call through a field runs one of
        the functions stored there, any of them; a field holding more than HOT_FANOUT is a
        framework's hook, whose candidates are every driver's: not followed. A call resolved
        by field name guesses that its folder is one driver: its `guessed` candidates (stored
        by other files of the folder) are followed only when the root's home is that folder
        or above it (the driver's own roots, or a core's root calling into the drivers it
        hosts); what the calling file stored itself (a core's own default,
        i2c_generic_scl_recovery in `bri->recover_bus`) from every root. Another driver that
        called into a core folder would reach the callbacks of whatever drivers that folder
        hosts, not its own object's."""
        path, i = self._scope_of[key]
        for callee in self.files[path].scopes[i].callees:
            target = self.resolve(path, callee)
            if target is not None and target in self.definitions:
                yield target
        for call in self._indirect.get(key, ()):
            if len(call.targets) > HOT_FANOUT:
                continue
            near = not call.guessed or _at_or_below(folder_of(path), home)
            yield from (t for t in call.targets if t in self.definitions
                        and (near or t not in call.guessed))

    # -- wrappers ----------------------------------------------------------------------------

    def _callers_by_name(self) -> dict[str, list[tuple[str, str]]]:
        """name -> (caller path, caller key) for every scope that calls or uses the name."""
        index: dict[str, list[tuple[str, str]]] = {}
        for key, (path, i) in self._scope_of.items():
            scope = self.files[path].scopes[i]
            for name in (*scope.callees, *scope.values):
                index.setdefault(name, []).append((path, key))
        return index

    def _calls_of(self, key: str) -> ScopeCalls:
        path, i = self._scope_of[key]
        calls = self._scope_calls.get(path)
        if calls is None:
            calls = self._scope_calls[path] = file_scope_calls(self.files[path])
        return calls[i]

    def _positions(self, target: str) -> frozenset[int]:
        """The argument positions of target through which a caller selects a register."""
        if target in self.leaves:
            return frozenset((self._addr_arg.get(target, ANY),))
        return self._selects.get(target, frozenset())

    def _find_wrappers(self) -> None:
        """The funnel fixpoint: a caller gains the parameters it passes into a selecting
        position of an accessor or a funnel it calls; it is a funnel once it has one."""
        callers = self._callers_by_name()
        next_hop: dict[str, str] = {}
        queue = deque(sorted(self.leaves))
        queued = set(queue)
        edges: set[tuple[str, str]] = set()
        while queue:
            target = queue.popleft()
            queued.discard(target)
            name = target if target in self.leaves else self.definitions[target].name
            positions = self._positions(target)
            for path, caller in callers.get(name, ()):
                if caller == target or not self._may_wrap(caller):
                    continue
                if self.resolve(path, name) != target:
                    continue
                edges.add((caller, target))
                gained = selected(self._calls_of(caller), name, positions,
                                  self._is_macro(target))
                if self._gain(caller, gained, target, next_hop) and caller not in queued:
                    queued.add(caller)
                    queue.append(caller)
            for call in self._indirect_by_target.get(target, ()):
                if self._through_field(call, edges, next_hop) and call.caller not in queued:
                    queued.add(call.caller)
                    queue.append(call.caller)
        relevant = set(self.leaves) | set(next_hop)
        self.graph.add_nodes_from(sorted(relevant))
        self.graph.add_edges_from(sorted((a, b) for a, b in edges
                                         if a in next_hop and b in relevant))
        helper_edges = self._helper_edges(next_hop)
        helpers = frozenset(k for edge in helper_edges for k in edge) - set(next_hop)
        reached = self._reached = self._reachable_leaves(helper_edges)
        counts = self._access_counts(next_hop, helpers)
        for key, hop in next_hop.items():
            chain = [key, hop]
            while chain[-1] in next_hop:
                chain.append(next_hop[chain[-1]])
            names = tuple(self._name(k) for k in chain)
            self.reach[key] = Reach(chain[-1], names, tuple(chain), tuple(sorted(reached[key])),
                                    counts[key])

    def _is_macro(self, target: str) -> bool:
        return target not in self.leaves and self.definitions[target].kind != "function"

    def _gain(self, caller: str, gained: frozenset[int], target: str,
              next_hop: dict[str, str]) -> bool:
        """Add the parameters caller selects through target; True when it gained some."""
        old = self._selects.get(caller, frozenset())
        if not gained - old:
            return False
        self._selects[caller] = old | gained
        next_hop.setdefault(caller, target)
        return True

    def _through_field(self, call: IndirectCall, edges: set[tuple[str, str]],
                       next_hop: dict[str, str]) -> bool:
        """A call through a field selects what its candidates select, once every candidate
        is a funnel: a field that may also hold a function reaching no accessor (a mix)
        makes no funnel. Candidates only gain, so the check settles with the fixpoint."""
        if not self._may_wrap(call.caller) or not all(
                t in self.leaves or self._selects.get(t) for t in call.targets):
            return False
        edges.update((call.caller, t) for t in call.targets)
        scope = self._calls_of(call.caller)
        gained = frozenset().union(*(
            selected(scope, call.name, self._positions(t), self._is_macro(t))
            for t in call.targets))
        return self._gain(call.caller, gained, call.targets[0], next_hop)

    def _helper_edges(self, funnels: Mapping[str, str]) -> set[tuple[str, str]]:
        """Calls from funnels into small definitions that select nothing (no funnels) and on
        from them: e1000e's `__ew32()` first calls `__ew32_prepare(hw)`, which polls a fixed
        register through er32(). Such a helper's accesses are sites in it, and every call of
        the funnel makes them too: they count in the funnel's accessors and access counts."""
        found: set[tuple[str, str]] = set()
        seen: set[str] = set()
        stack = sorted(funnels, reverse=True)
        while stack:
            key = stack.pop()
            if key in seen:
                continue
            seen.add(key)
            path = self._scope_of[key][0]
            for name in sorted(self._calls_of(key).calls):
                target = self.resolve(path, name)
                if target is None or target == key or target in self.leaves:
                    continue
                if target in funnels:
                    if key not in funnels:
                        found.add((key, target))
                    continue
                if not self._may_wrap(target):
                    continue
                found.add((key, target))
                stack.append(target)
        return found

    def _access_counts(self, funnels: Mapping[str, str], helpers: frozenset[str] = frozenset()
                       ) -> dict[str, tuple[tuple[str, int | None], ...]]:
        """Accesses one call of each funnel makes: its accessor calls plus, for each call of a
        funnel or of a helper it calls (_helper_edges), that one's; in a loop, as a value or
        in a recursion: not known (None)."""
        done: dict[str, tuple[tuple[str, int | None], ...]] = {}
        active: set[str] = set()

        def visit(key: str) -> tuple[tuple[str, int | None], ...]:
            if key in done:
                return done[key]
            if key in active:  # recursion: the depth is not known
                return tuple((a, None) for a in sorted(self._leaves_of(key)))
            active.add(key)
            path = self._scope_of[key][0]
            total: dict[str, int | None] = {}
            for name, facts in sorted(self._calls_of(key).calls.items()):
                through = self._indirect_named.get((key, name))
                if through is not None:
                    if all(t in self.leaves or t in funnels for t in through.targets):
                        inner = alternatives(((t, 1),) if t in self.leaves else visit(t)
                                             for t in through.targets)
                        for fact in facts:
                            add_counts(total, inner, None if fact.loop else 1)
                    continue
                target = self.resolve(path, name)
                if target is None or target == key or not (
                        target in self.leaves or target in funnels or target in helpers):
                    continue
                inner = ((target, 1),) if target in self.leaves else visit(target)
                for fact in facts:
                    add_counts(total, inner, None if fact.loop or fact.value else 1)
            active.discard(key)
            result = done[key] = tuple(sorted(total.items()))
            return result

        for key in sorted(funnels):
            visit(key)
        return done

    def _leaves_of(self, key: str) -> frozenset[str]:
        return self._reached.get(key, frozenset())

    def _may_wrap(self, key: str) -> bool:
        """Macros, and functions up to the size cap (see rules/wrappers.toml)."""
        definition = self.definitions[key]
        if definition.kind != "function":
            return True
        path, _ = self._scope_of[key]
        limit = (self.max_funnel_lines if self.files[path].selectors
                 else self.max_function_lines)
        return definition.end_line - definition.line + 1 <= limit

    def _reachable_leaves(self, extra: Iterable[tuple[str, str]] = ()
                          ) -> dict[str, frozenset[str]]:
        """Every leaf each node reaches, by dynamic programming over the condensation of the
        graph plus the extra (helper) edges, which stay out of self.graph."""
        graph = self.graph
        extra = sorted(extra)
        if extra:
            graph = self.graph.copy()
            graph.add_edges_from(extra)
            # a helper's own accessor calls: its edges to leaves
            for key in sorted({k for edge in extra for k in edge} - set(self.graph.nodes)):
                path = self._scope_of[key][0]
                graph.add_edges_from((key, t) for n in sorted(self._calls_of(key).calls)
                                     if (t := self.resolve(path, n)) in self.leaves)
        cond = nx.condensation(graph)
        members = nx.get_node_attributes(cond, "members")
        result: dict[int, frozenset[str]] = {}
        for comp in reversed(list(nx.topological_sort(cond))):
            own = frozenset(m for m in members[comp] if m in self.leaves)
            below = [result[s] for s in cond.successors(comp)]
            result[comp] = own.union(*below) if below else own
        mapping = cond.graph["mapping"]
        return {node: result[mapping[node]] for node in graph.nodes}

    def _name(self, key: str) -> str:
        return key if key in self.leaves else self.definitions[key].name

    def wrapper_names(self) -> frozenset[str]:
        # asked for each regmap_init callback traced (240 on the whole tree): reach is
        # complete once the graph is built
        if self._wrapper_names is None:
            self._wrapper_names = frozenset(self.definitions[k].name for k in self.reach)
        return self._wrapper_names

    # -- hot paths ---------------------------------------------------------------------------

    def hot_nodes(self, roots: Iterable[tuple[str, str]]) -> frozenset[str]:
        """Definitions reachable from the roots (path of the registration, function name or
        `struct T->field`: root_keys)."""
        return frozenset(self._hot_parents(roots))

    def hot_path(self, roots: Iterable[tuple[str, str]], key: str) -> tuple[str, ...]:
        """One shortest chain of definitions from a root to key (root first), or () when key
        is not hot: what a person checks to believe a site's `hot` flag."""
        parents = self._hot_parents(roots)
        if key not in parents:
            return ()
        chain = [key]
        while (parent := parents[chain[-1]]) is not None:
            chain.append(parent)
        return tuple(reversed(chain))

    def _hot_parents(self, roots: Iterable[tuple[str, str]]) -> dict[str, str | None]:
        """Breadth-first from the roots, each with its home (callees_of): each reached
        definition -> the one it was first reached from (None for a root)."""
        parents: dict[str, str | None] = {}
        seen: set[tuple[str, str | None]] = set()
        queue: deque[tuple[str, str | None]] = deque()
        for path, name in roots:
            home = self.hot_home(path)
            for key in self.root_keys(path, name):
                parents.setdefault(key, None)
                if (key, home) not in seen:
                    seen.add((key, home))
                    queue.append((key, home))
        while queue:
            key, home = queue.popleft()
            for target in self.callees_of(key, home):
                if (target, home) not in seen:
                    seen.add((target, home))
                    parents.setdefault(target, key)
                    queue.append((target, home))
        return parents
