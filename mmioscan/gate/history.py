"""Scan history in an embedded SQLite database: record runs, list them, diff two of them.

Only findings are stored (sites with a finding class), with their fingerprint, so two runs
over different trees or kernel versions compare by fingerprint: fingerprints carry no line
numbers, and a finding that merely moved is the same finding. A renamed file's findings show
as fixed in one place and new in the other, since the path is part of the fingerprint.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mmioscan import __version__
from mmioscan.core.findings import clean, finding_class
from mmioscan.core.model import ScanResult
from mmioscan.core.paths import cache_base

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, label TEXT NOT NULL,
    root TEXT NOT NULL, kernel_version TEXT, scanned TEXT NOT NULL, strategy TEXT,
    config TEXT, tool_version TEXT NOT NULL, sites INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS findings (
    run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, fingerprint TEXT NOT NULL,
    class TEXT NOT NULL, path TEXT NOT NULL, line INTEGER NOT NULL, function TEXT,
    callee TEXT NOT NULL, accessor TEXT NOT NULL, kind TEXT NOT NULL, driver TEXT,
    grp TEXT, hot INTEGER NOT NULL, code TEXT);
CREATE INDEX IF NOT EXISTS findings_run ON findings(run);
"""


class HistoryError(Exception):
    """The database cannot be opened or written, or a run does not exist."""


def default_db() -> Path:
    return cache_base() / "history.sqlite"


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    created: float
    label: str
    root: str
    kernel_version: str | None
    scanned: str
    strategy: str | None
    config: str | None
    sites: int
    findings: int


@dataclass(frozen=True, slots=True)
class StoredFinding:
    fingerprint: str
    class_id: str
    path: str
    line: int
    function: str | None
    callee: str
    driver: str | None


@dataclass(frozen=True, slots=True)
class RunDiff:
    old: Run
    new: Run
    added: tuple[StoredFinding, ...]  # in the new run only
    fixed: tuple[StoredFinding, ...]  # in the old run only
    unchanged: int

    def by_class(self) -> list[tuple[str, int, int]]:
        """(class, new, fixed), sorted by class."""
        return _tally(lambda f: f.class_id, self.added, self.fixed)

    def by_driver(self) -> list[tuple[str, int, int]]:
        return _tally(lambda f: f.driver or "?", self.added, self.fixed)


def _tally(key: Callable[[StoredFinding], str], added: tuple[StoredFinding, ...],
           fixed: tuple[StoredFinding, ...]) -> list[tuple[str, int, int]]:
    plus = Counter(key(f) for f in added)
    minus = Counter(key(f) for f in fixed)
    return [(k, plus[k], minus[k]) for k in sorted(set(plus) | set(minus))]


@contextlib.contextmanager
def connect(db: Path, create: bool = True) -> Iterator[sqlite3.Connection]:
    """The database, schema in place; HistoryError for anything sqlite or the OS refuse."""
    if not create and not db.exists():
        raise HistoryError(f"no history database at {db} (record a run first)")
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(db)
    except (OSError, sqlite3.Error) as exc:
        raise HistoryError(f"cannot open {db}: {exc}") from None
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(_SCHEMA)
        yield conn
        conn.commit()
    except sqlite3.Error as exc:
        raise HistoryError(f"{db}: {exc}") from None
    finally:
        conn.close()


def record(db: Path, result: ScanResult, label: str = "") -> int:
    """Store the run's findings; returns the new run's id."""
    rows = []
    for site in result.sites:
        class_id = finding_class(site)
        if class_id is None:
            continue
        # Text as every output writes it: bytes that are not UTF-8 as `\\xNN` (sqlite
        # refuses the surrogate escapes they are in memory).
        rows.append((site.fingerprint or "", class_id, clean(site.path), site.line,
                     _clean(site.function), clean(site.callee), site.accessor, site.kind,
                     _clean(site.driver), site.group, int(site.hot), _clean(site.code)))
    with connect(db) as conn:
        cur = conn.execute(
            "INSERT INTO runs (created, label, root, kernel_version, scanned, strategy, config,"
            " tool_version, sites) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (time.time(), clean(label), clean(result.root), result.kernel_version,
             clean(" ".join(result.scanned)), result.strategy, _clean(result.config),
             __version__, len(result.sites)))
        run_id = cur.lastrowid
        assert run_id is not None
        conn.executemany(
            "INSERT INTO findings (run, fingerprint, class, path, line, function, callee,"
            " accessor, kind, driver, grp, hot, code)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, *row) for row in rows])
    return run_id


def _clean(text: str | None) -> str | None:
    return None if text is None else clean(text)


_RUN_COLUMNS = ("SELECT r.id, r.created, r.label, r.root, r.kernel_version, r.scanned,"
                " r.strategy, r.config, r.sites,"
                " (SELECT COUNT(*) FROM findings f WHERE f.run = r.id) FROM runs r")


def runs(db: Path) -> list[Run]:
    """Every recorded run, oldest first."""
    if not db.exists():
        return []
    with connect(db) as conn:
        return [Run(*row) for row in conn.execute(_RUN_COLUMNS + " ORDER BY r.id")]


def _run(conn: sqlite3.Connection, run_id: int) -> Run:
    # SQLite's integers are 64-bit: a larger id is no run (and would raise OverflowError).
    row = None if not -(2**63) <= run_id < 2**63 else conn.execute(
        _RUN_COLUMNS + " WHERE r.id = ?", (run_id,)).fetchone()
    if row is None:
        raise HistoryError(f"no run {run_id} in the history (see `mmioscan history`)")
    return Run(*row)


def _findings(conn: sqlite3.Connection, run_id: int) -> list[StoredFinding]:
    return [StoredFinding(*row) for row in conn.execute(
        "SELECT fingerprint, class, path, line, function, callee, driver FROM findings"
        " WHERE run = ? ORDER BY path, line, callee", (run_id,))]


def diff(db: Path, old_id: int, new_id: int) -> RunDiff:
    """What the new run has that the old one had not (added), and the reverse (fixed),
    matched by fingerprint with counts."""
    with connect(db, create=False) as conn:
        old, new = _run(conn, old_id), _run(conn, new_id)
        before, after = _findings(conn, old_id), _findings(conn, new_id)
    added, fixed, unchanged = _match(before, after)
    return RunDiff(old, new, tuple(added), tuple(fixed), unchanged)


def _match(before: list[StoredFinding], after: list[StoredFinding]
           ) -> tuple[list[StoredFinding], list[StoredFinding], int]:
    remaining = Counter(f.fingerprint for f in before)
    added = []
    for f in after:
        if remaining[f.fingerprint] > 0:
            remaining[f.fingerprint] -= 1
        else:
            added.append(f)
    left = Counter(f.fingerprint for f in after)
    fixed = []
    for f in before:
        if left[f.fingerprint] > 0:
            left[f.fingerprint] -= 1
        else:
            fixed.append(f)
    return added, fixed, len(after) - len(added)
