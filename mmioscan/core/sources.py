"""The package's own source files a module depends on, found from its imports.

The facts cache is keyed by the source of the code that produces the facts, so a change to
the C front end or to the records' shape invalidates cached facts without anyone bumping a
number. Which files those are is derived here from the import statements (transitively,
within the `mmioscan` package), never listed by hand.
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = "mmioscan"
_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def module_file(name: str) -> Path | None:
    """The file of a module of this package (`mmioscan.cfront.extract`), or None."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = _PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, name: str) -> set[str]:
    """Package modules imported by one file (absolute and relative imports)."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from mmioscan.report import csv`: csv may be a module of its own.
            found.update(f"{base}.{a.name}" for a in node.names)
    return {n for n in found if n.split(".")[0] == PACKAGE}


def closure(root: str) -> tuple[Path, ...]:
    """Every package file `root` imports, directly or not, itself included; sorted."""
    seen: dict[str, Path] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = module_file(name)
        if path is None:
            continue
        seen[name] = path
        todo.extend(_imports(path, name) - seen.keys())
    return tuple(sorted(set(seen.values())))


@cache
def source_digest(root: str) -> str:
    """A hash of the source of `root` and of every package module it imports."""
    digest = hashlib.sha1(usedforsecurity=False)
    for path in closure(root):
        digest.update(path.relative_to(_PACKAGE_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
