"""Functions that function-like macros define by token pasting, instantiated at their
invocations.

Drivers define families of register accessors with one macro:

    #define DEMO_IO(blk, off) static inline u32 blk##_rd(struct demo *d, u32 reg) \
        { return readl(d->base + (off) + reg); }
    DEMO_IO(mac, 0x100);
    DEMO_IO(dma, 0x200);

and then call mac_rd() and dma_rd() hundreds of times. Neither function is written anywhere,
so without expansion they are no definitions in the call graph and their calls are no sites.
Here each file-scope invocation of such a macro is expanded the way the C preprocessor does
it (parameters replaced, `#x` stringified, `a ## b` pasted; arguments are not themselves
macro-expanded; a macro whose body invokes a defining one is expanded through it, one
level only),
and the expansions are handed to the extractor as C of their own (cfront/extract.py), each on
one line that maps back to the invocation's line.

Bounded: the invocations are found in one pass (macros.Invocations), whether one stands at
file scope in one more pass over the braces, and the produced text of one file stops at
MAX_PRODUCED_BYTES (a recorded problem), so a file of 10,000 invocations costs linear time.
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

from mmioscan.cfront import lexer
from mmioscan.cfront.ctext import expand_macro
from mmioscan.cfront.macros import Directives, Invocations, MacroDef, _brackets
from mmioscan.core.fileio import nonblocking
from mmioscan.core.model import FileFacts, Problem

# Produced text per file: far above the largest real family (i915's intel_uncore.h), far
# below what would make one file's parse slow.
MAX_PRODUCED_BYTES = 2 * 1024 * 1024

# A header read for its macros: larger ones are not read (no header of 6.12 comes near).
MAX_HEADER_BYTES = 1024 * 1024

# A name before `(`, possibly pasted: `foo_rd##sfx (`, `name##_readl(`, `name(`.
_NAMED_PAREN_RE = re.compile(rb"([A-Za-z_]\w*(?:\s*##\s*\w+)*|\w+(?:\s*##\s*\w+)+)\s*\(")
_CONTINUATION_RE = re.compile(rb"\\\r?\n")
# What the brace depth skips: literals and comments (a `{` in them opens nothing).
_BRACE_TOKEN_RE = re.compile(
    rb'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/\*.*?\*/|//[^\n]*|[{}]', re.S)
_SPACE_RE = re.compile(rb"\s+")
_WORD_PAREN_RE = re.compile(rb"([A-Za-z_]\w*)\s*\(")


@dataclass(frozen=True, slots=True)
class Instance:
    """One invocation's expansion."""

    macro: str
    line: int  # 1-based line of the invocation: every produced position is put on it
    column: int  # produced column 1 becomes this column: past the end of the invocation's
    # line, so no produced site collides with a real one or reads the invocation's arguments
    text: bytes  # the expansion, on one line


def _partners(body: bytes) -> dict[int, int]:
    """Offset of each `(` in body -> offset of its `)`, in one pass (literals are rare in
    these bodies and only ever shift a match, never loop)."""
    stack: list[int] = []
    found: dict[int, int] = {}
    for i, byte in enumerate(body):
        if byte == 0x28:  # (
            stack.append(i)
        elif byte == 0x29 and stack:  # )
            found[stack.pop()] = i
    return found


def defines_function(macro: MacroDef) -> bool:
    """Does the macro's body define a function whose name is pasted from (or is) one of its
    parameters? `static inline u32 name##_readl(...) {` does; `do { out##x(v); } while (0)`
    calls a pasted name and defines nothing; a macro with no parameter pastes nothing."""
    if not macro.params:
        return False
    body = _CONTINUATION_RE.sub(b"  ", macro.body)
    if b"{" not in body:
        return False
    params = {p.encode() for p in macro.params}
    partners = _partners(body)
    for m in _NAMED_PAREN_RE.finditer(body):
        name = m.group(1)
        if b"##" not in name and name not in params:
            continue
        close = partners.get(m.end() - 1)
        if close is None:
            continue
        rest = body[close + 1:close + 64].lstrip()
        if rest.startswith(b"{"):
            return True
    return False


