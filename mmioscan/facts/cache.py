"""Per-file facts cached in SQLite, keyed by content hash plus tool and rules versions.

Two tables: `stamps` maps (path, size, mtime) to a content digest so a warm run reads no file
at all, and `facts` maps (digest, salt) to the pickled FileFacts. The salt changes whenever the
tool or the rules change, so stale facts are never served.
"""

from __future__ import annotations

import contextlib
import pickle
import sqlite3
import zlib
from collections.abc import Iterable
from pathlib import Path

from mmioscan.core.model import FileFacts

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stamps (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,
                                   digest TEXT);
CREATE TABLE IF NOT EXISTS facts (digest TEXT, salt TEXT, blob BLOB, PRIMARY KEY (digest, salt));
CREATE TABLE IF NOT EXISTS negatives (digest TEXT, names TEXT, salt TEXT,
                                      PRIMARY KEY (digest, names, salt));
"""


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

    def stamps(self, paths: Iterable[str]) -> dict[str, tuple[int, int, str]]:
        """(size, mtime_ns, digest) known for these absolute paths."""
        if self._db is None:
            return {}
        wanted = set(paths)
        rows = self._db.execute("SELECT path, size, mtime_ns, digest FROM stamps")
        return {p: (s, m, d) for p, s, m, d in rows if p in wanted}

    def facts(self, digests: Iterable[str]) -> dict[str, FileFacts]:
        if self._db is None:
            return {}
        wanted = set(digests)
        found: dict[str, FileFacts] = {}
        rows = self._db.execute("SELECT digest, blob FROM facts WHERE salt = ?", (self.salt,))
        for digest, blob in rows:
            if digest in wanted:
                with contextlib.suppress(Exception):  # a corrupt entry is just a miss
                    found[digest] = decode(blob)
        return found

    def store(self, entries: Iterable[tuple[str, int, int, str, bytes]]) -> None:
        """Record (absolute path, size, mtime_ns, digest, encoded facts) of fresh files."""
        if self._db is None:
            return
        try:
            with self._db:
                # Facts of an older tool or rules version can never be served again.
                self._db.execute("DELETE FROM facts WHERE salt != ?", (self.salt,))
                for path, size, mtime_ns, digest, blob in entries:
                    self._db.execute("INSERT OR REPLACE INTO stamps VALUES (?, ?, ?, ?)",
                                     (path, size, mtime_ns, digest))
                    self._db.execute("INSERT OR REPLACE INTO facts VALUES (?, ?, ?)",
                                     (digest, self.salt, blob))
        except sqlite3.Error as exc:
            self.problem = f"cache not updated: {exc}"

    def negatives(self) -> set[tuple[str, str]]:
        """(file digest, hash of a name set) pairs known not to mention any of the names."""
        if self._db is None:
            return set()
        rows = self._db.execute("SELECT digest, names FROM negatives WHERE salt = ?",
                                (self.salt,))
        return set(rows)

    def store_negatives(self, pairs: Iterable[tuple[str, str]]) -> None:
        if self._db is None:
            return
        try:
            with self._db:
                self._db.execute("DELETE FROM negatives WHERE salt != ?", (self.salt,))
                self._db.executemany("INSERT OR IGNORE INTO negatives VALUES (?, ?, ?)",
                                     ((d, n, self.salt) for d, n in pairs))
        except sqlite3.Error as exc:
            self.problem = f"cache not updated: {exc}"

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
