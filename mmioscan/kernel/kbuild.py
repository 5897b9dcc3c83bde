"""Map each source file of a kernel tree to its driver, Kconfig symbol, group and build state.

Kbuild is read the way make reads it, only as far as module membership needs:

- The descent starts at the root Kbuild (`obj-y += drivers/`, `obj-$(CONFIG_NET) += net/`)
  plus the `core-y`/`drivers-y`/`libs-y` folders of the root Makefile and arch/x86/Makefile.
  Each folder is read from its Kbuild file, else its Makefile, as scripts/Makefile.build does.
- `obj-$(CONFIG_X) += foo.o` makes foo.c module foo under X; composite objects (`foo-y`,
  `foo-objs`, `foo-$(CONFIG_Y)`) make every part a file of module foo; `obj-$(CONFIG_X) +=
  sub/` makes every condition on the way down a condition of the files below.
- Variables, `include`, and the make functions Makefiles use for object lists (addprefix,
  patsubst, if, foreach, ...) are expanded. `$(CONFIG_X)` is kept symbolic (a marker), so one
  parse serves every .config. `ifeq`/`ifdef` blocks are read as if always true: both branches
  count, which can only make a file look built when it is not (the safe side for an audit).

Groups come from Kconfig facts (mmioscan/kconfig.py) and rules/groups.toml: see `_Grouper`.
"""

from __future__ import annotations

import glob
import hashlib
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from mmioscan.core.catalogue import RuleError, read_toml
from mmioscan.core.model import DriverInfo, Group, Problem
from mmioscan.core.rules_path import rules_dir
from mmioscan.kernel.kconfig import (
    Expr,
    KconfigFacts,
    KconfigLoadError,
    expr_symbols,
    expr_text,
    load_kconfig_facts,
)

# ======================================================================= .config files


class ConfigError(Exception):
    """A .config file is unusable; the message is one line naming the file (and line)."""


_CONFIG_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_CONFIG_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


def load_config(path: Path) -> dict[str, str]:
    """Read a kernel .config: "CONFIG_X" -> "y", "m", "n" (not set), or the raw value."""
    try:
        raw = path.read_bytes()
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


def _enabled(conds: Iterable[str], config: dict[str, str]) -> bool:
    return all(config.get("CONFIG_" + c) in ("y", "m") for c in conds)


# ======================================================================= group rules


@dataclass(frozen=True, slots=True)
class GroupRule:
    name: Literal["virtio", "x86"]
    symbols: frozenset[str]  # a file needing one of these (through Kconfig) is in the group
    selects: frozenset[str]  # a file whose symbol selects one of these is in the group
    paths: tuple[str, ...]  # path prefixes
    arch_only: bool  # symbols defined only under arch/<arch>/ count as group symbols


@dataclass(frozen=True)
class GroupRules:
    """rules/groups.toml: groups in decision order, then the Kconfig evaluation settings."""

    groups: tuple[GroupRule, ...]
    arch: str
    assume_off: frozenset[str]  # symbols off in any real build (COMPILE_TEST)
    depth: int  # how many levels of dependency symbols are followed
    digest: str
    # Folders built for every image by explicit `$(MAKE) $(build)=` recipes, not obj-y.
    always_built: tuple[str, ...] = ()


def _strings(table: dict[str, object], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"{where}: {key} must be a list of strings")
    return tuple(value)


def _group_rule(entry: object, where: str) -> GroupRule:
    if not isinstance(entry, dict):
        raise RuleError(f"{where}: expected a table")
    name = entry.get("name")
    if name not in ("virtio", "x86"):
        raise RuleError(f"{where}: name must be virtio or x86, not {name!r}")
    arch_only = entry.get("arch_only", False)
    if not isinstance(arch_only, bool):
        raise RuleError(f"{where}: arch_only must be true or false")
    return GroupRule(name, frozenset(_strings(entry, "symbols", where)),
                     frozenset(_strings(entry, "selects", where)),
                     _strings(entry, "paths", where), arch_only)


def load_group_rules(path: Path | None = None) -> GroupRules:
    """Read and validate rules/groups.toml; RuleError on any problem."""
    path = path or rules_dir() / "groups.toml"
    data, raw = read_toml(path)
    entries = data.get("group")
    if not isinstance(entries, list) or not entries:
        raise RuleError(f"{path.name}: no [[group]] entries")
    groups = tuple(_group_rule(e, f"{path.name}: group #{i + 1}") for i, e in enumerate(entries))
    if len({g.name for g in groups}) != len(groups):
        raise RuleError(f"{path.name}: a group is listed twice")
    kconfig = data.get("kconfig", {})
    if not isinstance(kconfig, dict):
        raise RuleError(f"{path.name}: [kconfig] must be a table")
    arch, depth = kconfig.get("arch", "x86"), kconfig.get("depth", 2)
    if not isinstance(arch, str) or not re.fullmatch(r"[a-z0-9_]+", arch):
        raise RuleError(f"{path.name}: kconfig.arch must be an architecture folder name")
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= 5:
        raise RuleError(f"{path.name}: kconfig.depth must be an integer from 0 to 5")
    assume_off = frozenset(_strings(kconfig, "assume_off", f"{path.name}: [kconfig]"))
    kbuild = data.get("kbuild", {})
    if not isinstance(kbuild, dict):
        raise RuleError(f"{path.name}: [kbuild] must be a table")
    always = tuple(f.strip("/") for f in _strings(kbuild, "always_built", f"{path.name}: [kbuild]"))
    return GroupRules(groups, arch, assume_off, depth, hashlib.sha1(raw).hexdigest()[:16],
                      always)


