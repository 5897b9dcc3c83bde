"""Markdown audit: sections, escaped table cells, caps that say what they left out."""

from __future__ import annotations

import re

from mmioscan import __version__
from mmioscan.core.model import (
    Coverage,
    DriverInfo,
    DriverSummary,
    PatchPoint,
    Problem,
    ScanResult,
    Site,
    Tdx,
)
from mmioscan.report import markdown

from . import report_results
from .report_results import big_result, sample_result, sample_sites

_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def _tables(text: str) -> list[list[str]]:
    tables: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def test_header() -> None:
    text = markdown.render(sample_result())
    assert text.startswith("# MMIO audit: Linux 6.12.9\n")
    for part in ("config: `config-6.12`", "strategy: upstream",
                 f"tool: mmioscan {__version__}", "scanned: `drivers`, `arch/x86`"):
        assert part in text
    # machine-independent: neither the tree's nor the config's folder appears
    assert "/boot/" not in text and sample_result().root not in text


def test_every_table_row_has_the_header_width() -> None:
    tables = _tables(markdown.render(sample_result()))
    assert len(tables) >= 7
    for table in tables:
        widths = {len(_UNESCAPED_PIPE.findall(line)) for line in table}
        assert len(widths) == 1, table


def test_groups_strategies_and_drivers() -> None:
    text = markdown.render(sample_result())
    summary = _section(text, "Summary")
    assert "| virtio | 1 | 3 | 2 | 1 | 0 | 0 | 1 | 1 | 65 |" in summary
    assert "| all | 5 | 12 | 7 | 1 | 3 | 1 | 4 | 3 | 70 |" in summary
    assert "| virtio-paravirt | all | 2 | 13 | 10 | 1 | 2 | 1 | 1 | 39+ | - |" in summary
    assert "| `unsupported-mmio` | error | 1 |" in summary
    drivers = _section(text, "Drivers")
    assert drivers.index("| e1000e |") < drivers.index("| idxd |")
    assert "| odd\\|name&lt;script> | generic | - |" in drivers


def test_no_strategy_table_without_rows() -> None:
    assert "### Strategies" not in markdown.render(sample_result(strategies=()))


def test_unsupported_sites_with_code_and_via() -> None:
    section = _section(markdown.render(sample_result()), "Sites that would oops")
    assert "2 sites" in section
    assert "| `arch/x86/kernel/hpet.c:50:9` | hpet | `probe` | `p->field` |" in section
    # A backtick in the code widens the fence; pipes are escaped.
    assert "``regs->ctrl \\|= 1; /* `odd` \\| pipes */``" in section
    assert "`__iowrite32_copy(to, \"</script><!--\", n); // caf\u00e9 \\xff`" in section
    assert "idxd" not in section  # not built under the config


def test_hot_sites() -> None:
    section = _section(markdown.render(sample_result()), "Hot #VE sites")
    assert "3 sites trap" in section
    assert "`er32 > __er32 > readl`" in section and "`e1000_intr`" in section


def test_coverage() -> None:
    section = _section(markdown.render(sample_result()), "Patch-point coverage")
    assert "| all | 8 | 3 | - | - |" in section
    assert "| virtio | 3 | 1 | 2 | 2 |" in section
    assert "| 1 | `vp_get_status` | `drivers/virtio/virtio_pci_modern_dev.c:10` | 2 | 25.0% |" \
        in section


def test_problems() -> None:
    section = _section(markdown.render(sample_result()), "Problems")
    assert "1 file could not be read" in section
    assert "- `drivers/bad|file.c`: not UTF-8 &lt;binary>" in section


def test_caps_say_what_is_left_out() -> None:
    text = markdown.render(big_result(20_000))
    hot = _section(text, "Hot #VE sites")
    assert hot.count("\n| `drivers/") == markdown.TOP_HOT
    assert "more hot sites are left out" in hot
    drivers = _section(text, "Drivers")
    assert drivers.count("\n| drv") == markdown.TOP_DRIVERS
    assert "2,450 more drivers are left out" in drivers
    assert "more problems are left out" in text
    everything = markdown.render(big_result(3_000), all_drivers=True)
    assert _section(everything, "Drivers").count("\n| drv") == 2500


