"""The engine of the facts stage: the fast engine's spec as is, or the precise one's with the
flags Kbuild gives every built .c file in scope (clang/flags.py, docs/precise.md)."""

from __future__ import annotations

import dataclasses

from mmioscan.clang.flags import FLAGS_VERSION, plan
from mmioscan.clang.prepare import Prepared
from mmioscan.facts.runner import ExtractSpec
from mmioscan.kernel.tree import FileSet

ENGINES = ("fast", "clang")


def engine_spec(spec: ExtractSpec, engine: str, prepared: Prepared | None,
                fileset: FileSet) -> ExtractSpec:
    """spec for `engine`; the clang engine needs the tree prepared for the .config. Its facts
    are kept per prepared build and per version of the code that derives the flags."""
    if engine == "fast":
        return spec
    if engine != "clang" or prepared is None:
        raise ValueError(f"engine {engine!r} needs a prepared build")
    built = plan(prepared, fileset.files, fileset.targets)
    return dataclasses.replace(spec, engine="clang", tree=str(prepared.tree),
                               flags=tuple(sorted(built.flags.items())),
                               build_key=f"{prepared.key}-{FLAGS_VERSION}")
