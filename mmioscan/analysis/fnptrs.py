"""Calls through function-pointer fields, the analysis side (cfront/fnptrs.py records them):
which functions a field may hold, and what a call that makes one of several calls counts.

A field's candidates are the functions stored into that field of that struct type anywhere,
when the call's struct type and stores of it are known (a member path `struct A.ops` is
typed through the members' declared types, one layer per member: multi-layer type analysis
at the fast engine's precision); else those stored into a field of that name in the caller's
folder (the driver), leaving out stores into another known struct type. That guess holds
for the folder's own code: hot reach follows a candidate another file of the folder stored
only from roots registered in that folder or above it (analysis/hotpaths.py, "by-name
calls"), not from another driver calling in.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from mmioscan.cfront.includes import folder_of, same_subtree
from mmioscan.core.model import FileFacts

# Hot reach follows a call through a field with at most this many candidates: gpiolib's
# `gc->get(...)` has 71 in drivers/gpio (every driver's), following it from one interrupt
# handler marked a third of the folder's sites hot.
HOT_FANOUT = 8


class IndirectCall(NamedTuple):
    """A call through a function-pointer field, with the functions stored in that field."""

    caller: str  # node key of the calling definition
    name: str  # its callee name in the caller's ScopeCalls (dataflow.indirect_name)
    targets: tuple[str, ...]  # node keys of the candidates, sorted
    # A call resolved by field name among the stores of the caller's folder (its struct
    # type, or the stores of that type, not known): the candidates other files of the folder
    # stored, which hot reach follows only from the folder's roots (CallGraph.callees_of)
    guessed: tuple[str, ...] = ()


Counts = tuple[tuple[str, int | None], ...]


def alternatives(options: Iterable[Counts]) -> Counts:
    """Accesses of a call that makes one of several calls (an indirect call): per accessor,
    the count they agree on, else not known (None); () when one of them is not counted."""
    chosen = [dict(o) for o in options]
    if not chosen or any(not o for o in chosen):
        return ()
    merged: dict[str, int | None] = {}
    for accessor in sorted(set().union(*chosen)):
        seen = {o.get(accessor, 0) for o in chosen}
        merged[accessor] = seen.pop() if len(seen) == 1 else None
    return tuple(merged.items())


class NameScopes:
    """Names seen as the call graph resolves a name from a file (CallGraph._resolve without
    the include graph): from every file (accessors, definitions in headers, exported
    functions), from one file (its static definitions), or from a folder's subtree (the
    folders above and below it: non-static definitions of its .c files)."""

    def __init__(self, shared: Iterable[str] = ()) -> None:
        self._shared = set(shared)
        self._own: dict[str, set[str]] = {}
        self._global: dict[str, set[str]] = {}  # name -> folders of non-static definitions

    def add(self, path: str, name: str, static: bool, exported: bool) -> None:
        if path.endswith(".h") or exported:
            self._shared.add(name)
        elif static:
            self._own.setdefault(path, set()).add(name)
        else:
            self._global.setdefault(name, set()).add(folder_of(path))

    def seen(self, path: str, name: str) -> bool:
        # asked for every store of every parsed file, each round: most stored names (locals,
        # `p->ret = ret`) are no function anywhere, answered before the folder is looked up
        if name in self._shared:
            return True
        own = self._own.get(path)
        if own is not None and name in own:
            return True
        folders = self._global.get(name)
        if not folders:
            return False
        folder = folder_of(path)
        return any(same_subtree(f, folder) for f in folders)

    def names(self) -> set[str]:
        """Every name, wherever it is seen."""
        return self._shared | set(self._global) | set().union(*self._own.values())


class FileFunctions:
    """Which names a file may store as a function: an accessor or a function it can call.
    The extractor records every `x->f = name` whose right side is an identifier: most are
    locals (`p->ret = ret`, `s->start = start`), and by name over the tree nearly every
    local is some file's function. Kept from round to round of the facts stage (NameScopes
    only gathers sets, so adding the files a round parsed gives what a fresh build over all
    of them gives); a file whose facts were replaced makes it start again."""

    def __init__(self, leaves: frozenset[str]) -> None:
        self._leaves = leaves
        self._clear()

    def _clear(self) -> None:
        self.names = NameScopes(self._leaves)
        self._added: dict[str, FileFacts] = {}

    def update(self, files: Mapping[str, FileFacts]) -> NameScopes:
        if any(files.get(path) is not facts for path, facts in self._added.items()):
            self._clear()
        for path in files.keys() - self._added.keys():
            facts = self._added[path] = files[path]
            for scope in facts.scopes:
                if scope.kind == "function":
                    # a file's own functions, static or not, are seen from it
                    exported = scope.name in facts.exports
                    self.names.add(path, scope.name, True, exported)
                    if not scope.static:
                        self.names.add(path, scope.name, False, exported)
        return self.names


class FieldStores:
    """Stores of functions into fields over all parsed files: by struct type and by
    (folder, field). A stored name no file could mean as a function is left out."""

    def __init__(self, files: Mapping[str, FileFacts],
                 leaves: frozenset[str] = frozenset(),
                 functions: FileFunctions | None = None) -> None:
        self._members: dict[tuple[str, str], str] = {}
        for path in sorted(files):
            for outer, member, inner in files[path].members:
                self._members.setdefault((outer, member), inner)
        seen = (functions or FileFunctions(leaves)).update(files)
        self._by_type: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._by_folder: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
        # (path, struct or "", field, function) of every store kept, in path order
        self.kept: list[tuple[str, str, str, str]] = []
        self._answers: dict[tuple[str, str, str], frozenset[tuple[str, str]]] = {}
        for path in sorted(files):
            folder = folder_of(path)
            for written, field, function, _line in files[path].fnptrs:
                if not seen.seen(path, function):
                    continue
                struct = self.type_of(written)
                self.kept.append((path, struct, field, function))
                if struct:
                    self._by_type.setdefault((struct, field), set()).add((path, function))
                self._by_folder.setdefault((folder, field), set()).add((struct, path, function))

    def type_of(self, written: str) -> str:
        """`struct T` of a member path `struct A.f.g` through the members' declared types;
        "" when a layer is not known."""
        if "." not in written:
            return written
        struct, *members = written.split(".")
        for member in members:
            struct = self._members.get((struct, member), "")
            if not struct:
                return ""
        return struct

    def stores(self, folder: str, field: str, written: str) -> frozenset[tuple[str, str]]:
        """(path, function) of the stores a call through `field` of type `written` (as
        recorded) from a file of `folder` may reach; memoised (every round of the facts
        stage asks it for each call through a field)."""
        key = (folder, field, written)
        found = self._answers.get(key)
        if found is None:
            found = self._answers[key] = frozenset(self._stores(folder, field, written))
        return found

    def by_type(self, field: str, written: str) -> bool:
        """Whether a call through `field` of type `written` is resolved by its struct type
        (some store of that struct's field is known), not by field name in its folder."""
        struct = self.type_of(written)
        return bool(struct) and bool(self._by_type.get((struct, field)))

    def _stores(self, folder: str, field: str, written: str) -> set[tuple[str, str]]:
        struct = self.type_of(written)
        found = self._by_type.get((struct, field), set()) if struct else set()
        # Two drivers may declare the same struct (igb's and e1000e's e1000_mac_operations):
        # the stores of the caller's own subtree win, so a driver's targets do not depend on
        # what else is scanned; others only when its subtree stores none
        near = {(p, fn) for p, fn in found if same_subtree(posixpath.dirname(p), folder)}
        if near or found:
            return near or found
        return {(p, fn) for s, p, fn in self._by_folder.get((folder, field), ())
                if not s or not struct or s == struct}
