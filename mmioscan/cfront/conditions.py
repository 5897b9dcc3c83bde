"""One evaluator for preprocessor conditions (`#if`, `#elif`), three-valued: 1, 0 or None.

Two users read the same grammar (`||`, `&&`, `!`, `()`, comparisons, numbers, `defined(X)`,
`IS_ENABLED(X)` and friends) under different knowledge, so the knowledge is an
`Environment` and the parsing is done once here:
- the TDX model (platforms/x86/) reads arch/x86 headers as an x86_64 TD build sees them;
- kernel/ifconfig.py decides `#ifdef CONFIG_FOO` blocks under a user's .config.

None means "cannot be known here": the caller keeps the branch (the worst access wins, or the
code counts as built). An environment may also refuse a whole condition (raise Unknown),
which makes it None however the rest would have come out.
"""

from __future__ import annotations

import re
from typing import Protocol

Value = int | None

# Tokens of a condition; anything else makes the whole condition unknown.
_TOKEN = re.compile(r"\s*(\|\||&&|==|!=|>=|<=|[<>!()]|\d+[uUlL]*|[A-Za-z_]\w*)", re.ASCII)
_COMPARISONS = frozenset({"==", "!=", ">=", "<=", "<", ">"})
# `defined` and the kconfig.h macros take one name, with or without parentheses.
_NAME_OPERATORS = frozenset({"defined", "IS_ENABLED", "IS_BUILTIN", "IS_MODULE",
                             "IS_REACHABLE"})
_MAX_TOKENS = 1_000  # real conditions have a few dozen tokens: a longer one is undecided
_MAX_DIGITS = 40  # a literal longer than this is not a config value
_HUGE = 10 ** _MAX_DIGITS


class Unknown(Exception):
    """The environment cannot decide this condition at all."""


class Environment(Protocol):
    comparisons: bool  # whether comparisons are evaluated (else the condition is unknown)

    def defined(self, name: str) -> Value: ...

    def operator(self, op: str, name: str) -> Value: ...  # IS_ENABLED(name), ...

    def symbol(self, name: str) -> Value: ...  # a bare identifier's value


def tokens(expr: str) -> list[str] | None:
    """The tokens of a condition, or None when it holds something we do not read."""
    out: list[str] = []
    pos, expr = 0, expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None or len(out) >= _MAX_TOKENS:
            return None
        out.append(m.group(1))
        pos = m.end()
    return out


def evaluate(expr: str, env: Environment) -> Value:
    """The value of a condition under env: 1, 0, or None when it cannot be known."""
    toks = tokens(expr)
    if toks is None or not toks:
        return None
    if not env.comparisons and any(t in _COMPARISONS for t in toks):
        return None
    parser = _Parser(toks, env)
    try:
        value = parser.disjunction()
    except (Unknown, IndexError, RecursionError, ValueError):
        return None
    return value if parser.i == len(toks) else None


class _Parser:
    """Recursive descent over ||, &&, comparisons, !, (), name operators and primaries."""

    def __init__(self, toks: list[str], env: Environment) -> None:
        self.toks, self.env, self.i = toks, env, 0

    def _peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _next(self) -> str:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def disjunction(self) -> Value:
        v = self._conjunction()
        while self._peek() == "||":
            self.i += 1
            w = self._conjunction()
            v = 1 if v or w else (None if v is None or w is None else 0)
        return v

    def _conjunction(self) -> Value:
        v = self._comparison()
        while self._peek() == "&&":
            self.i += 1
            w = self._comparison()
            v = 0 if v == 0 or w == 0 else (None if v is None or w is None else 1)
        return v

    def _comparison(self) -> Value:
        v = self._unary()
        op = self._peek()
        if op in _COMPARISONS:
            self.i += 1
            w = self._unary()
            if v is None or w is None:
                return None
            return int({"==": v == w, "!=": v != w, ">=": v >= w, "<=": v <= w,
                        "<": v < w, ">": v > w}[op])
        return v

    def _unary(self) -> Value:
        tok = self._next()
        if tok == "!":
            v = self._unary()
            return None if v is None else int(not v)
        if tok == "(":
            v = self.disjunction()
            if self._next() != ")":
                raise Unknown("unbalanced")
            return v
        if tok[0].isdigit():
            digits = tok.rstrip("uUlL")
            if not digits.isdigit():
                raise Unknown(tok)
            if len(digits) > _MAX_DIGITS:  # int() refuses 4,300+ digits; truth is enough
                return _HUGE if digits.strip("0") else 0
            return int(digits)
        if tok in _NAME_OPERATORS:
            return self._name_operator(tok)
        return self.env.symbol(tok)

    def _name_operator(self, op: str) -> Value:
        paren = self._peek() == "("
        if paren:
            self.i += 1
        name = self._next()
        if not (name[0].isalpha() or name[0] == "_"):
            raise Unknown(name)
        if paren and self._next() != ")":
            raise Unknown(op)
        return self.env.defined(name) if op == "defined" else self.env.operator(op, name)
