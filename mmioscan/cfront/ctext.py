"""Reading C definitions from text, without a parser: what the platform models need from
the tree's own io.h, iomem.c and iomap*.c (see docs/domain.md, "Derive, don't hard-code").

Comments are dropped, `#if` blocks are resolved by a caller-given condition evaluator
(cfront/conditions.py), function definitions are found by bracket matching, and generator
macros (`build_mmio_read(...)`, `BUILDIO(...)`) are expanded at their top-level invocations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from mmioscan.cfront.callargs import split_arguments

_COMMENT_RE = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/\*.*?\*/|//[^\n]*', re.S)
_DIRECTIVE_RE = re.compile(r"^[ \t]*#[ \t]*(\w+)[ \t]*(.*)$")
_DEFINE_RE = re.compile(r"(\w+)(\([^)]*\))?\s*(.*)$", re.S)
IDENT_RE = re.compile(r"[A-Za-z_]\w*")
CALL_RE = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_MACRO_TOKEN_RE = re.compile(r'"(?:\\.|[^"\\\n])*"|##|#\s*[A-Za-z_]\w*|[A-Za-z_]\w*')

C_WORDS = frozenset({
    "if", "while", "for", "switch", "return", "sizeof", "do", "else", "case", "typeof",
    "__typeof__", "defined", "asm", "__asm__", "__asm", "volatile", "__volatile__",
    "__attribute__", "likely", "unlikely", "__builtin_expect", "cc_platform_has", "IO_COND",
})
# Copies and fills the compiler expands itself: REP MOVS/STOS or vector moves.

# (condition text, the names #defined so far) -> 1, 0 or None
Condition = Callable[[str, set[str]], "int | None"]


def clean_text(text: str) -> str:
    """Comments out, backslash-newlines joined: one logical line per directive."""
    def blank(m: re.Match[str]) -> str:
        s = m.group(0)
        return s if s[0] in "\"'" else " "
    return _COMMENT_RE.sub(blank, text).replace("\\\n", " ")


@dataclass(frozen=True, slots=True)
class Definition:
    """A function or macro definition in one of the files read."""

    name: str
    kind: str  # "function", "macro" (with parameters) or "object" (object-like macro)
    params: tuple[str, ...]
    body: str
    file: str  # relative path
    out_of_line: bool = False  # a function that is not inline, in a .c file
    weak: bool = False


def select_branches(text: str, defined: set[str], condition: Condition
                    ) -> tuple[str, list[tuple[str, tuple[str, ...] | None, str]]]:
    """Code of the branches `condition` keeps (directive lines blanked), and the
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
            v = condition(expr, defined)
            frames.append([keep, keep and v != 0, v is not None and v != 0])
            keep = frames[-1][1]
        elif word == "elif" and frames:
            f = frames[-1]
            v = None if f[2] else condition(rest, defined)
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


def past_literal(text: str, i: int) -> int:
    """Offset just past the string or char literal opening at i."""
    quote, j, n = text[i], i + 1, len(text)
    while j < n and text[j] != quote and text[j] != "\n":
        j += 2 if text[j] == "\\" else 1
    return j + 1


def matching(text: str, i: int) -> int:
    """Offset just past the bracket group opening at i (strings skipped); -1 if unbalanced."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack: list[str] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            i = past_literal(text, i)
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


def statement(text: str, i: int) -> tuple[str, int]:
    """The statement starting at or after i (a {block} or up to `;`), and the offset past it."""
    while i < len(text) and text[i].isspace():
        i += 1
    if i < len(text) and text[i] == "{":
        end = matching(text, i)
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


def function_definitions(code: str, file: str) -> Iterator[Definition]:
    """Function definitions at the top level of code (directives already blanked)."""
    i, n, start = 0, len(code), 0
    while i < n:
        c = code[i]
        if c in "\"'":
            i = past_literal(code, i)
            continue
        if c == ";":
            start = i + 1
        elif c == "{":
            end = matching(code, i)
            if end < 0:
                return
            found = function_head(code[start:i])
            if found is not None:
                name, params, head = found
                words = set(IDENT_RE.findall(head))
                inline = bool(words & {"inline", "__inline", "__inline__", "__always_inline"})
                yield Definition(name, "function", params, code[i + 1:end - 1], file,
                           out_of_line=not inline and file.endswith(".c"),
                           weak="__weak" in words or "weak" in words)
            i = start = end
            continue
        i += 1


def function_head(head: str) -> tuple[str, tuple[str, ...], str] | None:
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
    if j < 0 or m is None or m.group(1) in C_WORDS:
        return None
    params = tuple(p.split()[-1].lstrip("*") for p in head[j + 1:-1].split(",")
                   if p.split() and p.strip() != "void")
    return m.group(1), params, head[:m.start()]


def expand_macro(params: tuple[str, ...], body: str, args: list[str]) -> str:
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


def generated_functions(code: str, macros: Mapping[str, tuple[tuple[str, ...], str]],
               file: str) -> tuple[str, list[Definition]]:
    """Functions produced by generator macros invoked at the top level (build_mmio_read,
    BUILDIO); the invocations are blanked out of code."""
    defs: list[Definition] = []
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
        defs.extend(function_definitions(expand_macro(params, body, args), file))
        pieces.append(code[last:m.start()])
        pieces.append(" " * (end - m.start() - 1) + ";")
        depth += code.count("{", counted, end) - code.count("}", counted, end)
        last = counted = end
    pieces.append(code[last:])
    return "".join(pieces), defs


@dataclass
class ParsedFile:
    file: str
    defs: dict[str, Definition] = field(default_factory=dict)


def parse_definitions(text: str, file: str, defined: set[str], condition: Condition) -> ParsedFile:
    """Definitions (functions, macros, generated functions) in the branches `condition`
    keeps."""
    code, macros = select_branches(clean_text(text), defined, condition)
    parsed = ParsedFile(file)
    generators: dict[str, tuple[tuple[str, ...], str]] = {}
    for name, params, body in macros:
        if params is None:
            if body and body != name:  # `#define readl readl` only announces readl
                parsed.defs[name] = Definition(name, "object", (), body, file)
        else:
            parsed.defs[name] = Definition(name, "macro", params, body, file)
            if "{" in body and re.search(r"\)\s*\{", body):
                generators[name] = (params, body)
    code, generated = generated_functions(code, generators, file)
    for d in [*generated, *function_definitions(code, file)]:
        parsed.defs.setdefault(d.name, d)
    return parsed


# -- reducing a definition to the instructions it executes -----------------------------------