def _file_scope(data: bytes, directives: Directives, offsets: Iterable[int]) -> set[int]:
    """The offsets (sorted or not) that lie outside every brace pair: one pass over the braces
    of the code (directives, literals and comments skipped)."""
    wanted = sorted(set(offsets))
    if not wanted:
        return set()
    braces: list[tuple[int, int]] = []  # (offset, depth after it)
    depth = 0
    for m in _BRACE_TOKEN_RE.finditer(data):
        token = m.group(0)
        if token not in (b"{", b"}") or directives.contains(m.start()):
            continue
        depth = depth + 1 if token == b"{" else max(depth - 1, 0)
        braces.append((m.start(), depth))
    starts = [b for b, _ in braces]
    outside: set[int] = set()
    for offset in wanted:
        i = bisect.bisect_right(starts, offset) - 1
        if i < 0 or braces[i][1] == 0:
            outside.add(offset)
    return outside


def _one_line(text: bytes) -> bytes:
    return _SPACE_RE.sub(b" ", text).strip()


@dataclass(frozen=True, slots=True)
class Pasted:
    instances: tuple[Instance, ...]  # in file order
    left_out: int  # invocations past the produced-text limit
    # Macros also invoked inside a function body or another macro (but a forwarder):
    # statement macros too, whose own body stays a scope of its own with its calls
    elsewhere: frozenset[str]
    # Macros instantiated (directly or through a forwarder) and invoked nowhere else: their
    # bodies are templates of what the invocations define
    templates: frozenset[str] = frozenset()


def instances(data: bytes, macros: Iterable[MacroDef], directives: Directives,
              invocations: Invocations | None = None,
              limit: int | None = None, forwarders: Iterable[MacroDef] = ()) -> Pasted:
    """The expansions of the file-scope invocations in data of the macros (which define
    functions: defines_function), and of the forwarders (which invoke one of them). An
    invocation inside a directive, a function body or an initializer, or whose arguments
    do not match the parameters, produces nothing."""
    invocations = invocations or Invocations(data)
    limit = MAX_PRODUCED_BYTES if limit is None else limit
    macros = list(macros)
    inner = {m.name.encode(): m for m in reversed(macros)}  # the first definition wins
    forwarders = list(forwarders)
    forwarded = {m.name for m in forwarders}
    spans = sorted((m.start, m.end) for m in forwarders)
    macros.extend(forwarders)
    used: set[str] = set()
    found: list[tuple[int, int, MacroDef]] = []
    elsewhere: set[str] = set()
    seen: set[str] = set()
    for macro in macros:
        if macro.name in seen or macro.params is None:
            continue  # the first definition wins, as in the call graph
        seen.add(macro.name)
        for start, paren in invocations.of(macro.name):
            if macro.start <= start < macro.end:
                continue  # the #define line itself
            if _inside(spans, start):
                used.add(macro.name)  # a forwarder's body: instantiated with it
            elif directives.contains(start):
                elsewhere.add(macro.name)
            else:
                found.append((start, paren, macro))
    outside = _file_scope(data, directives, (start for start, _, _ in found))
    produced: list[Instance] = []
    left_out, total = 0, 0
    line, counted = 1, 0
    for start, paren, macro in sorted(found, key=lambda f: f[0]):
        if start not in outside:
            elsewhere.add(macro.name)
            continue
        text = expand_invocation(data, paren, macro)
        if text is not None and macro.name in forwarded:
            text = _expand_forwarded(text, inner)
        if text is None:
            continue
        if total + len(text) > limit:
            left_out += 1
            continue
        total += len(text)
        line += data.count(b"\n", counted, start)
        counted = start
        column = _past_line(data, start)
        if produced and produced[-1].line == line:  # two invocations on one line
            column = produced[-1].column + len(produced[-1].text) + 1
        produced.append(Instance(macro.name, line, column, text))
    made = {i.macro for i in produced}
    if made & forwarded:
        made |= used
    return Pasted(tuple(produced), left_out, frozenset(elsewhere),
                  frozenset(made - elsewhere))


def _inside(spans: list[tuple[int, int]], offset: int) -> bool:
    i = bisect.bisect_right(spans, (offset, 1 << 62)) - 1
    return i >= 0 and spans[i][0] <= offset < spans[i][1]


