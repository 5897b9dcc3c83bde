"""Reading the user's TOML and JSON files (rules, policy, baseline, triage): one function per
format, and every way such a file can be unusable becomes the caller's input error.

Besides a syntax error, a file can hold what the parsers refuse by raising something else: a
number of more digits than Python converts (ValueError, sys.get_int_max_str_digits()), nesting
deeper than the parser recurses (RecursionError), bytes that are not UTF-8. Each is one line
naming the file, never a traceback.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from mmioscan.core.fileio import read_input


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    message = " ".join(str(exc).split())
    if "integer string conversion" in message:
        return f"a number of more than {sys.get_int_max_str_digits():,} digits"
    return message


def _read(path: Path, error: type[Exception]) -> bytes:
    try:
        return read_input(path)  # regular files only: a FIFO never blocks the reader
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_toml(path: Path, error: type[Exception], what: str = "valid TOML"
              ) -> tuple[dict[str, Any], bytes]:
    """A TOML file's table and raw bytes; `error("PATH: not WHAT (why)")` when unusable."""
    raw = _read(path, error)
    try:
        return tomllib.loads(raw.decode("utf-8")), raw
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError, UnicodeDecodeError too
        raise error(f"{path}: not {what} ({_reason(exc)})") from None


def read_json(path: Path, error: type[Exception], what: str = "valid JSON"
              ) -> tuple[Any, bytes]:
    """A JSON file's value and raw bytes; `error("PATH: not WHAT (why)")` when unusable."""
    raw = _read(path, error)
    try:
        return json.loads(raw.decode("utf-8")), raw
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError too
        raise error(f"{path}: not {what} ({_reason(exc)})") from None
