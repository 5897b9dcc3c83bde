"""Reading a kernel .config: CONFIG_ symbols and their values (y, m, strings, numbers)."""


from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from mmioscan.core.fileio import read_input


class ConfigError(Exception):
    """A .config file is unusable; the message is one line naming the file (and line)."""


_CONFIG_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_CONFIG_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


def load_config(path: Path) -> dict[str, str]:
    """Read a kernel .config: "CONFIG_X" -> "y", "m", "n" (not set), or the raw value."""
    try:
        raw = read_input(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    # Lines end at \n, \r\n or \r: str.splitlines() also breaks at \x0b, \x0c, \x1c-\x1e,
    # \x85, U+2028 and U+2029, which may stand in a string value.
    lines = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if b"\0" in raw:
        number = next(i for i, data in enumerate(lines, 1) if b"\0" in data)
        raise ConfigError(f"{path}:{number}: binary file (NUL byte), not a .config")
    values: dict[str, str] = {}
    for number, data in enumerate(lines, 1):
        try:
            line = data.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}:{number}: not UTF-8 (byte {exc.start + 1} of the line)"
                              ) from None
        unset = _CONFIG_UNSET.match(line)
        if unset:
            values[unset[1]] = "n"
        elif line.startswith("#") or not line:
            continue
        else:
            setting = _CONFIG_SET.match(line)
            if not setting:
                shown = line if len(line) <= 60 else line[:57] + "..."
                raise ConfigError(f"{path}:{number}: not a .config line: {shown!r}")
            values[setting[1]] = setting[2]
    if not values:
        raise ConfigError(f"{path}: no CONFIG_ line (empty or not a .config)")
    return values


def enabled(conds: Iterable[str], config: dict[str, str]) -> bool:
    return all(config.get("CONFIG_" + c) in ("y", "m") for c in conds)


