"""The products cache (facts/products.py): a warm run with nothing changed serves the stored
result and renderings, byte for byte; any change of content (never of time alone) is seen."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from mmioscan.cli import commands
from mmioscan.facts import cache as facts_cache
from mmioscan.facts import products
from mmioscan.report.formats import FORMATS, renderer

from .helpers import FIXTURES, copy_tree, run_cli, served_spy

FORMATS_OUT = ("json", "sarif", "csv", "markdown", "summary", "text")


def _scan(root: Path, cache: Path | None, out: Path, fmt: str = "json",
          *extra: str) -> str:
    args = ["scan", str(root), "--format", fmt, "-o", str(out), "--no-progress", *extra]
    args += ["--cache-dir", str(cache)] if cache is not None else ["--no-cache"]
    assert run_cli(args) == 0
    return out.read_text(encoding="utf-8")


def _hits(monkeypatch: pytest.MonkeyPatch) -> list[commands.Served]:
    return served_spy(monkeypatch)


def _was_hit(seen: list[commands.Served]) -> list[bool]:
    return [s.hit for s in seen]


def test_warm_run_serves_the_same_bytes_as_a_cold_one(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    hits = _hits(monkeypatch)
    for fmt in FORMATS_OUT[:-1]:
        cold = _scan(root, None, tmp_path / f"cold.{fmt}", fmt)
        first = _scan(root, cache, tmp_path / f"first.{fmt}", fmt)
        warm = _scan(root, cache, tmp_path / f"warm.{fmt}", fmt)
        again = _scan(root, cache, tmp_path / f"again.{fmt}", fmt)
        assert cold == first == warm == again, fmt
    # the first format of the loop computes; every later run is served
    assert _was_hit(hits)[:2] == [False, False] and all(_was_hit(hits)[2:4])
    assert list((cache / "products").glob("*.result"))


def test_text_summary_says_every_file_came_from_the_cache(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    cold = _scan(root, cache, tmp_path / "a.txt", "text")
    warm = _scan(root, cache, tmp_path / "b.txt", "text")
    listed = next(line for line in cold.splitlines() if line.startswith("files:"))
    count = listed.split()[1]
    assert f"{count} from cache" in warm and " 0 from cache" in cold
    assert [ln for ln in cold.splitlines() if not ln.startswith("files:")] == \
        [ln for ln in warm.splitlines() if not ln.startswith("files:")]


def test_only_the_text_renderers_show_cache_hits(tmp_path: Path) -> None:
    """Why a miss may store its renderings for every format but text (commands.render)."""
    root = copy_tree(tmp_path / "linux")
    served = commands.Served(_result(root, tmp_path / "cache"))
    other = dataclasses.replace(served.result, stats=dataclasses.replace(
        served.result.stats, cache_hits=served.result.stats.cache_hits + 7))
    for fmt in FORMATS:
        same = renderer(fmt.name)(served.result) == renderer(fmt.name)(other)
        assert same == (fmt.name not in commands._SHOWS_CACHE_HITS), fmt.name


def _result(root: Path, cache: Path) -> commands.ScanResult:
    from mmioscan.cli.main import build_parser
    args = build_parser().parse_args(["strategies", str(root), "--cache-dir", str(cache),
                                      "--no-progress"])
    return commands._result(args, compare=True).result


@pytest.mark.parametrize("change", ["edit", "edit-same-mtime", "new-file", "kconfig",
                                    "makefile", "remove"])
def test_a_change_of_content_is_never_served_stale(tmp_path: Path, change: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    if change == "edit-same-mtime":
        # Trust every stamp at once (no racy window): only the ctime can tell the edit now.
        monkeypatch.setattr(facts_cache, "RACY_NS", 0)
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    _scan(root, cache, tmp_path / "cold.json")
    source = next(p for p in sorted(root.rglob("*.c")) if b"writel" in p.read_bytes())
    st = source.stat()
    if change == "edit":
        source.write_text(source.read_text() + "\nvoid extra(void __iomem *b)"
                          "{ writel(1, b); }\n")
    elif change == "edit-same-mtime":  # same size, mtime put back: only the ctime tells
        data = source.read_bytes()
        source.write_bytes(data.replace(b"writel", b"writeq", 1))
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif change == "new-file":
        (source.parent / "added.c").write_text("void added(void __iomem *b)"
                                               "{ writeb(1, b); }\n")
    elif change == "kconfig":
        kconfig = root / "Kconfig"
        old = kconfig.read_text() if kconfig.exists() else ""
        kconfig.write_text(old + "\n# changed\n")
    elif change == "makefile":
        (source.parent / "Makefile").write_text("obj-y += nothing.o\n")
    else:
        source.unlink()
    hits = _hits(monkeypatch)
    warm = _scan(root, cache, tmp_path / "warm.json")
    fresh = _scan(root, None, tmp_path / "fresh.json")
    assert _was_hit(hits) == [False, False]
    assert warm == fresh


def test_touch_alone_keeps_the_products(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    cold = _scan(root, cache, tmp_path / "cold.json")
    for path in root.rglob("*.c"):
        os.utime(path, ns=(1, 1_000_000_000))
    hits = _hits(monkeypatch)
    assert _scan(root, cache, tmp_path / "warm.json") == cold
    assert _was_hit(hits) == [True]


def test_options_and_user_files_are_part_of_the_key(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    config = tmp_path / "dot.config"
    config.write_text("CONFIG_PCI=y\n")
    _scan(root, cache, tmp_path / "a.json", "json", "--config", str(config))
    hits = _hits(monkeypatch)
    _scan(root, cache, tmp_path / "b.json", "json", "--config", str(config))
    _scan(root, cache, tmp_path / "c.json", "json", "--config", str(config), "--all")
    config.write_text("CONFIG_PCI=n\n")
    _scan(root, cache, tmp_path / "d.json", "json", "--config", str(config))
    assert _was_hit(hits) == [True, False, False]


def test_a_damaged_entry_is_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    cold = _scan(root, cache, tmp_path / "cold.json")
    for entry in (cache / "products").iterdir():
        entry.write_bytes(entry.read_bytes()[:-40] + b"garbage")
    hits = _hits(monkeypatch)
    assert _scan(root, cache, tmp_path / "warm.json") == cold
    assert _was_hit(hits) == [False]


def test_entries_are_pruned_to_the_most_recent(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(products, "MAX_ENTRIES", 2)
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    for strategy in ("upstream", "virtio-paravirt", "iomap-paravirt"):
        _scan(root, cache, tmp_path / "x.json", "json", "--strategy", strategy)
    assert len(list((cache / "products").glob("*.result"))) == 2


def test_no_cache_writes_no_products(tmp_path: Path) -> None:
    root = copy_tree(tmp_path / "linux")
    home = Path(os.environ.get("XDG_CACHE_HOME", tmp_path))
    before = set(home.rglob("*.result"))
    _scan(root, None, tmp_path / "x.json")
    assert set(home.rglob("*.result")) == before


def test_a_hit_with_every_rendering_stored_reads_no_result(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    first = _scan(root, cache, tmp_path / "a.json")

    def unpickled(self: products.Products) -> None:
        raise AssertionError("the result was unpickled although its rendering was stored")

    monkeypatch.setattr(products.Products, "result", unpickled)
    assert _scan(root, cache, tmp_path / "b.json") == first


def test_undoing_an_edit_finds_the_earlier_products(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    cold = _scan(root, cache, tmp_path / "cold.json")
    source = next(p for p in sorted(root.rglob("*.c")) if b"writel" in p.read_bytes())
    data = source.read_bytes()
    source.write_bytes(data + b"\nvoid an_edit(void __iomem *b) { writel(2, b); }\n")
    hits = _hits(monkeypatch)
    _scan(root, cache, tmp_path / "edited.json")
    source.write_bytes(data)
    assert _scan(root, cache, tmp_path / "undone.json") == cold
    assert _was_hit(hits) == [False, True]


# A driver of the tests' own for the edits below (analysis/unchanged.py)
_QUX = """// SPDX-License-Identifier: GPL-2.0
/* Fixture for mmioscan: edits that change no answer. Written for the tests. */
#include <linux/io.h>

