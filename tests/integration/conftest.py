"""One whole-tree facts cache per session, for the tests that scan the whole tree
(test_accuracy_real.py: cold, into this cache). test_reports_fresh.py makes its report cold in
a cache of its own, as reports/ is made."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def whole_tree_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("whole-tree-cache")
