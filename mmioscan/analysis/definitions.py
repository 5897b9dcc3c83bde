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
from dataclasses import dataclass

from mmioscan.core.model import Site

# A type (or storage class) right before the name: a declaration or definition, not a call.
_DECLARATION_RE = re.compile(
    r"(?:^|[\s*(])(?:void|int|long|short|char|bool|unsigned|signed|u8|u16|u32|u64|"
    r"__u8|__u16|__u32|__u64|__le16|__le32|__le64|__be16|__be32|__be64|size_t|"
    r"extern|inline|__always_inline)\s*\**\s*$")


@dataclass(frozen=True, slots=True)
class Definitions:
    accessors: frozenset[str]  # catalogued names: their bodies are implementations
    macros: frozenset[str]  # rules/wrappers.toml definition_macros

    def is_definition(self, site: Site, line: str) -> bool:
        """Is this site part of an accessor's definition? `line` is the site's source line."""
        if site.function is not None and site.function in self.accessors:
            return True
        prefix = line[: max(site.column - 1, 0)]
        if site.kind == "reference" and self.macros:
            m = re.search(r"\b(\w+)\s*\(\s*$", prefix)
            if m is not None and m.group(1) in self.macros:
                return True
        if site.kind == "direct" and site.function is None:
            return _DECLARATION_RE.search(prefix) is not None
        return False
