"""Hostile inputs (tests/fixtures/hostile.py): big, deep and odd files cost linear work, are
recorded as problems when they exceed the per-file limits, and never end the scan."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from fixtures import hostile

from mmioscan.analysis.gather import extract_spec
from mmioscan.cfront import extract, iomem, lexer, macros, pasted, prefilter, preprocess
from mmioscan.core.model import FileFacts
from mmioscan.core.ruleset import load_rules
from mmioscan.facts import runner
from mmioscan.facts.runner import _init_worker, facts_for_bytes

from .helpers import run_cli

REPO = Path(__file__).resolve().parents[2]
FRONT_END = str(REPO / "mmioscan")


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
    _init_worker(extract_spec(load_rules()))


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
    for module in (extract, iomem, lexer, macros, pasted, preprocess, prefilter, runner):
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
    "RAM-backed locals": (hostile.ram_backed_locals, lambda n: (2 * n, 0)),
    "pasting macros": (hostile.pasting_macros, lambda n: (2 * n, 0)),
    "pasted definitions": (hostile.pasted_definitions, lambda n: (n, 0)),
    "for_each on one line": (hostile.for_each_line, lambda n: (n + 1, 0)),
    # readl, two request_irq, readx_poll_timeout and its op rd<i>
    "calls through fields": (hostile.field_calls, lambda n: (5 * n, 0)),
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


# -- per-file limits: a recorded problem, the scan goes on ----------------------------------


def _scan(tmp_path: Path, folder: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "out.json"
    code = run_cli(["scan", str(folder), "--format", "json", "-o", str(out), "--no-cache",
                    "--no-progress", "--jobs", "1", *extra])
    assert code == 0
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def _problems(data: dict[str, Any], path: str) -> list[str]:
    return [p["message"] for p in data["problems"] if p["path"] == path]


def _accessors(data: dict[str, Any], path: str) -> list[str]:
    return [s["accessor"] for s in data["sites"] if s["path"] == path]


def test_oversize_file_is_a_problem_and_the_scan_goes_on(tmp_path: Path) -> None:
    """A 9 MB generated file (over the 8 MB parse limit) is not parsed: parsing it would cost
    about 12 s and 1 GB in one worker. The other files' sites are still found."""
    folder = tmp_path / "src"
    hostile.good_file(folder)
    hostile.huge_file(folder, 9 * 1024 * 1024)
    data = _scan(tmp_path, folder)
    size = (folder / "huge.c").stat().st_size
    assert _problems(data, "huge.c") == [
        f"too large: {size:,} bytes (limit {8 * 1024 * 1024:,}): not parsed"]
    assert _accessors(data, "huge.c") == []
    assert _accessors(data, "good.c") == ["readl"]


