"""CSV: one row per site, every field, RFC 4180 quoting, "\\n" line ends, deterministic."""

from __future__ import annotations

import csv
import io

from mmioscan.core.model import Site
from mmioscan.report import csv as csv_report

from .report_results import sample_result, sample_sites


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_header_and_one_row_per_site() -> None:
    text = csv_report.render(sample_result())
    assert text.splitlines()[0].split(",") == list(csv_report.COLUMNS)
    rows = _rows(text)
    assert len(rows) == len(sample_sites())  # inactive sites too
    assert [(r["path"], int(r["line"])) for r in rows] == \
        [(s.path, s.line) for s in sample_sites()]


def test_every_field() -> None:
    rows = {(r["path"], r["line"]): r for r in _rows(csv_report.render(sample_result()))}
    er32 = rows[("drivers/net/ethernet/intel/e1000e/netdev.c", "100")]
    assert er32 == {
        "path": "drivers/net/ethernet/intel/e1000e/netdev.c", "line": "100", "column": "9",
        "function": "e1000_intr", "callee": "er32", "accessor": "readl", "kind": "wrapper",
        "access": "read", "width": "32", "family": "mmio", "active": "true",
        "via": "er32 > __er32 > readl", "accessors": "readl", "driver": "e1000e",
        "config_symbol": "E1000E", "group": "generic",
        "group_reason": "Kconfig E1000E: depends on PCI", "reachable": "true", "hot": "true",
        "tdx_path": "ve", "tdx_insn": "mov", "tdx_ve_exits": "1",
        "tdx_reason": "readl is an inline mov: decoded by insn_decode_mmio",
        "fingerprint": er32["fingerprint"], "code": "icr = er32(ICR);",
        "hot_kinds": "irq", "hot_only_via": "",
    }
    assert len(er32["fingerprint"]) == 32
    regmap = rows[("drivers/net/ethernet/intel/e1000e/netdev.c", "140")]
    assert [regmap[k] for k in ("tdx_path", "tdx_insn", "tdx_ve_exits", "tdx_reason")] == \
        ["", "", "", ""]  # not assessed
    assert rows[("drivers/net/ethernet/intel/e1000e/netdev.c", "150")]["active"] == "false"
    odd = rows[("drivers/odd/odd main.c", "12")]
    assert odd["function"] == "" and odd["config_symbol"] == "" and odd["reachable"] == ""
    assert odd["width"] == "32" and odd["tdx_ve_exits"] == ""
    assert odd["code"] == '__iowrite32_copy(to, "</script><!--", n); // caf\u00e9 \\xff'


def test_quoting_and_line_ends() -> None:
    text = csv_report.render(sample_result())
    assert "\r" not in text and text.endswith("\n")
    assert '"__iowrite32_copy(to, ""</script><!--"", n); // caf\u00e9 \\xff"' in text
    text.encode("utf-8")  # the lone surrogate of the source line is gone


def test_code_with_line_break_stays_one_record() -> None:
    site = Site("a.c", 1, 1, "f", "readl", "readl", "direct", "read", 32, "mmio",
                code="a,\nb")
    rows = _rows(csv_report.render(sample_result(sites=(site,))))
    assert len(rows) == 1 and rows[0]["code"] == "a,\nb"
    assert rows[0]["group"] == "" and rows[0]["accessors"] == "readl"


def test_deterministic() -> None:
    assert csv_report.render(sample_result()) == csv_report.render(sample_result())


FORMULAS = ("=", "+", "-", "@", "\t", "\r")


def test_formula_injection_is_neutralised_in_every_cell() -> None:
    """OWASP: a cell starting with = + - @ tab or CR gets a leading ' (a spreadsheet shows
    it as text); the quote goes in front of every such cell, whatever its column."""
    evil = Site('=HYPERLINK("http://x","y").c', 1, 1, "@f", "+g", "-h", "direct", "read",
                32, "mmio", via=("\tv",), accessors=("\rw",), driver="=cmd|' /C calc'!A0",
                config_symbol="+SYM", group="-grp", group_reason="@reason",
                code="=readl(x)+cmd|' /C calc'")
    rows = _rows(csv_report.render(sample_result(sites=(evil,))))
    (row,) = rows
    assert row["code"] == "'=readl(x)+cmd|' /C calc'"
    assert row["path"] == '\'=HYPERLINK("http://x","y").c'
    assert row["via"] == "'\tv" and row["accessors"] == "'\rw"
    for name, cell in row.items():
        assert not cell.startswith(FORMULAS), (name, cell)
    assert row["function"] == "'@f" and row["driver"] == "'=cmd|' /C calc'!A0"


def test_cells_starting_otherwise_are_unchanged() -> None:
    site = Site("a.c", 1, 1, "f", "readl", "readl", "direct", "read", 32, "mmio",
                code="x = -1; // =")
    (row,) = _rows(csv_report.render(sample_result(sites=(site,))))
    assert row["code"] == "x = -1; // =" and row["path"] == "a.c"
