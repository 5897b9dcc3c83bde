"""TDX verdicts: what each MMIO site does in an Intel TDX guest, under a patching strategy.

Three parts (see DOMAIN.md):

* The instruction form of every catalogued accessor, read from the scanned tree where it can
  be (arch/x86/include/asm/io.h, arch/x86/lib/iomem.c, lib/iomap.c, lib/iomap_copy.c, and an
  old tree's arch/x86/lib/iomap_copy_64.S) with a light text analysis: macros that generate
  functions (build_mmio_read, BUILDIO) are expanded, #if blocks are resolved for x86_64, and
  each accessor body is reduced to the instructions it executes (inline asm templates, calls
  of other accessors, loops, the CC_ATTR_GUEST_UNROLL_STRING_IO branch a TD takes). What the
  tree does not say comes from rules/tdx.toml; `TdxModel.sources` records which decided.
* Strategies (rules/strategies.toml, or a user's list of patched functions): a patched
  function issues the TDVMCALL itself, so the sites it covers take no #VE ("paravirt").
* `verdict(site, model, strategy, args)`: path, instruction, #VE exits per execution, reason.
  Fast: per-accessor results are precomputed and wrapper results cached by accessor tuple.
"""

from __future__ import annotations

import posixpath
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmioscan.cfront.callargs import constant_value, split_arguments
from mmioscan.core.catalogue import Accessor, Catalogue, RuleError
from mmioscan.core.fileio import read_input
from mmioscan.core.model import Site, Tdx, TdxPath
from mmioscan.core.rules_path import rules_dir


class TdxError(RuleError):
    """A strategy or patch-point file is unusable; the message is one line naming the file."""


# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Form:
    """How one accessor executes in a TD when nothing is patched."""

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

    def exits_for(self, count: int) -> int | None:
        """Traps of one call with a count argument of `count` units."""
        if not self.per_count or self.trap_bits is None or self.count_bits is None or count < 0:
            return None
        total = count * self.count_bits
        return -(-total // self.trap_bits)


@dataclass(frozen=True)
class Strategy:
    """Which functions issue the TDVMCALL directly (are patched), and for which groups."""

    name: str
    description: str
    patched: frozenset[str]  # function names, or `path:function` keys of one definition
    groups: frozenset[str] | None = None  # None = all groups


# -- C text helpers ----------------------------------------------------------------------------

_COMMENT_RE = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/\*.*?\*/|//[^\n]*', re.S)
_DIRECTIVE_RE = re.compile(r"^[ \t]*#[ \t]*(\w+)[ \t]*(.*)$")
_DEFINE_RE = re.compile(r"(\w+)(\([^)]*\))?\s*(.*)$", re.S)
_IDENT_RE = re.compile(r"[A-Za-z_]\w*")
_CALL_RE = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_LOOP_RE = re.compile(r"\b(?:for|while)\s*\(|\bdo\s*\{")
_ASM_RE = re.compile(r"\b(?:asm|__asm__|__asm)\b(?:\s+(?:volatile|__volatile__|__volatile|goto"
                     r"|inline))*\s*\(")
_STRING_RE = re.compile(r'\s*"((?:\\.|[^"\\\n])*)"')
_GUARD_RE = re.compile(r"(!\s*)?\bcc_platform_has\s*\(\s*CC_ATTR_GUEST_UNROLL_STRING_IO\s*\)")
_VOLATILE_DEREF_RE = re.compile(r"\*\s*\(\s*(?:const\s+)?volatile\b")
_MACRO_TOKEN_RE = re.compile(r'"(?:\\.|[^"\\\n])*"|##|#\s*[A-Za-z_]\w*|[A-Za-z_]\w*')

_C_WORDS = frozenset({
    "if", "while", "for", "switch", "return", "sizeof", "do", "else", "case", "typeof",
    "__typeof__", "defined", "asm", "__asm__", "__asm", "volatile", "__volatile__",
    "__attribute__", "likely", "unlikely", "__builtin_expect", "cc_platform_has", "IO_COND",
})
# Copies and fills the compiler expands itself: REP MOVS/STOS or vector moves.
_COMPILER_COPIES = frozenset({
    "memcpy", "memset", "memmove", "__memcpy", "__memset", "__inline_memcpy",
    "__builtin_memcpy", "__builtin_memset", "__builtin_memmove",
})

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


def _clean(text: str) -> str:
    """Comments out, backslash-newlines joined: one logical line per directive."""
    def blank(m: re.Match[str]) -> str:
        s = m.group(0)
        return s if s[0] in "\"'" else " "
    return _COMMENT_RE.sub(blank, text).replace("\\\n", " ")


class _Cond:
    """Three-valued evaluation of an #if expression: 1, 0, or None (unknown)."""

    _TOKEN = re.compile(r"\s*(\|\||&&|==|!=|>=|<=|[<>!()]|\d+[uUlL]*|[A-Za-z_]\w*)")

    def __init__(self, expr: str, defined: set[str]) -> None:
        self.tokens: list[str] = []
        pos = 0
        expr = expr.strip()
        while pos < len(expr):
            m = self._TOKEN.match(expr, pos)
            if m is None:
                self.tokens = ["?"]  # something we do not read: unknown
                break
            self.tokens.append(m.group(1))
            pos = m.end()
        self.defined = defined
        self.i = 0

    def value(self) -> int | None:
        try:
            v = self._or()
        except IndexError:
            return None
        return v if self.i == len(self.tokens) else None

    def _peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _or(self) -> int | None:
        v = self._and()
        while self._peek() == "||":
            self.i += 1
            w = self._and()
            v = 1 if v == 1 or w == 1 else (None if v is None or w is None else 0)
        return v

    def _and(self) -> int | None:
        v = self._cmp()
        while self._peek() == "&&":
            self.i += 1
            w = self._cmp()
            v = 0 if v == 0 or w == 0 else (None if v is None or w is None else 1)
        return v

    def _cmp(self) -> int | None:
        v = self._unary()
        op = self._peek()
        if op in ("==", "!=", ">=", "<=", "<", ">"):
            self.i += 1
            w = self._unary()
            if v is None or w is None:
                return None
            return int({"==": v == w, "!=": v != w, ">=": v >= w, "<=": v <= w,
                        "<": v < w, ">": v > w}[op])
        return v

    def _unary(self) -> int | None:
        tok = self.tokens[self.i]
        self.i += 1
        if tok == "!":
            v = self._unary()
            return None if v is None else int(not v)
        if tok == "(":
            v = self._or()
            self.i += 1  # ")"
            return v
        if tok[0].isdigit():
            return int(tok.rstrip("uUlL"))
        if tok in ("defined", "IS_ENABLED", "IS_BUILTIN", "IS_REACHABLE"):
            paren = self._peek() == "("
            if paren:
                self.i += 1
            name = self.tokens[self.i]
            self.i += 2 if paren else 1
            return self._defined(name) if tok == "defined" else self._symbol(name)
        return self._symbol(tok)

    def _defined(self, name: str) -> int | None:
        if name in self.defined or name in _SET:
            return 1
        if name in _UNSET:
            return 0
        return None if name.startswith("CONFIG_") else 0

    def _symbol(self, name: str) -> int | None:
        if name in _SET:
            return 1
        if name in _UNSET:
            return 0
        return _VALUES.get(name)


@dataclass(frozen=True, slots=True)
class _Def:
    """A function or macro definition in one of the files read."""

    name: str
    kind: str  # "function", "macro" (with parameters) or "object" (object-like macro)
    params: tuple[str, ...]
    body: str
    file: str  # relative path
    out_of_line: bool = False  # a function that is not inline, in a .c file
    weak: bool = False


def _select(text: str, defined: set[str]) -> tuple[str, list[tuple[str, tuple[str, ...] | None,
                                                               str]]]:
    """Code of the branches an x86_64 TD build keeps (directive lines blanked), and the
    #defines in them as (name, params or None, body). Updates `defined` as it goes."""
    frames: list[list[bool]] = []  # [parent keeps, this branch keeps, a branch was certainly true]
    keep = True
    out: list[str] = []
    macros: list[tuple[str, tuple[str, ...] | None, str]] = []
    for line in text.split("\n"):
        m = _DIRECTIVE_RE.match(line)
        if m is None:
            out.append(line if keep else "")
            continue
        out.append("")
        word, rest = m.group(1), m.group(2)
        if word in ("if", "ifdef", "ifndef"):
            expr = {"ifdef": f"defined({rest.split()[0] if rest.split() else '?'})",
                    "ifndef": f"!defined({rest.split()[0] if rest.split() else '?'})"
                    }.get(word, rest)
            v = _Cond(expr, defined).value()
            frames.append([keep, keep and v != 0, v is not None and v != 0])
            keep = frames[-1][1]
        elif word == "elif" and frames:
            f = frames[-1]
            v = None if f[2] else _Cond(rest, defined).value()
            keep = f[0] and not f[2] and v != 0
            f[2] = f[2] or (v is not None and v != 0)
        elif word == "else" and frames:
            keep = frames[-1][0] and not frames[-1][2]
        elif word == "endif" and frames:
            keep = frames.pop()[0]
        elif word == "define" and keep:
            d = _DEFINE_RE.match(rest)
            if d is not None:
                params = None
                if d.group(2) is not None:
                    params = tuple(p.strip() for p in d.group(2)[1:-1].split(",") if p.strip())
                defined.add(d.group(1))
                macros.append((d.group(1), params, d.group(3).strip()))
        elif word == "undef" and keep and rest.split():
            defined.discard(rest.split()[0])
    return "\n".join(out), macros


def _past_literal(text: str, i: int) -> int:
    """Offset just past the string or char literal opening at i."""
    quote, j, n = text[i], i + 1, len(text)
    while j < n and text[j] != quote and text[j] != "\n":
        j += 2 if text[j] == "\\" else 1
    return j + 1


def _matching(text: str, i: int) -> int:
    """Offset just past the bracket group opening at i (strings skipped); -1 if unbalanced."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack: list[str] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            i = _past_literal(text, i)
            continue
        if c in pairs:
            stack.append(pairs[c])
        elif c in ")]}":
            if not stack or stack.pop() != c:
                return -1
            if not stack:
                return i + 1
        i += 1
    return -1


def _statement(text: str, i: int) -> tuple[str, int]:
    """The statement starting at or after i (a {block} or up to `;`), and the offset past it."""
    while i < len(text) and text[i].isspace():
        i += 1
    if i < len(text) and text[i] == "{":
        end = _matching(text, i)
        end = len(text) if end < 0 else end
        return text[i + 1:end - 1], end
    depth, j = 0, i
    while j < len(text):
        c = text[j]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == ";" and depth <= 0:
            return text[i:j], j + 1
        j += 1
    return text[i:], len(text)


def _functions(code: str, file: str) -> Iterator[_Def]:
    """Function definitions at the top level of code (directives already blanked)."""
    i, n, start = 0, len(code), 0
    while i < n:
        c = code[i]
        if c in "\"'":
            i = _past_literal(code, i)
            continue
        if c == ";":
            start = i + 1
        elif c == "{":
            end = _matching(code, i)
            if end < 0:
                return
            found = _function_head(code[start:i])
            if found is not None:
                name, params, head = found
                words = set(_IDENT_RE.findall(head))
                inline = bool(words & {"inline", "__inline", "__inline__", "__always_inline"})
                yield _Def(name, "function", params, code[i + 1:end - 1], file,
                           out_of_line=not inline and file.endswith(".c"),
                           weak="__weak" in words or "weak" in words)
            i = start = end
            continue
        i += 1


def _function_head(head: str) -> tuple[str, tuple[str, ...], str] | None:
    """(name, parameter names, text before the name) when head ends like `type name(...)`."""
    head = head.rstrip()
    if not head.endswith(")"):
        return None
    depth, j = 0, len(head) - 1
    while j >= 0:
        depth += {")": 1, "(": -1}.get(head[j], 0)
        if depth == 0:
            break
        j -= 1
    m = re.search(r"([A-Za-z_]\w*)\s*$", head[:max(j, 0)])
    if j < 0 or m is None or m.group(1) in _C_WORDS:
        return None
    params = tuple(p.split()[-1].lstrip("*") for p in head[j + 1:-1].split(",")
                   if p.split() and p.strip() != "void")
    return m.group(1), params, head[:m.start()]


def _expand(params: tuple[str, ...], body: str, args: list[str]) -> str:
    """One expansion of a function-like macro: parameters replaced, #x stringified,
    `a ## b` pasted. Arguments are not macro-expanded (enough for generator macros)."""
    mapping = dict(zip(params, args, strict=False))
    if params and params[-1] == "...":
        mapping["__VA_ARGS__"] = ", ".join(args[len(params) - 1:])

    def token(m: re.Match[str]) -> str:
        s = m.group(0)
        if s.startswith("#") and s != "##":
            name = s[1:].strip()
            return f'"{mapping[name]}"' if name in mapping else s
        return mapping.get(s, s)
    return re.sub(r"\s*##\s*", "", _MACRO_TOKEN_RE.sub(token, body))


def _generated(code: str, macros: Mapping[str, tuple[tuple[str, ...], str]],
               file: str) -> tuple[str, list[_Def]]:
    """Functions produced by generator macros invoked at the top level (build_mmio_read,
    BUILDIO); the invocations are blanked out of code."""
    defs: list[_Def] = []
    if not macros:
        return code, defs
    pattern = re.compile(r"(?m)^[ \t]*(" + "|".join(map(re.escape, macros)) + r")\s*\(")
    pieces: list[str] = []
    last = counted = depth = 0
    for m in pattern.finditer(code):
        if m.start() < last:
            continue  # inside the arguments of the previous invocation
        depth += code.count("{", counted, m.start()) - code.count("}", counted, m.start())
        counted = m.start()
        if depth != 0:
            continue  # IO_COND(...) inside a function body runs code, it generates nothing
        found = split_arguments(code, m.end() - 1)
        if found is None:
            continue
        args, end = found
        params, body = macros[m.group(1)]
        defs.extend(_functions(_expand(params, body, args), file))
        pieces.append(code[last:m.start()])
        pieces.append(" " * (end - m.start() - 1) + ";")
        depth += code.count("{", counted, end) - code.count("}", counted, end)
        last = counted = end
    pieces.append(code[last:])
    return "".join(pieces), defs


@dataclass
class _Parsed:
    file: str
    defs: dict[str, _Def] = field(default_factory=dict)


def _parse(text: str, file: str, defined: set[str]) -> _Parsed:
    """Definitions (functions, macros, generated functions) an x86_64 build keeps."""
    code, macros = _select(_clean(text), defined)
    parsed = _Parsed(file)
    generators: dict[str, tuple[tuple[str, ...], str]] = {}
    for name, params, body in macros:
        if params is None:
            if body and body != name:  # `#define readl readl` only announces readl
                parsed.defs[name] = _Def(name, "object", (), body, file)
        else:
            parsed.defs[name] = _Def(name, "macro", params, body, file)
            if "{" in body and re.search(r"\)\s*\{", body):
                generators[name] = (params, body)
    code, generated = _generated(code, generators, file)
    for d in [*generated, *_functions(code, file)]:
        parsed.defs.setdefault(d.name, d)
    return parsed


# -- reducing a definition to the instructions it executes -----------------------------------


@dataclass(frozen=True, slots=True)
class _Shape:
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


def _mnemonic_shape(word: str) -> _Shape | None:
    """Shape of one x86 mnemonic (AT&T), or None for one that does not touch MMIO."""
    word = word.lower()
    if word in ("movslq", "movsxd"):
        return _Shape("unsupported", "movsxd", None, 32)
    if word == "movdir64b":
        return _Shape("unsupported", "movdir64b", None, 512)
    if word == "enqcmds":
        return _Shape("unsupported", "enqcmds", None, 512)
    if re.fullmatch(r"movs[bwlq]?", word):
        return _Shape("unsupported", "movs", None, _SUFFIX_BITS.get(word[-1]))
    if re.fullmatch(r"stos[bwlq]?", word):
        return _Shape("unsupported", "stos", None, _SUFFIX_BITS.get(word[-1]))
    if re.fullmatch(r"(?:ins|outs)[bwl]?", word):
        return _Shape("unsupported", "string-port-io", None, _SUFFIX_BITS.get(word[-1]))
    if re.fullmatch(r"(?:in|out)[bwl]?", word):
        return _Shape("ve", "port-io", 1, _SUFFIX_BITS.get(word[-1]))
    if re.fullmatch(r"mov[bwlq]?|movz[bw][wlq]?|movs[bw][wlq]", word):
        return _Shape("ve", "mov", 1, _SUFFIX_BITS.get(word[-1]) if len(word) == 4 else None)
    return None


def _instructions_shape(template: str) -> _Shape | None:
    """Worst shape of the instructions in an asm template ("rep ; movsl" -> movs)."""
    worst: _Shape | None = None
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
        if shape is not None and (worst is None or _rank(shape.path) > _rank(worst.path)):
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


def _rank(path: str) -> int:
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
    then, end = _statement(text, found[1])
    if not m.group(1):
        return then
    rest = text[end:].lstrip()
    if not rest.startswith("else"):
        return ""
    return _statement(rest, 4)[0]


def _mmio_branch(text: str) -> str | None:
    """lib/iomap.c: the MMIO arguments of IO_COND(addr, port I/O, MMIO); None without it."""
    branches = []
    for m in re.finditer(r"\bIO_COND\s*\(", text):
        found = split_arguments(text, m.end() - 1)
        if found is not None and len(found[0]) >= 3:
            branches.append(found[0][2])
    return "\n".join(branches) if branches else None


class _Analyzer:
    """Shapes of definitions across the files read; names not defined there come from the
    catalogue forms (`external`)."""

    def __init__(self, parsed: Sequence[_Parsed], external: Mapping[str, Form],
                 widths: Mapping[str, int]) -> None:
        self.parsed = parsed
        self.external = external
        self.widths = widths
        self.memo: dict[tuple[str, str], _Shape | None] = {}
        self.active: set[tuple[str, str]] = set()

    def lookup(self, name: str, file: str) -> _Def | None:
        """The file's own definition first (static helpers), then the files in precedence."""
        for p in self.parsed:
            if p.file == file and name in p.defs:
                return p.defs[name]
        for p in self.parsed:
            d = p.defs.get(name)
            if d is not None:
                return d
        return None

    def shape(self, name: str, file: str) -> _Shape | None:
        d = self.lookup(name, file)
        if d is None:
            form = self.external.get(name)
            return None if form is None else _shape_of_form(form, self.widths.get(name))
        return self.shape_of(d)

    def shape_of(self, d: _Def) -> _Shape | None:
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

    def _reduce(self, d: _Def) -> _Shape | None:
        if d.kind == "object":
            target = d.body.strip().strip("()").strip()
            if _IDENT_RE.fullmatch(target):
                inner = self.shape(target, d.file)
                return None if inner is None else replace(inner, chain=(target, *inner.chain))
        return self._body(d.body, d)

    def _body(self, text: str, d: _Def) -> _Shape | None:
        unrolled = False
        branch = _guarded_branch(text)
        if branch is not None:
            text, unrolled = branch, True
        mmio = _mmio_branch(text)
        if mmio is not None:
            text = mmio
        shape = self._pieces(text, d, unrolled)
        return shape if shape is None or mmio is None else replace(shape, port_branch=True)

    def _pieces(self, text: str, d: _Def, unrolled: bool) -> _Shape | None:
        pieces = [s for t in _asm_templates(text) if (s := _instructions_shape(t)) is not None]
        for m in _CALL_RE.finditer(text):
            name = m.group(1)
            if name in _C_WORDS or name == d.name or name in d.params:
                continue
            if name in _COMPILER_COPIES:
                pieces.append(_Shape("unsupported", "compiler-chosen", None, None,
                                     chain=(f"{name}()",)))
                continue
            s = self.shape(name, d.file)
            if s is not None:
                pieces.append(replace(s, chain=(name, *s.chain)))
        if not pieces and _VOLATILE_DEREF_RE.search(text):
            pieces.append(_Shape("unsupported", "compiler-chosen", None,
                                 chain=("a volatile pointer dereference",)))
        return _combine(pieces, bool(_LOOP_RE.search(text)), unrolled, d.out_of_line)


def _combine(pieces: list[_Shape], loop: bool, unrolled: bool,
             out_of_line: bool) -> _Shape | None:
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


def _shape_of_form(form: Form, width: int | None) -> _Shape:
    base = {"out-of-line-mov": "mov", "unrolled-mov": "mov"}.get(form.insn, form.insn)
    bits = form.trap_bits if form.per_count else width
    return _Shape(form.path, base, form.exits, bits, form.per_count,
                  form.insn == "unrolled-mov", form.insn == "out-of-line-mov")


# -- reasons -----------------------------------------------------------------------------------

_CONSEQUENCE = {
    "mov": "a MOV that insn_decode_mmio decodes",
    "port-io": "port I/O (IN/OUT): trapped and handled by the #VE port I/O path (handle_io), "
               "not by the MMIO decoder",
    "movs": "MOVS: insn_decode_mmio returns INSN_MMIO_MOVS, which TDX's handle_mmio rejects "
            "(oops)",
    "movdir64b": "MOVDIR64B: INSN_MMIO_DECODE_FAILED, the #VE cannot be handled (oops)",
    "enqcmds": "ENQCMDS: INSN_MMIO_DECODE_FAILED, the #VE cannot be handled (oops)",
    "stos": "STOS: INSN_MMIO_DECODE_FAILED, the #VE cannot be handled (oops)",
    "movsxd": "MOVSXD: INSN_MMIO_DECODE_FAILED, the #VE cannot be handled (oops)",
    "string-port-io": "string port I/O (REP INS/OUTS): TDX's handle_io rejects it (oops)",
    "compiler-chosen": "the compiler picks the instructions (MOVS, STOS, vector or ALU forms "
                       "are possible), which insn_decode_mmio may not decode (oops)",
}


def _unit(bits: int | None) -> str:
    return "byte" if bits == 8 else f"{bits}-bit access" if bits else "access"


def _reason(name: str, shape: _Shape, source: str) -> str:
    chain = " -> ".join((name, *shape.chain))
    text = f"{chain}: {_CONSEQUENCE.get(shape.insn, shape.insn)}"
    if shape.path == "ve":
        if shape.per_count:
            text += f"; one #VE per {_unit(shape.bits)} of the count"
            if shape.unrolled:
                text += " (unrolled because CC_ATTR_GUEST_UNROLL_STRING_IO is set in a TD)"
        elif shape.exits is not None:
            text += f"; {shape.exits} #VE per call"
        if shape.port_branch:
            text += " (a port I/O cookie takes IO_COND's port branch instead)"
    return f"{text} [{source}]"


def _form_from_shape(name: str, shape: _Shape, source: str, acc: Accessor | None) -> Form:
    insn = shape.insn
    if shape.path == "ve" and insn == "mov":
        if shape.per_count:
            insn = "unrolled-mov" if shape.unrolled else "mov"
        elif shape.out_of_line:
            insn = "out-of-line-mov"
    count_arg, count_bits = _count_fields(acc)
    return Form(name, shape.path, insn, None if shape.per_count or shape.path != "ve"
                else shape.exits, _reason(name, shape, source), source,
                per_count=shape.per_count, trap_bits=shape.bits if shape.per_count else None,
                count_arg=count_arg, count_bits=count_bits)


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
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise RuleError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RuleError(f"{path}: not valid TOML ({exc})") from None
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


def _catalogue_form(name: str, e: FormEntry, acc: Accessor | None) -> Form:
    count_arg, count_bits = _count_fields(acc)
    trap_bits = e.trap_bits if e.trap_bits is not None else (acc.width if acc else None)
    return Form(name, e.path, e.insn, None if e.per_count or e.path != "ve" else e.exits,
                f"{name}: {e.reason} [catalogue]", "catalogue", per_count=e.per_count,
                trap_bits=trap_bits if e.per_count else None, count_arg=count_arg,
                count_bits=count_bits)


def _like_form(name: str, target: Form, acc: Accessor | None) -> Form:
    count_arg, count_bits = _count_fields(acc)
    return replace(target, name=name, source="catalogue", reason=f"{name} -> {target.reason}",
                   count_arg=count_arg, count_bits=count_bits)


def _reached_form(acc: Accessor, target: Form) -> Form:
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


def _assembly_shape(text: str, name: str) -> _Shape | None:
    """A function in an assembly file (old trees: __iowrite32_copy in iomap_copy_64.S)."""
    start = re.search(r"(?:SYM_FUNC_START|ENTRY)\(\s*" + re.escape(name) + r"\s*\)|^"
                      + re.escape(name) + r":", text, re.M)
    if start is None:
        return None
    end = re.search(r"SYM_FUNC_END|ENDPROC|END\(", text[start.end():])
    body = text[start.end():start.end() + (end.start() if end else len(text))]
    return _instructions_shape(_clean(body))


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


_DEREF = Tdx("unsupported", "compiler-chosen", None,
             "direct dereference of an __iomem pointer: the compiler picks the instruction "
             "(ALU with a memory operand, MOVSXD, vector moves...), which insn_decode_mmio may "
             "not decode: may oops (Documentation/arch/x86/tdx.rst, MMIO handling)")

# regmap API calls by the number of register accesses one call makes through regmap-mmio.
_REGMAP_RMW_WORDS = ("_bits", "field_write", "field_force_write", "fields_write",
                     "fields_force_write")
_REGMAP_ONE = frozenset({"regmap_read", "regmap_read_bypassed", "regmap_write",
                         "regmap_write_async", "regmap_field_read", "regmap_fields_read",
                         "regmap_test_bits"})


class TdxModel:
    """Instruction forms of every catalogued accessor, and cached verdicts."""

    __slots__ = ("forms", "sources", "notes", "_plans", "_cache")

    def __init__(self, forms: Mapping[str, Form], notes: Iterable[str] = ()) -> None:
        self.forms: dict[str, Form] = dict(forms)
        self.sources: tuple[tuple[str, str], ...] = tuple(
            sorted((name, f.source) for name, f in self.forms.items()))
        self.notes: tuple[str, ...] = tuple(notes)
        self._plans: dict[int, _Plan] = {}
        self._cache: dict[tuple[object, ...], Tdx] = {}

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_catalogue(cls, catalogue: Catalogue, rules: Path | None = None) -> TdxModel:
        """Forms from rules/tdx.toml only (no tree)."""
        return cls._assemble(catalogue, load_forms(rules), {}, ["no tree: catalogue forms"])

    @classmethod
    def derive(cls, root: Path, catalogue: Catalogue, rules: Path | None = None) -> TdxModel:
        """Forms read from the tree at root where it defines them, else from rules/tdx.toml.
        A missing or odd file never raises: it falls back and says so in `notes`."""
        entries = load_forms(rules)
        notes: list[str] = []
        base = cls._assemble(catalogue, entries, {}, [])
        derived = _derive_shapes(root, catalogue, base.forms, notes)
        unfound: dict[str, list[str]] = {}
        for name, entry in sorted(entries.items()):
            if entry.tree and name not in derived and (root / entry.tree).is_file():
                unfound.setdefault(entry.tree, []).append(name)
        notes += [f"{file}: no definition of {', '.join(names)} found; catalogue forms"
                  for file, names in sorted(unfound.items())]
        return cls._assemble(catalogue, entries, derived, notes)

    @classmethod
    def _assemble(cls, catalogue: Catalogue, entries: Mapping[str, FormEntry],
                  derived: Mapping[str, tuple[_Shape, str]], notes: list[str]) -> TdxModel:
        forms: dict[str, Form] = {}
        for name, (shape, file) in derived.items():
            forms[name] = _form_from_shape(name, shape, f"tree:{file}", catalogue.get(name))
        for name, e in entries.items():
            if name not in forms and e.like is None:
                forms[name] = _catalogue_form(name, e, catalogue.get(name))
        # `like` entries and split/poll names follow a form decided above (maybe by the tree).
        for _ in range(4):
            for name, e in entries.items():
                if name not in forms and e.like is not None and e.like in forms:
                    forms[name] = _like_form(name, forms[e.like], catalogue.get(name))
            for acc in catalogue.accessors.values():
                if (acc.name not in forms and acc.reaches and acc.reaches[0] in forms
                        and acc.family in ("split", "poll")):
                    forms[acc.name] = _reached_form(acc, forms[acc.reaches[0]])
        missing = sorted(set(catalogue.accessors) - set(forms))
        if missing:
            notes.append(f"no instruction form for {', '.join(missing)}")
        return cls(forms, notes)

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
                "TDVMCALL itself, no #VE")
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
                                         f"{form.reason}; count {n}: {exits} #VE")
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
                count = "1 #VE per call"
            elif any(w in name for w in _REGMAP_RMW_WORDS):
                exits, count = 2, "read and write: 2 #VE per call (fewer with a register " \
                                  "cache or an unchanged value)"
            else:
                exits, count = None, "the number of registers is not known"
            reads = self.forms.get("readl")
            insn = reads.insn if reads is not None else "mov"
            tdx = self._cache[key] = Tdx(
                "ve" if reads is None else reads.path, insn, exits,
                f"{name}: regmap over MMIO, regmap-mmio's readl/writel (regmap_mmio_read/"
                f"regmap_mmio_write in drivers/base/regmap/regmap-mmio.c): {count}")
        return tdx

    def wrapper(self, accessors: tuple[str, ...], nearest: str, plan: _Plan | None) -> Tdx:
        """The worst access a wrapper reaches: unsupported over ve over paravirt."""
        key = (plan, accessors, nearest)
        tdx = self._cache.get(key)
        if tdx is not None:
            return tdx
        each = [(a, self.accessor(a, plan, None)) for a in accessors]
        worst = max(_rank(t.path) for _, t in each)
        chosen = [(a, t) for a, t in each if _rank(t.path) == worst]
        name, base = next(((a, t) for a, t in chosen if a == nearest), chosen[0])
        if len(accessors) == 1:
            exits = base.ve_exits
            reason = f"reaches {name}: {base.reason}"
        else:
            exits = 0 if worst == 0 else None
            shown = ", ".join(accessors[:6]) + (", ..." if len(accessors) > 6 else "")
            reason = f"worst of {len(accessors)} accessors reached ({shown}): {base.reason}"
        tdx = self._cache[key] = Tdx(base.path, base.insn, exits, reason)
        return tdx


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


