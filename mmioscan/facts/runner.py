"""Facts for many files: cache look-up, cheap byte prefilter, parse in a process pool."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import importlib
import multiprocessing
import multiprocessing.pool
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mmioscan import __version__
from mmioscan.cfront import lexer
from mmioscan.cfront.extract import Extractor
from mmioscan.cfront.prefilter import (
    NameScanner,
    field_use_hashes,
    identifier_hashes,
    include_targets,
    mentions_iomem,
)
from mmioscan.core.fileio import BROKEN_LINK, LEAVES_TREE, nonblocking
from mmioscan.core.model import FileFacts, Problem
from mmioscan.core.ruleset import RamSources, Regmap
from mmioscan.core.sources import source_digest
from mmioscan.facts.cache import FactsCache, Stamp, content_digest, decode, encode, file_digest


def extractor_fingerprint() -> str:
    """Cached facts are keyed by the source of the modules that make them (this module and
    everything it imports: the C front end, the records), found from the imports."""
    return f"{__version__}-{source_digest(__name__)}"


_CHUNK = 8

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Limits:
    """What one file may cost. A file over a limit becomes a recorded problem and the scan
    goes on; no file of Linux 6.12 comes near any of them (the largest file the prefilter
    lets through is under 1 MB and parses in about a second; its deepest tree is 33 levels).
    """

    # Files larger than this are not read at all (a stray disk image named foo.c).
    max_read_bytes: int = 256 * 1024 * 1024
    # Files larger than this that the prefilter would parse are not parsed: parsing costs
    # about 1.3 s and 100 MB of memory per MB, in every worker.
    max_parse_bytes: int = 8 * 1024 * 1024
    # CPU seconds one file may take in the extractor; then it is a problem, and not cached
    # (a loaded machine must not make the problem permanent).
    max_seconds: float = 60.0
    # Parse trees deeper than this are not analysed (cfront/depth.py: tree-sitter silently
    # drops what lies below about 65,000 levels; upward walks cost O(depth) per step).
    max_depth: int = 10_000


LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class RunResult:
    facts: tuple[FileFacts, ...]  # sorted by path
    problems: tuple[Problem, ...]
    cache_hits: int
    hit_paths: frozenset[str] = frozenset()  # which files came from the cache


@dataclass(frozen=True, slots=True)
class ExtractSpec:
    """What the extractor looks for; sent once to each worker process."""

    names: frozenset[str]  # catalogued names: the byte prefilter parses files that mention one
    registrations: tuple[tuple[str, tuple[int, ...]], ...] = ()
    hot_fields: frozenset[str] = frozenset()
    hot_structs: tuple[tuple[str, str], ...] = ()  # field -> its ops struct (rules/hotpaths)
    limits: Limits = dataclasses.field(default_factory=lambda: LIMITS)
    regmap: Regmap | None = None  # rules/regmap.toml: the extractor records maps and uses
    ram: RamSources | None = None  # rules/ram.toml: derefs through RAM-backed pointers go
    # The engine (docs/precise.md): "fast" (tree-sitter), or "clang" (libclang with the flags
    # Kbuild gives each built .c file of `tree`; build_key names the prepared build).
    engine: str = "fast"
    tree: str = ""
    flags: tuple[tuple[str, tuple[str, ...]], ...] = ()
    build_key: str = ""


# Engines besides the fast one: imported by name in the workers that use them, so that their
# source keys their own facts only (open_cache), never the fast engine's.
ENGINES = {"clang": "mmioscan.clang.extract"}


class FactsExtractor(Protocol):
    def extract(self, path: str, digest: str, data: bytes) -> FileFacts: ...


def _prefiltered(rel: str) -> bool:
    """Does the byte prefilter decide whether rel is parsed? The fast engine: always; an
    engine may parse some files whatever they mention (`prefiltered(rel)` says which not)."""
    decide = getattr(_Worker.extractor, "prefiltered", None)
    return True if decide is None else bool(decide(rel))


class _Worker:
    """Per-process state: the parser and the name scanner are built once per worker."""

    extractor: FactsExtractor | None = None
    scanner: NameScanner | None = None
    real_dirs: dict[str, str] = {}  # folder -> its real path (_tree_check)
    limits: Limits = LIMITS


def _init_worker(spec: ExtractSpec) -> None:
    if spec.engine == "fast":
        _Worker.extractor = Extractor(spec.names, dict(spec.registrations), spec.hot_fields,
                                      spec.regmap, max_depth=spec.limits.max_depth,
                                      hot_structs=dict(spec.hot_structs), ram=spec.ram)
    else:
        _Worker.extractor = importlib.import_module(ENGINES[spec.engine]).make(spec)
    _Worker.scanner = NameScanner(spec.names)
    _Worker.real_dirs = {}
    _Worker.limits = spec.limits


def _init_pool_worker(spec: ExtractSpec, parent: int) -> None:
    _die_with_parent(parent)
    _init_worker(spec)


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """A worker must not outlive the scan, whatever ends it (SIGKILL included): an orphan
    would wait for work forever (it holds the write end of its own task pipe, so it never
    sees EOF). On Linux the kernel kills it when its parent dies (PR_SET_PDEATHSIG; the
    parent is the thread that created the pool, the main thread here); everywhere, a
    watchdog thread exits when the parent pid changes (the worker was re-parented)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the watchdog below still ends the orphan
    if os.getppid() != parent:  # the parent died before the request above was made
        os._exit(1)

    def watchdog() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watchdog, name="mmioscan-parent-watchdog", daemon=True).start()


