"""Facts for many files: cache look-up, cheap byte prefilter, parse in a process pool."""

from __future__ import annotations

import dataclasses
import hashlib
import multiprocessing
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mmioscan import __version__
from mmioscan.cfront.extract import Extractor
from mmioscan.cfront.prefilter import NameScanner, include_targets, mentions_iomem
from mmioscan.core.model import FileFacts, Problem
from mmioscan.core.ruleset import Regmap
from mmioscan.core.sources import source_digest
from mmioscan.facts.cache import FactsCache, decode, encode


def extractor_fingerprint() -> str:
    """Cached facts are keyed by the source of the modules that make them (this module and
    everything it imports: the C front end, the records), found from the imports."""
    return f"{__version__}-{source_digest(__name__)}"


_CHUNK = 8

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class RunResult:
    facts: tuple[FileFacts, ...]  # sorted by path
    problems: tuple[Problem, ...]
    cache_hits: int


@dataclass(frozen=True, slots=True)
class ExtractSpec:
    """What the extractor looks for; sent once to each worker process."""

    names: frozenset[str]  # catalogued names: the byte prefilter parses files that mention one
    registrations: tuple[tuple[str, tuple[int, ...]], ...] = ()
    hot_fields: frozenset[str] = frozenset()
    regmap: Regmap | None = None  # rules/regmap.toml: the extractor records maps and uses


class _Worker:
    """Per-process state: the parser and the name scanner are built once per worker."""

    extractor: Extractor | None = None
    scanner: NameScanner | None = None


def _init_worker(spec: ExtractSpec) -> None:
    _Worker.extractor = Extractor(spec.names, dict(spec.registrations), spec.hot_fields,
                                  spec.regmap)
    _Worker.scanner = NameScanner(spec.names)


def _digest(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def facts_for_bytes(rel: str, data: bytes, force: bool = False) -> FileFacts:
    """Facts of one file's bytes; never raises (an internal error becomes a problem).

    force: parse even when the byte prefilter sees no catalogued name (a file that calls
    wrappers or regmap only, found in a later round of the scan).
    """
    assert _Worker.extractor is not None and _Worker.scanner is not None
    digest = _digest(data)
    if b"\0" in data:
        return FileFacts(rel, digest, len(data), parsed=False,
                         problems=(Problem(rel, "binary file (NUL bytes): not scanned"),))
    notes: tuple[Problem, ...] = ()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        notes = (Problem(rel, f"not valid UTF-8 at byte {exc.start}: scanned as raw bytes"),)
    if not force and not _Worker.scanner.mentions(data) and not mentions_iomem(data):
        return FileFacts(rel, digest, len(data), parsed=False, problems=notes,
                         includes=include_targets(data))
    try:
        facts = _Worker.extractor.extract(rel, digest, data)
    except Exception as exc:  # noqa: BLE001 - one bad file must not end the scan
        return FileFacts(rel, digest, len(data), parsed=False,
                         problems=(*notes, Problem(rel, f"internal error while parsing: {exc}")))
    return dataclasses.replace(facts, problems=notes + facts.problems) if notes else facts


def _process(job: tuple[str, str, bool]) -> tuple[str, int, int, bytes]:
    """Facts of one file, already encoded: the worker pickles once, for the pipe and the cache."""
    absolute, rel, force = job
    try:
        st = os.stat(absolute)
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device named *.c would block or never end
            return absolute, -1, -1, encode(_unreadable(rel, "not a regular file"))
        with open(absolute, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return absolute, -1, -1, encode(_unreadable(rel, exc.strerror or str(exc)))
    return absolute, st.st_size, st.st_mtime_ns, encode(facts_for_bytes(rel, data, force))


def _unreadable(rel: str, reason: str) -> FileFacts:
    return FileFacts(rel, "", 0, parsed=False, problems=(Problem(rel, f"cannot read: {reason}"),))


def _relocated(facts: FileFacts, rel: str) -> FileFacts:
    """Cached facts are keyed by content: give them the path they are found at now."""
    if facts.path == rel:
        return facts
    problems = tuple(dataclasses.replace(p, path=rel) for p in facts.problems)
    return dataclasses.replace(facts, path=rel, problems=problems)


def _parse_all(jobs: list[tuple[str, str, bool]], spec: ExtractSpec, workers: int,
               progress: Progress | None, done: int, total: int
               ) -> Iterator[tuple[str, int, int, bytes]]:
    if workers <= 1 or len(jobs) < 2 * _CHUNK:
        _init_worker(spec)
        results: Iterator[tuple[str, int, int, bytes]] = map(_process, jobs)
        pool = None
    else:
        # spawn, not fork: a fork of a main process already holding the facts of earlier rounds
        # would have every worker count those pages again (peak memory near 2 GB on drivers/).
        ctx = multiprocessing.get_context("spawn")
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(spec,))
        results = pool.imap_unordered(_process, jobs, chunksize=_CHUNK)
    try:
        for item in results:
            done += 1
            if progress is not None:
                progress(done, total)
            yield item
    finally:
        if pool is not None:
            pool.close()
            pool.join()


def open_cache(cache_dir: Path | None, rules_digest: str) -> FactsCache:
    return FactsCache(cache_dir, f"{extractor_fingerprint()}/{rules_digest}")


def collect_facts(root: Path, files: tuple[str, ...], spec: ExtractSpec, rules_digest: str,
                  workers: int, cache_dir: Path | None, progress: Progress | None = None,
                  force: frozenset[str] = frozenset()) -> RunResult:
    """Facts for every file, from the cache where the file is unchanged, else parsed.

    Files in `force` are parsed whatever the prefilter says; a cached unparsed record of
    such a file is a miss, and its parsed facts replace it in the cache.
    """
    cache = open_cache(cache_dir, rules_digest)
    problems: list[Problem] = []
    if cache.problem:
        problems.append(Problem(".", cache.problem))
    absolute = {rel: str(root / rel) for rel in files}
    stamps = cache.stamps(absolute.values())
    hits = {rel: f for rel, f in _cache_hits(absolute, stamps, cache).items()
            if f.parsed or rel not in force}
    jobs = [(absolute[rel], rel, rel in force) for rel in files if rel not in hits]
    fresh: list[tuple[str, int, int, bytes, FileFacts]] = [
        (a, s, m, blob, decode(blob))
        for a, s, m, blob in _parse_all(jobs, spec, workers, progress, len(hits), len(files))]
    cache.store((a, s, m, f.digest, blob) for a, s, m, blob, f in fresh if s >= 0 and f.digest)
    if cache.problem and not problems:
        problems.append(Problem(".", cache.problem))
    cache.close()
    by_path = dict(hits)
    by_path.update((f.path, f) for *_, f in fresh)
    ordered = tuple(by_path[rel] for rel in files)
    return RunResult(ordered, tuple(problems), len(hits))


def _cache_hits(absolute: dict[str, str], stamps: dict[str, tuple[int, int, str]],
                cache: FactsCache) -> dict[str, FileFacts]:
    """Files whose size and mtime match a stamp and whose facts are cached."""
    unchanged: dict[str, str] = {}
    for rel, path in absolute.items():
        stamp = stamps.get(path)
        if stamp is None:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_size, st.st_mtime_ns) == stamp[:2]:
            unchanged[rel] = stamp[2]
    cached = cache.facts(unchanged.values())
    return {rel: _relocated(cached[d], rel) for rel, d in unchanged.items() if d in cached}
