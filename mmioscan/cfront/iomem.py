"""Raw dereferences of `__iomem` pointers: `*p = v`, `v = r->status`, `p[i]` (docs/domain.md,
"Unsupported"). The compiler, not an io.h accessor, picks the instruction for these, and a TDX
guest may not be able to decode it.

preprocess.py blanks `__iomem` before tree-sitter parses the file, so the annotation is found
in the original bytes at the same offsets and mapped onto the node around the blank: a
declaration, a parameter, a struct field, a function's return type or a cast's type. Every
expression reaching one of those names is then followed upwards with the number of pointer
levels left before the MMIO memory (`u32 __iomem **pp` starts at 2; `*pp` is 1; `**pp` is 0,
an lvalue in MMIO). Reaching 0 is a dereference, unless the address is taken (`&r->ctrl`, the
idiom of `readl(&r->ctrl)`) or the operand is not evaluated (`sizeof(*p)`).

Resolution is per file and scope-aware: a parameter or local is tracked inside its own block,
a global in the whole file, and an inner declaration without `__iomem` shadows it. Struct
fields are tracked only when their struct is defined in the same file (and no other struct of
the file has a field of that name without `__iomem`). Macro bodies are opaque to tree-sitter:
only the cast form `*(u32 __iomem *)(x)` is found in them, lexically.

A site every walk reached from a level-1 pointer whose value the file proves to be RAM
(cfront/rambacked.py, rules/ram.toml: a dma_pool_alloc buffer declared `__iomem`) is left
out and counted (FileFacts.ram_backed_derefs).

This module is long because it is one analysis whose parts share one per-file state (the
annotation map, the scoped bindings and their resolution sweep, the forms): split, every part
would take the whole state as arguments. The precise engine (types from libclang) is the
planned replacement for most of it.
"""

from __future__ import annotations

import bisect
import heapq
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import tree_sitter as ts

from mmioscan.cfront.cnodes import DECLARATIONS as _DECLARATIONS
from mmioscan.cfront.cnodes import FEW_NAMES as _FEW_NAMES
from mmioscan.cfront.cnodes import WORD_RE as _WORD_RE
from mmioscan.cfront.cnodes import arguments as _arguments
from mmioscan.cfront.cnodes import binding_block as _binding_block
from mmioscan.cfront.cnodes import declaration_of as _declaration_of
from mmioscan.cfront.cnodes import declared as _declared
from mmioscan.cfront.cnodes import occurrences as _occurrences
from mmioscan.cfront.cnodes import same as _same
from mmioscan.cfront.cnodes import text as _text
from mmioscan.cfront.depth import TREE_SITTER_DEPTH, TooDeep, deeper_than
from mmioscan.cfront.lexer import IDENT_BYTES
from mmioscan.cfront.macros import Directives
from mmioscan.cfront.preprocess import Inactive, blank_annotations
from mmioscan.cfront.rambacked import RamBacked
from mmioscan.core.ruleset import RamSources

# (line, column, scope index, access, form, active): what FileFacts.derefs holds.
DerefTuple = tuple[int, int, int, str, str, bool]

# Patterns start with a literal (no look-behind): `re` then skips ahead at memory speed; the
# byte before a match is checked in Python (_words).
_IOMEM_RE = re.compile(rb"__iomem(?![\w])")
_WORD_CALL_RE = re.compile(rb"\w+(\s*\()?")  # a word, and the `(` after it if any
# Operand positions that are not evaluated, or only for their type or address, or not
# accessed by an instruction the compiler chooses.
_UNEVALUATED_NODES = frozenset({
    "sizeof_expression", "alignof_expression", "offsetof_expression", "macro_type_specifier",
    "type_descriptor",
    # An asm memory operand ("+m" (*dst) of MOVDIR64B, ENQCMDS): the asm names the instruction.
    "gnu_asm_expression"})