# ======================================================================= make expansion

# A `$(CONFIG_X)` reference stays symbolic as \x01<index>\x02 (digits only, so `subst m,y`
# and friends leave it intact); the index points into a table shared by the whole build.
_MARK = re.compile("\x01(\\d+)\x02")
_FUNC = re.compile(r"([a-z][a-z-]*)[ \t]")
_UNSUPPORTED = frozenset({"shell", "eval", "info", "warning", "error", "origin", "flavor",
                          "value", "file", "guile", "wordlist", "join"})


class _Marks:
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
        syms = tuple(self.names[int(i)] for i in _MARK.findall(text))
        return (_MARK.sub("", text), syms) if syms else (text, ())


def _marks_in(text: str) -> str:
    return "".join(m.group(0) for m in _MARK.finditer(text))


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


class _Make:
    """Variables and expansion for one folder's Makefile (and the files it includes)."""

    def __init__(self, root: Path, folder: str, marks: _Marks, arch: str) -> None:
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
            if base and not _MARK.sub("", tail):
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


def _fn_subst(mk: _Make, args: list[str], depth: int) -> str:
    if len(args) < 3:
        return ""
    old, new = mk.expand(args[0], depth), mk.expand(args[1], depth)
    text = mk.expand(",".join(args[2:]), depth)
    if _MARK.search(text) and _MARK.search(new):
        # obj-$(subst y,$(CONFIG_A),$(CONFIG_B)): built only when both are; keep both.
        return text + _marks_in(new)
    return text.replace(old, new) if old else text


def _fn_patsubst(mk: _Make, args: list[str], depth: int) -> str:
    if len(args) < 3:
        return ""
    pat, rep = mk.expand(args[0], depth).strip(), mk.expand(args[1], depth).strip()
    return " ".join(_pattern_sub(pat, rep, w) for w in mk.words(",".join(args[2:]), depth))


def _fn_addprefix(mk: _Make, args: list[str], depth: int) -> str:
    if len(args) < 2:
        return ""
    prefix = mk.expand(args[0], depth).strip()
    return " ".join(prefix + w for w in mk.words(",".join(args[1:]), depth))


def _fn_addsuffix(mk: _Make, args: list[str], depth: int) -> str:
    if len(args) < 2:
        return ""
    suffix = mk.expand(args[0], depth).strip()
    return " ".join(w + suffix for w in mk.words(",".join(args[1:]), depth))


def _fn_filter(mk: _Make, args: list[str], depth: int, keep: bool = True) -> str:
    if len(args) < 2:
        return ""
    pats = mk.words(args[0], depth)
    return " ".join(w for w in mk.words(",".join(args[1:]), depth)
                    if any(_pattern_match(p, w) for p in pats) == keep)


def _fn_if(mk: _Make, args: list[str], depth: int) -> str:
    cond = mk.expand(args[0], depth).strip() if args else ""
    then = mk.expand(args[1], depth) if len(args) > 1 else ""
    if _MARK.search(cond):
        # Decided by the .config: the then-words carry the condition; the else-words cannot
        # carry "not X", so they count as unconditional (built, to be safe).
        other = mk.expand(",".join(args[2:]), depth) if len(args) > 2 else ""
        return " ".join([*(w + _marks_in(cond) for w in then.split()), other])
    if cond:
        return then
    return mk.expand(",".join(args[2:]), depth) if len(args) > 2 else ""


def _fn_or(mk: _Make, args: list[str], depth: int) -> str:
    for arg in args:
        value = mk.expand(arg, depth).strip()
        if value:
            return value
    return ""


def _fn_and(mk: _Make, args: list[str], depth: int) -> str:
    value = ""
    for arg in args:
        value = mk.expand(arg, depth).strip()
        if not value:
            return ""
    return value


def _fn_foreach(mk: _Make, args: list[str], depth: int) -> str:
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


def _fn_call(mk: _Make, args: list[str], depth: int) -> str:
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


def _fn_wildcard(mk: _Make, args: list[str], depth: int) -> str:
    found: list[str] = []
    for pattern in mk.words(",".join(args), depth):
        hits = glob.glob(pattern, root_dir=mk.root)
        found.extend(sorted(posixpath.normpath(h) for h in hits))
    return " ".join(found)


def _words_fn(fn: Callable[[list[str]], list[str]]) -> Callable[[_Make, list[str], int], str]:
    def apply(mk: _Make, args: list[str], depth: int) -> str:
        return " ".join(fn(mk.words(",".join(args), depth)))
    return apply


def _fn_findstring(mk: _Make, args: list[str], depth: int) -> str:
    if len(args) < 2:
        return ""
    needle = mk.expand(args[0], depth)
    return needle if needle in mk.expand(",".join(args[1:]), depth) else ""


def _fn_word(mk: _Make, args: list[str], depth: int) -> str:
    try:
        n = int(mk.expand(args[0], depth).strip())
    except (ValueError, IndexError):
        return ""
    words = mk.words(",".join(args[1:]), depth)
    return words[n - 1] if 0 < n <= len(words) else ""


def _basename(word: str) -> str:
    base, dot, ext = word.rpartition(".")
    return base if dot and "/" not in ext else word


