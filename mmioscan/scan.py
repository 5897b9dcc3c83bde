"""The scan use case: paths in, ScanResult out (no terminal, no files written)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmioscan.catalogue import Catalogue
from mmioscan.model import ScanResult, ScanStats
from mmioscan.runner import Progress, collect_facts
from mmioscan.sites import direct_sites
from mmioscan.tree import collect, kernel_version


@dataclass(frozen=True, slots=True)
class ScanOptions:
    paths: tuple[Path, ...]
    root: Path | None = None
    jobs: int = 1
    cache_dir: Path | None = None


def run_scan(options: ScanOptions, catalogue: Catalogue,
             progress: Progress | None = None) -> ScanResult:
    """Scan the paths; raises tree.TreeError for unusable arguments."""
    fileset = collect(list(options.paths), options.root)
    run = collect_facts(fileset.root, fileset.files, catalogue.names(), catalogue.digest,
                        options.jobs, options.cache_dir, progress)
    facts = run.facts
    problems = fileset.problems + run.problems + tuple(p for f in facts for p in f.problems)
    stats = ScanStats(
        files_listed=len(facts),
        files_parsed=sum(f.parsed for f in facts),
        files_skipped=sum(not f.parsed for f in facts),
        files_with_errors=sum(f.error_nodes > 0 for f in facts),
        functions=sum(1 for f in facts for s in f.scopes if s.kind == "function"),
        functions_with_errors=sum(1 for f in facts for s in f.scopes if s.has_error),
        macros=sum(1 for f in facts for s in f.scopes if s.kind != "function"),
        cache_hits=run.cache_hits,
    )
    return ScanResult(
        root=str(fileset.root), kernel_version=kernel_version(fileset.root),
        scanned=fileset.targets, sites=direct_sites(facts, catalogue),
        problems=tuple(sorted(problems, key=lambda p: (p.path, p.message))),
        stats=stats, facts=facts)