_UNEVALUATED_MACROS = frozenset({
    "typeof", "__typeof__", "__typeof", "typeof_unqual", "ARRAY_SIZE", "sizeof_field",
    "FIELD_SIZEOF", "offsetof", "offsetofend", "__same_type", "typeof_member",
    "__alignof__", "alignof", "_Alignof", "BUILD_BUG_ON", "BUILD_BUG_ON_ZERO",
    "static_assert", "_Static_assert", "__must_be_array", "is_signed_type"})
# Where the walk up from an expression stops looking for an enclosing unevaluated operand.
_STATEMENT_LIKE = frozenset({
    "expression_statement", "return_statement", "declaration", "if_statement",
    "while_statement", "for_statement", "do_statement", "switch_statement",
    "compound_statement", "function_definition", "translation_unit", "init_declarator"})
_COMPOUND_ASSIGN = frozenset({"+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="})

# `(u32)&r->ctrl` and `(u8)*p` parse as a bitwise and, a product: a parenthesised name that
# looks like a type makes them a cast of an address, of a dereference.
_TYPE_NAME_RE = re.compile(
    r"(?:__)?[us](?:8|16|32|64)|__[lb]e(?:16|32|64)|\w+_t|u?int(?:8|16|32|64)?|u?long|u?short"
    r"|u?char|bool|BOOL|U?INT(?:8|16|32|64)?|U?LONG|U?SHORT|U?CHAR|DWORD|WORD|BYTE")

# `*(volatile u32 __iomem *)` in a macro body: a dereference of a cast to an __iomem pointer.
_MACRO_CAST_DEREF_RE = re.compile(
    rb"\*\s*\(\s*(?:(?:const|volatile|unsigned|signed|struct|union)\s+)*\w+\s+"
    rb"(?:(?:const|volatile)\s+)*__iomem\s*(?:(?:const|volatile)\s+)*\*\s*\)")


@dataclass(slots=True)
class _Binding:
    """A declaration of a name: where it is visible, and its __iomem level (None: not iomem)."""

    start: int
    end: int
    decl: int  # byte offset of the declared name
    level: int | None


@dataclass(slots=True)
class _Found:
    offset: int
    row: int
    column: int
    access: str
    form: str


@dataclass(slots=True)
class _Annotations:
    """What the `__iomem` annotations of one parse tree declare."""

    decls: dict[int, dict[str, int]] = field(default_factory=dict)  # declaration id -> levels
    fields: dict[str, int] = field(default_factory=dict)  # struct field -> level
    returns: dict[str, int] = field(default_factory=dict)  # function -> level of its result
    casts: list[tuple[ts.Node, int]] = field(default_factory=list)  # cast expression, level
    field_decls: set[int] = field(default_factory=set)  # ids of __iomem field declarations

    def names(self) -> set[str]:
        found = set(self.fields) | set(self.returns)
        for levels in self.decls.values():
            found.update(levels)
        return found


def _visibility(bindings: Iterable[_Binding]) -> tuple[list[int], list[int | None]]:
    """Breakpoints and the level visible from each up to the next: a binding is visible in
    [max(start, decl), end); where several are, the innermost block wins, then the later
    declaration, then the first recorded (the order of the old per-use scan)."""
    spans = sorted((max(b.start, b.decl), b.end, -b.start, -b.decl, i, b.level)
                   for i, b in enumerate(bindings) if max(b.start, b.decl) < b.end)
    edges = sorted({s[0] for s in spans} | {s[1] for s in spans})
    heap: list[tuple[int, int, int, int, int | None]] = []  # (-start, -decl, index, end, level)
    points: list[int] = []
    levels: list[int | None] = []
    k = 0
    for x in edges:
        while k < len(spans) and spans[k][0] <= x:
            _, end, neg_start, neg_decl, index, level = spans[k]
            heapq.heappush(heap, (neg_start, neg_decl, index, end, level))
            k += 1
        while heap and heap[0][3] <= x:  # out of scope; lazily dropped once on top
            heapq.heappop(heap)
        points.append(x)
        levels.append(heap[0][4] if heap else None)
    return points, levels