def _parse_tree(texts: Mapping[str, str], notes: list[str]) -> list[_Parsed]:
    io_defined: set[str] = set()
    parsed: list[_Parsed] = []
    for rel in (IO_H, IOMEM_C, IOMAP_C, IOMAP_COPY_C):
        if rel not in texts:
            continue
        # Each .c file includes <linux/io.h>, hence x86's io.h: its #defines hold there.
        defined = io_defined if rel == IO_H else set(io_defined)
        try:
            parsed.append(_parse(texts[rel], rel, defined))
        except Exception as exc:  # an odd file must not stop the scan: say so and fall back
            notes.append(f"{rel}: not understood ({type(exc).__name__}); catalogue forms")
    return parsed


def _derive_one(name: str, analyzer: _Analyzer, texts: Mapping[str, str],
                notes: list[str]) -> tuple[_Shape, str] | None:
    d = analyzer.lookup(name, "")
    if name == "__iowrite32_copy" and IOMAP_COPY_S in texts and (d is None or d.file != IO_H):
        shape = _assembly_shape(texts[IOMAP_COPY_S], name)
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
                   notes: list[str]) -> dict[str, tuple[_Shape, str]]:
    """Catalogued name -> (shape, file) for the names the tree's files define."""
    texts = _read_tree(root, notes)
    widths = {name: acc.width for name, acc in catalogue.accessors.items()}
    analyzer = _Analyzer(_parse_tree(texts, notes), fallback, widths)
    derived: dict[str, tuple[_Shape, str]] = {}
    for name in sorted(catalogue.accessors):
        try:
            found = _derive_one(name, analyzer, texts, notes)
        except Exception as exc:  # as above: never raise on a weird tree
            notes.append(f"{name}: not understood ({type(exc).__name__}); catalogue form")
            continue
        if found is not None:
            derived[name] = found
    return derived