_FUNCTIONS: dict[str, Callable[[_Make, list[str], int], str]] = {
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


# ======================================================================= reading Makefiles


class _Assign(NamedTuple):
    """One assignment to an object list (obj-y, foo-objs, foo-$(CONFIG_X), ...)."""

    base: str  # obj, lib, or a composite object's name (foo, sub/foo)
    conds: tuple[str, ...]  # symbols from the key: obj-$(CONFIG_X) -> ("X",)
    lhs: str  # as written, for evidence
    op: str
    value: str  # the text this line added
    recursive: bool  # `=`-style: expanded when the folder is complete, as make would
    unsupported: frozenset[str]  # functions met while expanding (simple values only)
    where: str  # file and line


class _Object(NamedTuple):
    stem: str  # root-relative path without extension
    module: str
    conds: tuple[str, ...]  # from the obj- line
    extra: tuple[str, ...]  # from a composite's foo-$(CONFIG_Y) line
    evidence: str


class _Descent(NamedTuple):
    folder: str
    conds: tuple[str, ...]
    evidence: str


@dataclass
class _FolderRules:
    kbuild_file: str
    objects: list[_Object] = field(default_factory=list)
    descents: list[_Descent] = field(default_factory=list)
    lists: dict[str, list[_Assign]] = field(default_factory=dict)


_IGNORED_DIRECTIVES = frozenset({"ifeq", "ifneq", "ifdef", "ifndef", "else", "endif", "vpath",
                                 "unexport"})
_INCLUDES = frozenset({"include", "-include", "sinclude"})
_PREFIXES = frozenset({"export", "override", "private"})
_MAX_INCLUDE_DEPTH = 16


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, line) with backslash continuations joined as make joins them."""
    lines = text.replace("\r", "").split("\n")
    i = 0
    while i < len(lines):
        start, line = i, lines[i]
        while _continued(line) and i + 1 < len(lines):
            i += 1
            line = line[:-1].rstrip() + " " + lines[i].lstrip()
        yield start + 1, line[:-1] if _continued(line) else line
        i += 1


def _continued(line: str) -> bool:
    return line.endswith("\\") and (len(line) - len(line.rstrip("\\"))) % 2 == 1


def _strip_comment(line: str) -> str:
    i = line.find("#")
    while i >= 0:
        if i == 0 or line[i - 1] != "\\":
            return line[:i]
        i = line.find("#", i + 1)
    return line


# The common shapes, `name op value` and `obj-$(CONFIG_X) op value`, without a character loop.
_SIMPLE_ASSIGN = re.compile(
    r"([A-Za-z0-9_./-]*(?:\$\([A-Za-z0-9_]+\)[A-Za-z0-9_./-]*)?)[ \t]*"
    r"(:{1,3}=|\+=|\?=|!=|=)[ \t]*(.*)", re.S)


def _split_assignment(text: str) -> tuple[str, str, str] | Literal["rule"] | None:
    """(lhs, op, rhs) for `lhs op rhs`, "rule" for `target: prerequisites`, else None."""
    m = _SIMPLE_ASSIGN.fullmatch(text)
    if m and m[1]:
        return m[1], m[2], m[3].strip()
    depth = 0
    for i, ch in enumerate(text):
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth = max(0, depth - 1)
        elif depth:
            continue
        elif ch == "=":
            start = i
            while start > 0 and text[start - 1] == ":":
                start -= 1
            if start == i and i > 0 and text[i - 1] in "+?!":
                start -= 1
            lhs = text[:start].strip()
            return (lhs, text[start:i + 1], text[i + 1:].strip()) if lhs else None
        elif ch == ":" and text[i + 1:i + 2] not in ("=", ":"):
            return "rule"
    return None


def _list_key(marks: _Marks, key: str) -> tuple[str, tuple[str, ...]] | None:
    """`obj-$(CONFIG_X)` -> ("obj", ("X",)); `foo-y`, `foo-objs` -> ("foo", ()); else None."""
    base, dash, tail = key.rpartition("-")
    if not dash or not base or "\x01" in base:
        return None
    literal, conds = marks.split(tail)
    if literal in ("y", "m", "objs") or (not literal and conds):
        return base, conds
    return None


def _join(folder: str, token: str) -> str:
    return posixpath.normpath(posixpath.join(folder, token)) if folder else \
        posixpath.normpath(token)


class _Reader:
    """Reads one folder's Kbuild file (and what it includes) into _FolderRules."""

    def __init__(self, root: Path, folder: str, marks: _Marks, problems: list[Problem],
                 arch: str) -> None:
        self.root, self.folder, self.marks, self.problems = root, folder, marks, problems
        self.make = _Make(root, folder, marks, arch)
        self.assigns: list[_Assign] = []
        self.in_recipe = False
        self.in_define = False
        self.depth = 0

    def read(self, rel: str) -> None:
        try:
            with open(os.path.join(self.root, rel), encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError as exc:
            self.problems.append(Problem(rel, f"cannot read ({exc.strerror or exc})"))
            return
        self.in_recipe = self.in_define = False
        for number, line in _logical_lines(text):
            self._line(rel, number, line)

    def _line(self, rel: str, number: int, line: str) -> None:
        if line.startswith("\t") and self.in_recipe:
            return
        text = _strip_comment(line).strip()
        if not text:
            return
        word = text.split(None, 1)[0]
        if self.in_define:
            self.in_define = word != "endef"
            return
        if word in _IGNORED_DIRECTIVES:
            return  # conditionals: every branch is read (see the module docstring)
        if word == "define":
            self.in_define = True
            return
        if word in _INCLUDES:
            self.in_recipe = False
            self._include(rel, number, text[len(word):], optional=word != "include")
            return
        if word in _PREFIXES:
            text = text[len(word):].strip()
        split = _split_assignment(text)
        if split == "rule":
            self.in_recipe = True
        elif split is not None:
            self.in_recipe = False
            self._assign(f"{rel}:{number}", *split)

    def _assign(self, where: str, lhs: str, op: str, rhs: str) -> None:
        self.make.unsupported.clear()
        key = self.make.expand(lhs).strip()
        value, recursive = self.make.assign(key, op, rhs)
        parsed = _list_key(self.marks, key)
        if parsed is not None:
            unsupported = frozenset() if recursive else frozenset(self.make.unsupported)
            self.assigns.append(_Assign(parsed[0], parsed[1], lhs, op, value, recursive,
                                        unsupported, where))

    def _include(self, rel: str, number: int, args: str, optional: bool) -> None:
        for name in self.make.words(args, 0):
            path = posixpath.normpath(name)
            # kbuild's own machinery (scripts/) and generated files are not object lists.
            if path.startswith(("../", "/", "scripts/", "include/config/")):
                continue
            if not (self.root / path).is_file():
                if not optional:
                    self.problems.append(Problem(rel, f"line {number}: include {path}: "
                                                      "no such file"))
                continue
            if self.depth >= _MAX_INCLUDE_DEPTH:
                self.problems.append(Problem(rel, f"line {number}: includes nested too deep"))
                continue
            saved = self.in_recipe, self.in_define
            self.depth += 1
            self.read(path)
            self.depth -= 1
            self.in_recipe, self.in_define = saved

    # -- after the whole folder is read ---------------------------------------------------

    def finish(self, kbuild_file: str, list_bases: Iterable[str]) -> _FolderRules:
        rules = _FolderRules(kbuild_file)
        for assign in self.assigns:
            if assign.recursive:
                self.make.unsupported.clear()
                assign = assign._replace(value=self.make.expand(assign.value),
                                         unsupported=frozenset(self.make.unsupported))
            rules.lists.setdefault(assign.base, []).append(assign)
        for base in list_bases:
            for assign in rules.lists.get(base, ()):
                self._entries(rules, assign)
        return rules

    def _entries(self, rules: _FolderRules, assign: _Assign) -> None:
        self._flag(assign)
        for raw in assign.value.split():
            token, tconds = self.marks.split(raw)
            conds = assign.conds + tconds
            evidence = f"{assign.where.rsplit(':', 1)[0]}: {assign.lhs} {assign.op} {token}"
            if assign.base == "subdir" or token.endswith(("/", "/lib.a")):
                folder = _join(self.folder, token.removesuffix("lib.a"))
                if not folder.startswith("../"):
                    rules.descents.append(_Descent(folder, conds, evidence))
            elif token.endswith(".o"):
                rules.objects.extend(self._objects(rules, token[:-2], conds, evidence))

    def _objects(self, rules: _FolderRules, name: str, conds: tuple[str, ...],
                 evidence: str) -> Iterator[_Object]:
        module = posixpath.basename(name)
        parts = rules.lists.get(name)
        if not parts:
            yield _Object(_join(self.folder, name), module, conds, (), evidence)
            return
        for part in parts:
            self._flag(part)
            for raw in part.value.split():
                token, tconds = self.marks.split(raw)
                if not token.endswith(".o"):
                    continue
                extra = part.conds + tconds
                note = f"; {part.lhs} {part.op} {token}"
                if extra:
                    note += " (also needs " + ", ".join("CONFIG_" + c for c in extra) + ")"
                yield _Object(_join(self.folder, token[:-2]), module, conds, extra,
                              evidence + note)

    def _flag(self, assign: _Assign) -> None:
        if assign.unsupported:
            names = ", ".join(sorted(assign.unsupported))
            path, line = assign.where.rsplit(":", 1)
            self.problems.append(Problem(path, f"line {line}: cannot evaluate $({names}) in "
                                               f"{assign.lhs}; read as empty"))


# ======================================================================= the descent


class _Route(NamedTuple):
    conds: tuple[str, ...]  # every symbol that must be y or m, outermost first
    evidence: str  # the line that descends into the folder


class _Mapping(NamedTuple):
    """One way a source file is built: an object entry reached through one route."""

    module: str
    symbol: str | None
    conds: tuple[str, ...]
    extra: tuple[str, ...]
    evidence: str


def _merge(*parts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for part in parts for c in part))


