"""Which parameters of a definition flow into the arguments of the calls it makes.

The funnel rule (rules/wrappers.toml, analysis/funnels_flow.py) asks, for every call in a
function or macro, which of the definition's parameters an argument is computed from. This is
a cheap intra-procedural taint over identifiers, no types and no control flow:

- a parameter depends on itself;
- a local (or a parameter) assigned from an expression (`x = e`, `x += e`, `T x = e`) depends
  on every parameter the identifiers of `e` depend on (two passes over the assignments, in
  source order, so a chain of locals of any order settles in practice);
- an argument depends on what its identifiers depend on (`&hw_addr[reg]`, `base + 4 * i`).

Only parameters that can select a register count as sources for a function (`selectors`): a
parameter declared `__iomem` (an address) or a scalar (an offset, an index: `u32 reg`,
`int i`, `unsigned long addr`). A pointer to a struct (`struct e1000_hw *hw`, `void *data`)
is a context pointer: its fields hold the base, and alone it does not make a funnel. A macro
has no types: every parameter is a selector, and a parameter appears in an argument when it
is one of the argument's identifiers (pasted `WR_##reg` included); one used only as the
object of a member access (`(hw)->regs`) is a context use (CONTEXT_USE + index): the macro is
a funnel, but a caller passing its own context pointer there does not become one.

A flow record is (scope, callee, line, column, deps, in_loop, value): deps holds, per
argument, the parameter indices it depends on; in_loop marks a call inside a for/while/do (or
a macro body with a loop other than `do { } while (0)`); value marks a catalogued name used as
a value (`read_poll_timeout(readl, ...)`), whose deps are those of the enclosing call's
arguments, all in one. Calls with no dependent argument, outside loops, are not recorded:
the call list has them.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence

import tree_sitter as ts

from mmioscan.cfront import lexer
from mmioscan.cfront.cnodes import WORD_RE, function_declarator
from mmioscan.cfront.cnodes import text as _text  # interned

Flow = tuple[int, str, int, int, tuple[tuple[int, ...], ...], bool, bool]
Selectors = tuple[int, tuple[int, ...]]

FLOW_QUERY = """
(call_expression function: (identifier) @callee) @call
(assignment_expression left: (identifier) right: (_)) @assign
(init_declarator value: (_)) @init
(for_statement) @loop
(while_statement) @loop
(do_statement) @loop
(pointer_declarator declarator: (identifier) @pointer)
(call_expression function: (field_expression field: (field_identifier) @indirect))
(call_expression function: (parenthesized_expression (pointer_expression
    argument: (field_expression field: (field_identifier) @indirect))))