# -- strategies --------------------------------------------------------------------------------

_GROUPS = frozenset({"virtio", "x86", "generic"})
_PATCH_RE = re.compile(r"(?:[\w.+/-]+:)?[A-Za-z_]\w*|regmap-mmio")


def _strategy(name: str, raw: object, where: str) -> Strategy:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: [strategy.{name}] must be a table")
    description, patched, groups = raw.get("description"), raw.get("patched"), raw.get("groups")
    if not isinstance(description, str) or not description:
        raise RuleError(f"{where}: strategy {name}: `description` (text) is required")
    if not isinstance(patched, list) or not all(isinstance(p, str) for p in patched):
        raise RuleError(f"{where}: strategy {name}: `patched` must be a list of names")
    bad = [p for p in patched if not _PATCH_RE.fullmatch(p)]
    if bad:
        raise RuleError(f"{where}: strategy {name}: not a function name or path:function: "
                        f"{bad[0]!r}")
    if groups is not None and (not isinstance(groups, list) or not set(groups) <= _GROUPS):
        raise RuleError(f"{where}: strategy {name}: `groups` must list virtio/x86/generic")
    unknown = set(raw) - {"description", "patched", "groups"}
    if unknown:
        raise RuleError(f"{where}: strategy {name}: unknown field {sorted(unknown)[0]!r}")
    return Strategy(name, description, frozenset(patched),
                    None if groups is None else frozenset(groups))


