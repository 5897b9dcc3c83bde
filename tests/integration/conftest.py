"""One whole-tree facts cache per session, shared by the tests that scan the whole tree.

test_accuracy_real.py scans the whole tree once (cold, into this cache) and
test_reports_fresh.py writes the published report from the same cache (warm): the facts and
wrapper-caller searches are parsed once, and a cache filled by the code under test is as good
as a fresh one.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def whole_tree_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("whole-tree-cache")
