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

from mmioscan.cfront.preprocess import inactive_ranges

_TOKEN_RE = re.compile(r"\s*(?:(\|\||&&|[()!])|([A-Za-z_]\w*)|(\d+)[uUlL]*|(\S))", re.ASCII)
# Real conditions have a few dozen tokens; a longer one is not decided (the parser copies the
# rest of the list at each operator, and nests one call per parenthesis).
_MAX_TOKENS = 256
_COMMENT_RE = re.compile(r"/\*.*?\*/|//.*")
_MACROS = {"IS_ENABLED": ("y", "m"), "IS_BUILTIN": ("y",), "IS_MODULE": ("m",),
           "IS_REACHABLE": ("y", "m")}

Tri = bool | None


class _Unknown(Exception):
    """The condition uses something a .config does not decide."""


class ConfigConditions:
    """Evaluates directives for preprocess.inactive_ranges under one .config."""

    def __init__(self, config: Mapping[str, str]) -> None:
        self.config = config

    def __call__(self, word: bytes, text: bytes) -> Tri:
        cond = _COMMENT_RE.sub(" ", text.decode("utf-8", "replace")).strip()
        if word in (b"ifdef", b"ifndef"):
            value = self._defined(cond)
            return value if word == b"ifdef" or value is None else not value
        if word not in (b"if", b"elif"):
            return None
        try:
            tokens = _tokens(cond)
            if len(tokens) > _MAX_TOKENS:
                return None
            value, rest = self._or(tokens)
        except (_Unknown, IndexError, RecursionError):
            return None
        return value if not rest else None

    def dead_lines(self, text: str) -> list[tuple[int, int]]:
        """(first, last) 1-based line ranges that this config does not compile."""
        data = text.encode("utf-8", "surrogateescape")
        spans = []
        for r in inactive_ranges(data, self):
            first = data.count(b"\n", 0, r.start) + 1
            spans.append((first, first + data.count(b"\n", r.start, r.end)))
        return spans

    # -- values ---------------------------------------------------------------------------

    def _defined(self, name: str) -> Tri:
        if not name.startswith("CONFIG_") or not re.fullmatch(r"\w+", name):
            return None
        if name.endswith("_MODULE") and self.config.get(name[: -len("_MODULE")]) == "m":
            return True
        value = self.config.get(name)
        return value is not None and value not in ("n", "m")

    def _state(self, name: str) -> str:
        if not name.startswith("CONFIG_"):
            raise _Unknown(name)
        return self.config.get(name, "n")

    # -- a small recursive-descent parser over ||, &&, !, (), defined, IS_*() -------------

    def _or(self, toks: list[str]) -> tuple[Tri, list[str]]:
        value, toks = self._and(toks)
        while toks and toks[0] == "||":
            right, toks = self._and(toks[1:])
            value = True if value is True or right is True else (
                None if value is None or right is None else False)
        return value, toks

    def _and(self, toks: list[str]) -> tuple[Tri, list[str]]:
        value, toks = self._unary(toks)
        while toks and toks[0] == "&&":
            right, toks = self._unary(toks[1:])
            value = False if value is False or right is False else (
                None if value is None or right is None else True)
        return value, toks

    def _unary(self, toks: list[str]) -> tuple[Tri, list[str]]:
        if toks[0] == "!":
            value, toks = self._unary(toks[1:])
            return (None if value is None else not value), toks
        if toks[0] == "(":
            value, toks = self._or(toks[1:])
            if not toks or toks[0] != ")":
                raise _Unknown("unbalanced")
            return value, toks[1:]
        return self._primary(toks)

    def _primary(self, toks: list[str]) -> tuple[Tri, list[str]]:
        head = toks[0]
        if head == "defined":
            if toks[1] == "(":
                if toks[3] != ")":
                    raise _Unknown("defined")
                return self._defined(toks[2]), toks[4:]
            return self._defined(toks[1]), toks[2:]
        if head in _MACROS and toks[1] == "(" and toks[3] == ")":
            return self._state(toks[2]) in _MACROS[head], toks[4:]
        if head.isdigit():
            return head.strip("0") != "", toks[1:]  # no int(): it refuses 4300+ digits
        if head.startswith("CONFIG_"):
            state = self._state(head)
            if state in ("y", "m", "n"):
                return state == "y", toks[1:]  # =m defines CONFIG_X_MODULE, not CONFIG_X
        raise _Unknown(head)


def _tokens(cond: str) -> list[str]:
    tokens = []
    for m in _TOKEN_RE.finditer(cond):
        if m.group(4) is not None:
            raise _Unknown(m.group(4))  # comparisons, arithmetic: not decided by the config
        tokens.append(m.group(1) or m.group(2) or m.group(3))
    return tokens
