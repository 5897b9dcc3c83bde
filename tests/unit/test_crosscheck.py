"""--engine clang through the pipeline, the facts cache, `crosscheck` and `prepare` on the
precise fixture tree (a prepared build made without make: precise_helpers.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mmioscan.analysis.crosscheck import CAUSES, crosscheck
from mmioscan.analysis.pipeline import ScanOptions, run_scan
from mmioscan.core.model import Site

from .helpers import has_traceback, run_cli
from .precise_helpers import CONFIG, PRECISE, fake_prepared

DEMO = PRECISE / "drivers/demo"


def _by_kind(sites: tuple[Site, ...], path: str) -> dict[str, list[tuple[int, str]]]:
    found: dict[str, list[tuple[int, str]]] = {}
    for s in sites:
        if s.path == path and s.active:
            found.setdefault(s.kind, []).append((s.line, s.callee))
    return found


def test_the_clang_engine_through_the_pipeline(tmp_path: Path) -> None:
    prepared = fake_prepared()
    options = ScanOptions((DEMO,), PRECISE, 1, tmp_path / "cache", engine="clang",
                          prepared=prepared)
    result = run_scan(options).result
    kinds = _by_kind(result.sites, "drivers/demo/demo.c")
    assert [c for _, c in kinds["direct"]] == ["readl", "writel", "readl",
                                               "readl_poll_timeout", "writel", "writel"]
    assert [c for _, c in kinds["wrapper"]] == ["demo_rd"]  # an inline function of demo.h
    assert len(kinds["deref"]) == 4
    assert "drivers/demo/off.c" not in {s.path for s in result.sites}
    assert any(p.path == "drivers/demo/off.c" and "not built" in p.message
               for p in result.problems)
    # demo.h is in scope and read by the fast engine: its own sites are there as in a fast scan
    assert _by_kind(result.sites, "drivers/demo/demo.h")["direct"]
    engines = {f.path: f.engine for f in result.facts}
    assert engines["drivers/demo/demo.c"] == "clang" and engines["drivers/demo/demo.h"] == "fast"
    again = run_scan(options).result
    assert again.stats.cache_hits >= 3 and again.sites == result.sites


def test_a_changed_header_is_a_cache_miss(tmp_path: Path) -> None:
    tree = tmp_path / "precise"
    shutil.copytree(PRECISE, tree)
    prepared = fake_prepared(tree, tree / "demo.config")
    options = ScanOptions((tree / "drivers/demo",), tree, 1, tmp_path / "cache",
                          engine="clang", prepared=prepared)
    first = run_scan(options).result
    header = tree / "drivers/demo/demo.h"
    header.write_text(header.read_text().replace(
        "#define DEMO_WR(hw, reg, v) writel((v), (hw)->base + (reg))",
        "#define DEMO_WR(hw, reg, v) ((void)(v))"))
    second = run_scan(options).result
    def writes(r: object) -> int:
        return sum(1 for s in r.sites  # type: ignore[attr-defined]
                   if s.path.endswith("demo.c") and s.callee == "writel" and s.active)
    assert writes(first) == writes(second) + 1


def test_crosscheck_counts_and_explains_every_disagreement(tmp_path: Path) -> None:
    result = crosscheck((DEMO,), fake_prepared(), PRECISE, 1, tmp_path / "cache")
    assert result.files == ("drivers/demo/demo.c", "drivers/demo/demo_bad.c")
    assert result.not_built == ("drivers/demo/off.c",)
    assert [p.path for p in result.failed] == ["drivers/demo/demo_bad.c"]
    direct = result.kinds["direct"]
    assert (direct.both, direct.fast_only, direct.clang_only) == (3, 3, 3)
    assert dict(direct.causes) == {("clang", "macro-alias"): 3, ("fast", "clang-errors"): 1,
                                   ("fast", "macro-body"): 1,
                                   ("fast", "preprocessor-skipped"): 1}
    assert dict(result.kinds["wrapper"].causes) == {("fast", "macro-alias"): 3}
    assert dict(result.kinds["deref"].causes) == {("clang", "iomem-declared-elsewhere"): 4}
    assert not any(cause == "unexplained" for k in result.kinds.values()
                   for _, cause in k.causes)
    assert all(c.explanation for c in CAUSES)


def test_crosscheck_json_contract(tmp_path: Path) -> None:
    fake_prepared()
    out = tmp_path / "cross.json"
    code = run_cli(["crosscheck", str(DEMO), "--config", str(CONFIG), "--format", "json",
                    "-o", str(out), "--no-progress", "--cache-dir", str(tmp_path / "c"),
                    "-j", "1"])
    assert code == 0
    data = json.loads(out.read_text())
    assert set(data["kinds"]) == {"direct", "wrapper", "reference", "regmap", "deref"}
    for counts in data["kinds"].values():
        assert {"both", "fast_only", "clang_only", "examples"} <= set(counts)
    assert data["files"] == 2 and data["failed"][0]["path"] == "drivers/demo/demo_bad.c"
    example = data["kinds"]["deref"]["examples"][0]
    assert example["side"] == "clang" and example["cause"] in data["causes"]


def test_scan_with_the_clang_engine_on_the_command_line(tmp_path: Path) -> None:
    fake_prepared()
    out = tmp_path / "scan.json"
    code = run_cli(["scan", str(DEMO), "--engine", "clang", "--config", str(CONFIG),
                    "--format", "json", "-o", str(out), "--no-progress", "-j", "1",
                    "--cache-dir", str(tmp_path / "c")])
    assert code == 0
    sites = json.loads(out.read_text())["sites"]
    assert sum(1 for s in sites if s["kind"] == "deref") == 4


@pytest.mark.parametrize("argv, message", [
    (["scan", str(DEMO), "--engine", "clang"], "needs --config"),
    (["scan", str(DEMO), "--engine", "clang", "--config", "/nonexistent/.config"],
     "no such .config"),
    (["crosscheck", str(DEMO), "--config", "/nonexistent/.config"], "no such .config"),
    (["prepare", "/nonexistent/tree", "--config", str(CONFIG)], "no such folder"),
    (["prepare", "/", "--config", str(CONFIG)], "not a kernel tree"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli([*argv, "--no-progress"] if argv[0] != "prepare" else argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not has_traceback(err)


def test_prepare_reports_a_reused_build(capsys: pytest.CaptureFixture[str]) -> None:
    prepared = fake_prepared()
    assert run_cli(["prepare", str(PRECISE), "--config", str(CONFIG), "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["reused"] is True and info["build"] == str(prepared.build)
    assert info["key"] == prepared.key


def test_the_engines_caches_do_not_evict_each_other(tmp_path: Path) -> None:
    prepared = fake_prepared()
    cache = tmp_path / "cache"
    fast = ScanOptions((DEMO,), PRECISE, 1, cache)
    precise = ScanOptions((DEMO,), PRECISE, 1, cache, engine="clang", prepared=prepared)
    run_scan(fast)
    run_scan(precise)
    assert run_scan(fast).result.stats.cache_hits == 5
    assert run_scan(precise).result.stats.cache_hits == 5


def test_the_gate_with_the_clang_engine_sees_a_deref_through_a_header_type(
        tmp_path: Path) -> None:
    """A patch adds `hw->regs->sub.lo = 0`: __iomem comes from demo.h's struct, which only
    the precise engine resolves, so only its gate blocks the change."""
    tree = tmp_path / "linux"
    shutil.copytree(PRECISE, tree)
    fake_prepared(tree, tree / "demo.config")
    old = (tree / "drivers/demo/demo.c").read_text()
    added = "\thw->regs->sub.lo = 0;\n"
    new = old.replace("\tops->irq = demo_irq;\n", "\tops->irq = demo_irq;\n" + added)
    edited = tmp_path / "demo.c"
    edited.write_text(new)
    diff = subprocess.run(["diff", "-u", "--label", "a/drivers/demo/demo.c", "--label",
                           "b/drivers/demo/demo.c", str(tree / "drivers/demo/demo.c"),
                           str(edited)], capture_output=True, text=True, check=False).stdout
    patch = tmp_path / "deref.patch"
    patch.write_text(diff)
    common = ["gate", str(tree), "--patch", str(patch), "--config", str(tree / "demo.config"),
              "--no-progress", "-j", "1", "--cache-dir", str(tmp_path / "cache")]
    assert run_cli([*common, "--engine", "clang"]) == 1
    assert run_cli(common) == 0
    assert (tree / "drivers/demo/demo.c").read_text() == old and new != old


def test_a_call_through_a_field_is_explained(tmp_path: Path) -> None:
    """The fast engine's indirect wrapper sites (cfront/fnptrs.py) have a cause: the precise
    engine records no calls through fields."""
    tree = tmp_path / "precise"
    shutil.copytree(PRECISE, tree)
    source = tree / "drivers/demo/demo.c"
    source.write_text(source.read_text() + """
u32 demo_through(struct demo_ops *ops, struct demo_hw *hw)
{
	return ops->rd(hw->base + 16);
}
""")
    result = crosscheck((tree / "drivers/demo",), fake_prepared(tree, tree / "demo.config"),
                        tree, 1, tmp_path / "cache")
    assert result.kinds["wrapper"].causes[("fast", "indirect-call")] == 1
    assert not any(cause == "unexplained" for k in result.kinds.values()
                   for _, cause in k.causes)
