"""Locate (and if needed install and extract) Debian's linux-source tarball.

Used by `make demo`, the integration tests and bench/. Kernel sources are never committed: they
are extracted once into a cache folder and reused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from mmioscan.core.fileio import write_atomic
from mmioscan.core.paths import cache_base

DEFAULT_PACKAGE = "linux-source-6.12"
CONFIG_PACKAGE = "linux-config-6.12"
CLOUD_CONFIG = "config.amd64_none_cloud-amd64.xz"


class KernelSourceError(Exception):
    """The kernel tree could not be found, installed or extracted."""


def cache_root() -> Path:
    """Where extracted trees live: $MMIOSCAN_KERNEL_CACHE, else ~/.cache/mmioscan/kernel."""
    env = os.environ.get("MMIOSCAN_KERNEL_CACHE")
    if env:
        return Path(env)
    return cache_base() / "kernel"


def tarball_path(package: str = DEFAULT_PACKAGE) -> Path:
    return Path("/usr/src") / f"{package}.tar.xz"


def _apt_install(*packages: str) -> None:
    if shutil.which("apt-get") is None:
        raise KernelSourceError(f"{packages[0]} is not installed and apt-get is not available")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for args in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends",
                                         *packages]):
        proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise KernelSourceError(f"{' '.join(args[:2])} failed: {last}")


def ensure_tree(package: str = DEFAULT_PACKAGE, install: bool = True) -> Path:
    """Return the root of the extracted tree, installing and extracting it when missing."""
    dest = cache_root() / package
    marker = cache_root() / f".{package}.extracted"
    if marker.exists() and (dest / "Makefile").exists():
        return dest
    tarball = tarball_path(package)
    if not tarball.exists():
        if not install:
            raise KernelSourceError(f"{tarball} is missing (apt-get install {package})")
        _apt_install(package, CONFIG_PACKAGE)
    if not tarball.exists():
        raise KernelSourceError(f"{tarball} is still missing after installing {package}")
    cache_root().mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    proc = subprocess.run(["tar", "-xf", str(tarball), "-C", str(cache_root())],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (dest / "Makefile").exists():
        raise KernelSourceError(f"extracting {tarball} failed: {proc.stderr.strip()[:200]}")
    marker.write_text(str(tarball) + "\n")
    return dest


def ensure_cloud_config(package: str = CONFIG_PACKAGE) -> Path:
    """Return Debian's cloud-amd64 .config (TDX guest capable), decompressed into the cache."""
    src = Path("/usr/src") / package / CLOUD_CONFIG
    if not src.exists():
        _apt_install(package)
    dest = cache_root() / f"{package}-{CLOUD_CONFIG.removesuffix('.xz')}"
    if not dest.exists():
        proc = subprocess.run(["xz", "-dc", str(src)], capture_output=True, check=False)
        if proc.returncode != 0:
            raise KernelSourceError(f"cannot decompress {src}")
        try:
            cache_root().mkdir(parents=True, exist_ok=True)
            write_atomic(dest, proc.stdout)  # never a truncated .config that exists()
        except OSError as exc:
            raise KernelSourceError(f"cannot write {dest}: {exc.strerror or exc}") from None
    return dest
