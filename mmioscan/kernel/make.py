"""Make expansion, as far as Kbuild object lists need it: variables, `$(CONFIG_X)` kept
symbolic, and the functions Makefiles use for object lists (addprefix, patsubst, if, ...)."""


from __future__ import annotations

import glob
import posixpath
import re
from collections.abc import Callable, Iterator
from pathlib import Path

# A `$(CONFIG_X)` reference stays symbolic as \x01<index>\x02 (digits only, so `subst m,y`
# and friends leave it intact); the index points into a table shared by the whole build.
MARK = re.compile("\x01(\\d+)\x02")
_FUNC = re.compile(r"([a-z][a-z-]*)[ \t]")
_UNSUPPORTED = frozenset({"shell", "eval", "info", "warning", "error", "origin", "flavor",
                          "value", "file", "guile", "wordlist", "join"})


class Marks:
    """The symbol table behind the markers."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._index: dict[str, int] = {}

    def mark(self, symbol: str) -> str:
        idx = self._index.get(symbol)
        if idx is None:
            idx = self._index[symbol] = len(self.names)
            self.names.append(symbol)
        return f"\x01{idx}\x02"

    def split(self, text: str) -> tuple[str, tuple[str, ...]]:
        """Text without markers, and the symbols the markers stood for."""
        if "\x01" not in text:
            return text, ()
        syms = tuple(self.names[int(i)] for i in MARK.findall(text))
        return (MARK.sub("", text), syms) if syms else (text, ())


def marks_in(text: str) -> str:
    return "".join(m.group(0) for m in MARK.finditer(text))


def _find_close(s: str, start: int, open_ch: str, close_ch: str) -> int:
    end = s.find(close_ch, start)
    if end >= 0 and s.find(open_ch, start, end) < 0:
        return end  # the usual case: nothing nested
    depth = 1
    for i in range(start, len(s)):
        ch = s[i]
        if ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return i
    return -1


def _split_top(s: str, sep: str) -> list[str]:
    """Split on `sep` outside $(...) and ${...}."""
    parts, depth, last = [], 0, 0
    for i, ch in enumerate(s):
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            parts.append(s[last:i])
            last = i + 1
    parts.append(s[last:])
    return parts


def _pattern_sub(pattern: str, replacement: str, word: str) -> str:
    if "%" not in pattern:
        return replacement if word == pattern else word
    head, tail = pattern.split("%", 1)
    if word.startswith(head) and word.endswith(tail) and len(word) >= len(head) + len(tail):
        stem = word[len(head):len(word) - len(tail)]
        return replacement.replace("%", stem, 1) if "%" in replacement else replacement
    return word


def _pattern_match(pattern: str, word: str) -> bool:
    if "%" not in pattern:
        return word == pattern
    head, tail = pattern.split("%", 1)
    return word.startswith(head) and word.endswith(tail) and len(word) >= len(head) + len(tail)


# Set by kbuild on make's command line, so a Makefile cannot change them; reading every
# `ifeq` branch of the top Makefile would otherwise leave SRCARCH at the last one (sh).
_COMMAND_LINE = frozenset({"srctree", "objtree", "src", "obj", "SRCARCH", "ARCH", "BITS"})


class Make:
    """Variables and expansion for one folder's Makefile (and the files it includes)."""

    def __init__(self, root: Path, folder: str, marks: Marks, arch: str) -> None:
        self.root, self.folder, self.marks = root, folder, marks
        here = folder or "."
        # (value, recursive): recursive values are expanded at each use, as `=` in make.
        self.vars: dict[str, tuple[str, bool]] = {
            "srctree": (".", False), "objtree": (".", False), "src": (here, False),
            "obj": (here, False), "SRCARCH": (arch, False), "ARCH": (arch, False),
            "BITS": ("64", False), "comma": (",", False), "empty": ("", False),
            "space": (" ", False), "pound": ("#", False), "squote": ("'", False),
            "quote": ('"', False)}  # BITS: x86_64, the TDX guest
        self.unsupported: set[str] = set()  # functions met that cannot be evaluated
        # foo -> the keys foo-<markers> assigned so far (`foo-$(CONFIG_X) += ...`)
        self.cond_keys: dict[str, list[str]] = {}

    # -- expansion ------------------------------------------------------------------------

    def expand(self, s: str, depth: int = 0) -> str:
        if "$" not in s:
            return s
        if depth > 40:
            self.unsupported.add("recursion")
            return ""
        out: list[str] = []
        i = 0
        while True:
            j = s.find("$", i)
            if j < 0 or j + 1 >= len(s):
                out.append(s[i:] if j < 0 else s[i:j])
                break
            out.append(s[i:j])
            ch = s[j + 1]
            if ch == "$":
                out.append("$")
                i = j + 2
            elif ch in "({":
                close = _find_close(s, j + 2, ch, ")" if ch == "(" else "}")
                if close < 0:
                    break
                out.append(self._reference(s[j + 2:close], depth))
                i = close + 1
            else:
                out.append(self._variable(ch, depth))
                i = j + 2
        return "".join(out)

    def _reference(self, inner: str, depth: int) -> str:
        m = _FUNC.match(inner)
        if m and (m[1] in _FUNCTIONS or m[1] in _UNSUPPORTED):
            if m[1] in _UNSUPPORTED:
                self.unsupported.add(m[1])
                return ""
            args = _split_top(inner[m.end():].lstrip(" \t"), ",")
            return _FUNCTIONS[m[1]](self, args, depth + 1)
        parts = _split_top(inner, ":") if ":" in inner else [inner]
        name, subst = (parts[0], ":".join(parts[1:])) if len(parts) > 1 else (inner, "")
        value = self._variable(self.expand(name, depth + 1).strip(), depth)
        if subst and "=" in subst and not value.startswith("\x01"):
            old, new = (self.expand(p, depth + 1) for p in subst.split("=", 1))
            old_p = old if "%" in old else "%" + old
            new_p = new if "%" in new else "%" + new
            value = " ".join(_pattern_sub(old_p, new_p, w) for w in value.split())
        return value

    def _variable(self, name: str, depth: int) -> str:
        if name.startswith("CONFIG_"):
            return self.marks.mark(name[len("CONFIG_"):])
        entry = self.vars.get(name)
        value = "" if entry is None else \
            self.expand(entry[0], depth + 1) if entry[1] else entry[0]
        if name.endswith(("-y", "-m")) and name[:-2] in self.cond_keys:
            value = " ".join([value, *self._conditional_words(name[:-2], depth)])
        return value

    def _conditional_words(self, base: str, depth: int) -> Iterator[str]:
        """`$(foo-y)` with `foo-$(CONFIG_X) += a.o` defined: a.o, conditioned on X (what make
        gives when X=y), so `msm-y += $(msm-display-y)` keeps every display object."""
        for key in self.cond_keys[base]:
            entry = self.vars.get(key)
            if entry is None:  # registered by the assignment being expanded right now
                continue
            value, recursive = entry
            marks = key[len(base) + 1:]
            for word in (self.expand(value, depth + 1) if recursive else value).split():
                yield word + marks

    def words(self, arg: str, depth: int) -> list[str]:
        return self.expand(arg, depth).split()

    # -- assignment -----------------------------------------------------------------------

    def assign(self, key: str, op: str, rhs: str) -> tuple[str, bool]:
        """Apply one assignment; returns (value added, recursive) for the list bookkeeping."""
        if key in _COMMAND_LINE:
            return "", False
        old = self.vars.get(key)
        if old is None and key.endswith("\x02"):
            base, _, tail = key.rpartition("-")
            if base and not MARK.sub("", tail):
                self.cond_keys.setdefault(base, []).append(key)
        if op in (":=", "::=", ":::="):
            value = self.expand(rhs)
            self.vars[key] = (value, False)
            return value, False
        if op == "?=":
            if old is None:
                self.vars[key] = (rhs, True)
            return rhs, True
        if op == "+=" and old is not None:
            added = rhs if old[1] else self.expand(rhs)
            self.vars[key] = (f"{old[0]} {added}", old[1])
            return added, old[1]
        if op == "!=":
            self.unsupported.add("shell")
            self.vars[key] = ("", False)
            return "", False
        self.vars[key] = (rhs, True)  # `=`, or `+=` on an undefined variable
        return rhs, True


