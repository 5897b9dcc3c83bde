"""The caller rounds replayed (analysis/replay.py): after an edit that changes no file's facts
the rounds' search is skipped and the recorded files are parsed again; the facts gathered are
those of a scan with an empty cache. Any other edit runs the rounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmioscan.analysis import gather as gather_module
from mmioscan.analysis.gather import ScanOptions, gather
from mmioscan.core.model import FileFacts
from mmioscan.core.ruleset import load_rules

from .test_wrappers import mini_tree

_FUNNEL = """\
struct rp_dev {
	void __iomem *base;
};

void rp_wr(struct rp_dev *d, u32 reg, u32 val)
{
	writel(val, d->base + reg);
}

void rp_reset(struct rp_dev *d)
{
	writel(0x10, d->base);
}
"""

_USER = """\
void rp_start(struct rp_dev *d)
{
	rp_wr(d, 0x10, 1);
}
"""

_OTHER = """\
u32 rp_status(struct rp_dev *d)
{
	return rp_rd(d, 8);  /* no funnel of that name yet */
}
"""

_RQ_REGS = """\
static inline u32 rq_rd(struct rp_dev *d, u32 reg)
{
	return readl(d->base + reg);
}
"""

_USER2 = """\
#include "rq_regs.h"

u32 rq_status(struct rp_dev *d)
{
	return rq_rd(d, 4);
}
"""

_RD = """
u32 rp_rd(struct rp_dev *d, u32 reg)
{
	return readl(d->base + reg);
}
"""


def _facts(root: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
           ) -> tuple[dict[str, FileFacts], int]:
    """The facts a scan of root gathers, and how many caller rounds searched."""
    searched = []
    real = gather_module._callers_round

    def counting(*args: object, **kwargs: object) -> set[str]:
        searched.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gather_module, "_callers_round", counting)
    gathered = gather(ScanOptions(paths=(root / "drivers",), root=root, cache_dir=cache),
                      load_rules())
    monkeypatch.setattr(gather_module, "_callers_round", real)
    return gathered.facts, len(searched)


def _no_digests(facts: dict[str, FileFacts]) -> dict[str, tuple[object, ...]]:
    return {p: (f.parsed, f.forced, f.scopes, f.calls, f.flows) for p, f in facts.items()}


@pytest.mark.parametrize(("path", "edit", "replayed"), [
    ("drivers/rp/funnel.c", lambda t: t + "/* a comment */\n", True),
    ("drivers/rp/funnel.c", lambda t: t.replace("0x10", "0x14") + "\n", True),
    ("drivers/rp/funnel.c", lambda t: t + _RD, False),  # a funnel other.c calls: parsed now
    ("drivers/rp/user.c", lambda t: t + "/* a comment */\n", False),  # unparsed: its bytes
    # a Makefile's -I folders: user2.c's "rq_regs.h" now resolves, to a header with a funnel
    ("drivers/rq/Makefile", lambda t: t + "ccflags-y += -I $(srctree)/drivers/rp/inc\n", False),
    # never parsed, same words: its facts are equal, but the rounds search its bytes
    ("drivers/rp/other.c", lambda t: t.replace("\t", "        "), False),
    ("drivers/rp/new.c", lambda t: _USER.replace("rp_start", "rp_stop"), False),  # a new file
])
def test_replay_gives_the_facts_of_a_fresh_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                path: str, edit: object,
                                                replayed: bool) -> None:
    root = mini_tree(tmp_path / "linux", {"drivers/rp/funnel.c": _FUNNEL,
                                          "drivers/rp/user.c": _USER,
                                          "drivers/rp/other.c": _OTHER,
                                          "drivers/rp/inc/rq_regs.h": _RQ_REGS,
                                          "drivers/rq/Makefile": "obj-y += user2.o\n",
                                          "drivers/rq/user2.c": _USER2})
    first, searched = _facts(root, tmp_path / "cache", monkeypatch)
    assert searched >= 1 and first["drivers/rp/user.c"].parsed  # found by a round
    target = root / path
    before = target.read_text(encoding="utf-8") if target.exists() else ""
    target.write_text(edit(before), encoding="utf-8")  # type: ignore[operator]
    again, searched = _facts(root, tmp_path / "cache", monkeypatch)
    fresh, _ = _facts(root, tmp_path / "empty-cache", monkeypatch)
    assert (searched == 0) is replayed
    assert again == fresh
    assert again["drivers/rp/other.c"].parsed is (path == "drivers/rp/funnel.c" and not replayed)
    assert again["drivers/rq/user2.c"].parsed is (path == "drivers/rq/Makefile")
    assert _no_digests(again) == _no_digests(fresh)


def test_a_damaged_record_runs_the_rounds(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    root = mini_tree(tmp_path / "linux", {"drivers/rp/funnel.c": _FUNNEL,
                                          "drivers/rp/user.c": _USER})
    first, _ = _facts(root, tmp_path / "cache", monkeypatch)
    db = sqlite3.connect(tmp_path / "cache" / "facts.sqlite3")
    with db:
        db.execute("UPDATE records SET blob = ?", (b"not a record",))
    db.close()
    again, searched = _facts(root, tmp_path / "cache", monkeypatch)
    assert searched >= 1 and again == first
