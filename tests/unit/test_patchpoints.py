"""Patch points (issue 3): greedy set cover over the sites' candidate definitions.

plan() on hand-made candidate sets (order, ties, thresholds, unreachable shares, against a
plain recomputing greedy), patch_points() on hand-made sites, and the JSON `patch_points` of
the fixture tree: the funnel of drivers/wrap first, one point for all regmap sites.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from mmioscan.analysis.callgraph import CallGraph
from mmioscan.analysis.patchpoints import THRESHOLDS, Plan, Step, plan
from mmioscan.analysis.wrappers import patch_points
from mmioscan.core.catalogue import load_catalogue
from mmioscan.core.model import Site

from .helpers import TREE, scan_json


def cands(*sets: str) -> list[frozenset[str]]:
    """`cands("ab", "a", "")`: one site per string, its candidates one letter each."""
    return [frozenset(s) for s in sets]


def steps(p: Plan) -> list[tuple[str, int, int]]:
    return [(s.point, s.covered, s.cumulative) for s in p.steps]


# -- plan() ----------------------------------------------------------------------------------------


def test_empty_input() -> None:
    p = plan([])
    assert (p.sites, p.coverable, p.steps) == (0, 0, ())
    for percent in THRESHOLDS:
        assert p.points_for(percent) == ()


def test_greedy_takes_the_largest_gain_first() -> None:
    p = plan(cands("ab", "a", "bc", "c", "c"))
    assert steps(p) == [("c", 3, 3), ("a", 2, 5)]  # b gains nothing after them: left out
    assert (p.sites, p.coverable) == (5, 5)


def test_gains_are_recounted_after_each_choice() -> None:
    # x covers 4, then y's 3 sites are all covered by x, z's 2 are new
    p = plan(cands("xy", "xy", "xy", "x", "z", "z"))
    assert steps(p) == [("x", 4, 4), ("z", 2, 6)]


def test_ties_go_to_the_smaller_name() -> None:
    assert steps(plan(cands("b", "a"))) == [("a", 1, 1), ("b", 1, 2)]
    assert steps(plan([frozenset({"zeta"}), frozenset({"alpha"}), frozenset({"mu"})])) == [
        ("alpha", 1, 1), ("mu", 1, 2), ("zeta", 1, 3)]
    # a tie after re-counting: both fall from 2 to 1
    assert steps(plan(cands("qab", "qab", "qa", "qb", "q")))[0] == ("q", 5, 5)
    assert steps(plan(cands("ab", "a", "b"))) == [("a", 2, 2), ("b", 1, 3)]


def test_sites_without_candidates_make_full_coverage_unreachable() -> None:
    p = plan(cands("a", "a", "b", ""))
    assert (p.sites, p.coverable) == (4, 3)
    assert steps(p) == [("a", 2, 2), ("b", 1, 3)]
    assert p.points_for(50) == ("a",)
    assert p.points_for(75) == ("a", "b")
    assert p.points_for(90) is None
    assert p.points_for(100) is None


def test_only_uncoverable_sites() -> None:
    p = plan(cands("", ""))
    assert (p.sites, p.coverable, p.steps) == (2, 0, ())
    assert p.points_for(50) is None and p.points_for(100) is None


@pytest.mark.parametrize("percent, expected", [
    (1, ("a",)), (40, ("a",)), (50, ("a", "b")), (60, ("a", "b")), (80, ("a", "b", "c")),
    (90, ("a", "b", "c")), (100, ("a", "b", "c")),
])
def test_points_for_rounds_the_needed_share_up(percent: int,
                                               expected: tuple[str, ...]) -> None:
    # 5 sites; cumulative coverage 2, 3, 5: 50% needs ceil(2.5) = 3 sites
    p = Plan(5, 5, (Step("a", 2, 2), Step("b", 1, 3), Step("c", 2, 5)))
    assert p.points_for(percent) == expected


def test_points_for_exact_shares() -> None:
    p = Plan(10, 10, (Step("a", 5, 5), Step("b", 4, 9), Step("c", 1, 10)))
    assert p.points_for(50) == ("a",)
    assert p.points_for(90) == ("a", "b")
    assert p.points_for(100) == ("a", "b", "c")


def _naive_greedy(candidates: Sequence[frozenset[str]]) -> list[tuple[str, int, int]]:
    """Recount every gain at every step; the largest gain wins, ties by the smaller name."""
    uncovered = set(range(len(candidates)))
    points = sorted(set().union(*candidates)) if candidates else []
    result: list[tuple[str, int, int]] = []
    total = 0
    while True:
        best, gain = None, 0
        for point in points:
            g = sum(1 for s in uncovered if point in candidates[s])
            if g > gain:
                best, gain = point, g
        if best is None:
            return result
        uncovered -= {s for s in uncovered if best in candidates[s]}
        total += gain
        result.append((best, gain, total))


@pytest.mark.parametrize("seed", range(40))
def test_lazy_greedy_equals_the_plain_greedy(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"p{i:02d}" for i in range(rng.randint(1, 12))]
    candidates = [frozenset(rng.sample(names, rng.randint(0, min(4, len(names)))))
                  for _ in range(rng.randint(0, 60))]
    p = plan(candidates)
    assert steps(p) == _naive_greedy(candidates)
    assert p.coverable == sum(1 for c in candidates if c)
    assert (p.steps[-1].cumulative if p.steps else 0) == p.coverable


def test_plan_is_deterministic_whatever_the_site_order() -> None:
    base = cands("ab", "bc", "cd", "da", "a", "c")
    assert steps(plan(base)) == steps(plan(list(reversed(base))))


# -- patch_points() on hand-made sites ---------------------------------------------------------


def _site(path: str, line: int, function: str | None, kind: str = "direct",
          active: bool = True) -> Site:
    return Site(path=path, line=line, column=1, function=function, callee="readl",
                accessor="readl", kind=kind, access="read", width=32,  # type: ignore[arg-type]
                family="mmio", active=active, driver=path.rsplit("/", 1)[0],
                scope_key=f"{path}:{function}" if function else None)


def test_patch_points_of_hand_made_sites() -> None:
    from mmioscan.core.model import FileFacts, Scope

    a = FileFacts("drivers/x/a.c", "0", 1, True,
                  scopes=(Scope("f", "function", 1, 40), Scope("g", "function", 50, 90)))
    graph = CallGraph([a], load_catalogue().accessors)
    sites = [_site("drivers/x/a.c", 2, "f"), _site("drivers/x/a.c", 3, "f"),
             _site("drivers/x/a.c", 51, "g"), _site("drivers/x/a.c", 60, None),
             _site("drivers/x/a.c", 70, "g", kind="reference"),
             _site("drivers/x/a.c", 71, "g", active=False)]
    result = dict(patch_points(sites, graph))
    assert list(result) == ["all", "drivers/x"]
    cov = result["drivers/x"]
    assert cov.sites == 4  # active, not references
    assert [(p.name, p.path, p.line, p.covered) for p in cov.points] == [
        ("f", "drivers/x/a.c", 1, 2), ("g", "drivers/x/a.c", 50, 1)]
    assert [p.cumulative_share for p in cov.points] == [0.5, 0.75]
    assert dict(cov.needed) == {50: 1, 90: None, 100: None}  # the file-scope site: no point


def test_patch_points_of_nothing() -> None:
    graph = CallGraph([], load_catalogue().accessors)
    result = dict(patch_points([], graph))
    assert list(result) == ["all"]
    assert result["all"].sites == 0 and result["all"].points == ()
    assert dict(result["all"].needed) == {50: 0, 90: 0, 100: 0}


# -- the fixture tree ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree_scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scan_json(tmp_path_factory.mktemp("pp"), TREE)


def test_json_patch_points_shape(tree_scan: dict[str, Any]) -> None:
    pp = tree_scan["patch_points"]
    counted = [s for s in tree_scan["sites"] if s["active"] and s["kind"] != "reference"]
    assert list(pp)[0] == "all"
    assert pp["all"]["sites"] == len(counted)
    drivers = sorted({s["driver"] for s in counted})
    groups = sorted({f"group:{s['group']}" for s in counted})
    assert list(pp)[1:] == groups + drivers
    for group in groups:  # a group's curve covers exactly its sites
        assert pp[group]["sites"] == sum(f"group:{s['group']}" == group for s in counted)
    for name, cov in pp.items():
        assert set(cov) == {"sites", "needed", "max_share", "points"}
        assert set(cov["needed"]) == {"50%", "90%", "100%"}
        shares = [p["cumulative_share"] for p in cov["points"]]
        assert shares == sorted(shares) and all(0 < x <= 1 for x in shares), name
        covered = [p["covered"] for p in cov["points"]]
        assert all(c > 0 for c in covered)
        assert sum(covered) <= cov["sites"]
        assert cov["max_share"] == (shares[-1] if shares else 0.0)
        needed = [cov["needed"][k] for k in ("50%", "90%", "100%")]
        known = [n for n in needed if n is not None]
        assert known == sorted(known) and all(n <= len(cov["points"]) for n in known)
        if sum(covered) == cov["sites"]:
            assert cov["needed"]["100%"] == len(cov["points"])


def test_json_patch_points_name_the_funnel_of_drivers_wrap_first(
        tree_scan: dict[str, Any]) -> None:
    cov = tree_scan["patch_points"]["drivers/wrap"]
    first, second = cov["points"][:2]
    assert (first["name"], first["path"]) == ("__wr_rd", "drivers/wrap/wr.h")
    line = (TREE / "drivers/wrap/wr.h").read_text().splitlines()[first["line"] - 1]
    assert "__wr_rd(" in line
    # every site whose via-chain passes through __wr_rd, and its own readl
    through = [s for s in tree_scan["sites"] if s["driver"] == "drivers/wrap" and s["active"]
               and s["kind"] != "reference"
               and ("__wr_rd" in s["via"] or s["function"] == "__wr_rd")]
    assert first["covered"] == len(through)
    assert (second["name"], second["path"]) == ("__wr_wr", "drivers/wrap/wr_main.c")
    assert cov["needed"]["100%"] == len(cov["points"])
    assert cov["max_share"] == 1.0


def test_json_regmap_sites_share_one_funnel(tree_scan: dict[str, Any]) -> None:
    cov = tree_scan["patch_points"]["drivers/rmap"]
    assert cov["sites"] == 5
    assert [(p["name"], p["path"], p["covered"]) for p in cov["points"]] == [
        ("regmap_mmio", "drivers/base/regmap/regmap-mmio.c", 5)]
    assert cov["needed"] == {"50%": 1, "90%": 1, "100%": 1}


def test_json_subfolder_scan_has_its_own_driver_only(tmp_path: Any) -> None:
    data = scan_json(tmp_path, TREE / "drivers/wrap", extra=("--root", str(TREE)))
    pp = data["patch_points"]
    assert list(pp) == ["all", "group:generic", "drivers/wrap"]
    assert pp["all"]["points"] == pp["drivers/wrap"]["points"]
    assert pp["drivers/wrap"]["points"][0]["name"] == "__wr_rd"
