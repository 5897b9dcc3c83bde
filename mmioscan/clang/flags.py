"""Per-file compile flags, asked of Kbuild itself: `make O=DIR V=1 -n FOLDER/`.

A dry run of a folder target prints the command Kbuild would run for every object the .config
builds in that folder and below (make descends from the root along the real obj-y/obj-m
path, so a folder the config does not reach prints nothing): include paths, pre-included
headers, -D flags, the folder's ccflags and the file's CFLAGS_, -DMODULE and KBUILD_MODNAME
for modules. Nothing is compiled and nothing is written into the tree. The commands are
parsed with shlex; GCC's code-generation, warning and dependency options are dropped, the
preprocessor and language options kept (`clang_args`), relative paths made absolute (make
runs the compiler in the build folder), and the `__iomem` shim is pre-included last.

Results are cached per folder in the prepared build (`.mmioscan/flags/`): its key already
covers the version, the build inputs and the .config (docs/precise.md).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import shlex
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mmioscan.clang.prepare import Prepared, make_command
from mmioscan.core.sources import source_digest

SHIM_NAME = "iomem-shim.h"
# Sparse's `__iomem` (address_space, which clang refuses) as a type tag clang keeps on the
# pointee type: `u32 __iomem *p` then has the type `u32 __attribute__((btf_type_tag("iomem")))*`.
SHIM = """/* mmioscan: sparse's __iomem as a type tag clang keeps (docs/precise.md) */
#undef __iomem
#define __iomem __attribute__((btf_type_tag("iomem")))
"""
IOMEM_TAG = 'btf_type_tag("iomem")'

# Options given with their value as the next word; the ones kept are in _KEEP_WITH_VALUE.
_WITH_VALUE = frozenset({"-o", "-include", "-isystem", "-iquote", "-imacros", "-idirafter",
                         "-I", "-D", "-U", "-x", "-MF", "-MT", "-MQ", "--param", "-Xassembler"})
_KEEP_WITH_VALUE = frozenset({"-include", "-isystem", "-iquote", "-imacros", "-idirafter", "-I",
                              "-D", "-U"})
_PATH_OPTIONS = frozenset({"-include", "-isystem", "-iquote", "-imacros", "-idirafter", "-I"})
# Language and target options that change what the preprocessor defines or how C is read.
_KEEP_EXACT = frozenset({
    "-nostdinc", "-fshort-wchar", "-funsigned-char", "-fsigned-char", "-fms-extensions",
    "-fno-common", "-m64", "-m32", "-mno-sse", "-mno-mmx", "-mno-sse2", "-mno-3dnow",
    "-mno-avx", "-mno-80387", "-mno-red-zone", "-ffreestanding", "-fno-builtin"})
_KEEP_PREFIX = ("-D", "-U", "-I", "-std=")
_FOLDER_RE = re.compile(r"Makefile\.build obj=(\S+)")
_TARGET = "--target=x86_64-linux-gnu"
# libclang's own options: no warnings (they are not facts), errors are.
_EXTRA = ("-w", "-Wno-error")


# Cached flags and the facts made with them are keyed by this module's source too: a change
# to how flags are derived is a cache miss.
FLAGS_VERSION = source_digest(__name__)[:8]


class FlagsError(Exception):
    """`make -n` could not be run or failed: one line, exit 2."""


@dataclass(frozen=True, slots=True)
class FolderFlags:
    """What a dry run of one folder showed: the folders make descended into and the
    command-line arguments (for clang) of every .c file the config builds there."""

    folder: str
    visited: tuple[str, ...]
    files: dict[str, tuple[str, ...]]


def shim_path(prepared: Prepared) -> Path:
    path = prepared.build / ".mmioscan" / SHIM_NAME
    if not path.is_file() or path.read_text() != SHIM:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SHIM)
    return path


def _segments(line: str) -> list[list[str]]:
    lex = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lex.whitespace_split = True
    segments: list[list[str]] = [[]]
    try:
        for token in lex:
            if token and set(token) <= set(";&|"):
                segments.append([])
            else:
                segments[-1].append(token)
    except ValueError:  # an unbalanced quote: not a command line we can read
        return []
    return [s for s in segments if s]


def compile_command(line: str) -> tuple[str, list[str]] | None:
    """(source .c file, compiler arguments) of a line of `make V=1 -n` output that compiles
    one C file to an object (`gcc ... -c -o x.o x.c`), else None."""
    for words in _segments(line):
        if "-c" not in words or "-o" not in words or "-E" in words:
            continue
        source = words[-1]
        out = words[words.index("-o") + 1] if words.index("-o") + 1 < len(words) else ""
        if source.endswith(".c") and out.endswith(".o"):
            return source, words[1:]
    return None


def clang_args(args: Iterable[str], build: Path, shim: Path | None = None) -> tuple[str, ...]:
    """GCC's arguments for one file -> libclang's: preprocessor and language options kept,
    paths made absolute (relative to the build folder), the rest dropped."""
    kept: list[str] = [_TARGET]
    words = list(args)
    i = 0
    while i < len(words):
        word = words[i]
        if word in _WITH_VALUE:
            value = words[i + 1] if i + 1 < len(words) else ""
            if word in _KEEP_WITH_VALUE:
                kept += [word, _absolute(value, build) if word in _PATH_OPTIONS else value]
            i += 2
            continue
        if word.startswith("-I") and len(word) > 2:
            kept.append("-I" + _absolute(word[2:], build))
        elif word in _KEEP_EXACT or (word.startswith(_KEEP_PREFIX) and not word.endswith(".c")):
            kept.append(word)
        i += 1
    if shim is not None:
        kept += ["-include", str(shim)]
    kept += _EXTRA
    return tuple(kept)


def _absolute(path: str, build: Path) -> str:
    return path if path.startswith("/") else str((build / path).resolve())


def parse_dry_run(text: str, tree: Path, build: Path, shim: Path | None
                  ) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(folders descended into, {tree-relative .c path: clang arguments}) of `make -n`."""
    visited = sorted(set(_FOLDER_RE.findall(text)))
    files: dict[str, tuple[str, ...]] = {}
    prefix = str(tree) + "/"
    for line in text.splitlines():
        if "-c" not in line or ".c" not in line:
            continue
        found = compile_command(line)
        if found is None:
            continue
        source, args = found
        if source.startswith(prefix):
            rel = source[len(prefix):]
        elif not source.startswith("/"):
            rel = posixpath.normpath(source)
        else:
            continue  # a file outside the tree
        files.setdefault(rel, clang_args(args, build, shim))
    return tuple(v.strip("/") or "." for v in visited), files


