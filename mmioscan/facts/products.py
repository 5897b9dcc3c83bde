"""Whole-run products cached by content: a warm run with nothing changed does no analysis.

The facts cache (facts/cache.py) saves the parsing, but every later stage (context headers,
wrapper callers, the call graph, sites, drivers and verdicts, patch points) used to run again
on every scan. Here the result of a run, and each rendering of it, is kept under two keys:

* the *options key*: what was asked (paths, root, the analysis options, `--config` and
  `--patch-points` by content, every rules file, the package's own source).
* the *inputs digest*: the content of every file under the kernel root that any stage can
  read (C sources and headers, assembler and Rust sources that Kbuild objects are made of,
  Kconfig, Makefile and Kbuild files), by path. Digests come from the facts cache's stamps
  (size, mtime, ctime, inode; racy stamps verified by hashing, facts/cache.py): a file whose
  stamp no longer matches is hashed again, so a `touch` costs one hash and changes nothing,
  while an edit that restores the mtime still changes the ctime and is seen. The cache is
  invalidated by content, never by time alone.

An entry is named by both, and the MAX_ENTRIES most recently used are kept: undoing an edit or
checking a branch out again finds its products still there.

A hit serves the stored result (and, when it was rendered before, its rendered text): same
bytes as the run that made it, except the text summary's count of files served from the cache,
which on a hit is every file. Only the fast engine's runs are kept: the precise engine reads a
prepared build outside the tree.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import pickle
import shutil
import stat
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mmioscan.core.model import ScanResult
from mmioscan.core.rules_path import rules_dir
from mmioscan.facts.cache import RACY_NS, FactsCache, Stamp, file_digest
from mmioscan.kernel.tree import is_kernel_root

# Entries kept (options key and inputs, the most recently used): a user alternating a few
# commands or branches keeps them warm, and the folder stays bounded (a whole-tree JSON
# rendering is about 240 MB).
MAX_ENTRIES = 6
_BUILD_PREFIXES = ("Kconfig", "Makefile", "Kbuild")
_SOURCE_SUFFIXES = (".c", ".h", ".S", ".rs")
_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def is_input(name: str) -> bool:
    """Can a stage read a file of this name (or does its presence change an answer)?"""
    return name.endswith(_SOURCE_SUFFIXES) or name.startswith(_BUILD_PREFIXES)


def input_files(root: Path, skip: frozenset[str] = frozenset()
                ) -> Iterator[tuple[str, os.stat_result]]:
    """(absolute path, lstat) of every input file under root, hidden folders left out as the
    scan leaves them (kernel/tree.py), folders named in `skip` (the cache) too; sorted."""
    stack = [str(root)]
    found: list[tuple[str, os.stat_result]] = []
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # the scan records an unreadable folder; here it simply adds nothing
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith(".") and entry.path not in skip:
                        stack.append(entry.path)
                elif is_input(entry.name) or entry.is_symlink():
                    found.append((entry.path, entry.stat(follow_symlinks=False)))
            except OSError:
                continue
    found.sort(key=lambda item: os.fsencode(item[0]))
    return iter(found)


def inputs_digest(root: Path, cache: FactsCache, skip: frozenset[str] = frozenset(),
                  manifest: Path | None = None,
                  listed: list[tuple[str, os.stat_result]] | None = None,
                  each: dict[str, str] | None = None) -> str:
    """One digest of the content of every input file under root (see the module doc).

    A symlink counts by where it points (the scan decides whether it follows it). Stamps come
    from `manifest` (this root's stamps in one file: looking 66,000 up in SQLite took a
    second), else from the facts cache; a file without a valid stamp is hashed and its
    stamp recorded, so the next run reads nothing. listed: input_files(root, skip), if
    already taken. each: filled with every file's own part of the digest, by path under
    root (its content digest; what a link points to), for analysis/unchanged.py."""
    files = list(input_files(root, skip)) if listed is None else listed
    known = _load_manifest(manifest)
    missing = [p for p, _ in files if p not in known]
    stamps = {**known, **cache.stamps(missing)} if missing else known
    now = time.time_ns()
    renewed: list[tuple[str, Stamp]] = []
    current: dict[str, Stamp] = {}
    digest = hashlib.sha1(usedforsecurity=False)
    for path, st in files:
        digest.update(os.fsencode(path[len(str(root)):]))
        digest.update(b"\0")
        if stat.S_ISLNK(st.st_mode):
            target = "?"
            with contextlib.suppress(OSError):
                target = os.readlink(path)
                digest.update(b"->" + os.fsencode(target))
            digest.update(b"\0")
            if each is not None:
                each[path[len(str(root)):].lstrip("/")] = "->" + target
            continue
        stamp = stamps.get(path)
        if stamp is None or not stamp.trusted(st):
            hashed = file_digest(path)
            stamp = None
            if hashed is not None:
                stamp = Stamp.of(st, now, hashed)
                renewed.append((path, stamp))
        if stamp is not None:
            current[path] = stamp
        part = stamp.digest if stamp is not None else "unreadable"
        digest.update(part.encode())
        digest.update(b"\0")
        if each is not None:
            each[path[len(str(root)):].lstrip("/")] = part
    cache.store_stamps(renewed)
    if manifest is not None and current != known:
        _write(manifest, pickle.dumps(current, protocol=pickle.HIGHEST_PROTOCOL))
    return digest.hexdigest()


def _load_manifest(path: Path | None) -> dict[str, Stamp]:
    if path is None:
        return {}
    try:
        loaded = pickle.loads(path.read_bytes())
    except Exception:  # noqa: BLE001 - a damaged manifest only costs the SQLite look-up
        return {}
    return loaded if isinstance(loaded, dict) else {}


def package_digest() -> str:
    """The package's source and its shipped rules: a new version never serves old products."""
    digest = hashlib.sha1(usedforsecurity=False)
    for base in (_PACKAGE_DIR, rules_dir()):
        for path in sorted(base.rglob("*")):
            if path.suffix in (".py", ".toml") and path.is_file():
                digest.update(path.relative_to(base).as_posix().encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()


def user_file_digest(path: Path | None) -> str:
    """A user's file (a .config, a patch-point list, a rules file) by content."""
    if path is None:
        return "-"
    return file_digest(str(path)) or f"unreadable:{path}"


@dataclass(slots=True)
class Products:
    """The cached products of one options key, valid for one inputs digest. A run that
    cannot hit (no entry of its key at all: a cold cache, new options) takes the digest
    after the analysis, `later`, when the facts stage has stamped every source file it
    read: hashing the whole tree first, then again file by file in the workers, was 9 s of
    a cold whole-tree run. Until then `inputs` is None and nothing is served or stored."""

    folder: Path
    key: str
    inputs: str | None
    later: Callable[[], str | None] | None = None
    # every input file's own digest, by path under the root (inputs_digest's `each`),
    # filled with `inputs`: kept with a stored result, so that a later run can tell which
    # files an edit changed (analysis/unchanged.py)
    each: dict[str, str] = dataclasses.field(default_factory=dict)

    def _settle(self) -> bool:
        """Is the inputs digest known (taken now if it was deferred)?"""
        if self.inputs is None and self.later is not None:
            self.inputs, self.later = self.later(), None
        return self.inputs is not None

    @property
    def _stem(self) -> str:
        # Options and inputs both name the entry: going back to an earlier state of the tree
        # (an edit undone, a branch checked out again) finds its products still there.
        return f"{self.key}-{(self.inputs or '')[:20]}"

    @property
    def _result_file(self) -> Path:
        return self.folder / f"{self._stem}.result"

    def _rendered_file(self, renderer: str) -> Path:
        return self.folder / f"{self._stem}.{renderer}.out"

    def has_result(self) -> bool:
        """Was a result stored for these inputs? (reads one line, not the result)"""
        if self.inputs is None:
            return False
        try:
            with open(self._result_file, "rb") as fh:
                found = fh.readline().rstrip(b"\n") == self.inputs.encode()
            os.utime(self._result_file)  # most recently used: pruned last
        except OSError:
            return False
        return found

    def result(self) -> ScanResult | None:
        """The stored result if it was made from these inputs; None otherwise."""
        if self.inputs is None:
            return None
        loaded = _load(self._result_file, self.inputs)
        if not isinstance(loaded, ScanResult):
            return None
        with contextlib.suppress(OSError):
            os.utime(self._result_file)  # most recently used: pruned last
        # Every file's facts come from the cache now (the text summary says how many).
        return dataclasses.replace(loaded, stats=dataclasses.replace(
            loaded.stats, cache_hits=loaded.stats.files_listed))

    def store_result(self, result: ScanResult) -> None:
        # The per-file facts are left out: no renderer reads them (cross-checks of the
        # precise engine do, and they never use this cache).
        if not self._settle():
            return  # an input changed while the analysis ran: this result is no one's
        assert self.inputs is not None
        for stale in self.folder.glob(f"{self._stem}.*.out"):
            with contextlib.suppress(OSError):
                stale.unlink()
        _save(self._side_file("inputs"), self.inputs, self.each)
        _save(self._side_file("reads"), self.inputs, {r.path: r for r in result.text_reads})
        _save(self._result_file, self.inputs,
              dataclasses.replace(result, facts=(), text_reads=()))
        _prune(self.folder)

    def _side_file(self, what: str) -> Path:
        return self.folder / f"{self._stem}.{what}"

    def earlier(self) -> list[str]:
        """The other stored entries of this options key (their stems), newest first."""
        try:
            found = sorted(self.folder.glob(f"{self.key}-*.result"),
                           key=lambda p: p.stat().st_mtime_ns, reverse=True)
        except OSError:
            return []
        return [p.name.removesuffix(".result") for p in found
                if p.name.removesuffix(".result") != self._stem]

    def side(self, stem: str, what: str) -> object:
        """What entry `stem` keeps beside its result ("inputs": each file's digest;
        "reads": the TextReads by path), or None."""
        return _load_any(self.folder / f"{stem}.{what}")

    def adopt(self, stem: str) -> bool:
        """Store entry `stem`'s result and renderings as these inputs' own (an edit that
        changes no answer: analysis/unchanged.py), the same bytes under this entry's name;
        False when that entry cannot be read."""
        if self.inputs is None:
            return False
        header = self.inputs.encode() + b"\n"
        renderings = list(self.folder.glob(f"{stem}.*.out"))
        copies = [(self.folder / f"{stem}.result", self._result_file),
                  (self.folder / f"{stem}.reads", self._side_file("reads")),
                  *((old, self.folder / (self._stem + old.name[len(stem):]))
                    for old in renderings)]
        for old, new in copies:
            if not _rewrite_header(old, new, header):
                return False
        _save(self._side_file("inputs"), self.inputs, self.each)
        _prune(self.folder)
        return True

    def rendered(self, renderer: str) -> bytes | None:
        """The bytes a renderer wrote for these inputs (kept as they are: no pickle)."""
        if self.inputs is None:
            return None
        try:
            with open(self._rendered_file(renderer), "rb") as fh:
                if fh.readline().rstrip(b"\n") != self.inputs.encode():
                    return None
                data = fh.read()
        except OSError:
            return None
        # The entry ends with its length: a torn or truncated file is a miss.
        body, _, size = data.rpartition(b"\n")
        return body if size.isdigit() and int(size) == len(body) else None

    def store_rendered(self, renderer: str, data: bytes) -> None:
        if self.inputs is None:
            return  # stored only with the result it renders
        _write(self._rendered_file(renderer), self.inputs.encode() + b"\n" + data + b"\n"
               + str(len(data)).encode())


def _load(path: Path, inputs: str) -> object:
    """What was saved at path for these inputs, or None (missing, stale or corrupt)."""
    try:
        with open(path, "rb") as fh:
            if fh.readline().rstrip(b"\n") != inputs.encode():
                return None
            return pickle.loads(zlib.decompress(fh.read()))
    except Exception:  # noqa: BLE001 - a damaged entry is only a miss
        return None


def _load_any(path: Path) -> object:
    """What was saved at path, for whatever inputs, or None (missing or corrupt)."""
    try:
        with open(path, "rb") as fh:
            fh.readline()
            return pickle.loads(zlib.decompress(fh.read()))
    except Exception:  # noqa: BLE001 - a damaged entry is only a miss
        return None


def _save(path: Path, inputs: str, value: object) -> None:
    """Write atomically (a concurrent reader sees the old entry or the new one); a cache that
    cannot be written costs the next run its speed, never its answer."""
    try:
        blob = zlib.compress(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), 1)
    except pickle.PicklingError:
        return
    _write(path, inputs.encode() + b"\n" + blob)