def _abstract_depth(type_descriptor: ts.Node) -> int:
    depth = 0
    node = type_descriptor.child_by_field_name("declarator")
    while node is not None and node.type in ("abstract_pointer_declarator",
                                             "abstract_array_declarator"):
        depth += 1
        node = node.child_by_field_name("declarator")
    return depth


def _is_pointer(param: ts.Node) -> bool:
    declarator = param.child_by_field_name("declarator")
    if declarator is None:
        return False
    if declarator.type in ("abstract_pointer_declarator", "abstract_array_declarator"):
        return True
    got = _declared(declarator)
    return got is not None and got[1] > 0


def _cast_in_disguise(binary: ts.Node, node: ts.Node, op: str) -> bool:
    """Is `binary` really `(type)` + unary op applied to node (its right operand)?"""
    if binary.type != "binary_expression" or _text(
            binary.child_by_field_name("operator") or binary) != op \
            or not _same(binary.child_by_field_name("right"), node):
        return False
    left = binary.child_by_field_name("left")
    inner = left.named_children if left is not None and left.type == "parenthesized_expression" \
        else []
    return len(inner) == 1 and inner[0].type == "identifier" \
        and _TYPE_NAME_RE.fullmatch(_text(inner[0])) is not None


def _words(pattern: re.Pattern[bytes], data: bytes) -> Iterator[re.Match[bytes]]:
    """Matches of pattern that start a word."""
    for m in pattern.finditer(data):
        if m.start() == 0 or data[m.start() - 1] not in IDENT_BYTES:
            yield m


def _address_only(body: bytes, param: str) -> bool:
    """Does a macro body use the parameter only behind `&` (`readl(&addr)`)?"""
    uses = list(re.finditer(rb"(?<![\w#])" + re.escape(param.encode()) + rb"(?![\w])", body))
    return bool(uses) and all(
        re.search(rb"&[\s(]*$", body[max(0, m.start() - 8):m.start()]) for m in uses)


