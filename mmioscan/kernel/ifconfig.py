"""`#if` conditions on CONFIG_ symbols, evaluated under a .config.

With `--config`, a site inside `#ifdef CONFIG_FOO` where FOO is not set is not built even when
its file is (FlashPoint.c is built into BusLogic only with SCSI_FLASHPOINT). The evaluator is
three-valued: True, False, or None when the condition depends on anything but CONFIG_ symbols
(then the branch counts as built, as without a config).

C semantics, as include/linux/kconfig.h defines them: `CONFIG_FOO` is defined (as 1) for =y
only; =m defines `CONFIG_FOO_MODULE` instead; IS_ENABLED is y or m, IS_BUILTIN y, IS_MODULE m;
IS_REACHABLE is taken as IS_ENABLED (it depends on the including module).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from mmioscan.cfront.conditions import Unknown, evaluate
from mmioscan.cfront.preprocess import inactive_ranges

_COMMENT_RE = re.compile(r"/\*.*?\*/|//.*")
_MACROS = {"IS_ENABLED": ("y", "m"), "IS_BUILTIN": ("y",), "IS_MODULE": ("m",),
           "IS_REACHABLE": ("y", "m")}

Tri = bool | None


class _ConfigEnvironment:
    """What a .config decides: CONFIG_ symbols only; anything else makes the condition
    unknown (comparisons and other identifiers are not decided by the config)."""

    comparisons = False

    def __init__(self, config: Mapping[str, str]) -> None:
        self.config = config

    def defined(self, name: str) -> int | None:
        value = defined_in(self.config, name)
        return None if value is None else int(value)

    def operator(self, op: str, name: str) -> int | None:
        return int(self._state(name) in _MACROS[op])

    def symbol(self, name: str) -> int | None:
        state = self._state(name)
        if state not in ("y", "m", "n"):
            raise Unknown(name)
        return int(state == "y")  # =m defines CONFIG_X_MODULE, not CONFIG_X

    def _state(self, name: str) -> str:
        if not name.startswith("CONFIG_"):
            raise Unknown(name)
        return self.config.get(name, "n")


def defined_in(config: Mapping[str, str], name: str) -> Tri:
    """Whether `defined(name)` holds under config; None for a name it does not decide."""
    if not name.startswith("CONFIG_") or not re.fullmatch(r"\w+", name):
        return None
    if name.endswith("_MODULE") and config.get(name[: -len("_MODULE")]) == "m":
        return True
    value = config.get(name)
    return value is not None and value not in ("n", "m")


class ConfigConditions:
    """Evaluates directives for preprocess.inactive_ranges under one .config."""

    def __init__(self, config: Mapping[str, str]) -> None:
        self.config = config
        self._env = _ConfigEnvironment(config)

    def __call__(self, word: bytes, text: bytes) -> Tri:
        cond = _COMMENT_RE.sub(" ", text.decode("utf-8", "replace")).strip()
        if word in (b"ifdef", b"ifndef"):
            value = defined_in(self.config, cond)
            return value if word == b"ifdef" or value is None else not value
        if word not in (b"if", b"elif"):
            return None
        result = evaluate(cond, self._env)
        return None if result is None else bool(result)

    def dead_lines(self, text: str) -> list[tuple[int, int]]:
        """(first, last) 1-based line ranges that this config does not compile."""
        data = text.encode("utf-8", "surrogateescape")
        spans = []
        for r in inactive_ranges(data, self):
            first = data.count(b"\n", 0, r.start) + 1
            spans.append((first, first + data.count(b"\n", r.start, r.end)))
        return spans
