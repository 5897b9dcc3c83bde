"""Both engines on the same files: the sites both find, those only one finds, and why.

Both scans run the whole pipeline up to the sites (analysis/pipeline.py, no verdicts) on
the same paths; the comparison is over the `.c` files the precise engine parsed (the files
the .config builds; headers are read by the fast engine in both scans, so comparing them
would compare the fast engine with itself). Sites are matched by (path, line, column,
kind, name), name being the callee for direct, reference and regmap sites, the nearest
accessor for wrapper sites and nothing for dereferences, counting repeats (a multiset).

Every one-sided site is given the first cause of CAUSES whose test holds: the cause says
why the engines differ and what the fast engine could learn from it (docs/precise.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mmioscan.analysis.gather import ScanOptions
from mmioscan.analysis.pipeline import AnalysisOptions, run
from mmioscan.clang.extract import NOT_BUILT
from mmioscan.clang.prepare import Prepared
from mmioscan.core.model import FileFacts, Problem, Site
from mmioscan.core.ruleset import RuleSet, load_rules
from mmioscan.facts.runner import Progress

KINDS = ("direct", "wrapper", "reference", "regmap", "deref")
MAX_EXAMPLES = 5
Key = tuple[str, int, int, str, str]


def site_key(site: Site) -> Key:
    """A wrapper site is matched by place alone: the engines may name the callee (a macro,
    or the function it expands to) and so the chain to the accessor differently."""
    name = site.callee if site.kind in ("direct", "reference", "regmap") else ""
    return site.path, site.line, site.column, site.kind, name


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a cause's test may read about one one-sided site."""

    site: Site
    side: str  # "fast" or "clang": the engine that found it
    fast: FileFacts
    clang: FileFacts
    other_sites: tuple[Site, ...]  # the other engine's sites at the same position
    fast_macros: frozenset[str]  # macro names the fast engine's call graph defines
    # (path, line) of every definition on the fast engine's chain from a wrapper site's
    # callee to its accessor; the clang-skipped line ranges of every compared file
    chain: tuple[tuple[str, int], ...] = ()
    skipped: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    def in_skipped(self) -> bool:
        return any(first < self.site.line < last for first, last in self.clang.skipped)

    def fast_scope_kind(self) -> str | None:
        for scope in self.fast.scopes:
            if scope.name == self.site.function and scope.line <= self.site.line <= (
                    scope.end_line):
                return scope.kind
        return None

    def fast_names_here(self) -> set[str]:
        here = (self.site.line, self.site.column)
        return {c[0] for c in (*self.fast.calls, *self.fast.references) if c[1:3] == here}

    def fast_error_here(self) -> bool:
        return any(s.has_error and s.line <= self.site.line <= s.end_line
                   for s in self.fast.scopes if s.kind == "function")


@dataclass(frozen=True, slots=True)
class Cause:
    id: str
    side: str  # the engine whose sites it explains
    kinds: tuple[str, ...]
    explanation: str
    lesson: str  # what the fast engine should learn from it ("" when nothing)
    test: Callable[[Evidence], bool]


def _kinds_here(e: Evidence) -> set[str]:
    return {o.kind for o in e.other_sites if o.kind != e.site.kind}


def _alias(e: Evidence) -> bool:
    """fast: a wrapper call of a macro; clang: the accessor it expands to, same place."""
    here = _kinds_here(e)
    return (e.site.kind, e.side) in (("wrapper", "fast"), ("direct", "clang")) and bool(
        here & {"direct", "wrapper"})


def _value_then_call(e: Evidence) -> bool:
    here = _kinds_here(e)
    return (e.site.kind == "reference" and "direct" in here) or (
        e.site.kind == "direct" and "reference" in here)


def _skipped_definition(e: Evidence) -> bool:
    """A definition on the way to the accessor lies in a block the .config skips."""
    def off(path: str, line: int) -> bool:
        return any(first < line < last for first, last in e.skipped.get(path, ()))

    if e.side == "fast":
        return any(off(path, line) for path, line in e.chain)
    return any(s.name == e.site.callee and off(e.site.path, s.line) for s in e.fast.scopes)


