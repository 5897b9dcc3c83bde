"""The call graph (issue 3): node keys, name resolution, wrappers, via-chains and hot nodes.

Two kinds of input: hand-made FileFacts, to pin one rule at a time, and the graph a scan of
the fixture tree builds (drivers/wrap, include/linux/wrapfoo.h), taken from run_scan's
Analysis.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from mmioscan.analysis.callgraph import CallGraph
from mmioscan.analysis.pipeline import ScanOptions, run_scan
from mmioscan.core.catalogue import load_catalogue
from mmioscan.core.model import FileFacts, ScanResult, Scope
from mmioscan.core.ruleset import load_rules

from .helpers import TREE, scan_json

ACCESSORS = load_catalogue().accessors
WRAP = "drivers/wrap"
WR_H = f"{WRAP}/wr.h"
WR_MAIN = f"{WRAP}/wr_main.c"
WR_USER = f"{WRAP}/wr_user.c"
WRAPFOO = "include/linux/wrapfoo.h"


# -- hand-made facts ---------------------------------------------------------------------------


def fn(name: str, *callees: str, line: int = 1, lines: int = 3, static: bool = False,
       values: Iterable[str] = ()) -> Scope:
    """A function definition of `lines` lines calling callees."""
    return Scope(name, "function", line, line + lines - 1, static, False, (),
                 tuple(sorted(set(callees))), tuple(sorted(set(values))))


def macro(name: str, *callees: str, line: int = 1, values: Iterable[str] = ()) -> Scope:
    return Scope(name, "macro", line, line, False, False, ("x",), tuple(sorted(set(callees))),
                 tuple(sorted(set(values))))


def facts(path: str, *scopes: Scope, includes: Iterable[str] = ()) -> FileFacts:
    return FileFacts(path=path, digest="0" * 40, size=1, parsed=True, scopes=scopes,
                     includes=tuple(includes))


def graph(*files: FileFacts, max_lines: int = 15) -> CallGraph:
    return CallGraph(files, ACCESSORS, max_function_lines=max_lines)


# -- keys ----------------------------------------------------------------------------------------


def test_nodes_are_keyed_by_path_and_name() -> None:
    g = graph(facts("drivers/a/one.c", fn("rd", "readl", static=True)),
              facts("drivers/a/two.c", fn("rd", static=True)))
    assert {"drivers/a/one.c:rd", "drivers/a/two.c:rd"} <= set(g.definitions)
    one = g.definitions["drivers/a/one.c:rd"]
    assert (one.name, one.path, one.kind, one.static) == ("rd", "drivers/a/one.c", "function",
                                                         True)
    # Same name, two static definitions: one reaches readl, the other does not.
    assert "drivers/a/one.c:rd" in g.reach
    assert "drivers/a/two.c:rd" not in g.reach
    assert g.resolve("drivers/a/one.c", "rd") == "drivers/a/one.c:rd"
    assert g.resolve("drivers/a/two.c", "rd") == "drivers/a/two.c:rd"
    assert g.wrapper_names() == frozenset({"rd"})


def test_accessors_are_keyed_by_bare_name() -> None:
    g = graph(facts("drivers/a/a.c", fn("f", "readl", "writel")))
    assert g.resolve("drivers/a/a.c", "readl") == "readl"
    assert set(g.graph.successors("drivers/a/a.c:f")) == {"readl", "writel"}
    assert "readl" not in g.definitions


def test_a_definition_named_like_an_accessor_is_the_accessor() -> None:
    """`static inline u32 readl(...)` in a header is the accessor, not a wrapper of it."""
    g = graph(facts("include/asm/io.h", fn("readl", "__raw_readl")),
              facts("drivers/a/a.c", fn("f", "readl"), includes=["<asm/io.h>"]))
    assert "include/asm/io.h:readl" not in g.definitions
    assert g.resolve("drivers/a/a.c", "readl") == "readl"
    assert g.reach["drivers/a/a.c:f"].via == ("f", "readl")


def test_first_definition_in_a_file_wins() -> None:
    """#ifdef alternatives: two definitions of one name in a file are one node."""
    g = graph(facts("drivers/a/a.c", fn("get", "readl", line=1), fn("get", line=10)))
    assert g.definitions["drivers/a/a.c:get"].line == 1
    assert g.key_of("drivers/a/a.c", 1) == "drivers/a/a.c:get"


