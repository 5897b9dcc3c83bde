"""Markdown: a readable audit (GitHub-flavoured tables), e.g. for reports/ or a PR comment.

Sections: what was scanned (kernel version, config, strategy, tool version); counts per
driver group and, when computed, per strategy; the largest drivers; the sites that would oops
(raw `__iomem` dereferences and unsupported accessors) with their code and via chain; the
costliest hot #VE sites; patch-point coverage; problems. Long lists are capped and say how
many rows were left out (the JSON and CSV outputs hold every site).

Every text cell (and every other name from the scanned tree: folders, drivers, Kconfig
symbols, messages) goes through text_cell, which escapes what Markdown would read as syntax:
links and images (`[`, `]`), emphasis and strikethrough (`*`, `_` but inside a word, `~`),
code spans (backticks), table columns (`|`), HTML and autolinks (`<`), entities (`&`), and
backslashes; control characters (a CR would end the row) become spaces. A folder named
`[click](javascript:alert(1))` shows as that text, never as a link. Code cells are code
spans whose fence is longer than any backtick run inside.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import PurePath

from mmioscan import __version__
from mmioscan.core.findings import (
    FINDING_CLASSES,
    RAW_DEREF,
    UNSUPPORTED,
    Finding,
    GroupCounts,
    coverage_curves,
    driver_rows,
    findings,
    group_counts,
    hot_order,
    hot_text,
)
from mmioscan.core.findings import clean as _clean
from mmioscan.core.model import Coverage, ScanResult, Site, StrategyRow
from mmioscan.report.aggregate import TRAPS, active_sites, platform_answer

TOP_DRIVERS = 50
MAX_UNSUPPORTED = 1000
TOP_HOT = 200
TOP_POINTS = 20
MAX_PROBLEMS = 20
_BACKTICKS = re.compile(r"`+")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
# Markdown syntax characters; `_` only where it could open or close emphasis: an underscore
# between two letters or digits never does (GFM), so `virtio_net` stays as it is.
_SYNTAX = re.compile(r"[\\`*~\[\]|]|(?<![^\W_])_|_(?![^\W_])")
_PIPES = re.compile(r"(\\*)\|")


def text_cell(value: object) -> str:
    """Plain text for a table cell, or any text from the tree: Markdown syntax and HTML
    escaped, so it shows as written and is never a link, emphasis, a column or a tag."""
    if value is None:
        return "-"
    text = _CONTROLS.sub(" ", _clean(str(value)))
    text = _SYNTAX.sub(lambda m: "\\" + m.group(0), text)
    return text.replace("&", "&amp;").replace("<", "&lt;")


def code_cell(value: str | None) -> str:
    """A code span for a table cell. `\\|` is GFM's escape for a pipe, even in code spans; a
    pipe after backslashes gets an odd number of them, so no renderer reads an escaped
    backslash followed by a column break."""
    if not value:
        return ""
    return code_span(_PIPES.sub(lambda m: m.group(1) + "\\" * (len(m.group(1)) % 2) + "\\|",
                                value))


def code_span(value: str | None) -> str:
    """A code span outside tables, fenced by more backticks than any run inside."""
    if not value:
        return ""
    text = _CONTROLS.sub(" ", _clean(value))
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _left_out(shown: int, total: int, what: str) -> list[str]:
    if total <= shown:
        return []
    return ["", f"{total - shown:,} more {what} are left out; `--format json` or `--format csv` "
            "lists every site."]


_NO_CONFIG = "none (every file counted)"


def _header(result: ScanResult) -> list[str]:
    version = result.kernel_version or "unknown version"
    return [
        f"# MMIO audit: Linux {text_cell(version)}",
        "",
        f"- scanned: {', '.join(code_span(p) for p in result.scanned) or '-'}",
        # Base names only: a published audit must not depend on where the tree was unpacked.
        f"- tree: {code_span(PurePath(result.root).name)}",
        f"- kernel version: {text_cell(result.kernel_version)}",
        f"- config: {code_span(PurePath(result.config).name) if result.config else _NO_CONFIG}",
        f"- strategy: {text_cell(result.strategy)}",
        f"- tool: mmioscan {__version__}",
    ]


def _answer(result: ScanResult) -> list[str]:
    """The plain answer, per platform, before any table."""
    sentence, hottest = platform_answer(result)
    lines = ["", "## The answer", "", text_cell(sentence)]
    if hottest:
        trap = TRAPS.get(result.platforms[0] if result.platforms else "tdx", "#VE")
        lines += ["", f"The hottest trapping sites ({trap} on a hot path):", ""]
        for site in hottest:
            exits = next((v.ve_exits for n, v in site.verdicts()
                          if n == (result.platforms or ("tdx",))[0]), None)
            lines.append(f"- {code_span(f'{site.path}:{site.line}')} "
                         f"{code_span(site.callee)} in {text_cell(site.driver)}"
                         f" ({'?' if exits is None else exits} {trap} per execution,"
                         f" {text_cell(hot_text(site))})")
    return lines


def _summary(result: ScanResult, sites: list[Site], found: list[Finding]) -> list[str]:
    inactive = sum(not s.active for s in result.sites)
    unreachable = sum(s.active and s.reachable is False for s in result.sites)
    lines = ["", "## Summary", "",
             f"{len(sites):,} active sites counted ({inactive:,} more in `#if 0`, "
             f"{unreachable:,} active in files the config does not build).", ""]
    by_class = {c.id: 0 for c in FINDING_CLASSES}
    for f in found:
        by_class[f.cls.id] += 1
    lines += _table(("finding", "level", "sites"),
                    ((code_cell(c.id), text_cell(c.level), _num(by_class[c.id]))
                     for c in FINDING_CLASSES))
    lines += ["", "### Per driver group", ""]
    lines += _table(("group", "drivers", "sites", "#VE", "paravirt", "unsupported",
                     "not assessed", "hot", "hot #VE", "#VE exits"),
                    (_group_row(g) for g in group_counts(sites)))
    if result.strategies:
        lines += ["", "### Strategies", ""] + _strategies(result.strategies)
    return lines


def _group_row(g: GroupCounts) -> list[str]:
    return [text_cell(g.group), _num(g.drivers), _num(g.sites), _num(g.path("ve")),
            _num(g.path("paravirt")), _num(g.path("unsupported")),
            _num(g.path("not assessed")), _num(g.hot), _num(g.hot_ve), _num(g.ve_exits)]


def _strategies(rows: Sequence[StrategyRow]) -> list[str]:
    lines = _table(("platform", "strategy", "group", "drivers", "sites", "#VE/#VC", "paravirt",
                    "unsupported", "hot", "hot #VE/#VC", "exits", "90% points"),
                   ([text_cell(r.platform), text_cell(r.strategy), text_cell(r.group),
                     _num(r.drivers), _num(r.sites),
                     _num(r.ve), _num(r.paravirt), _num(r.unsupported), _num(r.hot),
                     _num(r.hot_ve), _num(r.ve_exits) + ("+" if r.ve_exits_unknown else ""),
                     _num(r.points_90)] for r in rows))
    return lines + ["", "exits: #VE (TDX) or #VC (SEV) per execution of each site once "
                    "('+': some counts are "
                    "unknown); 90% points: patch points still needed to cover 90% of the "
                    "sites that are not paravirt."]


def _drivers(result: ScanResult, sites: list[Site], all_drivers: bool) -> list[str]:
    rows = driver_rows(result, sites)
    shown = rows if all_drivers else rows[:TOP_DRIVERS]
    title = "## Drivers" if all_drivers else f"## Drivers (top {TOP_DRIVERS} by sites)"
    lines = ["", title, ""]
    lines += _table(("driver", "group", "config", "sites", "#VE", "paravirt", "unsupported",
                     "hot", "#VE exits", "90% points"),
                    ([text_cell(r.name), text_cell(r.group),
                      code_cell(r.config_symbol) or "-", _num(r.sites), _num(r.ve),
                      _num(r.paravirt), _num(r.unsupported), _num(r.hot), _num(r.ve_exits),
                      _num(r.points_90)] for r in shown))
    if len(rows) > len(shown):
        lines += ["", f"{len(rows) - len(shown):,} more drivers are left out (all of them: "
                  "the HTML report or `--format json`)."]
    return lines


def location(site: Site) -> str:
    return code_cell(f"{site.path}:{site.line}:{site.column}")


def _site_row(site: Site, with_exits: bool) -> list[str]:
    tdx = site.tdx
    row = [location(site), text_cell(site.driver), code_cell(site.function) or "-",
           code_cell(" > ".join(site.via) if site.via else site.callee),
           text_cell(f"{tdx.insn}: {tdx.reason}" if tdx else "not assessed")]
    if with_exits:
        row.insert(4, _num(tdx.ve_exits if tdx else None))
    return row + [code_cell(site.code)]


def _unsupported(found: list[Finding]) -> list[str]:
    bad = [f for f in found if f.cls in (RAW_DEREF, UNSUPPORTED)]
    lines = ["", "## Sites that would oops in a TD", "",
             f"{len(bad):,} sites: raw `__iomem` dereferences and accessors the #VE handler "
             "cannot emulate."]
    if bad:
        lines += [""] + _table(("site", "driver", "function", "via", "TDX", "code"),
                               (_site_row(f.site, False) for f in bad[:MAX_UNSUPPORTED]))
    return lines + _left_out(MAX_UNSUPPORTED, len(bad), "sites")


def _hot(found: list[Finding]) -> list[str]:
    hot = hot_order(found)
    lines = ["", f"## Hot #VE sites (top {TOP_HOT}, most #VE exits first)", "",
             f"{len(hot):,} sites trap on an interrupt, NAPI poll, xmit or I/O path."]
    if hot:
        lines += [""] + _table(("site", "driver", "function", "via", "#VE exits", "TDX",
                                "code", "hot path"),
                               ([*_site_row(f.site, True), text_cell(hot_text(f.site))]
                                for f in hot[:TOP_HOT]))
    return lines + _left_out(TOP_HOT, len(hot), "hot sites")


def _coverage(result: ScanResult, sites: list[Site]) -> list[str]:
    curves = coverage_curves(result, sites)
    if not curves:
        return ["", "## Patch-point coverage", "", "Not computed (`--direct-only`)."]
    lines = ["", "## Patch-point coverage", "",
             "Fewest functions or macros whose rewriting covers a share of the sites "
             "(greedy set cover).", ""]
    lines += _table(("scope", "sites", "50%", "90%", "100%"),
                    ([text_cell(name), _num(cov.sites)] + _needed(cov) for name, cov in curves))
    top = curves[0][1]
    lines += ["", f"Top {TOP_POINTS} points over {text_cell(curves[0][0])}:", ""]
    lines += _table(("#", "point", "defined at", "sites covered", "cumulative"),
                    ([str(i), code_cell(p.name), code_cell(f"{p.path}:{p.line}"),
                      _num(p.covered), f"{p.cumulative_share:.1%}"]
                     for i, p in enumerate(top.points[:TOP_POINTS], start=1)))
    return lines


def _needed(cov: Coverage) -> list[str]:
    needed = dict(cov.needed)
    return [_num(needed.get(p)) for p in (50, 90, 100)]


def _problems(result: ScanResult) -> list[str]:
    lines = ["", "## Problems", "",
             f"{_plural(len(result.problems), 'file')} could not be read or parsed cleanly; "
             "their sites may be incomplete."]
    if result.problems:
        lines += [""] + [f"- {code_span(p.path)}: {text_cell(p.message)}"
                         for p in result.problems[:MAX_PROBLEMS]]
    return lines + _left_out(MAX_PROBLEMS, len(result.problems), "problems")


def render(result: ScanResult, all_drivers: bool = False) -> str:
    sites = active_sites(result)
    found = findings(sites)
    lines = _header(result)
    lines += _answer(result)
    lines += _summary(result, sites, found)
    lines += _drivers(result, sites, all_drivers)
    lines += _unsupported(found)
    lines += _hot(found)
    lines += _coverage(result, sites)
    lines += _problems(result)
    return _clean("\n".join(lines) + "\n")
