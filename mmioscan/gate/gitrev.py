"""Revisions of a kernel tree materialised into temporary folders, read-only.

The gate scans two versions of a few folders. A version is a `Source`: a git commit (files
listed once with `git ls-tree`, read in one `git cat-file --batch`), the files on disk (the
working tree, or a tree that is no git tree at all), or either with a patch's results laid
over it. Nothing here runs `checkout`, `worktree add`, `stash` or anything else that writes
the user's tree or index; git runs with optional locks off, so even `git diff` does not
refresh the index behind the user's back.

What a scan of the changed files needs (`needed_paths`):
- every C file of each changed file's folder: drivers keep their wrappers in sibling .c/.h
  files;
- the headers those include (`"x.h"` next to them, `<linux/x.h>` from include/ and
  arch/x86/include/), transitively, deeper than the scan itself follows them;
- every Makefile, Kbuild and Kconfig* file of the tree (about 5,000 files, 9.5 MB in 6.12):
  the driver map walks Kbuild down from the root and parses Kconfig from the root through
  every `source`, so a partial set would lose driver groups (virtio_net is virtio only
  through its Kconfig dependency);
- the files the TDX model reads its instruction forms from.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mmioscan.cfront.includes import include_candidates
from mmioscan.cfront.lexer import INCLUDE_RE
from mmioscan.kernel.tree import SOURCE_SUFFIXES
from mmioscan.platforms import tree_files

INCLUDE_DEPTH = 6  # deeper than scan.MAX_INCLUDE_DEPTH: the scan never looks further
_BUILD_FILES = re.compile(r"^(Makefile|Kbuild|Kconfig.*)$")


def is_build_file(path: str) -> bool:
    return _BUILD_FILES.match(posixpath.basename(path)) is not None
# Read by the version lookup and Kconfig wherever they exist, and every file a platform model
# reads (platforms.tree_files: one home, so a new model's files are materialised too).
CONTEXT_FILES = ("Makefile", "Kconfig", "Kbuild", "arch/x86/Kconfig",
                 "include/asm-generic/io.h", *tree_files())


class GitError(Exception):
    """git failed, or the tree is no git tree, or a revision does not exist."""


class Source(Protocol):
    """One version of a tree, read-only."""

    label: str

    def is_file(self, path: str) -> bool: ...

    def files_in(self, folder: str) -> list[str]: ...

    def build_files(self) -> list[str]: ...

    def read(self, paths: Sequence[str]) -> dict[str, bytes]: ...


def git(root: Path, *args: str, data: bytes | None = None) -> bytes:
    """Run git in root; GitError with git's own first line of complaint."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_PAGER": "cat"}
    env.pop("GIT_DIR", None)  # a hook's environment must not redirect us to another repo
    env.pop("GIT_INDEX_FILE", None)
    env.pop("GIT_WORK_TREE", None)
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], input=data,
                              capture_output=True, env=env, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        first = message[0] if message else f"git {args[0]} failed"
        raise GitError(first.removeprefix("fatal: ").removeprefix("error: "))
    return proc.stdout


def toplevel(tree: Path) -> Path:
    if not tree.is_dir():
        raise GitError(f"no such folder: {tree}")
    try:
        out = git(tree, "rev-parse", "--show-toplevel")
    except GitError:
        raise GitError(f"{tree} is not inside a git work tree") from None
    return Path(out.decode("utf-8", "surrogateescape").strip())


def commit_of(root: Path, rev: str) -> str:
    """The full commit id of a revision, or GitError naming it."""
    try:
        out = git(root, "rev-parse", "--verify", "--quiet", "--end-of-options",
                  f"{rev}^{{commit}}")
    except GitError:
        raise GitError(f"unknown revision {rev!r} in {root}") from None
    return out.decode().strip()


@dataclass(frozen=True, slots=True)
class Changed:
    status: str  # A, M, D, T (renames come as D + A: fingerprints hold the path anyway)
    path: str


def changed_files(root: Path, base: str, head: str | None) -> tuple[Changed, ...]:
    """Files that differ between two commits, or between a commit and the working tree
    (untracked files not ignored by .gitignore count as added)."""
    args = ["diff", "--no-renames", "--no-ext-diff", "--no-textconv", "--name-status", "-z",
            base]
    if head is not None:
        args.append(head)
    fields = git(root, *args, "--").split(b"\0")
    found = [Changed(fields[i].decode()[:1], _text(fields[i + 1]))
             for i in range(0, len(fields) - 1, 2)]
    if head is None:
        untracked = git(root, "ls-files", "-z", "--others", "--exclude-standard")
        found += [Changed("A", _text(p)) for p in untracked.split(b"\0") if p]
    return tuple(sorted(set(found), key=lambda c: c.path))


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class RevSource:
    """A commit: the file list from one `git ls-tree`, contents from `git cat-file --batch`."""

    def __init__(self, root: Path, commit: str, label: str | None = None) -> None:
        self.root, self.commit = root, commit
        self.label = label or commit[:12]
        listing = git(root, "ls-tree", "-r", "-z", "--full-tree", commit)
        self.blobs: dict[str, str] = {}
        for entry in listing.split(b"\0"):
            meta, _, path = entry.partition(b"\t")
            parts = meta.split()
            # Regular files only: symlinks (120000) and submodules hold no C to scan.
            if len(parts) == 3 and parts[1] == b"blob" and parts[0] in (b"100644", b"100755"):
                self.blobs[_text(path)] = parts[2].decode()
        self._folders: dict[str, list[str]] | None = None

    def is_file(self, path: str) -> bool:
        return path in self.blobs

    def files_in(self, folder: str) -> list[str]:
        if self._folders is None:
            self._folders = {}
            for path in self.blobs:
                self._folders.setdefault(posixpath.dirname(path), []).append(path)
        return sorted(self._folders.get(folder, ()))

    def build_files(self) -> list[str]:
        return sorted(p for p in self.blobs if is_build_file(p))

    def read(self, paths: Sequence[str]) -> dict[str, bytes]:
        wanted = [p for p in paths if p in self.blobs]
        if not wanted:
            return {}
        out = git(self.root, "cat-file", "--batch",
                  data="".join(f"{self.blobs[p]}\n" for p in wanted).encode())
        return dict(zip(wanted, _batch_contents(out, len(wanted)), strict=True))