class _Analysis:
    """The dereferences of one parse tree."""

    def __init__(self, root: ts.Node, clean: bytes, original: bytes, directives: Directives,
                 accessors: frozenset[str], skip: Callable[[int], bool],
                 ram: RamSources | None = None) -> None:
        self.root, self.clean, self.original = root, clean, original
        self.directives, self.accessors, self.skip = directives, accessors, skip
        self.ram = ram
        self.found: dict[int, _Found] = {}
        # Where each site was reached from: (expression, its pointer levels) of every walk
        # that reached it (cfront/rambacked.py judges whether it points into RAM)
        self.origins: dict[int, list[tuple[ts.Node, int]]] = {}
        self.origin: tuple[ts.Node, int] | None = None  # of the walk under way
        self.ram_backed = 0  # sites left out: every origin points into RAM
        self.notes = _Annotations()
        self.bindings: dict[str, list[_Binding]] = {}
        # name -> (breakpoints, level visible from each): built from bindings on first use
        self.visible: dict[str, tuple[list[int], list[int | None]]] = {}
        self.plain_fields: set[str] = set()  # field names also declared without __iomem
        self.macros: dict[str, tuple[tuple[str, ...], bytes]] | None = None
        self.pointer_params: dict[str, frozenset[int]] = {}
        self.calls_at: dict[bytes, list[int]] | None = None  # `name (` offsets, by name

    # -- what __iomem declares ------------------------------------------------------------

    def annotations(self) -> _Annotations:
        notes = _Annotations()
        ambiguous: set[str] = set()
        for m in _words(_IOMEM_RE, self.original):
            if self.skip(m.start()):
                continue
            node = self.root.descendant_for_byte_range(m.start(), m.end())
            if node is None:
                continue
            if node.type == "type_descriptor":
                cast = node.parent
                depth = _abstract_depth(node)
                if cast is not None and cast.type == "cast_expression" and depth:
                    notes.casts.append((cast, depth))
                continue
            if node.type not in _DECLARATIONS and node.type != "function_definition":
                continue
            declarators = node.children_by_field_name("declarator")
            if not declarators or m.start() > declarators[0].start_byte:
                continue  # `u32 * __iomem p`: not the pointee's address space
            self._declare(node, declarators, notes, ambiguous)
        for name in ambiguous:
            notes.fields.pop(name, None)
        return notes

    @staticmethod
    def _declare(node: ts.Node, declarators: list[ts.Node], notes: _Annotations,
                 ambiguous: set[str]) -> None:
        levels: dict[str, int] = {}
        for declarator in declarators:
            got = _declared(declarator)
            if got is None or got[1] == 0:
                continue
            name, depth, function = _text(got[0]), got[1], got[2]
            if function:
                notes.returns[name] = depth
            elif node.type == "field_declaration":
                notes.field_decls.add(node.id)
                if notes.fields.get(name, depth) != depth:
                    ambiguous.add(name)
                notes.fields[name] = depth
            else:
                levels[name] = depth
        if levels:
            notes.decls[node.id] = levels

    # -- names to nodes ---------------------------------------------------------------------

    def run(self, notes: _Annotations) -> None:
        self.notes = notes
        names = notes.names()
        bindings = self.bindings
        uses: list[ts.Node] = []
        fields: list[ts.Node] = []
        calls: list[ts.Node] = []
        plain_fields = self.plain_fields
        if names:
            for start, end in _occurrences(self.clean, names):
                if self.skip(start):
                    continue
                node = self.root.named_descendant_for_byte_range(start, end)
                if node is None or node.start_byte != start or node.end_byte != end:
                    continue
                self._classify(node, notes, bindings, uses, fields, calls, plain_fields)
        for use in uses:
            level = self._resolve(_text(use), use.start_byte)
            if level is not None:
                self._start(use, level)
        for expr in fields:
            name = _text(expr.child_by_field_name("field") or expr)
            if name not in plain_fields:
                self._start(expr, notes.fields[name])
        for call in calls:
            function = call.child_by_field_name("function")
            if function is not None:
                self._start(call, notes.returns[_text(function)])
        for cast, depth in notes.casts:
            self._start(cast, depth)
        if self.ram and self.found:
            self._drop_ram_backed(self.ram)

    def _start(self, node: ts.Node, level: int) -> None:
        self.origin = (node, level)
        self._walk(node, level, "")

    def _drop_ram_backed(self, rules: RamSources) -> None:
        """Leave out the sites reached only through pointers whose value is RAM. A pointer
        to pointers (level 2) is never judged: RAM holding MMIO addresses is the norm."""
        ram = RamBacked(self.root, self.clean, rules, self.directives.contains, self.skip,
                        frozenset(self._macros()))
        ram.prepare(node for origins in self.origins.values() for node, level in origins
                    if level == 1)
        for offset, origins in self.origins.items():
            if offset in self.found and all(
                    level == 1 and ram.points_to_ram(node) for node, level in origins):
                del self.found[offset]
                self.ram_backed += 1

    def _classify(self, node: ts.Node, notes: _Annotations, bindings: dict[str, list[_Binding]],
                  uses: list[ts.Node], fields: list[ts.Node], calls: list[ts.Node],
                  plain_fields: set[str]) -> None:
        name = _text(node)
        parent = node.parent
        if parent is None:
            return
        if node.type == "field_identifier":
            if parent.type == "field_expression" and _same(parent.child_by_field_name("field"),
                                                            node):
                if name in notes.fields:
                    fields.append(parent)
                return
            decl = _declaration_of(node)
            if decl is not None and decl.id not in notes.field_decls:
                plain_fields.add(name)  # another struct's field of that name, no __iomem
            return
        if node.type != "identifier":
            return
        if parent.type == "call_expression" and _same(parent.child_by_field_name("function"),
                                                       node):
            if name in notes.returns:
                calls.append(parent)
            return
        decl = _declaration_of(node)
        if decl is None:
            uses.append(node)
            return
        block = _binding_block(decl)
        if block is not None and decl.type != "field_declaration":
            level = notes.decls.get(decl.id, {}).get(name)
            bindings.setdefault(name, []).append(_Binding(*block, node.start_byte, level))

    def _resolve(self, name: str, offset: int) -> int | None:
        """Level of the innermost declaration of name visible at offset (the nearest one
        before it when a block declares the name twice).

        A scan of every binding per use is quadratic: 7,000 one-line functions that each
        declare `p` took 11 s. The visible binding is piecewise constant between the offsets
        where a binding becomes visible or goes out of scope, so each name's bindings are
        swept once (n log n) into breakpoints, and a use is a bisection.
        """
        table = self.visible.get(name)
        if table is None:
            table = self.visible[name] = _visibility(self.bindings.get(name, ()))
        points, levels = table
        i = bisect.bisect_right(points, offset) - 1
        return levels[i] if i >= 0 else None

    # -- expressions ------------------------------------------------------------------------

    def _walk(self, node: ts.Node, level: int, form: str) -> None:
        """Follow an expression `level` pointer levels away from MMIO up the tree."""
        while level > 0:
            parent = node.parent
            if parent is None:
                return
            kind = parent.type
            if kind == "parenthesized_expression":
                pass
            elif kind == "pointer_expression":
                if _text(parent.child_by_field_name("operator") or parent) == "*":
                    level, form = level - 1, "*p"
                else:
                    level += 1
            elif _cast_in_disguise(parent, node, "*"):
                level, form = level - 1, "*p"  # `(u8)*p`
            elif kind == "subscript_expression":
                if not _same(parent.child_by_field_name("argument"), node):
                    return
                level, form = level - 1, "p[i]"
            elif kind == "field_expression":
                op = _text(parent.child_by_field_name("operator") or parent)
                if op != "->" or level != 1:
                    return
                level, form = 0, "p->field"
            elif kind == "cast_expression":
                cast_level = self._cast_level(parent, level)
                if cast_level is None:
                    return
                level = cast_level
            elif not self._keeps_pointer(parent, node):
                return
            node = parent
        self._mmio_lvalue(node, form)

    def _cast_level(self, cast: ts.Node, level: int) -> int | None:
        """`(u8 *)regs` still points at MMIO; `(unsigned long)regs` is a number."""
        typ = cast.child_by_field_name("type")
        depth = _abstract_depth(typ) if typ is not None else 0
        return depth if depth and depth == level else None

    @staticmethod
    def _keeps_pointer(parent: ts.Node, node: ts.Node) -> bool:
        """Pointer arithmetic and selection: the result points at the same MMIO."""
        kind = parent.type
        if kind == "binary_expression":
            return _text(parent.child_by_field_name("operator") or parent) in ("+", "-")
        if kind == "update_expression":
            return True
        if kind == "conditional_expression":
            return not _same(parent.child_by_field_name("condition"), node)
        if kind == "comma_expression":
            return _same(parent.child_by_field_name("right"), node)
        return False

    def _mmio_lvalue(self, producer: ts.Node, form: str) -> None:
        """producer denotes memory in MMIO: is it read, written, or only its address taken?"""
        outer = producer
        while outer.parent is not None:
            parent = outer.parent
            if parent.type == "parenthesized_expression":
                pass
            elif parent.type == "field_expression" and _text(
                    parent.child_by_field_name("operator") or parent) == "." \
                    and _same(parent.child_by_field_name("argument"), outer):
                pass  # r->sub.field: a part of the same MMIO object
            elif parent.type == "subscript_expression" and _same(
                    parent.child_by_field_name("argument"), outer):
                pass  # r->fifo[i]: an element of an array in MMIO
            else:
                break
            outer = parent
        if producer.start_byte in self.found:
            self._reached(producer)
            return
        use = self._use(outer)
        if use is None:
            return
        if isinstance(use, tuple):  # its address: `&r->ctrl`, or an array that decays
            self._walk(use[0], use[1], form)
            return
        if self._unevaluated(outer):
            return
        row, column = producer.start_point
        self.found[producer.start_byte] = _Found(producer.start_byte, row, column, use, form)
        self._reached(producer)

    def _reached(self, producer: ts.Node) -> None:
        if self.origin is not None:
            self.origins.setdefault(producer.start_byte, []).append(self.origin)

    def _use(self, outer: ts.Node) -> str | tuple[ts.Node, int] | None:
        """How an lvalue in MMIO is used: read, write, both; (node, level) when only its
        address is (node is then a pointer `level` levels from MMIO); None for no access."""
        parent = outer.parent
        if parent is None:
            return "read"
        kind = parent.type
        if kind == "pointer_expression" and _text(
                parent.child_by_field_name("operator") or parent) == "&":
            return parent, 1
        if _cast_in_disguise(parent, outer, "&"):
            return None  # `(u32)&r->ctrl`: an address turned into a number
        if kind == "cast_expression":
            typ = parent.child_by_field_name("type")
            depth = _abstract_depth(typ) if typ is not None else 0
            if depth:  # `(u32 __iomem *)regs->data`: an array of the MMIO struct, decayed
                return parent, depth
        if kind == "assignment_expression" and _same(parent.child_by_field_name("left"), outer):
            op = _text(parent.child_by_field_name("operator") or parent)
            return "both" if op in _COMPOUND_ASSIGN else "write"
        if kind == "update_expression":
            return "both"
        if kind == "call_expression" and _same(parent.child_by_field_name("function"), outer):
            return None  # `core->ops->fn()`: no function pointer lives in MMIO
        return None if self._decays(outer) else "read"

    def _decays(self, outer: ts.Node) -> bool:
        """Is this an array of the MMIO struct used as its address? `memcpy_fromio(buf,
        r->data, n)`, `readl(r->fifo + i)`, `u32 __iomem *fifo = r->fifo`, or an argument
        that a function of the file declares `__iomem *`, or a macro of the file takes `&` of.
        """
        node = outer
        parent = node.parent
        while parent is not None and (
                parent.type in ("parenthesized_expression", "cast_expression")
                or (parent.type == "binary_expression"
                    and _text(parent.child_by_field_name("operator") or parent) in ("+", "-"))):
            node, parent = parent, parent.parent
        if parent is None:
            return False
        if parent.type == "argument_list":
            return self._pointer_argument(parent, node)
        if parent.type == "assignment_expression" and _same(
                parent.child_by_field_name("right"), node):
            left = parent.child_by_field_name("left")
            return left is not None and bool(self._level_of(left))
        if parent.type == "init_declarator" and _same(parent.child_by_field_name("value"), node):
            declarator = parent.child_by_field_name("declarator")
            got = _declared(declarator) if declarator is not None else None
            decl = parent.parent
            return got is not None and decl is not None and bool(
                self.notes.decls.get(decl.id, {}).get(_text(got[0])))
        return False

    def _pointer_argument(self, args: ts.Node, arg: ts.Node) -> bool:
        call = args.parent
        function = call.child_by_field_name("function") if call is not None else None
        if function is None or function.type != "identifier":
            return False
        name = _text(function)
        if name in self.accessors:
            return True
        index = next((i for i, a in enumerate(_arguments(args)) if a.id == arg.id), -1)
        if index in self._pointer_parameters(name):
            return True
        macro = self._macros().get(name)
        return macro is not None and index < len(macro[0]) \
            and _address_only(macro[1], macro[0][index])

    def _level_of(self, expr: ts.Node) -> int | None:
        """Pointer levels of a name or a field the file declares __iomem (None: unknown)."""
        if expr.type == "identifier":
            return self._resolve(_text(expr), expr.start_byte)
        if expr.type == "field_expression":
            name = _text(expr.child_by_field_name("field") or expr)
            return None if name in self.plain_fields else self.notes.fields.get(name)
        return None

    def _pointer_parameters(self, function: str) -> frozenset[int]:
        """Indices of the pointer parameters of a function declared in this file: a value
        read from MMIO could not be passed there, so the argument is an array's address."""
        found = self.pointer_params.get(function)
        if found is not None:
            return found
        found = frozenset()
        for start in self._called_at(function):
            name = self.root.named_descendant_for_byte_range(start, start + len(function))
            declarator = name.parent if name is not None else None
            if name is None or declarator is None or declarator.type != "function_declarator" \
                    or not _same(declarator.child_by_field_name("declarator"), name):
                continue
            plist = declarator.child_by_field_name("parameters")
            params = [c for c in plist.named_children if c.type == "parameter_declaration"] \
                if plist is not None else []
            found = frozenset(i for i, p in enumerate(params) if _is_pointer(p))
            break
        self.pointer_params[function] = found
        return found

    def _called_at(self, function: str) -> Iterable[int]:
        """Offsets of `function (` as a whole word. A regex pass per name for the first few
        names; past _FEW_NAMES (8,000 functions, one pass over the file each: 2 s), one pass
        over the file's words indexes them all."""
        if len(self.pointer_params) < _FEW_NAMES:
            word = function.encode()
            return [m.start() for m in re.finditer(re.escape(word) + rb"\s*\(", self.clean)
                    if m.start() == 0 or self.clean[m.start() - 1] not in IDENT_BYTES]
        if self.calls_at is None:
            self.calls_at = {}
            for m in _WORD_CALL_RE.finditer(self.clean):
                if m.group(1) is not None:
                    self.calls_at.setdefault(m.group(0)[:m.start(1) - m.start()], []).append(
                        m.start())
        return self.calls_at.get(function.encode(), ())

    def _macros(self) -> dict[str, tuple[tuple[str, ...], bytes]]:
        if self.macros is None:
            self.macros = {m.name: (m.params, m.body) for m in self.directives.definitions(
                self.clean) if m.params}
        return self.macros

    @staticmethod
    def _unevaluated(node: ts.Node) -> bool:
        """Inside sizeof(), typeof(), ARRAY_SIZE() and friends."""
        up = node.parent
        while up is not None and up.type not in _STATEMENT_LIKE:
            if up.type in _UNEVALUATED_NODES:
                return True
            if up.type == "call_expression":
                function = up.child_by_field_name("function")
                if function is not None and (
                        _text(function) in _UNEVALUATED_MACROS
                        # `"+m" (*dst)`: an asm operand that error recovery read as a call
                        or function.type in ("string_literal", "concatenated_string")):
                    return True
            up = up.parent
        return False


