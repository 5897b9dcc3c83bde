"""The HTML report's script in a real browser: Debian's chromium, headless, offline.

`chromium --dump-dom` prints the DOM after the page's scripts ran. The page writes what the
tests need into the DOM: `data-rendered="yes"` once the driver table is built, script errors
into `#js-errors` (window.onerror), and with `?selftest` the outcome of sorting and filtering
through its own controls into `#selftest`. Chromium is installed by .ci/install-deps: a
missing browser fails the test, it is not skipped.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from unit.report_results import big_result, sample_result

from mmioscan.report import html as html_report

pytestmark = pytest.mark.integration

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--enable-logging=stderr", "--v=0")


def chromium() -> str:
    path = shutil.which("chromium")
    assert path is not None, "chromium is missing: run .ci/install-deps (Debian package chromium)"
    return path


def dump_dom(page: Path, tmp_path: Path, query: str = "?selftest") -> tuple[str, str]:
    """(DOM after the scripts ran, chromium's stderr)."""
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    done = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom",
         page.as_uri() + query],
        capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def _text_of(dom: str, element_id: str) -> str:
    match = re.search(rf'<pre id="{element_id}"[^>]*>(.*?)</pre>', dom, re.S)
    assert match is not None, f"#{element_id} missing"
    return html.unescape(match.group(1))


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if "Uncaught" in line or ("CONSOLE" in line and "error" in line.lower())]


def _driver_rows(dom: str) -> int:
    body = re.search(r'<table id="driver-table".*?<tbody>(.*?)</tbody>', dom, re.S)
    assert body is not None
    return body.group(1).count("<tr>")


def _check(dom: str, stderr: str, drivers: int) -> dict[str, Any]:
    assert re.search(r'<body[^>]*data-rendered="yes"', dom)
    assert _text_of(dom, "js-errors") == ""
    assert _console_errors(stderr) == []
    assert "<svg" in dom and "<polyline" in dom
    selftest: dict[str, Any] = json.loads(_text_of(dom, "selftest"))
    assert selftest["rows"] == drivers
    assert selftest["reset_rows"] == drivers == _driver_rows(dom)
    for check in ("name_ascending", "sites_descending", "sites_ascending", "filter_ok",
                  "group_ok"):
        assert selftest[check] is True, (check, selftest)
    return selftest


def test_sample_report(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(html_report.render(sample_result()), encoding="utf-8")
    dom, stderr = dump_dom(page, tmp_path)
    selftest = _check(dom, stderr, 5)
    assert selftest["filter"] == "e1000e" and selftest["filter_rows"] == 1
    assert (selftest["group"], selftest["group_rows"]) == ("virtio", 1)
    # The driver name holding "<script>" came through the data island as text.
    assert "odd|name&lt;script&gt;" in dom


def test_large_report(tmp_path: Path) -> None:
    page = tmp_path / "large.html"
    page.write_text(html_report.render(big_result(60_000)), encoding="utf-8")
    dom, stderr = dump_dom(page, tmp_path)
    selftest = _check(dom, stderr, 2500)
    assert selftest["group_rows"] == 834  # every third driver is a virtio one


def test_errors_reach_the_page(tmp_path: Path) -> None:
    """The error trap works, so an empty #js-errors above means no error."""
    page = tmp_path / "broken.html"
    text = html_report.render(sample_result())
    page.write_text(text.replace("</body>", "<script>undefinedFunction();</script></body>"),
                    encoding="utf-8")
    dom, _ = dump_dom(page, tmp_path, query="")
    assert "undefinedFunction" in _text_of(dom, "js-errors")