class _OverBudget(BaseException):
    """Raised by the CPU timer inside the extractor; a BaseException so that no `except
    Exception` on the way can swallow it."""


@contextlib.contextmanager
def _cpu_budget(seconds: float) -> Iterator[None]:
    """Raise _OverBudget once this process has spent `seconds` of CPU time in the block.

    A timer signal (SIGVTALRM) interrupts Python code, not a long C call; with the size
    limit no single C call of the extractor runs long. Without setitimer (not POSIX) or
    outside the main thread (signal handlers cannot be set there) the block runs unbounded.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not \
            threading.main_thread():
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise _OverBudget

    previous = signal.signal(signal.SIGVTALRM, expired)
    signal.setitimer(signal.ITIMER_VIRTUAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


NOT_UTF8 = "not valid UTF-8 at byte"


def facts_for_bytes(rel: str, data: bytes, force: bool = False,
                    folder: str | None = None) -> FileFacts:
    """Facts of one file's bytes; never raises (an internal error becomes a problem).

    force: parse even when the byte prefilter sees no catalogued name (a file that calls
    wrappers or regmap only, found in a later round of the scan). folder: where the file
    lies, for the fast engine to read the macros of the headers it includes from there.
    """
    assert _Worker.extractor is not None and _Worker.scanner is not None
    digest = content_digest(data)
    if b"\0" in data:
        return FileFacts(rel, digest, len(data), parsed=False,
                         problems=(Problem(rel, "binary file (NUL bytes): not scanned"),))
    notes: tuple[Problem, ...] = ()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        notes = (Problem(rel, f"{NOT_UTF8} {exc.start}: scanned as raw bytes"),)
    # the set once: the name test over it is a few look-ups (over the list it hashed every
    # word), and a skipped file's identifier hashes are taken from it
    found = set(lexer.words(data))
    skip = (not _Worker.scanner.mentioned(found) and not mentions_iomem(data)
            and _prefiltered(rel))
    # a skipped file's identifiers, hashed here, on the workers: the caller rounds would read
    # and split every unparsed file of the tree again, in the main process
    identifiers = identifier_hashes(found) if skip else b""
    field_uses = field_use_hashes(data) if skip else b""
    if skip and not force:
        return FileFacts(rel, digest, len(data), parsed=False, problems=notes,
                         includes=include_targets(data), identifiers=identifiers,
                         field_uses=field_uses)
    limits = _Worker.limits
    if len(data) > limits.max_parse_bytes:
        return FileFacts(rel, digest, len(data), parsed=False, problems=(*notes, Problem(
            rel, f"too large: {len(data):,} bytes (limit {limits.max_parse_bytes:,}): "
            "not parsed")), includes=include_targets(data))
    try:
        with _cpu_budget(limits.max_seconds):
            if isinstance(_Worker.extractor, Extractor):
                facts = _Worker.extractor.extract(rel, digest, data, folder)
            else:
                facts = _Worker.extractor.extract(rel, digest, data)
    except _OverBudget:
        # No digest: not cached, so a later scan tries again (the limit is machine time).
        return FileFacts(rel, "", len(data), parsed=False, problems=(*notes, Problem(
            rel, f"took more than {limits.max_seconds:g} s of CPU time: not parsed")),
            includes=include_targets(data))
    except Exception as exc:  # noqa: BLE001 - one bad file must not end the scan
        return FileFacts(rel, digest, len(data), parsed=False,
                         problems=(*notes, Problem(rel, f"internal error while parsing: {exc}")))
    if notes or skip:
        facts = dataclasses.replace(facts, problems=notes + facts.problems, forced=skip,
                                    prefilter_includes=include_targets(data) if skip else (),
                                    identifiers=identifiers, field_uses=field_uses)
    return facts


def _tree_check(absolute: str, rel: str, real_dirs: dict[str, str]) -> str | None:
    """Why the file must not be read, or None. Its real path must stay under the tree root:
    a symlink (of the file, or of a folder on its way) to a file elsewhere would put that
    file's text into the output. A symlink within the tree is followed (README, Reliability).
    real_dirs memoizes the real path of each folder (one lstat per folder, not per file).
    """
    if _folder_leaves(absolute, rel, real_dirs):
        return LEAVES_TREE
    if not os.path.islink(absolute):
        return None
    real = os.path.realpath(absolute)
    if not _under(real, _real_folder(_root_of(absolute, rel), real_dirs)):
        return LEAVES_TREE
    return None if os.path.exists(real) else BROKEN_LINK


def _root_of(absolute: str, rel: str) -> str:
    """The tree root of a job: `absolute` is str(root / rel)."""
    return absolute[:len(absolute) - len(rel)].rstrip("/") or "/"


def _folder_leaves(absolute: str, rel: str, real_dirs: dict[str, str]) -> bool:
    """Does the real path of the file's folder lie outside the tree root?"""
    return not _under(_real_folder(os.path.dirname(absolute), real_dirs),
                      _real_folder(_root_of(absolute, rel), real_dirs))