def _cache_file(prepared: Prepared, folder: str) -> Path:
    name = hashlib.sha1(folder.encode(), usedforsecurity=False).hexdigest()[:16]
    return prepared.build / ".mmioscan" / f"flags-{FLAGS_VERSION}" / f"{name}.json"


def folder_flags(prepared: Prepared, folder: str) -> FolderFlags:
    """The dry run of one folder (tree-relative), from the cache or from make."""
    cached = _load(_cache_file(prepared, folder), folder)
    if cached is not None:
        return cached
    shim = shim_path(prepared)
    target = "./" if folder in ("", ".") else folder.rstrip("/") + "/"
    command = [*make_command(prepared.tree, prepared.build, target), "V=1", "-n", "-s"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, check=False)
    except OSError as exc:
        raise FlagsError(f"cannot run make: {exc.strerror or exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise FlagsError(f"`make -n {target}` in {prepared.build} failed: {last}")
    visited, files = parse_dry_run(done.stdout, prepared.tree, prepared.build, shim)
    result = FolderFlags(folder, visited, files)
    path = _cache_file(prepared, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"folder": folder, "visited": list(visited),
                               "files": {k: list(v) for k, v in sorted(files.items())}}))
    tmp.replace(path)
    return result


def _load(path: Path, folder: str) -> FolderFlags | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("folder") != folder:
        return None
    files = {str(k): tuple(str(a) for a in v) for k, v in dict(data.get("files", {})).items()}
    return FolderFlags(folder, tuple(data.get("visited", ())), files)


@dataclass(frozen=True, slots=True)
class BuildPlan:
    """Which .c files of a scan the config builds, each with its clang arguments."""

    flags: dict[str, tuple[str, ...]]
    not_built: tuple[str, ...]  # .c files in scope no dry run compiles


def plan(prepared: Prepared, files: Iterable[str], targets: Iterable[str] = ()) -> BuildPlan:
    """Flags for every .c file of `files` (tree-relative): one dry run per scanned folder
    (`targets`, a file's folder for a file), none inside another: the dry run of a folder
    decides every file below it (docs/precise.md)."""
    sources = sorted(f for f in files if f.endswith(".c"))
    tops = {t if not t.endswith((".c", ".h")) else posixpath.dirname(t) for t in targets}
    tops |= {posixpath.dirname(f) for f in sources if not any(_under(f, t) for t in tops)}
    queried = sorted({t or "." for t in tops}, key=lambda f: (f.count("/"), f))
    known: dict[str, tuple[str, ...]] = {}
    done: list[str] = []
    for folder in queried:
        if any(_under(folder, q) for q in done):
            continue
        known.update(folder_flags(prepared, folder).files)
        done.append(folder)
    flags = {f: known[f] for f in sources if f in known}
    return BuildPlan(flags, tuple(f for f in sources if f not in known))


def _under(path: str, folder: str) -> bool:
    return folder in ("", ".") or path == folder or path.startswith(folder.rstrip("/") + "/")


def flags_digest(args: Iterable[str]) -> str:
    return hashlib.sha1("\0".join(args).encode(), usedforsecurity=False).hexdigest()[:16]