def test_file_over_the_read_limit_is_not_read(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "src"
    hostile.good_file(folder)
    hostile.huge_file(folder, 200_000)
    monkeypatch.setattr(runner, "LIMITS", runner.Limits(max_read_bytes=100_000))
    data = _scan(tmp_path, folder)
    size = (folder / "huge.c").stat().st_size
    assert _problems(data, "huge.c") == [f"too large: {size:,} bytes (limit 100,000): not read"]
    assert _accessors(data, "good.c") == ["readl"]


def test_file_over_the_time_budget_is_a_problem(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget is CPU time of the extractor; made tiny, the 4,000-function file (a few
    tenths of a second) runs out, the small file (a millisecond) does not."""
    folder = tmp_path / "src"
    hostile.good_file(folder)
    hostile.many_functions(folder, 4000)
    monkeypatch.setattr(runner, "LIMITS", runner.Limits(max_seconds=0.05))
    data = _scan(tmp_path, folder)
    assert _problems(data, "many.c") == ["took more than 0.05 s of CPU time: not parsed"]
    assert _accessors(data, "many.c") == []
    assert _accessors(data, "good.c") == ["readl"]


# -- nesting deeper than the front end handles ----------------------------------------------


def test_nesting_too_deep_is_a_problem_not_a_silent_loss(tmp_path: Path) -> None:
    """tree-sitter's queries drop captures below about 65,000 levels: a `readl` inside
    100,000 nested `{` or parentheses, or under 70,000 chained `+`, was silently lost.
    Deep but not too deep still works."""
    folder = tmp_path / "src"
    hostile.good_file(folder)
    hostile.deep_braces(folder, 100_000)
    hostile.deep_parens(folder, 100_000)
    (folder / "chain.c").write_bytes(b"u32 chain(void __iomem *p)\n{\n\treturn readl(p)"
                                     + b" + 1" * 70_000 + b";\n}\n")
    hostile.deep_braces(folder, 5_000, name="deep5000.c")
    data = _scan(tmp_path, folder)
    for name in ("deep.c", "parens.c", "chain.c"):
        assert _problems(data, name) == ["nesting deeper than 10,000 levels: not parsed"], name
        assert _accessors(data, name) == []
    assert _accessors(data, "deep5000.c") == ["readl"]
    assert _problems(data, "deep5000.c") == []
    assert _accessors(data, "good.c") == ["readl"]


def test_deep_nesting_in_an_if0_block_is_a_problem(tmp_path: Path) -> None:
    """Dereferences in `#if 0` blocks come from a second parse with the blocks kept: that
    tree is checked too."""
    folder = tmp_path / "src"
    hostile.good_file(folder)
    (folder / "dead.c").write_bytes(
        b"static u32 __iomem *q;\n#if 0\nvoid f(void)\n{\n" + b"{" * 100_000 + b" *q = 1; "
        + b"}" * 100_000 + b"\n}\n#endif\nvoid g(void) { *q = 2; }\n")
    data = _scan(tmp_path, folder)
    assert _problems(data, "dead.c") == ["nesting deeper than 10,000 levels: not parsed"]
    assert _accessors(data, "good.c") == ["readl"]


# -- --jobs: capped, and no worker outlives the scan -----------------------------------------


class _FakePool:
    """Stands for multiprocessing's Pool: records its size, runs the work in this process."""

    sizes: list[int] = []

    def __init__(self, processes: int, initializer: Callable[..., None],
                 initargs: tuple[Any, ...]) -> None:
        _FakePool.sizes.append(processes)
        _init_worker(initargs[0])  # not the pool initializer: it ties a worker to its parent

    def imap_unordered(self, func: Callable[[Any], Any], jobs: list[Any],
                       chunksize: int = 1) -> Iterator[Any]:
        return map(func, jobs)

    def close(self) -> None:
        pass

    def join(self) -> None:
        pass


class _FakeContext:
    Pool = _FakePool


def test_pool_is_capped_by_cores_and_work(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """-j 1000 started ~830 spawn workers on e1000e and ran out of memory: the pool is at
    most the usable cores and the chunks of work. The odd files of the folder are problems
    on the pool path as well."""
    folder = tmp_path / "src"
    hostile.many_small_files(folder, 40)
    hostile.binary_file(folder)
    hostile.non_utf8_file(folder)
    hostile.long_line(folder, 1_000_000)
    hostile.fifo(folder)
    _FakePool.sizes = []
    monkeypatch.setattr(runner.multiprocessing, "get_context", lambda method: _FakeContext)
    data = _scan_jobs(tmp_path, folder, "1000")
    assert _FakePool.sizes == [min(runner.usable_cores(), 6)]  # 45 files: 6 chunks of 8
    assert len(data["sites"]) == 40 + 2  # f0..f39, latin1.c, long.c
    assert _problems(data, "blob.c") == ["binary file (NUL bytes): not scanned"]
    assert _problems(data, "latin1.c") == ["not valid UTF-8 at byte 4: scanned as raw bytes"]
    assert _accessors(data, "long.c") == ["readl"]
    assert _problems(data, "x.c") == ["cannot read: not a regular file"]


def _scan_jobs(tmp_path: Path, folder: Path, jobs: str) -> dict[str, Any]:
    out = tmp_path / "out.json"
    assert run_cli(["scan", str(folder), "--format", "json", "-o", str(out), "--no-cache",
                    "--no-progress", "--jobs", jobs]) == 0
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of a process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the name, in parentheses, may hold spaces
    return fields[0], int(fields[19])


def _alive(pid: int, started: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z" and stat[1] == started  # same process, running


# The scan, with every file's parse replaced by one that never ends (in the workers too: the
# pool pickles the function by name, and each worker imports it from fixtures.hostile).
_STALLED_SCAN = """
import sys
from fixtures import hostile
from mmioscan.cli.main import main
from mmioscan.facts import runner
runner._process = hostile.stalled_parse
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_no_worker_outlives_a_killed_scan(tmp_path: Path) -> None:
    """SIGKILL the scan while its workers parse: every worker goes too, at once. Before, a
    worker went on with its file (the 50 MB one for 600 s at 4.2 GB) and only died when it
    tried to send the result."""
    folder = tmp_path / "src"
    hostile.many_small_files(folder, 40)
    markers = tmp_path / "markers"
    markers.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]),
               **{hostile.MARKER_DIR: str(markers)})
    scan = subprocess.Popen(
        [sys.executable, "-c", _STALLED_SCAN, "scan", str(folder), "--no-cache",
         "--no-progress", "--jobs", "2", "--format", "json", "-o", str(tmp_path / "out.json")],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 60  # a guard against hanging, not a measurement
        while time.monotonic() < deadline and scan.poll() is None and len(workers) < 2:
            for marker in markers.iterdir():
                stat = _proc_stat(int(marker.name))
                if stat is not None:
                    workers[int(marker.name)] = stat[1]
            time.sleep(0.05)
        assert scan.poll() is None, "the scan ended before its workers were seen parsing"
        assert len(workers) == 2, workers
        os.kill(scan.pid, signal.SIGKILL)
        scan.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(p, s) for p, s in workers.items()):
            time.sleep(0.1)
        left = sorted(p for p, s in workers.items() if _alive(p, s))
        assert left == [], f"workers still parsing after the scan was killed: {left}"
    finally:
        if scan.poll() is None:
            scan.kill()
            scan.wait()
        for pid, started in workers.items():  # never leave an orphan behind, even on failure
            if _alive(pid, started):
                os.kill(pid, signal.SIGKILL)
