"""`make O=DIR olddefconfig prepare`: an out-of-tree build of a kernel tree for one .config.

The precise engine needs what Kbuild generates before it compiles anything (autoconf.h, the
generated asm headers, asm-offsets.h, the syscall tables, objtool) and asks this build for
each file's compile command (clang/flags.py). The build lives under the cache, never in the
tree (`make O=`), and is reused by key: the kernel version, a stamp of the tree's build inputs
and the .config's hash (docs/precise.md).

The stamp covers (path, size, mtime) of every Makefile, Kbuild and Kconfig file and of every
file under include/, arch/x86/, scripts/ and tools/: what `prepare` reads. A change to a
driver's own sources does not re-prepare; the facts cache checks the headers each parsed
file included (FileFacts.depends).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mmioscan.core.paths import cache_base

MARKER = ".mmioscan-prepared.json"
LOG = ".mmioscan-prepare.log"
_PREPARE_DIRS = ("include", "arch/x86", "scripts", "tools")
_BUILD_FILE_PREFIXES = ("Makefile", "Kbuild", "Kconfig")

# What `make olddefconfig prepare` runs, and the Debian package that provides it.
TOOLS = (("make", "make"), ("gcc", "gcc"), ("flex", "flex"), ("bison", "bison"), ("bc", "bc"),
         ("perl", "perl"))
# Headers the host programs prepare builds include (objtool, sign-file), by package.
HEADERS = (("gelf.h", "libelf-dev"), ("openssl/opensslv.h", "libssl-dev"))
APT_PACKAGES = ("flex", "bison", "bc", "libelf-dev", "libssl-dev")


class PrepareError(Exception):
    """The tree cannot be prepared: one line, exit 2."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A prepared out-of-tree build."""

    tree: Path  # the source tree (resolved)
    build: Path  # the O= folder
    key: str  # kernel version, tree stamp, config hash
    version: str
    config_digest: str
    seconds: float | None = None  # the time `make` took now; None when reused

    def as_json(self) -> dict[str, object]:
        return {"tree": str(self.tree), "build": str(self.build), "key": self.key,
                "version": self.version, "config_digest": self.config_digest}


def prepared_root() -> Path:
    return cache_base() / "prepared"


def config_digest(config: Path) -> str:
    try:
        return hashlib.sha1(config.read_bytes(), usedforsecurity=False).hexdigest()
    except OSError as exc:
        raise PrepareError(f"{config}: cannot read ({exc.strerror or exc})") from None


def _stamped(rel: str, name: str) -> bool:
    return name.startswith(_BUILD_FILE_PREFIXES) or rel.startswith(_PREPARE_DIRS) or "/" not in rel


def _walk(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = sorted(os.scandir(root / rel_dir), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.is_dir(follow_symlinks=False):
                if not entry.name.startswith(".git"):
                    stack.append(rel)
            elif entry.is_file(follow_symlinks=False) and _stamped(rel, entry.name):
                with contextlib.suppress(OSError):
                    yield rel, entry.stat(follow_symlinks=False)


def tree_stamp(tree: Path) -> str:
    """A hash of (path, size, mtime) of the tree's build inputs (the module docstring)."""
    digest = hashlib.sha1(usedforsecurity=False)
    for rel, st in sorted(_walk(tree)):
        digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def build_key(version: str, stamp: str, config: str) -> str:
    return hashlib.sha1(f"{version}\0{stamp}\0{config}".encode(),
                        usedforsecurity=False).hexdigest()[:20]


def missing_tools() -> list[str]:
    """Debian packages whose tool or header `make prepare` needs and cannot find."""
    missing = [pkg for tool, pkg in TOOLS if shutil.which(tool) is None]
    if "gcc" in missing:
        return missing
    for header, pkg in HEADERS:
        probe = subprocess.run(["gcc", "-E", "-x", "c", "-o", os.devnull, "-"],
                               input=f"#include <{header}>\n", capture_output=True, text=True,
                               check=False)
        if probe.returncode != 0:
            missing.append(pkg)
    return missing


def _check_tree(tree: Path) -> str:
    from mmioscan.kernel.tree import kernel_version

    if not (tree / "Makefile").is_file() or not (tree / "arch/x86").is_dir():
        raise PrepareError(f"{tree}: not a kernel tree (no Makefile or arch/x86)")
    version = kernel_version(tree)
    if version is None:
        raise PrepareError(f"{tree}/Makefile: no kernel version")
    if (tree / ".config").exists() or (tree / "include/config").exists():
        raise PrepareError(f"{tree}: the source tree is configured in place (.config or "
                           "include/config): `make O=` refuses it; run `make mrproper` there")
    return version


def find_prepared(tree: Path, config: Path, base: Path | None = None) -> Prepared | None:
    """The prepared build of tree for config, if there is one; never runs make."""
    tree = tree.resolve()
    version = _check_tree(tree)
    digest = config_digest(config)
    key = build_key(version, tree_stamp(tree), digest)
    build = (base or prepared_root()) / f"{version}-{key}"
    return _reuse(build, key, tree, version, digest)


def _reuse(build: Path, key: str, tree: Path, version: str, digest: str) -> Prepared | None:
    try:
        marker = json.loads((build / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("key") != key:
        return None
    return Prepared(tree, build, key, version, digest)


def prepare(tree: Path, config: Path, base: Path | None = None, jobs: int = 0) -> Prepared:
    """The prepared build of tree for config: reused when its key matches, else made (a few
    minutes). Raises PrepareError with one line for a missing tool or a failed make."""
    tree = tree.resolve()
    version = _check_tree(tree)
    digest = config_digest(config)
    key = build_key(version, tree_stamp(tree), digest)
    build = (base or prepared_root()) / f"{version}-{key}"
    found = _reuse(build, key, tree, version, digest)
    if found is not None:
        return found
    missing = missing_tools()
    if missing:
        raise PrepareError("preparing a kernel build needs " + ", ".join(missing)
                           + f" (apt-get install {' '.join(missing)})")
    try:
        build.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PrepareError(f"{build}: cannot create ({exc.strerror or exc})") from None
    with _locked(build.with_name(build.name + ".lock")):
        found = _reuse(build, key, tree, version, digest)  # another process made it meanwhile
        if found is not None:
            return found
        seconds = _make(tree, build, config, jobs or os.cpu_count() or 1)
        prepared = Prepared(tree, build, key, version, digest, seconds)
        (build / MARKER).write_text(json.dumps({**prepared.as_json(), "seconds": seconds},
                                               indent=1) + "\n")
        return prepared


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def make_command(tree: Path, build: Path, *targets: str, jobs: int = 1) -> list[str]:
    return ["make", "-C", str(tree), f"O={build}", f"-j{jobs}", *targets]


def _make(tree: Path, build: Path, config: Path, jobs: int) -> float:
    try:
        shutil.copyfile(config, build / ".config")
    except OSError as exc:
        raise PrepareError(f"cannot copy {config} into {build}: {exc.strerror or exc}") from None
    start = time.monotonic()
    command = make_command(tree, build, "olddefconfig", "prepare", jobs=jobs)
    with open(build / LOG, "w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise PrepareError(f"`make O={build} olddefconfig prepare` failed (exit "
                           f"{done.returncode}): {_last_error(build / LOG)}; log: {build / LOG}")
    return round(time.monotonic() - start, 1)


def _last_error(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or ["no output"])[0][:200]