def _batch_contents(out: bytes, count: int) -> Iterable[bytes]:
    """The objects of `git cat-file --batch` output: `<id> blob <size>\\n<data>\\n` each."""
    pos = 0
    for _ in range(count):
        header_end = out.index(b"\n", pos)
        size = int(out[pos:header_end].split()[2])
        start = header_end + 1
        yield out[start:start + size]
        pos = start + size + 1


class DiskSource:
    """Files on disk under root: the working tree, or a tree under no version control."""

    def __init__(self, root: Path, label: str = "working tree") -> None:
        self.root, self.label = root, label

    def is_file(self, path: str) -> bool:
        return (self.root / path).is_file()

    def files_in(self, folder: str) -> list[str]:
        try:
            with os.scandir(self.root / folder) as entries:
                names = [e.name for e in entries if e.is_file()]
        except OSError:
            return []
        return sorted(posixpath.join(folder, n) if folder else n for n in names)

    def build_files(self) -> list[str]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            base = os.path.relpath(dirpath, self.root)
            found += [n if base == "." else f"{base}/{n}".replace(os.sep, "/")
                      for n in filenames if _BUILD_FILES.match(n)]
        return sorted(found)

    def read(self, paths: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for path in paths:
            try:
                found[path] = (self.root / path).read_bytes()
            except OSError:
                continue  # gone or unreadable: absent from this version
        return found


class OverlaySource:
    """Another source with some files replaced or deleted (a patch's results)."""

    def __init__(self, base: Source, changes: Mapping[str, bytes | None], label: str) -> None:
        self.base, self.changes, self.label = base, dict(changes), label

    def is_file(self, path: str) -> bool:
        if path in self.changes:
            return self.changes[path] is not None
        return self.base.is_file(path)

    def files_in(self, folder: str) -> list[str]:
        names = set(self.base.files_in(folder))
        for path, data in self.changes.items():
            if posixpath.dirname(path) == folder:
                (names.add if data is not None else names.discard)(path)
        return sorted(names)

    def build_files(self) -> list[str]:
        names = set(self.base.build_files())
        for path, data in self.changes.items():
            if is_build_file(path):
                (names.add if data is not None else names.discard)(path)
        return sorted(names)

    def read(self, paths: Sequence[str]) -> dict[str, bytes]:
        found = self.base.read([p for p in paths if p not in self.changes])
        for path in paths:
            data = self.changes.get(path)
            if data is not None:
                found[path] = data
        return found


def _includes(path: str, data: bytes, source: Source) -> set[str]:
    """The tree paths of the headers a file includes that exist in this version."""
    found: set[str] = set()
    for match in INCLUDE_RE.finditer(data):
        target = match.group(1).decode("utf-8", "replace")
        hit = next((c for c in include_candidates(path, target) if source.is_file(c)), None)
        if hit is not None:
            found.add(hit)
    return found


def needed_paths(source: Source, folders: Iterable[str]) -> dict[str, bytes]:
    """The contents of every file a scan of these folders reads (see the module comment)."""
    wanted: set[str] = {p for p in CONTEXT_FILES if source.is_file(p)}
    wanted.update(source.build_files())
    for folder in folders:
        wanted.update(p for p in source.files_in(folder) if p.endswith(SOURCE_SUFFIXES))
    contents = source.read(sorted(wanted))
    fresh = [p for p in contents if p.endswith(SOURCE_SUFFIXES)]
    for _ in range(INCLUDE_DEPTH):
        headers: set[str] = set()
        for path in fresh:
            headers |= _includes(path, contents[path], source)
        headers -= contents.keys()
        if not headers:
            break
        more = source.read(sorted(headers))
        contents.update(more)
        fresh = list(more)
    return contents


def scan_folders(contents: Mapping[str, bytes], folders: Iterable[str]) -> tuple[str, ...]:
    """The folders that hold C files in this version (a new driver's folder is missing from
    the base, a deleted one from the head)."""
    present = {posixpath.dirname(p) for p in contents if p.endswith(SOURCE_SUFFIXES)}
    return tuple(sorted(f for f in set(folders) if f in present))


def sync_tree(dest: Path, contents: Mapping[str, bytes]) -> None:
    """Make dest hold exactly these files. Files whose bytes are already there are left
    alone: their unchanged mtime lets the facts cache answer from its stamps, without even
    hashing them, when the gate reuses its workspace."""
    dest.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(dest, topdown=False):
        base = Path(dirpath)
        for name in filenames:
            rel = (base / name).relative_to(dest).as_posix()
            if rel not in contents:
                (base / name).unlink()
        for name in dirnames:
            with contextlib.suppress(OSError):  # only empty folders go
                (base / name).rmdir()
    for path, data in contents.items():
        target = dest / path
        try:
            if target.stat().st_size == len(data) and target.read_bytes() == data:
                continue
        except OSError:
            target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
