"""The TDX model: what each MMIO site does in an Intel TDX guest, under a strategy.

Three parts (see docs/domain.md):

* The instruction form of every catalogued accessor (forms.py), read from the scanned tree
  where it can be (TREE_FILES: arch/x86/include/asm/io.h, arch/x86/lib/iomem.c, lib/iomap.c,
  lib/iomap_copy.c, and an old tree's arch/x86/lib/iomap_copy_64.S) with a light text
  analysis (cfront/ctext.py reads the definitions, #if blocks resolved for an x86_64 TD by
  cfront/conditions.py; shapes.py reduces each body to the instructions it executes). What
  the tree does not say comes from rules/tdx.toml; `X86Model.sources` records which decided.
* Strategies (platforms/strategies.py): a patched function issues the TDVMCALL itself, so
  the sites it covers take no #VE ("paravirt").
* `verdict(site, model, strategy, args)`: path, instruction, #VE exits per execution, reason.
  Fast: per-accessor results are precomputed and wrapper results cached by accessor tuple.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from mmioscan.cfront.callargs import constant_value
from mmioscan.cfront.conditions import evaluate
from mmioscan.cfront.ctext import ParsedFile, parse_definitions
from mmioscan.core.catalogue import Catalogue
from mmioscan.core.model import Site, Tdx
from mmioscan.platforms.strategies import Strategy
from mmioscan.platforms.x86.forms import (
    Form,
    FormEntry,
    catalogue_form,
    form_from_shape,
    like_form,
    load_forms,
    reached_form,
    shape_of_form,
)
from mmioscan.platforms.x86.platform import Platform, derive_platforms
from mmioscan.platforms.x86.shapes import Analyzer, Shape, assembly_shape, rank

# x86_64 facts for #if: what is certainly set or unset in a TD kernel. Other CONFIG_ symbols
# are unknown, and both branches of a test on them are kept (the worst access wins).
_SET = frozenset({
    "CONFIG_X86", "CONFIG_X86_64", "CONFIG_64BIT", "CONFIG_GENERIC_IOMAP", "CONFIG_MMU",
    "CONFIG_HAS_IOPORT", "CONFIG_HAS_IOPORT_MAP", "CONFIG_INTEL_TDX_GUEST", "__KERNEL__",
    "__x86_64__",
})
_UNSET = frozenset({
    "CONFIG_X86_32", "CONFIG_32BIT", "CONFIG_INDIRECT_PIO", "__CHECKER__", "__i386__",
    "__ASSEMBLY__",
})
_VALUES = {"BITS_PER_LONG": 64, "__BITS_PER_LONG": 64}


class _TdEnvironment:
    """What an x86_64 TD build certainly has: `_SET`, `_UNSET`, `_VALUES` and the names the
    files read have #defined; other CONFIG_ symbols are unknown."""

    comparisons = True

    def __init__(self, defined: set[str]) -> None:
        self.defined_names = defined

    def defined(self, name: str) -> int | None:
        if name in self.defined_names or name in _SET:
            return 1
        if name in _UNSET:
            return 0
        return None if name.startswith("CONFIG_") else 0

    def operator(self, op: str, name: str) -> int | None:
        return self.symbol(name)

    def symbol(self, name: str) -> int | None:
        if name in _SET:
            return 1
        if name in _UNSET:
            return 0
        return _VALUES.get(name)


def _td_condition(expr: str, defined: set[str]) -> int | None:
    return evaluate(expr, _TdEnvironment(defined))


# The files read, in precedence order: an arch definition beats the generic one.
IO_H = "arch/x86/include/asm/io.h"
IOMEM_C = "arch/x86/lib/iomem.c"
IOMAP_C = "lib/iomap.c"
IOMAP_COPY_C = "lib/iomap_copy.c"
IOMAP_COPY_S = "arch/x86/lib/iomap_copy_64.S"  # __iowrite32_copy before 6.10
TREE_FILES = (IO_H, IOMAP_COPY_S, IOMEM_C, IOMAP_C, IOMAP_COPY_C)
_MAX_FILE = 2_000_000  # larger "source" files are not what we expect: not read

_REGMAP_FUNNEL_NAMES = ("regmap-mmio", "regmap_mmio",
                        "drivers/base/regmap/regmap-mmio.c:regmap_mmio")