# -- resolution precedence -----------------------------------------------------------------------


def _precedence_graph() -> CallGraph:
    return graph(
        facts("drivers/a/a.c", fn("local", "readl", static=True), fn("caller"),
              includes=['"a.h"', "<linux/x.h>"]),
        facts("drivers/a/b.c", fn("caller"), includes=["<linux/x.h>", '"a.h"']),
        facts("drivers/a/a.h", macro("local", "writel"), macro("both", "readw"),
              macro("hdr", "readb"), includes=["<linux/y.h>"]),
        facts("include/linux/x.h", fn("both", "readq", static=True)),
        facts("include/linux/y.h", fn("deep", "ioread8", static=True)),
        facts("drivers/z/z.c", fn("hdr", "ioread16"), fn("glob", "ioread32")),
        facts("drivers/a/sub/s.c", fn("glob", "iowrite32")),
        facts("drivers/a/sub/t.c", fn("caller")),
        facts("drivers/a/sub/deep/u.c", fn("caller")),
        facts("drivers/q/q.c", fn("secret", "readl", static=True)),
        facts("drivers/a/c.c", fn("caller"), includes=['"nothere.h"']),
    )


def test_resolve_same_file_before_headers() -> None:
    g = _precedence_graph()
    assert g.resolve("drivers/a/a.c", "local") == "drivers/a/a.c:local"
    assert g.resolve("drivers/a/b.c", "local") == "drivers/a/a.h:local"


def test_resolve_direct_includes_in_their_order() -> None:
    g = _precedence_graph()
    assert g.resolve("drivers/a/a.c", "both") == "drivers/a/a.h:both"
    assert g.resolve("drivers/a/b.c", "both") == "include/linux/x.h:both"


def test_resolve_transitive_includes() -> None:
    g = _precedence_graph()
    assert g.resolve("drivers/a/a.c", "deep") == "include/linux/y.h:deep"
    assert g.resolve("drivers/a/a.h", "deep") == "include/linux/y.h:deep"


def test_resolve_included_header_before_non_static_elsewhere() -> None:
    g = _precedence_graph()
    assert g.resolve("drivers/a/a.c", "hdr") == "drivers/a/a.h:hdr"
    # Scope independence (issue "Every MMIO access", item 8): z.c's hdr is another driver's
    # definition, neither included nor exported, so q.c's call no longer resolves to it
    # (was "drivers/z/z.c:hdr"); an exported one does (test_resolve_exported_elsewhere).
    assert g.resolve("drivers/q/q.c", "hdr") is None


def test_resolve_non_static_function_in_the_nearest_folder() -> None:
    g = _precedence_graph()
    assert g.resolve("drivers/a/a.c", "glob") == "drivers/a/sub/s.c:glob"
    assert g.resolve("drivers/a/sub/t.c", "glob") == "drivers/a/sub/s.c:glob"
    assert g.resolve("drivers/z/z.c", "glob") == "drivers/z/z.c:glob"
    # Item 8: neither glob is in q's folder subtree nor exported (was: one of the two)
    assert g.resolve("drivers/q/q.c", "glob") is None


def test_resolve_never_reaches_a_static_function_of_another_file() -> None:
    g = _precedence_graph()
    assert g.resolve("drivers/a/a.c", "secret") is None
    assert g.resolve("drivers/q/q.c", "secret") == "drivers/q/q.c:secret"


