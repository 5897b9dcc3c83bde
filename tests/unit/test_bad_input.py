"""Bad input never ends in a traceback: usage errors exit 2 with one line on stderr, and bad
files inside a scanned folder become recorded problems while the scan finishes (exit 0)."""

from __future__ import annotations

import builtins
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import mmioscan.facts.runner

from .helpers import TREE, copy_tree, has_traceback, run_cli

REPO = Path(__file__).resolve().parents[2]
GOOD_C = ("// SPDX-License-Identifier: GPL-2.0\n"
          "static u32 good_read(void __iomem *base)\n{\n\treturn readl(base + 4);\n}\n")


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    err = captured.err
    assert not has_traceback(err), err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("mmioscan: error:"), err
    assert captured.out == ""
    return err


def _scan_dir(tmp_path: Path, folder: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "out.json"
    code = run_cli(["scan", str(folder), "--format", "json", "-o", str(out), "--no-cache",
                    "--no-progress", "--jobs", "1", *extra])
    assert code == 0
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def _problems(data: dict[str, Any], path: str) -> list[str]:
    return [p["message"] for p in data["problems"] if p["path"] == path]


def _folder(tmp_path: Path) -> Path:
    """A small source folder (not a kernel tree: the folder itself becomes the root)."""
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "good.c").write_text(GOOD_C, encoding="utf-8")
    return folder


# -- usage errors: exit 2, one line -------------------------------------------------------


def test_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["scan", str(tmp_path / "does-not-exist"), "--no-cache"]) == 2
    assert "does-not-exist" in _one_line_error(capsys)


def test_missing_second_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["scan", str(TREE / "drivers/foo"), str(TREE / "drivers/nope"),
                    "--no-cache"]) == 2
    _one_line_error(capsys)


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(["scan", str(empty), "--no-cache"]) == 2
    _one_line_error(capsys)


def test_folder_without_c_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "README").write_text("readl(x)\n")
    (folder / "notes.txt").write_text("writel(1, p)\n")
    assert run_cli(["scan", str(folder), "--no-cache"]) == 2
    _one_line_error(capsys)


@pytest.mark.parametrize("name", ["Makefile", "MAINTAINERS", "Kbuild"])
def test_non_c_file_argument(capsys: pytest.CaptureFixture[str], name: str) -> None:
    assert run_cli(["scan", str(TREE / name), "--no-cache"]) == 2
    _one_line_error(capsys)


def test_non_c_file_argument_outside_a_tree(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "driver.py"
    path.write_text("print('readl')\n")
    assert run_cli(["scan", str(path), "--no-cache"]) == 2
    _one_line_error(capsys)


def test_broken_symlink_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "gone.c"
    os.symlink(tmp_path / "nowhere.c", link)
    assert run_cli(["scan", str(link), "--no-cache"]) == 2
    _one_line_error(capsys)


def test_symlink_loop_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.symlink(tmp_path / "b.c", tmp_path / "a.c")
    os.symlink(tmp_path / "a.c", tmp_path / "b.c")
    assert run_cli(["scan", str(tmp_path / "a.c"), "--no-cache"]) == 2
    _one_line_error(capsys)


@pytest.mark.parametrize("jobs", ["0", "-1"])
def test_bad_jobs(capsys: pytest.CaptureFixture[str], jobs: str) -> None:
    assert run_cli(["scan", str(TREE), "--jobs", jobs, "--no-cache"]) == 2
    assert "jobs" in _one_line_error(capsys)


def test_jobs_not_a_number(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["scan", str(TREE), "--jobs", "two", "--no-cache"]) == 2
    _one_line_error(capsys)


def test_unwritable_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["scan", str(TREE / "drivers/bar"), "--no-cache", "--no-progress",
                    "--format", "json", "-o", "/nonexistent/dir/x.json"]) == 2
    assert "/nonexistent/dir/x.json" in _one_line_error(capsys)


