"""tree: finding the kernel root, its version, and the C files to scan."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmioscan.kernel.tree import TreeError, collect, find_root, is_kernel_root, kernel_version

from .helpers import TREE, copy_tree, run_cli, scan_json

MAKEFILE_HEAD = "# SPDX-License-Identifier: GPL-2.0\n"


def _makefile(tmp_path: Path, body: str) -> Path:
    (tmp_path / "Makefile").write_text(MAKEFILE_HEAD + body, encoding="utf-8")
    return tmp_path


# -- the root ----------------------------------------------------------------------------


def test_fixture_tree_is_a_kernel_root() -> None:
    assert is_kernel_root(TREE)
    assert not is_kernel_root(TREE / "drivers")
    assert not is_kernel_root(TREE.parent)


@pytest.mark.parametrize("start", [".", "drivers", "drivers/foo", "drivers/foo/foo_basic.c",
                                   "drivers/foo/foo_regs.h", "arch/x86", "Makefile"])
def test_root_found_by_walking_up(start: str) -> None:
    assert find_root(TREE / start) == TREE


def test_no_root_outside_a_tree(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    assert find_root(tmp_path / "a") is None


def test_arch_must_be_a_folder(tmp_path: Path) -> None:
    for marker in ("MAINTAINERS", "Kbuild", "arch"):
        (tmp_path / marker).write_text("")
    assert not is_kernel_root(tmp_path)


def test_collect_from_a_subfolder_lists_relative_posix_paths() -> None:
    fs = collect([TREE / "drivers" / "foo"])
    assert fs.root == TREE.resolve()
    assert fs.targets == ("drivers/foo",)
    assert fs.files == tuple(sorted(fs.files))
    assert "drivers/foo/foo_basic.c" in fs.files and "drivers/foo/foo_regs.h" in fs.files
    assert all(f.startswith("drivers/foo/") and "\\" not in f for f in fs.files)
    assert not any(f.startswith("drivers/bar") for f in fs.files)
    assert fs.problems == ()


def test_collect_a_single_file() -> None:
    fs = collect([TREE / "drivers/bar/bar_core.c"])
    assert fs.root == TREE.resolve()
    assert (fs.targets, fs.files) == (("drivers/bar/bar_core.c",), ("drivers/bar/bar_core.c",))


def test_collect_the_whole_tree_and_duplicates() -> None:
    fs = collect([TREE, TREE / "drivers/bar", TREE / "drivers/bar/bar_core.c"])
    assert fs.targets == (".", "drivers/bar", "drivers/bar/bar_core.c")
    assert len(fs.files) == len(set(fs.files))
    assert {"drivers/bar/bar_core.c", "drivers/foo/foo_basic.c"} <= set(fs.files)
    assert not [f for f in fs.files if not f.endswith((".c", ".h"))]


def test_collect_skips_hidden_folders(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    (root / "drivers/.tmp_versions").mkdir()
    (root / "drivers/.tmp_versions/x.c").write_text("int x;\n")
    assert "drivers/.tmp_versions/x.c" not in collect([root]).files


def test_root_override(tmp_path: Path) -> None:
    fs = collect([TREE / "drivers/foo"], root=TREE / "drivers")
    assert fs.root == (TREE / "drivers").resolve()
    assert fs.targets == ("foo",)
    assert "foo/foo_basic.c" in fs.files


def test_root_override_via_cli(tmp_path: Path) -> None:
    data = scan_json(tmp_path, TREE / "drivers/bar", extra=("--root", str(TREE / "drivers")))
    assert data["root"] == str((TREE / "drivers").resolve())
    assert {s["path"] for s in data["sites"]} == {"bar/bar_core.c"}
    assert data["kernel_version"] is None  # no Makefile at that root


def test_path_outside_the_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TreeError):
        collect([TREE / "drivers/foo"], root=TREE / "drivers/bar")


def test_root_override_must_be_a_folder() -> None:
    with pytest.raises(TreeError):
        collect([TREE / "drivers/foo"], root=TREE / "Makefile")


def test_without_a_kernel_tree_the_folder_is_the_root(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/a.c").write_text("int a;\n")
    fs = collect([tmp_path / "src"])
    assert fs.root == (tmp_path / "src").resolve()
    assert fs.files == ("a.c",)
    fs = collect([tmp_path / "src/a.c"])
    assert fs.root == (tmp_path / "src").resolve()
    assert fs.files == ("a.c",)


def test_relative_paths_are_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(TREE / "drivers")
    fs = collect([Path("foo")])
    assert fs.root == TREE.resolve()
    assert fs.targets == ("drivers/foo",)


def test_symlinked_folders_are_not_followed(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    os.symlink(root / "drivers", root / "drivers/foo/loop")
    files = collect([root]).files
    assert not [f for f in files if "/loop/" in f]


# -- the version ---------------------------------------------------------------------------


def test_fixture_version_with_empty_extraversion() -> None:
    assert kernel_version(TREE) == "6.12.7"


def test_version_in_the_scan_output(tmp_path: Path) -> None:
    assert scan_json(tmp_path, TREE / "drivers/bar")["kernel_version"] == "6.12.7"


@pytest.mark.parametrize(("body", "version"), [
    ("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION =\nNAME = x\n", "6.12.0"),
    ("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION = -rc3\n", "6.12.0-rc3"),
    ("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 117\nEXTRAVERSION = \n", "6.1.117"),
    ("VERSION = 5\nPATCHLEVEL = 4\nSUBLEVEL =\nEXTRAVERSION =\n", "5.4"),
    ("VERSION = 6\nPATCHLEVEL = 12\n", "6.12"),
    ("VERSION=6\nPATCHLEVEL=12\nSUBLEVEL=3\nEXTRAVERSION=\n", "6.12.3"),
    ("VERSION\t= 6\nPATCHLEVEL\t= 12\nSUBLEVEL\t= 9\nEXTRAVERSION\t=\n", "6.12.9"),
])
def test_version_from_makefile(tmp_path: Path, body: str, version: str) -> None:
    assert kernel_version(_makefile(tmp_path, body)) == version


@pytest.mark.parametrize("body", ["", "all:\n\techo\n", "PATCHLEVEL = 12\n",
                                  "# VERSION = 6\n# PATCHLEVEL = 12\n"])
def test_no_version(tmp_path: Path, body: str) -> None:
    assert kernel_version(_makefile(tmp_path, body)) is None


def test_no_makefile(tmp_path: Path) -> None:
    assert kernel_version(tmp_path) is None


def test_makefile_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "Makefile").mkdir()
    assert kernel_version(tmp_path) is None


def test_cli_scans_from_a_subfolder_file(tmp_path: Path) -> None:
    data = scan_json(tmp_path, TREE / "drivers/foo/foo_pio.c")
    assert data["root"] == str(TREE.resolve())
    assert {s["path"] for s in data["sites"]} == {"drivers/foo/foo_pio.c"}
    assert data["scanned"] == ["drivers/foo/foo_pio.c"]


def test_cli_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(TREE / "drivers/foo")
    out = tmp_path / "o.json"
    assert run_cli(["scan", "foo_ops.c", "--format", "json", "-o", str(out), "--no-cache",
                    "--no-progress"]) == 0
    assert '"drivers/foo/foo_ops.c"' in out.read_text()
