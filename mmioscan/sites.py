"""Facts -> sites: calls of catalogued accessors (direct) and accessors used as values."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from mmioscan.catalogue import Catalogue
from mmioscan.model import Call, FileFacts, Site, SiteKind


def _scope_name(facts: FileFacts, call: Call) -> str | None:
    return facts.scopes[call.scope].name if call.scope >= 0 else None


def _site(facts: FileFacts, call: Call, kind: SiteKind, catalogue: Catalogue) -> Site | None:
    acc = catalogue.get(call.name)
    if acc is None:
        return None
    return Site(path=facts.path, line=call.line, column=call.column,
                function=_scope_name(facts, call), callee=call.name, accessor=acc.name,
                kind=kind, access=acc.access, width=acc.width, family=acc.family,
                active=call.active)


def file_sites(facts: FileFacts, catalogue: Catalogue) -> Iterator[Site]:
    names = catalogue.accessors
    for call in facts.calls:
        if call.name not in names:
            continue
        site = _site(facts, call, "direct", catalogue)
        if site is not None:
            yield site
    for ref in facts.references:
        site = _site(facts, ref, "reference", catalogue)
        if site is not None:
            yield site


def direct_sites(all_facts: Iterable[FileFacts], catalogue: Catalogue) -> tuple[Site, ...]:
    """Every direct and reference site, in (path, line, column) order."""
    sites = [s for facts in all_facts for s in file_sites(facts, catalogue)]
    return tuple(sorted(sites, key=Site.sort_key))