def _macro_invocation(e: Evidence) -> bool:
    """clang's site is at a call the fast engine reads under another name: a macro."""
    return bool(e.fast_names_here() - {e.site.callee})


def _indirect(e: Evidence) -> bool:
    """A call through a function-pointer field, the op of an iopoll call, or a funnel of the
    file whose way to the accessor passes through a field (cfront/fnptrs.py)."""
    if e.site.targets or (e.site.line, e.site.column) in set(e.fast.polls):
        return True
    starts = {line for path, line in e.chain if path == e.fast.path}
    through = {scope for *_, scope in e.fast.indirect}
    return any(i in through for i, s in enumerate(e.fast.scopes) if s.line in starts)


def _not_the_accessor(e: Evidence) -> bool:
    """clang parsed this function without errors and found no use of the accessor here."""
    return e.clang.error_nodes == 0 and any(
        s.line <= e.site.line <= s.end_line for s in e.clang.scopes)


# The classes of disagreement, first match wins. Measured on linux-source-6.12 (README,
# docs/precise.md); `unexplained` must stay empty (tests/integration/test_crosscheck_real.py).
CAUSES: tuple[Cause, ...] = (
    Cause("preprocessor-skipped", "fast", KINDS,
          "the block is off under this .config (#ifdef CONFIG_..., #if IS_ENABLED(...), "
          "#if BITS_PER_LONG == 32, an arch or compiler test): clang never sees it, the fast "
          "engine reads every branch",
          "kernel/ifconfig.py marks CONFIG_ blocks unreachable; it could also evaluate the "
          "conditions clang resolved (BITS_PER_LONG, defined(__x86_64__), compiler tests)",
          lambda e: e.in_skipped()),
    Cause("macro-body", "fast", ("direct", "reference", "deref", "wrapper"),
          "the access is written in a #define body of the file: the fast engine counts the "
          "macro's text once, clang counts each expansion at its invocation (and none for a "
          "macro nobody invokes)",
          "none: the macro is a wrapper and its invocations are wrapper sites",
          lambda e: e.fast_scope_kind() in ("macro", "object-macro")),
    Cause("indirect-call", "fast", ("wrapper",),
          "a call through a function-pointer field whose stored functions are all funnels "
          "(gc->read_reg(...)), a funnel that makes one, or the op of read_poll_timeout: the "
          "fast engine records calls through fields and iopoll ops, the precise engine not",
          "record calls through fields and their record types in clang/extract.py",
          _indirect),
    Cause("macro-alias", "both", ("direct", "wrapper"),
          "a macro that names or wraps an accessor (#define FB_WRITEL fb_writeq, "
          "#define WR(r, v) writel(v, base + r)) invoked here: the fast engine reports a "
          "wrapper call of the macro, clang the accessor call it expands to, at the same place",
          "an object-like macro whose body is one accessor name is that accessor: report "
          "the accessor (direct) rather than a wrapper",
          _alias),
    Cause("value-then-call", "both", ("direct", "reference"),
          "a catalogued name passed to a macro that calls it (readx_poll_timeout(ioread32, "
          "...)): a value to the fast engine, a call to clang after expansion",
          "treat a catalogued name passed to a catalogued poll macro as its call",
          _value_then_call),
    Cause("macro-expansion", "clang", ("direct", "reference", "deref", "wrapper"),
          "the access comes from expanding a macro defined in a header: clang places it at "
          "the macro's invocation (a call of the function it expands to, ixgbevf's "
          "IXGBE_READ_REG(hw, r) -> ixgbevf_read_reg(hw, r)), the fast engine sees a call of "
          "the macro, which the funnel rule does not make a site (a context pointer passed to "
          "a macro selects no register) or which reaches no accessor in the headers it parsed",
          "apply the funnel rule to what a one-call macro expands to, not to the macro",
          _macro_invocation),
    Cause("not-the-accessor", "fast", ("direct", "reference"),
          "the name is not the accessor here: a local variable, parameter or field of the "
          "same name (struct mlx4_wqe_inline_seg *inl), which clang resolves and the fast "
          "engine, reading names, cannot",
          "skip catalogued names declared in scope (cfront/iomem.py already tracks "
          "declarations per block)",
          _not_the_accessor),
    Cause("skipped-definition", "both", ("wrapper",),
          "the callee, or a definition on its way to the accessor, has a second definition "
          "in a block this .config skips (a stub under #else, the real one under #ifdef): "
          "the fast engine's call graph takes the one the preprocessor drops",
          "resolve calls to the definitions ifconfig.py finds built under the .config",
          _skipped_definition),
    Cause("fast-unparsed", "clang", KINDS,
          "the fast engine never parsed this file: it names no accessor itself, and the "
          "wrapper-caller rounds did not see the header wrapper it calls (they follow "
          "#includes through parsed headers only); clang parses every built file",
          "follow includes through unparsed headers too: their #include targets are known",
          lambda e: not e.fast.parsed),
    Cause("iomem-declared-elsewhere", "clang", ("deref",),
          "the pointer is __iomem by a declaration outside the file or beyond the fast "
          "engine's reach (a struct field or typedef in a header, a function's result): "
          "clang has every type, the fast engine resolves names declared in the file only",
          "read __iomem struct fields and typedefs from the context headers (cfront/iomem.py)",
          lambda e: not any(o.kind == "deref" for o in e.other_sites)),
    Cause("not-iomem-by-type", "fast", ("deref",),
          "clang's types say the expression is not in MMIO (a local name shadowing an "
          "__iomem one, a cast to a plain pointer): the fast engine follows names, not types",
          "", _not_the_accessor),
    Cause("clang-errors", "both", KINDS,
          "clang reported errors in this file (facts after error recovery)",
          "", lambda e: e.clang.error_nodes > 0),
    Cause("fast-parse-error", "both", KINDS,
          "tree-sitter's error recovery inside this function (a kernel macro it cannot "
          "read as C)",
          "teach cfront/preprocess.py the construct", lambda e: e.fast_error_here()),
    Cause("unexplained", "both", KINDS, "no known cause", "", lambda e: True),
)