static void qux_start(void __iomem *base, const void *buf)
{
	/* the doorbell comes last */
	writel(1, base + 0x10);
	memcpy_toio(base + 0x100, buf, 4);
}
"""

# edit -> (path under the root, new text from old text, served from the earlier entry)
_EDITS = {
    "comment-appended": ("drivers/qux/qux.c", lambda t: t + "/* a note */\n", True),
    "comment-reworded": ("drivers/qux/qux.c",
                         lambda t: t.replace("comes last", "rings at the end"), True),
    "site-line": ("drivers/qux/qux.c", lambda t: t.replace("writel(1,", "writel(2,"), False),
    "bulk-length": ("drivers/qux/qux.c", lambda t: t.replace("buf, 4)", "buf, 8)"), False),
    "lines-moved": ("drivers/qux/qux.c", lambda t: "\n" + t, False),
    "header": ("drivers/foo/foo_regs.h", lambda t: t + "/* a note */\n", False),
    "unparsed": ("drivers/bar/bar_nothing.c", lambda t: t + "/* a note */\n", False),
}


@pytest.mark.parametrize("edit", sorted(_EDITS))
def test_an_edit_that_changes_no_answer_is_served(tmp_path: Path, edit: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Served or not, the output is the bytes of a scan without any cache; served only when
    the edited files' facts and what the verdicts read of their text are unchanged."""
    root = copy_tree(tmp_path / "linux")
    (root / "drivers/qux").mkdir()
    (root / "drivers/qux/qux.c").write_text(_QUX)
    cache = tmp_path / "cache"
    before = _scan(root, cache, tmp_path / "before.json")
    path, change, served = _EDITS[edit]
    target = root / path
    target.write_text(change(target.read_text()))
    hits = _hits(monkeypatch)
    after = _scan(root, cache, tmp_path / "after.json")
    assert _was_hit(hits) == [served]
    assert after == _scan(root, None, tmp_path / "fresh.json")  # no cache: never a hit
    if edit in ("site-line", "bulk-length"):
        assert after != before  # the code line, the #VE count: why these are not served
    assert _scan(root, cache, tmp_path / "again.json") == after
    assert _was_hit(hits) == [served, False, True]


