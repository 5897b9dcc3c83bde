"""Cold, warm and incremental runs of a real driver agree byte for byte (issue: fast where
people wait). A copy of e1000e with the kernel headers, in a tree of its own, is scanned
without a cache, cold into a cache, warm, after one .c file changed, and after it is put
back; every output is compared with the run that had no cache at all."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mmioscan.cli.main import main
from tests.unit.helpers import served_spy

pytestmark = pytest.mark.integration

DRIVER = "drivers/net/ethernet/intel/e1000e"
_BUILD = ("Kbuild", "Kconfig", "Makefile", "MAINTAINERS")


def _small_tree(kernel: Path, dest: Path) -> Path:
    """The top-level build files, include/, arch/x86's headers and Kconfig, the driver and
    the Kconfig/Makefile of each folder above it."""
    dest.mkdir()
    for name in _BUILD:
        shutil.copy2(kernel / name, dest / name)
    shutil.copytree(kernel / "include", dest / "include")
    shutil.copytree(kernel / "arch/x86/include", dest / "arch/x86/include")
    shutil.copytree(kernel / DRIVER, dest / DRIVER)
    folder = Path(DRIVER).parent
    while folder != Path("."):
        for name in ("Kconfig", "Makefile"):
            if (kernel / folder / name).is_file():
                shutil.copy2(kernel / folder / name, dest / folder / name)
        folder = folder.parent
    return dest


def _scan(tree: Path, out: Path, cache: Path | None) -> bytes:
    args = ["scan", str(tree / DRIVER), "--format", "json", "-o", str(out), "--no-progress"]
    args += ["--cache-dir", str(cache)] if cache is not None else ["--no-cache"]
    assert main(args) == 0
    return out.read_bytes()


def test_cold_warm_and_incremental_runs_agree(kernel_tree: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    tree = _small_tree(kernel_tree, tmp_path / "linux")
    cache = tmp_path / "cache"
    served = served_spy(monkeypatch)
    fresh = _scan(tree, tmp_path / "fresh.json", None)
    assert b'"kind": "wrapper"' in fresh  # the real driver: ew32/er32 wrapper sites
    cold = _scan(tree, tmp_path / "cold.json", cache)
    warm = _scan(tree, tmp_path / "warm.json", cache)
    assert fresh == cold == warm

    changed = tree / DRIVER / "netdev.c"
    data, st = changed.read_bytes(), changed.stat()
    changed.write_bytes(data + b"\nstatic void bench_poke(struct e1000_hw *hw)\n"
                        b"{\n\tew32(CTRL, 0);\n\twritel(1, hw->hw_addr + 8);\n}\n")
    incremental = _scan(tree, tmp_path / "inc.json", cache)
    assert incremental == _scan(tree, tmp_path / "inc-fresh.json", None)
    assert incremental != cold and b"bench_poke" in incremental

    changed.write_bytes(data)
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns))
    restored = _scan(tree, tmp_path / "restored.json", cache)
    again = _scan(tree, tmp_path / "again.json", cache)
    assert restored == again == cold
    # no cache, cold, warm (hit), incremental (miss), its fresh twin, restored (the cold
    # run's entry: a hit), again (hit)
    assert [s.hit for s in served] == [False, False, True, False, False, True, True]


def test_a_comment_edit_replays_the_caller_rounds(kernel_tree: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # analysis/replay.py: netdev.c's facts do not change, so the rounds are not searched
    # again, and the output is still that of a scan without any cache. The comment goes on
    # a line with a site: its text is read for the verdicts, so the products cache does not
    # answer (analysis/unchanged.py) and the analysis runs
    from mmioscan.analysis import gather

    tree = _small_tree(kernel_tree, tmp_path / "linux")
    cache = tmp_path / "cache"
    cold = _scan(tree, tmp_path / "cold.json", cache)
    searched: list[int] = []
    real = gather._callers_round

    def counting(*args: object, **kwargs: object) -> set[str]:
        searched.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gather, "_callers_round", counting)
    served = served_spy(monkeypatch)
    changed = tree / DRIVER / "netdev.c"
    lines = changed.read_bytes().split(b"\n")
    at = next(i for i, line in enumerate(lines) if b"ew32(" in line and line.endswith(b");"))
    lines[at] += b" /* a comment on a site's line */"
    changed.write_bytes(b"\n".join(lines))
    edited = _scan(tree, tmp_path / "edited.json", cache)
    assert not searched
    assert edited == _scan(tree, tmp_path / "edited-fresh.json", None) == cold
    assert searched  # the scan without a cache searched
    assert [s.hit for s in served] == [False, False]


def test_a_comment_at_the_end_is_served_from_the_products(kernel_tree: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    # analysis/unchanged.py: netdev.c parses to the same facts and its sites' lines read the
    # same, so the stored result answers; its bytes are those of a scan without a cache
    tree = _small_tree(kernel_tree, tmp_path / "linux")
    cache = tmp_path / "cache"
    _scan(tree, tmp_path / "cold.json", cache)
    served = served_spy(monkeypatch)
    changed = tree / DRIVER / "netdev.c"
    changed.write_bytes(changed.read_bytes() + b"/* a comment at the end */\n")
    edited = _scan(tree, tmp_path / "edited.json", cache)
    assert edited == _scan(tree, tmp_path / "edited-fresh.json", None)
    assert [s.hit for s in served] == [True, False]

