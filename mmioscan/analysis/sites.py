"""Facts -> sites: calls of catalogued accessors (direct), accessors used as values, and raw
dereferences of `__iomem` pointers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from mmioscan.core.catalogue import Accessor, Catalogue
from mmioscan.core.model import CallTuple, FileFacts, Site, SiteKind


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
