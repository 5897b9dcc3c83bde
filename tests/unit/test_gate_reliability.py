"""The gate on hostile repositories, end to end with the real analysis on a tiny git tree:
symlinks that leave the tree (every mode must agree, and never read them), file names that
are not UTF-8, a repository configured to run programs (core.fsmonitor)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from mmioscan.gate import gitrev
from mmioscan.gate.compare import GateOptions, gate_revisions
from mmioscan.gate.policy import load_policy
from tests.unit.gate_sites import fake_scan
from tests.unit.helpers import has_traceback, run_cli

SARIF_SCHEMA = Path(__file__).resolve().parent.parent / "fixtures" / "schemas" / \
    "sarif-schema-2.1.0.json"
TOKEN = "TOPSECRET_5ca1ab1e"
SECRET_C = (f"/* {TOKEN} */\nvoid leak(u32 __iomem *b)\n{{\n"
            f"\t__iowrite32_copy(b, {TOKEN}, 4);\n}}\n")
DRIVER = ("#include <linux/io.h>\n\nstatic void foo_start(void __iomem *base)\n{\n"
          "\twritel(1, base);\n}\n")
COPY = "void foo_copy(void __iomem *base)\n{\n\t__iowrite32_copy(base, buf, 4);\n}\n"
FILES = {
    "Makefile": "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\n",
    "MAINTAINERS": "",
    "Kbuild": "obj-y += drivers/\n",
    "Kconfig": 'mainmenu "Linux"\nsource "drivers/Kconfig"\n',
    "arch/x86/Kconfig": "config X86\n\tdef_bool y\n",
    "drivers/Makefile": "obj-$(CONFIG_FOO) += foo/\n",
    "drivers/Kconfig": 'source "drivers/foo/Kconfig"\n',
    "drivers/foo/Kconfig": 'config FOO\n\ttristate "foo"\n',
    "drivers/foo/Makefile": "obj-$(CONFIG_FOO) += foo.o\n",
    "drivers/foo/foo.c": DRIVER,
}
LEAVES = "symlink leaves the tree: not read"


def _git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.org",
                           "-c", "commit.gpgsign=false", "-C", str(tree), *args],
                          check=True, capture_output=True, text=True).stdout


def _repo(tmp_path: Path) -> Path:
    tree = tmp_path / "linux"
    for path, text in FILES.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    _git(tree, "init", "-q", "-b", "main")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", "foo: a driver")
    return tree


def _commit(tree: Path, message: str) -> None:
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", message)


def _gate(tree: Path, cache: Path, tmp_path: Path, name: str, *mode: str) -> dict[str, Any]:
    """The gate in one mode, every output format: their bytes, and exit codes."""
    out = tmp_path / name
    out.mkdir()
    common = ["gate", str(tree), *mode, "-j", "1", "--cache-dir", str(cache)]
    codes = [run_cli([*common, "--format", "json", "-o", str(out / "gate.json"),
                      "--sarif", str(out / "gate.sarif")]),
             run_cli([*common, "-o", str(out / "gate.txt")])]
    return {"codes": codes, **{p.name: p.read_bytes() for p in out.iterdir()}}


def _findings(run: dict[str, Any]) -> tuple[list[tuple[str, ...]], list[tuple[str, str]]]:
    doc = json.loads(run["gate.json"].decode("utf-8"))
    found = sorted((f["path"], f["state"], f["class"], f["fingerprint"] or "")
                   for f in doc["findings"])
    return found, sorted((p["path"], p["message"]) for p in doc["problems"])


def test_symlinks_are_judged_alike_in_every_mode(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    tree = _repo(tmp_path)
    (tmp_path / "secret.c").write_text(SECRET_C)
    foo = tree / "drivers/foo"
    os.symlink(tmp_path / "secret.c", foo / "leak.c")  # absolute, out of the tree
    os.symlink("../../../secret.c", foo / "rel.c")  # relative, up and out
    os.symlink("foo.c", foo / "alias.c")  # within the tree: read as foo.c, under its name
    os.symlink("gone.c", foo / "dangling.c")
    _commit(tree, "foo: links")
    patch = tmp_path / "links.patch"
    patch.write_text(_git(tree, "format-patch", "-1", "--stdout", "HEAD"))
    cache = tmp_path / "cache"
    runs = {
        "revisions": _gate(tree, cache, tmp_path, "revisions", "--base", "HEAD~1",
                           "--head", "HEAD"),
        "working tree": _gate(tree, cache, tmp_path, "worktree", "--base", "HEAD~1"),
        "patch": _gate(tree, cache, tmp_path, "patch", "--base", "HEAD~1", "--patch",
                       str(patch)),
    }
    assert not has_traceback(capsys.readouterr().err)
    for mode, run in runs.items():
        assert run["codes"] == [0, 0], mode
        for name, data in run.items():
            assert name == "codes" or TOKEN.encode() not in data, (mode, name)
    expected = _findings(runs["revisions"])
    for mode, run in runs.items():
        assert _findings(run) == expected, mode
    found, problems = expected
    assert [(p, s, c) for p, s, c, _ in found] == [
        ("drivers/foo/alias.c", "new", "ve-mmio")]
    assert {("drivers/foo/leak.c", LEAVES), ("drivers/foo/rel.c", LEAVES),
            ("drivers/foo/dangling.c", "broken symlink: not read")} <= set(problems)
    # and `mmioscan scan` of the same folder says the same
    out = tmp_path / "scan.json"
    assert run_cli(["scan", str(foo), "--format", "json", "-o", str(out), "--no-cache",
                    "--no-progress", "-j", "1"]) == 0
    scan = json.loads(out.read_text())
    assert {(p["path"], p["message"]) for p in scan["problems"] if p["path"] != "."} == \
        {p for p in problems if p[0] != "."}
    alias = next(s for s in scan["sites"] if s["path"] == "drivers/foo/alias.c")
    assert alias["fingerprint"] == found[0][3]


def test_a_file_name_that_is_not_utf8(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    tree = _repo(tmp_path)
    odd = Path(os.fsdecode(bytes(tree / "drivers/foo") + b"/bad\xff.c"))
    odd.write_text(COPY)
    _commit(tree, "foo: an odd name")
    cache = tmp_path / "cache"
    runs = [_gate(tree, cache, tmp_path, "revisions", "--base", "HEAD~1", "--head", "HEAD"),
            _gate(tree, cache, tmp_path, "worktree", "--base", "HEAD~1")]
    assert not has_traceback(capsys.readouterr().err)
    assert _findings(runs[0]) == _findings(runs[1])
    for run in runs:
        assert run["codes"] == [1, 1]  # __iowrite32_copy: a new blocking finding
        doc = json.loads(run["gate.json"].decode("utf-8"))  # strict UTF-8, valid JSON
        assert [f["path"] for f in doc["findings"]] == ["drivers/foo/bad\\xff.c"]
        assert "drivers/foo/bad\\xff.c" in doc["changed"]
        sarif = json.loads(run["gate.sarif"].decode("utf-8"))
        Draft4Validator(json.loads(SARIF_SCHEMA.read_text())).validate(sarif)
        assert [loc["physicalLocation"]["artifactLocation"]["uri"]
                for r in sarif["runs"][0]["results"] if r["baselineState"] == "new"
                for loc in r["locations"]] == ["drivers/foo/bad%FF.c"]
        assert "drivers/foo/bad\\xff.c" in sarif["runs"][0]["properties"]["gate"]["changed"]
        assert "drivers/foo/bad\\xff.c:3 foo_copy()" in run["gate.txt"].decode("utf-8")
    # a baseline of such a tree can be read back, and the history takes it
    baseline = tmp_path / "base.json"
    scan = ["-j", "1", "--cache-dir", str(cache)]
    assert run_cli(["baseline", "write", str(baseline), str(tree), *scan]) == 0
    assert "drivers/foo/bad\\xff.c" in json.loads(baseline.read_bytes().decode("utf-8"))[
        "findings"][0]["path"]
    assert run_cli(["gate", str(tree), "--baseline", str(baseline), *scan]) == 0
    assert run_cli(["history", "record", str(tree), "--db", str(tmp_path / "h.sqlite"),
                    *scan]) == 0
    assert not has_traceback(capsys.readouterr().err)


def test_the_repository_cannot_make_the_gate_run_programs(tmp_path: Path) -> None:
    """core.fsmonitor names a program git runs to list changes (git diff against the working
    tree would): the gate runs git without it, and without hooks."""
    tree = _repo(tmp_path)
    marker = tmp_path / "ran"
    script = tmp_path / "fsmonitor.sh"
    script.write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
    script.chmod(0o755)
    _git(tree, "config", "core.fsmonitor", str(script))
    _git(tree, "status", "--short")
    assert marker.exists()  # git itself does run it
    marker.unlink()
    (tree / "drivers/foo/foo.c").write_text(DRIVER + COPY)
    report = gate_revisions(tree, "HEAD", None, GateOptions(load_policy(), fake_scan))
    assert report.changed == ("drivers/foo/foo.c",)
    assert not marker.exists()


def test_every_git_command_goes_through_the_safe_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = _repo(tmp_path)
    (tree / "drivers/foo/foo.c").write_text(DRIVER + COPY)
    seen: list[list[str]] = []
    real_run = subprocess.run

    def run(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        seen.append(list(argv))
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(gitrev.subprocess, "run", run)
    gate_revisions(tree, "HEAD", None, GateOptions(load_policy(), fake_scan))
    assert seen and all(a[0] == "git" for a in seen)
    for argv in seen:
        assert argv[1:5] == ["-c", "core.fsmonitor=", "-c", "core.hooksPath=/dev/null"], argv


def test_a_full_disk_while_laying_out_a_version(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(gitrev.GitError, match="cannot lay out .*a/b.c: No space left on device"):
        gitrev.sync_tree(tmp_path / "work", {"a/b.c": b"x"})


def test_a_disk_tree_is_looked_at_once_per_path(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """resolve() walks every component of every path; the disk source answers each path's
    kind from one lstat, and walks the tree for build files once (the base and the head of
    a patch gate both ask)."""
    for rel in ("Kconfig", "drivers/Makefile", "drivers/a/Kconfig", "drivers/a/x.c"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x\n")
    source = gitrev.DiskSource(tmp_path)
    seen: list[str] = []
    real = source._lstat_kind

    def counting(path: str) -> gitrev.Kind | None:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(source, "_lstat_kind", counting)
    first = source.build_files()
    assert first == ["Kconfig", "drivers/Makefile", "drivers/a/Kconfig"]
    assert source.build_files() == first and source.is_file("drivers/a/x.c")
    assert "drivers" in seen and len(seen) == len(set(seen))  # each path once
    walks: list[object] = []
    monkeypatch.setattr(gitrev.os, "walk", lambda *a, **k: walks.append(a) or iter(()))
    assert sorted(source.build_candidates()) == first
    assert not walks