def test_resolve_headers_of_the_same_or_parent_folder_last() -> None:
    g = _precedence_graph()
    # c.c includes a header that is not there: a.h of its own folder is the fallback.
    # Item 8: another driver's non-static function no longer comes first (was z.c:hdr)
    assert g.resolve("drivers/a/c.c", "hdr") == "drivers/a/a.h:hdr"
    assert g.resolve("include/linux/x.h", "deep") == "include/linux/y.h:deep"
    assert g.resolve("drivers/a/c.c", "local") == "drivers/a/a.h:local"
    assert g.resolve("drivers/a/sub/t.c", "local") == "drivers/a/a.h:local"  # parent folder
    assert g.resolve("drivers/a/sub/deep/u.c", "local") is None  # grandparent: too far
    assert g.resolve("drivers/a/c.c", "nowhere") is None


def test_resolve_exported_elsewhere() -> None:
    """Another folder's function is reached when it is exported, the nearest first; never a
    same-named definition of another driver that is not."""
    z = FileFacts(path="drivers/z/z.c", digest="0" * 40, size=1, parsed=True,
                  scopes=(fn("hdr", "ioread16"),), exports=("hdr",))
    g = graph(z, facts("drivers/y/y.c", fn("hdr", "readl")),
              facts("drivers/q/q.c", fn("caller", "hdr")),
              facts("drivers/y/sub/w.c", fn("caller", "hdr")))
    assert g.resolve("drivers/q/q.c", "hdr") == "drivers/z/z.c:hdr"
    assert g.resolve("drivers/y/sub/w.c", "hdr") == "drivers/y/y.c:hdr"  # own subtree first


def test_resolve_through_an_unparsed_header() -> None:
    """a.c -> a_hw.h (no accessor: not parsed, its includes kept) -> a_regs.h: the macro of
    a_regs.h, not another driver's same-named non-static function."""
    hw = FileFacts(path="drivers/a/a_hw.h", digest="0" * 40, size=1, parsed=False,
                   includes=('"a_regs.h"',))
    g = graph(facts("drivers/a/a.c", fn("caller", "rd"), includes=['"a_hw.h"']), hw,
              facts("drivers/a/a_regs.h", macro("rd", "readl")),
              facts("drivers/b/b.c", fn("rd", "writel")))
    assert g.resolve("drivers/a/a.c", "rd") == "drivers/a/a_regs.h:rd"


def test_resolution_decides_which_callers_are_wrappers() -> None:
    g = _precedence_graph()
    # a.c:local -> readl (the file's own), not the header's writel macro
    assert g.reach["drivers/a/a.c:local"].accessors == ("readl",)
    assert g.reach["drivers/a/a.h:local"].accessors == ("writel",)


# -- wrappers ------------------------------------------------------------------------------------


def test_macros_of_any_size_are_wrappers_functions_only_up_to_the_limit() -> None:
    g = graph(facts("drivers/a/a.c",
                    fn("f15", "readl", line=1, lines=15),
                    fn("f16", "readl", line=20, lines=16),
                    Scope("BIG", "macro", 40, 90, callees=("writel",)),
                    Scope("OBJ", "object-macro", 95, 95, callees=("readb",))))
    assert {g.definitions[k].name for k in g.reach} == {"f15", "BIG", "OBJ"}


def test_the_limit_comes_from_the_rules() -> None:
    assert load_rules().wrappers.max_function_lines == 15
    scopes = (fn("f3", "readl", lines=3), fn("f4", "readl", line=10, lines=4))
    assert graph(facts("drivers/a/a.c", *scopes), max_lines=3).wrapper_names() == {"f3"}
    assert graph(facts("drivers/a/a.c", *scopes), max_lines=4).wrapper_names() == {"f3", "f4"}


def test_a_large_function_breaks_the_chain() -> None:
    """A small function calling a large one that calls readl is no wrapper."""
    g = graph(facts("drivers/a/a.c", fn("big", "readl", lines=40), fn("small", "big", line=50)))
    assert g.wrapper_names() == frozenset()
    assert "drivers/a/a.c:big" not in g.graph


