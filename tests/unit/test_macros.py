"""Lexical #define reading (cfront/macros.py)."""

from __future__ import annotations

from mmioscan.cfront.macros import Directives, expand_pasted

SOURCE = b"""#include <x.h>
#define PLAIN 1
#define GEN(sfx, type) \\
	static inline type rd##sfx(void *p) { return read##sfx(p); }
GEN(l, u32)
GEN(b, u8)
GEN(zz, int)
int f(void) { return GEN_NOT(1); }
"""


def test_directive_spans_include_continuations() -> None:
    d = Directives(SOURCE)
    body = SOURCE.index(b"return read")
    assert d.contains(body)
    assert not d.contains(SOURCE.index(b"GEN(l"))
    assert len(d.spans) == 3


def test_definitions_have_names_params_and_bodies() -> None:
    defs = {m.name: m for m in Directives(SOURCE).definitions(SOURCE)}
    assert defs["PLAIN"].params is None
    assert defs["GEN"].params == ("sfx", "type")
    assert b"read##sfx" in defs["GEN"].body


def test_expand_pasted_yields_catalogued_names_at_invocations() -> None:
    d = Directives(SOURCE)
    gen = next(m for m in d.definitions(SOURCE) if m.name == "GEN")
    names = {n for _, n in expand_pasted(SOURCE, gen, d, frozenset({"readl", "readb", "readq"}))}
    assert names == {"readl", "readb"}  # readzz is not catalogued; readq is never produced
