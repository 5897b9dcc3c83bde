"""CSV: one row per site, every field, for spreadsheets and ad-hoc scripts.

The stdlib csv writer quotes as RFC 4180 asks (a field holding a comma, a quote or a line
break is quoted, quotes doubled), but rows end with "\\n", not RFC 4180's CRLF: the output is
then byte-identical on every platform and diffs cleanly, and every CSV reader accepts it.

Cells: None is empty; booleans are `true`/`false` (as in the JSON output); `via` is joined
with " > " and `accessors` with ";"; the `tdx_*` cells are empty for a site not assessed.
Every site is written, inactive ones too (`active` false), in (path, line, column) order.
A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return (a code line
`=readl(x)+cmd|' /C calc'`, a file named `=HYPERLINK(...).c`) gets a leading `'`, as OWASP
recommends against formula injection: a spreadsheet then shows it as text, never runs it.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable

from mmioscan.core.findings import clean
from mmioscan.core.model import ScanResult, Site

COLUMNS = ("path", "line", "column", "function", "callee", "accessor", "kind", "access",
           "width", "family", "active", "via", "accessors", "driver", "config_symbol", "group",
           "group_reason", "reachable", "hot", "tdx_path", "tdx_insn", "tdx_ve_exits",
           "tdx_reason", "fingerprint", "code", "hot_kinds", "hot_only_via")

Cell = str | int | bool | None


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return neutralise(clean(str(value)))


def neutralise(text: str) -> str:
    """The cell a spreadsheet cannot take for a formula (OWASP: prefix it with `'`)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def row(site: Site) -> list[str]:
    tdx = site.tdx
    values: tuple[Cell, ...] = (
        site.path, site.line, site.column, site.function, site.callee, site.accessor,
        site.kind, site.access, site.width, site.family, site.active, " > ".join(site.via),
        ";".join(site.accessors or (site.accessor,)), site.driver, site.config_symbol,
        site.group, site.group_reason, site.reachable, site.hot,
        tdx.path if tdx else None, tdx.insn if tdx else None, tdx.ve_exits if tdx else None,
        tdx.reason if tdx else None, site.fingerprint, site.code, ";".join(site.hot_kinds),
        site.hot_only_via)
    return [_cell(v) for v in values]


class _Quoting(csv.Dialect):
    """For a row with a CR in a cell: the stdlib quotes only fields holding a character of
    its lineterminator, so with "\\n" alone a CR went unquoted and readers split the row.
    This dialect ends rows with "\\r\\n"; write() puts "\\n" back."""

    delimiter, quotechar, doublequote, skipinitialspace = ",", '"', True, False
    lineterminator, quoting = "\r\n", csv.QUOTE_MINIMAL


def write(sites: Iterable[Site], out: io.StringIO) -> None:
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    buffer = io.StringIO()
    with_cr = csv.writer(buffer, dialect=_Quoting)
    for cells in itertools.chain([[neutralise(c) for c in COLUMNS]], map(row, sites)):
        if not any("\r" in c for c in cells):
            writer.writerow(cells)
            continue
        with_cr.writerow(cells)
        out.write(buffer.getvalue()[:-2] + "\n")
        buffer.seek(0)
        buffer.truncate()


def render(result: ScanResult) -> str:
    out = io.StringIO()
    write(sorted(result.sites, key=Site.sort_key), out)
    return out.getvalue()
