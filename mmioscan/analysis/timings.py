"""Wall time and peak memory per stage, for --timings and bench/ (never part of the output)."""

from __future__ import annotations

import resource
import time


def peak_rss_bytes() -> int:
    """The peak resident set of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Timings:
    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        # this process's peak resident set at the end of each stage's first lap (the facts
        # stage is lapped again after each caller round): where the memory of a run grows;
        # the worker processes are not counted
        self.peaks: dict[str, int] = {}
        self._start = time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self._start
        self.peaks.setdefault(phase, peak_rss_bytes())
        self._start = now
