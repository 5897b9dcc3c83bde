"""Wall time per stage, for --timings and bench/ (never part of the output)."""

from __future__ import annotations

import time


class Timings:
    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._start = time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = self.phases.get(phase, 0.0) + now - self._start
        self._start = now