def test_via_is_the_shortest_chain_and_accessors_are_all() -> None:
    g = graph(facts("drivers/a/a.c",
                    fn("top", "long1", "short1", line=1),
                    fn("long1", "long2", line=10), fn("long2", "long3", line=20),
                    fn("long3", "writel", line=30),
                    fn("short1", "readw", line=40)))
    reach = g.reach["drivers/a/a.c:top"]
    assert reach.via == ("top", "short1", "readw")
    assert reach.via_keys == ("drivers/a/a.c:top", "drivers/a/a.c:short1", "readw")
    assert reach.accessor == "readw"
    assert reach.accessors == ("readw", "writel")
    assert g.reach["drivers/a/a.c:long1"].via == ("long1", "long2", "long3", "writel")


def test_accessors_are_sorted_and_complete_through_several_levels() -> None:
    g = graph(facts("drivers/a/a.c",
                    macro("M", "h1", "h2"), fn("h1", "iowrite8", "readq", line=5),
                    fn("h2", "h3", line=10), fn("h3", "inb", "ioread32", line=15)))
    assert g.reach["drivers/a/a.c:M"].accessors == ("inb", "ioread32", "iowrite8", "readq")


def test_an_accessor_used_as_a_value_makes_a_wrapper() -> None:
    """read_poll_timeout(readl, ...) or `fn = readl`: readl is reachable."""
    g = graph(facts("drivers/a/a.c", macro("POLL", "read_poll_timeout", values=["readl"]),
                    fn("wait", "POLL", line=5)))
    assert g.reach["drivers/a/a.c:POLL"].via == ("POLL", "readl")
    assert g.reach["drivers/a/a.c:wait"].via == ("wait", "POLL", "readl")


def test_recursion_ends() -> None:
    g = graph(facts("drivers/a/a.c", fn("ping", "pong", "readl"), fn("pong", "ping", line=5),
                    fn("self", "self", "writel", line=10)))
    assert g.reach["drivers/a/a.c:pong"].via == ("pong", "ping", "readl")
    assert g.reach["drivers/a/a.c:self"].via == ("self", "writel")


def test_no_accessor_no_wrapper() -> None:
    g = graph(facts("drivers/a/a.c", fn("a", "b"), fn("b", "printk", line=5)))
    assert g.reach == {}
    assert g.wrapper_names() == frozenset()


# -- hot nodes -----------------------------------------------------------------------------------


def test_hot_nodes_follow_calls_through_any_definition() -> None:
    g = graph(facts("drivers/a/a.c",
                    fn("handler", "work", static=True),
                    fn("work", "helper", line=5, lines=40),  # large: still followed
                    fn("helper", "readl", line=50),
                    fn("cold", "readl", line=60)),
              facts("drivers/a/b.c", fn("handler", "writel", static=True)))
    hot = g.hot_nodes([("drivers/a/a.c", "handler")])
    assert hot == {"drivers/a/a.c:handler", "drivers/a/a.c:work", "drivers/a/a.c:helper"}
    assert g.hot_nodes([("drivers/a/b.c", "handler")]) == {"drivers/a/b.c:handler"}
    assert g.hot_nodes([("drivers/a/a.c", "unknown")]) == frozenset()
    assert g.hot_nodes([]) == frozenset()


def test_hot_path_is_the_chain_from_a_root_to_a_hot_definition() -> None:
    g = graph(facts("drivers/a/a.c",
                    fn("handler", "work", static=True),
                    fn("work", "helper", line=5),
                    fn("helper", "readl", line=50),
                    fn("cold", "readl", line=60)))
    roots = [("drivers/a/a.c", "handler")]
    assert g.hot_path(roots, "drivers/a/a.c:helper") == (
        "drivers/a/a.c:handler", "drivers/a/a.c:work", "drivers/a/a.c:helper")
    assert g.hot_path(roots, "drivers/a/a.c:handler") == ("drivers/a/a.c:handler",)
    assert g.hot_path(roots, "drivers/a/a.c:cold") == ()


