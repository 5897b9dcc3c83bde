"""The include folders Kbuild Makefiles add with `-I` (ccflags-y, ccflags-$(CONFIG_X),
subdir-ccflags-y, EXTRA_CFLAGS): where `#include "i915_drv.h"` in drivers/gpu/drm/i915/gt/
finds drivers/gpu/drm/i915/i915_drv.h (`subdir-ccflags-y += -I$(src)`), and the media drivers
their tuners' headers (`-I $(srctree)/drivers/media/tuners`).

A folder's Makefile is read as kernel/makefiles.py reads it (its variables and includes
expanded by kernel/make.py); `ccflags-*` apply to the files of its folder and of the folders
below that have no Makefile of their own (objects a Makefile lists by a path into a
subfolder, like atomisp's pci/...), `subdir-ccflags-*` to everything below it. Conditional
flags (`ccflags-$(CONFIG_X)`) count whatever X is, as every branch of a conditional is read
for object lists. Folders that do not exist are left out. Resolution tries these folders
after the file's own folder and the kernel's include folders (Kbuild puts LINUXINCLUDE
before a Makefile's flags), so an include that resolved without them resolves the same.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from mmioscan.kernel.make import MARK, Marks
from mmioscan.kernel.makefiles import MakefileReader, kbuild_file

_FLAG_RE = re.compile(r"-I\s*(\S+)")
_OWN = frozenset({"ccflags-y", "ccflags-m", "ccflags-", "EXTRA_CFLAGS"})
_SUBDIR = frozenset({"subdir-ccflags-y", "subdir-ccflags-m", "subdir-ccflags-"})


class IncludePaths:
    """The `-I` folders of the files of each folder, from the tree's Makefiles; read on
    demand (only an include that resolves nowhere else asks) and memoised per folder."""

    def __init__(self, root: Path, arch: str = "x86",
                 files: Mapping[str, bytes] | None = None) -> None:
        """files: the tree's build files by path, for a version not on disk (the gate's
        git revisions); folders are then not checked for existence (a probe of a header
        there simply finds nothing)."""
        self.root, self.arch, self.files = root, arch, files
        self._flags: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._dirs: dict[str, tuple[str, ...]] = {}

    def dirs(self, folder: str) -> tuple[str, ...]:
        """The extra include folders of a file in folder (root-relative), in search order:
        the subdir flags of the Makefiles above, outermost first, then its own Makefile's."""
        found = self._dirs.get(folder)
        if found is None:
            found = self._dirs[folder] = self._search(folder)
        return found

    def _search(self, folder: str) -> tuple[str, ...]:
        chain = [folder]
        while chain[-1]:
            chain.append(posixpath.dirname(chain[-1]))
        # the nearest folder with a Makefile builds the files here: its ccflags apply
        owner = next((f for f in chain if self._makefile(f) is not None), None)
        found: list[str] = []
        for above in reversed(chain):
            own, subdir = self.flags_of(above)
            found.extend(subdir)
            if above == owner:
                found.extend(own)
        return tuple(dict.fromkeys(found))

    def candidates(self, folder: str, target: str) -> Iterator[str]:
        """The tree paths an `#include` target of a file in folder may name in its -I
        folders, in search order (the caller keeps the first that exists)."""
        name = target[1:-1]
        return (posixpath.normpath(f"{d}/{name}") for d in self.dirs(folder))

    def _makefile(self, folder: str) -> str | None:
        files = self.files
        return kbuild_file(self.root, folder, None if files is None else files.__contains__)

    def read_so_far(self) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """The flags of every folder whose Makefile was read (what the answers so far
        depended on: analysis/replay.py checks them again)."""
        return dict(self._flags)

    def flags_of(self, folder: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(ccflags folders, subdir-ccflags folders) of one folder's Makefile."""
        known = self._flags.get(folder)
        if known is not None:
            return known
        rel = self._makefile(folder) if folder else None  # the top Makefile adds none
        own: list[str] = []
        subdir: list[str] = []
        if rel is not None:
            marks = Marks()
            reader = MakefileReader(self.root, folder, marks, [], self.arch, self.files)
            reader.read(rel)
            make = reader.make
            for key, (value, recursive) in sorted(make.vars.items()):
                name = MARK.sub("", key)
                if name not in _OWN and name not in _SUBDIR:
                    continue
                text = MARK.sub("", make.expand(value) if recursive else value)
                into = own if name in _OWN else subdir
                into.extend(d for d in (self._folder(t) for t in _FLAG_RE.findall(text))
                            if d is not None)
        known = self._flags[folder] = (tuple(dict.fromkeys(own)), tuple(dict.fromkeys(subdir)))
        return known

    def _folder(self, token: str) -> str | None:
        """A root-relative folder of the tree, or None (outside it, or not there)."""
        path = posixpath.normpath(token.strip("\"'"))
        if path.startswith(("/", "../")) or path == ".." or path == ".":
            return None
        if self.files is not None:
            return path
        return path if os.path.isdir(os.path.join(self.root, path)) else None