def _past_line(data: bytes, offset: int) -> int:
    """The column after the end of the line holding offset (and after its newline)."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    line_end = data.find(b"\n", offset)
    return (len(data) if line_end < 0 else line_end) - line_start + 2


def expand_invocation(data: bytes, paren: int, macro: MacroDef,
                      brackets: lexer.Brackets | None = None) -> bytes | None:
    """The invocation's expansion on one line (`;` after it kept), or None when its
    arguments do not fit the macro's parameters or never close."""
    params = macro.params or ()
    brackets = brackets or _brackets(data)
    args = brackets.arguments(paren)
    if args is None:
        return None
    variadic = bool(params) and params[-1] == "..."
    if args == [b""] and len(params) != 1:
        args = []
    if len(args) != len(params) and not (variadic and len(args) >= len(params) - 1):
        return None  # not this macro's shape: a function of the same name, or broken code
    body = _CONTINUATION_RE.sub(b" ", macro.body).decode("utf-8", "surrogateescape")
    expanded = expand_macro(params, body,
                            [_one_line(a).decode("utf-8", "surrogateescape") for a in args])
    # The `;` after the invocation ends what the body leaves open (`static DEVICE_ATTR_RO(x)`)
    end = b" ;" if brackets.semicolon_after(paren) else b""
    return _one_line(expanded.encode("utf-8", "surrogateescape")) + end


def defining_macros(macros: Iterable[MacroDef]) -> Iterator[MacroDef]:
    """The macros of a file that define a function with a pasted name."""
    return (m for m in macros if defines_function(m))


def forwarding(macros: Iterable[MacroDef], defining: Iterable[MacroDef]) -> list[MacroDef]:
    """Macros with parameters whose body invokes one of `defining` (`#define IO(n)
    __IO(n, res.n)`): one level of nesting, expanded at their invocations too."""
    names = {m.name.encode() for m in defining}
    return [m for m in macros if m.params and m.name.encode() not in names
            and any(w.group(1) in names for w in _WORD_PAREN_RE.finditer(m.body))]


def _expand_forwarded(text: bytes, inner: dict[bytes, MacroDef]) -> bytes | None:
    """The expansions of the defining macros a forwarding macro's expansion invokes (their
    own brackets: the file's stay cached); None when it invokes none of them."""
    brackets = lexer.Brackets(text)
    pieces = [piece for m in _WORD_PAREN_RE.finditer(text) if m.group(1) in inner
              for piece in [expand_invocation(text, m.end() - 1, inner[m.group(1)],
                                              brackets)]
              if piece is not None]
    return b" ".join(pieces) if pieces else None


# -- macros of the headers a file includes from its own folder ----------------------------

Stamp = tuple[str, int, int]  # (absolute path, size, mtime_ns): FileFacts.depends
# A header's bytes made ready for Directives (comments in defines and #if 0 blanked)
Cleaner = Callable[[bytes], bytes]


def sibling_macros(folder: str, includes: Iterable[str], clean: Cleaner
                   ) -> tuple[list[MacroDef], list[Stamp]]:
    """The function-defining macros of the headers included as `"name.h"` from the file's
    own folder (one level), in include order, and the stamps of the headers read (their
    change must invalidate the file's cached facts). A header that is a link out of the
    folder, not a regular file, too large or unreadable gives nothing. The macros' offsets
    are those of no text of the file (start = end = -1)."""
    macros: list[MacroDef] = []
    stamps: list[Stamp] = []
    real_folder = os.path.realpath(folder)
    for target in dict.fromkeys(includes):
        if not (target.startswith('"') and target.endswith('"')):
            continue
        name = target[1:-1]
        if "/" in name or name in ("", ".", ".."):
            continue
        read = _read_header(os.path.join(folder, name), real_folder)
        if read is None:
            continue
        data, stamp = read
        stamps.append(stamp)
        if b"##" not in data:
            continue
        macros.extend(_header_macros(clean, data))
    return macros, stamps


