"""The drivers-and-verdicts stage: sites -> sites with their driver (Kbuild), code line,
fingerprint and TDX verdict (`judge`).

Runs after the call graph, once per scan: each file with sites is read once, for the code
lines (fingerprints, reports) and for the arguments of bulk calls (a constant length gives
memcpy_toio's #VE count).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import groupby
from pathlib import Path

from mmioscan.analysis.callgraph import CallGraph
from mmioscan.analysis.definitions import Definitions, definition_macros
from mmioscan.analysis.fingerprint import assign, normalize_code
from mmioscan.analysis.funnels import resolve
from mmioscan.cfront.callargs import call_arguments
from mmioscan.cfront.includes import include_candidates
from mmioscan.core.catalogue import Catalogue
from mmioscan.core.evolve import enriched
from mmioscan.core.model import DriverInfo, FileFacts, Problem, Site, Tdx, TextRead
from mmioscan.core.ruleset import RuleSet
from mmioscan.kernel.drivermap import DriverMap
from mmioscan.kernel.groups import load_group_rules
from mmioscan.kernel.ifconfig import ConfigConditions
from mmioscan.platforms.strategies import Strategy
from mmioscan.platforms.x86.model import X86Model, verdict

SiteKey = tuple[str, int, int, str]
# Shared headers: their code runs in whoever includes them, not in "their" folder.
_SHARED = ("include/", "arch/")


def includers(facts: Iterable[FileFacts]) -> dict[str, tuple[str, ...]]:
    """Driver-local files (`#include "x.h"`, `#include "flashpoint.c"`) -> the scanned files
    that include them. Only quoted includes: <...> names shared headers."""
    found: dict[str, set[str]] = {}
    for f in facts:
        for target in f.includes:
            if target.startswith('"'):
                local = next(include_candidates(f.path, target))
                if not local.startswith(_SHARED) and local != f.path:
                    found.setdefault(local, set()).add(f.path)
    return {k: tuple(sorted(v)) for k, v in found.items()}


class IncludedDrivers:
    """DriverMap lookups, refined for driver-local files that other files include.

    Kbuild says nothing precise about a header shared by a folder's drivers (drivers/scsi/
    holds dozens) or a .c file #included by another (FlashPoint.c in BusLogic.c): such a
    file belongs to the driver that includes it, and is built when an includer is built."""

    def __init__(self, drivers: DriverMap, included_by: dict[str, tuple[str, ...]]) -> None:
        self.drivers, self.included_by = drivers, included_by
        self._memo: dict[str, DriverInfo] = {}

    def lookup(self, path: str) -> DriverInfo:
        info = self._memo.get(path)
        if info is None:
            info = self._memo[path] = self._refine(path, self.drivers.lookup(path), 0)
        return info

    def _refine(self, path: str, info: DriverInfo, depth: int) -> DriverInfo:
        users = self.included_by.get(path, ())
        if not users or depth > 3 or (path.endswith(".c") and info.reachable is not None):
            return info
        infos = [self._refine(u, self.drivers.lookup(u), depth + 1) for u in users]
        names = sorted({i.name for i in infos})
        built: bool | None = None
        if any(i.reachable is True for i in infos):
            built = True
        elif all(i.reachable is False for i in infos):
            built = False
        if info.reachable is False:
            built = False  # another architecture, or a folder never built
        if len(names) == 1:
            first = infos[0]
            return DriverInfo(first.name, first.config_symbol, first.group, first.group_reason,
                              built, f"included by {users[0]}: {first.evidence}")
        return DriverInfo(info.name, info.config_symbol, info.group, info.group_reason, built,
                          f"{info.evidence}; included by {len(users)} files of "
                          f"{', '.join(names[:5])}")


@dataclass(frozen=True, slots=True)
class Enricher:
    root: Path
    drivers: IncludedDrivers
    model: X86Model
    strategy: Strategy
    catalogue: Catalogue
    conditions: ConfigConditions | None = None  # with --config: #ifdef CONFIG_ blocks
    definitions: Definitions | None = None  # accessor definitions to leave out
    # The platforms asked for, each with its model, when more than TDX alone (else empty):
    # each site then carries a verdict per platform beside `tdx`.
    platforms: tuple[X86Model, ...] = ()

    def run(self, sites: Sequence[Site]
            ) -> tuple[tuple[Site, ...], dict[SiteKey, list[str]], tuple[TextRead, ...]]:
        """Enriched sites (same order), the call arguments read for bulk sites, which the
        strategy comparison reuses, and what was read from each file's text."""
        done: list[Site] = []
        arguments: dict[SiteKey, list[str]] = {}
        reads: list[TextRead] = []
        for path, group in groupby(sites, key=lambda s: s.path):
            done.extend(self._file(path, list(group), arguments, reads))
        return tuple(done), arguments, tuple(reads)

    def _file(self, path: str, sites: list[Site], arguments: dict[SiteKey, list[str]],
              reads: list[TextRead]) -> Iterable[Site]:
        text = _read_text(self.root / path)
        lines = text.splitlines() if text is not None else []
        site_lines = tuple(sorted({s.line for s in sites}))
        points: list[tuple[int, int, tuple[str, ...] | None]] = []
        if self.definitions is not None:
            sites = [s for s in sites if not self.definitions.is_definition(
                s, lines[s.line - 1] if 0 < s.line <= len(lines) else "")]
        info = self.drivers.lookup(path)
        dead = (self.conditions.dead_lines(text)
                if self.conditions is not None and text is not None and info.reachable is not False
                else [])
        codes = [normalize_code(lines[s.line - 1]) if 0 < s.line <= len(lines) else ""
                 for s in sites]
        for (site, fp), code in zip(assign(zip(sites, codes, strict=True)), codes, strict=True):
            args = None
            if text is not None and any(m.needs_args(site) for m in self.models()):
                args = call_arguments(text, site.line, site.column)
                points.append((site.line, site.column, tuple(args) if args is not None else None))
                if args is not None:
                    arguments[site.sort_key()] = args
            tdx = verdict(site, self.model, self.strategy, args, info.group)
            per_platform = tuple(
                (m.platform.name, tdx if m is self.model
                 else verdict(site, m, self.strategy, args, info.group))
                for m in self.platforms)
            where = info
            if dead and any(first <= site.line <= last for first, last in dead):
                where = replace(info, reachable=False)  # inside #ifdef CONFIG_<not set>
            yield enriched(site, where, tdx, fp, code or None, per_platform)
        read_dead = self.conditions is not None and text is not None and \
            info.reachable is not False
        reads.append(TextRead(path, site_lines, _lines_digest(text, lines, site_lines),
                              tuple(dead) if read_dead else None, tuple(points)))

    def models(self) -> tuple[X86Model, ...]:
        """The model of every platform asked for (TDX's alone by default)."""
        return self.platforms or (self.model,)

    def reverdict(self, site: Site, strategy: Strategy,
                  arguments: dict[SiteKey, list[str]], model: X86Model | None = None) -> Tdx:
        """The site's verdict under another strategy (for `mmioscan strategies`)."""
        return verdict(site, model or self.model, strategy, arguments.get(site.sort_key()))


