"""Frozen records passed between the pipeline's stages.

Workers return these (picklable, immutable); later stages derive variants with
`dataclasses.replace` instead of filling fields in after construction.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from mmioscan.core.slots import slot_filler

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
    # Raw dereferences of __iomem pointers: (line, column, scope, access, form, active), form
    # "*p", "p->field" or "p[i]" (cfront/iomem.py).
    derefs: tuple[tuple[int, int, int, str, str, bool], ...] = ()
    # Live dereferences left out because the pointer's value is RAM, not MMIO
    # (cfront/rambacked.py, rules/ram.toml): stats `ram_backed_derefs`.
    ram_backed_derefs: int = 0
    # Function-like macros that paste, stringify or declare with a parameter
    # (`DEFINE_ACCESSOR(readl, u32)`): an accessor named in their arguments is defined there.
    definition_macros: tuple[str, ...] = ()
    # Function-like macros that pass a parameter on to other macros: (macro, names it
    # calls). One forwarding to a definition macro is one too (`IO_CONCAT(a, b)` ->
    # `_IO_CONCAT(a, b)` -> `a ## _ ## b`), decided over the scan: analysis/definitions.py
    macro_forwards: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Regmap facts (cfront/regmaps.py): maps made (maker, target, owner, line, args), API
    # calls' maps (line, column, target, owner), configs (name, ((field, value), ...)).
    regmap_maps: tuple[tuple[str, str, str, int, tuple[str, ...]], ...] = ()
    regmap_uses: tuple[tuple[int, int, str, str], ...] = ()
    regmap_configs: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    # Register-selecting parameters of each definition: (scope, parameter indices), functions
    # and macros (cfront/flows.py). A scope listed here has its flows computed; hand-made
    # facts without it fall back to the line-count rule (rules/wrappers.toml).
    selectors: tuple[tuple[int, tuple[int, ...]], ...] = ()
    # Parameter flows into call arguments: (scope, callee, line, column, parameter indices per
    # argument, in a loop, a catalogued name used as a value); calls with no dependent
    # argument outside loops are left out (cfront/flows.py).
    flows: tuple[tuple[int, str, int, int, tuple[tuple[int, ...], ...], bool, bool], ...] = ()
    # Names exported with EXPORT_SYMBOL* at file scope: callable from other drivers' folders
    exports: tuple[str, ...] = ()
    # Functions stored in function-pointer fields: (struct type, field, function, line); the
    # type is "struct T", or "" when the fast engine does not see it, or from the fast engine
    # a member path "struct T.ops" (the type of T's member ops: `members`) (cfront/fnptrs.py).
    fnptrs: tuple[tuple[str, str, str, int], ...] = ()
    # Calls through a function-pointer field (`p->ops->f(...)`): (field, struct type holding
    # it, as in fnptrs, line, column, scope); flows record them as callee "->field".
    indirect: tuple[tuple[str, str, int, int, int], ...] = ()
    # Members declared with a struct type in a named struct: (struct, member, its type)
    members: tuple[tuple[str, str, str], ...] = ()
    # (line, column) of the calls that are the op of an iopoll loop (`read_poll_timeout(op,
    # ...)`): repeated an unknown number of times
    polls: tuple[tuple[int, int], ...] = ()
    # Files the parse read besides this one: (absolute path, size, mtime_ns); a cached entry
    # whose dependencies changed is a miss (the precise engine's headers; the fast engine's
    # headers of the same folder read for their pasting macros, cfront/pasted.py).
    depends: tuple[tuple[str, int, int], ...] = ()
    # (first, last) lines of blocks the preprocessor skipped under the .config (precise engine).
    skipped: tuple[tuple[int, int], ...] = ()
    engine: str = "fast"  # which engine made these facts: fast (tree-sitter) or clang
    # Parsed only because a later round forced it (the byte prefilter saw nothing): a scan
    # that does not force the file takes the cached record as unparsed (facts/runner.py), so
    # what an earlier scan happened to force never changes a later scan's result.
    forced: bool = False
    prefilter_includes: tuple[str, ...] = ()  # a forced file's includes, as the skip reads them
    # A file the prefilter skipped (unparsed, or forced later): its identifiers' sorted CRC-32s
    # (cfront/prefilter.py identifier_hashes), so the caller rounds test a name against a file
    # without reading it again (analysis/rounds.py)
    identifiers: bytes = b""
    # and, the same way, the names it calls or stores through a member access (`->f(`,
    # `.f =`: prefilter.field_use_hashes), for the rounds' field calls
    field_uses: bytes = b""

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its field values, scopes as plain tuples, rebuilt by _rebuild_facts:
        # a NamedTuple unpickles through its Python __new__ (878,000 scopes in a whole-tree
        # run) and a frozen slotted dataclass through a Python __setstate__; loading the
        # whole tree's cached facts takes a fifth less time this way.
        values = [getattr(self, name) for name in _FACTS_FIELDS]
        values[_SCOPES_AT] = tuple(map(tuple, self.scopes))
        return _rebuild_facts, (tuple(values),)

    def call_records(self) -> tuple[Call, ...]:
        return tuple(Call._make(c) for c in self.calls)

    def reference_records(self) -> tuple[Call, ...]:
        return tuple(Call._make(c) for c in self.references)


_FACTS_FIELDS = tuple(f.name for f in dataclasses.fields(FileFacts))
_SCOPES_AT = _FACTS_FIELDS.index("scopes")


# build(values): a FileFacts from its field values (FileFacts.__reduce__, core/slots.py),
# the scopes made Scopes again by tuple.__new__ at C speed
_build_facts: Callable[[tuple[Any, ...]], FileFacts] = slot_filler(
    FileFacts, "values",
    lambda i, _name: (f"values[{i}]" if i != _SCOPES_AT
                      else f"tuple(_map(_tuple_new, _repeat(_Scope), values[{i}]))"),
    {"_map": map, "_tuple_new": tuple.__new__, "_repeat": itertools.repeat, "_Scope": Scope})


def _rebuild_facts(values: tuple[Any, ...]) -> FileFacts:
    """Unpickle a FileFacts (a module-level name: pickle stores the reconstructor by name)."""
    return _build_facts(values)


SiteKind = Literal["direct", "wrapper", "reference", "deref", "regmap"]
Group = Literal["virtio", "x86", "generic"]
TdxPath = Literal["ve", "paravirt", "unsupported"]


@dataclass(frozen=True, slots=True)
class Tdx:
    """What a site does in a TDX guest under one strategy (see docs/domain.md)."""

    path: TdxPath  # ve: trap decoded by insn_decode_mmio; paravirt: patched funnel; unsupported
    insn: str  # instruction form: mov, movs, movdir64b, unrolled-mov, compiler-chosen, ...
    ve_exits: int | None  # traps per execution; None when unknown (or 0 when paravirt)
    reason: str


@dataclass(frozen=True, slots=True)
class DriverInfo:
    """The driver a source file belongs to, from Kbuild and Kconfig (or the folder)."""

    name: str  # module name (e1000e) or, outside any Makefile, the folder
    config_symbol: str | None  # CONFIG_ symbol without the prefix (E1000E), None if unknown
    group: Group
    group_reason: str  # the evidence, e.g. "Kconfig E1000E: depends on PCI && X86"
    reachable: bool | None = None  # built (=y or =m) under --config; None without a config
    evidence: str = ""  # how the file was mapped: "drivers/net/Makefile: obj-$(CONFIG_X) += x.o"


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
    # The kinds of the roots that reach it (irq, irq-thread, napi, xmit, io, ...:
    # rules/hotpaths.toml), sorted; those that reach it only through reset
    # or error handling when hot_only_via is "reset" (then hot is False).
    hot_kinds: tuple[str, ...] = ()
    hot_only_via: str | None = None
    scope_key: str | None = field(default=None, compare=False)  # graph node of `function`
    # Filled in by the enrichment pass (mmioscan/enrich.py) after the call graph:
    config_symbol: str | None = None
    group: Group | None = None
    group_reason: str | None = None
    reachable: bool | None = None  # None without --config
    tdx: Tdx | None = None
    fingerprint: str | None = None  # stable across line shifts (mmioscan/fingerprint.py)
    code: str | None = None  # the source line, whitespace collapsed
    # Verdicts per platform ("tdx", "sev-snp"), when more than TDX alone was asked for.
    platforms: tuple[tuple[str, Tdx], ...] = ()
    # regmap sites: the kind of map the call uses (analysis/regmaps.py): mmio, syscon, port,
    # funnel (a regmap_init config whose callbacks reach an accessor) or unknown
    map: str | None = None
    # Wrappers: accesses one call makes, per accessor (None: not known, a loop); empty when
    # not counted (callgraph.Reach.counts)
    access_counts: tuple[tuple[str, int | None], ...] = ()
    # A call through a function-pointer field (callee `->field`): the functions stored in
    # that field, sorted (analysis/callgraph.py indirect_targets); empty for other sites
    targets: tuple[str, ...] = ()

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.column, self.callee)

    def verdicts(self) -> tuple[tuple[str, Tdx], ...]:
        """The verdicts asked for: per platform, or TDX's alone."""
        if self.platforms:
            return self.platforms
        return (("tdx", self.tdx),) if self.tdx is not None else ()


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
    how: str  # the registration call (name[index] for a later callback) or the ops field
    kind: str = "hot"  # irq, irq-thread, napi, xmit, io, ... or reset (rules/hotpaths.toml)


