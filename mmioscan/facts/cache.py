"""Per-file facts cached in SQLite, keyed by content hash plus tool and rules versions.

Two tables: `file_stamps` maps a path to what its stat said when its content was hashed (size,
nanosecond mtime, ctime, inode, and when that was), so a warm run reads no unchanged file at
all, and `facts` maps (digest, salt) to the pickled FileFacts. The salt changes whenever the
tool or the rules change, so stale facts are never served.

Paths are stored as their bytes (os.fsencode): a file name that is not UTF-8 is a surrogate
escape in Python, which sqlite's text columns refuse. A stamp is trusted only when all of
size, mtime, ctime and inode match: `touch -d` restores an mtime, never a ctime. When the
file's mtime or ctime lies within RACY_NS of the moment the stamp was taken, a later write in
the same timestamp tick could have left every field as it was (git's "racy" entries): such a
stamp is verified by hashing the file (facts/runner.py `_cache_hits`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sqlite3
import stat
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmioscan.core.fileio import nonblocking
from mmioscan.core.model import FileFacts

# Filesystem timestamps are coarser than time.time_ns(): FAT keeps 2 s, ext3 and HFS+ 1 s,
# and the kernel's coarse clock lags by a tick even on nanosecond filesystems.
RACY_NS = 2_000_000_000
_BATCH = 500  # keys per look-up statement (SQLite allows 999 parameters in old versions)

_SCHEMA = """
DROP TABLE IF EXISTS stamps;
CREATE TABLE IF NOT EXISTS file_stamps (path BLOB PRIMARY KEY, size INTEGER, mtime_ns INTEGER,
                                        ctime_ns INTEGER, ino INTEGER, taken_ns INTEGER,
                                        digest TEXT);
CREATE TABLE IF NOT EXISTS facts (digest TEXT, salt TEXT, blob BLOB, PRIMARY KEY (digest, salt));
CREATE TABLE IF NOT EXISTS negatives (digest TEXT, names TEXT, salt TEXT,
                                      PRIMARY KEY (digest, names, salt));
CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, salt TEXT, used_ns INTEGER,
                                    blob BLOB);
"""
# Records kept (analysis/replay.py: one per scope scanned, the most recently used)
MAX_RECORDS = 8


@dataclass(frozen=True, slots=True)
class Stamp:
    """A file's stat when its content had this digest; taken_ns: when (time.time_ns()),
    no later than the read of the content."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    taken_ns: int
    digest: str

    @classmethod
    def of(cls, st: os.stat_result, taken_ns: int, digest: str) -> Stamp:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, taken_ns, digest)

    def matches(self, st: os.stat_result) -> bool:
        return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) == (
            self.size, self.mtime_ns, self.ctime_ns, self.ino)

    def trusted(self, st: os.stat_result) -> bool:
        """Does the stamp vouch for the file's content as it is now, without hashing it?"""
        return self.matches(st) and not self.racy

    @property
    def racy(self) -> bool:
        """Could the file have changed after the stamp without changing its stat?"""
        return max(self.mtime_ns, self.ctime_ns) >= self.taken_ns - RACY_NS