_MAX_ROUTES = 8  # ways into one folder worth keeping (a folder rarely has more than 2)
# subdir-y folders are built too (their lib-y objects are, e.g. the EFI stub library),
# though kbuild links nothing from them into vmlinux by itself.
_OBJECT_LISTS = ("obj", "lib", "subdir")
_ARCH_LISTS = ("core", "drivers", "libs")  # root-relative folders from the top Makefile


def _scope_prefix(folder: str) -> str:
    """The part of the tree read together when a file in `folder` is asked for: three
    levels (drivers/gpu/drm), because object lists reach across sibling folders
    (amdgpu's Makefile lists ../display/...)."""
    return "/".join(folder.split("/")[:3])


def _under(folder: str, prefix: str) -> bool:
    return not prefix or folder == prefix or folder.startswith(prefix + "/")


class _Kbuild:
    """The folders reached from the root Kbuild, and every object they list.

    With a scope (the folders of the files the caller will ask about), descents outside it
    and its ancestors are deferred, and replayed when a lookup widens the scope.
    """

    def __init__(self, root: Path, arch: str = "x86", scope: Iterable[str] | None = None,
                 always_built: Sequence[str] = ()) -> None:
        self.root, self.arch = root, arch
        self.always_built = always_built
        self.marks = _Marks()
        self.problems: list[Problem] = []
        self.folders: dict[str, _FolderRules | None] = {}
        self.routes: dict[str, list[_Route]] = {}
        self.objects: dict[str, list[_Mapping]] = {}
        self.has_root = False
        self.scope = None if scope is None else {_scope_prefix(f) for f in scope}
        self.deferred: list[tuple[str, _Route]] = []

    def _in_scope(self, folder: str) -> bool:
        """Inside a scope prefix, or an ancestor of one (needed to get there)."""
        return self.scope is None or any(_under(folder, p) or _under(p, folder)
                                         for p in self.scope)

    def widen(self, folder: str) -> None:
        """Make sure `folder` has been walked (lookups call this before reading routes)."""
        if self.scope is None or any(_under(folder, p) for p in self.scope):
            return
        self.scope.add(_scope_prefix(folder))
        pending, self.deferred = self.deferred, []
        for target, route in pending:
            self._add_route(target, route)

    def kbuild_file(self, folder: str) -> str | None:
        for name in ("Kbuild", "Makefile"):
            rel = f"{folder}/{name}" if folder else name
            if os.path.isfile(os.path.join(self.root, rel)):
                return rel
        return None

    def rules(self, folder: str) -> _FolderRules | None:
        if folder not in self.folders:
            self.folders[folder] = self._read(folder, _OBJECT_LISTS)
        return self.folders[folder]

    def _read(self, folder: str, lists: Sequence[str]) -> _FolderRules | None:
        rel = self.kbuild_file(folder)
        if rel is None:
            return None
        reader = _Reader(self.root, folder, self.marks, self.problems, self.arch)
        reader.read(rel)
        return reader.finish(rel, lists)

    def walk(self) -> None:
        if self.rules("") is None:
            self.problems.append(Problem(".", "no root Kbuild or Makefile: files are mapped "
                                              "by folder only"))
            return
        self.has_root = True
        self._add_route("", _Route((), "root Kbuild"))
        for descent in self._arch_descents():
            self._add_route(descent.folder, _Route(descent.conds, descent.evidence))
        for folder in self.always_built:
            self._add_route(folder, _Route((), "rules/groups.toml: always_built"))

    def _arch_descents(self) -> list[_Descent]:
        """`libs-y += arch/x86/lib/`, `drivers-$(CONFIG_PCI) += arch/x86/pci/`: folders the
        top Makefile (and the arch Makefile it includes) links into vmlinux besides the root
        Kbuild's. Only read when a root Kbuild exists next to it (a real kernel tree)."""
        if not ((self.root / "Kbuild").is_file() and (self.root / "Makefile").is_file()):
            return []
        reader = _Reader(self.root, "", self.marks, self.problems, self.arch)
        reader.read("Makefile")
        return reader.finish("Makefile", _ARCH_LISTS).descents

    def _add_route(self, folder: str, route: _Route) -> None:
        if not self._in_scope(folder):
            self.deferred.append((folder, route))
            return
        known = self.routes.setdefault(folder, [])
        if len(known) >= _MAX_ROUTES or any(r.conds == route.conds for r in known):
            return
        known.append(route)
        rules = self.rules(folder)
        if rules is None:
            # A missing folder is normal in a partial tree; a folder without a Kbuild file
            # is worth a line.
            if len(known) == 1 and folder and (self.root / folder).is_dir():
                self.problems.append(Problem(folder, "descended into but has no Kbuild or "
                                                     f"Makefile ({route.evidence})"))
            return
        for obj in rules.objects:
            conds = _merge(route.conds, obj.conds)
            mapping = _Mapping(obj.module, conds[-1] if conds else None,
                               _merge(conds, obj.extra), obj.extra, obj.evidence)
            self.objects.setdefault(obj.stem, []).append(mapping)
        for descent in rules.descents:
            self._add_route(descent.folder,
                            _Route(_merge(route.conds, descent.conds), descent.evidence))

    def orphan_objects(self, folder: str) -> list[_Object]:
        """Objects a folder's own Makefile lists when no route from the root reaches it."""
        rules = self.rules(folder)
        return rules.objects if rules else []