def _read(root: Path, rel: str) -> tuple[str | None, str | None]:
    """(text, problem): never raises."""
    path = root / rel
    try:
        if not path.is_file():
            return None, f"{rel}: not in the tree"
        if path.stat().st_size > _MAX_FILE:
            return None, f"{rel}: larger than {_MAX_FILE} bytes, not read"
        return path.read_bytes().decode("utf-8", "replace"), None
    except OSError as exc:
        return None, f"{rel}: cannot read ({exc.strerror})"



class _Plan:
    """A strategy prepared for fast matching against sites (identity-hashed)."""

    __slots__ = ("strategy", "active", "names", "chain_names", "accessors", "keys",
                 "key_names", "groups", "regmap_read", "regmap_write")

    def __init__(self, strategy: Strategy, accessor_names: frozenset[str]) -> None:
        self.strategy = strategy
        patched = strategy.patched
        self.active = bool(patched)
        self.keys = frozenset(p for p in patched if ":" in p)
        self.names = frozenset(patched - self.keys)
        self.chain_names = self.names - accessor_names
        self.accessors = self.names & accessor_names
        self.key_names = frozenset(k.rsplit(":", 1)[1] for k in self.keys)
        self.groups = strategy.groups
        funnel = any(n in patched for n in _REGMAP_FUNNEL_NAMES)
        self.regmap_read = funnel or "regmap_mmio_read" in patched
        self.regmap_write = funnel or "regmap_mmio_write" in patched


def _deref(platform: Platform) -> Tdx:
    return Tdx("unsupported", "compiler-chosen", None,
               "direct dereference of an __iomem pointer: the compiler picks the instruction "
               f"(ALU with a memory operand, MOVSXD, vector moves...), which {platform.decoder} "
               f"may not decode and {platform.mmio_handler} cannot emulate: may oops "
               "(Documentation/arch/x86/tdx.rst, MMIO handling)")

# regmap API calls by the number of register accesses one call makes through regmap-mmio.
_REGMAP_RMW_WORDS = ("_bits", "field_write", "field_force_write", "fields_write",
                     "fields_force_write")
_REGMAP_ONE = frozenset({"regmap_read", "regmap_read_bypassed", "regmap_write",
                         "regmap_write_async", "regmap_field_read", "regmap_fields_read",
                         "regmap_test_bits"})