def _real_folder(folder: str, real_dirs: dict[str, str]) -> str:
    """realpath(folder), from its parent's (memoized): one lstat per folder, not one per
    component of every path."""
    found = real_dirs.get(folder)
    if found is not None:
        return found
    parent = os.path.dirname(folder)
    try:
        is_link = stat.S_ISLNK(os.lstat(folder).st_mode)
    except OSError:
        is_link = False
    if is_link or parent == folder or {"", ".", ".."} & set(folder.split("/")[1:]):
        found = os.path.realpath(folder)  # a link, the top, or `..` to take after links
    else:
        found = os.path.join(_real_folder(parent, real_dirs), os.path.basename(folder))
    real_dirs[folder] = found
    return found


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root if root.endswith("/") else root + "/")


def _process(job: tuple[str, str, bool]) -> tuple[str, int, int, bytes]:
    """Facts of one file, already encoded: the worker pickles once, for the pipe and the cache."""
    absolute, rel, force = job
    try:
        refused = _tree_check(absolute, rel, _Worker.real_dirs)
        if refused is not None:
            return absolute, -1, -1, encode(_refused(rel, refused))
        # Non-blocking: a FIFO named *.c must not wait for a writer; fstat on the open file
        # then refuses it (or a device) without a window for swapping it in.
        with open(absolute, "rb", opener=nonblocking) as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
                return absolute, -1, -1, encode(_unreadable(rel, "not a regular file"))
            limit = _Worker.limits.max_read_bytes
            if st.st_size > limit:
                return absolute, -1, -1, encode(_refused(
                    rel, f"too large: {st.st_size:,} bytes (limit {limit:,}): not read"))
            data = fh.read()
    except OSError as exc:
        return absolute, -1, -1, encode(_unreadable(rel, exc.strerror or str(exc)))
    return absolute, st.st_size, st.st_mtime_ns, encode(
        facts_for_bytes(rel, data, force, os.path.dirname(absolute)))


def _refused(rel: str, message: str) -> FileFacts:
    return FileFacts(rel, "", 0, parsed=False, problems=(Problem(rel, message),))


