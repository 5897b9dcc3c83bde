"""The funnel rule by data flow (rules/wrappers.toml): which parameters of a definition select
the register an access it reaches uses, and how many accesses one call of it makes.

A definition's calls, with the parameter indices each argument depends on, come from the
extractor's flow records (cfront/flows.py). A definition selects through parameter p when

- it calls an accessor whose address argument (rules/accessors.toml `addr_arg`) depends on p,
  or uses an accessor as a value in a call one of whose arguments depends on p;
- or it calls a funnel passing, in one of that funnel's selecting positions, an argument that
  depends on p (a fixpoint over the call graph: analysis/callgraph.py).

Only a function's selector parameters count (`__iomem` or scalar: cfront/flows.py); a macro's
every parameter does, and a macro without parameters (`#define flush() rd(STATUS)`) is an
alias of what it expands to: it is a funnel as soon as it reaches an accessor. Facts made
without flow records (hand-made, in tests) fall back to the line-count rule: such a definition
selects through ANY parameter.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

from mmioscan.cfront.flows import CONTEXT_USE
from mmioscan.core.model import FileFacts, Scope

ANY = -1  # "some parameter, not known which": every argument of a call of it counts

Deps = tuple[tuple[int, ...], ...]
# a flow record of FileFacts.flows: (scope, callee, line, column, deps, loop, value)
Flow = tuple[int, str, int, int, Deps, bool, bool]


class CallFact(NamedTuple):
    deps: Deps | None  # per argument; None when not known (no flow records)
    loop: bool  # inside a loop: the number of calls is not known
    value: bool  # a catalogued name used as a value: the enclosing call's arguments, in one


class ScopeCalls(NamedTuple):
    calls: dict[str, list[CallFact]]  # callee or value name -> every call of it, in order
    selectors: frozenset[int] | None  # None: no flow records for this scope
    alias: bool  # a macro without parameters
    macro: bool = False


_NO_DEPS: Deps = ()


def indirect_name(field: str, line: int, column: int) -> str:
    """The callee name of one call through a field in ScopeCalls: `->field@line:column`,
    never a C identifier; the call graph resolves it to the functions stored there."""
    return f"->{field}@{line}:{column}"


def file_scope_calls(facts: FileFacts) -> Mapping[int, ScopeCalls]:
    """Every scope's calls with their flows; scopes without flow records use their callee
    and value names (one call each, dependencies unknown). Built per scope when first
    asked for (FileScopeCalls)."""
    return FileScopeCalls(facts)


class FileScopeCalls(Mapping[int, ScopeCalls]):
    """A file's ScopeCalls by scope index, each built when first asked for: the funnel
    search and the call graph ask about the few scopes that call a funnel, and building
    every scope's of every file they look at was a tenth of a warm whole-tree scan."""

    def __init__(self, facts: FileFacts) -> None:
        self._facts = facts
        self._built: dict[int, ScopeCalls] = {}
        self._selectors = dict(facts.selectors)
        # Per scope, indices into calls + references (a reference's index is offset by the
        # number of calls) and into flows: the whole-tree run keeps one of these per file
        # it looked at, and (record, value) pairs and per-file flow dicts were 200 MB.
        self._records: dict[int, array[int]] | None = None
        self._flows: dict[int, array[int]] = {}

    def __getitem__(self, i: int) -> ScopeCalls:
        found = self._built.get(i)
        if found is None:
            found = self._built[i] = self._scope_calls(i)
        return found

    def __len__(self) -> int:
        return len(self._facts.scopes)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self._facts.scopes)))

    def _scope_calls(self, i: int) -> ScopeCalls:
        definition = self._facts.scopes[i]
        alias = definition.kind != "function" and not definition.params
        if i not in self._selectors:
            return ScopeCalls(_fallback_calls(definition), None, alias)
        if self._records is None:
            self._index()
        assert self._records is not None
        every_flow = self._facts.flows
        flows = {(f[1], f[2], f[3]): f for f in (every_flow[j] for j in self._flows.get(i, ()))}
        calls: dict[str, list[CallFact]] = {}
        direct, references = self._facts.calls, self._facts.references
        first_reference = len(direct)
        for j in self._records.get(i, ()):
            value = j >= first_reference
            name, line, column, _scope, _active = (
                references[j - first_reference] if value else direct[j])
            flow = flows.get((name, line, column))
            if flow is not None:
                fact = CallFact(flow[4], flow[5], value)
            else:
                fact = CallFact(((),) if value else _NO_DEPS, value, value)
            calls.setdefault(name, []).append(fact)
        for field, _struct, line, column, scope in self._facts.indirect:
            if scope == i:
                flow = flows.get(("->" + field, line, column))
                calls[indirect_name(field, line, column)] = [
                    CallFact(flow[4], flow[5], False) if flow is not None
                    else CallFact(_NO_DEPS, False, False)]
        return ScopeCalls(calls, frozenset(self._selectors[i]), alias,
                          definition.kind != "function")

    def _index(self) -> None:
        """One pass over the file's records: each scope's active calls, then its
        references (in that order, as the scope's calls list them), and its flows."""
        records: dict[int, array[int]] = {}
        selectors = self._selectors
        for index, record in enumerate(itertools.chain(self._facts.calls,
                                                       self._facts.references)):
            scope = record[3]
            if scope >= 0 and record[4] and scope in selectors:
                found = records.get(scope)
                if found is None:
                    found = records[scope] = array("i")
                found.append(index)
        for index, flow in enumerate(self._facts.flows):
            found = self._flows.get(flow[0])
            if found is None:
                found = self._flows[flow[0]] = array("i")
            found.append(index)
        self._records = records


def _fallback_calls(scope: Scope) -> dict[str, list[CallFact]]:
    found: dict[str, list[CallFact]] = {n: [CallFact(None, False, False)] for n in scope.callees}
    for n in scope.values:
        found.setdefault(n, []).append(CallFact(None, True, True))
    return found


def selected(scope: ScopeCalls, name: str, positions: frozenset[int],
             target_macro: bool = False) -> frozenset[int]:
    """The scope's parameters that select a register through its calls of name, whose
    selecting argument positions are `positions` (ANY: every argument). A dependency
    CONTEXT_USE + i is, in a macro, a member-only use (kept so: the macro is a funnel that
    does not propagate); in a function, a context pointer passed whole: it selects unless
    the callee is a macro (target_macro)."""
    entries = scope.calls.get(name, ())
    if not entries:
        return frozenset()
    if scope.selectors is None or scope.alias:
        return frozenset((ANY,))
    found: set[int] = set()
    # context-use positions of a macro funnel (`(hw)->regs`) never propagate to callers
    positions = frozenset(j for j in positions if j < CONTEXT_USE)
    every = ANY in positions
    if not positions:
        return frozenset()
    for fact in entries:
        deps = fact.deps
        if deps is None:
            found.update(scope.selectors)
            continue
        if fact.value or every:
            for d in deps:
                found.update(d)
        else:
            for j in positions:
                if 0 <= j < len(deps):
                    found.update(deps[j])
    result: set[int] = set()
    for j in found:
        if j >= CONTEXT_USE and not scope.macro:
            if target_macro:
                continue
            j -= CONTEXT_USE
        if j % CONTEXT_USE in scope.selectors:
            result.add(j)
    return frozenset(result)


def add_counts(total: dict[str, int | None], more: Iterable[tuple[str, int | None]],
               times: int | None) -> None:
    """total += times * more (None: not known)."""
    for accessor, n in more:
        have = total.get(accessor, 0)
        if have is None or n is None or times is None:
            total[accessor] = None
        else:
            total[accessor] = have + n * times
