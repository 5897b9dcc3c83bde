"""The one reader of TOML files (rules, strategies, forms, policy, triage): data and bytes,
or one RuleError line naming the file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from mmioscan.core.fileio import read_input


class RuleError(Exception):
    """A rules file (or a user file read like one) is unusable: one line naming the file."""


def parse_toml(raw: bytes, where: Path | str) -> dict[str, Any]:
    """TOML data of raw bytes; RuleError naming `where` when they are not valid TOML."""
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RuleError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{where}: not valid TOML ({exc})") from None
    except (RecursionError, ValueError) as exc:  # nesting too deep, an integer too long
        raise RuleError(f"{where}: not valid TOML ({type(exc).__name__}: "
                        f"{str(exc)[:80]})") from None


def read_toml(path: Path) -> tuple[dict[str, Any], bytes]:
    """A TOML file's data and raw bytes; RuleError naming the file when unusable."""
    try:
        raw = read_input(path)
    except OSError as exc:
        raise RuleError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_toml(raw, path), raw
