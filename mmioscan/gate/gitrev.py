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
import stat
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mmioscan.cfront.includes import include_candidates
from mmioscan.cfront.lexer import INCLUDE_RE
from mmioscan.core.fileio import BROKEN_LINK, LEAVES_TREE, NOT_REGULAR, read_input
from mmioscan.core.findings import clean
from mmioscan.kernel.includepaths import IncludePaths
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


class WorkspaceError(GitError):
    """A version cannot be laid out on disk (a full disk, a read-only cache folder)."""


Kind = Literal["file", "link", "dir", "other"]
MAX_LINK_HOPS = 40  # as Linux's own limit for one path lookup


class Source(ABC):
    """One version of a tree, read-only.

    Symlinks are resolved by the same rule in every version (a commit, the disk, a patch's
    results), so the gate's modes agree with each other and with `mmioscan scan`: a symlink
    whose target stays in the tree reads as that file, under the link's own path; one that
    leaves the tree, dangles or loops is never read, and a C file among those is recorded in
    `problems` (path -> message, the messages of the facts runner)."""

    label: str
    root: Path

    def __init__(self) -> None:
        self.problems: dict[str, str] = {}

    # -- what each kind of version provides ------------------------------------------------

    @abstractmethod
    def kind(self, path: str) -> Kind | None:
        """What the path itself is (a symlink is not followed), None when absent."""

    @abstractmethod
    def target(self, path: str) -> str:
        """The text of the symlink at path."""

    @abstractmethod
    def entries(self, folder: str) -> list[str]:
        """The paths of the folder's entries (not recursive), whatever their kind."""

    @abstractmethod
    def read_real(self, paths: Sequence[str]) -> dict[str, bytes]:
        """The contents of regular files (paths without symlinks)."""

    @abstractmethod
    def build_candidates(self) -> list[str]:
        """The paths of the tree's Makefile, Kbuild and Kconfig* entries, whatever their kind."""

    # -- shared by every version -----------------------------------------------------------

    def resolve(self, path: str) -> tuple[str, str | None]:
        """("file", the real tree path) for a path that leads to a regular file in the tree;
        else (a message or "missing" / "dir", None). Lexical, component by component, as
        realpath(3): `..` above the root or an absolute target outside it leaves the tree."""
        pending = [p for p in path.split("/") if p]
        done: list[str] = []
        hops = 0
        while pending:
            part = pending.pop(0)
            if part == ".":
                continue
            if part == "..":
                if not done:
                    return LEAVES_TREE, None
                done.pop()
                continue
            here = "/".join((*done, part))
            if self.kind(here) != "link":
                done.append(part)
                continue
            hops += 1
            if hops > MAX_LINK_HOPS:
                return BROKEN_LINK, None
            text = self.target(here)
            if text.startswith("/"):
                inside = _inside(text, str(self.root))
                if inside is None:
                    return LEAVES_TREE, None
                done, text = [], inside
            pending[:0] = [p for p in text.split("/") if p]
        real = "/".join(done)
        kind = self.kind(real) if real else "dir"
        if kind == "file":
            return "file", real
        if kind is None:
            return (BROKEN_LINK if self.kind(path) == "link" else "missing"), None
        return ("dir" if kind == "dir" else NOT_REGULAR), None

    def is_file(self, path: str) -> bool:
        return self.resolve(path)[0] == "file"

    def link_target(self, path: str) -> str | None:
        """The symlink's text when path is a symlink (what a patch of it changes)."""
        return self.target(path) if self.kind(path) == "link" else None

    def files_in(self, folder: str) -> list[str]:
        """The folder's entries that are no folders: regular files, and symlinks that do not
        lead to a folder (whether they can be read is read()'s to say)."""
        return sorted(p for p in self.entries(folder)
                      if self.kind(p) == "file" or self.resolve(p)[0] != "dir")

    def build_files(self) -> list[str]:
        return sorted(p for p in self.build_candidates() if self.is_file(p))

    def read(self, paths: Sequence[str]) -> dict[str, bytes]:
        """The contents of the paths that lead to regular files in the tree; the others are
        absent, and a C file among them that exists is a problem (see the class comment)."""
        real_of: dict[str, str] = {}
        for path in paths:
            status, real = self.resolve(path)
            if real is not None:
                real_of[path] = real
            elif status not in ("missing", "dir") and path.endswith(SOURCE_SUFFIXES):
                self.problems[path] = status
        data = self.read_real(sorted(set(real_of.values())))
        return {p: data[r] for p, r in real_of.items() if r in data}


def _inside(target: str, root: str) -> str | None:
    """An absolute symlink target as a path relative to the tree root, or None outside it."""
    root = root.rstrip("/")
    if target == root:
        return ""
    return target[len(root) + 1:] if target.startswith(root + "/") else None


# Every git command runs with these: the repository's configuration must not make the gate
# run programs. core.fsmonitor names a program git starts to list changed files (a diff
# against the working tree would run it); hooks are disabled the same way, for any command
# that might run one.
SAFE_CONFIG = ("-c", "core.fsmonitor=", "-c", "core.hooksPath=/dev/null")


