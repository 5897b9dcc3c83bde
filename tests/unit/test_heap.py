"""The collector around an analysis (analysis/heap.py): what the stages keep is frozen out of
the cyclic collector while the analysis runs, and given back when it returns."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from mmioscan.analysis.heap import keep, release, settle

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


def test_keep_freezes_without_a_pass_and_release_collects_what_it_kept() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    was = gc.isenabled()
    gc.disable()
    try:
        garbage = weakref.ref(Node())  # a cycle nothing refers to, made before keep
        keep()
        assert gc.get_freeze_count() > 0
        gc.collect()
        assert garbage() is not None  # frozen: no pass looks at it
    finally:
        release(was)
    gc.collect()
    assert gc.get_freeze_count() == 0
    assert garbage() is None  # given back, and collected


def test_an_analysis_leaves_nothing_frozen(tmp_path: Path) -> None:
    """run() settles after its stages and releases on return: a process running many
    analyses (the gate's two, the test suite) keeps no object out of the collector."""
    data = scan_json(tmp_path, TREE)
    assert data["sites"]
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()
