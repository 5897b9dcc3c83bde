"""The collector around an analysis (analysis/heap.py): what the stages keep is frozen out of
the cyclic collector while the analysis runs, and given back when it returns."""

from __future__ import annotations

import gc
from pathlib import Path

from mmioscan.analysis.heap import release, settle

from .helpers import TREE, scan_json


def test_settle_collects_the_cycles_made_so_far_then_freezes_the_survivors() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    before = gc.get_freeze_count()
    kept = Node()
    Node()  # a cycle nothing refers to: garbage for the collector
    try:
        settle()
        assert gc.get_freeze_count() > before
        assert kept.me is kept
        assert not any(type(o) is Node and o is not kept for o in gc.get_objects())
    finally:
        release()
    assert gc.get_freeze_count() == 0


def test_an_analysis_leaves_nothing_frozen(tmp_path: Path) -> None:
    """run() settles after its stages and releases on return: a process running many
    analyses (the gate's two, the test suite) keeps no object out of the collector."""
    data = scan_json(tmp_path, TREE)
    assert data["sites"]
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()