# -- the fixture tree ------------------------------------------------------------------------------


def _scan(*paths: Path, root: Path | None = None) -> tuple[ScanResult, CallGraph]:
    analysis = run_scan(ScanOptions(paths=paths, root=root), load_rules())
    assert analysis.graph is not None
    return analysis.result, analysis.graph


@pytest.fixture(scope="module")
def tree_graph() -> CallGraph:
    return _scan(TREE)[1]


def test_fixture_same_named_static_functions_stay_apart(tree_graph: CallGraph) -> None:
    g = tree_graph
    assert {f"{WR_MAIN}:rd", f"{WR_USER}:rd"} <= set(g.definitions)
    assert g.reach[f"{WR_MAIN}:rd"].via == ("rd", "readl")
    assert f"{WR_USER}:rd" not in g.reach
    assert g.resolve(WR_USER, "rd") == f"{WR_USER}:rd"
    assert g.resolve(WR_MAIN, "rd") == f"{WR_MAIN}:rd"


def test_fixture_declared_in_header_defined_in_c_file(tree_graph: CallGraph) -> None:
    g = tree_graph
    assert f"{WR_H}:__wr_wr" not in g.definitions  # only declared there
    assert g.resolve(WR_H, "__wr_wr") == f"{WR_MAIN}:__wr_wr"
    assert g.resolve(WR_USER, "__wr_wr") == f"{WR_MAIN}:__wr_wr"
    assert g.reach[f"{WR_H}:wr_wr"].via_keys == (f"{WR_H}:wr_wr", f"{WR_MAIN}:__wr_wr",
                                                 "writel")


def test_fixture_include_funnel_resolves_through_angle_includes(tree_graph: CallGraph) -> None:
    g = tree_graph
    assert g.resolve(WR_MAIN, "wrapfoo_read") == f"{WRAPFOO}:wrapfoo_read"
    assert g.resolve(WR_MAIN, "__wr_rd") == f"{WR_H}:__wr_rd"
    swap = g.reach[f"{WRAPFOO}:wrapfoo_swap16"]
    assert swap.via == ("wrapfoo_swap16", "iowrite16")
    assert swap.accessors == ("ioread32", "iowrite16")


def test_fixture_via_chains(tree_graph: CallGraph) -> None:
    g = tree_graph
    assert g.reach[f"{WR_H}:wr_flush"].via == ("wr_flush", "wr_rd", "__wr_rd", "readl")
    # The funnel rule (item 1): wr_sum15, wr_wait_ready, wr_wait_idle (context pointer only)
    # and wr_ack (its second parameter is a value) are no funnels any more; their chains
    # were (wr_sum15, rd, readl), (wr_wait_ready, WR_POLL, readl), (wr_wait_idle,
    # readl_poll_timeout) and (wr_ack, wr_wr, __wr_wr, writel).
    assert g.reach[f"{WR_MAIN}:rd"].via == ("rd", "readl")
    assert g.reach[f"{WR_MAIN}:WR_POLL"].via == ("WR_POLL", "readl")
    assert g.reach[f"{WR_H}:wr_wr"].via == ("wr_wr", "__wr_wr", "writel")
    assert not {f"{WR_MAIN}:{n}" for n in ("wr_sum15", "wr_wait_ready", "wr_wait_idle",
                                           "wr_ack")} & set(g.reach)


def test_fixture_wrapper_names(tree_graph: CallGraph) -> None:
    names = tree_graph.wrapper_names()
    assert {"wr_rd", "wr_wr", "wr_flush", "__wr_rd", "__wr_wr", "rd", "WR_POLL",
            "WR_DEFINE_GETTER", "wrapfoo_read", "wrapfoo_write", "wrapfoo_swap16"} <= names
    # wr_dump16, wr_probe: context pointer only; wr_user_cached only calls a shadow-copy
    # rd(). The funnel rule (item 1) moved wr_sum15, wr_wait_ready, wr_wait_idle (context
    # pointer only) and wr_ack (a value parameter) here from the set above.
    assert not {"wr_dump16", "wr_probe", "wr_user_cached", "wr_sum15", "wr_wait_ready",
                "wr_wait_idle", "wr_ack"} & names


