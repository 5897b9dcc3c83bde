"""Frozen records passed between the pipeline's stages.

Workers return these (picklable, immutable); later stages derive variants with
`dataclasses.replace` instead of filling fields in after construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

ScopeKind = Literal["function", "macro", "object-macro"]
UseKind = Literal["call", "reference"]


class Scope(NamedTuple):
    """A function definition or a macro definition in one file.

    Scope and Call are NamedTuples, not dataclasses: a scan of drivers/ makes over a million
    of them and they cross process boundaries and the cache, where tuples pickle ~10x faster.
    """

    name: str
    kind: ScopeKind
    line: int
    end_line: int
    static: bool = False
    inline: bool = False
    params: tuple[str, ...] = ()
    # Names called in the body (unique, sorted): the edges of the call graph.
    callees: tuple[str, ...] = ()
    # Catalogued names used as values in the body (unique, sorted).
    values: tuple[str, ...] = ()
    has_error: bool = False  # tree-sitter found a syntax error inside this function


class Call(NamedTuple):
    """A call of a plain identifier (`name(...)`), with its position and enclosing scope."""

    name: str
    line: int
    column: int
    scope: int  # index into FileFacts.scopes, -1 at file scope
    active: bool = True


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str


# A Call as a plain tuple (name, line, column, scope, active): what FileFacts stores. Plain
# tuples unpickle about 5x faster than NamedTuples, which matters when a warm scan of drivers/
# loads a million of them from the cache.
CallTuple = tuple[str, int, int, int, bool]


@dataclass(frozen=True, slots=True)
class FileFacts:
    """Everything the later stages need from one source file."""

    path: str  # POSIX, relative to the tree root
    digest: str
    size: int
    parsed: bool  # False when the cheap byte scan showed nothing of interest
    error_nodes: int = 0  # tree-sitter ERROR nodes after annotation blanking
    scopes: tuple[Scope, ...] = ()
    calls: tuple[CallTuple, ...] = ()  # calls of identifiers, in source order
    # Catalogued names used as values (not called), same shape as calls.
    references: tuple[CallTuple, ...] = ()
    problems: tuple[Problem, ...] = ()
    includes: tuple[str, ...] = ()  # `#include` targets as written: `<linux/io.h>`, `"foo.h"`
    # Hot-path roots: (function, how it is installed: "request_irq" or ".ndo_start_xmit", line)
    roots: tuple[tuple[str, str, int], ...] = ()

    def call_records(self) -> tuple[Call, ...]:
        return tuple(Call._make(c) for c in self.calls)

    def reference_records(self) -> tuple[Call, ...]:
        return tuple(Call._make(c) for c in self.references)


SiteKind = Literal["direct", "wrapper", "reference", "deref", "regmap"]


@dataclass(frozen=True, slots=True)
class Site:
    """One MMIO (or port I/O) access site; the unit of every output format."""

    path: str
    line: int
    column: int
    function: str | None
    callee: str
    accessor: str
    kind: SiteKind
    access: str
    width: int | None
    family: str
    active: bool = True
    via: tuple[str, ...] = field(default=())
    accessors: tuple[str, ...] = field(default=())  # every accessor reached (wrappers)
    driver: str | None = None  # module, or folder while modules are not known
    hot: bool = False  # reachable from an interrupt handler, NAPI poll, xmit, ...
    scope_key: str | None = field(default=None, compare=False)  # graph node of `function`

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.column, self.callee)

    def placed(self, driver: str, scope_key: str | None, hot: bool) -> Site:
        """A copy with its driver, graph node and hot flag (dataclasses.replace is slow)."""
        return Site(self.path, self.line, self.column, self.function, self.callee,
                    self.accessor, self.kind, self.access, self.width, self.family, self.active,
                    self.via, self.accessors, driver, hot, scope_key)


@dataclass(frozen=True, slots=True)
class ScanStats:
    files_listed: int
    files_parsed: int
    files_skipped: int
    files_with_errors: int
    functions: int
    functions_with_errors: int
    macros: int
    cache_hits: int


@dataclass(frozen=True, slots=True)
class PatchPoint:
    key: str  # graph node: path:name
    name: str
    path: str
    line: int
    covered: int  # sites covered by this point that earlier points did not cover
    cumulative_share: float


@dataclass(frozen=True, slots=True)
class Coverage:
    """The patch-point coverage curve of a driver (or of a group, or of the whole scan)."""

    sites: int
    points: tuple[PatchPoint, ...]  # greedy order
    needed: tuple[tuple[int, int | None], ...]  # (percent, points needed or None)


@dataclass(frozen=True, slots=True)
class HotRoot:
    function: str
    path: str
    line: int
    how: str  # the registration call or the ops field


@dataclass(frozen=True, slots=True)
class ScanResult:
    root: str
    kernel_version: str | None
    scanned: tuple[str, ...]
    sites: tuple[Site, ...]
    problems: tuple[Problem, ...]
    stats: ScanStats
    facts: tuple[FileFacts, ...] = field(default=(), repr=False, compare=False)
    patch_points: tuple[tuple[str, Coverage], ...] = ()  # ("all" first, then each driver)
    hot_roots: tuple[HotRoot, ...] = ()
