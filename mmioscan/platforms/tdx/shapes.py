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

_LOOP_RE = re.compile(r"\b(?:for|while)\s*\(|\bdo\s*\{")
_ASM_RE = re.compile(r"\b(?:asm|__asm__|__asm)\b(?:\s+(?:volatile|__volatile__|__volatile|goto"
                     r"|inline))*\s*\(")
_STRING_RE = re.compile(r'\s*"((?:\\.|[^"\\\n])*)"')
_GUARD_RE = re.compile(r"(!\s*)?\bcc_platform_has\s*\(\s*CC_ATTR_GUEST_UNROLL_STRING_IO\s*\)")
_VOLATILE_DEREF_RE = re.compile(r"\*\s*\(\s*(?:const\s+)?volatile\b")
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


_SUFFIX_BITS = {"b": 8, "w": 16, "l": 32, "q": 64}


def _mnemonic_shape(word: str) -> Shape | None:
    """Shape of one x86 mnemonic (AT&T), or None for one that does not touch MMIO."""
    word = word.lower()
    if word in ("movslq", "movsxd"):
        return Shape("unsupported", "movsxd", None, 32)
    if word == "movdir64b":
        return Shape("unsupported", "movdir64b", None, 512)
    if word == "enqcmds":
        return Shape("unsupported", "enqcmds", None, 512)
    if re.fullmatch(r"movs[bwlq]?", word):
        return Shape("unsupported", "movs", None, _SUFFIX_BITS.get(word[-1]))
    if re.fullmatch(r"stos[bwlq]?", word):
        return Shape("unsupported", "stos", None, _SUFFIX_BITS.get(word[-1]))
    if re.fullmatch(r"(?:ins|outs)[bwl]?", word):
        return Shape("unsupported", "string-port-io", None, _SUFFIX_BITS.get(word[-1]))
    if re.fullmatch(r"(?:in|out)[bwl]?", word):
        return Shape("ve", "port-io", 1, _SUFFIX_BITS.get(word[-1]))
    if re.fullmatch(r"mov[bwlq]?|movz[bw][wlq]?|movs[bw][wlq]", word):
        return Shape("ve", "mov", 1, _SUFFIX_BITS.get(word[-1]) if len(word) == 4 else None)
    return None


def instructions_shape(template: str) -> Shape | None:
    """Worst shape of the instructions in an asm template ("rep ; movsl" -> movs)."""
    worst: Shape | None = None
    for piece in re.split(r"[;\n]", template.replace("\\n", "\n").replace("\\t", " ")):
        words = piece.replace(":", ": ").split()
        while words and words[0].endswith(":"):
            words = words[1:]  # a label
        if not words:
            continue
        if words[0] in ("rep", "repe", "repz", "repne", "repnz", "lock"):
            words = words[1:]  # a prefix: the instruction follows (maybe after `;`)
            if not words:
                continue
        shape = _mnemonic_shape(words[0])
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


def _guarded_branch(text: str) -> str | None:
    """The code a TD runs under `if (cc_platform_has(CC_ATTR_GUEST_UNROLL_STRING_IO))`: the
    then-branch (the else-branch for a negated test); None without such a test."""
    m = _GUARD_RE.search(text)
    if m is None:
        return None
    ifs = [i.end() - 1 for i in re.finditer(r"\bif\s*\(", text[:m.start()])]
    found = split_arguments(text, ifs[-1]) if ifs else None
    if found is None:
        return None
    then, end = statement(text, found[1])
    if not m.group(1):
        return then
    rest = text[end:].lstrip()
    if not rest.startswith("else"):
        return ""
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
                 widths: Mapping[str, int]) -> None:
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
        branch = _guarded_branch(text)
        if branch is not None:
            text, unrolled = branch, True
        mmio = _mmio_branch(text)
        if mmio is not None:
            text = mmio
        shape = self._pieces(text, d, unrolled)
        return shape if shape is None or mmio is None else replace(shape, port_branch=True)

    def _pieces(self, text: str, d: Definition, unrolled: bool) -> Shape | None:
        pieces = [s for t in _asm_templates(text) if (s := instructions_shape(t)) is not None]
        for m in CALL_RE.finditer(text):
            name = m.group(1)
            if name in C_WORDS or name == d.name or name in d.params:
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




def assembly_shape(text: str, name: str) -> Shape | None:
    """A function in an assembly file (old trees: __iowrite32_copy in iomap_copy_64.S)."""
    start = re.search(r"(?:SYM_FUNC_START|ENTRY)\(\s*" + re.escape(name) + r"\s*\)|^"
                      + re.escape(name) + r":", text, re.M)
    if start is None:
        return None
    end = re.search(r"SYM_FUNC_END|ENDPROC|END\(", text[start.end():])
    body = text[start.end():start.end() + (end.start() if end else len(text))]
    return instructions_shape(clean_text(body))