# -- make functions: (make, raw args, depth) -> text ----------------------------------------


def _fn_subst(mk: Make, args: list[str], depth: int) -> str:
    if len(args) < 3:
        return ""
    old, new = mk.expand(args[0], depth), mk.expand(args[1], depth)
    text = mk.expand(",".join(args[2:]), depth)
    if MARK.search(text) and MARK.search(new):
        # obj-$(subst y,$(CONFIG_A),$(CONFIG_B)): built only when both are; keep both.
        return text + marks_in(new)
    return text.replace(old, new) if old else text


def _fn_patsubst(mk: Make, args: list[str], depth: int) -> str:
    if len(args) < 3:
        return ""
    pat, rep = mk.expand(args[0], depth).strip(), mk.expand(args[1], depth).strip()
    return " ".join(_pattern_sub(pat, rep, w) for w in mk.words(",".join(args[2:]), depth))


def _fn_addprefix(mk: Make, args: list[str], depth: int) -> str:
    if len(args) < 2:
        return ""
    prefix = mk.expand(args[0], depth).strip()
    return " ".join(prefix + w for w in mk.words(",".join(args[1:]), depth))


def _fn_addsuffix(mk: Make, args: list[str], depth: int) -> str:
    if len(args) < 2:
        return ""
    suffix = mk.expand(args[0], depth).strip()
    return " ".join(w + suffix for w in mk.words(",".join(args[1:]), depth))


def _fn_filter(mk: Make, args: list[str], depth: int, keep: bool = True) -> str:
    if len(args) < 2:
        return ""
    pats = mk.words(args[0], depth)
    return " ".join(w for w in mk.words(",".join(args[1:]), depth)
                    if any(_pattern_match(p, w) for p in pats) == keep)


