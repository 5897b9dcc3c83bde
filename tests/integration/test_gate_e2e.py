"""End to end: `mmioscan gate` with the real analysis on a small git kernel tree built here.

Commit 1 is a driver with a register write; commit 2 adds an `__iowrite32_copy` call (rep
movsl: oopses a TDX guest), commit 3 only edits a comment. The gate must fail on 2, pass on
3, and fail on commit 2 given as a patch file (format-patch, mbox series, plain diff).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.helpers import has_traceback, run_cli

DRIVER = """\
// SPDX-License-Identifier: GPL-2.0
#include <linux/io.h>
#include "foo.h"

static void foo_start(void __iomem *base)
{
\twritel(FOO_GO, base + FOO_CTRL);\t/* start the engine */
}

void foo_load(void __iomem *base, const u32 *fw)
{
\tfoo_start(base);
}
"""
FILES = {
    "Makefile": "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION =\n",
    "MAINTAINERS": "",
    "Kbuild": "obj-y += drivers/\n",
    "Kconfig": 'mainmenu "Linux"\nsource "drivers/Kconfig"\n',
    "arch/x86/Kconfig": "config X86\n\tdef_bool y\n",
    "drivers/Makefile": "obj-$(CONFIG_FOO) += foo/\n",
    "drivers/Kconfig": 'source "drivers/foo/Kconfig"\n',
    "drivers/foo/Kconfig": 'config FOO\n\ttristate "foo"\n\tdepends on PCI\n',
    "drivers/foo/Makefile": "obj-$(CONFIG_FOO) += foo.o\n",
    "drivers/foo/foo.h": "#define FOO_CTRL 0x04\n#define FOO_GO 1\n",
    "drivers/foo/foo.c": DRIVER,
}
ADD_COPY = ("\tfoo_start(base);\n", "\t__iowrite32_copy(base + 8, fw, 16);\n\tfoo_start(base);\n")
COMMENT = ("/* start the engine */", "/* start the engine (see the data sheet) */")


def _git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.org",
                           "-c", "commit.gpgsign=false", "-C", str(tree), *args],
                          check=True, capture_output=True, text=True).stdout


def _commit(tree: Path, edit: tuple[str, str], message: str) -> None:
    driver = tree / "drivers/foo/foo.c"
    driver.write_text(driver.read_text().replace(*edit))
    _git(tree, "commit", "-q", "-a", "-m", message)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gate-e2e") / "linux"
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "foo: a driver")
    _commit(root, ADD_COPY, "foo: load the firmware with __iowrite32_copy")
    _commit(root, COMMENT, "foo: explain the start bit")
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("gate-cache"))


def _gate(tree: Path, cache: str, *args: str) -> int:
    return run_cli(["gate", str(tree), "-j", "1", "--cache-dir", cache, *args])


def test_a_commit_adding_iowrite32_copy_fails(tree: Path, cache: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert _gate(tree, cache, "--base", "HEAD~2", "--head", "HEAD~1") == 1
    out = capsys.readouterr().out
    assert "new blocking findings (1)" in out
    assert "drivers/foo/foo.c:12 foo_load(): __iowrite32_copy unsupported-mmio" in out


def test_a_comment_only_commit_passes(tree: Path, cache: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert _gate(tree, cache, "--base", "HEAD~1", "--head", "HEAD") == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "new blocking" not in out and "fixed" not in out.split("result")[0]


def test_the_same_change_as_a_patch_file_fails(tree: Path, cache: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    patch = tmp_path / "0001-foo.patch"
    patch.write_text(_git(tree, "format-patch", "-1", "--stdout", "HEAD~1"))
    assert _gate(tree, cache, "--patch", str(patch), "--base", "HEAD~2") == 1
    assert "FAIL: 1 new blocking" in capsys.readouterr().out
    series = tmp_path / "series.mbox"
    series.write_text(_git(tree, "format-patch", "--stdout", "HEAD~2..HEAD"))
    assert _gate(tree, cache, "--patch", str(series), "--base", "HEAD~2") == 1
    assert "2 patches, 2 file changes" in capsys.readouterr().out
    plain = tmp_path / "plain.diff"
    plain.write_text(_git(tree, "diff", "HEAD~2", "HEAD~1"))
    assert _gate(tree, cache, "--patch", str(plain), "--base", "HEAD~2") == 1


def test_the_working_tree_against_head(tree: Path, cache: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    index = tree / ".git" / "index"
    before = (hashlib.sha256(index.read_bytes()).hexdigest(), index.stat().st_mtime_ns)
    driver = tree / "drivers/foo/foo.c"
    original = driver.read_text()
    try:
        driver.write_text(original.replace("\t__iowrite32_copy(base + 8, fw, 16);\n", ""))
        assert _gate(tree, cache, "--base", "HEAD") == 0
        assert "fixed (1)" in capsys.readouterr().out
    finally:
        driver.write_text(original)
    assert (hashlib.sha256(index.read_bytes()).hexdigest(), index.stat().st_mtime_ns) == before


def test_a_patch_that_does_not_apply_is_one_line(tree: Path, cache: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    patch = tmp_path / "0001-foo.patch"
    patch.write_text(_git(tree, "format-patch", "-1", "--stdout", "HEAD~1"))
    assert _gate(tree, cache, "--patch", str(patch)) == 2  # already applied in the tree
    err = capsys.readouterr().err
    assert "does not apply" in err and err.count("\n") == 1 and not has_traceback(err)


def test_sarif_for_code_review(tree: Path, cache: str, tmp_path: Path) -> None:
    out = tmp_path / "gate.sarif"
    assert _gate(tree, cache, "--base", "HEAD~2", "--head", "HEAD", "--format", "sarif",
                 "-o", str(out)) == 1
    results = json.loads(out.read_text())["runs"][0]["results"]
    new = [r for r in results if r["baselineState"] == "new"]
    assert [(r["ruleId"], r["level"]) for r in new] == [("unsupported-mmio", "error")]
    assert {r["baselineState"] for r in results} == {"new", "unchanged"}


HOOK = Path(__file__).resolve().parents[2] / "examples" / "hooks" / "pre-push"


def _push(tree: Path, cache: str, local: str, remote: str) -> subprocess.CompletedProcess[str]:
    """Run the pre-push hook as git would for `git push origin main` (no remote needed)."""
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "MMIOSCAN": f"{sys.executable} -m mmioscan",
           "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])),
           "MMIOSCAN_GATE_ARGS": f"-j 1 --cache-dir {cache}"}
    line = f"refs/heads/main {_git(tree, 'rev-parse', local).strip()} refs/heads/main " \
           f"{_git(tree, 'rev-parse', remote).strip()}\n"
    return subprocess.run(["sh", str(HOOK), "origin", "unused-url"], input=line, cwd=tree,
                          env=env, capture_output=True, text=True, check=False)


def test_the_pre_push_hook(tree: Path, cache: str) -> None:
    refused = _push(tree, cache, "HEAD~1", "HEAD~2")
    assert refused.returncode == 1, refused.stderr
    assert "FAIL: 1 new blocking" in refused.stdout and "push refused" in refused.stderr
    allowed = _push(tree, cache, "HEAD", "HEAD~1")
    assert allowed.returncode == 0, allowed.stderr


def _export(tree: Path, rev: str, dest: Path) -> Path:
    """Another copy of the tree at rev, as a plain folder (a second kernel version)."""
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(tree), "archive", rev], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def test_baseline_triage_and_history_with_the_real_analysis(
        tree: Path, cache: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = _export(tree, "HEAD~2", tmp_path / "old")
    scan = ["-j", "1", "--cache-dir", cache]
    baseline = tmp_path / "baseline.json"
    assert run_cli(["baseline", "write", str(baseline), str(old), *scan]) == 0
    # the old tree's findings accepted, the new tree adds __iowrite32_copy: blocked
    assert run_cli(["gate", str(tree), "--baseline", str(baseline), *scan]) == 1
    assert "FAIL: 1 new blocking" in capsys.readouterr().out
    assert run_cli(["triage", str(tree), "--format", "json", *scan]) == 0
    unlabelled = json.loads(capsys.readouterr().out)
    copy = next(f for f in unlabelled if f["callee"] == "__iowrite32_copy")
    triage = tmp_path / "triage.json"
    triage.write_text(json.dumps({"version": 1, "findings": {
        copy["fingerprint"]: {"label": "excluded", "comment": "not built for TDX guests"}}}))
    assert run_cli(["gate", str(tree), "--baseline", str(baseline), "--triage", str(triage),
                    *scan]) == 0
    db = str(tmp_path / "history.sqlite")
    assert run_cli(["history", "record", str(old), "--label", "old", "--db", db, *scan]) == 0
    assert run_cli(["history", "record", str(tree), "--label", "new", "--db", db, *scan]) == 0
    capsys.readouterr()
    assert run_cli(["diff", "1", "2", "--db", db, "--format", "json"]) == 0
    added = json.loads(capsys.readouterr().out)["added"]
    assert [(f["class"], f["callee"], f["driver"]) for f in added] == [
        ("unsupported-mmio", "__iowrite32_copy", "foo")]