class X86Model:
    """Instruction forms of every catalogued accessor, and cached verdicts."""

    __slots__ = ("platform", "forms", "sources", "notes", "deref", "_plans", "_cache")

    def __init__(self, forms: Mapping[str, Form], notes: Iterable[str] = (),
                 platform: Platform | None = None) -> None:
        self.platform = platform or derive_platforms(None, ("tdx",))[0]
        self.deref = _deref(self.platform)
        self.forms: dict[str, Form] = dict(forms)
        self.sources: tuple[tuple[str, str], ...] = tuple(
            sorted((name, f.source) for name, f in self.forms.items()))
        self.notes: tuple[str, ...] = tuple(notes)
        self._plans: dict[int, _Plan] = {}
        self._cache: dict[tuple[object, ...], Tdx] = {}

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_catalogue(cls, catalogue: Catalogue, rules: Path | None = None,
                       platform: Platform | None = None) -> X86Model:
        """Forms from rules/tdx.toml only (no tree)."""
        platform = platform or derive_platforms(None, ("tdx",))[0]
        return cls._assemble(catalogue, load_forms(rules), {}, ["no tree: catalogue forms"],
                             platform)

    @classmethod
    def derive(cls, root: Path, catalogue: Catalogue, rules: Path | None = None,
               platform: str = "tdx", cpu: Mapping[str, bool] | None = None) -> X86Model:
        """Forms read from the tree at root where it defines them, else from rules/tdx.toml,
        for the platform (its handlers read from the tree too: platform.py). A missing or odd
        file never raises: it falls back and says so in `notes`."""
        model = derive_platforms(root, (platform,))[0]
        entries = load_forms(rules)
        notes: list[str] = []
        base = cls._assemble(catalogue, entries, {}, [], model)
        derived = _derive_shapes(root, catalogue, base.forms, notes, model, cpu)
        unfound: dict[str, list[str]] = {}
        for name, entry in sorted(entries.items()):
            if entry.tree and name not in derived and (root / entry.tree).is_file():
                unfound.setdefault(entry.tree, []).append(name)
        notes += [f"{file}: no definition of {', '.join(names)} found; catalogue forms"
                  for file, names in sorted(unfound.items())]
        return cls._assemble(catalogue, entries, derived, notes, model)

    @classmethod
    def _assemble(cls, catalogue: Catalogue, entries: Mapping[str, FormEntry],
                  derived: Mapping[str, tuple[Shape, str]], notes: list[str],
                  platform: Platform) -> X86Model:
        forms: dict[str, Form] = {}
        for name, (shape, file) in derived.items():
            forms[name] = form_from_shape(name, shape, f"tree:{file}", catalogue.get(name),
                                          platform)
        for name, e in entries.items():
            if name not in forms and e.like is None:
                forms[name] = catalogue_form(name, e, catalogue.get(name), platform)
        # `like` entries and split/poll names follow a form decided above (maybe by the tree).
        for _ in range(4):
            for name, e in entries.items():
                if name not in forms and e.like is not None and e.like in forms:
                    forms[name] = like_form(name, forms[e.like], catalogue.get(name))
            for acc in catalogue.accessors.values():
                if (acc.name not in forms and acc.reaches and acc.reaches[0] in forms
                        and acc.family in ("split", "poll")):
                    forms[acc.name] = reached_form(acc, forms[acc.reaches[0]])
        missing = sorted(set(catalogue.accessors) - set(forms))
        if missing:
            notes.append(f"no instruction form for {', '.join(missing)}")
        return cls(forms, notes, platform)

    # -- verdicts --------------------------------------------------------------------------

    def plan(self, strategy: Strategy) -> _Plan:
        """The strategy prepared for matching; looked up by identity first (hashing the
        dataclass on every one of a million verdicts is measurable)."""
        plan = self._plans.get(id(strategy))
        if plan is None or plan.strategy is not strategy:
            plan = self._plans[id(strategy)] = _Plan(strategy, frozenset(self.forms))
        return plan

    def form(self, name: str) -> Form | None:
        return self.forms.get(name)

    def needs_args(self, site: Site) -> bool:
        """Whether verdict() would use the site's call arguments (a direct call of a bulk
        form that traps once per unit of its count): callers can skip call_arguments()
        for every other site."""
        if site.kind != "direct":
            return False
        form = self.forms.get(site.accessor)
        return form is not None and form.per_count and form.path == "ve"

    def paravirt(self, plan: _Plan, cover: str) -> Tdx:
        key = (plan, "paravirt", cover)
        tdx = self._cache.get(key)
        if tdx is None:
            tdx = self._cache[key] = Tdx(
                "paravirt", "tdvmcall", 0,
                f"{cover} is patched under strategy {plan.strategy.name}: it issues the "
                f"{self.platform.hypercall} itself, no {self.platform.trap}")
        return tdx

    def accessor(self, name: str, plan: _Plan | None, args: Sequence[str] | None) -> Tdx:
        """Verdict of one accessor call; args give the count of the bulk forms."""
        if plan is not None and name in plan.accessors:
            return self.paravirt(plan, name)
        form = self.forms.get(name)
        if form is None:
            return self.regmap(name, "both", plan)
        if args is not None and form.per_count and form.path == "ve" and form.count_arg is not None:
            n = constant_value(args[form.count_arg]) if form.count_arg < len(args) else None
            if n is not None:
                return self._counted(form, n)
        key = ("form", name)
        tdx = self._cache.get(key)
        if tdx is None:
            tdx = self._cache[key] = Tdx(
                form.path, form.insn, None if form.per_count else form.exits, form.reason)
        return tdx

    def _counted(self, form: Form, n: int) -> Tdx:
        key = ("count", form.name, n)
        tdx = self._cache.get(key)
        if tdx is None:
            exits = form.exits_for(n)
            tdx = self._cache[key] = Tdx(form.path, form.insn, exits,
                                         f"{form.reason}; count {n}: {exits} "
                                         f"{self.platform.trap}")
        return tdx

    def regmap(self, name: str, access: str, plan: _Plan | None) -> Tdx:
        """A regmap API call in a driver with an MMIO regmap (or an unknown name)."""
        if not name.startswith("regmap"):
            key = ("unknown", name)
            tdx = self._cache.get(key)
            if tdx is None:
                tdx = self._cache[key] = Tdx("ve", "unknown", None,
                                             f"{name}: no instruction form known")
            return tdx
        covered = plan is not None and (
            (plan.regmap_read or access == "write") and (plan.regmap_write or access == "read"))
        if covered and plan is not None:
            return self.paravirt(plan, "regmap-mmio")
        key = ("regmap", name)
        tdx = self._cache.get(key)
        if tdx is None:
            if name in _REGMAP_ONE:
                exits: int | None = 1
                count = f"1 {self.platform.trap} per call"
            elif any(w in name for w in _REGMAP_RMW_WORDS):
                exits, count = 2, (f"read and write: 2 {self.platform.trap} per call "
                                   "(fewer with a register cache or an unchanged value)")
            else:
                exits, count = None, "the number of registers is not known"
            reads = self.forms.get("readl")
            insn = reads.insn if reads is not None else "mov"
            tdx = self._cache[key] = Tdx(
                "ve" if reads is None else reads.path, insn, exits,
                f"{name}: regmap over MMIO, regmap-mmio's readl/writel (regmap_mmio_read/"
                f"regmap_mmio_write in drivers/base/regmap/regmap-mmio.c): {count}")
        return tdx

    def wrapper(self, accessors: tuple[str, ...], nearest: str, plan: _Plan | None,
                counts: tuple[tuple[str, int | None], ...] = ()) -> Tdx:
        """The worst access a wrapper reaches: unsupported over ve over paravirt. Its exits
        are the sum over the accesses one call makes (counts: per accessor, from the call
        graph), each accessor's own exits times its count; a loop, a value use or an
        accessor whose exits are not known makes the sum unknown. Without counts, a wrapper
        of one accessor has that accessor's exits, of several an unknown number."""
        key = (plan, accessors, nearest, counts)
        tdx = self._cache.get(key)
        if tdx is not None:
            return tdx
        each = [(a, self.accessor(a, plan, None)) for a in accessors]
        worst = max(rank(t.path) for _, t in each)
        chosen = [(a, t) for a, t in each if rank(t.path) == worst]
        name, base = next(((a, t) for a, t in chosen if a == nearest), chosen[0])
        exits: int | None
        if counts:
            exits, shown = self._summed(dict(each), counts)
            trap = self.platform.trap
            many = "" if len(accessors) == 1 else f"worst of {len(accessors)} accessors; "
            reason = (f"reaches {name}: {many}one call makes {shown}: "
                      f"{'an unknown number of' if exits is None else exits} {trap}; "
                      f"{base.reason}")
        elif len(accessors) == 1:
            exits = base.ve_exits
            reason = f"reaches {name}: {base.reason}"
        else:
            exits = 0 if worst == 0 else None
            shown = ", ".join(accessors[:6]) + (", ..." if len(accessors) > 6 else "")
            reason = f"worst of {len(accessors)} accessors reached ({shown}): {base.reason}"
        tdx = self._cache[key] = Tdx(base.path, base.insn, exits, reason)
        return tdx

    @staticmethod
    def _summed(verdicts: Mapping[str, Tdx], counts: tuple[tuple[str, int | None], ...]
                ) -> tuple[int | None, str]:
        """Sum of count x exits over the accessors a call performs, and how it was made."""
        total: int | None = 0
        parts = []
        for accessor, n in counts:
            tdx = verdicts.get(accessor)
            each = tdx.ve_exits if tdx is not None else None
            parts.append(f"{'+' if n is None else n} x {accessor}")
            if total is None or n is None or each is None:
                total = None
            else:
                total += n * each
        shown = ", ".join(parts[:6]) + (", ..." if len(parts) > 6 else "")
        return total, shown


