"""Byte-preserving clean-up of kernel C before tree-sitter sees it.

Every rewrite keeps the byte length and every newline, so lines and columns reported from the
parse tree are the positions in the original file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mmioscan.cfront.lexer import IDENT_BYTES
from mmioscan.cfront.macros import Directives

# Kernel annotations that tree-sitter-c does not know and that derail its error recovery.
# Bare keywords are blanked; the ones taking a parenthesised argument are blanked with it.
_BARE = (
    "__iomem __user __kernel __force __rcu __percpu __bitwise __nocast __safe __private "
    "__init __exit __initdata __exitdata __initconst __exitconst __ref __refdata __refconst "
    "__meminit __meminitdata __init_or_module __devinit __devexit __cpuinit __always_inline "
    "noinline __noinline __must_check __maybe_unused __always_unused __used __cold __hot "
    "__pure __weak __visible __sched __latent_entropy notrace asmlinkage __packed "
    "__randomize_layout __no_randomize_layout __ro_after_init __read_mostly "
    "__cacheline_aligned __cacheline_aligned_in_smp ____cacheline_aligned "
    "____cacheline_aligned_in_smp __noreturn __malloc __nonstring __flatten __noclone "
    "__irq_entry __kprobes __nocfi __noinstr noinstr __always_used __initlatent "
    "__no_sanitize_address __no_kcsan __fix_address __attribute_const__ __mustcheck "
    "__deprecated __nostackprotector __naked __lockdep_no_validate__ __iomem_ptr "
    "__init_memblock __initdata_memblock __ksym __weak_alias __tracepoint_string "
    "__always_inline_nogc __opencl __stringify_placeholder"
).split()
_WITH_ARG = (
    "__acquires __releases __must_hold __printf __scanf __section __aligned __counted_by "
    "__alloc_size __cleanup __free __guarded_by __pt_guarded_by __cond_acquires "
    "__cond_releases __assume_aligned __diag_ignore __nocapture __realloc_size "
    "__no_sanitize_or_inline __designated_init __counted_by_le __counted_by_be"
).split()

_BARE_SET = frozenset(w.encode() for w in _BARE)
_WITH_ARG_SET = frozenset(w.encode() for w in _WITH_ARG)
# Every pattern below starts with a literal so that `re` can skip ahead quickly; the context
# before the match (a word boundary, a `(` or `,`) is checked in Python. A 100-word alternation
# or a leading look-behind makes `re` try every byte and costs seconds on drivers/.
# (One pattern per word without `__`: an alternation has no literal to skip ahead by. They are
# all blanked, so their order does not matter.)
_CANDIDATE_RES = (re.compile(rb"__\w+"), *(re.compile(word + rb"\b") for word in (
    b"noinline", b"notrace", b"noinstr", b"asmlinkage")))
# Iterator macros (`list_for_each_entry(pos, head, member) { ... }`) look like a call followed
# by a block, which is not C. Renaming the macro to `while` (padded) keeps the arguments as an
# expression, so calls inside them are still found, and the block parses as a loop body.
_FOR_EACH_RE = re.compile(rb"for_each\w*(?=\s*\()")
# Types passed to macros (`container_of(p, struct foo, member)`, `min_t(unsigned int, a, b)`)
# are not expressions. Joining the words with `_` turns each into one identifier, a valid
# argument, without moving a byte.
# One pattern per leading word, for the literal: the spans of two accepted matches never
# overlap (no word a match is made of after its first can start another one).
_TYPE_ARG_RES = tuple(
    re.compile(word + rb"(?:\s+(?:long|int|short|char))*\s+\w+(?=\s*[,)])")
    for word in (b"struct", b"union", b"enum", b"unsigned", b"signed"))
# GNU case ranges (`case 1 ... 4:`): `+0+` keeps it an expression of the same length.
_CASE_RANGE_RE = re.compile(rb"case\b[^:\n]*?\.\.\.")
# printk level prefixes glued to a string literal (`KERN_INFO DRV "text"`).
_KERN_LEVEL_RE = re.compile(rb"KERN_(?:EMERG|ALERT|CRIT|ERR|WARNING|NOTICE|INFO|DEBUG|CONT|"
                            rb"DEFAULT|SOH)\b(?=[ \t]*[\"A-Za-z_])")
# `static SIMPLE_DEV_PM_OPS(...);` defines an object through a macro; without `static` the
# line parses as a call at file scope instead of an error.
_STATIC_MACRO_RE = re.compile(rb"static(?:[ \t]+const)?(?=[ \t]+[A-Z][A-Z0-9_]*[ \t]*\()")
# Comments inside a #define: tree-sitter ends the directive at `/*`, so a comment before a
# line continuation cuts the macro in two. They are blanked (only in #define lines: a full
# comment pass over every file costs more than it gains).
_DEFINE_RE = re.compile(rb"#[ \t]*define\b")  # only blanks before it on its line: _defines()
_DIRECTIVE_TOKEN_RE = re.compile(
    rb"/\*.*?(?:\*/|\Z)|//[^\n]*|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|\\\r?\n|\n"
    rb"|[^/\"'\\\n]+|.", re.DOTALL)
_DIRECTIVE_RE = re.compile(rb"^[ \t]*#[ \t]*(\w+)(.*)$", re.MULTILINE)
# What can hide a line that starts with `#`: a block comment (an unterminated one runs to the
# end of the file), a line comment continued by a backslash, a string continued by one. Char
# literals are matched so that `'"'` opens no string.
_HIDING_RE = re.compile(
    rb"/\*.*?(?:\*/|\Z)|//(?:[^\n\\]|\\\r\n|\\.)*|\"(?:[^\"\\\n]|\\\r\n|\\.)*\""
    rb"|'(?:[^'\\\n]|\\.)*'",
    re.DOTALL)
_CONDITIONALS = frozenset({b"if", b"ifdef", b"ifndef", b"elif", b"else", b"endif"})


def _closing_paren(data: bytes, start: int) -> int:
    """Index after the `)` matching the `(` at or after start (skipping blanks), else -1."""
    i = start
    while i < len(data) and data[i] in b" \t":
        i += 1
    if i >= len(data) or data[i] != ord("("):
        return -1
    depth = 0
    for j in range(i, min(len(data), i + 400)):
        c = data[j]
        if c == ord("("):
            depth += 1
        elif c == ord(")"):
            depth -= 1
            if depth == 0:
                return j + 1
        elif c == ord("\n"):
            return -1
    return -1


# Every byte a space but the newline, for bytes.translate.
_BLANKED = bytes(10 if b == 10 else 32 for b in range(256))


def _blank(out: bytearray, start: int, end: int) -> None:
    out[start:end] = out[start:end].translate(_BLANKED)


def _blank_continued(out: bytearray, start: int, end: int) -> None:
    """Blank a comment inside a directive, which goes on past the comment's newlines (C
    removes comments after joining lines, so the directive does not end inside one): each
    newline keeps a backslash before it, and the lines stay where they were. An empty line
    in the comment has no byte to spare: the directive still ends there, as before."""
    _blank(out, start, end)
    for k in range(start + 2, end):
        if out[k] == 10 and out[k - 1] != 10:  # the byte before it was the comment's
            out[k - 1] = 0x5C


class _DirectiveLines:
    """Is an offset on a preprocessor line (or its backslash continuations)? The spans are
    found once per file, on the first question: walking back to the line start for each
    `for_each` was quadratic on one long line (32,000 of them: 1.6 s)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.directives: Directives | None = None

    def __call__(self, pos: int) -> bool:
        if self.directives is None:
            self.directives = Directives(self.data)
        return self.directives.contains(pos)


