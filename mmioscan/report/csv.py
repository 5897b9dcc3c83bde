"""CSV: one row per site, every field, for spreadsheets and ad-hoc scripts.

The stdlib csv writer quotes as RFC 4180 asks (a field holding a comma, a quote or a line
break is quoted, quotes doubled), but rows end with "\\n", not RFC 4180's CRLF: the output is
then byte-identical on every platform and diffs cleanly, and every CSV reader accepts it.

Cells: None is empty; booleans are `true`/`false` (as in the JSON output); `via` is joined
with " > " and `accessors` with ";"; the `tdx_*` cells are empty for a site not assessed.
Every site is written, inactive ones too (`active` false), in (path, line, column) order.
Cells are written as they are: a spreadsheet may read a cell starting with '=' as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from mmioscan.core.findings import clean
from mmioscan.core.model import ScanResult, Site

COLUMNS = ("path", "line", "column", "function", "callee", "accessor", "kind", "access",
           "width", "family", "active", "via", "accessors", "driver", "config_symbol", "group",
           "group_reason", "reachable", "hot", "tdx_path", "tdx_insn", "tdx_ve_exits",
           "tdx_reason", "fingerprint", "code")

Cell = str | int | bool | None


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return clean(str(value))


def row(site: Site) -> list[str]:
    tdx = site.tdx
    values: tuple[Cell, ...] = (
        site.path, site.line, site.column, site.function, site.callee, site.accessor,
        site.kind, site.access, site.width, site.family, site.active, " > ".join(site.via),
        ";".join(site.accessors or (site.accessor,)), site.driver, site.config_symbol,
        site.group, site.group_reason, site.reachable, site.hot,
        tdx.path if tdx else None, tdx.insn if tdx else None, tdx.ve_exits if tdx else None,
        tdx.reason if tdx else None, site.fingerprint, site.code)
    return [_cell(v) for v in values]


def write(sites: Iterable[Site], out: io.StringIO) -> None:
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    writer.writerows(row(s) for s in sites)


def render(result: ScanResult) -> str:
    out = io.StringIO()
    write(sorted(result.sites, key=Site.sort_key), out)
    return out.getvalue()