def _fn_if(mk: Make, args: list[str], depth: int) -> str:
    cond = mk.expand(args[0], depth).strip() if args else ""
    then = mk.expand(args[1], depth) if len(args) > 1 else ""
    if MARK.search(cond):
        # Decided by the .config: the then-words carry the condition; the else-words cannot
        # carry "not X", so they count as unconditional (built, to be safe).
        other = mk.expand(",".join(args[2:]), depth) if len(args) > 2 else ""
        return " ".join([*(w + marks_in(cond) for w in then.split()), other])
    if cond:
        return then
    return mk.expand(",".join(args[2:]), depth) if len(args) > 2 else ""


def _fn_or(mk: Make, args: list[str], depth: int) -> str:
    for arg in args:
        value = mk.expand(arg, depth).strip()
        if value:
            return value
    return ""


def _fn_and(mk: Make, args: list[str], depth: int) -> str:
    value = ""
    for arg in args:
        value = mk.expand(arg, depth).strip()
        if not value:
            return ""
    return value


def _fn_foreach(mk: Make, args: list[str], depth: int) -> str:
    if len(args) < 3:
        return ""
    var = mk.expand(args[0], depth).strip()
    saved = mk.vars.get(var)
    out = []
    for word in mk.words(args[1], depth):
        mk.vars[var] = (word, False)
        out.append(mk.expand(",".join(args[2:]), depth))
    if saved is None:
        mk.vars.pop(var, None)
    else:
        mk.vars[var] = saved
    return " ".join(out)


def _fn_call(mk: Make, args: list[str], depth: int) -> str:
    name = mk.expand(args[0], depth).strip() if args else ""
    body = mk.vars.get(name)
    if body is None:  # a kbuild helper (cc-option, ...): not evaluated
        mk.unsupported.add("call " + name)
        return ""
    saved = {str(i): mk.vars.get(str(i)) for i in range(1, len(args))}
    for i, arg in enumerate(args[1:], 1):
        mk.vars[str(i)] = (mk.expand(arg, depth), False)
    try:
        return mk.expand(body[0], depth)
    finally:
        for key, old in saved.items():
            if old is None:
                mk.vars.pop(key, None)
            else:
                mk.vars[key] = old


def _fn_wildcard(mk: Make, args: list[str], depth: int) -> str:
    found: list[str] = []
    for pattern in mk.words(",".join(args), depth):
        hits = glob.glob(pattern, root_dir=mk.root)
        found.extend(sorted(posixpath.normpath(h) for h in hits))
    return " ".join(found)


def _words_fn(fn: Callable[[list[str]], list[str]]) -> Callable[[Make, list[str], int], str]:
    def apply(mk: Make, args: list[str], depth: int) -> str:
        return " ".join(fn(mk.words(",".join(args), depth)))
    return apply


def _fn_findstring(mk: Make, args: list[str], depth: int) -> str:
    if len(args) < 2:
        return ""
    needle = mk.expand(args[0], depth)
    return needle if needle in mk.expand(",".join(args[1:]), depth) else ""


def _fn_word(mk: Make, args: list[str], depth: int) -> str:
    try:
        n = int(mk.expand(args[0], depth).strip())
    except (ValueError, IndexError):
        return ""
    words = mk.words(",".join(args[1:]), depth)
    return words[n - 1] if 0 < n <= len(words) else ""


def _basename(word: str) -> str:
    base, dot, ext = word.rpartition(".")
    return base if dot and "/" not in ext else word


_FUNCTIONS: dict[str, Callable[[Make, list[str], int], str]] = {
    "subst": _fn_subst, "patsubst": _fn_patsubst, "addprefix": _fn_addprefix,
    "addsuffix": _fn_addsuffix, "filter": _fn_filter,
    "filter-out": lambda mk, a, d: _fn_filter(mk, a, d, keep=False),
    "if": _fn_if, "or": _fn_or, "and": _fn_and, "foreach": _fn_foreach, "call": _fn_call,
    "wildcard": _fn_wildcard, "findstring": _fn_findstring, "word": _fn_word,
    "strip": _words_fn(lambda w: w), "sort": _words_fn(lambda w: sorted(set(w))),
    "firstword": _words_fn(lambda w: w[:1]), "lastword": _words_fn(lambda w: w[-1:]),
    "words": _words_fn(lambda w: [str(len(w))]),
    "notdir": _words_fn(lambda w: [posixpath.basename(x) for x in w]),
    "dir": _words_fn(lambda w: [posixpath.dirname(x) + "/" if "/" in x else "./" for x in w]),
    "basename": _words_fn(lambda w: [_basename(x) for x in w]),
    "suffix": _words_fn(lambda w: [x[len(_basename(x)):] for x in w if _basename(x) != x]),
    "abspath": _words_fn(lambda w: [posixpath.normpath(x) for x in w]),
    "realpath": _words_fn(lambda w: [posixpath.normpath(x) for x in w]),
}