def test_unenriched_sites() -> None:
    bare = tuple(Site(s.path, s.line, s.column, s.function, s.callee, s.accessor, s.kind,
                      s.access, s.width, s.family, s.active, s.via, driver=s.driver)
                 for s in sample_sites())
    text = markdown.render(sample_result(sites=bare, drivers=(), strategies=(),
                                         patch_points=(), kernel_version=None, config=None,
                                         strategy=None))
    assert text.startswith("# MMIO audit: Linux unknown version")
    assert "| unknown | 5 | 12 | 0 | 0 | 0 | 12 |" in text
    assert "Not computed" in text
    assert "| hpet | - | - | 3 |" in text  # drivers derived from the sites


def test_deterministic() -> None:
    assert markdown.render(sample_result()) == markdown.render(sample_result())


# ---- injection: names from the scanned tree are text, never Markdown or HTML ----------------

EVIL = "[click](javascript:alert(1)) *bold* _em_ ~~gone~~ <img src=x onerror=alert(1)> a|b \\"


def _evil_result() -> ScanResult:
    """Every text field a tree controls (folder and file names, functions, code, Kconfig
    symbols, the kernel version, problem messages) holds Markdown and HTML syntax."""
    info = DriverInfo(EVIL, f"SYM{EVIL}", "generic", f"folder {EVIL}", True)
    path = f"drivers/{EVIL}/x.c"
    tdx = Tdx("unsupported", f"movs{EVIL}", None, f"reason {EVIL}")
    sites = (
        report_results.site(info, path, 3, f"f{EVIL}", "__iowrite32_copy", "wrapper", tdx,
                            code=f"x = `y` `` {EVIL}", function=f"fn{EVIL}",
                            via=(f"v{EVIL}", "__iowrite32_copy"), hot=True),
        report_results.site(info, path, 9, "readl", "readl", "direct",
                            Tdx("ve", "mov", 1, f"ve {EVIL}"), code=f"readl(p); // {EVIL}",
                            hot=True, function=f"irq{EVIL}"),
    )
    drivers = report_results.sample_drivers(sites)
    drivers = (*drivers, DriverSummary(info, (f"drivers/{EVIL}",), 2, 1, 0, 1, 2, 1, 1))
    point = PatchPoint(f"{path}:fn{EVIL}", f"fn{EVIL}", path, 3, 2, 1.0)
    return report_results.sample_result(
        sites=sites, drivers=drivers, kernel_version=f"6.12{EVIL}", strategy=f"s{EVIL}",
        problems=(Problem(path, f"message {EVIL}"),),
        patch_points=((f"driver {EVIL}", Coverage(2, (point,), ((50, 1), (90, 1),
                                                                 (100, 1)))),))


def _outside_code(line: str) -> str:
    """The line with code spans and backslash-escaped characters blanked: what a Markdown
    renderer reads as syntax."""
    out, i = [], 0
    while i < len(line):
        if line[i] == "\\":
            out.append("  ")
            i += 2
            continue
        if line[i] == "`":
            fence = re.match(r"`+", line[i:])
            assert fence is not None
            n = len(fence.group(0))
            close = re.compile(f"(?<!`)`{{{n}}}(?!`)").search(line, i + n)
            assert close is not None, f"unclosed code span in {line!r}"
            out.append(" " * (close.end() - i))
            i = close.end()
            continue
        out.append(line[i])
        i += 1
    return "".join(out)


def test_tree_names_cannot_inject_markdown_or_html() -> None:
    text = markdown.render(_evil_result())
    assert EVIL.split()[0].replace("[", "\\[").replace("]", "\\]") in text  # shown as text
    for line in text.splitlines():
        syntax = _outside_code(line)
        assert not re.search(r"[\[\]*~<]", syntax), line
        assert not re.search(r"(?<![^\W_])_|_(?![^\W_])", syntax), line
    for table in _tables(text):
        widths = {_outside_code(line).count("|") for line in table}
        assert len(widths) == 1, table


def test_code_cells_keep_their_backticks_and_pipes_inside_the_span() -> None:
    cell = markdown.code_cell("a `b` ``c`` \\| d | e")
    assert cell == "```a `b` ``c`` \\\\\\| d \\| e```"
    assert _outside_code(cell).strip() == ""
    assert markdown.code_cell("x\r\ny") == "`x  y`"  # a CR or LF would end the table row
    assert markdown.text_cell("a\rb|c") == "a b\\|c"
