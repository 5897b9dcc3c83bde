"""The kernel tree: its root, its version, and the C files in scope (sorted, deterministic)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from mmioscan.core.model import Problem

SOURCE_SUFFIXES = (".c", ".h")
_ROOT_MARKERS = ("MAINTAINERS", "Kbuild", "arch")


class TreeError(Exception):
    """The paths given cannot be scanned (missing, outside the root, nothing to scan)."""


def is_kernel_root(path: Path) -> bool:
    return all((path / m).exists() for m in _ROOT_MARKERS) and (path / "arch").is_dir()


def find_root(path: Path) -> Path | None:
    """Walk up from path to the first folder that looks like a kernel tree."""
    start = path if path.is_dir() else path.parent
    for candidate in (start, *start.parents):
        if is_kernel_root(candidate):
            return candidate
    return None


def kernel_version(root: Path) -> str | None:
    """VERSION.PATCHLEVEL.SUBLEVEL[EXTRAVERSION] from the top Makefile, if there is one."""
    try:
        head = (root / "Makefile").read_text(errors="replace")[:2000]
    except OSError:
        return None
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)[ \t]*=[ \t]*(\S*)", head,
                             re.MULTILINE))
    if "VERSION" not in fields or "PATCHLEVEL" not in fields:
        return None
    version = f"{fields['VERSION']}.{fields['PATCHLEVEL']}"
    if fields.get("SUBLEVEL"):
        version += f".{fields['SUBLEVEL']}"
    return version + str(fields.get("EXTRAVERSION", ""))


@dataclass(frozen=True, slots=True)
class FileSet:
    """What to scan: the root, the paths as given (relative to root) and the files found."""

    root: Path
    targets: tuple[str, ...]
    files: tuple[str, ...]
    problems: tuple[Problem, ...]


def resolve_root(paths: list[Path], root: Path | None) -> Path:
    for p in paths:
        if not os.path.lexists(p):
            raise TreeError(f"no such file or folder: {p}")
        if not p.exists():
            raise TreeError(f"cannot follow {p} (broken link or symlink loop)")
    if root is not None:
        if not root.is_dir():
            raise TreeError(f"--root is not a folder: {root}")
        return root.resolve()
    found = find_root(paths[0].resolve())
    if found is not None:
        return found
    first = paths[0].resolve()
    return first if first.is_dir() else first.parent


def _relative(path: Path, root: Path) -> str:
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        raise TreeError(f"{path} is not inside the tree root {root}") from None
    return rel.as_posix() or "."


def _walk(root: Path, rel: str, files: set[str], problems: list[Problem]) -> None:
    """Add the C files under root/rel; symlinked folders are not followed (no loops)."""
    def onerror(exc: OSError) -> None:
        where = Path(exc.filename).resolve() if exc.filename else root / rel
        problems.append(Problem(_relative(where, root), f"cannot list folder: {exc.strerror}"))

    for dirpath, dirnames, filenames in os.walk(root / rel, onerror=onerror):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        base = Path(dirpath).relative_to(root)
        for name in filenames:
            if name.endswith(SOURCE_SUFFIXES):
                files.add((base / name).as_posix())


def collect(paths: list[Path], root: Path | None = None) -> FileSet:
    """Resolve the root and list every C file under the given paths."""
    real_root = resolve_root(paths, root)
    files: set[str] = set()
    problems: list[Problem] = []
    targets: list[str] = []
    for p in paths:
        rel = _relative(p, real_root)
        targets.append(rel)
        if p.is_dir():
            _walk(real_root, "" if rel == "." else rel, files, problems)
        elif p.name.endswith(SOURCE_SUFFIXES):
            files.add(rel)
        else:
            raise TreeError(f"not a C source or header file: {p}")
    if not files and not problems:
        raise TreeError(f"no C source or header files under {', '.join(map(str, paths))}")
    return FileSet(real_root, tuple(targets), tuple(sorted(files)), tuple(problems))
