"""The gate's plumbing (mmioscan/gate/: compare, gitrev, report; cli/gate.py) on a tiny git
tree, with a regex scanner standing in for the analysis (tests/unit/gate_sites.py).
The real analysis runs in tests/integration/test_gate_e2e.py."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator

from mmioscan.cli import gate as cli_gate
from mmioscan.gate.compare import GateOptions, compare, gate_patch, gate_revisions
from mmioscan.gate.gitrev import GitError, RevSource, commit_of, needed_paths
from mmioscan.gate.patchfile import PatchError
from mmioscan.gate.policy import load_policy
from mmioscan.gate.report import render_json, render_sarif, render_text
from tests.unit.gate_sites import fake_scan, make_site
from tests.unit.helpers import has_traceback, run_cli

SCHEMA = Path(__file__).resolve().parent.parent / "fixtures" / "schemas" / \
    "sarif-schema-2.1.0.json"

FOO_C = """\
#include "foo.h"
#include <linux/foo_io.h>

void foo_start(void)
{
\twritel(1, base);  /* start */
}
"""
FILES = {
    "Makefile": "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\n",
    "MAINTAINERS": "",  # MAINTAINERS, Kbuild and arch/ make it a kernel root
    "Kbuild": "",
    "arch/x86/Kconfig": "config X86\n\tdef_bool y\n",
    "drivers/foo/Makefile": "obj-y += foo.o\n",
    "drivers/foo/foo.c": FOO_C,
    "drivers/foo/foo.h": "#include <linux/bar.h>\n",
    "drivers/foo/notes.txt": "not C\n",
    "include/linux/foo_io.h": "#define FOO_IO 1\n",
    "include/linux/bar.h": '#include "baz.h"\n',
    "include/linux/baz.h": "#define BAZ 1\n",
    "include/linux/unrelated.h": "#define U 1\n",
    "drivers/other/other.c": "void other(void) { readl(p); }\n",
}


def _git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.org",
                           "-c", "commit.gpgsign=false", "-C", str(tree), *args],
                          check=True, capture_output=True, text=True).stdout


def _commit(tree: Path, message: str) -> str:
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", message)
    return _git(tree, "rev-parse", "HEAD").strip()


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    tree = tmp_path / "linux"
    for path, text in FILES.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    _git(tree, "init", "-q", "-b", "main")
    _commit(tree, "base")
    return tree


def _options(**kw: Any) -> GateOptions:
    return GateOptions(load_policy(), fake_scan, **kw)


def _edit(tree: Path, old: str, new: str, path: str = "drivers/foo/foo.c") -> None:
    file = tree / path
    file.write_text(file.read_text().replace(old, new))


COPY = "\twritel(1, base);  /* start */\n\t__iowrite32_copy(dst, src, 4);\n"


def test_materialises_the_folder_its_includes_and_build_files(repo: Path) -> None:
    source = RevSource(repo, commit_of(repo, "HEAD"))
    got = set(needed_paths(source, ["drivers/foo"]))
    assert {"drivers/foo/foo.c", "drivers/foo/foo.h", "drivers/foo/Makefile", "Makefile",
            "include/linux/foo_io.h", "include/linux/bar.h",
            "include/linux/baz.h"} <= got  # baz.h: included by bar.h, transitively
    assert "drivers/other/other.c" not in got
    assert "include/linux/unrelated.h" not in got
    assert "drivers/foo/notes.txt" not in got


def test_materialises_headers_found_through_makefile_flags(repo: Path) -> None:
    # the scan resolves `#include "fx_regs.h"` through drivers/foo's `-I` (kernel/
    # includepaths.py): the gate's copy must hold that header too, in both versions
    (repo / "drivers/fx/common").mkdir(parents=True)
    (repo / "drivers/fx/common/fx_regs.h").write_text("#define FX_CTRL 0x10\n")
    (repo / "drivers/foo/Makefile").write_text(
        "obj-y += foo.o\nccflags-y += -I $(srctree)/drivers/fx/common\n")
    _edit(repo, '#include "foo.h"\n', '#include "foo.h"\n#include "fx_regs.h"\n')
    _commit(repo, "flags")
    source = RevSource(repo, commit_of(repo, "HEAD"))
    assert "drivers/fx/common/fx_regs.h" in needed_paths(source, ["drivers/foo"])
    (repo / "drivers/foo/Makefile").write_text("obj-y += foo.o\n")
    _commit(repo, "no flags")
    source = RevSource(repo, commit_of(repo, "HEAD"))
    assert "drivers/fx/common/fx_regs.h" not in needed_paths(source, ["drivers/foo"])


def test_new_unsupported_call_in_the_working_tree_blocks(repo: Path) -> None:
    _edit(repo, "\twritel(1, base);  /* start */\n", COPY)
    report = gate_revisions(repo, "HEAD", None, _options())
    assert report.changed == ("drivers/foo/foo.c",)
    assert report.scanned == ("drivers/foo",)
    assert [(f.site.callee, f.decision.rule) for f in report.blocking] == [
        ("__iowrite32_copy", "new-unsupported-mmio")]
    assert report.exit_code == 1
    text = render_text(report)
    assert "FAIL: 1 new blocking finding" in text and "drivers/foo/foo.c:7 foo_start()" in text


def test_comment_only_change_between_commits_is_clean(repo: Path) -> None:
    base = commit_of(repo, "HEAD")
    _edit(repo, "/* start */", "/* start the engine */")
    _edit(repo, "void foo_start", "/* a new comment line */\nvoid foo_start")
    head = _commit(repo, "comment")
    report = gate_revisions(repo, base, head, _options())
    assert report.exit_code == 0
    assert report.of("new") == [] and report.of("absent") == []
    assert len(report.of("unchanged")) == 1  # writel moved a line down: same fingerprint
    assert "PASS" in render_text(report)


def test_fixed_findings_and_deleted_files(repo: Path) -> None:
    base = commit_of(repo, "HEAD")
    (repo / "drivers/other/other.c").unlink()
    head = _commit(repo, "drop other")
    report = gate_revisions(repo, base, head, _options())
    assert [(f.state, f.site.path) for f in report.findings] == [
        ("absent", "drivers/other/other.c")]
    assert report.exit_code == 0 and "fixed (1)" in render_text(report)


def test_untracked_new_file_counts(repo: Path) -> None:
    (repo / "drivers/foo/extra.c").write_text("void x(void)\n{\n\t__iowrite32_copy(a, b, 1);\n}\n")
    report = gate_revisions(repo, "HEAD", None, _options())
    assert report.changed == ("drivers/foo/extra.c",)
    assert report.exit_code == 1


def test_no_c_change_scans_nothing(repo: Path) -> None:
    (repo / "drivers/foo/notes.txt").write_text("changed\n")
    report = gate_revisions(repo, "HEAD", None, _options())
    assert report.scanned == () and report.exit_code == 0
    assert "no C source or header file changed" in render_text(report)


def _fingerprint_of_git(tree: Path) -> tuple[str, str]:
    index = hashlib.sha256((tree / ".git" / "index").read_bytes()).hexdigest()
    return index, _git(tree, "status", "--porcelain")


def test_never_touches_the_index_or_the_tree(repo: Path) -> None:
    patch = _patch_file(repo)
    _edit(repo, "\twritel(1, base);  /* start */\n", COPY)
    (repo / "drivers/foo/foo.c").touch()  # a stale stat: `git diff` would refresh the index
    before = _fingerprint_of_git(repo)
    stat = (repo / ".git" / "index").stat().st_mtime_ns
    gate_revisions(repo, "HEAD", None, _options())
    gate_patch(repo, patch, "HEAD", _options())
    assert (repo / ".git" / "index").stat().st_mtime_ns == stat
    assert _fingerprint_of_git(repo) == before


def _patch_file(repo: Path) -> Path:
    patch = repo.parent / "change.patch"
    _edit(repo, "\twritel(1, base);  /* start */\n", COPY)
    patch.write_text(_git(repo, "diff"))
    _git(repo, "checkout", "-q", "--", ".")
    return patch


def test_a_patch_file_gives_the_same_answer(repo: Path) -> None:
    patch = _patch_file(repo)
    report = gate_patch(repo, patch, None, _options())
    assert report.exit_code == 1 and report.notes == ("1 patch, 1 file change",)
    assert (repo / "drivers/foo/foo.c").read_text() == FOO_C  # the tree is untouched
    # on a tree that is no git tree at all
    plain = repo.parent / "plain"
    _git(repo, "worktree", "list")  # (read-only) the repo is fine
    subprocess.run(["cp", "-r", str(repo), str(plain)], check=True)
    subprocess.run(["rm", "-rf", str(plain / ".git")], check=True)
    assert gate_patch(plain, patch, None, _options()).exit_code == 1
    # and on top of a revision
    assert gate_patch(repo, patch, "HEAD", _options()).exit_code == 1


def test_a_patch_that_does_not_apply(repo: Path) -> None:
    patch = _patch_file(repo)
    _edit(repo, "\twritel(1, base);  /* start */\n", "\tsomething(else);\n")
    with pytest.raises(PatchError, match="hunk #1 .*does not apply"):
        gate_patch(repo, patch, None, _options())


def test_bad_revisions_and_trees(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="unknown revision 'nope'"):
        gate_revisions(repo, "nope", None, _options())
    with pytest.raises(GitError, match="unknown revision '--output=x'"):
        gate_revisions(repo, "--output=x", None, _options())
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    with pytest.raises(GitError, match="not inside a git work tree"):
        gate_revisions(lonely, "HEAD", None, _options())


def test_compare_counts_copies_and_keeps_order() -> None:
    a = make_site(line=5)
    copy = make_site(line=6, occurrence=1)
    gone = make_site(line=9, function="bar", callee="__iowrite32_copy", tdx="unsupported")
    out = compare([a, gone], [a, copy], _options())
    assert [(f.state, f.site.line) for f in out] == [
        ("new", 6), ("absent", 9), ("unchanged", 5)]


@pytest.fixture(scope="module")
def validator() -> Draft4Validator:
    return Draft4Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def test_sarif_has_baseline_states(repo: Path, validator: Draft4Validator) -> None:
    (repo / "drivers/other/other.c").write_text("void other(void) { }\n")
    _edit(repo, "\twritel(1, base);  /* start */\n", COPY)
    report = gate_revisions(repo, "HEAD", None, _options())
    doc = json.loads(render_sarif(report))
    errors = list(validator.iter_errors(doc))
    assert not errors, errors[0].message
    results = doc["runs"][0]["results"]
    states = sorted((r["baselineState"], r["level"], r["ruleId"]) for r in results)
    assert states == [("absent", "note", "ve-mmio"), ("new", "error", "unsupported-mmio"),
                      ("unchanged", "note", "ve-mmio")]
    assert doc["runs"][0]["properties"]["gate"]["result"] == "fail"
    assert doc["runs"][0]["originalUriBaseIds"]["SRCROOT"]["uri"].endswith("/linux/")
    data = json.loads(render_json(report))
    assert data["result"] == "fail" and data["counts"]["blocking"] == 1


# ---- the command line ----------------------------------------------------------------------


@pytest.fixture()
def fake_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_gate, "_scanner", lambda args, copies=False: fake_scan)


@pytest.mark.usefixtures("fake_cli")
def test_cli_exit_codes_and_outputs(repo: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["gate", str(repo), "--base", "HEAD"]) == 0
    assert "PASS" in capsys.readouterr().out
    _edit(repo, "\twritel(1, base);  /* start */\n", COPY)
    sarif = tmp_path / "gate.sarif"
    assert run_cli(["gate", str(repo), "--base", "HEAD", "--sarif", str(sarif)]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert json.loads(sarif.read_text())["runs"][0]["results"]
    assert run_cli(["gate", str(repo), "--base", "HEAD", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["exit_code"] == 1


@pytest.mark.usefixtures("fake_cli")
def test_cli_triage_and_baseline_unblock(repo: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _edit(repo, "\twritel(1, base);  /* start */\n", COPY)
    data = json.loads(_run_json(["gate", str(repo), "--base", "HEAD"], capsys))
    fp = next(f["fingerprint"] for f in data["findings"] if f["state"] == "new")
    triage = tmp_path / "triage.toml"
    triage.write_text(f'[findings.{fp}]\nlabel = "safe"\ncomment = "bounded copy"\n')
    assert run_cli(["gate", str(repo), "--base", "HEAD", "--triage", str(triage)]) == 0
    baseline = tmp_path / "baseline.json"
    assert run_cli(["baseline", "write", str(baseline), str(repo / "drivers")]) == 0
    capsys.readouterr()
    assert run_cli(["gate", str(repo), "--baseline", str(baseline)]) == 0
    _edit(repo, "__iowrite32_copy(dst, src, 4);\n",
          "__iowrite32_copy(dst, src, 4);\n\t__iowrite32_copy(dst, src, 4);\n")
    assert run_cli(["gate", str(repo), "--baseline", str(baseline)]) == 1  # a new copy
    assert "FAIL: 1 new blocking" in capsys.readouterr().out
    assert run_cli(["triage", str(repo / "drivers"), "--triage", str(triage)]) == 0
    out = capsys.readouterr().out
    assert "3 unlabelled finding(s)" in out and fp not in out


def _run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    run_cli([*args, "--format", "json"])
    return capsys.readouterr().out


@pytest.mark.usefixtures("fake_cli")
@pytest.mark.parametrize(("args", "message"), [
    (["gate", "{repo}"], "needs --base REV, --patch FILE or --baseline FILE"),
    (["gate", "{repo}", "--head", "HEAD"], "--head needs --base"),
    (["gate", "{repo}", "--base", "nope"], "unknown revision 'nope'"),
    (["gate", "{tmp}", "--base", "HEAD"], "not inside a git work tree"),
    (["gate", "{repo}", "--patch", "{tmp}/missing.patch"], "cannot read"),
    (["gate", "{repo}", "--patch", "{repo}/Makefile"], "no diff found"),
    (["gate", "{repo}", "--base", "HEAD", "--policy", "{repo}/drivers/foo/foo.c"],
     "not valid TOML"),
    (["gate", "{repo}", "--baseline", "{repo}/Makefile"], "not a JSON baseline"),
    (["gate", "{repo}", "--base", "HEAD", "--triage", "{repo}/drivers/foo/foo.c"],
     "not valid TOML"),
    (["baseline"], "baseline needs a command"),
])
def test_cli_input_errors_are_one_line(repo: Path, tmp_path: Path, args: list[str],
                                       message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [a.format(repo=repo, tmp=empty) for a in args]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not has_traceback(err)


def test_the_workspace_is_reused_and_unchanged_files_keep_their_mtime(repo: Path,
                                                                      tmp_path: Path) -> None:
    _edit(repo, "\twritel(1, base);  /* start */\n", COPY)
    options = _options(workspace=tmp_path / "ws")
    gate_revisions(repo, "HEAD", None, options)
    (place,) = (tmp_path / "ws").iterdir()
    header = place / "head" / "include/linux/bar.h"
    stamp = header.stat().st_mtime_ns
    (place / "head" / "stale.c").write_text("left over\n")
    assert gate_revisions(repo, "HEAD", None, options).exit_code == 1
    assert header.stat().st_mtime_ns == stamp
    assert not (place / "head" / "stale.c").exists()


def test_a_busy_workspace_falls_back_to_a_temporary_folder(repo: Path, tmp_path: Path) -> None:
    import fcntl

    from mmioscan.gate.compare import _workspace

    options = _options(workspace=tmp_path / "ws")
    with _workspace(options, repo) as first, _workspace(options, repo) as second:
        assert first.parent == tmp_path / "ws" and second.parent != tmp_path / "ws"
    with (first / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the first run


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_ci_examples_run_the_gate_and_keep_sarif() -> None:
    yaml = pytest.importorskip("yaml")
    github = yaml.safe_load((EXAMPLES / "ci" / "github-workflow.yml").read_text())
    steps = github["jobs"]["gate"]["steps"]
    assert any("mmioscan gate" in s.get("run", "") and "--sarif" in s.get("run", "")
               for s in steps)
    upload = next(s for s in steps if "upload-sarif" in s.get("uses", ""))
    assert "always()" in upload["if"]
    gitlab = yaml.safe_load((EXAMPLES / "ci" / "gitlab-ci.yml").read_text())["mmioscan-gate"]
    assert any("mmioscan gate" in line for line in gitlab["script"])
    assert gitlab["artifacts"]["when"] == "always"
    hook = EXAMPLES / "hooks" / "pre-push"
    assert hook.stat().st_mode & 0o111
    subprocess.run(["sh", "-n", str(hook)], check=True)


# ---- hostile input, the workspace, crashes (hardening) --------------------------------------


def _one_line(capsys: pytest.CaptureFixture[str], start: str = "mmioscan: error:") -> str:
    err = capsys.readouterr().err
    assert err.startswith(start) and err.count("\n") == 1 and not has_traceback(err), err
    return err


NEW_C = """\
diff --git a/{0} b/{0}
new file mode 100644
--- /dev/null
+++ b/{0}
@@ -0,0 +1 @@
+void f(void) {{ readl(p); }}
"""


@pytest.mark.usefixtures("fake_cli")
@pytest.mark.parametrize(("patch", "message"), [
    (NEW_C.format("drivers/foo/x.h") + NEW_C.format("drivers/foo/x.h/y.c"),
     "drivers/foo/x.h is a file"),
    (NEW_C.format("drivers/foo/foo.c/y.c"), "drivers/foo/foo.c is a file"),
    (NEW_C.format("drivers/foo/n\0ul.c"), "NUL"),
    (NEW_C.format("drivers/foo/x.c").replace("a/drivers/foo/x.c", '"a/drivers/foo/\\377.c"')
     .replace("b/drivers/foo/x.c", '"b/drivers/foo/\\377.c"'), "not UTF-8"),
    (NEW_C.format("drivers/foo/x.c").replace("@@ -0,0 +1 @@", f"@@ -0,0 +{'1' * 5000} @@"),
     "too large"),
], ids=["file-and-folder", "under-a-file", "nul", "not-utf8", "huge-hunk-number"])
def test_cli_patches_no_tree_can_take(repo: Path, tmp_path: Path, patch: str, message: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "evil.patch"
    path.write_bytes(patch.encode())
    for base in ([], ["--base", "HEAD"]):
        assert run_cli(["gate", str(repo), "--patch", str(path), *base]) == 2
        assert message in _one_line(capsys)


@pytest.mark.usefixtures("fake_cli")
@pytest.mark.parametrize(("option", "name", "text"), [
    ("--baseline", "b.json", '{"version": 1, "findings": [' * 50_000),
    ("--baseline", "b.json", '{"version": 1, "created_from": {}, "findings": [{"count": '
     + "1" * 5000 + "}]}"),
    ("--triage", "t.toml", "x = " + "[" * 100_000 + "]" * 100_000 + "\n"),
    ("--triage", "t.json", '{"version": ' + "1" * 5000 + "}"),
    ("--policy", "p.toml", "version = " + "1" * 5000 + "\n"),
    ("--policy", "p.toml", "x = " + "{a = " * 50_000 + "1" + "}" * 50_000 + "\n"),
], ids=["baseline-deep", "baseline-number", "triage-deep", "triage-number", "policy-number",
        "policy-deep"])
def test_cli_input_files_the_parsers_refuse(repo: Path, tmp_path: Path, option: str,
                                            name: str, text: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name
    path.write_text(text)
    base = [] if option == "--baseline" else ["--base", "HEAD"]
    assert run_cli(["gate", str(repo), *base, option, str(path)]) == 2
    assert str(path) in _one_line(capsys)


@pytest.mark.usefixtures("fake_cli")
def test_keep_temp_refuses_a_file_and_a_folder_of_the_users(repo: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    _edit(repo, "\twritel(1, base);  /* start */\n", COPY)
    file = tmp_path / "notes.txt"
    file.write_text("mine\n")
    assert run_cli(["gate", str(repo), "--base", "HEAD", "--keep-temp", str(file)]) == 2
    assert "not a folder" in _one_line(capsys)
    mine = tmp_path / "mine"
    (mine / "base").mkdir(parents=True)
    (mine / "base" / "thesis.tex").write_text("years of work\n")
    assert run_cli(["gate", str(repo), "--base", "HEAD", "--keep-temp", str(mine)]) == 2
    assert "not empty" in _one_line(capsys)
    assert (mine / "base" / "thesis.tex").read_text() == "years of work\n"
    assert file.read_text() == "mine\n"


@pytest.mark.usefixtures("fake_cli")
def test_keep_temp_makes_a_folder_the_next_run_may_reuse(repo: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    _edit(repo, "\twritel(1, base);  /* start */\n", COPY)
    keep = tmp_path / "keep"
    assert run_cli(["gate", str(repo), "--base", "HEAD", "--keep-temp", str(keep)]) == 1
    assert (keep / "head" / "drivers/foo/foo.c").read_text() == (repo / "drivers/foo/foo.c"
                                                                 ).read_text()
    assert (keep / ".mmioscan-keep-temp").is_file()
    assert run_cli(["gate", str(repo), "--base", "HEAD", "--keep-temp", str(keep)]) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(["gate", str(repo), "--base", "HEAD", "--keep-temp", str(empty)]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.usefixtures("fake_cli")
def test_a_full_disk_under_the_cache_is_as_no_cache(repo: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The workspace is an optimisation: ENOSPC while laying out files in it (or a read-only
    cache folder) means the gate runs in a temporary folder, with the same answer."""
    import errno

    from mmioscan.gate import gitrev

    cache = tmp_path / "cache"
    real = gitrev.sync_tree

    def full(dest: Path, contents: dict[str, bytes]) -> None:
        if cache in dest.parents:
            raise OSError(errno.ENOSPC, "No space left on device", str(dest / "Kbuild"))
        real(dest, contents)

    monkeypatch.setattr(gitrev, "sync_tree", full)
    assert run_cli(["gate", str(repo), "--base", "HEAD", "--cache-dir", str(cache)]) == 0
    assert "result: PASS" in capsys.readouterr().out
    _edit(repo, "\twritel(1, base);  /* start */\n", COPY)
    assert run_cli(["gate", str(repo), "--base", "HEAD", "--cache-dir", str(cache)]) == 1
    assert "FAIL: 1 new blocking" in capsys.readouterr().out
    assert (cache / "gate").is_dir()  # the workspace was tried first