def _write(path: Path, data: bytes) -> None:
    with contextlib.suppress(OSError), _replacing(path) as fh:
        fh.write(data)


def _rewrite_header(old: Path, new: Path, header: bytes) -> bool:
    """Copy old to new with its first line replaced by header, streamed: a whole-tree JSON
    rendering is 260 MB."""
    try:
        with open(old, "rb") as src, _replacing(new) as dst:
            src.readline()
            dst.write(header)
            shutil.copyfileobj(src, dst, 1 << 20)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[BinaryIO]:
    """A file written beside path and put in its place when the block ends (a concurrent
    reader sees the old file or the new one); removed if the block fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _prune(folder: Path) -> None:
    """Keep the MAX_ENTRIES most recently used results (and their renderings)."""
    try:
        results = sorted(folder.glob("*.result"), key=lambda p: p.stat().st_mtime_ns,
                         reverse=True)
    except OSError:
        return
    for old in results[MAX_ENTRIES:]:
        key = old.name.removesuffix(".result")
        for path in (old, *folder.glob(f"{key}.*.out"), folder / f"{key}.inputs",
                     folder / f"{key}.reads"):
            with contextlib.suppress(OSError):
                path.unlink()


def options_key(asked: str, user_files: tuple[Path | None, ...], rules_digest: str) -> str:
    """The key of what was asked: `asked` (the options as text, paths as given), the working
    folder (relative paths mean something else elsewhere), the user's files by content, the
    rules and the package's source."""
    digest = hashlib.sha1(usedforsecurity=False)
    for part in (asked, os.getcwd(), *(user_file_digest(p) for p in user_files), rules_digest,
                 package_digest()):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()[:24]


