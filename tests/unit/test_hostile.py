"""Hostile inputs (tests/fixtures/hostile.py): big, deep and odd files cost linear work, are
recorded as problems when they exceed the per-file limits, and never end the scan."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from fixtures import hostile

from mmioscan.analysis.scan import _spec
from mmioscan.core.ruleset import load_rules
from mmioscan.facts.runner import _init_worker, facts_for_bytes

FRONT_END = str(Path(__file__).resolve().parents[2] / "mmioscan")


def _lines_executed(work: Callable[[], Any]) -> int:
    """Python lines of mmioscan run by work(): a measure of work that does not depend on the
    machine's speed (a loop over every binding per use shows up as n * n lines)."""
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(FRONT_END) else None

    sys.settrace(tracer)
    try:
        work()
    finally:
        sys.settrace(None)
    return count


@pytest.fixture(scope="module")
def worker() -> None:
    _init_worker(_spec(load_rules()))


def _extract_work(tmp_path: Path, count: int) -> int:
    path = hostile.many_functions(tmp_path / str(count), count)
    data = path.read_bytes()
    facts: list[Any] = []
    lines = _lines_executed(lambda: facts.append(facts_for_bytes("many.c", data)))
    assert len(facts[0].calls) == 2 * count  # every readl and writel is still found
    return lines


def test_one_line_functions_cost_linear_work(tmp_path: Path, worker: None) -> None:
    """Each of n functions declares its own `p`: resolving the uses of `p` must not look at
    every declaration (that was n * n steps: 7,000 functions took 4.9 s, 28,000 took 61 s)."""
    small = _extract_work(tmp_path, 250)
    large = _extract_work(tmp_path, 1000)
    assert large < 5 * small, (small, large)  # 4x the input: about 4x the work, not 16x
