"""A one-line progress bar on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, stream: TextIO = sys.stderr, min_interval: float = 0.1) -> None:
        self.stream = stream
        self.min_interval = min_interval
        self._last = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < self.min_interval:
            return
        self._last = now
        width = 30
        filled = width * done // total if total else width
        self.stream.write(f"\rscanning [{'#' * filled}{'.' * (width - filled)}] "
                          f"{done:,}/{total:,} files")
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * 70 + "\r")
            self.stream.flush()
