"""Functions stored into fields by statement macros (cfront/macrostores.py): recorded at each
invocation with the substituted name, through a macro forwarding to another, typed by the
invoking function's declarations; nothing for a stored constant, an argument that pastes
into no name, or a macro never invoked. And end to end: a call through a field that only
macros fill has candidates, so its wrappers' callers are sites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmioscan.cfront import macrostores
from mmioscan.cfront.extract import Extractor
from mmioscan.cfront.macros import Directives, Invocations
from mmioscan.core.model import FileFacts

from .helpers import line_starting, scan_json
from .test_wrappers import mini_tree

MST_H = """\
#ifndef _MST_H
#define _MST_H

struct mst_ops {
	u32 (*rd)(struct mst_dev *d, u32 reg);
	void (*wr)(struct mst_dev *d, u32 reg, u32 val);
	void (*sync)(struct mst_dev *d);
	int count;
};

struct mst_dev {
	void __iomem *base;
	struct mst_ops ops;
	void (*done)(struct mst_dev *d);
};

#endif
"""

MST_C = """\
#include "mst.h"

static u32 mst_raw_rd(struct mst_dev *d, u32 reg)
{
	return readl(d->base + reg);
}

static void mst_raw_wr(struct mst_dev *d, u32 reg, u32 val)
{
	writel(val, d->base + reg);
}

#define MST_DEFINE_IO(x) \\
static u32 x##_rd32(struct mst_dev *d, u32 reg) \\
{ \\
	return mst_raw_rd(d, reg); \\
} \\
static void x##_wr32(struct mst_dev *d, u32 reg, u32 val) \\
{ \\
	mst_raw_wr(d, reg, val); \\
}

MST_DEFINE_IO(fast)
MST_DEFINE_IO(slow)

static void fast_sync(struct mst_dev *d)
{
	d->ops.count++;
}

static void mst_done(struct mst_dev *d)
{
	d->ops.count = 0;
}

#define MST_SET_RAW(d, x) \\
do { \\
	(d)->ops.rd = x##_rd32; \\
	(d)->ops.wr = x##_wr32; \\
} while (0)

#define MST_SET_ALL(d, x) \\
do { \\
	MST_SET_RAW((d), x); \\
	(d)->ops.sync = x##_sync; \\
} while (0)

#define MST_SET_DONE(d, fn) ((d)->done = fn)
#define MST_SET_COUNT(d, n) ((d)->ops.count = n)
#define MST_NEVER(d) ((d)->ops.rd = never_rd32)
#define MST_AGAIN(d) do { (d)->ops.sync = again_sync; MST_AGAIN(d); } while (0)
#define MST_BEGIN(d) { (d)->done = begin_done;
#define MST_OPS(x) { .rd = x##_rd32, .wr = x##_wr32 }

static const struct mst_ops mst_table[] = {
	MST_OPS(fast),
};

void mst_setup(struct mst_dev *dev, int fast)
{
	if (fast)
		MST_SET_ALL(dev, fast);
	else
		MST_SET_RAW(dev, slow);
	MST_SET_DONE(dev, mst_done);
	MST_SET_DONE(dev, NULL);
	MST_SET_COUNT(dev, 4);
	MST_SET_COUNT(dev, fast + 1);
	MST_SET_RAW(dev, tables[1]);
	MST_SET_RAW(dev, 3);
	MST_SET_DONE(dev, handlers[fast]);
	MST_AGAIN(dev);
	dev->ops.sync = fast_sync;
	/* MST_SET_DONE(dev, comment_done); */
	pr_info("MST_SET_DONE(dev, string_done)");
}

void mst_setup_any(void *p)
{
	MST_SET_DONE(mst_of(p), mst_done);
	MST_BEGIN(mst_of(p)) }
	MST_SET_DONE(mst_of(p), mst_done_any);
}

u32 mst_read(struct mst_dev *d, u32 reg)
{
	return d->ops.rd(d, reg);
}

