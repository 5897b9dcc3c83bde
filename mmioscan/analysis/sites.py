"""The sites stage: facts (and the call graph) -> sites, by the finders in FINDERS: calls of
catalogued accessors (direct), accessors used as values (reference), raw dereferences of
`__iomem` pointers (deref), calls of wrappers (wrapper) and regmap calls (regmap)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from mmioscan.analysis.callgraph import CallGraph
from mmioscan.analysis.gather import Gathered
from mmioscan.analysis.hotpaths import all_roots, hot_map
from mmioscan.analysis.regmaps import regmap_sites
from mmioscan.analysis.wrappers import (
    driver_of,
    finish_sites,
    wrapper_sites,
)
from mmioscan.core.catalogue import Accessor, Catalogue
from mmioscan.core.evolve import placed
from mmioscan.core.model import CallTuple, FileFacts, Site, SiteKind
from mmioscan.core.ruleset import RuleSet


def _site(facts: FileFacts, call: CallTuple, kind: SiteKind, acc: Accessor) -> Site:
    name, line, column, scope, active = call
    return Site(path=facts.path, line=line, column=column,
                function=facts.scopes[scope].name if scope >= 0 else None, callee=name,
                accessor=acc.name, kind=kind, access=acc.access, width=acc.width,
                family=acc.family, active=active)


def file_sites(facts: FileFacts, catalogue: Catalogue) -> Iterator[Site]:
    accessors = catalogue.accessors
    for records, kind in ((facts.calls, "direct"), (facts.references, "reference")):
        for call in records:
            acc = accessors.get(call[0])
            if acc is not None:
                yield _site(facts, call, kind, acc)  # type: ignore[arg-type]


def direct_sites(all_facts: Iterable[FileFacts], catalogue: Catalogue) -> tuple[Site, ...]:
    """Every direct and reference site, in (path, line, column) order."""
    sites = [s for facts in all_facts for s in file_sites(facts, catalogue)]
    return tuple(sorted(sites, key=Site.sort_key))


def deref_sites(all_facts: Iterable[FileFacts],
                implementations: frozenset[str] = frozenset()) -> Iterator[Site]:
    """Raw dereferences of __iomem pointers (`*p = v`, `r->ctrl`, `p[i]`): kind "deref".

    callee is the form ("*p", "p->field", "p[i]"); there is no accessor, so accessor and
    family are "deref" and the width is unknown (the compiler chooses the instruction).
    Dereferences inside the definition of a catalogued accessor (`implementations`, e.g.
    asm-generic's __raw_readl) are how an architecture implements the accessor, not a use
    that bypasses it: they are left out.
    """
    for facts in all_facts:
        for line, column, scope, access, form, active in facts.derefs:
            if scope >= 0 and facts.scopes[scope].name in implementations:
                continue
            yield Site(path=facts.path, line=line, column=column,
                       function=facts.scopes[scope].name if scope >= 0 else None,
                       callee=form, accessor="deref", kind="deref", access=access, width=None,
                       family="deref", active=active)


# -- the site finders: one entry per kind of site, in the order their sites are gathered ------


@dataclass(frozen=True, slots=True)
class FinderInput:
    """What every finder may read: the scoped files, every file's facts, the call graph
    (None with --direct-only) and the rules."""

    scoped: tuple[FileFacts, ...]
    facts: Mapping[str, FileFacts]
    graph: CallGraph | None
    rules: RuleSet


@dataclass(frozen=True, slots=True)
class Finder:
    kinds: tuple[SiteKind, ...]
    needs_graph: bool  # left out with --direct-only
    find: Callable[[FinderInput], Iterable[Site]]


def _direct(given: FinderInput) -> Iterable[Site]:
    return direct_sites(given.scoped, given.rules.catalogue)


def _derefs(given: FinderInput) -> Iterable[Site]:
    return deref_sites(given.scoped, given.rules.catalogue.names())


def _wrappers(given: FinderInput) -> Iterable[Site]:
    assert given.graph is not None
    return wrapper_sites(given.scoped, given.graph, given.rules.catalogue)


def _regmap(given: FinderInput) -> Iterable[Site]:
    return regmap_sites(given.scoped, given.facts, given.graph, given.rules.regmap,
                        given.rules.catalogue)


# Adding a kind of site: write its finder, add one line here (docs/design.md).
FINDERS: tuple[Finder, ...] = (
    Finder(("direct", "reference"), False, _direct),
    Finder(("deref",), False, _derefs),
    Finder(("wrapper",), True, _wrappers),
    Finder(("regmap",), True, _regmap),
)


def find_sites(gathered: Gathered, graph: CallGraph | None, rules: RuleSet) -> tuple[Site, ...]:
    """Every site of the scoped files, sorted, each placed in its folder's driver, its graph
    node and its hot flag (hot needs the graph: never hot with --direct-only)."""
    given = FinderInput(gathered.scoped, gathered.facts, graph, rules)
    found = [s for f in FINDERS if graph is not None or not f.needs_graph for s in f.find(given)]
    if graph is None:
        return tuple(placed(s, driver_of(s.path), None, False)
                     for s in sorted(found, key=Site.sort_key))
    marks = hot_map(graph, all_roots(gathered.facts.values(), rules.hot), rules.hot)
    return tuple(sorted(finish_sites(found, graph, marks), key=Site.sort_key))