def _tree_derefs(root: ts.Node, clean: bytes, original: bytes, directives: Directives,
                 accessors: frozenset[str], skip: Callable[[int], bool],
                 ram: RamSources | None) -> tuple[list[_Found], set[str], int]:
    analysis = _Analysis(root, clean, original, directives, accessors, skip, ram)
    notes = analysis.annotations()
    analysis.run(notes)
    return (sorted(analysis.found.values(), key=lambda f: f.offset), notes.names(),
            analysis.ram_backed)


def _macro_derefs(original: bytes, clean: bytes, directives: Directives
                  ) -> list[tuple[int, int, str]]:
    """(macro ordinal, byte offset, access) of `*(T __iomem *)` in #define bodies."""
    found: list[tuple[int, int, str]] = []
    if not any(directives.contains(m.start()) for m in _words(_IOMEM_RE, original)):
        return found
    for ordinal, macro in enumerate(directives.definitions(clean)):
        body = original[macro.body_start:macro.end]
        if b"__iomem" not in body:
            continue
        for m in _MACRO_CAST_DEREF_RE.finditer(body):
            found.append((ordinal, macro.body_start + m.start(), _lexical_access(body, m.end())))
    return found


def _lexical_access(body: bytes, pos: int) -> str:
    """read, write or both, from what follows the dereferenced operand in a macro body."""
    i = pos
    while i < len(body) and body[i] in b" \t\\\r\n":
        i += 1
    if i < len(body) and body[i] == ord("("):
        depth = 0
        while i < len(body):
            depth += {ord("("): 1, ord(")"): -1}.get(body[i], 0)
            i += 1
            if depth == 0:
                break
    else:
        while i < len(body) and (body[i] in b"_" or chr(body[i]).isalnum()):
            i += 1
    rest = body[i:].lstrip(b" \t\\\r\n")
    if rest.startswith(b"=") and not rest.startswith(b"=="):
        return "write"
    if re.match(rb"(?:<<|>>|[-+*/%&|^])=", rest):
        return "both"
    return "read"


