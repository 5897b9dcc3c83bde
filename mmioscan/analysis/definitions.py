"""Sites that are really the definition of an accessor, not a use of one.

The scanner finds names; the kernel also names accessors where it defines them: inside the
accessor's own body (lib/iomap.c's ioread8 calls readb), in an export (`EXPORT_SYMBOL(
ioread8)`), in x86's generator macros (`build_mmio_read(readl, ...)`) and in prototypes that
tree-sitter's error recovery reads as calls (`void memcpy_fromio(void *, ...);` in io.h).
None of them runs an access of its own: counting them would add the accessors' implementations
to the x86 and generic groups.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from mmioscan.core.model import FileFacts, Site

# A type (or storage class) right before the name: a declaration or definition, not a call.
_DECLARATION_RE = re.compile(
    r"(?:^|[\s*(])(?:void|int|long|short|char|bool|unsigned|signed|u8|u16|u32|u64|"
    r"__u8|__u16|__u32|__u64|__le16|__le32|__le64|__be16|__be32|__be64|size_t|"
    r"extern|inline|__always_inline)\s*\**\s*$")


_CALLEE_RE = re.compile(r"(\w+)\s*$")


def _open_call(prefix: str) -> str | None:
    """The name before the innermost `(` still open at the end of prefix: the macro or
    function whose argument list the site is in (`DEFINE(u32, readl` -> DEFINE)."""
    depth = 0
    for i in range(len(prefix) - 1, -1, -1):
        char = prefix[i]
        if char == ")":
            depth += 1
        elif char == "(":
            if depth == 0:
                m = _CALLEE_RE.search(prefix, 0, i)
                return m.group(1) if m is not None else None
            depth -= 1
    return None


@dataclass(frozen=True, slots=True)
class Definitions:
    accessors: frozenset[str]  # catalogued names: their bodies are implementations
    # rules/wrappers.toml definition_macros, and the scan's macros that paste, stringify or
    # declare with a parameter (FileFacts.definition_macros)
    macros: frozenset[str]

    def is_definition(self, site: Site, line: str) -> bool:
        """Is this site part of an accessor's definition? `line` is the site's source line."""
        if site.function is not None and site.function in self.accessors:
            return True
        prefix = line[: max(site.column - 1, 0)]
        if site.kind == "reference" and self.macros:
            macro = _open_call(prefix)
            if macro is not None and macro in self.macros:
                return True
        if site.kind == "direct" and site.function is None:
            return _DECLARATION_RE.search(prefix) is not None
        return False


def definition_macros(given: Iterable[str], facts: Iterable[FileFacts]) -> frozenset[str]:
    """The definition macros of a scan: the given ones (rules), each file's own, and every
    macro that passes a parameter on to one of them, to a fixpoint over the whole scan
    (alpha's io.h: `IO_CONCAT(__IO_PREFIX, readw)` reaches `a ## _ ## b` through
    `_IO_CONCAT`; io_trivial.h, another file, calls IO_CONCAT). A work list over the
    forwards, not a pass per round: linear in the forwards recorded."""
    found = set(given)
    callers: dict[str, set[str]] = {}
    for f in facts:
        found.update(f.definition_macros)
        for name, called in f.macro_forwards:
            for target in called:
                callers.setdefault(target, set()).add(name)
    queue = deque(sorted(found))
    while queue:
        for caller in sorted(callers.get(queue.popleft(), ())):
            if caller not in found:
                found.add(caller)
                queue.append(caller)
    return frozenset(found)