@dataclass(frozen=True, slots=True)
class DriverSummary:
    """One driver's line in the JSON `drivers` list and the driver tables."""

    info: DriverInfo
    folders: tuple[str, ...]
    sites: int  # active sites
    ve: int
    paravirt: int
    unsupported: int
    hot: int
    ve_exits: int  # sum of known per-execution #VE exits over the driver's sites
    points_90: int | None  # patch points for 90% coverage of its sites


@dataclass(frozen=True, slots=True)
class StrategyRow:
    """One group under one strategy: a cell row of `mmioscan strategies`."""

    strategy: str
    group: str  # virtio | x86 | generic | all
    drivers: int
    sites: int
    ve: int
    paravirt: int
    unsupported: int
    hot: int  # hot sites (any path)
    hot_ve: int  # hot sites that still trap
    ve_exits: int  # sum of known per-execution #VE exits
    ve_exits_unknown: int  # ve sites whose exit count is not known
    points_90: int | None  # patch points to cover 90% of the group's sites
    platform: str = "tdx"


@dataclass(frozen=True, slots=True)
class TextRead:
    """What the drivers-and-verdicts stage read from one file's text beyond its facts
    (analysis/enrich.py): the lines of its sites (their code, fingerprints, and whether one
    is an accessor's own definition), the blocks the .config leaves out, and the arguments
    of its bulk calls. Two versions of a file with equal facts and equal reads give the
    same result (analysis/unchanged.py serves an edit so)."""

    path: str
    lines: tuple[int, ...]  # the lines of its sites, before definitions are left out
    digest: str  # of those lines' text
    dead: tuple[tuple[int, int], ...] | None  # ConfigConditions.dead_lines; None: not read
    # (line, column, call_arguments) of every bulk call whose arguments were read
    arguments: tuple[tuple[int, int, tuple[str, ...] | None], ...] = ()


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
    drivers: tuple[DriverSummary, ...] = ()
    strategy: str | None = None
    config: str | None = None  # the .config file used, as given
    # Which source decided each instruction form: (accessor family or name, "tree:<file>" or
    # "catalogue")
    tdx_sources: tuple[tuple[str, str], ...] = ()
    strategies: tuple[StrategyRow, ...] = ()  # every strategy side by side, when computed
    # The platforms asked for (--platform), and which source decided each platform's facts
    platforms: tuple[str, ...] = ("tdx",)
    platform_sources: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    # False when a .config is given without --all: summaries count only reachable sites
    counts_unreachable: bool = True
    # Calls through a field whose candidates mix funnels and other functions (no sites)
    indirect_mixed: int = 0
    # Raw derefs of the scanned files left out: the pointer's value is RAM (rules/ram.toml)
    ram_backed_derefs: int = 0
    # What the verdicts read from each site file's text (TextRead); kept beside the result
    # in the products cache, not rendered
    text_reads: tuple[TextRead, ...] = field(default=(), repr=False, compare=False)
