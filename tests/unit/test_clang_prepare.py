"""clang/prepare.py: the out-of-tree prepared build, its key, refusals, and reuse."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from mmioscan.clang import prepare as prep
from mmioscan.clang.prepare import PrepareError, build_key, prepare, tree_stamp

PRECISE = Path(__file__).resolve().parent.parent / "fixtures" / "precise"
CONFIG = PRECISE / "demo.config"


def _copy_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "linux"
    shutil.copytree(PRECISE, tree)
    return tree


def test_the_key_follows_version_stamp_and_config() -> None:
    base = build_key("6.12", "stamp", "cfg")
    assert base != build_key("6.13", "stamp", "cfg")
    assert base != build_key("6.12", "other", "cfg")
    assert base != build_key("6.12", "stamp", "other")
    assert base == build_key("6.12", "stamp", "cfg")


def test_the_stamp_covers_build_inputs_not_driver_sources(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    first = tree_stamp(tree)
    source = tree / "drivers/demo/demo.c"
    source.write_text(source.read_text() + "\n/* edited */\n")
    assert tree_stamp(tree) == first  # the facts cache checks sources and headers itself
    makefile = tree / "drivers/demo/Makefile"
    makefile.write_text(makefile.read_text() + "obj-y += extra.o\n")
    assert tree_stamp(tree) != first
    second = tree_stamp(tree)
    (tree / "include/linux/io.h").write_text("/* changed */\n")
    assert tree_stamp(tree) != second


def test_a_tree_configured_in_place_is_refused(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    (tree / ".config").write_text("CONFIG_DEMO=y\n")
    with pytest.raises(PrepareError, match="mrproper"):
        prepare(tree, CONFIG, base=tmp_path / "builds")


def test_not_a_kernel_tree_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PrepareError, match="not a kernel tree"):
        prepare(tmp_path, CONFIG, base=tmp_path / "builds")


def test_a_missing_tool_is_named_with_its_package(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(prep.shutil, "which",
                        lambda tool: None if tool in ("flex", "bison") else real(tool))
    with pytest.raises(PrepareError) as err:
        prepare(PRECISE, CONFIG, base=tmp_path / "builds")
    assert "flex, bison" in str(err.value) and "apt-get install flex bison" in str(err.value)
    assert "\n" not in str(err.value)


def _fake_tools(folder: Path, make_exit: int) -> Path:
    """make, gcc, flex, bison, bc and perl that only record how make was called."""
    folder.mkdir()
    for tool in ("gcc", "flex", "bison", "bc", "perl"):
        (folder / tool).write_text("#!/bin/sh\nexit 0\n")
    (folder / "make").write_text("#!/bin/sh\necho \"$@\" >> \"$MMIOSCAN_TEST_MAKE_LOG\"\n"
                                 f"echo 'make: *** [Makefile] Error 2'\nexit {make_exit}\n")
    for tool in folder.iterdir():
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return folder


def test_prepare_runs_make_out_of_tree_once_then_reuses(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    tools = _fake_tools(tmp_path / "bin", 0)
    log = tmp_path / "make.log"
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("MMIOSCAN_TEST_MAKE_LOG", str(log))
    tree = _copy_tree(tmp_path)
    before = tree_stamp(tree), sorted(p.name for p in tree.rglob("*"))
    made = prepare(tree, CONFIG, base=tmp_path / "builds", jobs=2)
    assert made.seconds is not None and made.build.is_dir()
    call = log.read_text().split()
    assert call[:2] == ["-C", str(tree.resolve())]
    assert f"O={made.build}" in call and call[-2:] == ["olddefconfig", "prepare"]
    assert (made.build / ".config").read_bytes() == CONFIG.read_bytes()
    assert (tree_stamp(tree), sorted(p.name for p in tree.rglob("*"))) == before
    again = prepare(tree, CONFIG, base=tmp_path / "builds")
    assert again.seconds is None and again.build == made.build and again.key == made.key
    assert len(log.read_text().splitlines()) == 1  # make ran once


def test_a_failed_make_is_one_line_naming_the_log(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    tools = _fake_tools(tmp_path / "bin", 2)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("MMIOSCAN_TEST_MAKE_LOG", str(tmp_path / "make.log"))
    with pytest.raises(PrepareError) as err:
        prepare(_copy_tree(tmp_path), CONFIG, base=tmp_path / "builds")
    message = str(err.value)
    assert "exit 2" in message and "Error 2" in message and ".mmioscan-prepare.log" in message
    assert "\n" not in message
