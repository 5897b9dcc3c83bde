"""Reducing a definition to the instructions it executes, as a TD guest runs it.

A body's shape is the worst of what it executes: inline asm templates (`rep ; movsl` is
MOVS), calls of other definitions (followed through the files read), loops (traps scale with
the count), the branch a TD takes under CC_ATTR_GUEST_UNROLL_STRING_IO, and lib/iomap.c's
IO_COND (a port cookie does port I/O instead). See docs/domain.md for the decoder's rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from mmioscan.cfront.callargs import split_arguments
from mmioscan.cfront.ctext import (
    C_WORDS,
    CALL_RE,
    IDENT_RE,
    Definition,
    ParsedFile,
    clean_text,
    statement,
)
from mmioscan.core.model import TdxPath
from mmioscan.platforms.x86.platform import Platform

_LOOP_RE = re.compile(r"\b(?:for|while)\s*\(|\bdo\s*\{")
_ASM_RE = re.compile(r"\b(?:asm|__asm__|__asm)\b(?:\s+(?:volatile|__volatile__|__volatile|goto"
                     r"|inline))*\s*\(")
_STRING_RE = re.compile(r'\s*"((?:\\.|[^"\\\n])*)"')
_GUARD_RE = re.compile(r"(!\s*)?\bcc_platform_has\s*\(\s*CC_ATTR_GUEST_UNROLL_STRING_IO\s*\)")
_VOLATILE_DEREF_RE = re.compile(r"\*\s*\(\s*(?:const\s+)?volatile\b")
_STRING_INSNS = frozenset({"movs", "stos", "string-port-io"})
_MEMSETS = frozenset({"memset", "__memset"})
_COMPILER_COPIES = frozenset({
    "memcpy", "memset", "memmove", "__memcpy", "__memset", "__inline_memcpy",
    "__builtin_memcpy", "__builtin_memset", "__builtin_memmove",
})



@dataclass(frozen=True, slots=True)
class Shape:
    path: TdxPath
    insn: str  # mov, port-io, movs, movdir64b, enqcmds, stos, string-port-io, compiler-chosen
    exits: int | None  # fixed traps per call
    bits: int | None = None  # width of one access
    per_count: bool = False  # a loop: traps scale with the count argument
    unrolled: bool = False  # taken because CC_ATTR_GUEST_UNROLL_STRING_IO is set in a TD
    out_of_line: bool = False
    port_branch: bool = False  # lib/iomap.c IO_COND: a port cookie does port I/O instead
    chain: tuple[str, ...] = ()  # names followed, last the instruction: for the reason
    unit_exits: int = 1  # traps per unit of the count (SEV's MOVS: the MOVS and a nested one)
    condition: str = ""  # a CPU feature the shape depends on, in words, for the reason


_SUFFIX_BITS = {"b": 8, "w": 16, "l": 32, "q": 64}


def _insn_of(word: str) -> tuple[str, int | None] | None:
    """(instruction form, bits) of one x86 mnemonic (AT&T), None when it touches no MMIO."""
    bits = _SUFFIX_BITS.get(word[-1]) if word else None
    if word in ("movslq", "movsxd"):
        return "movsxd", 32
    if word in ("movdir64b", "enqcmds"):
        return word, 512
    if re.fullmatch(r"movs[bwlq]?", word):
        return "movs", bits
    if re.fullmatch(r"stos[bwlq]?", word):
        return "stos", bits
    if re.fullmatch(r"(?:ins|outs)[bwl]?", word):
        return "string-port-io", bits
    if re.fullmatch(r"(?:in|out)[bwl]?", word):
        return "port-io", bits
    if re.fullmatch(r"mov[bwlq]?|movz[bw][wlq]?|movs[bw][wlq]", word):
        return "mov", bits if len(word) == 4 else None
    return None


def _mnemonic_shape(word: str, platform: Platform, rep: bool) -> Shape | None:
    """Shape of one mnemonic on the platform: the handler decides the path; a REP string
    instruction the handler emulates traps once per element of the count."""
    found = _insn_of(word.lower())
    if found is None:
        return None
    insn, bits = found
    path = platform.path_of(insn)
    if path != "ve":
        return Shape(path, insn, None, bits)
    unit = platform.movs_exits if insn == "movs" else 1
    if rep and insn in _STRING_INSNS:
        return Shape("ve", insn, None, bits, per_count=True, unit_exits=unit)
    return Shape("ve", insn, unit, bits, unit_exits=unit)


def instructions_shape(template: str, platform: Platform) -> Shape | None:
    """Worst shape of the instructions in an asm template ("rep ; movsl" -> movs)."""
    worst: Shape | None = None
    pending_rep = False  # `rep ;` then the instruction: the prefix stands alone
    for piece in re.split(r"[;\n]", template.replace("\\n", "\n").replace("\\t", " ")):
        words = piece.replace(":", ": ").split()
        while words and words[0].endswith(":"):
            words = words[1:]  # a label
        if not words:
            continue
        rep = pending_rep or words[0] in ("rep", "repe", "repz", "repne", "repnz")
        if words[0] in ("rep", "repe", "repz", "repne", "repnz", "lock"):
            words = words[1:]  # a prefix: the instruction follows (maybe after `;`)
            if not words:
                pending_rep = rep
                continue
        pending_rep = False
        shape = _mnemonic_shape(words[0], platform, rep)
        if shape is not None and (worst is None or rank(shape.path) > rank(worst.path)):
            worst = shape
    if worst is None:
        return None
    text = " ".join(template.replace("\\n", " ").replace("\\t", " ").split())
    return replace(worst, chain=(f"asm `{text[:40]}{'...' if len(text) > 40 else ''}`",))


def _asm_templates(text: str) -> Iterator[str]:
    for m in _ASM_RE.finditer(text):
        pos, parts = m.end(), []
        while (s := _STRING_RE.match(text, pos)) is not None:
            parts.append(s.group(1))
            pos = s.end()
        if parts:
            yield "".join(parts)


def rank(path: str) -> int:
    return {"paravirt": 0, "ve": 1, "unsupported": 2}.get(path, 1)


def _guarded_branch(text: str, unroll: bool) -> str | None:
    """The code a guest runs around `if (cc_platform_has(CC_ATTR_GUEST_UNROLL_STRING_IO))`:
    where the attribute holds (TDX) the then-branch (the else-branch for a negated test);
    where it does not (SEV-ES/SNP) the other one, or what follows the test; None without
    such a test."""
    m = _GUARD_RE.search(text)
    if m is None:
        return None
    ifs = [i.end() - 1 for i in re.finditer(r"\bif\s*\(", text[:m.start()])]
    found = split_arguments(text, ifs[-1]) if ifs else None
    if found is None:
        return None
    then, end = statement(text, found[1])
    if unroll != bool(m.group(1)):
        return then
    rest = text[end:].lstrip()
    if not rest.startswith("else"):
        return "" if unroll else rest
    return statement(rest, 4)[0]


def _mmio_branch(text: str) -> str | None:
    """lib/iomap.c: the MMIO arguments of IO_COND(addr, port I/O, MMIO); None without it."""
    branches = []
    for m in re.finditer(r"\bIO_COND\s*\(", text):
        found = split_arguments(text, m.end() - 1)
        if found is not None and len(found[0]) >= 3:
            branches.append(found[0][2])
    return "\n".join(branches) if branches else None


class Analyzer:
    """Shapes of definitions across the files read; names not defined there come from
    `external` (the catalogue forms' shapes)."""

    def __init__(self, parsed: Sequence[ParsedFile], external: Mapping[str, Shape],
                 widths: Mapping[str, int], platform: Platform,
                 cpu: Mapping[str, bool] | None = None) -> None:
        self.platform = platform
        self.cpu = cpu or {}  # CPU features known present (True) or absent (False)
        self.parsed = parsed
        self.external = external
        self.widths = widths
        self.memo: dict[tuple[str, str], Shape | None] = {}
        self.active: set[tuple[str, str]] = set()

    def lookup(self, name: str, file: str) -> Definition | None:
        """The file's own definition first (static helpers), then the files in precedence."""
        for p in self.parsed:
            if p.file == file and name in p.defs:
                return p.defs[name]
        for p in self.parsed:
            d = p.defs.get(name)
            if d is not None:
                return d
        return None

    def shape(self, name: str, file: str) -> Shape | None:
        d = self.lookup(name, file)
        if d is None:
            return self.external.get(name)
        return self.shape_of(d)

    def shape_of(self, d: Definition) -> Shape | None:
        key = (d.file, d.name)
        if key in self.memo:
            return self.memo[key]
        if key in self.active:
            return None  # recursion through macros: undecided
        self.active.add(key)
        try:
            shape = self._reduce(d)
        finally:
            self.active.discard(key)
        if shape is not None and d.name in self.widths and shape.bits is None:
            shape = replace(shape, bits=self.widths[d.name])
        self.memo[key] = shape
        return shape

    def _reduce(self, d: Definition) -> Shape | None:
        if d.kind == "object":
            target = d.body.strip().strip("()").strip()
            if IDENT_RE.fullmatch(target):
                inner = self.shape(target, d.file)
                return None if inner is None else replace(inner, chain=(target, *inner.chain))
        return self._body(d.body, d)

    def _body(self, text: str, d: Definition) -> Shape | None:
        unrolled = False
        branch = _guarded_branch(text, self.platform.unroll_string_io)
        if branch is not None:
            text, unrolled = branch, self.platform.unroll_string_io
        mmio = _mmio_branch(text)
        if mmio is not None:
            text = mmio
        shape = self._pieces(text, d, unrolled)
        return shape if shape is None or mmio is None else replace(shape, port_branch=True)

    def _pieces(self, text: str, d: Definition, unrolled: bool) -> Shape | None:
        pieces = [s for t in _asm_templates(text)
                  if (s := instructions_shape(t, self.platform)) is not None]
        for m in CALL_RE.finditer(text):
            name = m.group(1)
            if name in C_WORDS or name == d.name or name in d.params:
                continue
            if name in _MEMSETS and self.platform.memset_stos_feature:
                pieces.append(self._memset(name))
                continue
            if name in _COMPILER_COPIES:
                pieces.append(Shape("unsupported", "compiler-chosen", None, None,
                                     chain=(f"{name}()",)))
                continue
            s = self.shape(name, d.file)
            if s is not None:
                pieces.append(replace(s, chain=(name, *s.chain)))
        if not pieces and _VOLATILE_DEREF_RE.search(text):
            pieces.append(Shape("unsupported", "compiler-chosen", None,
                                 chain=("a volatile pointer dereference",)))
        return _combine(pieces, bool(_LOOP_RE.search(text)), unrolled, d.out_of_line)


    def _memset(self, name: str) -> Shape:
        """x86's memset: REP STOSB on CPUs with FSRS (arch/x86/lib/memset_64.S), else
        memset_orig's loop of MOVs; the worst case unless the CPU is known."""
        feature = self.platform.memset_stos_feature or ""
        if self.cpu.get(feature.lower()) is False:
            return Shape("ve", "mov", None, 64, per_count=True, chain=(f"{name}()",),
                         condition=f"without {feature}, memset is memset_orig's MOV loop "
                                   f"(arch/x86/lib/memset_64.S)")
        known = self.cpu.get(feature.lower()) is True
        return Shape("unsupported", "stos", None, 8, chain=(f"{name}()",),
                     condition=f"{'the CPU has' if known else 'on CPUs with'} {feature}: "
                               f"memset is REP STOSB (arch/x86/lib/memset_64.S)"
                               + ("" if known else "; worst case, --cpu-features no-"
                                  f"{feature.lower()} for CPUs without it"))


def _combine(pieces: list[Shape], loop: bool, unrolled: bool,
             out_of_line: bool) -> Shape | None:
    """One shape for a body from the shapes of what it executes."""
    if not pieces:
        return None
    if any(p.insn == "port-io" for p in pieces) and any(p.insn == "mov" for p in pieces):
        # Without IO_COND we cannot tell the port-cookie branch apart: MMIO is what we report.
        pieces = [p for p in pieces if p.insn != "port-io"]
    bad = [p for p in pieces if p.path == "unsupported"]
    if bad:
        return replace(bad[0], unrolled=unrolled, out_of_line=out_of_line or bad[0].out_of_line)
    first = pieces[0]
    ool = out_of_line or any(p.out_of_line for p in pieces)
    counted = [p for p in pieces if p.per_count]
    if counted:
        return replace(counted[0], unrolled=unrolled or counted[0].unrolled, out_of_line=ool)
    if loop:
        bits = [p.bits for p in pieces]
        return replace(first, exits=None, per_count=True, unrolled=unrolled, out_of_line=ool,
                       bits=None if None in bits else min(b for b in bits if b is not None))
    exits = [p.exits for p in pieces]
    total = None if None in exits else sum(e for e in exits if e is not None)
    return replace(first, exits=total, unrolled=unrolled, out_of_line=ool,
                   bits=first.bits if len(pieces) == 1 else None)




def assembly_shape(text: str, name: str, platform: Platform) -> Shape | None:
    """A function in an assembly file (old trees: __iowrite32_copy in iomap_copy_64.S)."""
    start = re.search(r"(?:SYM_FUNC_START|ENTRY)\(\s*" + re.escape(name) + r"\s*\)|^"
                      + re.escape(name) + r":", text, re.M)
    if start is None:
        return None
    end = re.search(r"SYM_FUNC_END|ENDPROC|END\(", text[start.end():])
    body = text[start.end():start.end() + (end.start() if end else len(text))]
    return instructions_shape(clean_text(body), platform)

