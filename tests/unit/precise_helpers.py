"""A prepared build of the precise fixture tree without make: the marker and the flags a
dry run would have given (tests/fixtures/precise; docs/precise.md)."""

from __future__ import annotations

import json
from pathlib import Path

from mmioscan.clang.flags import _cache_file, clang_args, shim_path
from mmioscan.clang.prepare import (
    MARKER,
    Prepared,
    build_key,
    config_digest,
    prepared_root,
    tree_stamp,
)
from mmioscan.kernel.tree import kernel_version

PRECISE = Path(__file__).resolve().parent.parent / "fixtures" / "precise"
CONFIG = PRECISE / "demo.config"
BUILT = ("drivers/demo/demo.c", "drivers/demo/demo_bad.c")


def gcc_words(tree: Path, source: str) -> list[str]:
    """What Kbuild's dry run would show for one object (relative paths from the build)."""
    return ["-Wp,-MMD,drivers/demo/.x.o.d", "-nostdinc", f"-I{tree}/include", "-I./include",
            "-DCONFIG_DEMO=1", "-fconserve-stack", "-mpreferred-stack-boundary=3", "-O2",
            "-Wall", "-DKBUILD_MODNAME=\"demo\"", "-c", "-o", source[:-2] + ".o",
            f"{tree}/{source}"]


def fake_prepared(tree: Path = PRECISE, config: Path = CONFIG) -> Prepared:
    """The prepared build `prepare(tree, config)` reuses, under the (private) cache."""
    tree = tree.resolve()
    version = kernel_version(tree) or "0"
    digest = config_digest(config)
    key = build_key(version, tree_stamp(tree), digest)
    build = prepared_root() / f"{version}-{key}"
    build.mkdir(parents=True, exist_ok=True)
    (build / MARKER).write_text(json.dumps({"key": key}))
    prepared = Prepared(tree, build, key, version, digest)
    shim = shim_path(prepared)
    files = {rel: list(clang_args(gcc_words(tree, rel)[:-1], build, shim)) for rel in BUILT}
    path = _cache_file(prepared, "drivers/demo")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"folder": "drivers/demo", "visited": ["drivers/demo"],
                                "files": files}))
    return prepared
