"""The funnel rule by data flow, #VE counts through wrappers, and scope independence.

The fixture tree tests/fixtures/funnels: drivers/fun (a 30-line funnel, context-pointer
routines that are not funnels, a base-taking routine, a loop, port I/O with its pause) and
two drivers, drivers/twa and drivers/twb, defining the same macro names (and twb a
non-static function named like twa's macro), each expecting its own definitions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmioscan.analysis.callgraph import CallGraph
from mmioscan.analysis.pipeline import ScanOptions, run_scan
from mmioscan.cfront.extract import Extractor
from mmioscan.core.catalogue import load_catalogue
from mmioscan.core.ruleset import load_rules

from .helpers import FIXTURES, parse_expectations, scan_json

FUNNELS = FIXTURES / "funnels"
SOURCES = sorted(p for p in FUNNELS.rglob("*") if p.suffix in (".c", ".h"))
FUN_MAIN = "drivers/fun/fun_main.c"


def _keys(sites: list[dict[str, Any]], rel: str) -> set[tuple[int, str, str]]:
    return {(s["line"], s["kind"], s["accessor"]) for s in sites if s["path"] == rel}


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scan_json(tmp_path_factory.mktemp("funnels"), FUNNELS)


@pytest.fixture(scope="module")
def graph() -> CallGraph:
    analysis = run_scan(ScanOptions(paths=(FUNNELS,)), load_rules())
    assert analysis.graph is not None
    return analysis.graph


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_expectations(full: dict[str, Any], path: Path) -> None:
    rel = path.relative_to(FUNNELS).as_posix()
    expected = {e.key for e in parse_expectations(path)}
    reported = _keys(full["sites"], rel)
    assert expected == reported, (sorted(expected - reported), sorted(reported - expected))
    functions = {(e.line, e.accessor): e.function for e in parse_expectations(path)}
    for s in full["sites"]:
        if s["path"] == rel:
            assert s["function"] == functions[(s["line"], s["accessor"])], s


def test_funnels_by_flow_not_by_size(graph: CallGraph) -> None:
    funnels = {k.rsplit(":", 1)[1] for k in graph.reach if k.startswith("drivers/fun/")}
    rd32 = graph.definitions[f"{FUN_MAIN}:fun_rd32"]
    assert rd32.end_line - rd32.line + 1 == 30  # twice the old line limit, still a funnel
    assert {"fun_rd32", "fun_rd", "fun_flush", "fun_write_block", "fun_fill",
            "fun_port_poke"} <= funnels
    # context pointer only (fun_reset, fun_probe); a value only, fixed register (FUN_SET_MASK)
    assert not {"fun_reset", "fun_probe", "FUN_SET_MASK"} & funnels
    assert graph.reach[f"{FUN_MAIN}:fun_rd32"].via == ("fun_rd32", "readl")


def test_a_context_pointer_is_not_a_selector() -> None:
    facts = Extractor(load_catalogue().names()).extract("drivers/x/x.c", "0", (
        b"u32 f(struct hw *hw, void *data, u32 reg, unsigned int idx, void __iomem *base)\n"
        b"{\n\treturn readl(hw->regs + reg);\n}\n"
        b"#define M(a, b) writel((a), (b))\n"))
    # pointers select only when used whole: hw in `hw->regs` is a context
    assert dict(facts.selectors) == {0: (0, 1, 2, 3, 4), 1: (0, 1)}
    flows = {(f[1], f[2]): f[4] for f in facts.flows}
    assert flows[("readl", 3)] == ((2,),)  # hw->regs + reg: only reg
    assert flows[("writel", 5)] == ((0,), (1,))


def test_ve_exits_sum_the_accesses_of_one_call(full: dict[str, Any]) -> None:
    at = {(s["line"], s["callee"]): s for s in full["sites"] if s["path"] == FUN_MAIN}
    assert at[(83, "fun_write_block")]["tdx"]["ve_exits"] == 2  # two writel
    assert at[(84, "fun_fill")]["tdx"]["ve_exits"] is None  # a loop: not known
    assert at[(85, "fun_port_poke")]["tdx"]["ve_exits"] == 2  # outb_p and its pause
    assert at[(74, "outb_p")]["tdx"]["ve_exits"] == 2
    assert at[(79, "fun_rd")]["tdx"]["ve_exits"] == 1
    assert "2 x writel" in at[(83, "fun_write_block")]["tdx"]["reason"]


def _driver_sites(data: dict[str, Any], folder: str) -> set[tuple[Any, ...]]:
    return {(s["path"], s["line"], s["column"], s["kind"], s["callee"], s["accessor"],
             tuple(s["via"])) for s in data["sites"] if s["path"].startswith(folder + "/")}


def test_same_macro_names_in_two_drivers(full: dict[str, Any], tmp_path: Path) -> None:
    """Each driver's sites come from its own definitions, scanned alone or together."""
    root = ("--root", str(FUNNELS))
    for folder, inner in (("drivers/twa", "twa_read"), ("drivers/twb", "ioread32")):
        alone = scan_json(tmp_path, FUNNELS / folder, extra=root, name=folder[-3:] + ".json")
        mine = _driver_sites(alone, folder)
        assert mine == _driver_sites(full, folder), folder
        calls = [s for s in mine if s[0].endswith("/" + folder[-3:] + ".c")
                 or s[0].endswith("_main.c")]
        reads = [s for s in calls if s[4] == "tw_rd"]
        assert reads and all(inner in s[6] for s in reads), (folder, reads)
    together = scan_json(tmp_path, FUNNELS / "drivers", extra=root, name="both.json")
    assert _driver_sites(together, "drivers/twa") == _driver_sites(full, "drivers/twa")
    assert _driver_sites(together, "drivers/twb") == _driver_sites(full, "drivers/twb")


def test_twa_resolves_through_its_unparsed_header(graph: CallGraph) -> None:
    assert "drivers/twa/twa_hw.h" not in graph.files  # no accessor named: not parsed
    assert graph.resolve("drivers/twa/twa.c", "tw_rd") == "drivers/twa/twa_regs.h:tw_rd"
    assert graph.resolve("drivers/twb/twb_main.c", "tw_rd") == "drivers/twb/twb_main.c:tw_rd"
    assert graph.resolve("drivers/twb/twb_main.c", "tw_wr") == "drivers/twb/twb.h:tw_wr"
