"""The command line: help, version, the JSON contract, determinism, the text summary."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from mmioscan import __version__

from .helpers import CONTRACT_KEYS, SITE_KEYS, TREE, copy_tree, has_traceback, run_cli, scan_json


@pytest.fixture(scope="module")
def tree_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scan_json(tmp_path_factory.mktemp("cli"), TREE)


def _big_tree(dest: Path) -> Path:
    """The fixture tree with drivers/foo copied a few times: enough files for a process pool."""
    root = copy_tree(dest)
    for i in range(1, 4):
        shutil.copytree(root / "drivers/foo", root / f"drivers/foo{i}")
    assert len(list(root.rglob("*.[ch]"))) > 32
    return root


# -- help and version --------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"mmioscan {__version__}"


@pytest.mark.parametrize("args", [["--help"], ["scan", "--help"], ["kernel-tree", "--help"]])
def test_help_exits_0(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    assert run_cli(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mmioscan")


def test_scan_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(["scan", "--help"])
    out = capsys.readouterr().out
    for option in ("--root", "--format", "--output", "--jobs", "--cache-dir", "--no-cache",
                   "--rules", "--no-progress"):
        assert option in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmioscan: error:") and len(err.splitlines()) == 1


@pytest.mark.parametrize("args", [["scan"], ["scan", str(TREE), "--format", "xml"],
                                  ["scan", str(TREE), "--bogus"], ["frobnicate"],
                                  ["scan", str(TREE), "--jobs", "many"]])
def test_bad_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str],
                                        args: list[str]) -> None:
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmioscan: error:")
    assert len(err.splitlines()) == 1
    assert not has_traceback(err)


# -- the JSON contract -----------------------------------------------------------------------


def test_json_contract_keys(tree_json: dict[str, Any]) -> None:
    assert set(tree_json) >= CONTRACT_KEYS
    assert tree_json["schema_version"] == 1
    assert tree_json["tool"]["name"] == "mmioscan"
    assert tree_json["tool"]["version"] == __version__
    assert tree_json["root"] == str(TREE.resolve())
    assert tree_json["kernel_version"] == "6.12.7"
    assert isinstance(tree_json["stats"], dict)
    assert isinstance(tree_json["sites"], list) and tree_json["sites"]
    assert isinstance(tree_json["drivers"], list)
    assert isinstance(tree_json["problems"], list)


def test_json_site_keys_and_types(tree_json: dict[str, Any]) -> None:
    for site in tree_json["sites"]:
        assert set(site) >= SITE_KEYS, sorted(SITE_KEYS - set(site))
        assert isinstance(site["path"], str)
        assert isinstance(site["line"], int) and site["line"] >= 1
        assert isinstance(site["column"], int) and site["column"] >= 1
        assert site["function"] is None or isinstance(site["function"], str)
        assert site["kind"] in ("direct", "wrapper", "reference", "deref", "regmap")
        assert site["access"] in ("read", "write", "both")
        assert site["width"] in (8, 16, 32, 64, 512, None)
        assert site["family"] in ("mmio", "iomap", "bulk", "split", "poll", "submit", "pio",
                                  "regmap", "deref")
        assert isinstance(site["active"], bool)


def test_json_paths_are_relative_posix(tree_json: dict[str, Any]) -> None:
    paths = [s["path"] for s in tree_json["sites"]] + [p["path"] for p in tree_json["problems"]]
    for path in paths:
        assert not path.startswith("/") and "\\" not in path and ".." not in path.split("/")
        assert (TREE / path).exists() or path == "."
    assert tree_json["scanned"] == ["."]


def test_json_sites_are_sorted(tree_json: dict[str, Any]) -> None:
    keys = [(s["path"], s["line"], s["column"], s["callee"]) for s in tree_json["sites"]]
    assert keys == sorted(keys)
    assert len(keys) == len(set(keys))


def test_json_stats_count_active_sites(tree_json: dict[str, Any]) -> None:
    stats = tree_json["stats"]
    sites = tree_json["sites"]
    active = [s for s in sites if s["active"]]
    assert stats["sites"] == len(active)
    assert stats["inactive_sites"] == len(sites) - len(active)
    assert sum(stats["by_family"].values()) == len(active)
    assert sum(stats["by_access"].values()) == len(active)
    assert stats["files"] == len(list(TREE.rglob("*.[ch]")))
    assert stats["problems"] == len(tree_json["problems"])


def test_stdout_json_equals_file_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.json"
    args = ["scan", str(TREE), "--format", "json", "--no-cache", "--no-progress"]
    assert run_cli(args) == 0
    stdout = capsys.readouterr().out
    assert run_cli([*args, "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert out.read_text(encoding="utf-8") == stdout


def test_same_input_same_bytes(tmp_path: Path) -> None:
    root = _big_tree(tmp_path / "linux")
    outputs = []
    for i, jobs in enumerate(("1", "1", "2", "2")):
        out = tmp_path / f"o{i}.json"
        assert run_cli(["scan", str(root), "--format", "json", "-o", str(out), "--no-cache",
                        "--no-progress", "--jobs", jobs]) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1], "two runs differ"
    assert outputs[0] == outputs[2], "--jobs 1 and --jobs 2 differ"
    assert outputs[2] == outputs[3]
    data = json.loads(outputs[0])
    assert {s["path"].split("/")[1] for s in data["sites"]} >= {"foo", "foo1", "foo2", "foo3"}


def test_same_bytes_text_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _big_tree(tmp_path / "linux")
    texts = []
    for jobs in ("1", "2"):
        assert run_cli(["scan", str(root), "--no-cache", "--no-progress", "--jobs", jobs]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1]


def test_no_progress_output_on_stderr_when_not_a_tty(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["scan", str(TREE), "--format", "json", "--no-cache"]) == 0
    assert capsys.readouterr().err == ""


# -- the text summary ------------------------------------------------------------------------


def test_text_summary(capsys: pytest.CaptureFixture[str], tree_json: dict[str, Any]) -> None:
    assert run_cli(["scan", str(TREE), "--no-cache", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Linux 6.12.7" in out
    assert "by family and access:" in out
    assert "top folders:" in out
    stats = tree_json["stats"]
    assert re.search(rf"sites: {stats['sites']:,} active", out)

    def rows(title: str) -> dict[str, int]:
        block = out.split(title, 1)[1].split("\n\n", 1)[0]
        found = {}
        for line in block.strip("\n").splitlines():
            m = re.fullmatch(r"\s+(.+?)\s+([\d,]+)", line)
            assert m, line
            found[m.group(1)] = int(m.group(2).replace(",", ""))
        return found

    active = [s for s in tree_json["sites"] if s["active"]]
    fam_acc = rows("by family and access:")
    assert fam_acc["mmio read"] == sum(1 for s in active
                                       if (s["family"], s["access"]) == ("mmio", "read"))
    assert fam_acc["pio write"] > 0 and fam_acc["poll read"] > 0
    assert sum(fam_acc.values()) == len(active)
    folders = rows("top folders:")
    assert set(folders) == {"drivers/foo", "drivers/bar", "drivers/wrap", "drivers/wrapport",
                            "drivers/rmap", "drivers/deref", "include/linux"}
    assert folders["drivers/bar"] == 2
    assert list(folders) == sorted(folders, key=lambda f: -folders[f])


def test_text_output_to_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "summary.txt"
    assert run_cli(["scan", str(TREE / "drivers/bar"), "--no-cache", "--no-progress", "-o",
                    str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert "by family and access:" in out.read_text(encoding="utf-8")


def test_text_summary_shows_hot_paths_and_patch_points(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    assert run_cli(["scan", str(TREE), "--no-cache", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^hot: \d+ sites reachable from [1-9]\d* ", text, re.MULTILINE)
    assert re.search(r"^patch points over all \d+ sites \(points needed\): 50% \d+", text,
                     re.MULTILINE)
    assert "largest drivers" in text


def test_direct_only_has_no_graph_results(tmp_path: Path) -> None:
    out = tmp_path / "d.json"
    assert run_cli(["scan", str(TREE), "--direct-only", "--format", "json", "-o", str(out),
                    "--no-cache", "--no-progress"]) == 0
    doc = json.loads(out.read_text())
    assert {s["kind"] for s in doc["sites"]} <= {"direct", "reference", "deref"}
    assert doc["patch_points"] == {} and doc["hot_roots"] == []


def test_explain_name_and_location(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["explain", "__wr_rd", str(TREE / "drivers/wrap"), "--root", str(TREE),
                    "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "wrapper: reaches" in out and "shortest chain: __wr_rd -> " in out
    assert run_cli(["explain", "no_such_name_anywhere", str(TREE / "drivers/wrap"),
                    "--root", str(TREE), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mmioscan: error:")


def test_an_unexpected_exception_is_exit_3_with_one_line(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """The last resort in main(): a bug is never exit 1 (the gate's FAIL) nor a traceback,
    unless MMIOSCAN_DEBUG=1 asks for it."""
    from mmioscan.cli import commands

    def crash(*args: object, **kw: object) -> object:
        raise KeyError("no such thing")

    monkeypatch.setattr(commands, "run", crash)
    monkeypatch.delenv("MMIOSCAN_DEBUG", raising=False)
    assert run_cli(["scan", str(TREE / "drivers/bar"), "--no-cache", "--no-progress"]) == 3
    captured = capsys.readouterr()
    assert captured.err == ("mmioscan: internal error: KeyError: 'no such thing' (please "
                            "report it with the command line)\n") and captured.out == ""
    monkeypatch.setenv("MMIOSCAN_DEBUG", "1")
    assert run_cli(["scan", str(TREE / "drivers/bar"), "--no-cache", "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert has_traceback(err) and err.splitlines()[-1].startswith("mmioscan: internal error:")


def test_timings_give_each_stages_time_and_the_peak_memory_after_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--timings prints, on stderr, the wall time of every stage and the main process's
    peak resident set after each (where a run's memory grows), never in the output."""
    out = tmp_path / "x.json"
    assert run_cli(["scan", str(TREE), "--no-progress", "--timings", "--no-cache",
                    "--format", "json", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    times = re.search(r"^mmioscan: timings: (.*)$", err, re.MULTILINE)
    peaks = re.search(r"^mmioscan: peak memory of the main process after each stage: (.*)$",
                      err, re.MULTILINE)
    assert times and peaks, err
    stages = [p.rsplit(" ", 1)[0] for p in times.group(1).split(", ")]
    assert "facts" in stages and "sites" in stages
    sizes = dict(p.rsplit(" ", 2)[:2] for p in peaks.group(1).split(", "))
    assert list(sizes) == stages
    assert all(float(v) > 0.01 for v in sizes.values())  # over 10 MiB: a Python process
    assert "timings" not in out.read_text()
