"""The drivers-and-verdicts stage: sites -> sites with their driver (Kbuild), code line,
fingerprint and TDX verdict (`judge`).

Runs after the call graph, once per scan: each file with sites is read once, for the code
lines (fingerprints, reports) and for the arguments of bulk calls (a constant length gives
memcpy_toio's #VE count).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import groupby
from pathlib import Path

from mmioscan.analysis.definitions import Definitions
from mmioscan.analysis.fingerprint import assign, normalize_code
from mmioscan.cfront.callargs import call_arguments
from mmioscan.cfront.includes import include_candidates
from mmioscan.core.catalogue import Catalogue
from mmioscan.core.model import DriverInfo, FileFacts, Problem, Site, Tdx
from mmioscan.core.ruleset import RuleSet
from mmioscan.kernel.drivermap import DriverMap
from mmioscan.kernel.groups import load_group_rules
from mmioscan.kernel.ifconfig import ConfigConditions
from mmioscan.platforms.strategies import Strategy
from mmioscan.platforms.tdx.model import TdxModel, verdict

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
    model: TdxModel
    strategy: Strategy
    catalogue: Catalogue
    conditions: ConfigConditions | None = None  # with --config: #ifdef CONFIG_ blocks
    definitions: Definitions | None = None  # accessor definitions to leave out

    def run(self, sites: Sequence[Site]) -> tuple[tuple[Site, ...], dict[SiteKey, list[str]]]:
        """Enriched sites (same order) and the call arguments read for bulk sites, which
        the strategy comparison reuses."""
        done: list[Site] = []
        arguments: dict[SiteKey, list[str]] = {}
        for path, group in groupby(sites, key=lambda s: s.path):
            done.extend(self._file(path, list(group), arguments))
        return tuple(done), arguments

    def _file(self, path: str, sites: list[Site],
              arguments: dict[SiteKey, list[str]]) -> Iterable[Site]:
        text = _read_text(self.root / path)
        lines = text.splitlines() if text is not None else []
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
            if text is not None and self.model.needs_args(site):
                args = call_arguments(text, site.line, site.column)
                if args is not None:
                    arguments[site.sort_key()] = args
            tdx = verdict(site, self.model, self.strategy, args, info.group)
            where = info
            if dead and any(first <= site.line <= last for first, last in dead):
                where = replace(info, reachable=False)  # inside #ifdef CONFIG_<not set>
            yield site.enriched(where, tdx, fp, code or None)

    def reverdict(self, site: Site, strategy: Strategy,
                  arguments: dict[SiteKey, list[str]]) -> Tdx:
        """The site's verdict under another strategy (for `mmioscan strategies`)."""
        return verdict(site, self.model, strategy, arguments.get(site.sort_key()))


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
    problems: tuple[Problem, ...]  # the driver map's and the platform model's notes


def judge(root: Path, sites: tuple[Site, ...], facts: Iterable[FileFacts], rules: RuleSet,
          config: dict[str, str] | None, strategy: Strategy,
          kconfig_cache: Path | None) -> Judged:
    """Map every site to its driver (Kbuild, Kconfig, .config) and judge it on the platform
    (instruction forms read from the tree) under the strategy."""
    problems: list[Problem] = []
    drivers = DriverMap.build(root, load_group_rules(), config, sorted({s.path for s in sites}),
                              cache_dir=kconfig_cache)
    problems += list(drivers.problems)
    model = TdxModel.derive(root, rules.catalogue)
    # A partial tree falls back to the shipped forms: say so where users look.
    if model.notes:
        problems.append(Problem(".", "TDX instruction forms: " + "; ".join(model.notes)))
    conditions = ConfigConditions(config) if config is not None else None
    definitions = Definitions(rules.catalogue.names(), rules.wrappers.definition_macros)
    enricher = Enricher(root, IncludedDrivers(drivers, includers(facts)), model, strategy,
                        rules.catalogue, conditions, definitions)
    done, arguments = enricher.run(sites)
    return Judged(done, arguments, enricher, tuple(problems))