def _is_loop_header(data: bytes, start: int, end: int,
                    on_directive: Callable[[int], bool]) -> bool:
    """Is the `*for_each*(...)` at start used as a loop header, not a call or a definition?

    It must begin a statement (after `;`, `{`, `}`, `)` or `else`) and be followed by a
    statement or a block rather than `;`, and not sit in a #define.
    """
    i = _previous_code_byte(data, start)
    if i >= 0 and data[i] not in b";{}):" and data[max(0, i - 3):i + 1] != b"else":
        return False
    close = _matching_paren(data, end)
    if close < 0:
        return False
    j = close
    while j < len(data) and data[j] in b" \t\r\n":
        j += 1
    return j < len(data) and data[j] != ord(";") and not on_directive(start)


def _previous_code_byte(data: bytes, pos: int) -> int:
    """Index of the last byte before pos that is neither blank nor inside a comment."""
    i = pos - 1
    while i >= 0:
        c = data[i]
        if c in b" \t\r":
            i -= 1
        elif c == 10:  # a line break: drop a `//` comment ending the previous line
            line_start = data.rfind(b"\n", 0, i) + 1
            slashes = data.find(b"//", line_start, i)
            i = (slashes if slashes >= 0 else i) - 1
        elif c == ord("/") and i > 0 and data[i - 1] == ord("*"):
            opening = data.rfind(b"/*", 0, i - 1)
            if opening < 0:
                return i
            i = opening - 1
        else:
            return i
    return -1