def open_products(cache_dir: Path | None, root: Path, key: str,
                  bounded: bool = False) -> Products | None:
    """The products of `key` under the current content of the tree at root; None without a
    cache (--no-cache, or a cache folder that cannot be used) and outside a kernel tree: the
    root of loose C files is the folder they are in (a home folder, say), and every input
    file under it would be walked and hashed on each run. bounded: root holds only what a
    scan needs, whatever it looks like (the gate's copy of a version: the scanned folders,
    their headers and the build files)."""
    if cache_dir is None or not (bounded or is_kernel_root(root)):
        return None
    cache = FactsCache(cache_dir, "")
    if not cache.enabled:
        return None
    folder = cache_dir / "products"
    try:
        skip = frozenset({str(cache_dir.resolve())})
        where = hashlib.sha1(os.fsencode(str(root)), usedforsecurity=False).hexdigest()[:16]
        manifest = folder / f"inputs-{where}.stamps"
        listed = list(input_files(root, skip))
        each: dict[str, str] = {}
        if not _has_entries(folder, key) and not _racy(listed, time.time_ns()):
            return Products(folder, key, None,
                            functools.partial(_digest_after, cache_dir, root, skip, manifest,
                                              listed, each), each)
        inputs = inputs_digest(root, cache, skip, manifest, listed, each)
    finally:
        cache.close()
    return Products(folder, key, inputs, each=each)