@dataclass(slots=True)
class KindCount:
    both: int = 0
    fast_only: int = 0
    clang_only: int = 0
    examples: list[dict[str, object]] = field(default_factory=list)
    causes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (side, cause id)

    @property
    def agreement(self) -> float:
        total = self.both + self.fast_only + self.clang_only
        return round(self.both / total, 4) if total else 1.0


@dataclass(frozen=True, slots=True)
class CrossCheck:
    root: str
    files: tuple[str, ...]  # the .c files clang parsed: what is compared
    not_built: tuple[str, ...]
    failed: tuple[Problem, ...]  # clang errors or files clang could not parse
    kinds: dict[str, KindCount]
    causes: tuple[Cause, ...] = CAUSES


def _scan(paths: tuple[Path, ...], root: Path | None, engine: str, prepared: Prepared,
          jobs: int, cache_dir: Path | None, rules: RuleSet, progress: Progress | None
          ) -> tuple[tuple[Site, ...], dict[str, FileFacts], str, Extra]:
    options = ScanOptions(paths, root, jobs, cache_dir, engine=engine, prepared=prepared)
    analysis = run(AnalysisOptions(options, judge=False), rules, progress)
    result = analysis.result
    graph = analysis.graph
    macros = frozenset(d.name for d in graph.definitions.values() if d.kind != "function"
                       ) if graph is not None else frozenset()
    chains: dict[Key, tuple[tuple[str, int], ...]] = {}
    for site in result.sites if graph is not None else ():
        if site.kind != "wrapper" or graph is None:
            continue
        reach = graph.reach.get(graph.resolve(site.path, site.callee) or "")
        if reach is not None:
            chains[site_key(site)] = tuple(
                (d.path, d.line) for k in reach.via_keys
                if (d := graph.definitions.get(k)) is not None)
    return (result.sites, {f.path: f for f in result.facts}, result.root,
            Extra(macros, chains))