def _matching_paren(data: bytes, start: int, limit: int = 4000) -> int:
    """Index after the `)` closing the first `(` at or after start (across lines), else -1."""
    i = data.find(b"(", start, start + 200)
    if i < 0:
        return -1
    depth = 0
    for j in range(i, min(len(data), i + limit)):
        c = data[j]
        if c == 40:  # (
            depth += 1
        elif c == 41:  # )
            depth -= 1
            if depth == 0:
                return j + 1
    return -1


def _starts_word(data: bytes, pos: int) -> bool:
    return pos == 0 or data[pos - 1] not in IDENT_BYTES


def _after_open_or_comma(data: bytes, pos: int) -> bool:
    """Is pos the start of a macro argument (after `(` or `,`, blanks between)?"""
    i = pos - 1
    while i >= 0 and data[i] in b" \t\n":
        i -= 1
    return i >= 0 and data[i] in b"(,"


def _at_line_start(data: bytes, pos: int) -> bool:
    return pos == 0 or data[pos - 1] == ord("\n")


def blank_define_comments(data: bytes) -> bytes:
    """Blank the comments inside #define directives (length-preserving)."""
    out: bytearray | None = None
    size = len(data)
    for pos in _defines(data):
        line_end = data.find(b"\n", pos)
        rest = data[pos:line_end if line_end >= 0 else size]
        if b"/" not in rest and not rest.endswith((b"\\", b"\\\r")):
            continue  # no comment starts on the line, and the directive ends with it
        while pos < size:
            tok = _DIRECTIVE_TOKEN_RE.match(data, pos)
            if tok is None or tok.group(0) == b"\n":
                break
            if tok.group(0)[:2] in (b"/*", b"//"):
                out = out if out is not None else bytearray(data)
                _blank_continued(out, tok.start(), tok.end())
            pos = tok.end()
    return bytes(out) if out is not None else data


def _defines(data: bytes) -> Iterator[int]:
    """The end of each `#define` word that only blanks precede on its line. A pattern
    anchored at the line start is tried at every line and costs three times as much; a match
    that is not at a line start lies within its line, so it never hides one after it."""
    for m in _DEFINE_RE.finditer(data):
        line = data.rfind(b"\n", 0, m.start()) + 1
        if not data[line:m.start()].strip(b" \t"):
            yield m.end()


def blank_annotations(data: bytes) -> bytes:
    """Blank kernel annotations and rewrite macro idioms tree-sitter cannot parse.

    Length-preserving: every rewrite keeps byte offsets, lines and columns.
    """
    out = bytearray(data)
    _blank_keywords(data, out)
    on_directive = _DirectiveLines(data)
    for m in _FOR_EACH_RE.finditer(data):
        start = m.start()
        while start > 0 and data[start - 1] in IDENT_BYTES:
            start -= 1
        if m.end() - start >= 5 and _is_loop_header(data, start, m.end(), on_directive):
            out[start:m.end()] = b"while".ljust(m.end() - start)
    for m in (m for rx in _TYPE_ARG_RES for m in rx.finditer(data)):
        if _starts_word(data, m.start()) and _after_open_or_comma(data, m.start()):
            text = m.group(0)
            if b"\n" not in text:
                out[m.start():m.end()] = re.sub(rb"\s", b"_", text)
    for m in _CASE_RANGE_RE.finditer(data):
        if _starts_word(data, m.start()):
            out[m.end() - 3:m.end()] = b"+0+"
    for m in _KERN_LEVEL_RE.finditer(data):
        if _starts_word(data, m.start()):
            _blank(out, m.start(), m.end())
    for m in _STATIC_MACRO_RE.finditer(data):
        if _at_line_start(data, m.start()):
            _blank(out, m.start(), m.end())
    return bytes(out)


def _blank_keywords(data: bytes, out: bytearray) -> None:
    for rx in _CANDIDATE_RES:
        for m in rx.finditer(data):
            if not _starts_word(data, m.start()):
                continue
            word = m.group(0)
            if word == b"__always_inline":
                out[m.start():m.end()] = b"inline".ljust(len(word))
            elif word in _BARE_SET:
                _blank(out, m.start(), m.end())
            elif word in _WITH_ARG_SET:
                end = _closing_paren(data, m.end())
                _blank(out, m.start(), end if end > 0 else m.end())


@dataclass(frozen=True, slots=True)
class Inactive:
    """A byte range the preprocessor never compiles (`#if 0` and the dead side of `#if 1`)."""

    start: int
    end: int


