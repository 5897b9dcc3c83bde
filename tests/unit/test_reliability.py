"""Hostile or broken inputs and outputs of `mmioscan scan` (README, Reliability): symlinks
that leave the tree, file names that are not UTF-8, a full disk, input files that are FIFOs.
The gate's side is in test_gate_reliability.py."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from mmioscan.kernel.kconfig import load_kconfig_facts

from .helpers import TREE, has_traceback, run_cli

REPO = Path(__file__).resolve().parents[2]
KBUILD = REPO / "tests" / "fixtures" / "kbuild"
SARIF_SCHEMA = REPO / "tests" / "fixtures" / "schemas" / "sarif-schema-2.1.0.json"
TOKEN = "TOPSECRET_c0ffee"  # in the file outside the tree: must never reach an output
SECRET_C = (f"/* {TOKEN} */\nvoid leak(u32 __iomem *b)\n{{\n"
            f"\t__iowrite32_copy(b, {TOKEN}, 4);\n\t*b = 1;\n}}\n")
SECRET_H = f"#define SECRET_WR(p) __iowrite32_copy(p, {TOKEN}, 4)\n"
GOOD_C = ('#include "linkdir/secret.h"\nstatic void good_write(void __iomem *base)\n{\n'
          "\t__iowrite32_copy(base, buf, 4);\n\twritel(1, base);\n\tSECRET_WR(base);\n}\n")
# RFC 3986 characters of a relative reference (unreserved, sub-delims, ':', '@', '/', '%XX').
_URI_CHARS = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*")
LEAVES = "symlink leaves the tree: not read"


def _outputs(folder: Path, out: Path, *extra: str) -> dict[str, bytes]:
    """Every output format of one folder: scan --format X and report -o .html/.md/.json."""
    found: dict[str, bytes] = {}
    common = ["--no-progress", "--jobs", "1", *extra]
    for fmt in ("json", "sarif", "csv", "markdown", "text"):
        target = out / f"scan.{fmt}"
        assert run_cli(["scan", str(folder), "--format", fmt, "-o", str(target), *common]) == 0
        found[fmt] = target.read_bytes()
    reports = [out / "report.html", out / "report.md", out / "report.json"]
    assert run_cli(["report", str(folder), *[a for r in reports for a in ("-o", str(r))],
                    *common]) == 0
    found.update((f"report{r.suffix}", r.read_bytes()) for r in reports)
    return found


@pytest.fixture()
def linked(tmp_path: Path) -> Path:
    """A folder (a tree root of its own) with symlinks in and out of it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.c").write_text(SECRET_C, encoding="utf-8")
    (outside / "secret.h").write_text(SECRET_H, encoding="utf-8")  # via linkdir/
    folder = tmp_path / "src"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.c").write_text(GOOD_C, encoding="utf-8")
    os.symlink(outside / "secret.c", folder / "leak.c")  # absolute
    os.symlink("../outside/secret.c", folder / "rel.c")  # relative, up and out
    os.symlink(outside, folder / "linkdir")  # a folder: never walked, its headers not read
    os.symlink("good.c", folder / "alias.c")  # in the tree: read, under its own path
    os.symlink("../good.c", folder / "sub" / "up.c")
    os.symlink("gone.c", folder / "dangling.c")
    return folder


@pytest.mark.parametrize("cache", [False, True], ids=["no-cache", "cache-cold-and-warm"])
def test_a_symlink_leaving_the_tree_is_never_read(linked: Path, tmp_path: Path,
                                                   cache: bool) -> None:
    extra = ("--cache-dir", str(tmp_path / "cache")) if cache else ("--no-cache",)
    runs = 2 if cache else 1
    for run in range(runs):
        out = tmp_path / f"out{run}"
        out.mkdir()
        outputs = _outputs(linked, out, *extra)
        for name, data in outputs.items():
            assert TOKEN.encode() not in data, f"{name} holds the outside file's text"
        data = json.loads(outputs["json"])
        problems = {(p["path"], p["message"]) for p in data["problems"]}
        assert {("leak.c", LEAVES), ("rel.c", LEAVES),
                ("dangling.c", "broken symlink: not read")} <= problems
        sites = {(s["path"], s["line"], s["callee"]) for s in data["sites"]}
        # inside the tree: read as the file it points to, reported under the link's path;
        # SECRET_WR is no wrapper: its header, through linkdir/, was not read
        assert sites == {(p, line, callee) for p in ("good.c", "alias.c", "sub/up.c")
                         for line, callee in ((4, "__iowrite32_copy"), (5, "writel"))}