def _unreadable(rel: str, reason: str) -> FileFacts:
    return FileFacts(rel, "", 0, parsed=False, problems=(Problem(rel, f"cannot read: {reason}"),))


def _relocated(facts: FileFacts, rel: str) -> FileFacts:
    """Cached facts are keyed by content: give them the path they are found at now."""
    if facts.path == rel:
        return facts
    problems = tuple(dataclasses.replace(p, path=rel) for p in facts.problems)
    return dataclasses.replace(facts, path=rel, problems=problems)


class Workers:
    """The worker processes of one analysis, started at the first parse that needs them and
    kept for the later ones: the caller rounds, context and hot headers parse eight batches
    or more in a whole-tree scan, and a pool started for each cost its workers' start (an
    interpreter, the imports, the parser and queries: about 1.5 s) every time. Close it, or
    use it as a context manager."""

    def __init__(self, spec: ExtractSpec, jobs: int) -> None:
        self.spec, self.jobs = spec, jobs
        self._pool: multiprocessing.pool.Pool | None = None
        self._local = False  # this process's own parser is set up (_init_worker)

    def map(self, jobs: list[tuple[str, str, bool]]) -> Iterator[tuple[str, int, int, bytes]]:
        """_process of every job, in any order."""
        if self._pool is None and pool_size(self.jobs, len(jobs)) <= 1:
            if not self._local:
                _init_worker(self.spec)
                self._local = True
            return map(_process, jobs)
        if self._pool is None:
            # spawn, not fork: a fork of a main process already holding the facts of earlier
            # rounds would have every worker count those pages again (peak memory near 2 GB
            # on drivers/).
            ctx = multiprocessing.get_context("spawn")
            self._pool = ctx.Pool(pool_size(self.jobs, max(len(jobs), 2 * _CHUNK * self.jobs)),
                                  initializer=_init_pool_worker,
                                  initargs=(self.spec, os.getpid()))
        return self._pool.imap_unordered(_process, jobs, chunksize=_CHUNK)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None and self._pool is not None:
            self._pool.terminate()  # an interrupted scan does not wait for queued files
        self.close()