def test_a_crash_in_the_gate_is_exit_3_never_1(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    def scanner(args: object, copies: bool = False) -> object:
        def crash(root: Path, folders: tuple[str, ...]) -> object:
            raise RuntimeError("boom\nsecond line")
        return crash

    monkeypatch.setattr(cli_gate, "_scanner", scanner)
    _edit(repo, "\twritel(1, base);  /* start */\n", COPY)
    monkeypatch.delenv("MMIOSCAN_DEBUG", raising=False)
    assert run_cli(["gate", str(repo), "--base", "HEAD"]) == 3
    err = _one_line(capsys, "mmioscan: internal error:")
    assert err == ("mmioscan: internal error: RuntimeError: boom second line (please report "
                   "it with the command line)\n")
    monkeypatch.setenv("MMIOSCAN_DEBUG", "1")
    assert run_cli(["gate", str(repo), "--base", "HEAD"]) == 3
    err = capsys.readouterr().err
    assert has_traceback(err) and err.endswith("(please report it with the command line)\n")


TDTREE = Path(__file__).resolve().parent.parent / "fixtures" / "tdtree"
RULES = Path(__file__).resolve().parents[2] / "rules" / "accessors.toml"


@pytest.mark.parametrize("command", [  # the options `mmioscan scan` takes, as it takes them
    ["baseline", "write", "{tmp}/b.json", "{tree}/drivers"],
    ["triage", "{tree}/drivers"],
    ["history", "record", "{tree}/drivers", "--db", "{tmp}/h.sqlite"],
    ["gate", "{tree}", "--baseline", "{tmp}/accepted.json"],
], ids=["baseline", "triage", "history", "gate"])
def test_every_scanning_command_takes_the_common_options(tmp_path: Path, command: list[str],
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    (tmp_path / "accepted.json").write_text('{"version": 1, "created_from": {"scanned": '
                                            '["drivers"]}, "findings": []}')
    points = tmp_path / "points.txt"
    points.write_text("vp_ioread16\n")
    common = ["--no-progress", "--timings", "--jobs", "1", "--cache-dir", str(tmp_path / "c"),
              "--root", str(TDTREE), "--config", str(TDTREE / "td.config"), "--all",
              "--strategy", "upstream", "--rules", str(RULES), "--patch-points", str(points)]
    argv = [a.format(tree=TDTREE, tmp=tmp_path) for a in command]
    assert run_cli([*argv, *common]) in (0, 1)  # 1: the gate's verdict on these findings
    err = capsys.readouterr().err
    assert "mmioscan: timings: " in err and not has_traceback(err)
    assert run_cli([*argv, "--no-cache", "--jobs", "1", "--no-progress"]) in (0, 1)


def test_the_common_options_are_those_of_scan() -> None:
    import argparse

    from mmioscan.cli.main import add_scan_options, build_parser

    def options(parser: argparse.ArgumentParser) -> set[str]:
        return {s for a in parser._actions for s in a.option_strings}

    reference = argparse.ArgumentParser()
    add_scan_options(reference)
    wanted = options(reference) - {"-h", "--help"}
    sub = next(a for a in build_parser()._actions
               if isinstance(a, argparse._SubParsersAction))
    nested = {name: next(a for a in sub.choices[name]._actions
                         if isinstance(a, argparse._SubParsersAction))
              for name in ("baseline", "history")}
    parsers = {"gate": sub.choices["gate"], "triage": sub.choices["triage"],
               "baseline write": nested["baseline"].choices["write"],
               "history record": nested["history"].choices["record"]}
    for name, parser in parsers.items():
        assert wanted <= options(parser), (name, sorted(wanted - options(parser)))


def test_a_gate_run_again_serves_both_versions_from_the_products_cache(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The gate before each push scans the same two copies: the second run analyses
    neither (their products are kept by content), the third, after another edit, only the
    version that changed (the base is the same commit); the answers are the same as
    computed."""
    from mmioscan.cli import commands

    analysed: list[str] = []
    real = commands.run_analysis

    def counting(args: Any, options: Any, *rest: Any, **kw: Any) -> Any:
        analysed.append(options.scan.root.name)
        return real(args, options, *rest, **kw)

    monkeypatch.setattr(commands, "run_analysis", counting)
    cache, out = tmp_path / "cache", tmp_path / "gate.json"
    _edit(repo, "\twritel(1, base);  /* start */\n", COPY)
    args = ["gate", str(repo), "--base", "HEAD", "--cache-dir", str(cache),
            "--format", "json", "-o", str(out)]
    assert run_cli(args) == 1
    first = out.read_bytes()
    assert sorted(analysed) == ["base", "head"]
    analysed.clear()
    assert run_cli(args) == 1
    assert analysed == [] and out.read_bytes() == first
    _edit(repo, COPY, "\twritel(2, base);  /* start */\n")
    assert run_cli(args) in (0, 1)
    assert analysed == ["head"]
    capsys.readouterr()