@dataclass(frozen=True, slots=True)
class Extra:
    """What the fast engine's call graph tells the causes."""

    macros: frozenset[str] = frozenset()
    chains: Mapping[Key, tuple[tuple[str, int], ...]] = field(default_factory=dict)


def crosscheck(paths: Iterable[Path], prepared: Prepared, root: Path | None = None,
               jobs: int = 1, cache_dir: Path | None = None, rules: RuleSet | None = None,
               progress: Progress | None = None) -> CrossCheck:
    rules = rules or load_rules()
    targets = tuple(paths)
    fast_sites, fast_facts, tree, extra = _scan(targets, root, "fast", prepared, jobs,
                                                 cache_dir, rules, progress)
    clang_sites, clang_facts, _, _ = _scan(targets, root, "clang", prepared, jobs, cache_dir,
                                           rules, progress)
    compared = tuple(sorted(p for p, f in clang_facts.items()
                            if p.endswith(".c") and f.engine == "clang" and f.parsed))
    not_built = tuple(sorted(p for p, f in clang_facts.items()
                             if any(pr.message == NOT_BUILT for pr in f.problems)))
    failed = tuple(pr for p, f in sorted(clang_facts.items()) if p.endswith(".c")
                   for pr in f.problems if pr.message != NOT_BUILT
                   and (f.error_nodes or not f.parsed))
    chosen = set(compared)
    return CrossCheck(tree, compared, not_built, failed,
                      compare(fast_sites, clang_sites, chosen, fast_facts, clang_facts, extra))


def compare(fast_sites: Iterable[Site], clang_sites: Iterable[Site], files: set[str],
            fast_facts: dict[str, FileFacts], clang_facts: dict[str, FileFacts],
            extra: Extra | None = None) -> dict[str, KindCount]:
    """Per kind: sites both engines find, the one-sided ones with their causes."""
    sides = {"fast": [s for s in fast_sites if s.active and s.path in files],
             "clang": [s for s in clang_sites if s.active and s.path in files]}
    counts = {side: Counter(site_key(s) for s in sites) for side, sites in sides.items()}
    at: dict[str, dict[tuple[str, int, int], list[Site]]] = {"fast": {}, "clang": {}}
    for side, sites in sides.items():
        for s in sites:
            at[side].setdefault((s.path, s.line, s.column), []).append(s)
    kinds = {k: KindCount() for k in KINDS}
    extra = extra or Extra()
    skipped = {p: f.skipped for p, f in clang_facts.items() if p in files}
    for key in sorted(counts["fast"].keys() | counts["clang"].keys()):
        kind = kinds[key[3]]
        shared = min(counts["fast"][key], counts["clang"][key])
        kind.both += shared
        kind.fast_only += counts["fast"][key] - shared
        kind.clang_only += counts["clang"][key] - shared
    for side, other in (("fast", "clang"), ("clang", "fast")):
        left = counts[side] - counts[other]
        for site in sorted(sides[side], key=Site.sort_key):
            key = site_key(site)
            if left[key] <= 0:
                continue
            left[key] -= 1
            evidence = Evidence(site, side, fast_facts[site.path], clang_facts[site.path],
                                tuple(at[other].get(key[:3], ())), extra.macros,
                                extra.chains.get(key, ()) if side == "fast" else (), skipped)
            cause = next(c for c in CAUSES if site.kind in c.kinds
                         and c.side in (side, "both") and c.test(evidence))
            kind = kinds[site.kind]
            kind.causes[(side, cause.id)] += 1
            if sum(1 for x in kind.examples if x["side"] == side and x["cause"] == cause.id
                   ) < MAX_EXAMPLES:
                kind.examples.append(_example(site, side, cause, evidence))
    return kinds


def _example(site: Site, side: str, cause: Cause, evidence: Evidence) -> dict[str, object]:
    return {"side": side, "cause": cause.id, "path": site.path, "line": site.line,
            "column": site.column, "function": site.function, "callee": site.callee,
            "other": sorted(f"{o.kind}:{o.callee}" for o in evidence.other_sites)}