def test_fixture_hot_nodes(tree_graph: CallGraph) -> None:
    hot = tree_graph.hot_nodes([(WR_MAIN, "wr_irq")])
    assert {f"{WR_MAIN}:wr_irq", f"{WR_MAIN}:wr_ack", f"{WR_H}:wr_rd", f"{WR_H}:__wr_rd",
            f"{WR_H}:wr_wr", f"{WR_MAIN}:__wr_wr"} <= hot
    assert not {f"{WR_MAIN}:wr_probe", f"{WR_MAIN}:rd", f"{WR_H}:wr_flush"} & hot


# -- scanning a subfolder: include/ headers come in as context ----------------------------------


@pytest.fixture(scope="module")
def wrap_only(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scan_json(tmp_path_factory.mktemp("wrap"), TREE / WRAP, extra=("--root", str(TREE)))


def test_subfolder_scan_keeps_the_include_funnel(wrap_only: dict[str, Any]) -> None:
    sites = wrap_only["sites"]
    assert wrap_only["scanned"] == [WRAP]
    assert all(s["path"].startswith(f"{WRAP}/") for s in sites)  # context sites not reported
    funnel = [s for s in sites if s["callee"].startswith("wrapfoo_")]
    assert {(s["callee"], tuple(s["via"])) for s in funnel} == {
        ("wrapfoo_read", ("wrapfoo_read", "ioread32")),
        ("wrapfoo_write", ("wrapfoo_write", "iowrite32")),
        ("wrapfoo_swap16", ("wrapfoo_swap16", "iowrite16")),
    }
    assert all(s["kind"] == "wrapper" and s["path"] == WR_MAIN for s in funnel)


def test_subfolder_scan_gives_the_same_sites_as_the_full_scan(
        wrap_only: dict[str, Any], tmp_path: Path) -> None:
    full = scan_json(tmp_path, TREE)

    def key(s: dict[str, Any]) -> tuple[Any, ...]:
        return (s["path"], s["line"], s["column"], s["kind"], s["callee"], s["accessor"],
                tuple(s["via"]), s["hot"])

    assert {key(s) for s in wrap_only["sites"]} == {
        key(s) for s in full["sites"] if s["path"].startswith(f"{WRAP}/")}


def test_subfolder_scan_graph_has_the_context_header() -> None:
    result, g = _scan(TREE / WRAP, root=TREE)
    assert WRAPFOO in g.files
    assert WRAPFOO not in {f.path for f in result.facts}  # context, not scope
    assert f"{WRAPFOO}:wrapfoo_read" in g.reach


def test_recursive_helper_of_a_funnel_is_counted_not_a_crash(tmp_path: Path) -> None:
    """A funnel calling a small helper that recurses (e1000's e1000_vlan_filter_on_off
    stopped a scan of drivers/net/ethernet with a NetworkXError): the helper's accesses are
    the funnel's, an unknown number of them."""
    from .test_wrappers import mini_tree

    root = mini_tree(tmp_path / "linux", {"drivers/rh/rh.c": """\
static void rh_settle(struct rh *d, int n);

static void rh_again(struct rh *d, int n)
{
	rh_settle(d, n - 1);
}

static void rh_settle(struct rh *d, int n)
{
	readl(d->base + 4);
	if (n)
		rh_again(d, n);
}

static u32 rh_rd(struct rh *d, u32 reg)
{
	rh_settle(d, 1);
	return readl(d->base + reg);
}

u32 rh_use(struct rh *d)
{
	return rh_rd(d, 8);
}
"""})
    scan = scan_json(tmp_path, root / "drivers")
    [site] = [s for s in scan["sites"] if s["callee"] == "rh_rd"]
    assert site["tdx"]["ve_exits"] is None and site["accessors"] == ["readl"]