def git(root: Path, *args: str, data: bytes | None = None) -> bytes:
    """Run git in root (with SAFE_CONFIG); GitError with git's own first line of complaint."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_PAGER": "cat"}
    env.pop("GIT_DIR", None)  # a hook's environment must not redirect us to another repo
    env.pop("GIT_INDEX_FILE", None)
    env.pop("GIT_WORK_TREE", None)
    try:
        proc = subprocess.run(["git", *SAFE_CONFIG, "-C", str(root), *args], input=data,
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


class RevSource(Source):
    """A commit: the file list from one `git ls-tree`, contents from `git cat-file --batch`."""

    def __init__(self, root: Path, commit: str, label: str | None = None) -> None:
        super().__init__()
        self.root, self.commit = root, commit
        self.label = label or commit[:12]
        listing = git(root, "ls-tree", "-r", "-z", "--full-tree", commit)
        self.blobs: dict[str, str] = {}  # regular files (100644, 100755) -> blob id
        self.links: dict[str, str] = {}  # symlinks (120000) -> the blob holding the target
        self._submodules: set[str] = set()
        for entry in listing.split(b"\0"):
            meta, _, path = entry.partition(b"\t")
            parts = meta.split()
            if len(parts) != 3:
                continue
            name = _text(path)
            if parts[1] == b"blob" and parts[0] in (b"100644", b"100755"):
                self.blobs[name] = parts[2].decode()
            elif parts[1] == b"blob" and parts[0] == b"120000":
                self.links[name] = parts[2].decode()
            elif parts[1] == b"commit":
                self._submodules.add(name)  # a folder of another repository: nothing to scan
        self._folders: dict[str, list[str]] | None = None
        self._dirs: set[str] | None = None
        self._targets: dict[str, str] | None = None

    def kind(self, path: str) -> Kind | None:
        if path in self.blobs:
            return "file"
        if path in self.links:
            return "link"
        if self._dirs is None:
            self._dirs = {posixpath.dirname(p) for p in (*self.blobs, *self.links,
                                                         *self._submodules)}
            for folder in list(self._dirs):
                while folder:
                    folder = posixpath.dirname(folder)
                    self._dirs.add(folder)
            self._dirs |= self._submodules
        return "dir" if path in self._dirs else None

    def target(self, path: str) -> str:
        if self._targets is None:  # every symlink's text in one batch, the first time
            names = sorted(self.links)
            out = git(self.root, "cat-file", "--batch",
                      data="".join(f"{self.links[n]}\n" for n in names).encode())
            self._targets = {n: _text(t) for n, t in
                             zip(names, _batch_contents(out, len(names)), strict=True)}
        return self._targets[path]

    def entries(self, folder: str) -> list[str]:
        if self._folders is None:
            self._folders = {}
            for path in (*self.blobs, *self.links):
                self._folders.setdefault(posixpath.dirname(path), []).append(path)
        return self._folders.get(folder, [])

    def build_candidates(self) -> list[str]:
        return [p for p in (*self.blobs, *self.links) if is_build_file(p)]

    def read_real(self, paths: Sequence[str]) -> dict[str, bytes]:
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


class DiskSource(Source):
    """Files on disk under root: the working tree, or a tree under no version control."""

    def __init__(self, root: Path, label: str = "working tree") -> None:
        super().__init__()
        self.root, self.label = root, label
        self._top = str(root)
        # What each path is, looked up once per gate: resolve() walks every component of
        # every path (`drivers`, `drivers/net`, ... again for each of thousands of build
        # files and headers), and those lstat calls were a quarter of a warm one-file gate.
        # The tree is read as it is when the gate starts; one changing under it is a race
        # either way.
        self._kinds: dict[str, Kind | None] = {}
        self._build: list[str] | None = None
        self._read: dict[str, bytes] = {}  # read once: the head (an overlay) reads it too

    def kind(self, path: str) -> Kind | None:
        if path in self._kinds:
            return self._kinds[path]
        found = self._kinds[path] = self._lstat_kind(path)
        return found

    def _lstat_kind(self, path: str) -> Kind | None:
        try:
            mode = os.lstat(os.path.join(self._top, path)).st_mode
        except OSError:
            return None
        if stat.S_ISLNK(mode):
            return "link"
        if stat.S_ISREG(mode):
            return "file"
        return "dir" if stat.S_ISDIR(mode) else "other"

    def target(self, path: str) -> str:
        try:
            return os.readlink(self.root / path)
        except OSError:
            return ""  # gone since kind(): resolves to the folder itself, never a file

    def entries(self, folder: str) -> list[str]:
        try:
            with os.scandir(self.root / folder) as found:
                names = [e.name for e in found]
        except OSError:
            return []
        return [posixpath.join(folder, n) if folder else n for n in names]

    def build_candidates(self) -> list[str]:
        if self._build is None:  # one walk of the tree per gate (the base and the head ask)
            self._build = self._walk_build_candidates()
        return list(self._build)

    def _walk_build_candidates(self) -> list[str]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            base = os.path.relpath(dirpath, self.root)
            found += [n if base == "." else f"{base}/{n}".replace(os.sep, "/")
                      for n in filenames if _BUILD_FILES.match(n)]
        return found

    def read_real(self, paths: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for path in paths:
            data = self._read.get(path)
            if data is None:
                try:
                    # regular files only, never a FIFO
                    data = self._read[path] = read_input(self.root / path)
                except OSError:
                    continue  # gone or unreadable: absent from this version
            found[path] = data
        return found


class OverlaySource(Source):
    """Another source with some files replaced or deleted (a patch's results); `links`: the
    paths the patch leaves as symlinks, with their text."""

    def __init__(self, base: Source, changes: Mapping[str, bytes | None], label: str,
                 links: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.base, self.label, self.root = base, label, base.root
        self.links = dict(links or {})
        self.changes = {p: d for p, d in changes.items() if p not in self.links}
        self._dirs = {posixpath.dirname(p) for p, d in (*self.changes.items(),
                                                        *self.links.items()) if d is not None}
        for folder in list(self._dirs):
            while folder:
                folder = posixpath.dirname(folder)
                self._dirs.add(folder)

    def kind(self, path: str) -> Kind | None:
        if path in self.links:
            return "link"
        if path in self.changes:
            return "file" if self.changes[path] is not None else None
        found = self.base.kind(path)
        return "dir" if found is None and path in self._dirs else found

    def target(self, path: str) -> str:
        return self.links[path] if path in self.links else self.base.target(path)

    def entries(self, folder: str) -> list[str]:
        names = set(self.base.entries(folder))
        for path, data in (*self.changes.items(), *self.links.items()):
            if posixpath.dirname(path) == folder:
                (names.add if data is not None else names.discard)(path)
        return sorted(names)

    def build_candidates(self) -> list[str]:
        names = set(self.base.build_candidates())
        for path, data in (*self.changes.items(), *self.links.items()):
            if is_build_file(path):
                (names.add if data is not None else names.discard)(path)
        return sorted(names)

    def read_real(self, paths: Sequence[str]) -> dict[str, bytes]:
        found = self.base.read_real([p for p in paths if p not in self.changes])
        for path in paths:
            data = self.changes.get(path)
            if data is not None:
                found[path] = data
        return found


def _includes(path: str, data: bytes, source: Source, flags: IncludePaths) -> set[str]:
    """The tree paths of the headers a file includes that exist in this version: next to
    it, in include/ and arch/, then in the folders its Makefiles add with -I (as the scan
    resolves them: analysis/includes.py)."""
    found: set[str] = set()
    for match in INCLUDE_RE.finditer(data):
        target = match.group(1).decode("utf-8", "replace")
        hit = next((c for c in include_candidates(path, target) if source.is_file(c)), None)
        if hit is None:
            hit = next((c for c in flags.candidates(posixpath.dirname(path), target)
                        if source.is_file(c)), None)
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
    flags = IncludePaths(Path("."), files={p: d for p, d in contents.items()
                                           if is_build_file(p)})
    fresh = [p for p in contents if p.endswith(SOURCE_SUFFIXES)]
    for _ in range(INCLUDE_DEPTH):
        headers: set[str] = set()
        for path in fresh:
            headers |= _includes(path, contents[path], source, flags)
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
    alone: their unchanged stat lets the facts cache answer from its stamps, without even
    hashing them, when the gate reuses its workspace. WorkspaceError when the disk refuses."""
    try:
        _sync_tree(dest, contents)
    except OSError as exc:
        where = clean(exc.filename if isinstance(exc.filename, str) else str(dest))
        raise WorkspaceError(f"cannot lay out {where}: {exc.strerror or exc}") from None


def _sync_tree(dest: Path, contents: Mapping[str, bytes]) -> None:
    # Plain strings, not pathlib: a reused workspace holds thousands of files, and building
    # and relativising a Path for each was most of a warm gate's layout time.
    dest.mkdir(parents=True, exist_ok=True)
    top = str(dest)
    wanted_dirs = {""}
    for path in contents:
        folder = posixpath.dirname(path)
        while folder not in wanted_dirs:
            wanted_dirs.add(folder)
            folder = posixpath.dirname(folder)
    for dirpath, dirnames, filenames in os.walk(top, topdown=False):
        here = os.path.relpath(dirpath, top).replace(os.sep, "/")
        here = "" if here == "." else here
        for name in filenames:
            if (f"{here}/{name}" if here else name) not in contents:
                os.unlink(os.path.join(dirpath, name))
        for name in dirnames:
            if (f"{here}/{name}" if here else name) in wanted_dirs:
                continue  # holds a wanted file once written: an rmdir here would be undone
            with contextlib.suppress(OSError):  # only empty folders go
                os.rmdir(os.path.join(dirpath, name))
    for path, data in contents.items():
        target = os.path.join(top, path)
        try:
            if os.stat(target).st_size == len(data):
                with open(target, "rb") as fh:
                    if fh.read() == data:
                        continue
        except OSError:
            os.makedirs(os.path.dirname(target), exist_ok=True)
        Path(target).write_bytes(data)  # the few files that changed