def _lines_digest(text: str | None, lines: Sequence[str], numbers: Sequence[int]) -> str:
    """A digest of the text of the given lines ("" for an unreadable file: never equal)."""
    if text is None:
        return ""
    digest = hashlib.sha1(usedforsecurity=False)
    for n in numbers:
        digest.update(lines[n - 1].encode("utf-8", "surrogateescape") if 0 < n <= len(lines)
                      else b"\1")
        digest.update(b"\0")
    return digest.hexdigest()


def read_again(root: Path, was: TextRead, conditions: ConfigConditions | None) -> TextRead:
    """What Enricher._file would read from the file's current text, for the same sites (a
    file whose facts are unchanged has the same sites): compared with `was`, it says whether
    the file's enriched sites would be the same."""
    text = _read_text(root / was.path)
    lines = text.splitlines() if text is not None else []
    dead = None
    if was.dead is not None and conditions is not None and text is not None:
        dead = tuple(conditions.dead_lines(text))
    points = tuple((line, column, tuple(a) if (a := call_arguments(text, line, column))
                    is not None else None) for line, column, _ in was.arguments
                   ) if text is not None else ()
    return TextRead(was.path, was.lines, _lines_digest(text, lines, was.lines), dead, points)


def _read_text(path: Path) -> str | None:
    """The file as text; bytes that are not UTF-8 survive as surrogates (never raises)."""
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class Judged:
    """The drivers-and-verdicts stage's result."""

    sites: tuple[Site, ...]  # enriched, same order; accessor definitions left out
    arguments: dict[SiteKey, list[str]]  # call arguments read for bulk sites (strategies)
    enricher: Enricher  # the tree's driver map and platform model, for other strategies
    strategies: dict[str, Strategy]  # every strategy with its rules resolved on this scan
    problems: tuple[Problem, ...]  # the driver map's and the platform model's notes
    reads: tuple[TextRead, ...] = ()  # what was read from each site file's text


def judge(root: Path, sites: tuple[Site, ...], facts: Iterable[FileFacts], rules: RuleSet,
          config: dict[str, str] | None, strategy: Strategy,
          kconfig_cache: Path | None, platforms: tuple[str, ...] = ("tdx",),
          cpu: Mapping[str, bool] | None = None, graph: CallGraph | None = None,
          strategies: Mapping[str, Strategy] | None = None) -> Judged:
    """Map every site to its driver (Kbuild, Kconfig, .config) and judge it on the platform
    (instruction forms read from the tree) under the strategy."""
    problems: list[Problem] = []
    drivers = DriverMap.build(root, load_group_rules(), config, sorted({s.path for s in sites}),
                              cache_dir=kconfig_cache)
    problems += list(drivers.problems)
    model = X86Model.derive(root, rules.catalogue, cpu=cpu)
    others = {name: X86Model.derive(root, rules.catalogue, platform=name, cpu=cpu)
              for name in platforms if name != "tdx"}
    selected = (tuple(model if name == "tdx" else others[name] for name in platforms)
                if platforms != ("tdx",) else ())
    # A partial tree falls back to the shipped forms: say so where users look.
    for m in (model, *others.values()):
        if m.notes:
            label = "TDX" if m is model else m.platform.name
            problems.append(Problem(".", f"{label} instruction forms: " + "; ".join(m.notes)))
    conditions = ConfigConditions(config) if config is not None else None
    definitions = Definitions(rules.catalogue.names(),
                              definition_macros(rules.wrappers.definition_macros, facts))
    included = IncludedDrivers(drivers, includers(facts))
    resolved = {name: resolve(s, sites, graph, lambda site: included.lookup(site.path).group,
                              rules.catalogue)
                for name, s in {**(strategies or {}), strategy.name: strategy}.items()}
    enricher = Enricher(root, included, model, resolved[strategy.name], rules.catalogue,
                        conditions, definitions, selected)
    done, arguments, reads = enricher.run(sites)
    return Judged(done, arguments, enricher, resolved, tuple(problems), reads)