@functools.lru_cache(maxsize=256)
def _header_macros(clean: Cleaner, data: bytes) -> tuple[MacroDef, ...]:
    """The function-defining macros of a header's bytes: the same for each file of the
    folder that includes it (MacroDef is frozen)."""
    text = clean(data)
    return tuple(replace(m, start=-1, end=-1)
                 for m in defining_macros(Directives(text).definitions(text)))


def _read_header(path: str, real_folder: str) -> tuple[bytes, Stamp] | None:
    try:
        # Not a link: its real path is the real folder's, one lstat instead of one per
        # component of the path.
        if os.path.islink(path) and os.path.dirname(os.path.realpath(path)) != real_folder:
            return None  # a link elsewhere: its text must not reach the output
        with open(path, "rb", opener=nonblocking) as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_HEADER_BYTES:
                return None
            data = fh.read()
    except OSError:
        return None
    if b"\0" in data:
        return None
    return data, (path, st.st_size, st.st_mtime_ns)


def merged(facts: FileFacts, sub: FileFacts, instances: Sequence[Instance],
            problems: tuple[Problem, ...]) -> FileFacts:
    """facts and the facts of the produced text: scope indices after the file's own, line k
    of the produced text at instance k's line, column c at its column + c - 1. Uses at file
    scope of the produced text are dropped (a declaration's initializer, not a function)."""
    base = len(facts.scopes)

    def line(k: int) -> int:
        return instances[k - 1].line

    def col(k: int, c: int) -> int:
        return instances[k - 1].column + c - 1

    def moved(records: tuple[tuple[str, int, int, int, bool], ...]
              ) -> tuple[tuple[str, int, int, int, bool], ...]:
        return tuple((n, line(k), col(k, c), s + base, a) for n, k, c, s, a in records if s >= 0)

    scopes = facts.scopes + tuple(s._replace(line=line(s.line), end_line=line(s.line))
                                  for s in sub.scopes)
    calls = sorted(facts.calls + moved(sub.calls), key=lambda c: (c[1], c[2], c[0]))
    references = sorted(facts.references + moved(sub.references),
                        key=lambda c: (c[1], c[2], c[0]))
    derefs = facts.derefs + tuple((line(k), col(k, c), s + base, acc, form, a)
                                  for k, c, s, acc, form, a in sub.derefs if s >= 0)
    flows_ = facts.flows + tuple((s + base, callee, line(k), col(k, c), deps, loop, value)
                                 for s, callee, k, c, deps, loop, value in sub.flows)
    selectors = facts.selectors + tuple((s + base, sel) for s, sel in sub.selectors)
    roots = tuple(sorted(set(facts.roots) | {(f, how, line(k)) for f, how, k in sub.roots},
                         key=lambda r: (r[2], r[0], r[1])))
    return replace(
        # the produced text's syntax errors are the file's: it counts among the files
        # parsed with errors, as its problem says
        facts, error_nodes=facts.error_nodes + sub.error_nodes,
        scopes=scopes, calls=tuple(calls), references=tuple(references),
        derefs=tuple(sorted(derefs)),
        ram_backed_derefs=facts.ram_backed_derefs + sub.ram_backed_derefs,
        flows=tuple(sorted(flows_, key=lambda f: (f[0], f[2], f[3]))),
        selectors=selectors, roots=roots, problems=problems,
        exports=tuple(sorted(set(facts.exports) | set(sub.exports))),
        regmap_maps=facts.regmap_maps + tuple(
            (maker, target, owner, line(k), args)
            for maker, target, owner, k, args in sub.regmap_maps),
        regmap_uses=facts.regmap_uses + tuple(
            (line(k), col(k, c), target, owner) for k, c, target, owner in sub.regmap_uses),
        regmap_configs=facts.regmap_configs + sub.regmap_configs,
        # produced functions store into fields and call through them like written ones
        fnptrs=tuple(sorted(set(facts.fnptrs) | {(st, f, fn, line(k))
                                                  for st, f, fn, k in sub.fnptrs})),
        indirect=facts.indirect + tuple((f, st, line(k), col(k, c), s + base)
                                        for f, st, k, c, s in sub.indirect if s >= 0),
        members=tuple(sorted(set(facts.members) | set(sub.members))),
        polls=tuple(sorted(set(facts.polls) | {(line(k), col(k, c)) for k, c in sub.polls})))
