"""Sites -> sites with their driver (Kbuild), code line, fingerprint and TDX verdict.

Runs after the call graph, once per scan: each file with sites is read once, for the code
lines (fingerprints, reports) and for the arguments of bulk calls (a constant length gives
memcpy_toio's #VE count).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from mmioscan.callargs import call_arguments
from mmioscan.catalogue import Catalogue
from mmioscan.fingerprint import assign, normalize_code
from mmioscan.kbuild import DriverMap
from mmioscan.model import Site, Tdx
from mmioscan.tdx import Strategy, TdxModel, verdict

SiteKey = tuple[str, int, int, str]


@dataclass(frozen=True, slots=True)
class Enricher:
    root: Path
    drivers: DriverMap
    model: TdxModel
    strategy: Strategy
    catalogue: Catalogue

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
        info = self.drivers.lookup(path)
        codes = [normalize_code(lines[s.line - 1]) if 0 < s.line <= len(lines) else ""
                 for s in sites]
        for (site, fp), code in zip(assign(zip(sites, codes, strict=True)), codes, strict=True):
            args = None
            if text is not None and self.model.needs_args(site):
                args = call_arguments(text, site.line, site.column)
                if args is not None:
                    arguments[site.sort_key()] = args
            tdx = verdict(site, self.model, self.strategy, args, info.group)
            yield site.enriched(info, tdx, fp, code or None)

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