def content_digest(data: bytes) -> str:
    """The digest that keys a file's content everywhere (facts, stamps, products)."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def file_digest(path: str) -> str | None:
    """content_digest of a regular file, read in 1 MB pieces (a stray 10 GB x.c is never
    held whole); None for anything else or an unreadable file."""
    try:
        with open(path, "rb", opener=nonblocking) as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            digest = hashlib.sha1(usedforsecurity=False)
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
            return digest.hexdigest()
    except OSError:
        return None


def encode(facts: FileFacts) -> bytes:
    return zlib.compress(pickle.dumps(facts, protocol=pickle.HIGHEST_PROTOCOL), 1)


def decode(blob: bytes) -> FileFacts:
    facts = pickle.loads(zlib.decompress(blob))
    if not isinstance(facts, FileFacts):
        raise TypeError("cache entry is not FileFacts")
    return facts


class FactsCache:
    """A cache that degrades to a no-op when its database cannot be used."""

    def __init__(self, directory: Path | None, salt: str) -> None:
        self.salt = salt
        self.problem: str | None = None
        self._db: sqlite3.Connection | None = None
        if directory is None:
            return
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.path = directory / "facts.sqlite3"
            self._db = sqlite3.connect(self.path)
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            self.problem = f"cache disabled: {exc}"
            self._db = None

    @property
    def enabled(self) -> bool:
        return self._db is not None

    def stamps(self, paths: Iterable[str]) -> dict[str, Stamp]:
        """The stamps known for these absolute paths (looked up by key: the table holds every
        file any earlier scan read, the whole tree's after one whole-tree scan)."""
        if self._db is None:
            return {}
        wanted = {os.fsencode(p): p for p in paths}
        found: dict[str, Stamp] = {}
        for key, *fields in self._rows(
                "SELECT path, size, mtime_ns, ctime_ns, ino, taken_ns, digest FROM file_stamps"
                " WHERE path IN ({})", list(wanted)):
            path = wanted.get(key) if isinstance(key, bytes) else None
            if path is not None:
                found[path] = Stamp(*fields)
        return found

    def facts(self, digests: Iterable[str]) -> dict[str, FileFacts]:
        if self._db is None:
            return {}
        found: dict[str, FileFacts] = {}
        for digest, blob in self._rows(
                "SELECT digest, blob FROM facts WHERE salt = ? AND digest IN ({})",
                sorted(set(digests)), (self.salt,)):
            with contextlib.suppress(Exception):  # a corrupt entry is just a miss
                found[digest] = decode(blob)
        return found

    def _rows(self, query: str, keys: list[bytes] | list[str],
              head: tuple[str, ...] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of `query` whose key is one of `keys`, asked in batches (SQLite bounds the
        number of parameters of one statement)."""
        assert self._db is not None
        for start in range(0, len(keys), _BATCH):
            batch = keys[start:start + _BATCH]
            yield from self._db.execute(query.format(",".join("?" * len(batch))),
                                        (*head, *batch))

    def store(self, entries: Iterable[tuple[str, Stamp | None, str, bytes]]) -> None:
        """Record (absolute path, its stamp or None, digest, encoded facts) of fresh files."""
        if self._db is None:
            return
        try:
            with self._db:
                # Facts of an older tool or rules version can never be served again.
                self._db.execute("DELETE FROM facts WHERE salt != ?", (self.salt,))
                for path, stamp, digest, blob in entries:
                    if stamp is not None:
                        self._put_stamp(path, stamp)
                    self._db.execute("INSERT OR REPLACE INTO facts VALUES (?, ?, ?)",
                                     (digest, self.salt, blob))
        except sqlite3.Error as exc:
            self.problem = f"cache not updated: {exc}"

    def store_stamps(self, entries: Iterable[tuple[str, Stamp]]) -> None:
        """Record the stamps of files whose content was verified (facts already cached)."""
        if self._db is None:
            return
        try:
            with self._db:
                for path, stamp in entries:
                    self._put_stamp(path, stamp)
        except sqlite3.Error as exc:
            self.problem = f"cache not updated: {exc}"

    def _put_stamp(self, path: str, stamp: Stamp) -> None:
        assert self._db is not None
        self._db.execute("INSERT OR REPLACE INTO file_stamps VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (os.fsencode(path), stamp.size, stamp.mtime_ns, stamp.ctime_ns,
                          stamp.ino, stamp.taken_ns, stamp.digest))

    def negatives(self) -> set[tuple[str, str]]:
        """(file digest, hash of a name set) pairs known not to mention any of the names."""
        if self._db is None:
            return set()
        rows = self._db.execute("SELECT digest, names FROM negatives WHERE salt = ?",
                                (self.salt,))
        return set(rows)

    def store_negatives(self, pairs: Iterable[tuple[str, str]]) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM negatives WHERE salt != ?", (self.salt,))
            db.executemany("INSERT OR IGNORE INTO negatives VALUES (?, ?, ?)",
                           ((d, n, self.salt) for d, n in pairs))
        self._write(work)

    def record(self, key: str) -> bytes | None:
        """The blob stored under key by this tool and rules version, or None."""
        if self._db is None:
            return None
        try:
            row = self._db.execute("SELECT blob FROM records WHERE key = ? AND salt = ?",
                                   (key, self.salt)).fetchone()
        except sqlite3.Error:
            return None
        return row[0] if row is not None and isinstance(row[0], bytes) else None

    def store_record(self, key: str, blob: bytes) -> None:
        """Keep blob under key; only the MAX_RECORDS most recently stored stay."""
        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM records WHERE salt != ?", (self.salt,))
            db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
                       (key, self.salt, time.time_ns(), blob))
            db.execute("DELETE FROM records WHERE key NOT IN (SELECT key FROM records "
                       "ORDER BY used_ns DESC LIMIT ?)", (MAX_RECORDS,))
        self._write(work)

    def _write(self, work: Callable[[sqlite3.Connection], None]) -> None:
        """Run work in one transaction; a failure disables nothing, it is recorded."""
        if self._db is None:
            return
        try:
            with self._db:
                work(self._db)
        except sqlite3.Error as exc:
            self.problem = f"cache not updated: {exc}"

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