def test_a_symlinked_scan_argument_outside_the_root_is_refused(
        linked: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["scan", str(linked / "leak.c"), "--root", str(linked), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not inside the tree root" in err and TOKEN not in err


# -- file names that are not UTF-8 --------------------------------------------------------


def _odd_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "foo.c").write_text(GOOD_C, encoding="utf-8")
    odd = Path(os.fsdecode(bytes(folder) + b"/bad\xff.c"))
    odd.write_text(GOOD_C, encoding="utf-8")
    return folder


def test_a_file_name_that_is_not_utf8_with_the_default_cache(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default cache stored paths as text: sqlite refused the surrogate escape (rc 1,
    UnicodeEncodeError). A warm run must find the same."""
    folder = _odd_folder(tmp_path)
    out = tmp_path / "out.json"
    for _ in range(2):
        assert run_cli(["scan", str(folder), "--format", "json", "-o", str(out),
                        "--no-progress", "--jobs", "1"]) == 0
        data = json.loads(out.read_bytes().decode("utf-8"))
        assert {s["path"] for s in data["sites"]} == {"foo.c", "bad\\xff.c"}
    assert not has_traceback(capsys.readouterr().err)


def test_one_rule_for_names_that_are_not_utf8_in_every_format(tmp_path: Path) -> None:
    """Text formats write byte 0xFF as the four characters `\\xff`; SARIF URIs as %FF."""
    folder = _odd_folder(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    outputs = _outputs(folder, out, "--no-cache")
    text = {name: data.decode("utf-8") for name, data in outputs.items()}  # strict UTF-8
    for name in ("json", "report.json"):
        json.loads(text[name])
        assert '"bad\\\\xff.c"' in text[name], name  # JSON for the text bad\xff.c
    assert {s["path"] for s in json.loads(text["json"])["sites"]} == {"foo.c", "bad\\xff.c"}
    sarif = json.loads(text["sarif"])
    Draft4Validator(json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))).validate(sarif)
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"]
            for r in sarif["runs"][0]["results"] for loc in r["locations"]}
    assert uris == {"foo.c", "bad%FF.c"}
    assert all(_URI_CHARS.fullmatch(u) for u in uris)
    assert sarif["runs"][0]["originalUriBaseIds"]["SRCROOT"]["uri"].startswith("file:///")
    for name in ("csv", "markdown", "text", "report.html", "report.md"):
        assert "bad\\xff.c" in text[name], name
        assert "\ufffd" not in text[name] and "bad?.c" not in text[name], name


# -- a full disk ------------------------------------------------------------------------


@pytest.fixture()
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder whose disk fills up: any write into it puts half its bytes on disk, then
    fails with ENOSPC (os.write, and Path.write_bytes / write_text)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    real_write, real_bytes = os.write, Path.write_bytes

    def enospc() -> OSError:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def write(fd: int, data: Any) -> int:
        if not os.readlink(f"/proc/self/fd/{fd}").startswith(str(disk)):
            return real_write(fd, data)
        real_write(fd, bytes(data[:max(len(data) // 2, 1)]))
        raise enospc()

    def write_bytes(self: Path, data: Any) -> int:
        if not str(self).startswith(str(disk)):
            return real_bytes(self, data)
        with open(self, "wb") as fh:
            fh.write(bytes(data[:max(len(data) // 2, 1)]))
        raise enospc()

    def write_text(self: Path, data: str, encoding: str | None = None, errors: str | None = None,
                   newline: str | None = None) -> int:
        return write_bytes(self, data.encode(encoding or "utf-8", errors or "strict"))

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    monkeypatch.setattr(Path, "write_text", write_text)
    yield disk


def test_a_full_disk_keeps_the_old_output(full_disk: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    report = full_disk / "report.json"
    report.parent.mkdir(exist_ok=True)
    with open(report, "w", encoding="utf-8") as fh:  # the good file from an earlier run
        fh.write('{"good": true}\n')
    assert run_cli(["scan", str(TREE / "drivers/bar"), "--format", "json", "-o", str(report),
                    "--no-cache", "--no-progress", "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert err == f"mmioscan: error: cannot write {report}: No space left on device\n"
    assert report.read_text(encoding="utf-8") == '{"good": true}\n'
    assert os.listdir(full_disk) == ["report.json"]  # no temporary file left


def test_a_full_disk_leaves_no_kconfig_temporary_file(full_disk: Path) -> None:
    facts = load_kconfig_facts(KBUILD, cache_dir=full_disk)  # the cache is best effort
    assert facts.symbols
    assert os.listdir(full_disk) == []


def _cli(args: list[str], stdout: Any = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "mmioscan", *args], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=60, env=env, check=False)


@pytest.mark.parametrize("args", [
    ["scan", str(TREE / "drivers/bar"), "--no-cache", "--no-progress", "--jobs", "1"],
    ["history", "--db", "{db}"],  # the gate commands' writer
], ids=["scan", "history"])
def test_stdout_on_a_full_device(tmp_path: Path, args: list[str]) -> None:
    with open("/dev/full", "w") as full:
        proc = _cli([a.replace("{db}", str(tmp_path / "h.sqlite")) for a in args], full)
    assert proc.returncode == 2
    assert proc.stderr == ("mmioscan: error: cannot write standard output: "
                           "No space left on device\n")


def test_output_to_dev_stdout_and_through_a_symlink(tmp_path: Path) -> None:
    proc = _cli(["scan", str(TREE / "drivers/bar"), "--format", "csv", "-o", "/dev/stdout",
                 "--no-cache", "--no-progress", "--jobs", "1"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("path,line,column,")
    from mmioscan.core import fileio  # here: this module is new

    real = tmp_path / "real.csv"
    real.write_text("old\n")
    real.chmod(0o640)
    os.symlink("real.csv", tmp_path / "link.csv")
    fileio.write_atomic(tmp_path / "link.csv", b"new\n")
    assert (tmp_path / "link.csv").is_symlink() and real.read_text() == "new\n"
    assert real.stat().st_mode & 0o777 == 0o640  # the file's mode is kept
    assert sorted(os.listdir(tmp_path)) == ["link.csv", "real.csv"]


# -- input files that are no regular files ---------------------------------------------


@pytest.fixture()
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "input.fifo"
    os.mkfifo(path)
    return path


SCAN = [str(TREE / "drivers/bar"), "--no-cache", "--no-progress", "--jobs", "1"]


@pytest.mark.parametrize("args", [
    ["scan", *SCAN, "--patch-points", "{fifo}"],
    ["scan", *SCAN, "--rules", "{fifo}"],
    ["scan", *SCAN, "--config", "{fifo}"],
    ["gate", str(TREE), "--baseline", "{fifo}", "--no-cache"],
    ["gate", str(TREE), "--base", "HEAD", "--triage", "{fifo}", "--no-cache"],
    ["gate", str(TREE), "--base", "HEAD", "--policy", "{fifo}", "--no-cache"],
    ["gate", str(TREE), "--base", "HEAD", "--config", "{fifo}", "--no-cache"],
    ["gate", str(TREE), "--patch", "{fifo}", "--no-cache"],
], ids=["patch-points", "rules", "config", "baseline", "triage", "policy", "gate-config",
        "patch"])
def test_a_fifo_as_an_input_file_is_refused(fifo: Path, args: list[str]) -> None:
    """A FIFO blocks open() until a writer comes: one line and exit 2, without waiting."""
    try:
        proc = _cli([a.replace("{fifo}", str(fifo)) for a in args])
    except subprocess.TimeoutExpired:
        pytest.fail("mmioscan waits for a writer on the FIFO")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and not has_traceback(proc.stderr)
    assert proc.stderr.startswith("mmioscan: error:")
    assert str(fifo) in proc.stderr and "not a regular file: a FIFO" in proc.stderr


def test_read_input_refuses_what_is_no_regular_file(tmp_path: Path, fifo: Path) -> None:
    from mmioscan.core import fileio  # here: this module is new

    for path, kind in ((fifo, "a FIFO"), (Path("/dev/zero"), "a device")):
        with pytest.raises(OSError, match=f"not a regular file: {kind}"):
            fileio.read_input(path)
    with pytest.raises(IsADirectoryError):
        fileio.read_input(tmp_path)
    (tmp_path / "ok.txt").write_bytes(b"fine")
    assert fileio.read_input(tmp_path / "ok.txt") == b"fine"