def _parse_all(jobs: list[tuple[str, str, bool]], workers: Workers,
               progress: Progress | None, done: int, total: int
               ) -> Iterator[tuple[str, int, int, bytes]]:
    if not jobs:
        return  # every file came from the cache: no parser to build
    for item in workers.map(jobs):
        done += 1
        if progress is not None:
            progress(done, total)
        yield item


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def pool_size(requested: int, files: int) -> int:
    """Worker processes for `files` files: `--jobs`, but never more than the cores (each
    worker is a whole interpreter with a parser: -j 1000 started 830 of them and ran out of
    memory) nor than the chunks of work; 1 (no pool, parse in this process) for fewer than
    two chunks."""
    if files < 2 * _CHUNK:
        return 1
    return max(1, min(requested, usable_cores(), -(-files // _CHUNK)))


def open_cache(cache_dir: Path | None, rules_digest: str,
               spec: ExtractSpec | None = None) -> FactsCache:
    if spec is None or spec.engine == "fast":
        return FactsCache(cache_dir, f"{extractor_fingerprint()}/{rules_digest}")
    # Another engine's facts live apart, per prepared build: a store drops other salts.
    folder = cache_dir / spec.engine / spec.build_key if cache_dir is not None else None
    engine = source_digest(ENGINES[spec.engine])
    return FactsCache(folder, f"{extractor_fingerprint()}-{engine}/{rules_digest}")


def collect_facts(root: Path, files: tuple[str, ...], spec: ExtractSpec, rules_digest: str,
                  workers: int | Workers, cache_dir: Path | None,
                  progress: Progress | None = None,
                  force: frozenset[str] = frozenset()) -> RunResult:
    """Facts for every file, from the cache where the file is unchanged, else parsed.

    Files in `force` are parsed whatever the prefilter says; a cached unparsed record of
    such a file is a miss, and its parsed facts replace it in the cache. workers: a pool
    kept across calls (Workers, made with the same spec), or how many to start for this one.
    """
    if not isinstance(workers, Workers):
        with Workers(spec, workers) as own:
            return collect_facts(root, files, spec, rules_digest, own, cache_dir, progress,
                                 force)
    cache = open_cache(cache_dir, rules_digest, spec)
    problems: list[Problem] = []
    if cache.problem:
        problems.append(Problem(".", cache.problem))
    absolute = {rel: str(root / rel) for rel in files}
    stamps = cache.stamps(absolute.values())
    hits = {rel: f if rel in force or not f.forced else _unforced(f)
            for rel, f in _cache_hits(absolute, stamps, cache).items()
            if f.parsed or rel not in force}
    jobs = [(absolute[rel], rel, rel in force) for rel in files if rel not in hits]
    taken = time.time_ns()  # before any file is read: the stamps' reference time
    fresh: list[tuple[str, int, int, bytes, FileFacts]] = [
        (a, s, m, blob, decode(blob))
        for a, s, m, blob in _parse_all(jobs, workers, progress, len(hits), len(files))]
    cache.store((a, _stamp_after(a, f, taken), f.digest, blob)
                for a, s, _m, blob, f in fresh if s >= 0 and f.digest)
    if cache.problem and not problems:
        problems.append(Problem(".", cache.problem))
    cache.close()
    by_path = dict(hits)
    by_path.update((f.path, f) for *_, f in fresh)
    ordered = tuple(by_path[rel] for rel in files)
    return RunResult(ordered, tuple(problems), len(hits), frozenset(hits))


def _unforced(facts: FileFacts) -> FileFacts:
    """The record a scan that does not force this file would have made: unparsed, with its
    includes and the notes about its bytes (not those of the parse)."""
    notes = tuple(p for p in facts.problems if p.message.startswith(NOT_UTF8))
    return FileFacts(facts.path, facts.digest, facts.size, parsed=False, problems=notes,
                     includes=facts.prefilter_includes, identifiers=facts.identifiers,
                     field_uses=facts.field_uses)


def _stamp_after(path: str, facts: FileFacts, taken: int) -> Stamp | None:
    """The stamp of a file just read, from an lstat after the read: its content was read
    after `taken`, so a change after the read shows as a ctime after `taken` (a racy stamp,
    verified by content next time). None for a symlink (never a stamp: each run checks where
    it leads) or a file whose size no longer matches what was read."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size != facts.size:
        return None
    return Stamp.of(st, taken, facts.digest)


def _cache_hits(absolute: dict[str, str], stamps: dict[str, Stamp],
                cache: FactsCache) -> dict[str, FileFacts]:
    """Files whose stamp matches (size, mtime, ctime, inode) and whose facts are cached.

    A racy stamp (facts/cache.py) is trusted only after hashing the file; it is then
    renewed, so the next run takes the fast path. A symlink, or a file in a folder whose
    real path leaves the tree, is never a hit: _process decides about it."""
    now = time.time_ns()
    real_dirs: dict[str, str] = {}
    unchanged: dict[str, str] = {}
    renewed: list[tuple[str, Stamp]] = []
    for rel, path in absolute.items():
        stamp = stamps.get(path)
        if stamp is None:
            continue
        try:
            st = os.lstat(path)
            if (not stat.S_ISREG(st.st_mode) or not stamp.matches(st)
                    or _folder_leaves(path, rel, real_dirs)):
                continue
            if stamp.racy:
                if file_digest(path) != stamp.digest:
                    continue
                renewed.append((path, Stamp.of(st, now, stamp.digest)))
        except OSError:
            continue
        unchanged[rel] = stamp.digest
    cached = cache.facts(unchanged.values())
    cache.store_stamps((p, s) for p, s in renewed if s.digest in cached)
    seen: dict[str, tuple[int, int] | None] = {}
    return {rel: _relocated(cached[d], rel) for rel, d in unchanged.items()
            if d in cached and _depends_unchanged(cached[d], seen)}


def _depends_unchanged(facts: FileFacts, seen: dict[str, tuple[int, int] | None]) -> bool:
    """Are the files a parse read (the precise engine's headers, the fast engine's headers
    of pasting macros) as they were?"""
    for path, size, mtime_ns in facts.depends:
        if path not in seen:
            try:
                st = os.stat(path)
                seen[path] = (st.st_size, st.st_mtime_ns)
            except OSError:
                seen[path] = None
        if seen[path] != (size, mtime_ns):
            return False
    return True
