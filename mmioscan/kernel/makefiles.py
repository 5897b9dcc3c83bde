"""Reading Kbuild Makefiles and descending the tree from the root Kbuild: which folder and
which object every file is built under, with the conditions on the way down."""


from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from mmioscan.core.model import Problem
from mmioscan.kernel.make import Make, Marks


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


class KbuildObject(NamedTuple):
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
class FolderRules:
    kbuild_file: str
    objects: list[KbuildObject] = field(default_factory=list)
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


def _list_key(marks: Marks, key: str) -> tuple[str, tuple[str, ...]] | None:
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


class MakefileReader:
    """Reads one folder's Kbuild file (and what it includes) into FolderRules."""

    def __init__(self, root: Path, folder: str, marks: Marks, problems: list[Problem],
                 arch: str, files: Mapping[str, bytes] | None = None) -> None:
        self.root, self.folder, self.marks, self.problems = root, folder, marks, problems
        # the tree's build files by root-relative path, when they are not on disk (a version
        # the gate reads from git); None: read under root
        self.files = files
        self.make = Make(root, folder, marks, arch)
        self.assigns: list[_Assign] = []
        self.in_recipe = False
        self.in_define = False
        self.depth = 0

    def read(self, rel: str) -> None:
        if self.files is not None:
            data = self.files.get(rel)
            if data is None:
                self.problems.append(Problem(rel, "cannot read (not in this version)"))
                return
            text = data.decode("utf-8", "replace")
        else:
            try:
                with open(os.path.join(self.root, rel), encoding="utf-8",
                          errors="replace") as f:
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
            if not (path in self.files if self.files is not None
                    else (self.root / path).is_file()):
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

    def finish(self, kbuild_file: str, list_bases: Iterable[str]) -> FolderRules:
        rules = FolderRules(kbuild_file)
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

    def _entries(self, rules: FolderRules, assign: _Assign) -> None:
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

    def _objects(self, rules: FolderRules, name: str, conds: tuple[str, ...],
                 evidence: str) -> Iterator[KbuildObject]:
        module = posixpath.basename(name)
        parts = rules.lists.get(name)
        if not parts:
            yield KbuildObject(_join(self.folder, name), module, conds, (), evidence)
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
                yield KbuildObject(_join(self.folder, token[:-2]), module, conds, extra,
                              evidence + note)

    def _flag(self, assign: _Assign) -> None:
        if assign.unsupported:
            names = ", ".join(sorted(assign.unsupported))
            path, line = assign.where.rsplit(":", 1)
            self.problems.append(Problem(path, f"line {line}: cannot evaluate $({names}) in "
                                               f"{assign.lhs}; read as empty"))


# ======================================================================= the descent


class Route(NamedTuple):
    conds: tuple[str, ...]  # every symbol that must be y or m, outermost first
    evidence: str  # the line that descends into the folder


class FileMapping(NamedTuple):
    """One way a source file is built: an object entry reached through one route."""

    module: str
    symbol: str | None
    conds: tuple[str, ...]
    extra: tuple[str, ...]
    evidence: str


def kbuild_file(root: Path, folder: str,
                exists: Callable[[str], bool] | None = None) -> str | None:
    """The file kbuild reads for a folder (Kbuild before Makefile), root-relative, or None.
    exists: whether a root-relative file is there (a version not on disk); default: under
    root on disk."""
    for name in ("Kbuild", "Makefile"):
        rel = f"{folder}/{name}" if folder else name
        if (exists(rel) if exists is not None
                else os.path.isfile(os.path.join(root, rel))):
            return rel
    return None


def merge_conditions(*parts: tuple[str, ...]) -> tuple[str, ...]:
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


class Kbuild:
    """The folders reached from the root Kbuild, and every object they list.

    With a scope (the folders of the files the caller will ask about), descents outside it
    and its ancestors are deferred, and replayed when a lookup widens the scope.
    """

    def __init__(self, root: Path, arch: str = "x86", scope: Iterable[str] | None = None,
                 always_built: Sequence[str] = ()) -> None:
        self.root, self.arch = root, arch
        self.always_built = always_built
        self.marks = Marks()
        self.problems: list[Problem] = []
        self.folders: dict[str, FolderRules | None] = {}
        self.routes: dict[str, list[Route]] = {}
        self.objects: dict[str, list[FileMapping]] = {}
        self.has_root = False
        self.scope = None if scope is None else {_scope_prefix(f) for f in scope}
        self.deferred: list[tuple[str, Route]] = []

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
        return kbuild_file(self.root, folder)

    def rules(self, folder: str) -> FolderRules | None:
        if folder not in self.folders:
            self.folders[folder] = self._read(folder, _OBJECT_LISTS)
        return self.folders[folder]

    def _read(self, folder: str, lists: Sequence[str]) -> FolderRules | None:
        rel = self.kbuild_file(folder)
        if rel is None:
            return None
        reader = MakefileReader(self.root, folder, self.marks, self.problems, self.arch)
        reader.read(rel)
        return reader.finish(rel, lists)

    def walk(self) -> None:
        if self.rules("") is None:
            self.problems.append(Problem(".", "no root Kbuild or Makefile: files are mapped "
                                              "by folder only"))
            return
        self.has_root = True
        self._add_route("", Route((), "root Kbuild"))
        for descent in self._arch_descents():
            self._add_route(descent.folder, Route(descent.conds, descent.evidence))
        for folder in self.always_built:
            self._add_route(folder, Route((), "rules/groups.toml: always_built"))

    def _arch_descents(self) -> list[_Descent]:
        """`libs-y += arch/x86/lib/`, `drivers-$(CONFIG_PCI) += arch/x86/pci/`: folders the
        top Makefile (and the arch Makefile it includes) links into vmlinux besides the root
        Kbuild's. Only read when a root Kbuild exists next to it (a real kernel tree)."""
        if not ((self.root / "Kbuild").is_file() and (self.root / "Makefile").is_file()):
            return []
        reader = MakefileReader(self.root, "", self.marks, self.problems, self.arch)
        reader.read("Makefile")
        return reader.finish("Makefile", _ARCH_LISTS).descents

    def _add_route(self, folder: str, route: Route) -> None:
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
            conds = merge_conditions(route.conds, obj.conds)
            mapping = FileMapping(obj.module, conds[-1] if conds else None,
                               merge_conditions(conds, obj.extra), obj.extra, obj.evidence)
            self.objects.setdefault(obj.stem, []).append(mapping)
        for descent in rules.descents:
            self._add_route(descent.folder,
                            Route(merge_conditions(route.conds, descent.conds), descent.evidence))

    def orphan_objects(self, folder: str) -> list[KbuildObject]:
        """Objects a folder's own Makefile lists when no route from the root reaches it."""
        rules = self.rules(folder)
        return rules.objects if rules else []