# ======================================================================= groups


class _Grouper:
    """Decides a file's group from its Kconfig symbols and path, with the evidence in words.

    A symbol is in a group when the rules list it, when it selects a listed symbol, or when
    its direct dependency cannot hold with the group's symbols off: `PCI && X86_64` needs
    x86, `X86 || ARM64` does not (the driver builds elsewhere too). Dependency symbols are
    followed `depth` levels (`depends on X86_PLATFORM_DEVICES`, which depends on X86), and
    COMPILE_TEST counts as off, so `depends on X86 || COMPILE_TEST` is x86-only.
    """

    def __init__(self, rules: GroupRules, facts: KconfigFacts | None) -> None:
        self.rules, self.facts = rules, facts
        self.arch_dir = f"arch/{rules.arch}/"
        self.arch_only, self.arch_local = self._arch_symbols()
        self.off: dict[str, frozenset[str]] = {
            g.name: g.symbols | (self.arch_only if g.arch_only else frozenset())
            for g in rules.groups}
        self._values: dict[tuple[str, str, int], bool | None] = {}
        self._reasons: dict[tuple[str, str, bool], str | None] = {}
        self._verdicts: dict[tuple[int, str, tuple[str, ...]], tuple[Group, str]] = {}

    def _arch_symbols(self) -> tuple[frozenset[str], frozenset[str]]:
        """Symbols defined only in arch/<arch>/ Kconfig files: those no other architecture
        defines (X86_MCE: x86-only), and those others define too (XEN, PARAVIRT: their
        dependency here is only the x86 definition's, so it proves nothing)."""
        if self.facts is None:
            return frozenset(), frozenset()
        local = {name for name, sym in self.facts.symbols.items()
                 if all(f.startswith(self.arch_dir) for f in sym.files)}
        elsewhere = local & self.facts.other_arch
        return frozenset(local - elsewhere), frozenset(elsewhere)

    def classify(self, path: str, symbols: tuple[str, ...]) -> tuple[Group, str]:
        rule_index, prefix = self._path_rule(path)
        key = (rule_index, prefix, symbols)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = self._classify(rule_index, prefix, symbols)
        return verdict

    def _path_rule(self, path: str) -> tuple[int, str]:
        """The first group (by index) with a path rule matching `path`, and the prefix."""
        for index, rule in enumerate(self.rules.groups):
            for prefix in rule.paths:
                if path.startswith(prefix):
                    return index, prefix
        return len(self.rules.groups), ""

    def _classify(self, rule_index: int, prefix: str,
                  symbols: tuple[str, ...]) -> tuple[Group, str]:
        for index, rule in enumerate(self.rules.groups):
            if index == rule_index:
                return rule.name, f"path rule {prefix}"
            for i, symbol in enumerate(symbols):
                # `selects` marks the module's own symbol only: REMOTEPROC selects VIRTIO,
                # which does not make every remote-processor driver below it virtio.
                reason = self.reason(rule, symbol, selects=i == 0)
                if reason:
                    return rule.name, reason
        return "generic", self._generic_reason(symbols)

    def reason(self, rule: GroupRule, symbol: str, selects: bool = True) -> str | None:
        key = (rule.name, symbol, selects)
        if key not in self._reasons:
            self._reasons[key] = self._reason(rule, symbol, selects)
        return self._reasons[key]

    def _reason(self, rule: GroupRule, symbol: str, selects: bool) -> str | None:
        if symbol in rule.symbols:
            return f"Kconfig {symbol}: a {rule.name} symbol (rules/groups.toml)"
        sym = self.facts.symbols.get(symbol) if self.facts else None
        if sym is None:
            return None
        if rule.arch_only and symbol in self.arch_only:
            return f"Kconfig {symbol}: defined only in {sym.files[0]} (no other architecture)"
        selected = next((s for s in sym.selects if s in rule.selects), None) if selects \
            else None
        if selected:
            return f"Kconfig {symbol}: selects {selected}"
        if symbol not in self.arch_local and self._requires(sym.dep, rule):
            return f"Kconfig {symbol}: depends on {expr_text(sym.dep)}{self._why(sym.dep, rule)}"
        return None

    def _requires(self, dep: Expr, rule: GroupRule) -> bool:
        """The dependency fails with the group's symbols off, and only then."""
        return (self._eval(dep, rule.name, self.rules.depth) is False
                and self._eval(dep, "", self.rules.depth) is not False)

    def _why(self, dep: Expr, rule: GroupRule, depth: int | None = None) -> str:
        """The chain of dependency symbols that carries the requirement, when the group's
        symbol is not in plain view: " (INTEL_MEI_ME: depends on INTEL_MEI; INTEL_MEI:
        depends on X86 && PCI)"."""
        depth = self.rules.depth if depth is None else depth
        off = self.off[rule.name]
        names = expr_symbols(dep)
        direct = next((n for n in names if n in rule.symbols), None) or \
            next((n for n in names if n in off), None)
        if direct is not None:
            return "" if direct in rule.symbols else f" ({direct} exists only on {rule.name})"
        for name in names:
            sym = self.facts.symbols.get(name) if self.facts else None
            if sym and depth > 0 and self._value(name, rule.name, depth) is False:
                inner = self._why(sym.dep, rule, depth - 1)
                step = f"{name}: depends on {expr_text(sym.dep)}"
                return f" ({step}; {inner[2:-1]})" if inner else f" ({step})"
        return ""

    def _eval(self, expr: Expr, group: str, depth: int) -> bool | None:
        """Three-valued: False when `expr` cannot hold with `group`'s symbols off, True when
        it must, None when it depends on other symbols."""
        if isinstance(expr, str):
            return self._value(expr, group, depth)
        op = expr[0]
        if op == "const":
            return {"y": True, "m": True, "n": False}.get(expr[1])
        if op == "!":
            inner = self._eval(expr[1], group, depth)
            return None if inner is None else not inner
        if op == "cmp":
            return None
        left, right = self._eval(expr[1], group, depth), self._eval(expr[2], group, depth)
        if op == "&&":
            return False if False in (left, right) else (True if left and right else None)
        return True if True in (left, right) else (False if left is right is False else None)

    def _value(self, symbol: str, group: str, depth: int) -> bool | None:
        if group and symbol in self.off[group] or symbol in self.rules.assume_off:
            return False
        key = (symbol, group, depth)
        if key not in self._values:
            self._values[key] = None  # a dependency loop reads as unknown
            sym = self.facts.symbols.get(symbol) if self.facts else None
            # A symbol whose own dependency cannot hold is off too (undefined ones are
            # unknown: they may exist on other architectures).
            if sym is not None and depth > 0 and symbol not in self.arch_local \
                    and self._eval(sym.dep, group, depth - 1) is False:
                self._values[key] = False
        return self._values[key]

    def _generic_reason(self, symbols: tuple[str, ...]) -> str:
        groups = " or ".join(g.name for g in reversed(self.rules.groups))
        if not symbols:
            return "no Kconfig symbol and no path rule"
        symbol = symbols[0]
        if self.facts is None:
            return f"no path rule (Kconfig unavailable; symbol {symbol})"
        sym = self.facts.symbols.get(symbol)
        if sym is None:
            return f"no {groups} dependency (Kconfig {symbol}: not defined for " \
                   f"{self.rules.arch})"
        dep = "no dependencies" if sym.dep == ("const", "y") else \
            f"depends on {expr_text(sym.dep)}"
        if symbol in self.arch_local:
            dep += f"; other architectures define {symbol} too"
        return f"no {groups} dependency (Kconfig {symbol}: {dep})"


