"""Writing a rendered output to stdout or a file: the one place bytes leave the program."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from mmioscan.core.fileio import write_atomic
from mmioscan.core.findings import clean


def target_name(output: Path | None) -> str:
    """How messages name an output: the file, or standard output."""
    return "standard output" if output is None else clean(str(output))


def write_output(text: str, output: Path | None) -> None:
    """Write text to `output` (atomically: see core/fileio.py), or stdout when None; OSError
    is the caller's to report, with `target_name(output)`.

    Bytes of a file name or a line that are not UTF-8 (surrogate escapes in Python) are
    written as `\\xNN` text, the rule of every format (core/findings.py `clean`): the
    renderers apply it themselves, this is the net for a text that still holds one."""
    write_data(encoded(text), output)


def encoded(text: str) -> bytes:
    """The bytes written for a text (write_output)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return clean(text).encode("utf-8")


def write_data(data: bytes, output: Path | None) -> None:
    """write_output for text already encoded."""
    if output is not None:
        write_atomic(output, data)
        return
    try:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except OSError:
        _drop_stdout()
        raise


def _drop_stdout() -> None:
    """After a failed write (a full disk, a closed pipe) point stdout at /dev/null: the
    bytes left in its buffer would fail again when Python flushes it at exit, with a second
    message and exit status 120."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