def _has_entries(folder: Path, key: str) -> bool:
    """Is any result of this options key stored (for whatever inputs)?"""
    try:
        return any(folder.glob(f"{key}-*.result"))
    except OSError:
        return False


def _racy(listed: list[tuple[str, os.stat_result]], now: int) -> bool:
    """Was a file changed so recently that a write in the same timestamp tick could leave
    its stat as it is (facts/cache.py)? Then its stat before and after a run cannot vouch
    for it, and the digest is taken before the run, as for a possible hit."""
    return any(max(st.st_mtime_ns, st.st_ctime_ns) >= now - RACY_NS for _p, st in listed)


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _digest_after(cache_dir: Path, root: Path, skip: frozenset[str], manifest: Path,
                  before: list[tuple[str, os.stat_result]],
                  each: dict[str, str] | None = None) -> str | None:
    """The inputs digest after a run, when every input file is as it was listed before the
    run (same names, same stat: none was touched since, _racy ruled out same-tick writes);
    None when one changed (the result may hold some of both contents)."""
    listed = list(input_files(root, skip))
    if [(p, _stat_key(st)) for p, st in listed] != [(p, _stat_key(st)) for p, st in before]:
        return None
    cache = FactsCache(cache_dir, "")
    if not cache.enabled:
        return None
    try:
        return inputs_digest(root, cache, skip, manifest, listed, each)
    finally:
        cache.close()
