"""`mmioscan explain`: the chain from a call to its accessors, and the callers of a wrapper."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from mmioscan.analysis.callgraph import CallGraph
from mmioscan.core.catalogue import Catalogue
from mmioscan.core.model import HotRoot, ScanResult, Site

_MAX_CALLERS = 20
_LOCATION_RE = re.compile(r"^(?P<path>.+):(?P<line>\d+)$")


@dataclass(frozen=True, slots=True)
class Location:
    path: str
    line: int


def parse_location(target: str) -> Location | None:
    m = _LOCATION_RE.match(target)
    return Location(m["path"], int(m["line"])) if m else None


def _site_line(site: Site) -> str:
    chain = " -> ".join(site.via) if site.via else site.callee
    flags = f", hot: {', '.join(site.hot_kinds)}" if site.hot else (
        f", only via {site.hot_only_via}" if site.hot_only_via else "")
    where = f"in {site.function}" if site.function else "at file scope"
    return (f"  {site.path}:{site.line}:{site.column} {where}: {site.kind} {chain} "
            f"({site.access}{flags})")


def explain_location(result: ScanResult, where: Location, graph: CallGraph | None = None
                     ) -> str:
    sites = [s for s in result.sites if s.path == where.path and s.line == where.line]
    if not sites:
        return f"{where.path}:{where.line}: no MMIO site on this line\n"
    lines = [f"{where.path}:{where.line}: {len(sites)} site(s)"]
    for site in sites:
        lines.append(_site_line(site))
        chain = hot_chain(graph, result.hot_roots, site) if graph is not None else None
        if chain is not None:
            lines.append(chain)
        if site.kind == "wrapper" and len(site.accessors) > 1:
            lines.append(f"    reaches: {', '.join(site.accessors)}")
        if site.group is not None:
            symbol = f"CONFIG_{site.config_symbol}" if site.config_symbol else "no Kconfig symbol"
            lines.append(f"    driver {site.driver} ({symbol}), group {site.group}: "
                         f"{site.group_reason}")
        if site.tdx is not None:
            exits = "unknown" if site.tdx.ve_exits is None else str(site.tdx.ve_exits)
            lines.append(f"    TDX: {site.tdx.path}, {site.tdx.insn}, #VE exits {exits}: "
                         f"{site.tdx.reason}")
    return "\n".join(lines) + "\n"


def hot_chain(graph: CallGraph, roots: Iterable[HotRoot], site: Site) -> str | None:
    """One shortest chain from a root of the site's hot kinds to the function holding it,
    with the root's registration: what a person checks to believe the `hot` flag."""
    key = f"{site.path}:{site.function}" if site.hot and site.function else None
    if key is None or key not in graph.definitions:
        return None
    chosen = [r for r in roots if r.kind in site.hot_kinds]
    chain = graph.hot_path([(r.path, r.function) for r in chosen], key)
    if not chain:
        return None
    root = next((r for r in chosen if chain[0] in graph.root_keys(r.path, r.function)), None)
    names = " -> ".join(graph.definitions[k].name if k in graph.definitions else k
                        for k in chain)
    origin = f" ({root.kind}: {root.how} at {root.path}:{root.line})" if root else ""
    return f"    hot path: {names}{origin}"


def explain_name(result: ScanResult, graph: CallGraph, catalogue: Catalogue,
                 name: str) -> str | None:
    """None when the name is neither an accessor nor a definition in the scan."""
    parts: list[str] = []
    acc = catalogue.get(name)
    if acc is not None:
        parts.append(_explain_accessor(result, acc.name, acc.family, acc.access, acc.width,
                                       acc.header))
    for key in sorted(k for k, d in graph.definitions.items() if d.name == name):
        parts.append(_explain_definition(result, graph, key))
    return "\n".join(parts) if parts else None


def _explain_accessor(result: ScanResult, name: str, family: str, access: str, width: int,
                      header: str) -> str:
    direct = [s for s in result.sites if s.accessor == name and s.kind == "direct"]
    via = [s for s in result.sites if s.kind == "wrapper" and name in s.accessors]
    users = Counter(s.function or "(file scope)" for s in direct)
    lines = [f"{name}: catalogued accessor, family {family}, {access}, {width} bits "
             f"(defined in {header})",
             f"  called directly at {len(direct)} site(s); reached through wrappers from "
             f"{len(via)} more"]
    for function, count in sorted(users.items(), key=lambda kv: (-kv[1], kv[0]))[:10]:
        lines.append(f"    {count:6} in {function}")
    return "\n".join(lines) + "\n"


def _explain_definition(result: ScanResult, graph: CallGraph, key: str) -> str:
    definition = graph.definitions[key]
    head = (f"{definition.name}: {definition.kind} at {definition.path}:{definition.line}"
            f"{' (static)' if definition.static else ''}")
    reach = graph.reach.get(key)
    if reach is None:
        return head + "\n  not a wrapper: no catalogued accessor is reachable from it\n"
    lines = [head, f"  wrapper: reaches {', '.join(reach.accessors)}",
             f"  shortest chain: {' -> '.join(reach.via)}"]
    callers = [s for s in result.sites if s.kind == "wrapper"
               and graph.resolve(s.path, s.callee) == key]
    hot = sum(s.hot for s in callers)
    lines.append(f"  called at {len(callers)} site(s) in the scan ({hot} hot)")
    for site in callers[:_MAX_CALLERS]:
        where = f"in {site.function}" if site.function else "at file scope"
        lines.append(f"    {site.path}:{site.line} {where}")
    if len(callers) > _MAX_CALLERS:
        lines.append(f"    ... {len(callers) - _MAX_CALLERS} more")
    return "\n".join(lines) + "\n"
