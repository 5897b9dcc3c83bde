"""Instruction forms: how each catalogued accessor executes in a TD when nothing is patched.

A form comes from the tree (a Shape read by shapes.py) or from the shipped catalogue
(rules/tdx.toml); `source` says which. Reasons name the decoder's verdict (docs/domain.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from mmioscan.core.catalogue import Accessor, RuleError
from mmioscan.core.model import TdxPath
from mmioscan.core.rules_path import rules_dir
from mmioscan.core.toml import read_toml
from mmioscan.platforms.x86.platform import Platform
from mmioscan.platforms.x86.shapes import Shape


@dataclass(frozen=True, slots=True)
class Form:
    """How one accessor executes on a platform when nothing is patched."""

    name: str
    path: TdxPath  # "ve" or "unsupported"
    insn: str
    exits: int | None  # traps per call when fixed; None when per_count or unknown
    reason: str
    source: str  # "tree:<file>" or "catalogue"
    per_count: bool = False  # traps scale with the count argument
    trap_bits: int | None = None  # bits moved per trap (per_count forms)
    count_arg: int | None = None  # from accessors.toml
    count_bits: int | None = None  # bits in one unit of the count (8 for bytes)
    unit_exits: int = 1  # traps per trap_bits moved (SEV's MOVS: 2, with the nested one)

    def exits_for(self, count: int) -> int | None:
        """Traps of one call with a count argument of `count` units."""
        if not self.per_count or self.trap_bits is None or self.count_bits is None or count < 0:
            return None
        total = count * self.count_bits
        return -(-total // self.trap_bits) * self.unit_exits



def shape_of_form(form: Form, width: int | None) -> Shape:
    base = {"out-of-line-mov": "mov", "unrolled-mov": "mov"}.get(form.insn, form.insn)
    bits = form.trap_bits if form.per_count else width
    return Shape(form.path, base, form.exits, bits, form.per_count,
                 form.insn == "unrolled-mov", form.insn == "out-of-line-mov",
                 unit_exits=form.unit_exits)


# -- reasons -----------------------------------------------------------------------------------

def _unit(bits: int | None) -> str:
    return "byte" if bits == 8 else f"{bits}-bit access" if bits else "access"


def _reason(name: str, shape: Shape, source: str, platform: Platform) -> str:
    chain = " -> ".join((name, *shape.chain))
    text = f"{chain}: {platform.consequence(shape.insn)}"
    if shape.condition:
        text += f" ({shape.condition})"
    trap = platform.trap
    if shape.path == "ve":
        if shape.per_count:
            each = "" if shape.unit_exits == 1 else f"{shape.unit_exits} "
            text += f"; {each or 'one '}{trap} per {_unit(shape.bits)} of the count"
            if shape.unrolled:
                text += " (unrolled because CC_ATTR_GUEST_UNROLL_STRING_IO is set in a TD)"
        elif shape.exits is not None:
            text += f"; {shape.exits} {trap} per call"
        if shape.port_branch:
            text += " (a port I/O cookie takes IO_COND's port branch instead)"
    return f"{text} [{source}]"


def form_from_shape(name: str, shape: Shape, source: str, acc: Accessor | None,
                    platform: Platform) -> Form:
    insn = shape.insn
    if shape.path == "ve" and insn == "mov":
        if shape.per_count:
            insn = "unrolled-mov" if shape.unrolled else "mov"
        elif shape.out_of_line:
            insn = "out-of-line-mov"
    count_arg, count_bits = _count_fields(acc)
    exits = None if shape.per_count or shape.path != "ve" else shape.exits
    reason = _reason(name, shape, source, platform)
    if exits is not None and insn == "port-io" and name.endswith("_p"):
        # BUILDIO's _p forms pause after the access: slow_down_io() -> native_io_delay(),
        # an OUT to port 0x80 (the default io_delay type): one more port I/O trap.
        exits += 1
        reason += (f"; then the pause, slow_down_io(): an OUT to port 0x80, {exits} "
                   f"{platform.trap} per call")
    return Form(name, shape.path, insn, exits, reason, source,
                per_count=shape.per_count, trap_bits=shape.bits if shape.per_count else None,
                count_arg=count_arg, count_bits=count_bits, unit_exits=shape.unit_exits)


def _count_fields(acc: Accessor | None) -> tuple[int | None, int | None]:
    """(index of the count argument, bits in one unit of it) from accessors.toml."""
    if acc is None or acc.count_arg is None:
        return None, None
    return acc.count_arg, 8 if acc.count_unit == "bytes" else acc.width


# -- the shipped catalogue of forms (rules/tdx.toml) ---------------------------------------------

_PATHS = frozenset({"ve", "unsupported"})


@dataclass(frozen=True, slots=True)
class FormEntry:
    """One name's entry in rules/tdx.toml."""

    path: TdxPath
    insn: str
    exits: int | None
    per_count: bool
    trap_bits: int | None
    like: str | None
    reason: str
    tree: str | None  # the file of the tree that defines the name (for notes)


