"""Writing a rendered output to stdout or a file: the one place bytes leave the program."""

from __future__ import annotations

import sys
from pathlib import Path


def write_output(text: str, output: Path | None) -> None:
    """Write text to `output`, or stdout when None; OSError is the caller's to report.

    surrogateescape: a path that is not UTF-8 on disk is written back as its own bytes."""
    data = text.encode("utf-8", "surrogateescape")
    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    output.write_bytes(data)