def _read_tree(root: Path, notes: list[str]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for rel in TREE_FILES:
        text, problem = _read(root, rel)
        if text is None:
            if rel != IOMAP_COPY_S:  # only old trees have it
                notes.append(f"{problem}; its accessors come from the catalogue")
            continue
        texts[rel] = text
    return texts


def _parse_tree(texts: Mapping[str, str], notes: list[str]) -> list[ParsedFile]:
    io_defined: set[str] = set()
    parsed: list[ParsedFile] = []
    for rel in (IO_H, IOMEM_C, IOMAP_C, IOMAP_COPY_C):
        if rel not in texts:
            continue
        # Each .c file includes <linux/io.h>, hence x86's io.h: its #defines hold there.
        defined = io_defined if rel == IO_H else set(io_defined)
        try:
            parsed.append(parse_definitions(texts[rel], rel, defined, _td_condition))
        except Exception as exc:  # an odd file must not stop the scan: say so and fall back
            notes.append(f"{rel}: not understood ({type(exc).__name__}); catalogue forms")
    return parsed


def _derive_one(name: str, analyzer: Analyzer, texts: Mapping[str, str],
                notes: list[str]) -> tuple[Shape, str] | None:
    d = analyzer.lookup(name, "")
    if name == "__iowrite32_copy" and IOMAP_COPY_S in texts and (d is None or d.file != IO_H):
        shape = assembly_shape(texts[IOMAP_COPY_S], name, analyzer.platform)
        if shape is not None:  # the arch's assembly beats the generic (weak) C version
            return shape, IOMAP_COPY_S
    if d is None:
        return None
    shape = analyzer.shape_of(d)
    if shape is None:
        notes.append(f"{name}: {d.file} defines it but its instructions were not recognised; "
                     "catalogue form")
        return None
    return shape, d.file


def _derive_shapes(root: Path, catalogue: Catalogue, fallback: Mapping[str, Form],
                   notes: list[str], platform: Platform,
                   cpu: Mapping[str, bool] | None) -> dict[str, tuple[Shape, str]]:
    """Catalogued name -> (shape, file) for the names the tree's files define."""
    texts = _read_tree(root, notes)
    widths = {name: acc.width for name, acc in catalogue.accessors.items()}
    external = {name: shape_of_form(form, widths.get(name)) for name, form in fallback.items()}
    analyzer = Analyzer(_parse_tree(texts, notes), external, widths, platform, cpu)
    derived: dict[str, tuple[Shape, str]] = {}
    for name in sorted(catalogue.accessors):
        try:
            found = _derive_one(name, analyzer, texts, notes)
        except Exception as exc:  # as above: never raise on a weird tree
            notes.append(f"{name}: not understood ({type(exc).__name__}); catalogue form")
            continue
        if found is not None:
            derived[name] = found
    return derived




def _key_reaches(key: str, site_path: str) -> bool:
    """Whether a `path:function` definition can be the function a site's chain names: a
    header under include/, a .c file (static: same file; exported: anywhere), or a header in
    the site's folder or above. Sites carry chain names, not chain keys: an approximation."""
    path = key.rsplit(":", 1)[0]
    if path.endswith(".c") or path.startswith("include/") or "/include/" in path:
        return True
    return site_path.startswith(posixpath.dirname(path) + "/")


def _cover(site: Site, plan: _Plan) -> str | None:
    """The patched function that covers the whole site: its enclosing function, its callee or
    a function on its chain (a patched accessor covers only that accessor: see accessor())."""
    fn = site.function
    if fn is not None:
        if fn in plan.names:
            return fn
        if fn in plan.key_names:
            for key in (site.scope_key, f"{site.path}:{fn}"):
                if key in plan.keys:
                    return key
    names = plan.chain_names
    if site.callee in names:
        return site.callee
    for name in site.via:
        if name in names:
            return name
    if plan.key_names:
        for name in (site.callee, *site.via):
            if name in plan.key_names:
                for key in plan.keys:
                    if key.endswith(":" + name) and _key_reaches(key, site.path):
                        return key
    return None


def verdict(site: Site, model: X86Model, strategy: Strategy, args: Sequence[str] | None,
            group: str | None = None) -> Tdx:
    """What the site does in a TD under the strategy.

    args: the argument texts of the site's call (callargs.call_arguments), None when not
    known; they only matter for the count of bulk accessors called directly. group: the
    site's driver group when the site is not enriched yet (else site.group is used); a
    strategy limited to groups patches nothing for sites of other groups.
    """
    prepared = model.plan(strategy)
    plan: _Plan | None = prepared if prepared.active else None
    if plan is not None and plan.groups is not None:
        g = group if group is not None else site.group
        if g is not None and g not in plan.groups:
            plan = None
    if plan is not None:
        cover = _cover(site, plan)
        if cover is not None:
            return model.paravirt(plan, cover)
    kind = site.kind
    if kind == "deref":
        return model.deref
    if kind == "regmap":
        if site.map in ("port", "funnel") and site.accessors:
            # regmap-mmio over an I/O port, or a config's own callbacks: their accessors
            return model.wrapper(site.accessors, site.accessor, plan)
        return model.regmap(site.callee, site.access, plan)
    if kind == "wrapper":
        return model.wrapper(site.accessors or (site.accessor,), site.accessor, plan,
                             site.access_counts)
    return model.accessor(site.accessor, plan, args if kind == "direct" else None)
