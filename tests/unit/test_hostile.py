"""Hostile inputs (tests/fixtures/hostile.py): big, deep and odd files cost linear work, are
recorded as problems when they exceed the per-file limits, and never end the scan."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from fixtures import hostile

from mmioscan.analysis.scan import _spec
from mmioscan.cfront import extract, iomem, lexer, macros, prefilter, preprocess
from mmioscan.core.model import FileFacts
from mmioscan.core.ruleset import load_rules
from mmioscan.facts import runner
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


class _Searched:
    """Bytes that C code looked at: searches and regex passes run in C, where counting lines
    of Python does not see them."""

    total = 0


class _CountingBytes(bytes):
    """The file's bytes, counting how far `count`, `find` and `rfind` look (up to the match).
    Slices and rewritten copies are plain bytes again; the regex passes over them are
    counted by _CountingPattern."""

    def _span(self, start: Any, end: Any) -> tuple[int, int]:
        size = len(self)
        lo = 0 if start is None else start if start >= 0 else max(0, size + start)
        hi = size if end is None else min(size, end if end >= 0 else size + end)
        return lo, max(lo, hi)

    def count(self, sub: Any, start: Any = None, end: Any = None) -> int:
        lo, hi = self._span(start, end)
        _Searched.total += hi - lo
        return super().count(sub, start, end)

    def find(self, sub: Any, start: Any = None, end: Any = None) -> int:
        lo, hi = self._span(start, end)
        found = super().find(sub, start, end)
        _Searched.total += (found + len(sub) if found >= 0 else hi) - lo
        return found

    def rfind(self, sub: Any, start: Any = None, end: Any = None) -> int:
        lo, hi = self._span(start, end)
        found = super().rfind(sub, start, end)
        _Searched.total += hi - (found if found >= 0 else lo)
        return found


def _counted(matches: Iterator[re.Match[bytes]], pos: int, size: int) -> Iterator[Any]:
    """A regex pass, counted up to the end of the last match its caller took (all of the
    text when the caller reads every match)."""
    last = pos
    exhausted = False
    try:
        for m in matches:
            last = m.end()
            yield m
        exhausted = True
    finally:
        _Searched.total += (size if exhausted else last) - pos


class _CountingPattern:
    """A compiled pattern whose full passes (finditer, sub) are counted."""

    def __init__(self, real: re.Pattern[bytes]) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def finditer(self, text: bytes, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[Any]:
        return _counted(self.real.finditer(text, pos, endpos), pos, min(len(text), endpos))

    def sub(self, repl: Any, text: bytes, count: int = 0) -> bytes:
        _Searched.total += len(text)
        return self.real.sub(repl, text, count)


class _CountingRe:
    """The `re` module as a cfront module sees it, with re.finditer and re.sub counted."""

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)

    @staticmethod
    def finditer(pattern: Any, text: bytes, flags: int = 0) -> Iterator[Any]:
        return _counted(re.finditer(pattern, text, flags), 0, len(text))

    @staticmethod
    def sub(pattern: Any, repl: Any, text: bytes, count: int = 0, flags: int = 0) -> bytes:
        _Searched.total += len(text)
        return re.sub(pattern, repl, text, count=count, flags=flags)


def _count_c_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Count every regex pass and every search of the front end's modules, and the bytes
    the position helper counts newlines in."""
    for module in (extract, iomem, lexer, macros, preprocess, prefilter, runner):
        for name, value in list(vars(module).items()):
            if isinstance(value, re.Pattern):
                monkeypatch.setattr(module, name, _CountingPattern(value))
        if getattr(module, "re", None) is re:
            monkeypatch.setattr(module, "re", _CountingRe())
    real_position = lexer.position

    def position(text: bytes, offset: int, line: int, column: int, start: int = 0
                 ) -> tuple[int, int]:
        _Searched.total += offset - start
        return real_position(text, offset, line, column, start) if start else \
            real_position(text, offset, line, column)

    monkeypatch.setattr(lexer, "position", position)


Generator = Callable[[Path, int], Path]
# Each: (generator, sites of n copies: (calls, derefs)).
_INPUTS: dict[str, tuple[Generator, Callable[[int], tuple[int, int]]]] = {
    "one-line functions": (hostile.many_functions, lambda n: (2 * n, 0)),
    "#if 0 blocks": (hostile.dead_blocks, lambda n: (n, 0)),
    "one big #if 0 block": (hostile.big_dead_block, lambda n: (n, 0)),
    "macro derefs": (hostile.macro_derefs, lambda n: (0, n)),
    "iomem globals": (hostile.many_iomem_globals, lambda n: (0, n)),
    "decayed arguments": (hostile.decayed_arguments, lambda n: (n, 0)),
    "pasting macros": (hostile.pasting_macros, lambda n: (2 * n, 0)),
    "for_each on one line": (hostile.for_each_line, lambda n: (n + 1, 0)),
}


def _work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, count: int
          ) -> tuple[int, int]:
    """(Python lines run, bytes searched in C) to extract the facts of count copies."""
    make, sites = _INPUTS[kind]
    data = _CountingBytes(make(tmp_path / f"{count}", count).read_bytes())
    with monkeypatch.context() as patched:
        _count_c_work(patched)
        _Searched.total = 0
        facts: list[FileFacts] = []
        lines = _lines_executed(lambda: facts.append(facts_for_bytes("x.c", data)))
    got = facts[0]
    assert not got.problems, got.problems
    assert (len(got.calls), len(got.derefs)) == sites(count)  # nothing lost on the way
    return lines, _Searched.total


@pytest.mark.parametrize("kind", sorted(_INPUTS))
def test_per_file_work_is_linear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 worker: None, kind: str) -> None:
    """4x the input costs about 4x the work, not 16x: no stage looks at every declaration per
    use (7,000 one-line functions each declaring `p` took 4.9 s, 28,000 took 61 s), counts
    lines from the start of the file per site, or searches the file once per name."""
    small_lines, small_bytes = _work(tmp_path, monkeypatch, kind, 250)
    large_lines, large_bytes = _work(tmp_path, monkeypatch, kind, 1000)
    assert large_lines < 5 * small_lines, (small_lines, large_lines)
    assert large_bytes < 5 * max(small_bytes, 10_000), (small_bytes, large_bytes)
