"""Scan history in SQLite (mmioscan/gate/history.py) and the history/diff commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmioscan.gate import history
from tests.unit.gate_sites import make_site, result_of
from tests.unit.helpers import run_cli

A = make_site(line=5)
B = make_site(line=9, function="bar", callee="__iowrite32_copy", tdx="unsupported")
C = make_site(path="drivers/baz/baz.c", line=7, function="baz", hot=True)


def test_record_list_and_diff(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    first = history.record(db, result_of([A, B]), "v6.11")
    # the same findings on other lines (a new kernel version): unchanged
    moved = make_site(line=50)
    second = history.record(db, result_of([moved, C]), "v6.12")
    runs = history.runs(db)
    assert [(r.id, r.label, r.findings) for r in runs] == [(first, "v6.11", 2),
                                                           (second, "v6.12", 2)]
    d = history.diff(db, first, second)
    assert [f.path for f in d.added] == ["drivers/baz/baz.c"]
    assert [f.function for f in d.fixed] == ["bar"]
    assert d.unchanged == 1
    assert d.by_class() == [("hot-ve-mmio", 1, 0), ("unsupported-mmio", 0, 1)]
    assert d.by_driver() == [("baz", 1, 0), ("foo", 0, 1)]


def test_unknown_run_and_missing_database(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    with pytest.raises(history.HistoryError, match="no history database"):
        history.diff(db, 1, 2)
    history.record(db, result_of([A]))
    with pytest.raises(history.HistoryError, match="no run 9"):
        history.diff(db, 1, 9)


def test_default_database_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert history.default_db() == tmp_path / "mmioscan" / "history.sqlite"


def test_cli_history_and_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "h.sqlite"
    assert run_cli(["history", "--db", str(db)]) == 0
    assert "no runs recorded" in capsys.readouterr().out
    one = history.record(db, result_of([A, B]), "old")
    two = history.record(db, result_of([A, C]), "new")
    assert run_cli(["history", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "old" in out and "new" in out
    assert run_cli(["diff", str(one), str(two), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "1 new, 1 fixed, 1 unchanged" in out and "unsupported-mmio" in out
    assert run_cli(["diff", str(one), str(two), "--db", str(db), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [f["path"] for f in data["added"]] == ["drivers/baz/baz.c"]
    assert run_cli(["diff", "1", "7", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run 7" in err


@pytest.mark.parametrize("run", ["99999999999999999999999999", "-99999999999999999999999999",
                                 "9223372036854775808"])
def test_a_run_id_sqlite_cannot_hold_is_no_run(tmp_path: Path, run: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """SQLite integers are 64-bit: binding a larger one raised OverflowError (a traceback)."""
    db = tmp_path / "h.sqlite"
    history.record(db, result_of([A]))
    assert run_cli(["diff", "1", run, "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err == f"mmioscan: error: no run {run} in the history (see `mmioscan history`)\n"