u32 mst_status(struct mst_dev *d)
{
	return mst_read(d, 0x10);
}
"""

MAIN = "drivers/mst/mst.c"
OPS = "struct mst_dev.ops"


def _line(needle: str) -> int:
    return line_starting(MST_C, needle)


@pytest.fixture(scope="module")
def facts() -> FileFacts:
    return Extractor(["readl", "writel"]).extract(MAIN, "digest", MST_C.encode())


def _stored(facts: FileFacts, line: int) -> set[tuple[str, str, str]]:
    return {(st, field, fn) for st, field, fn, at in facts.fnptrs if at == line}


def test_only_macros_that_store_or_forward_to_one_are_expanded() -> None:
    text = MST_C.encode()
    storing = macrostores.storing_macros(Directives(text).definitions(text))
    # MST_DEFINE_IO defines functions (cfront/pasted.py's); MST_OPS stores in an initializer
    assert set(storing) == {"MST_SET_RAW", "MST_SET_ALL", "MST_SET_DONE", "MST_SET_COUNT",
                            "MST_NEVER", "MST_AGAIN", "MST_BEGIN", "MST_OPS"}


def test_stores_are_recorded_at_the_invocation_with_the_pasted_name(facts: FileFacts) -> None:
    assert _stored(facts, _line("MST_SET_RAW(dev, slow);")) == {
        (OPS, "rd", "slow_rd32"), (OPS, "wr", "slow_wr32")}


def test_through_a_forwarding_macro(facts: FileFacts) -> None:
    # MST_SET_ALL expands MST_SET_RAW((d), x): its stores are the outer invocation's too
    assert _stored(facts, _line("MST_SET_ALL(dev, fast);")) == {
        (OPS, "rd", "fast_rd32"), (OPS, "wr", "fast_wr32"), (OPS, "sync", "fast_sync")}


def test_plain_substitution_and_an_object_of_unknown_type(facts: FileFacts) -> None:
    assert _stored(facts, _line("MST_SET_DONE(dev, mst_done);")) == {
        ("struct mst_dev", "done", "mst_done")}
    assert _stored(facts, _line("MST_SET_DONE(mst_of(p), mst_done);")) == {
        ("", "done", "mst_done")}


def test_initializer_macros_store_without_a_type(facts: FileFacts) -> None:
    assert _stored(facts, _line("MST_OPS(fast),")) == {
        ("", "rd", "fast_rd32"), ("", "wr", "fast_wr32")}


def test_no_store_of_a_constant_an_expression_or_a_broken_paste(facts: FileFacts) -> None:
    for needle in ("MST_SET_DONE(dev, NULL);", "MST_SET_COUNT(dev, 4);",
                   "MST_SET_COUNT(dev, fast + 1);", "MST_SET_RAW(dev, tables[1]);",
                   "MST_SET_RAW(dev, 3);", "MST_SET_DONE(dev, handlers[fast]);"):
        assert _stored(facts, _line(needle)) == set(), needle
    names = {fn for _, _, fn, _ in facts.fnptrs}
    assert "never_rd32" not in names  # MST_NEVER is never invoked
    assert not names & {"comment_done", "string_done"}  # no invocation in a comment or string
    assert not any(fn.startswith("_rd") or fn.startswith("tables") for fn in names)


def test_a_macro_invoking_itself_is_expanded_once(facts: FileFacts) -> None:
    assert _stored(facts, _line("MST_AGAIN(dev);")) == {(OPS, "sync", "again_sync")}


def test_unbalanced_expansion_is_skipped_and_does_not_spill(facts: FileFacts) -> None:
    assert _stored(facts, _line("MST_BEGIN(mst_of(p)) }")) == set()
    assert _stored(facts, _line("MST_SET_DONE(mst_of(p), mst_done_any);")) == {
        ("", "done", "mst_done_any")}


def test_written_stores_are_kept(facts: FileFacts) -> None:
    assert _stored(facts, _line("dev->ops.sync = fast_sync;")) == {(OPS, "sync", "fast_sync")}


_CHAIN = b"""\
#define L4(d, x) ((d)->done = x##_cb)
#define L3(d, x) L4(d, x)
#define L2(d, x) L3(d, x)
#define L1(d, x) L2(d, x)
#define TWICE(d, x) do { L4(d, x##_a); L4(d, x##_b); } while (0)
void f(struct mst_dev *dev)
{
	L2(dev, two);
	L1(dev, one);
	TWICE(dev, tw);
}
"""


def _expansions(text: bytes, limit: int | None = None
                ) -> tuple[list[macrostores.Expansion], int]:
    directives = Directives(text)
    storing = macrostores.storing_macros(directives.definitions(text))
    return macrostores.expansions(text, storing, directives, Invocations(text),
                                  lambda _: 0, limit)


def test_nesting_is_bounded() -> None:
    text = _CHAIN
    storing = macrostores.storing_macros(Directives(text).definitions(text))
    assert set(storing) == {"L4", "L3", "L2", "TWICE"}  # L1 is four levels from a store
    stored = Extractor(["readl"]).extract("drivers/x/chain.c", "d", text).fnptrs
    assert {fn for _, _, fn, _ in stored} == {"two_cb", "tw_a_cb", "tw_b_cb"}
    produced, left_out = _expansions(text)
    assert left_out == 0 and all(e.line in (8, 10) for e in produced)


def test_produced_text_is_capped() -> None:
    produced, left_out = _expansions(_CHAIN, limit=40)
    assert left_out == 2 and len(produced) == 0  # the two invocations with a store
    # L2's three pieces make 52 bytes, TWICE's 98: the first fits in 60, not the second
    produced, left_out = _expansions(_CHAIN, limit=60)
    assert left_out == 1 and {e.line for e in produced} == {8} and len(produced) == 3


def test_a_file_past_the_cap_records_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(macrostores, "MAX_STORE_BYTES", 40)
    facts = Extractor(["readl"]).extract("drivers/x/chain.c", "d", _CHAIN)
    assert any("macro stores: 2 invocation(s)" in p.message for p in facts.problems)


# -- end to end ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = mini_tree(tmp_path_factory.mktemp("mst") / "linux",
                     {"drivers/mst/mst.h": MST_H, MAIN: MST_C})
    return scan_json(tmp_path_factory.mktemp("out"), Path(root) / "drivers/mst",
                     extra=("-j", "1"))


def _sites_at(scan: dict[str, Any], needle: str) -> list[dict[str, Any]]:
    line = _line(needle)
    return [s for s in scan["sites"] if s["path"] == MAIN and s["line"] == line]


def test_a_call_through_a_macro_filled_field_has_candidates(scan: dict[str, Any]) -> None:
    [site] = _sites_at(scan, "return d->ops.rd(d, reg);")
    assert site["indirect"] is True and site["targets"] == ["fast_rd32", "slow_rd32"]


def test_callers_of_its_wrapper_are_sites(scan: dict[str, Any]) -> None:
    [site] = _sites_at(scan, "return mst_read(d, 0x10);")
    assert site["kind"] == "wrapper" and site["callee"] == "mst_read"
    assert site["via"][0] == "mst_read" and site["via"][1] in ("fast_rd32", "slow_rd32")
    assert site["via"][-1] == "readl" and site["tdx"]["ve_exits"] == 1