# ======================================================================= the map

_SOURCE_EXTS = frozenset({".c", ".S", ".rs"})  # what a `foo.o` is built from


class DriverMap:
    """Source file -> DriverInfo for one tree (and optionally one .config).

    Build once (`DriverMap.build`), then `lookup` any path; answers are memoised. Problems
    met (unreadable Makefiles, unevaluable lines, Kconfig errors) are in `problems`, never
    raised.
    """

    def __init__(self, root: Path, kbuild: _Kbuild, grouper: _Grouper,
                 config: dict[str, str] | None, problems: list[Problem]) -> None:
        self.root = root
        self.config = config
        self._problems = problems
        self._kbuild = kbuild
        self._grouper = grouper
        self._memo: dict[str, DriverInfo] = {}
        self._listed: dict[str, DriverInfo | None] = {}
        self._c_drivers: dict[str, list[DriverInfo]] = {}
        self._orphans: dict[str, dict[str, list[_Object]]] = {}

    @classmethod
    def build(cls, root: Path, rules: GroupRules, config: dict[str, str] | None = None,
              paths: Iterable[str] | None = None, *,
              cache_dir: Path | None = None) -> DriverMap:
        """Read the tree's Kbuild files and Kconfig. `paths`, when given, are looked up now
        (the map answers for any other path too). `cache_dir` caches the Kconfig facts."""
        wanted = None if paths is None else list(paths)
        scope = None if wanted is None else {posixpath.dirname(p) for p in wanted}
        kbuild = _Kbuild(root, rules.arch, scope, rules.always_built)
        problems: list[Problem] = []
        facts: KconfigFacts | None = None
        if kbuild.kbuild_file("") is None and not (root / "Kconfig").exists():
            # Not a kernel tree (a folder scanned on its own): one line says it all.
            problems.append(Problem(".", "no Kconfig and no Kbuild at the root: drivers are "
                                         "folders, groups come from path rules only"))
            kbuild.has_root = False
        else:
            facts = cls._kconfig(root, rules, cache_dir, problems)
            kbuild.walk()
        built = cls(root, kbuild, _Grouper(rules, facts), config, problems)
        for path in wanted or ():
            built.lookup(path)
        return built

    @staticmethod
    def _kconfig(root: Path, rules: GroupRules, cache_dir: Path | None,
                 problems: list[Problem]) -> KconfigFacts | None:
        try:
            return load_kconfig_facts(root, rules.arch, cache_dir)
        except KconfigLoadError as exc:
            # Tree-level (path "."): the root Kconfig may not exist at all.
            where = "Kconfig" if (root / "Kconfig").is_file() else "."
            problems.append(Problem(where, f"{exc}; groups from path rules only"))
            return None

    @property
    def problems(self) -> list[Problem]:
        """Kconfig and Makefile problems met so far (lookups outside the first scope read
        more Makefiles), each once, in the order met."""
        return self._problems + list(dict.fromkeys(self._kbuild.problems))

    # -- lookup ---------------------------------------------------------------------------

    def lookup(self, path: str) -> DriverInfo:
        """The driver of `path` (POSIX, relative to the root): any file, .c, .h or other."""
        info = self._memo.get(path)
        if info is None:
            info = self._memo[path] = self._other_arch(path, self._lookup(path))
        return info

    def _other_arch(self, path: str, info: DriverInfo) -> DriverInfo:
        """Another architecture's code (arch/arm/...) is never built for this one, headers
        included, whatever its Makefiles say."""
        if (self.config is None or not path.startswith("arch/")
                or path.startswith(self._grouper.arch_dir) or info.reachable is False):
            return info
        return DriverInfo(info.name, info.config_symbol, info.group, info.group_reason, False,
                          info.evidence + f"; not built for {self._grouper.arch_dir[:-1]}")

    def _lookup(self, path: str) -> DriverInfo:
        path = posixpath.normpath(path)  # "./drivers/x.c" and "drivers//x.c" too
        self._kbuild.widen(posixpath.dirname(path))
        stem, ext = posixpath.splitext(path)
        if ext in _SOURCE_EXTS:
            info = self._object_info(path, stem)
            if info is not None:
                return info
        if ext == ".h":
            return self._header_info(path)
        return self._folder_info(path)

    def _object_info(self, path: str, stem: str) -> DriverInfo | None:
        """The driver of a source file some object list names, else None (memoised: every
        header of a folder asks about the folder's .c files)."""
        if path not in self._listed:
            self._listed[path] = self._listed_info(path, stem)
        return self._listed[path]

    def _listed_info(self, path: str, stem: str) -> DriverInfo | None:
        mappings = self._kbuild.objects.get(stem)
        if mappings:
            return self._from_mappings(path, mappings)
        return self._orphan_info(path, stem)

    def _from_mappings(self, path: str, mappings: list[_Mapping]) -> DriverInfo:
        # The walk order depends on the scope; the answer must not.
        first = min(mappings)
        symbols = _merge((first.symbol,) if first.symbol else (), first.extra,
                         tuple(reversed(first.conds)))
        group, reason = self._grouper.classify(path, symbols)
        reachable = None if self.config is None else \
            any(_enabled(m.conds, self.config) for m in mappings)
        evidence = first.evidence
        others = sorted({m.module for m in mappings} - {first.module})
        if others:
            evidence += f" (also linked into {', '.join(others)})"
        return DriverInfo(first.module, first.symbol, group, reason, reachable, evidence)

    def _orphan_info(self, path: str, stem: str) -> DriverInfo | None:
        """A file its folder's Makefile lists, in a folder no route from the root reaches
        (another architecture's code, host tools): named, never built for this arch."""
        folder = posixpath.dirname(path)
        if self._kbuild.routes.get(folder):
            return None
        if folder not in self._orphans:
            table: dict[str, list[_Object]] = {}
            for obj in self._kbuild.orphan_objects(folder):
                table.setdefault(obj.stem, []).append(obj)
            self._orphans[folder] = table
        objs = self._orphans[folder].get(stem)
        if not objs:
            return None
        obj = objs[0]
        symbol = obj.conds[-1] if obj.conds else None
        group, reason = self._grouper.classify(path, _merge(tuple(reversed(obj.conds)),
                                                            obj.extra))
        reachable = None if self.config is None or not self._kbuild.has_root else False
        note = "; folder not reached from the root Kbuild" if self._kbuild.has_root else ""
        return DriverInfo(obj.module, symbol, group, reason, reachable, obj.evidence + note)

    def _header_info(self, path: str) -> DriverInfo:
        """A header belongs to the one driver its folder's .c files build, else the folder."""
        folder = posixpath.dirname(path)
        infos = self._folder_drivers(folder)
        names = sorted({info.name for info in infos})
        if len(names) != 1:
            fallback = self._folder_info(path)
            if not infos or self.config is None:
                return fallback
            reachable = any(info.reachable for info in infos)
            return DriverInfo(fallback.name, None, fallback.group, fallback.group_reason,
                              reachable, f"header of {len(names)} drivers: {', '.join(names)}")
        first = infos[0]
        group, reason = self._grouper.classify(path, ()) if self._path_group(path) else \
            (first.group, first.group_reason)
        built = None if self.config is None else any(i.reachable for i in infos)
        return DriverInfo(first.name, first.config_symbol, group, reason, built,
                          f"header next to the sources of {first.name}: {first.evidence}")

    def _path_group(self, path: str) -> bool:
        return any(path.startswith(p) for g in self._grouper.rules.groups for p in g.paths)

    def _folder_info(self, path: str) -> DriverInfo:
        """Outside every object list: the folder is the driver; built when the folder is."""
        folder = posixpath.dirname(path)
        routes = self._kbuild.routes.get(folder, [])
        route = min(routes) if routes else None
        symbols = tuple(reversed(route.conds)) if route else ()
        group, reason = self._grouper.classify(path, symbols)
        if route is None:
            evidence = "in no Makefile"
        else:
            kbuild_file = self._kbuild.kbuild_file(folder) or f"{folder}/Makefile"
            included = "" if path.endswith(".h") or folder in self._kbuild.always_built \
                else " (built only if a built file #includes it)"
            evidence = f"not in {kbuild_file}{included}; folder built via {route.evidence}"
        return DriverInfo(folder or ".", None, group, reason,
                          self._folder_reachable(path, routes), evidence)

    def _folder_reachable(self, path: str, routes: list[_Route]) -> bool | None:
        if self.config is None:
            return None
        folder = posixpath.dirname(path)
        if routes:
            built = any(_enabled(r.conds, self.config) for r in routes)
            if path.endswith(".h") or folder in self._kbuild.always_built:
                return built
            # A source file no object list names is built only if a built file #includes
            # it (uhci-pci.c, selftests) or never (process_32.c on x86_64): unknown.
            return None if built else False
        # A header outside the built folders (include/...) is built when a built file
        # includes it, which Kbuild does not say; other files there are not built.
        if path.endswith(".h") or not self._kbuild.has_root:
            return None
        return False

    def _folder_drivers(self, folder: str) -> list[DriverInfo]:
        """The drivers of the .c files of `folder` that some object list names."""
        infos = self._c_drivers.get(folder)
        if infos is None:
            try:
                names = sorted(e.name for e in os.scandir(self.root / folder)
                               if e.name.endswith(".c") and e.is_file())
            except OSError:
                names = []
            paths = [f"{folder}/{n}" if folder else n for n in names]
            infos = self._c_drivers[folder] = [
                info for p in paths if (info := self._object_info(p, p[:-2])) is not None]
        return infos