def test_output_is_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["scan", str(TREE / "drivers/bar"), "--no-cache", "--no-progress",
                    "-o", str(tmp_path)]) == 2
    _one_line_error(capsys)


def test_root_not_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["scan", str(TREE / "drivers"), "--root", str(tmp_path / "nope"),
                    "--no-cache"]) == 2
    _one_line_error(capsys)


def test_path_outside_root(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["scan", str(TREE / "drivers/foo"), "--root", str(TREE / "drivers/bar"),
                    "--no-cache"]) == 2
    _one_line_error(capsys)


# -- bad files inside a scanned folder: recorded problems, exit 0 ---------------------------


def test_non_utf8_file_is_scanned_with_a_problem(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "latin1.c").write_bytes(
        b"/* Copyright (c) 2009 J\xf6rg M\xfcller */\n"
        b"static void latin_write(void __iomem *base)\n{\n"
        b"\twritel(0, base); /* \xb5s delay follows */\n"
        b"\tudelay(1);\n\tiowrite8(1, base + 1);\n}\n")
    data = _scan_dir(tmp_path, folder)
    assert _problems(data, "latin1.c"), data["problems"]
    sites = [(s["line"], s["accessor"], s["function"]) for s in data["sites"]
             if s["path"] == "latin1.c"]
    assert sites == [(4, "writel", "latin_write"), (6, "iowrite8", "latin_write")]
    assert [s["accessor"] for s in data["sites"] if s["path"] == "good.c"] == ["readl"]


def test_nul_bytes_file_is_a_problem(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "blob.c").write_bytes(b"\x7fELF\x00\x00\x00readl(p)\x00\x01\x02" * 50)
    data = _scan_dir(tmp_path, folder)
    assert _problems(data, "blob.c")
    assert not [s for s in data["sites"] if s["path"] == "blob.c"]
    assert [s["accessor"] for s in data["sites"] if s["path"] == "good.c"] == ["readl"]


