"""Fingerprints: stable across line shifts, distinct for copies, never a line number."""

from __future__ import annotations

from mmioscan.analysis.fingerprint import assign, fingerprint, normalize_code
from mmioscan.core.model import Site


def _site(line: int, function: str = "probe", callee: str = "writel",
          path: str = "drivers/foo/foo.c") -> Site:
    return Site(path=path, line=line, column=8, function=function, callee=callee,
                accessor=callee, kind="direct", access="write", width=32, family="mmio")


def test_normalize_strips_comments_and_whitespace() -> None:
    assert normalize_code("\twritel(v,   base + 4); /* ack */") == "writel(v, base + 4);"
    assert normalize_code("  writel(v, base);  // trailing") == "writel(v, base);"
    assert normalize_code("writel(v, /* reg */ base);") == "writel(v, base);"


def test_fingerprint_ignores_the_line_number() -> None:
    code = "writel(v, base);"
    [(_, early)] = assign([(_site(10), code)])
    [(_, late)] = assign([(_site(250), code)])
    assert early == late


def test_copies_in_one_function_get_distinct_fingerprints() -> None:
    code = "writel(v, base);"
    pairs = list(assign([(_site(10), code), (_site(11), code), (_site(30), code)]))
    prints = [fp for _, fp in pairs]
    assert len(set(prints)) == 3
    # the first copy keeps its fingerprint when a second one is added after it
    [(_, alone)] = assign([(_site(10), code)])
    assert prints[0] == alone


def test_fingerprint_depends_on_function_path_and_code() -> None:
    base = fingerprint("a.c", "f", "direct", "writel", "writel(v, b);", 0)
    assert fingerprint("b.c", "f", "direct", "writel", "writel(v, b);", 0) != base
    assert fingerprint("a.c", "g", "direct", "writel", "writel(v, b);", 0) != base
    assert fingerprint("a.c", "f", "direct", "writel", "writel(w, b);", 0) != base
    assert fingerprint("a.c", "f", "wrapper", "writel", "writel(v, b);", 0) != base
    assert fingerprint("a.c", "f", "direct", "writel", "writel(v, b);", 1) != base
    assert fingerprint("a.c", "f", "direct", "writel", "writel(v, b);", 0) == base
    assert len(base) == 32 and all(c in "0123456789abcdef" for c in base)


def test_two_sites_on_one_line_differ_by_callee() -> None:
    code = "writel(readl(base), base);"
    pairs = list(assign([(_site(5, callee="readl"), code), (_site(5, callee="writel"), code)]))
    assert pairs[0][1] != pairs[1][1]