def _entry(raw: object, where: str) -> tuple[list[str], FormEntry]:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: expected a table")
    names = raw.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise RuleError(f"{where}: `names` must be a non-empty list of names")
    unknown = set(raw) - {"names", "path", "insn", "exits", "per_count", "trap_bits", "like",
                          "reason", "tree"}
    if unknown:
        raise RuleError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    like = raw.get("like")
    path = raw.get("path", "ve")
    if like is None and path not in _PATHS:
        raise RuleError(f"{where}: path must be ve or unsupported, not {path!r}")
    exits, trap_bits = raw.get("exits"), raw.get("trap_bits")
    for key, value in (("exits", exits), ("trap_bits", trap_bits)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise RuleError(f"{where}: {key} must be a non-negative integer")
    reason = raw.get("reason", "")
    if not isinstance(reason, str) or (like is None and not reason):
        raise RuleError(f"{where}: `reason` (text) is required")
    if like is not None and not isinstance(like, str):
        raise RuleError(f"{where}: `like` must be a name")
    return names, FormEntry(path, str(raw.get("insn", "mov")), exits,
                         bool(raw.get("per_count", False)), trap_bits, like, reason,
                         raw.get("tree") if isinstance(raw.get("tree"), str) else None)


def load_forms(path: Path | None = None) -> dict[str, FormEntry]:
    """rules/tdx.toml: name -> entry; RuleError on a broken file."""
    path = path or rules_dir() / "tdx.toml"
    data, _ = read_toml(path)
    raw = data.get("form")
    if not isinstance(raw, list) or not raw:
        raise RuleError(f"{path}: no [[form]] entries")
    entries: dict[str, FormEntry] = {}
    for i, item in enumerate(raw):
        names, entry = _entry(item, f"{path.name}: form #{i + 1}")
        for name in names:
            if name in entries:
                raise RuleError(f"{path.name}: {name!r} has two forms")
            entries[name] = entry
    return entries


def catalogue_form(name: str, e: FormEntry, acc: Accessor | None, platform: Platform) -> Form:
    """A name's form from rules/tdx.toml, judged by the platform's handler. The entries
    describe an x86_64 TD build; where a platform does not unroll string I/O (SEV-ES/SNP)
    the unrolled helpers take iomem.c's other branch: `rep movs` for the copies, memset
    (REP STOSB with FSRS, the worst case) for memset_io. Only a partial tree gets here."""
    count_arg, count_bits = _count_fields(acc)
    trap_bits = e.trap_bits if e.trap_bits is not None else (acc.width if acc else None)
    insn, per_count, unit = e.insn, e.per_count, 1
    if insn == "unrolled-mov" and not platform.unroll_string_io:
        insn, trap_bits = ("stos", 8) if "memset" in name else ("movs", 32)
        unit = platform.movs_exits if insn == "movs" else 1
    base = {"out-of-line-mov": "mov", "unrolled-mov": "mov"}.get(insn, insn)
    path = platform.path_of(base) if e.like is None else e.path
    per_count = per_count and path == "ve"
    reason = f"{name}: {platform.consequence(base)}"
    if platform.name == "tdx":  # the entries' own words describe a TD build
        reason += f"; {e.reason}"
    return Form(name, path, insn, None if per_count or path != "ve" else e.exits,
                f"{reason} [catalogue]", "catalogue", per_count=per_count,
                trap_bits=trap_bits if per_count else None, count_arg=count_arg,
                count_bits=count_bits, unit_exits=unit)


def like_form(name: str, target: Form, acc: Accessor | None) -> Form:
    count_arg, count_bits = _count_fields(acc)
    return replace(target, name=name, source="catalogue", reason=f"{name} -> {target.reason}",
                   count_arg=count_arg, count_bits=count_bits)


def reached_form(acc: Accessor, target: Form) -> Form:
    """split and poll names from accessors.toml: `accesses` x the reached accessor, or a poll
    loop (traps per call unknown)."""
    if acc.family == "poll":
        return replace(target, name=acc.name, exits=None, per_count=False, trap_bits=None,
                       source="catalogue", count_arg=None, count_bits=None,
                       reason=f"{acc.name} polls {target.name} until the condition or the "
                              f"timeout: one #VE per poll; {target.reason}")
    exits = None if target.exits is None else target.exits * acc.accesses
    return replace(target, name=acc.name, exits=exits, source="catalogue",
                   reason=f"{acc.name} makes {acc.accesses} access(es) of {target.name} "
                          f"({exits} #VE per call); {target.reason}")


# -- the model ---------------------------------------------------------------------------------
