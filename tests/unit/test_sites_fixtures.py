"""The fixture tree's inline expectations against what a full scan reports.

Each `/* expect: KIND NAME [ACCESS] [fn=FUNCTION] */` comment names one active site on its line
(`expect@+N:` on the line N lines down); `/* expect-inactive: ... */` one site inside an
`#if 0` block. The reported sets must match in both directions: nothing missing, nothing extra.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mmioscan.analysis.pipeline import ScanOptions, run_scan
from mmioscan.core.catalogue import load_catalogue
from mmioscan.core.ruleset import load_rules

from .helpers import TREE, Expect, fixture_sources, parse_expectations, scan_json

SOURCES = fixture_sources()
IDS = [p.relative_to(TREE).as_posix() for p in SOURCES]


@pytest.fixture(scope="module")
def tree_scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scan_json(tmp_path_factory.mktemp("scan"), TREE)


def _sites_of(scan: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    rel = path.relative_to(TREE).as_posix()
    return [s for s in scan["sites"] if s["path"] == rel]


def _key(site: dict[str, Any]) -> tuple[int, str, str]:
    return (site["line"], site["kind"], site["accessor"])


def _fmt(keys: set[tuple[int, str, str]]) -> str:
    return ", ".join(f"line {ln}: {kind} {acc}" for ln, kind, acc in sorted(keys)) or "-"


def test_fixture_tree_is_complete() -> None:
    assert len(SOURCES) >= 8
    catalogue = load_catalogue()
    regmap_api = load_rules().regmap.api
    for path in SOURCES:
        for e in parse_expectations(path):
            assert e.kind in ("direct", "reference", "wrapper", "regmap", "deref"), (
                f"{path.name}:{e.line}: kind {e.kind}")
            if e.kind == "deref":  # a raw __iomem dereference reaches no accessor
                assert e.accessor == "deref", f"{path.name}:{e.line}: deref {e.accessor}"
                continue
            if e.kind == "regmap":  # regmap sites name the regmap API call (rules/regmap.toml)
                assert e.accessor in regmap_api, f"{path.name}: {e.accessor} not regmap API"
                continue
            assert catalogue.get(e.accessor) is not None, f"{path.name}: {e.accessor} unknown"


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_active_sites_match_expectations(tree_scan: dict[str, Any], path: Path) -> None:
    expected = {e.key for e in parse_expectations(path) if e.active}
    reported = {_key(s) for s in _sites_of(tree_scan, path) if s["active"]}
    missing, extra = expected - reported, reported - expected
    assert not missing and not extra, f"missing: {_fmt(missing)}; extra: {_fmt(extra)}"


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_inactive_sites_match_expectations(tree_scan: dict[str, Any], path: Path) -> None:
    expected = {e.key for e in parse_expectations(path) if not e.active}
    reported = {_key(s) for s in _sites_of(tree_scan, path) if not s["active"]}
    missing, extra = expected - reported, reported - expected
    assert not missing and not extra, f"missing: {_fmt(missing)}; extra: {_fmt(extra)}"


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_site_function_and_access(tree_scan: dict[str, Any], path: Path) -> None:
    by_key = {_key(s): s for s in _sites_of(tree_scan, path) if s["active"]}
    wrong: list[str] = []
    for e in parse_expectations(path):
        site = by_key.get(e.key)
        if not e.active or site is None:
            continue  # missing sites are the other test's business
        if e.function is not None:
            want = None if e.function == "-" else e.function
            if site["function"] != want:
                wrong.append(f"line {e.line} {e.accessor}: function {site['function']!r}, "
                             f"expected {want!r}")
        if e.access is not None and site["access"] != e.access:
            wrong.append(f"line {e.line} {e.accessor}: access {site['access']}")
    assert not wrong, "; ".join(wrong)


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_site_column_points_at_callee(tree_scan: dict[str, Any], path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    for site in _sites_of(tree_scan, path):
        text = lines[site["line"] - 1]
        at = text[site["column"] - 1:]
        if site["kind"] == "deref":  # the start of the expression: `*`, or the pointer's name
            starts = ("*",) if site["callee"] == "*p" else ("(", "_", *"abcdefghijklmnopqrstuvwxyz")
            assert at.lower().startswith(starts), f"line {site['line']}: {at[:30]!r}"
            continue
        if site["column"] > len(text):  # in a function a macro invocation defines there
            assert re.match(r"\s*[A-Za-z_]\w*\s*\(", text), f"line {site['line']}: {text!r}"
            continue
        if "##" in text:  # a pasted name (`out##sfx(` at `GEN(b, u8)`): its first piece
            pasted = at.split("(")[0].replace("##", " ").split()[0]
            assert site["callee"].startswith(pasted), f"line {site['line']}: {at[:30]!r}"
            continue
        if site.get("indirect"):  # `->field` (or `.field`): the column is the field's name
            assert at.startswith(site["callee"][2:]), f"line {site['line']}: {at[:30]!r}"
            continue
        assert at.startswith(site["callee"]), (
            f"line {site['line']} column {site['column']}: {at[:30]!r} is not {site['callee']}")
        before = text[site["column"] - 2] if site["column"] > 1 else " "
        assert not (before.isalnum() or before == "_"), "the column is inside a longer name"


def test_site_fields_follow_the_catalogue(tree_scan: dict[str, Any]) -> None:
    catalogue = load_catalogue()
    regmap_api = load_rules().regmap.api
    assert tree_scan["sites"]
    for site in tree_scan["sites"]:
        if site["kind"] == "deref":  # no accessor: the compiler picks the instruction
            assert (site["accessor"], site["family"], site["width"]) == ("deref", "deref", None)
            assert site["callee"] in ("*p", "p->field", "p[i]")
            continue
        if site["kind"] == "regmap":  # the regmap API call itself; no catalogue entry
            assert site["callee"] == site["accessor"]
            assert (site["family"], site["access"], site["width"]) == (
                "regmap", regmap_api[site["accessor"]], None)
            continue
        acc = catalogue.get(site["accessor"])
        assert acc is not None
        if site["kind"] == "wrapper":  # the callee is the wrapper; via leads to the accessor
            assert site["via"][0] == site["callee"] and site["via"][-1] == site["accessor"]
            continue
        assert site["callee"] == site["accessor"]
        assert (site["family"], site["access"], site["width"]) == (acc.family, acc.access,
                                                                   acc.width)


def test_families_of_the_special_forms(tree_scan: dict[str, Any]) -> None:
    fam = {s["accessor"]: s["family"] for s in tree_scan["sites"]}
    assert {fam[n] for n in ("inb", "outb", "outb_p", "inw", "outl", "insw", "outsw")} == {"pio"}
    assert {fam[n] for n in ("memcpy_toio", "memcpy_fromio", "memset_io", "ioread32_rep",
                             "iowrite16_rep", "writesl", "__iowrite32_copy")} == {"bulk"}
    assert {fam[n] for n in ("readl_poll_timeout", "readl_poll_timeout_atomic",
                             "readw_relaxed_poll_timeout")} == {"poll"}
    assert {fam[n] for n in ("ioread32", "iowrite32", "ioread8")} == {"iomap"}
    assert {fam[n] for n in ("readl", "writel", "__raw_writel")} == {"mmio"}
    assert fam["lo_hi_readq"] == "split"


def test_no_site_in_the_file_without_accessors(tree_scan: dict[str, Any]) -> None:
    assert not [s for s in tree_scan["sites"] if s["path"] == "drivers/bar/bar_nothing.c"]


def test_in_process_api_agrees_with_the_cli(tree_scan: dict[str, Any]) -> None:
    result = run_scan(ScanOptions(paths=(TREE,)), load_rules()).result
    api = {(s.path, s.line, s.column, s.kind, s.accessor, s.function, s.active)
           for s in result.sites}
    cli = {(s["path"], s["line"], s["column"], s["kind"], s["accessor"], s["function"],
            s["active"]) for s in tree_scan["sites"]}
    assert api == cli


def test_expectation_parser_reads_offsets_and_tags(tmp_path: Path) -> None:
    src = tmp_path / "x.c"
    src.write_text("/* expect@+2: direct readl read fn=F */\n\n#define F readl(0)\n"
                   "x(); /* expect-inactive: reference ioread32 */ /* expect: direct inb */\n")
    got = parse_expectations(src)
    assert got == [
        Expect(3, "direct", "readl", "read", "F", True),
        Expect(4, "reference", "ioread32", None, None, False),
        Expect(4, "direct", "inb", None, None, True),
    ]
