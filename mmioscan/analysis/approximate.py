"""The funnel search by name only, run between the caller rounds (analysis/rounds.py): a
superset of the call graph's funnels, cheap enough to run after every round, and the index it
reads, kept from round to round.

Every definition of a name stands for all of them (no resolution): a name is a funnel when
any of its definitions is one. The exact call graph (analysis/callgraph.py) is built once,
at the end, over every file the rounds parsed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from mmioscan.analysis.dataflow import (
    ANY,
    ScopeCalls,
    file_scope_calls,
    indirect_name,
    selected,
)
from mmioscan.analysis.fnptrs import FieldStores
from mmioscan.cfront.includes import folder_of
from mmioscan.core.model import FileFacts, Scope

ScopeCallsMemo = dict[str, tuple[FileFacts, Mapping[int, ScopeCalls]]]


def too_long(scope: Scope, flows: bool, max_function_lines: int, max_funnel_lines: int) -> bool:
    """A function longer than the cap (the funnel rule's safety valve; without flow records,
    the line-count rule's limit) is never a funnel."""
    if scope.kind != "function":
        return False
    lines = scope.end_line - scope.line + 1
    return lines > (max_funnel_lines if flows else max_function_lines)


class CallerIndex:
    """Who calls or names each name, over the parsed files, kept from round to round: a
    round indexes only the files it parsed (indexing the 15,000 files parsed before again,
    twice, was a fifth of the rounds' time on the whole tree). A file whose facts were
    replaced by others (never within one scan: a round parses only unparsed files) makes
    the index start again.

    - `eligible`, `naming`: the scopes that may be funnels (not an accessor, not over the
      length cap), and under each name they call or use as a value, (path, scope, name);
    - `calling`: under each callee, (path, scope) of every scope calling it (hot reach);
    - `valuing`: under each name used as a value, (path, scope) of every scope using it;
    - `macros`: names defined only as macros somewhere (never as a function)."""

    def __init__(self, leaves: frozenset[str], max_function_lines: int,
                 max_funnel_lines: int) -> None:
        self._rule = (leaves, max_function_lines, max_funnel_lines)
        self._clear()

    def _clear(self) -> None:
        self._indexed: dict[str, FileFacts] = {}
        self.eligible: set[tuple[str, int]] = set()
        self.naming: dict[str, list[tuple[str, int, str]]] = {}
        self.calling: dict[str, list[tuple[str, int]]] = {}
        self.valuing: dict[str, list[tuple[str, int]]] = {}
        self._macro_names: set[str] = set()
        self._function_names: set[str] = set()

    @property
    def macros(self) -> set[str]:
        return self._macro_names - self._function_names

    def update(self, files: Mapping[str, FileFacts]) -> CallerIndex:
        """Index the files not indexed yet (parsed ones: others define nothing)."""
        if any(files.get(path) is not facts for path, facts in self._indexed.items()):
            self._clear()
        for path in sorted(files.keys() - self._indexed.keys()):
            facts = files[path]
            if facts.parsed:
                self._add(path, facts)
        return self

    def _add(self, path: str, facts: FileFacts) -> None:
        self._indexed[path] = facts
        leaves, max_function_lines, max_funnel_lines = self._rule
        flows = bool(facts.selectors)
        for i, scope in enumerate(facts.scopes):
            (self._function_names if scope.kind == "function"
             else self._macro_names).add(scope.name)
            for callee in set(scope.callees):
                self.calling.setdefault(callee, []).append((path, i))
            for value in set(scope.values):
                self.valuing.setdefault(value, []).append((path, i))
            if scope.name in leaves or too_long(scope, flows, max_function_lines,
                                                max_funnel_lines):
                continue
            self.eligible.add((path, i))
            for name in (*scope.callees, *scope.values):
                self.naming.setdefault(name, []).append((path, i, name))


class FunnelSearch:
    """Definitions that may be funnels, by name only (no resolution): the funnel rule with
    every definition of a name standing for all of them. Kept from round to round (memo:
    each file's scope calls, keyed by the facts object; index: the CallerIndex of the
    rounds, brought up to date by each run): the next round goes on from the last one's
    fixpoint with what the files it parsed add (their scopes' calls, the calls
    through fields that wait for new candidates), instead of starting again from the
    accessors over 15,000 files (a third of the whole tree's caller rounds).

    The search is monotone in what files add (more calls, more eligible scopes, more
    selecting positions) except in two ways: a name it went through changed between
    "defined only as a macro" and not (`selected`'s target_macro), or a call through a
    field it took changed candidates (a new store of a non-funnel there unmakes it; a store
    of the caller's own subtree replaces the others: FieldStores.stores). Then what may
    have followed from those is taken back and derived again (delete and re-derive, as
    incremental Datalog engines do): every scope that went through such a name or call,
    the names of those scopes, every scope that went through those names, and so on; then
    each of them is derived again from its calls, and the worklist goes on. What is left
    was derived from names none of that reached, so it holds in the new files too, and
    the fixpoint reached is the one a fresh search reaches. A file whose facts were
    replaced (never within one scan) starts it again."""

    def __init__(self, leaves: frozenset[str], addr_args: Mapping[str, int],
                 memo: ScopeCallsMemo | None, index: CallerIndex) -> None:
        self._leaves = leaves
        self._initial = {leaf: frozenset((addr_args.get(leaf, ANY),)) for leaf in leaves}
        self._memo: ScopeCallsMemo = {} if memo is None else memo
        self._index = index
        self.restarts = 0  # rounds that started again (measurements)
        self.retracted = 0  # scopes taken back and derived again, over all rounds
        self._start()

    def _start(self) -> None:
        self._files: dict[str, FileFacts] = {}  # the files the state below was built from
        self._positions: dict[str, frozenset[int]] = dict(self._initial)
        self._gained_by: dict[tuple[str, int], frozenset[int]] = {}
        self._by_name: dict[str, set[tuple[str, int]]] = {}  # name -> its scopes that gained
        self._done: dict[str, int] = {}  # name -> its index.naming entries gone through
        self._macros: set[str] = set()
        self._taken: dict[tuple[str, int, str], frozenset[str]] = {}  # field call -> candidates

    def run(self, files: Mapping[str, FileFacts], stores: FieldStores
            ) -> list[tuple[str, Scope]]:
        """The definitions that may be funnels over files (a superset of the last run's)."""
        index = self._index.update(files)
        waiting = _field_calls(files, stores, index.eligible)
        macros = index.macros
        first = not self._done
        if not first and any(files.get(p) is not f for p, f in self._files.items()):
            self._start()
            self.restarts += 1
            first = True
        flipped = (self._macros ^ macros).intersection(self._positions)
        now = {(c.path, c.scope, c.key): c for calls in waiting.values() for c in calls}
        changed = [key for key, candidates in self._taken.items()
                   if key not in now or now[key].candidates != candidates]
        self._files = dict(files)
        self._macros = set(macros)
        queue: deque[str] = deque()
        queued: set[str] = set()
        if first:
            queue.extend(sorted(self._leaves))
            queued.update(queue)
        else:
            if flipped or changed:
                self._retract(sorted(flipped), changed, now.values(), queue, queued)
            # the new files' calls of names gone through, and field calls that may now be taken
            for name in sorted(self._positions):
                entries = index.naming.get(name, ())
                if len(entries) > self._done.get(name, 0):
                    self._take(name, entries[self._done.get(name, 0):], queue, queued)
            for call in now.values():
                self._take_field_call(call, queue, queued)
        while queue:
            name = queue.popleft()
            queued.discard(name)
            self._take(name, index.naming.get(name, ()), queue, queued)
            for call in waiting.get(name, ()):
                self._take_field_call(call, queue, queued)
        return [(path, files[path].scopes[i]) for path, i in sorted(self._gained_by)]

    def _retract(self, flipped: list[str], changed: list[tuple[str, int, str]],
                 calls: Iterable[_FieldCall], queue: deque[str], queued: set[str]) -> None:
        """Take back what may have followed from the flipped names and changed field calls,
        then derive those scopes again (see the class docstring)."""
        index, files = self._index, self._files
        by_candidate: dict[str, list[tuple[str, int]]] = {}
        for (path, i, _key), candidates in self._taken.items():
            for candidate in candidates:
                by_candidate.setdefault(candidate, []).append((path, i))
        suspects: set[tuple[str, int]] = set()
        todo: list[tuple[str, int]] = []
        for name in flipped:
            todo.extend((path, i) for path, i, _key in index.naming.get(name, ()))
        todo.extend((path, i) for path, i, _key in changed)
        names: set[str] = set()
        while todo:
            scope = todo.pop()
            if scope in suspects:
                continue
            suspects.add(scope)
            if scope not in self._gained_by:
                continue  # it gained nothing: nothing followed from it
            name = files[scope[0]].scopes[scope[1]].name
            if name not in names:
                names.add(name)
                todo.extend((path, i) for path, i, _key in index.naming.get(name, ()))
                todo.extend(by_candidate.get(name, ()))
        self.retracted += len(suspects)
        for scope in suspects:
            if self._gained_by.pop(scope, None) is not None:
                self._by_name[files[scope[0]].scopes[scope[1]].name].discard(scope)
        for name in names:
            kept = [self._gained_by[s] for s in self._by_name.get(name, ())]
            value = frozenset().union(self._initial.get(name, frozenset()), *kept)
            if value:
                self._positions[name] = value
            else:
                self._positions.pop(name, None)
        self._taken = {k: c for k, c in self._taken.items() if (k[0], k[1]) not in suspects}
        at_scope: dict[tuple[str, int], list[_FieldCall]] = {}
        for call in calls:
            if (call.path, call.scope) in suspects:
                at_scope.setdefault((call.path, call.scope), []).append(call)
        positions, macros = self._positions, self._macros
        for path, i in sorted(suspects):
            definition = files[path].scopes[i]
            for name in dict.fromkeys((*definition.callees, *definition.values)):
                if name in positions:
                    self._gain(path, i, name, positions[name], name in macros, queue, queued)
            for call in at_scope.get((path, i), ()):
                self._take_field_call(call, queue, queued)

    def _take(self, name: str, entries: Sequence[tuple[str, int, str]],
              queue: deque[str], queued: set[str]) -> None:
        """Go through entries (calls of name) with name's selecting positions."""
        through, macro = self._positions[name], name in self._macros
        for path, i, key in entries:
            self._gain(path, i, key, through, macro, queue, queued)
        self._done[name] = len(self._index.naming.get(name, ()))

    def _take_field_call(self, call: _FieldCall, queue: deque[str], queued: set[str]) -> None:
        """A call through a field selects once every function stored there does (as in the
        call graph: one that may hold a plain function is no funnel call)."""
        positions = self._positions
        if not all(c in positions for c in call.candidates):
            return
        self._taken[(call.path, call.scope, call.key)] = call.candidates
        through = frozenset().union(*(positions[c] for c in call.candidates))
        self._gain(call.path, call.scope, call.key, through, False, queue, queued)

    def _gain(self, path: str, i: int, key: str, through: frozenset[int], macro: bool,
              queue: deque[str], queued: set[str]) -> None:
        files, memo = self._files, self._memo
        known = memo.get(path)
        if known is None or known[0] is not files[path]:
            known = memo[path] = (files[path], file_scope_calls(files[path]))
        gained = selected(known[1][i], key, through, macro)
        old = self._gained_by.get((path, i), frozenset())
        if not gained - old:
            return
        self._gained_by[(path, i)] = old | gained
        caller = files[path].scopes[i].name
        self._by_name.setdefault(caller, set()).add((path, i))
        have = self._positions.get(caller, frozenset())
        if gained - have:
            self._positions[caller] = have | gained
            if caller not in queued:
                queued.add(caller)
                queue.append(caller)


class _FieldCall(NamedTuple):
    path: str
    scope: int
    key: str  # its name among the scope's calls (dataflow.indirect_name)
    candidates: frozenset[str]  # the functions (and accessors) stored into its field


def _field_calls(files: Mapping[str, FileFacts], stores: FieldStores,
                 eligible: set[tuple[str, int]]) -> dict[str, list[_FieldCall]]:
    """Every call through a field whose caller may be a funnel, under each candidate it
    waits for: the functions stored into the field as the call graph finds them
    (FieldStores: by struct type, else by name among the stores of the caller's folder),
    by name."""
    waiting: dict[str, list[_FieldCall]] = {}
    for path, facts in files.items():
        folder = folder_of(path)
        for field, struct, line, column, scope in facts.indirect:
            if (path, scope) not in eligible:
                continue
            candidates = frozenset(fn for _where, fn in stores.stores(folder, field, struct))
            call = _FieldCall(path, scope, indirect_name(field, line, column), candidates)
            for candidate in candidates:
                waiting.setdefault(candidate, []).append(call)
    return waiting
