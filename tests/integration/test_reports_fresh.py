"""reports/ cannot go stale: the committed audit is what the current code writes.

One scan of the whole linux-source-6.12 tree under Debian's cloud-amd64 config, TDX and
SEV-SNP side by side (the same as `make report`), into an empty cache of its own (cold, as
reports/ is made: a report warm from test_accuracy_real.py's scan cache once counted 10 more
files with parse errors than the cold one; with the code that counts a pasted text's syntax
errors for its file the two agreed, checked once on the whole tree); the Markdown, the JSON
summary and the HTML report must be byte-identical to the committed files. When this fails
after an intended change, run `make report` and commit the result.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmioscan.cli.main import main
from mmioscan.kernel.kernelsrc import ensure_cloud_config

pytestmark = pytest.mark.integration

REPORTS = Path(__file__).resolve().parents[2] / "reports"
STEM = "linux-6.12-cloud-amd64"
SUFFIXES = (".md", ".summary.json", ".html")


@pytest.fixture(scope="module")
def fresh(kernel_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    args = ["report", str(kernel_tree), "--config", str(ensure_cloud_config()),
            "--cache-dir", str(out / "cache"), "--platform", "all", "--no-progress"]
    for suffix in SUFFIXES:
        args += ["-o", str(out / f"{STEM}{suffix}")]
    assert main(args) == 0
    return out


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_committed_report_matches_the_current_code(fresh: Path, suffix: str) -> None:
    committed = (REPORTS / f"{STEM}{suffix}").read_bytes()
    current = (fresh / f"{STEM}{suffix}").read_bytes()
    assert current == committed, f"reports/{STEM}{suffix} is stale: run `make report`"


def test_html_report_stays_small(fresh: Path) -> None:
    assert (fresh / f"{STEM}.html").stat().st_size < 10 * 1024 * 1024