def test_loose_files_outside_a_kernel_tree_get_no_products(tmp_path: Path) -> None:
    """Their root is their folder (a home folder, say): it is never walked for inputs."""
    loose = tmp_path / "home" / "work"
    loose.mkdir(parents=True)
    (loose / "poke.c").write_text("void poke(void __iomem *b) { writel(1, b); }\n")
    cache = tmp_path / "cache"
    first = _scan(loose / "poke.c", cache, tmp_path / "a.json")
    assert _scan(loose / "poke.c", cache, tmp_path / "b.json") == first
    assert not list(cache.glob("products/*"))


def _settled(root: Path, cache: Path, key: str = "k") -> products.Products:
    found = products.open_products(cache, root, key)
    assert found is not None
    return found


def test_a_cold_cache_takes_the_inputs_digest_after_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no entry of the key, nothing can be served: the digest is taken when the result
    is stored (the facts stage has stamped the sources by then), and it is the digest a
    look-up before a run takes. The result is then served."""
    monkeypatch.setattr(products, "RACY_NS", 0)  # the copy is seconds old (see the next test)
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    result = _result(root, tmp_path / "other")
    deferred = _settled(root, cache)
    assert deferred.inputs is None and not deferred.has_result() and deferred.result() is None
    deferred.store_result(result)
    assert deferred.inputs is not None
    eager = _settled(root, cache)  # an entry of the key exists now: taken before the run
    assert eager.inputs == deferred.inputs and eager.has_result()
    assert eager.result() is not None


def test_a_file_changed_during_the_run_stores_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(products, "RACY_NS", 0)
    root = copy_tree(tmp_path / "linux")
    cache = tmp_path / "cache"
    result = _result(root, tmp_path / "other")
    deferred = _settled(root, cache)
    source = next(p for p in sorted(root.rglob("*.c")))
    source.write_bytes(source.read_bytes() + b"\n/* edited while the scan ran */\n")
    deferred.store_result(result)
    assert deferred.inputs is None and not list((cache / "products").glob("*.result"))
    assert not _settled(root, cache).has_result()


def test_a_file_changed_just_before_the_run_is_digested_first(tmp_path: Path) -> None:
    """A file changed within the racy window (a fresh copy) cannot be vouched for by its
    stat before and after: the digest is taken before the run, as for a possible hit."""
    root = copy_tree(tmp_path / "linux")
    found = _settled(root, tmp_path / "cache")
    assert found.inputs is not None and found.later is None


def test_an_ifdef_edit_under_a_config_is_not_served(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Which blocks a .config leaves out is read from the text (ConfigConditions): a changed
    # symbol on an #ifdef line is a changed answer, though no fact changed
    root = tmp_path / "linux"
    shutil.copytree(FIXTURES / "tdtree", root)
    source = root / "drivers/misc/gdev.c"  # built: CONFIG_GDEV=y
    source.write_text(source.read_text() + "\nstatic void gdev_extra(void __iomem *base)\n"
                      "{\n#ifdef CONFIG_PCI\n\twritel(5, base + 0x20);\n#endif\n}\n")
    cache = tmp_path / "cache"
    extra = ("--config", str(root / "td.config"))
    before = _scan(root, cache, tmp_path / "before.json", "json", *extra)
    source.write_text(source.read_text().replace("#ifdef CONFIG_PCI", "#ifdef CONFIG_GOLD"))
    hits = _hits(monkeypatch)
    after = _scan(root, cache, tmp_path / "after.json", "json", *extra)
    assert _was_hit(hits) == [False]
    assert after == _scan(root, None, tmp_path / "fresh.json", "json", *extra)
    assert after != before  # CONFIG_GOLD is not set: the write is no longer built


def test_a_c_file_another_includes_is_not_served(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # qux_all.c includes qux.c: its facts read qux.c's bytes (pasting macros), so even a
    # comment there is left to the analysis
    root = copy_tree(tmp_path / "linux")
    (root / "drivers/qux").mkdir()
    (root / "drivers/qux/qux.c").write_text(_QUX)
    (root / "drivers/qux/qux_all.c").write_text('#include "qux.c"\n')
    cache = tmp_path / "cache"
    _scan(root, cache, tmp_path / "before.json")
    source = root / "drivers/qux/qux.c"
    source.write_text(source.read_text() + "/* a note */\n")
    hits = _hits(monkeypatch)
    after = _scan(root, cache, tmp_path / "after.json")
    assert _was_hit(hits) == [False]
    assert after == _scan(root, None, tmp_path / "fresh.json")
