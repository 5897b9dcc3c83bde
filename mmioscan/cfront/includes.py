"""Where an `#include` target may live in the tree (x86's include paths, no build needed)."""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Iterator

INCLUDE_DIRS = ("include", "arch/x86/include", "include/uapi", "arch/x86/include/uapi",
                "arch/x86/include/generated")

# Folder of a path, memoized: the graph and the scan ask for the same few thousand folders
# hundreds of thousands of times.
def same_subtree(a: str, b: str) -> bool:
    """One folder is the other or lies below it (drivers/x and drivers/x/sub, not drivers/y)."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


folder_of = functools.lru_cache(maxsize=None)(posixpath.dirname)


def include_candidates(path: str, target: str) -> Iterator[str]:
    """Tree paths an `#include` target may name: `"x.h"` next to path, `<a/b.h>` in include/."""
    name = target[1:-1]
    if target.startswith('"'):
        yield posixpath.normpath(posixpath.join(folder_of(path), name))
    for base in INCLUDE_DIRS:
        yield f"{base}/{name}"
