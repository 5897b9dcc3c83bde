"""HTML report: one self-contained, well-formed page; a safe data island; capped lists; the
size bound on a drivers/-sized result. The page's script runs in tests/integration/
test_html_chromium.py."""

from __future__ import annotations

import json
import re
import time
from html.parser import HTMLParser
from typing import Any

import pytest

from mmioscan.core.findings import coverage_curves, merge_coverages
from mmioscan.core.model import Coverage, PatchPoint, Site
from mmioscan.report import html as html_report
from mmioscan.report import svg

from .report_results import big_result, sample_result, sample_sites

VOID = {"meta", "br", "input", "hr", "img", "link", "line", "rect", "polyline", "path",
        "circle"}
_ISLAND = re.compile(r'<script type="application/json" id="data">(.*?)</script>', re.S)


class _Balance(HTMLParser):
    """Every non-void element is closed, in order; records ids and tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ids: list[str] = []
        self.tags: set[str] = set()
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.ids += [v for k, v in attrs if k == "id" and v]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def _parse(page: str) -> _Balance:
    parser = _Balance()
    parser.feed(page)
    parser.close()
    assert not parser.errors, parser.errors[:5]
    assert not parser.stack, parser.stack
    return parser


def _island(page: str) -> dict[str, Any]:
    found = _ISLAND.findall(page)
    assert len(found) == 1
    data: dict[str, Any] = json.loads(found[0])
    return data


@pytest.fixture(scope="module")
def page() -> str:
    return html_report.render(sample_result())


def test_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    assert not re.search(r"<(link|img|iframe|object|embed)\b", page)
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    page.encode("utf-8")  # no lone surrogate left from a non-UTF-8 source line


def test_well_formed_with_every_section(page: str) -> None:
    parser = _parse(page)
    for section in ("summary", "drivers", "coverage", "mix", "unsupported", "hot", "problems",
                    "driver-table", "driver-filter", "driver-group", "data", "js-errors",
                    "selftest"):
        assert section in parser.ids
    assert {"svg", "polyline", "details", "table"} <= parser.tags
    assert 'data-rendered="no"' in page  # the script turns it to "yes"


def test_data_island_is_safe_and_complete(page: str) -> None:
    raw = _ISLAND.findall(page)[0]
    assert "<" not in raw and ">" not in raw and "&" not in raw
    data = _island(page)
    fields = data["fields"]
    assert isinstance(fields, list) and fields[0] == "name"
    drivers = data["drivers"]
    assert isinstance(drivers, list)
    names = [row[0] for row in drivers]
    assert names == ["e1000e", "hpet", "virtio_pci", "idxd", "odd|name<script>"]
    e1000e = dict(zip(fields, drivers[0], strict=True))
    assert e1000e["group"] == "generic" and e1000e["sites"] == 4 and e1000e["points_90"] == 2


def test_escaping(page: str) -> None:
    assert "</script><!--" not in page.replace('</script>\n<script', "")
    assert "__iowrite32_copy(to, &quot;&lt;/script&gt;&lt;!--&quot;, n); // caf\u00e9 \\xff" in page
    assert "odd|name&lt;script&gt;" in page


def test_site_lists(page: str) -> None:
    unsupported = page[page.index('<section id="unsupported">'):page.index('<section id="hot">')]
    assert "(2)</h2>" in unsupported and "idxd" not in unsupported
    assert "<summary>hpet (1)</summary>" in unsupported
    assert "regs-&gt;ctrl |= 1;" in unsupported
    hot = page[page.index('<section id="hot">'):page.index('<section id="problems">')]
    assert "er32 &gt; __er32 &gt; readl" in hot and "left out" not in hot


def test_summary_and_strategies(page: str) -> None:
    summary = page[page.index('<section id="summary">'):page.index('<section id="drivers">')]
    assert "Strategies side by side" in summary and "virtio-paravirt" in summary
    assert "<code>unsupported-mmio</code>" in summary


def test_unenriched_result_renders() -> None:
    bare = tuple(Site(s.path, s.line, s.column, s.function, s.callee, s.accessor, s.kind,
                      s.access, s.width, s.family, s.active, s.via, driver=s.driver)
                 for s in sample_sites())
    page = html_report.render(sample_result(sites=bare, drivers=(), strategies=(),
                                            patch_points=(), kernel_version=None,
                                            config=None, strategy=None))
    _parse(page)
    names = [row[0] for row in _island(page)["drivers"]]
    assert names == ["e1000e", "hpet", "virtio_pci", "idxd", "odd|name<script>"]
    assert "Not computed" in page and "Strategies side by side" not in page


def test_deterministic(page: str) -> None:
    assert html_report.render(sample_result()) == page


def test_size_bound_for_all_of_drivers() -> None:
    """250,000 sites (drivers/ has ~220k): the page stays under 10 MB and says what it left
    out."""
    result = big_result(250_000)
    start = time.perf_counter()
    page = html_report.render(result)
    elapsed = time.perf_counter() - start
    size = len(page.encode("utf-8"))
    print(f"\nHTML for 250,000 sites: {size:,} bytes in {elapsed:.1f} s")
    assert size < 10_000_000
    assert "Showing 5,000 of 10,000: 5,000 left out" in page
    assert "Showing 2,000 of" in page
    _parse(page)


def test_group_curves_merge_driver_curves() -> None:
    def point(key: str, covered: int) -> PatchPoint:
        return PatchPoint(key, key.rsplit(":", 1)[1], key.rsplit(":", 1)[0], 1, covered, 0.0)

    shared = "include/linux/h.h:funnel"
    a = Coverage(10, (point(shared, 6), point("a.c:x", 4)), ((50, 1), (90, 2), (100, 2)))
    b = Coverage(10, (point(shared, 5), point("b.c:y", 3)), ((50, 1), (90, None), (100, None)))
    merged = merge_coverages((a, b))
    assert [(p.key, p.covered) for p in merged.points] == \
        [(shared, 11), ("a.c:x", 4), ("b.c:y", 3)]
    assert [p.cumulative_share for p in merged.points] == [0.55, 0.75, 0.9]
    assert merged.needed == ((50, 1), (90, 3), (100, None))
    curves = coverage_curves(sample_result(), sample_sites())
    assert [name for name, _ in curves] == ["all", "virtio", "x86", "generic"]
    own = sample_result(patch_points=(("all", a), ("group:virtio", b)))
    assert coverage_curves(own, sample_sites()) == [("all", a), ("virtio", b)]


def test_curve_sampling_keeps_ends() -> None:
    assert svg.sample_indices(10) == list(range(10))
    picked = svg.sample_indices(20_000)
    assert picked[0] == 0 and picked[-1] == 19_999
    assert len(picked) <= svg.MAX_VERTICES + 1 and picked == sorted(set(picked))