def load_strategies(path: Path | None = None) -> dict[str, Strategy]:
    """rules/strategies.toml: name -> Strategy; RuleError on a broken file."""
    path = path or rules_dir() / "strategies.toml"
    try:
        data: dict[str, Any] = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise RuleError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RuleError(f"{path}: not valid TOML ({exc})") from None
    table = data.get("strategy")
    if not isinstance(table, dict) or not table:
        raise RuleError(f"{path}: no [strategy.NAME] tables")
    return {name: _strategy(name, raw, path.name) for name, raw in table.items()}


def load_patch_points(path: Path) -> Strategy:
    """A user's list of patched functions: one name (or path:function) per line, `#` starts a
    comment. TdxError (one line) when the file is unreadable, empty or holds a bad line."""
    try:
        text = read_input(path).decode("utf-8")
    except OSError as exc:
        raise TdxError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise TdxError(f"{path}: not UTF-8 text") from None
    names: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not _PATCH_RE.fullmatch(entry):
            raise TdxError(f"{path}:{number}: not a function name or path:function: {entry!r}")
        names.add(entry)
    if not names:
        raise TdxError(f"{path}: no function names (one per line, # for comments)")
    return Strategy(f"patch-points:{path.name}", f"functions listed in {path}",
                    frozenset(names), None)


# -- verdicts ----------------------------------------------------------------------------------


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


def verdict(site: Site, model: TdxModel, strategy: Strategy, args: Sequence[str] | None,
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
        return _DEREF
    if kind == "regmap":
        return model.regmap(site.callee, site.access, plan)
    if kind == "wrapper":
        return model.wrapper(site.accessors or (site.accessor,), site.accessor, plan)
    return model.accessor(site.accessor, plan, args if kind == "direct" else None)
