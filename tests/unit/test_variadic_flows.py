"""A variadic macro passes its arguments on one position each (cfront/flows.py): `#define
wr_fw(...) raw_wr(__VA_ARGS__)` hands its second argument to raw_wr's second parameter, so
a call of wr_fw whose register argument is second is a site like a call of raw_wr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmioscan.cfront import flows
from mmioscan.cfront.macros import Directives

from .helpers import scan_json
from .test_wrappers import mini_tree

MAX = flows.MAX_VARIADIC


def _deps(define: str, callee: str) -> tuple[tuple[int, ...], ...]:
    text = define.encode()
    [macro] = Directives(text).definitions(text)
    records = [f for f in flows.macro_flows(0, macro.params, macro.body, frozenset(),
                                            frozenset({macro.name}), (1, 1))
               if f[1] == callee]
    assert len(records) == 1, records
    return records[0][4]


def test_va_args_whole_stands_for_each_argument() -> None:
    assert _deps("#define wr_fw(...) raw_wr(__VA_ARGS__)\n", "raw_wr") == tuple(
        (k,) for k in range(MAX))


def test_after_named_parameters() -> None:
    deps = _deps("#define de_wr(p, ...) __de_wr(to_disp(p), __VA_ARGS__)\n", "__de_wr")
    assert deps[:3] == ((0,), (1,), (2,)) and len(deps) == 1 + MAX


def test_gnu_forms() -> None:
    deps = _deps("#define dbg(fmt, args...) out(fmt, ##args)\n", "out")
    assert deps[:3] == ((0,), (1,), (2,))
    assert _deps("#define dbg2(fmt, ...) out(fmt, ## __VA_ARGS__)\n", "out")[1] == (1,)


def test_va_args_not_last_or_not_whole_is_one_argument() -> None:
    assert _deps("#define m(...) f(__VA_ARGS__, 0)\n", "f") == ((0,), ())
    assert _deps("#define m2(x, ...) f(x, g(__VA_ARGS__))\n", "f") == ((0,), (1,))
    assert _deps("#define m3(a, b) f(a, b)\n", "f") == ((0,), (1,))


def test_selectors_count_the_variadic_arguments() -> None:
    assert flows.macro_selectors(("p", "...")) == tuple(range(1 + MAX))
    assert flows.macro_selectors(("fmt", "args...")) == tuple(range(1 + MAX))
    assert flows.macro_selectors(("a", "b")) == (0, 1)
    assert flows.macro_selectors(None) == ()


_VF = """\
struct vf_dev {
	void __iomem *base;
};

static void vf_raw_wr(struct vf_dev *d, u32 reg, u32 val)
{
	writel(val, d->base + reg);
}

#define vf_wr_fw(...) vf_raw_wr(__VA_ARGS__)
#define vf_wr(d, ...) vf_raw_wr(vf_dev_of(d), __VA_ARGS__)

void vf_kick(struct vf_dev *d)
{
	vf_wr_fw(d, 0x20, 1);
	vf_wr(d, 0x24, 2);
}
"""


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = mini_tree(tmp_path_factory.mktemp("vf") / "linux", {"drivers/vf/vf.c": _VF})
    return scan_json(tmp_path_factory.mktemp("out"), Path(root) / "drivers/vf",
                     extra=("-j", "1"))


@pytest.mark.parametrize(("needle", "callee"), [("vf_wr_fw(d, 0x20, 1);", "vf_wr_fw"),
                                                ("vf_wr(d, 0x24, 2);", "vf_wr")])
def test_calls_of_variadic_forwarders_are_sites(scan: dict[str, Any], needle: str,
                                                callee: str) -> None:
    line = next(n for n, text in enumerate(_VF.split("\n"), 1) if needle in text)
    [site] = [s for s in scan["sites"] if s["line"] == line and s["function"] == "vf_kick"]
    assert site["kind"] == "wrapper" and site["callee"] == callee
    assert site["via"] == [callee, "vf_raw_wr", "writel"]
