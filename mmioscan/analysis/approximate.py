"""The funnel search by name only, run between the caller rounds (analysis/rounds.py): a
superset of the call graph's funnels, cheap enough to run after every round, and the index it
reads, kept from round to round.

Every definition of a name stands for all of them (no resolution): a name is a funnel when
any of its definitions is one. The exact call graph (analysis/callgraph.py) is built once,
at the end, over every file the rounds parsed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
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


def approximate_wrappers(files: Mapping[str, FileFacts], leaves: frozenset[str],
                         max_function_lines: int, addr_args: Mapping[str, int] | None = None,
                         max_funnel_lines: int = 400, memo: ScopeCallsMemo | None = None,
                         stores: FieldStores | None = None, index: CallerIndex | None = None
                         ) -> list[tuple[str, Scope]]:
    """Definitions that may be funnels, by name only (no resolution): the funnel rule with
    every definition of a name standing for all of them. memo keeps each file's scope
    calls from round to round (keyed by the facts object, so a file parsed again is read
    again); stores: the FieldStores of these files, if built; index: the CallerIndex kept
    over the rounds, brought up to date here."""
    memo = {} if memo is None else memo
    index = (index or CallerIndex(leaves, max_function_lines, max_funnel_lines)).update(files)
    waiting = _field_calls(files, stores or FieldStores(files, leaves), index.eligible)
    addr = addr_args or {}
    macros = index.macros  # a superset must not drop a same-named function's gains
    positions: dict[str, frozenset[int]] = {
        leaf: frozenset((addr.get(leaf, ANY),)) for leaf in leaves}
    gained_by: dict[tuple[str, int], frozenset[int]] = {}
    queue = deque(sorted(leaves))
    queued = set(queue)
    while queue:
        name = queue.popleft()
        queued.discard(name)
        entries = [(path, i, key, positions[name], name in macros)
                   for path, i, key in index.naming.get(name, ())]
        # A call through a field selects once every function stored there does (as in the
        # call graph: one that may hold a plain function is no funnel call).
        for call in waiting.get(name, ()):
            if all(c in positions for c in call.candidates):
                entries.append((call.path, call.scope, call.key, frozenset().union(
                    *(positions[c] for c in call.candidates)), False))
        for path, i, key, through, macro in entries:
            known = memo.get(path)
            if known is None or known[0] is not files[path]:
                known = memo[path] = (files[path], file_scope_calls(files[path]))
            gained = selected(known[1][i], key, through, macro)
            old = gained_by.get((path, i), frozenset())
            if not gained - old:
                continue
            gained_by[(path, i)] = old | gained
            caller = files[path].scopes[i].name
            have = positions.get(caller, frozenset())
            if gained - have:
                positions[caller] = have | gained
                if caller not in queued:
                    queued.add(caller)
                    queue.append(caller)
    return [(path, files[path].scopes[i]) for path, i in sorted(gained_by)]


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