def _condition_value(text: bytes) -> bool | None:
    """Literal value of an #if condition, or None when it depends on configuration."""
    cond = re.sub(rb"/\*.*?\*/|//.*", b"", text).strip()
    if cond in (b"0", b"(0)", b"false"):
        return False
    if cond in (b"1", b"(1)", b"true"):
        return True
    return None


@dataclass(slots=True)
class _Cond:
    """One open #if group while scanning directives."""

    outer_dead: bool  # the whole group sits inside a dead region
    dead_start: int = -1  # start of the dead region of the current branch, -1 while live
    taken: bool = False  # an earlier (or the current) branch is literally true: the rest is dead
    current_true: bool = False  # the current branch's condition is literally true


def literal_condition(word: bytes, text: bytes) -> bool | None:
    """The default evaluator: only literal `#if 0`/`#if 1` (and #elif) are known."""
    return _condition_value(text) if word in (b"if", b"elif") else None


# (directive, condition text) -> True, False, or None when it cannot be known
Evaluator = Callable[[bytes, bytes], "bool | None"]


def inactive_ranges(data: bytes,
                    evaluate: Evaluator = literal_condition) -> tuple[Inactive, ...]:
    """Find branches the preprocessor never compiles: `#if 0`, `#elif 0`, and every branch
    after a literally true `#if 1`/`#elif 1`. Nesting-aware; config tests count as live
    unless `evaluate` knows them (mmioscan/ifconfig.py evaluates them under a .config)."""
    ranges: list[Inactive] = []
    stack: list[_Cond] = []
    hidden = _Hidden(data)
    for m in _DIRECTIVE_RE.finditer(data):
        word = m.group(1)
        if word not in _CONDITIONALS or hidden.contains(m.start()):
            continue  # `#if 0` on a line of a comment is no directive
        if word in (b"if", b"ifdef", b"ifndef"):
            outer = bool(stack) and (stack[-1].outer_dead or stack[-1].dead_start >= 0)
            cond = _Cond(outer)
            value = evaluate(word, m.group(2))
            _enter_branch(cond, value, m.end())
            stack.append(cond)
        elif word in (b"elif", b"else") and stack:
            cond = stack[-1]
            if cond.dead_start >= 0 and not cond.outer_dead:
                ranges.append(Inactive(cond.dead_start, m.start()))
            cond.dead_start = -1
            cond.taken = cond.taken or cond.current_true
            value = evaluate(word, m.group(2)) if word == b"elif" else True
            if cond.taken:
                cond.dead_start, cond.current_true = m.end(), False
            else:
                # An #else after unknown branches is live; after only dead ones, literally so.
                _enter_branch(cond, value if word == b"elif" else None, m.end())
        elif word == b"endif" and stack:
            cond = stack.pop()
            if cond.dead_start >= 0 and not cond.outer_dead:
                ranges.append(Inactive(cond.dead_start, m.start()))
    for cond in stack:  # unterminated: dead to the end of the file
        if cond.dead_start >= 0 and not cond.outer_dead:
            ranges.append(Inactive(cond.dead_start, len(data)))
    return tuple(sorted(ranges, key=lambda r: r.start))


class _Hidden:
    """Is the start of a line inside a comment or a string literal? Asked in increasing
    order. Only a line after an unclosed `/*` or a backslash-newline can be: for those, one
    forward pass over the file's comments and literals (resumed, never restarted) decides."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.token: re.Match[bytes] | None = None
        self.scanned = 0  # tokens were searched for up to here
        self.opening = -1  # the last `/*` before the offsets asked about so far
        self.looked = 0

    def contains(self, offset: int) -> bool:
        data = self.data
        found = data.rfind(b"/*", self.looked, offset)
        self.opening = found if found >= 0 else self.opening
        self.looked = max(0, offset - 1)
        if (self.opening < 0 or data.find(b"*/", self.opening + 2, offset) >= 0) \
                and not data.endswith((b"\\\n", b"\\\r\n"), 0, offset):
            return False
        while (self.token is None or self.token.end() <= offset) \
                and self.scanned <= offset:
            self.token = _HIDING_RE.search(self.data, self.scanned)
            self.scanned = self.token.end() if self.token is not None else len(self.data) + 1
        token = self.token
        return token is not None and token.start() < offset < token.end()


def _enter_branch(cond: _Cond, value: bool | None, start: int) -> None:
    cond.current_true = value is True
    cond.dead_start = start if value is False else -1


def blank_ranges(data: bytes, ranges: tuple[Inactive, ...]) -> bytes:
    """Replace every byte of the ranges but newlines with spaces."""
    if not ranges:
        return data
    out = bytearray(data)
    for r in ranges:
        out[r.start:r.end] = data[r.start:r.end].translate(_BLANKED)
    return bytes(out)