"""

# The iopoll family (include/linux/iopoll.h): call name -> (index of the op argument, first
# and end index of the arguments the op is called with; None: to the last). The op is
# called in the macro's loop: `read_poll_timeout(my_rd32, v, cond, 10, 1000, false, hw, REG)`
# calls my_rd32(hw, REG) an unknown number of times.
POLL_OPS: dict[str, tuple[int, int, int | None]] = {
    "read_poll_timeout": (0, 6, None),
    "read_poll_timeout_atomic": (0, 6, None),
    "readx_poll_timeout": (0, 1, 2),
    "readx_poll_timeout_atomic": (0, 1, 2),
}

_POINTERISH = frozenset({"pointer_declarator", "array_declarator", "function_declarator",
                         "abstract_pointer_declarator", "abstract_array_declarator",
                         "abstract_function_declarator"})
_AGGREGATE = frozenset({"struct_specifier", "union_specifier"})
_MACRO_LOOP_RE = re.compile(rb"\bfor\s*\(|\bwhile\s*\((?!\s*0\s*\))")
_EMPTY: tuple[int, ...] = ()
# A call through a field, as FileFacts.indirect holds it: (field, struct, line, column, scope)
FieldCall = tuple[str, str, int, int, int]
_NONE: frozenset[int] = frozenset()
# A function's names that carry a parameter, as (bytes in the source, name): FileFlows._deps
Watched = tuple[tuple[bytes, str], ...]
# A macro parameter used only as `(hw)->field` in an argument: recorded as CONTEXT_USE + its
# index. It makes the macro a funnel (macros have no types) but never propagates to callers.
CONTEXT_USE = 1 << 16
# What follows a name used as the object of a member access: `hw->`, `(hw)->`, `hw.x`.
_MEMBER_TAIL_RE = re.compile(rb"\s*\)?\s*(?:->|\.(?!\.))")
_GLUED_RE = re.compile(rb"(struct|union|enum|unsigned|signed)(?:\s+\w+)*?\s+(\w+)")


def _declarator_name(node: ts.Node | None) -> tuple[str | None, bool]:
    """The identifier a declarator declares, and whether it is a pointer, array or function."""
    pointerish = False
    while node is not None and node.type != "identifier":
        if node.type in _POINTERISH:
            pointerish = True
        inner = node.child_by_field_name("declarator")
        if inner is None:
            inner = next((c for c in node.named_children if c.type != "comment"), None)
        node = inner
    return (_text(node) if node is not None else None), pointerish


def parameters(function: ts.Node, original: bytes
               ) -> tuple[list[str | None], tuple[int, ...], frozenset[int]]:
    """Parameter names of a function_definition, the indices of those that can select a
    register, and of those that are pointers without __iomem (context pointers: `hw->x`
    does not select, `readl(p)` does); original holds the bytes before annotation blanking
    (it still says __iomem)."""
    decl = function_declarator(function)
    plist = decl.child_by_field_name("parameters") if decl is not None else None
    if plist is None:
        return [], (), frozenset()
    names: list[str | None] = []
    selectors: list[int] = []
    contexts: set[int] = set()
    for p in plist.named_children:
        if p.type == "variadic_parameter":
            names.append(None)
            continue
        if p.type != "parameter_declaration":
            continue
        name, pointerish = _declarator_name(p.child_by_field_name("declarator"))
        text = original[p.start_byte:p.end_byte]
        glued = None
        if name is None:
            # `unsigned int off)` reads as a type passed to a macro: preprocess.py joined its
            # words into one identifier (`unsigned_int_off`); the original has the name last.
            glued = _GLUED_RE.fullmatch(text.strip())
            if glued is None and len(plist.named_children) == 1:
                break  # `(void)`
            name = glued.group(2).decode("ascii", "replace") if glued is not None else None
        index = len(names)
        names.append(name)
        if b"__iomem" in text:
            selectors.append(index)
            continue
        if glued is not None:
            if glued.group(1) not in (b"struct", b"union"):
                selectors.append(index)
            continue
        kind = p.child_by_field_name("type")
        if pointerish:
            selectors.append(index)  # an address when used whole, a context through ->
            contexts.add(index)
        elif kind is None or kind.type not in _AGGREGATE:
            selectors.append(index)
    return names, tuple(selectors), frozenset(contexts)


class FileFlows:
    """The flows of every function of one parsed file, from the captures of FLOW_QUERY."""

    def __init__(self, caps: dict[str, list[ts.Node]], original: bytes = b"") -> None:
        """caps: the captures of FLOW_QUERY over the file's tree, in source order
        (cnodes.captures; cfront/extract.py runs it with its other queries, in one pass)."""
        # Pointers declared without __iomem (locals and parameters): contexts, whose member
        # accesses (`vsi->back`) do not carry a selecting parameter along.
        pointers = []
        for node in caps.get("pointer", []):
            decl = node.parent
            while decl is not None and decl.type not in ("declaration", "parameter_declaration",
                                                          "function_definition"):
                decl = decl.parent
            if decl is not None and decl.type != "function_definition" and (
                    b"__iomem" not in original[decl.start_byte:decl.end_byte]):
                pointers.append((node.start_byte, _text(node)))
        pointers.sort()
        self._source = original  # the tree's text but for blanked spans: _deps' look-ups
        self._pointer_starts = [o for o, _ in pointers]
        self._pointer_names = [n for _, n in pointers]
        self._callees = caps.get("callee", [])
        self._callee_starts = [n.start_byte for n in self._callees]
        # The call of each callee, in the same order (a call starts with its callee): no
        # upward step (`parent` descends from the root in tree-sitter)
        calls = caps.get("call", [])
        self._calls: list[ts.Node] | None = calls if (
            [n.start_byte for n in calls] == self._callee_starts) else None
        # Calls through a field: recorded as callee "->field" (cfront/fnptrs.py)
        self._indirect = caps.get("indirect", [])
        self._indirect_starts = [n.start_byte for n in self._indirect]
        assigns = [*caps.get("assign", []), *caps.get("init", [])]
        assigns.sort(key=lambda n: n.start_byte)
        self._assigns = assigns
        self._assign_starts = [n.start_byte for n in assigns]
        loops = caps.get("loop", [])
        self._loops = [(n.start_byte, n.end_byte) for n in loops]
        self._loop_starts = [s for s, _ in self._loops]
        # The furthest end of the loops starting up to each one: an offset is inside a loop
        # when a loop starting before it ends after it (one bisection, not a scan per call)
        self._loop_reach = list(itertools.accumulate((e for _, e in self._loops), max))

    def _deps(self, node: ts.Node, taint: dict[str, frozenset[int]],
              contexts: frozenset[str] = frozenset(),
              watched: Watched | None = None) -> frozenset[int]:
        """The parameters the identifiers in node carry (taint), context pointers left out.

        watched: the names that carry one (_watched) as the source spells them. Each is
        looked for in node's text with `find`, and an occurrence counts when the smallest
        node there is an identifier of exactly that span (not a field `hw->reg`, not a part
        of `regs`, not in a string): most arguments hold no such name, and no identifier of
        theirs is ever built or decoded (capturing every identifier of a file for this
        was a quarter of the queries' time). None: every identifier below node is read."""
        if watched is None:
            return self._deps_read(node, taint, contexts)
        source, first, last = self._source, node.start_byte, node.end_byte
        found: set[int] = set()
        for spelled, name in watched:
            at = source.find(spelled, first, last)
            while at >= 0:
                end = at + len(spelled)
                there = node.descendant_for_byte_range(at, end)
                if (there is not None and there.type == "identifier"
                        and there.start_byte == at and there.end_byte == end):
                    found.update(taint[name])
                    break
                at = source.find(spelled, at + 1, last)
        return frozenset(found) if found else _NONE

    def _deps_read(self, node: ts.Node, taint: dict[str, frozenset[int]],
                   contexts: frozenset[str]) -> frozenset[int]:
        """_deps by reading every identifier below node (names that are not ASCII)."""
        found: set[int] = set()
        todo = [node]
        while todo:
            current = todo.pop()
            if current.type == "identifier":
                name = _text(current)
                dep = taint.get(name) if name not in contexts else None
                if dep:
                    found.update(dep)
            else:
                todo.extend(current.children)
        return frozenset(found) if found else _NONE

    def _assignments(self, assigns: Iterable[ts.Node]) -> Iterator[tuple[str, ts.Node]]:
        """(assigned name, value) of each `x = e`, `x += e` and `T x = e`."""
        for a in assigns:
            if a.type == "init_declarator":
                target, _p = _declarator_name(a.child_by_field_name("declarator"))
                value = a.child_by_field_name("value")
            else:
                left = a.child_by_field_name("left")
                target = _text(left) if left is not None else None
                value = a.child_by_field_name("right")
            if target is not None and value is not None:
                yield target, value

    def _watched(self, taint: dict[str, frozenset[int]], contexts: frozenset[str]
                 ) -> Watched | None:
        """The names _deps finds a parameter through, with their bytes; None (read every
        identifier) without the source or for a name that is not ASCII (its decoded text
        may not be its bytes)."""
        if not self._source:
            return None
        names = sorted(n for n, dep in taint.items() if dep and n not in contexts)
        if not all(n.isascii() for n in names):
            return None
        return tuple((n.encode("ascii"), n) for n in names)

    def _in_loop(self, offset: int, start: int) -> bool:
        """Inside a loop of the function starting at `start`: loops before the function
        end before it, so the furthest reach of the loops started so far decides."""
        hi = bisect.bisect_right(self._loop_starts, offset)
        return hi > bisect.bisect_left(self._loop_starts, start) and \
            self._loop_reach[hi - 1] > offset

    def function(self, scope: int, node: ts.Node, params: Sequence[str | None],
                 interesting: frozenset[str], references: Iterable[ts.Node],
                 context_params: frozenset[int] = frozenset()) -> list[Flow]:
        """Flow records of one function_definition (scope: its index in FileFacts.scopes);
        references: identifiers of catalogued names used as values inside it;
        context_params: pointer parameters whose member accesses do not select."""
        start, end = node.start_byte, node.end_byte
        lo = bisect.bisect_left(self._pointer_starts, start)
        hi = bisect.bisect_left(self._pointer_starts, end)
        contexts = frozenset(p for i, p in enumerate(params)
                             if p is not None and i in context_params).union(
            self._pointer_names[lo:hi])
        taint: dict[str, frozenset[int]] = {
            p: frozenset((i,)) for i, p in enumerate(params) if p is not None}
        lo = bisect.bisect_left(self._assign_starts, start)
        hi = bisect.bisect_left(self._assign_starts, end)
        assigns = self._assigns[lo:hi]
        watched = self._watched(taint, contexts)
        if taint:
            steps = list(self._assignments(assigns))  # read once for both passes
            for _ in range(2):
                for target, value in steps:
                    dep = self._deps(value, taint, contexts, watched)
                    if dep and not dep <= taint.get(target, frozenset()):
                        taint[target] = taint.get(target, frozenset()) | dep
                        watched = self._watched(taint, contexts)
        flows: list[Flow] = []
        lo = bisect.bisect_left(self._callee_starts, start)
        hi = bisect.bisect_left(self._callee_starts, end)
        ilo = bisect.bisect_left(self._indirect_starts, start)
        ihi = bisect.bisect_left(self._indirect_starts, end)
        direct = self._calls[lo:hi] if self._calls is not None else [
            _call_of(c) for c in self._callees[lo:hi]]
        for callee, call in (*zip(self._callees[lo:hi], direct, strict=True),
                             *((c, _call_of(c)) for c in self._indirect[ilo:ihi])):
            args = call.child_by_field_name("arguments") if call is not None else None
            if args is None:
                continue
            values = [a for a in args.named_children if a.type != "comment"]
            deps = tuple(tuple(sorted(self._deps(a, taint, contexts, watched)
                                      | _whole(a, taint, contexts)))
                         if taint else _EMPTY for a in values)
            loop = self._in_loop(callee.start_byte, start)
            name = _text(callee) if callee.type == "identifier" else "->" + _text(callee)
            if loop or any(deps):
                row, col = callee.start_point
                flows.append((scope, name, row + 1, col + 1, deps, loop, False))
            if name in POLL_OPS:
                flows.extend(_poll_flow(scope, name, values, deps, interesting))
        for ref in references:
            name = _text(ref)
            if name not in interesting:
                continue
            call = ref.parent
            while call is not None and call.type not in ("call_expression",
                                                         "function_definition"):
                call = call.parent
            around: frozenset[int] = frozenset()
            if call is not None and call.type == "call_expression":
                args = call.child_by_field_name("arguments")
                if args is not None and taint:
                    around = self._deps(args, taint, contexts, watched)
            row, col = ref.start_point
            flows.append((scope, name, row + 1, col + 1, (tuple(sorted(around)),), True, True))
        return flows


def _call_of(callee: ts.Node) -> ts.Node | None:
    """The call_expression of a callee: `f(...)`, `p->f(...)` or `(*p->f)(...)`."""
    node = callee.parent
    for _ in range(4):
        if node is None or node.type == "call_expression":
            return node
        node = node.parent
    return None


def _poll_flow(scope: int, name: str, values: Sequence[ts.Node],
               deps: tuple[tuple[int, ...], ...], interesting: frozenset[str]) -> list[Flow]:
    """The op of an iopoll call as a call in a loop, with the arguments it is called with
    (an accessor as the op is a value use, recorded as such)."""
    index, first, last = POLL_OPS[name]
    if (index >= len(values) or values[index].type != "identifier"
            or _text(values[index]) in interesting):
        return []
    row, col = values[index].start_point
    return [(scope, _text(values[index]), row + 1, col + 1,
             deps[first:last] if last is not None else deps[first:], True, False)]


def _whole(arg: ts.Node, taint: dict[str, frozenset[int]],
           contexts: frozenset[str]) -> frozenset[int]:
    """A context pointer used as the address itself: `readl(p)`, `readl((void *)p + 4)`,
    marked CONTEXT_USE + index: it selects for an accessor or a function funnel (whose
    parameter's type tells an address), not for a macro (`REG_RD(bp, off)`: bp is a context)."""
    if not contexts:
        return _NONE
    node: ts.Node | None = arg
    while node is not None and node.type in ("parenthesized_expression", "cast_expression"):
        node = node.child_by_field_name("value") or (
            node.named_children[-1] if node.named_children else None)
    if node is not None and node.type == "binary_expression":
        op = node.child_by_field_name("operator")
        if op is not None and op.type in ("+", "-"):
            node = node.child_by_field_name("left")
            while node is not None and node.type in ("parenthesized_expression",
                                                     "cast_expression"):
                node = node.child_by_field_name("value") or (
                    node.named_children[-1] if node.named_children else None)
    if node is not None and node.type == "identifier":
        name = _text(node)
        if name in contexts:
            return frozenset(CONTEXT_USE + i for i in taint.get(name, frozenset()))
    return frozenset()


# Arguments one variadic parameter stands for, as far as flows follow them: `#define
# wr(...) raw_wr(__VA_ARGS__)` passes its k-th argument on as raw_wr's k-th. A macro's
# parameter indices past its `...` are those arguments (macro_selectors); a call with more
# loses only the flows of the extra ones.
MAX_VARIADIC = 8


def _variadic(params: Sequence[str]) -> tuple[int, str] | None:
    """(index, name in the body) of a variadic parameter: `...` is `__VA_ARGS__`, GNU's
    `args...` is `args`; None for a macro that takes a fixed number of arguments."""
    if not params or not params[-1].endswith("..."):
        return None
    name = params[-1][:-3].strip()
    return len(params) - 1, name or "__VA_ARGS__"


def macro_selectors(params: Sequence[str] | None) -> tuple[int, ...]:
    """The parameter indices of a macro that may select a register: all of them, a variadic
    parameter counting for MAX_VARIADIC arguments."""
    variadic = _variadic(params or ())
    count = len(params or ()) if variadic is None else variadic[0] + MAX_VARIADIC
    return tuple(range(count))


def _spread(args: list[bytes], deps: list[tuple[int, ...]],
            variadic: tuple[int, str] | None) -> list[tuple[int, ...]]:
    """deps with a last argument that is the variadic parameter whole (`__VA_ARGS__`,
    `##__VA_ARGS__`) read as the arguments it stands for, one position each."""
    if variadic is None or not args or len(deps) != len(args):
        return deps
    if args[-1].lstrip(b"#").strip() != variadic[1].encode():
        return deps
    first = variadic[0]
    return deps[:-1] + [(first + k,) for k in range(MAX_VARIADIC)]


def macro_flows(scope: int, params: tuple[str, ...] | None, body: bytes,
                interesting: frozenset[str], skip: frozenset[str],
                base: tuple[int, int], field_calls: list[FieldCall] | None = None
                ) -> list[Flow]:
    """Flow records of one macro body (base: 1-based line and column where it starts).

    field_calls, when given, receives the body's calls through a field as FileFacts.indirect
    records (field, struct, line, column, scope): the struct type is never known in a macro
    (the call graph resolves such a call by field name, cfront/fnptrs.py); a field named by
    a parameter (`->func(` in `CGS_CALL(func, dev)`) is no field name."""
    names = list(params or ())
    index = {p: i for i, p in enumerate(names)}
    variadic = _variadic(names)
    if variadic is not None:
        index[variadic[1]] = variadic[0]
    looped = bool(_MACRO_LOOP_RE.search(body))
    uses = list(lexer.identifiers(body))
    flows: list[Flow] = []
    everywhere = _macro_deps(body, index)
    for use in uses:
        if (field_calls is not None and use.member and use.called and not use.pasted
                and use.name not in (params or ())):
            at_line, at_col = lexer.position(body, use.offset, base[0], base[1])
            field_calls.append((use.name, "", at_line, at_col, scope))
        # a call through a field (`hdev->asic_funcs->rreg(hdev, reg)`) flows as "->field",
        # as a function's does (FileFacts.indirect holds the call: macro_field_calls)
        field_call = use.member and use.called and not use.pasted and use.name not in skip
        if (use.member and not field_call) or use.declared or use.name in skip:
            continue
        line, col = lexer.position(body, use.offset, base[0], base[1])
        if not use.called:
            if use.name in interesting and use.name not in index:
                flows.append((scope, use.name, line, col, (everywhere,), True, True))
            continue
        if use.pasted:
            continue
        paren = body.find(b"(", use.offset + len(use.name))
        split = lexer.split_arguments(body, paren) if paren >= 0 else None
        if split is None:
            continue
        args = [arg for arg in split[0] if arg or len(split[0]) > 1]
        deps = tuple(_spread(args, [_macro_deps(arg, index) for arg in args], variadic))
        name = "->" + use.name if field_call else use.name
        if looped or any(deps):
            flows.append((scope, name, line, col, deps, looped, False))
    return flows


def _macro_deps(text: bytes, index: dict[str, int]) -> tuple[int, ...]:
    """Parameters appearing in text; CONTEXT_USE + i for a parameter that appears only as
    the object of a member access (`(hw)->regs`: a context)."""
    if not index:
        return ()  # an object-like macro, or one without parameters
    names = {u.name for u in lexer.identifiers(text) if u.name in index and not u.member}
    if not names:
        return ()
    found = set()
    for name, (total, objects) in _parameter_uses(text, names).items():
        found.add(index[name] if total > objects else CONTEXT_USE + index[name])
    return tuple(sorted(found))


def _parameter_uses(text: bytes, names: set[str]) -> dict[str, tuple[int, int]]:
    """Per name, its uses in text (not after `.` or `->`) and those that are the object of
    a member access. A use is a whole word (`\\w` runs: a `$`, which C names may hold,
    makes each name its own pattern): one pass over the words, no pattern to compile."""
    if b"$" in text:
        return {name: (len(uses.findall(text)), len(as_object.findall(text)))
                for name, (uses, as_object) in ((n, _parameter_patterns(n)) for n in names)}
    wanted = {n.encode(): n for n in names}
    counts = dict.fromkeys(names, (0, 0))
    for m in WORD_RE.finditer(text):
        name = wanted.get(m.group())
        if name is None or (m.start() and text[m.start() - 1] in b".>"):
            continue
        total, objects = counts[name]
        counts[name] = (total + 1, objects + bool(_MEMBER_TAIL_RE.match(text, m.end())))
    return counts


@functools.lru_cache(maxsize=4096)
def _parameter_patterns(name: str) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """A parameter's uses, and its uses as the object of a member access. Kept here: the
    names of a tree's parameters outnumber the 512 patterns `re` keeps compiled."""
    word = re.escape(name.encode())
    return (re.compile(rb"(?<![\w.>])" + word + rb"(?!\w)"),
            re.compile(rb"(?<![\w.>])" + word + rb"\s*\)?\s*(?:->|\.(?!\.))"))