def test_symlink_loop_inside_the_folder_is_a_problem(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    os.symlink("b.c", folder / "a.c")
    os.symlink("a.c", folder / "b.c")
    data = _scan_dir(tmp_path, folder)
    assert _problems(data, "a.c") and _problems(data, "b.c"), data["problems"]
    assert [s["accessor"] for s in data["sites"] if s["path"] == "good.c"] == ["readl"]


def test_dangling_symlink_inside_the_folder_is_a_problem(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    os.symlink("gone.c", folder / "dangling.c")
    data = _scan_dir(tmp_path, folder)
    assert _problems(data, "dangling.c"), data["problems"]


def test_unreadable_file_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as root, which reads a chmod 000 file anyway: make open() refuse instead."""
    folder = _folder(tmp_path)
    secret = folder / "secret.c"
    secret.write_text(GOOD_C.replace("good_read", "secret_read"), encoding="utf-8")
    real_open = builtins.open

    def refusing_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file).endswith("secret.c"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(mmioscan.facts.runner, "open", refusing_open, raising=False)
    data = _scan_dir(tmp_path, folder)
    messages = _problems(data, "secret.c")
    assert messages and "Permission denied" in messages[0], data["problems"]
    assert not [s for s in data["sites"] if s["path"] == "secret.c"]
    assert [s["accessor"] for s in data["sites"] if s["path"] == "good.c"] == ["readl"]


def test_folder_named_like_a_c_file_is_walked(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "odd.c").mkdir()
    (folder / "odd.c" / "inner.c").write_text(GOOD_C, encoding="utf-8")
    data = _scan_dir(tmp_path, folder)
    assert {s["path"] for s in data["sites"]} == {"good.c", "odd.c/inner.c"}


def test_empty_and_whitespace_files(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "empty.c").write_bytes(b"")
    (folder / "blank.h").write_bytes(b"\n\n   \t\n")
    data = _scan_dir(tmp_path, folder)
    # A bare folder is no kernel tree: the only problems are the tree-level notes (path ".")
    # that drivers and instruction forms fell back to folders and the catalogue.
    assert [p for p in data["problems"] if p["path"] != "."] == []
    assert {p["message"].split(":")[0] for p in data["problems"]} == {
        "TDX instruction forms", "no Kconfig and no Kbuild at the root"}
    assert data["stats"]["files"] == 3


def test_crlf_and_bom_files_give_the_same_sites(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "crlf.c").write_bytes(GOOD_C.replace("\n", "\r\n").encode())
    (folder / "bom.c").write_bytes(b"\xef\xbb\xbf" + GOOD_C.encode())
    data = _scan_dir(tmp_path, folder)
    got = {s["path"]: (s["line"], s["column"], s["function"]) for s in data["sites"]}
    assert got["crlf.c"] == got["good.c"] == got["bom.c"] == (4, 9, "good_read")


def test_unterminated_code_is_scanned(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    (folder / "cut.c").write_text("static void cut(void __iomem *b)\n{\n\twritel(1, b);\n"
                                  "\tif (readl(b) /* the file ends here", encoding="utf-8")
    data = _scan_dir(tmp_path, folder)
    assert {(s["line"], s["accessor"]) for s in data["sites"] if s["path"] == "cut.c"} == {
        (3, "writel"), (4, "readl")}


def test_fifo_named_like_a_c_file_does_not_hang_the_scan(tmp_path: Path) -> None:
    """A FIFO blocks open() until a writer comes: the scan must skip or report it, not wait."""
    folder = _folder(tmp_path)
    os.mkfifo(folder / "pipe.c")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mmioscan", "scan", str(folder), "--format", "json",
             "--no-cache", "--no-progress", "--jobs", "1"],
            capture_output=True, text=True, timeout=15, env=env, cwd=tmp_path, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("the scan hangs on a FIFO named pipe.c (open() blocks without a writer)")
    assert proc.returncode == 0, proc.stderr
    assert not has_traceback(proc.stderr)
    data = json.loads(proc.stdout)
    assert _problems(data, "pipe.c")
    assert [s["accessor"] for s in data["sites"] if s["path"] == "good.c"] == ["readl"]


def test_non_utf8_folder_name_with_text_output_to_a_file(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """A folder name that is not UTF-8 (a surrogate escape in Python) must not crash -o."""
    root = copy_tree(tmp_path / "linux")
    odd = Path(os.fsdecode(bytes(root / "drivers") + b"/caf\xe9"))
    odd.mkdir()
    (odd / "cafe.c").write_text(GOOD_C, encoding="utf-8")
    out = tmp_path / "summary.txt"
    code = run_cli(["scan", str(root), "--no-cache", "--no-progress", "-o", str(out)])
    err = capsys.readouterr().err
    assert not has_traceback(err)
    assert code == 0, err
    assert "drivers/caf" in out.read_text(encoding="utf-8", errors="replace")


def test_non_utf8_folder_name_in_json(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    odd = Path(os.fsdecode(bytes(root / "drivers") + b"/caf\xe9"))
    odd.mkdir()
    (odd / "cafe.c").write_text(GOOD_C, encoding="utf-8")
    data = _scan_dir(tmp_path, root)
    assert any(s["path"].startswith("drivers/caf") for s in data["sites"])


def test_no_traceback_when_a_file_vanishes_during_the_scan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file listed, then deleted before it is read, is a problem, not a crash."""
    folder = _folder(tmp_path)
    doomed = folder / "doomed.c"
    doomed.write_text(GOOD_C, encoding="utf-8")
    real_process = mmioscan.facts.runner._process

    def process(job: tuple[str, str]) -> Any:
        if job[1] == "doomed.c" and doomed.exists():
            doomed.unlink()
        return real_process(job)

    monkeypatch.setattr(mmioscan.facts.runner, "_process", process)
    data = _scan_dir(tmp_path, folder)
    assert _problems(data, "doomed.c"), data["problems"]