def _inside(ranges: tuple[Inactive, ...]) -> Callable[[int], bool]:
    starts = [r.start for r in ranges]

    def inside(offset: int) -> bool:
        i = bisect.bisect_right(starts, offset) - 1
        return i >= 0 and offset < ranges[i].end
    return inside


def file_derefs(parser: ts.Parser, root: ts.Node, original: bytes, clean: bytes,
                dead: tuple[Inactive, ...], directives: Directives, accessors: frozenset[str],
                scope_at: Callable[[int], int], first_macro: int,
                max_depth: int = TREE_SITTER_DEPTH, ram: RamSources | None = None
                ) -> tuple[tuple[DerefTuple, ...], int]:
    """Every dereference of an __iomem pointer in one file, in source order, and how many
    live ones were left out as RAM-backed (ram: rules/ram.toml; None: none is).

    original: the file with #define comments blanked (annotations still there); clean: what
    root was parsed from. Dereferences in `#if 0` blocks come from a second parse of the file
    with those blocks kept, marked inactive; it is only done when such a block mentions
    __iomem or a tracked name. Raises TooDeep when that parse is deeper than max_depth.
    """
    if b"__iomem" not in original:
        return (), 0
    dead_at = _inside(dead)
    live, names, ram_backed = _tree_derefs(root, clean, original, directives, accessors,
                                           lambda o: dead_at(o) or directives.contains(o), ram)
    out: list[DerefTuple] = [
        (f.row + 1, f.column + 1, scope_at(f.offset), f.access, f.form, True) for f in live]
    line, counted = 1, 0  # lines counted on from the previous one: macros come in file order
    for ordinal, offset, access in _macro_derefs(original, clean, directives):
        line += original.count(b"\n", counted, offset)
        counted = offset
        column = offset - (original.rfind(b"\n", 0, offset) + 1) + 1
        out.append((line, column, first_macro + ordinal, access, "*p", True))
    if dead and _mentions(original, dead, names):
        full = blank_annotations(original)
        full_directives = Directives(full)
        tree = parser.parse(full)
        if deeper_than(tree.root_node, max_depth):
            raise TooDeep(max_depth)
        inactive, _, _ = _tree_derefs(tree.root_node, full, original, full_directives,
                                      accessors, full_directives.contains, ram)
        out.extend((f.row + 1, f.column + 1, scope_at(f.offset), f.access, f.form, False)
                   for f in inactive if dead_at(f.offset))
    return tuple(sorted(set(out))), ram_backed


def _mentions(data: bytes, ranges: tuple[Inactive, ...], names: set[str]) -> bool:
    if len(names) > _FEW_NAMES:  # one pass over the words, not one per name and range
        wanted = {n.encode() for n in names}
        return any(data.find(b"__iomem", r.start, r.end) >= 0
                   or any(m.group() in wanted for m in _WORD_RE.finditer(data, r.start, r.end))
                   for r in ranges)
    words = [b"__iomem", *(n.encode() for n in names)]
    return any(data.find(w, r.start, r.end) >= 0 for r in ranges for w in words)
