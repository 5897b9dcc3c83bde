"""One file's bytes -> FileFacts, with tree-sitter-c for code and the lexer for macro bodies.

This module is long because one Extractor runs the whole per-file pass (the one query pass,
function and macro scopes, roots, flows, derefs, pasted instances, regmap records), whose
parts share the parse, the scope table and the positions; the analyses themselves live in
the modules it calls (flows, fnptrs, iomem, macrostores, pasted, regmaps)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace

import tree_sitter as ts
import tree_sitter_c as tsc

from mmioscan.cfront import flows, fnptrs, iomem, lexer, macrostores, pasted
from mmioscan.cfront.cnodes import captures, function_declarator
from mmioscan.cfront.cnodes import text as _text  # interned
from mmioscan.cfront.declared import DeclaredNames
from mmioscan.cfront.depth import TREE_SITTER_DEPTH, TooDeep, deeper_than
from mmioscan.cfront.macros import (
    Directives,
    Invocations,
    MacroDef,
    defines_with_params,
    expand_pasted,
    forwarded_calls,
)
from mmioscan.cfront.prefilter import NameScanner, include_targets
from mmioscan.cfront.preprocess import (
    Inactive,
    blank_annotations,
    blank_define_comments,
    blank_ranges,
    inactive_ranges,
)
from mmioscan.cfront.regmaps import regmap_facts
from mmioscan.core.model import Call, FileFacts, Problem, Scope
from mmioscan.core.ruleset import RamSources, Regmap, root_how

# One query over the tree for the definitions, the flows (flows.FLOW_QUERY: it captures the
# callees too) and the function pointers (fnptrs.FNPTR_QUERY): each pass of a query cursor over
# a whole tree costs about a third of the parse, whatever it captures.
_DEFS_QUERY = """
(function_definition) @function
(initializer_pair designator: (field_designator (field_identifier) @field)
                  value: (identifier) @field_value)
(ERROR) @error
"""

# Keywords the macro lexer sees before `(`: control flow and operators, never callees.
_C_KEYWORDS = frozenset({
    "if", "while", "for", "switch", "return", "sizeof", "do", "else", "case", "typeof",
    "__typeof__", "__typeof", "_Generic", "_Alignof", "alignof", "__alignof__", "asm", "__asm__",
    "__asm", "volatile", "__volatile__", "_Static_assert", "static_assert", "__attribute__",
    "__builtin_expect", "defined", "goto", "int", "char", "long", "short", "unsigned", "signed",
    "void", "struct", "union", "enum", "const",
})

_DIRECTIVE_LINE_RE = re.compile(rb"^[ \t]*#[^\n]*", re.MULTILINE)

# Parents under which an identifier declares or tests a name instead of using it as a value.
_DECLARING_PARENTS = frozenset({
    "function_declarator", "preproc_def", "preproc_function_def", "preproc_ifdef",
    "preproc_defined", "init_declarator", "declaration", "parameter_declaration",
    "pointer_declarator", "array_declarator", "parenthesized_declarator", "preproc_params",
    "labeled_statement", "goto_statement", "enumerator", "field_declaration",
})


def _function_name(node: ts.Node) -> str | None:
    """Name of a function_definition, looking through pointer and parenthesised declarators."""
    decl = function_declarator(node)
    if decl is None:
        return None
    inner = decl.child_by_field_name("declarator")
    while inner is not None and inner.type != "identifier":
        inner = inner.child_by_field_name("declarator") or (
            inner.named_children[0] if inner.named_children else None)
    return _text(inner) if inner is not None else None


def _end_line(node: ts.Node) -> int:
    """Last line of a node; a directive's node ends at column 0 of the line after it."""
    row, col = node.end_point
    return row + 1 if col else max(row, node.start_point[0] + 1)


# Macros whose argument names a member or a trace-event entry, never a value: the last
# argument of the TRACE_EVENT entry declarators (`__field(int, writeq)` in xfs_trace.h),
# the member argument of offsetof and its kin (`container_of(p, struct s, readl)`).
_MEMBER_MACROS = frozenset({
    "__field", "__field_ext", "__field_struct", "__field_struct_ext", "__field_packed",
    "__array", "__dynamic_array", "__rel_dynamic_array", "__string", "__string_len",
    "__rel_string", "__vstring", "__bitmask", "__cpumask", "__sockaddr",
    "offsetof", "offsetofend", "container_of", "container_of_const", "sizeof_field",
    "typeof_member", "struct_size", "struct_size_t", "flex_array_size",
})


def _names_a_member(node: ts.Node, parent: ts.Node) -> bool:
    """Is node an argument, other than the first, of a _MEMBER_MACROS invocation?"""
    if parent.type != "argument_list" or parent.named_children[:1] == [node]:
        return False
    call = parent.parent
    function = call.child_by_field_name("function") if call is not None else None
    return function is not None and _text(function) in _MEMBER_MACROS


def _is_call_in_disguise(node: ts.Node, parent: ts.Node) -> bool:
    """`(readl)(p)`, or a call that error recovery split from its `(`."""
    if parent.type == "parenthesized_expression":
        outer = parent.parent
        return (outer is not None and outer.type == "call_expression"
                and outer.child_by_field_name("function") == parent)
    sibling = node.next_sibling
    return parent.type == "ERROR" and sibling is not None and sibling.type == "("


def _clean_header(data: bytes) -> bytes:
    """A header's text as the extractor reads a file's: comments in defines and `#if 0`
    blocks blanked."""
    data_nc = blank_define_comments(data)
    return blank_ranges(data_nc, inactive_ranges(data_nc))


def _specifiers(node: ts.Node) -> set[str]:
    return {_text(c) for c in node.children if c.type == "storage_class_specifier"}


def _initialized_struct(pair: ts.Node) -> str | None:
    """The struct tag an initializer pair belongs to (`struct blk_mq_ops x = { .poll = f }`,
    or a compound literal), or None when the tree does not tell (a macro, a nested list)."""
    holder = pair.parent
    if holder is None or holder.type != "initializer_list":
        return None
    owner = holder.parent
    typed: ts.Node | None = None
    if owner is not None and owner.type == "init_declarator":
        typed = owner.parent.child_by_field_name("type") if owner.parent is not None else None
    elif owner is not None and owner.type == "compound_literal_expression":
        descriptor = owner.child_by_field_name("type")
        typed = descriptor.child_by_field_name("type") if descriptor is not None else None
    if typed is None or typed.type != "struct_specifier":
        return None
    tag = typed.child_by_field_name("name")
    return _text(tag) if tag is not None else None


class Extractor:
    """Builds FileFacts; one per process (the parser and queries are reused across files)."""

    def __init__(self, interesting: Iterable[str],
                 registrations: Mapping[str, tuple[int, ...]] | None = None,
                 hot_fields: Iterable[str] = (), regmap: Regmap | None = None,
                 max_depth: int = TREE_SITTER_DEPTH,
                 hot_structs: Mapping[str, str] | None = None,
                 ram: RamSources | None = None) -> None:
        self.interesting = frozenset(interesting)
        # What makes an __iomem pointer's value RAM (rules/ram.toml): derefs through one are
        # left out and counted; None: every deref is kept.
        self.ram = ram
        # Deeper parse trees are a recorded problem, not a silent loss (cfront/depth.py).
        self.max_depth = min(max_depth, TREE_SITTER_DEPTH)
        # Calls that register a callback (request_irq: argument 1 is the handler) and struct
        # fields that install one (.ndo_start_xmit = fn): the roots of hot paths.
        self.registrations = dict(registrations or {})
        self.hot_fields = frozenset(hot_fields)
        # field -> the ops struct it must belong to (`.poll` of blk_mq_ops, not of a
        # file_operations), when the initializer's type can be told
        self.hot_structs = dict(hot_structs or {})
        self.regmap = regmap  # which calls make a map and which use one (rules/regmap.toml)
        self._regmap_makers = regmap.makers() if regmap is not None else frozenset()
        self._regmap_api = frozenset(regmap.api) if regmap is not None else frozenset()
        self.language = ts.Language(tsc.language())
        self.parser = ts.Parser(self.language)
        self.file_query = ts.Query(self.language,
                                   _DEFS_QUERY + flows.FLOW_QUERY + fnptrs.FNPTR_QUERY)
        self.assign_query = ts.Query(self.language, fnptrs.ASSIGN_QUERY)
        self.macro_stores = macrostores.MacroStores(self.language, self.parser)
        self.scanner = NameScanner(self.interesting)
        self._instantiating = False  # extracting the text pasting macros produce

    def extract(self, path: str, digest: str, data: bytes, folder: str | None = None
                ) -> FileFacts:
        """folder: the file's folder on disk, where the headers it includes as `"name.h"`
        are read for the function-defining macros they hold (cfront/pasted.py); None: only
        the file's own macros are instantiated."""
        problems: list[Problem] = []
        data_nc = blank_define_comments(data)
        dead = inactive_ranges(data_nc)
        active = blank_ranges(data_nc, dead)
        clean = blank_annotations(active)
        tree = self.parser.parse(clean)
        root = tree.root_node
        if deeper_than(root, self.max_depth):
            return self._too_deep(path, digest, data)
        caps = captures(self.file_query, root)
        directives = Directives(clean)
        scopes, starts, ends, nodes = self._function_scopes(caps.get("function", []))
        calls: list[Call] = []
        references: list[Call] = []
        ref_nodes: list[ts.Node] = []
        exports: list[tuple[str, str, int]] = []
        roots: list[tuple[str, str, int]] = []
        stored, indirect, members, types = fnptrs.file_fnptrs(
            caps, lambda o: self._scope_at(starts, ends, o))
        assigned = fnptrs.Assignments(self.assign_query)
        polls: list[tuple[int, int]] = []
        for node in caps.get("callee", []):
            if directives.contains(node.start_byte):
                continue  # error recovery read a #define line as code; macros are lexed below
            row, col = node.start_point
            name = _text(node)
            calls.append(Call(name, row + 1, col + 1,
                              self._scope_at(starts, ends, node.start_byte)))
            if name in self.registrations:
                roots.extend(self._registered(node, name, self.registrations[name]))
                roots.extend(self._registered_through(node, name, self.registrations[name],
                                                      types, assigned, calls[-1].scope))
            if name in flows.POLL_OPS and calls[-1].scope >= 0:
                op = self._poll_op(node, name, calls[-1].scope)
                if op is not None:
                    calls.append(op)
                    polls.append((op.line, op.column))
            if name.startswith("EXPORT_SYMBOL") and calls[-1].scope < 0:
                exports.extend(self._registered(node, name, (0,)))
        roots.extend(self._installed(caps.get("field", []), caps.get("field_value", [])))
        self._interesting_uses(clean, root, directives, starts, ends, calls, references,
                               ref_nodes)
        flow_records, selectors = self._function_flows(caps, data_nc, nodes, ref_nodes, starts,
                                                       ends)
        try:
            derefs, ram_backed = iomem.file_derefs(
                self.parser, root, data_nc, clean, dead, directives, self.interesting,
                lambda o: self._scope_at(starts, ends, o), first_macro=len(scopes),
                max_depth=self.max_depth,
                # a header's statics are each includer's: calls and stores it does not show
                ram=self.ram if path.endswith(".c") else None)
        except TooDeep:  # the parse with the `#if 0` blocks kept is deeper than the limit
            return self._too_deep(path, digest, data)
        invocations = Invocations(clean)
        first_macro = len(scopes)
        macros = list(directives.definitions(clean))  # read by three stages below
        field_calls: list[fnptrs.Indirect] = []
        scopes.extend(self._macro_scopes(clean, macros, directives, len(scopes), calls,
                                         references, flow_records, selectors, invocations,
                                         field_calls))
        if field_calls:  # calls through fields in macro bodies, after the functions' ones
            indirect = tuple(sorted({*indirect, *field_calls},
                                    key=lambda c: (c[2], c[3], c[0])))
        includes = include_targets(clean)  # as written: `<linux/io.h>`, `"e1000.h"`
        # the macros and includes of the text with annotations: clean's when it has none
        produced, depends = self._pasted(
            active, (macros, includes) if active == clean else None, directives, invocations,
            folder)
        if produced is not None:
            calls, references, derefs = _without_templates(
                produced, first_macro, scopes, calls, references, derefs)
        self._inactive_uses(data, dead, calls, references)
        maps, uses, configs = self._regmaps(root, caps)
        errors = len(caps.get("error", []))
        if errors:
            problems.append(Problem(path, f"parsed with {errors} syntax error node(s)"))
        scopes = self._with_callees(scopes, calls, references)
        calls.sort(key=lambda c: (c.line, c.column, c.name))
        references.sort(key=lambda c: (c.line, c.column, c.name))
        defining, forwards = _definition_macros(macros)
        stored, stored_problems = self.macro_stores.added(  # ops fields a macro fills
            path, stored, clean, macros, directives, invocations, types,
            lambda o: self._scope_at(starts, ends, o))
        problems.extend(stored_problems)
        facts = FileFacts(path=path, digest=digest, size=len(data), parsed=True,
                         error_nodes=errors, scopes=tuple(scopes),
                         calls=tuple(tuple(c) for c in calls),  # type: ignore[misc]
                         references=tuple(tuple(r) for r in references),  # type: ignore[misc]
                         problems=tuple(problems), includes=includes,
                         roots=tuple(sorted(set(roots), key=lambda r: (r[2], r[0], r[1]))),
                         derefs=derefs, ram_backed_derefs=ram_backed,
                         definition_macros=tuple(sorted(defining)),
                         macro_forwards=forwards,
                         regmap_maps=maps, regmap_uses=uses, regmap_configs=configs,
                         selectors=_shared_selectors(selectors),
                         exports=tuple(sorted({e[0] for e in exports})),
                         fnptrs=stored, indirect=indirect, members=members,
                         polls=tuple(sorted(polls)),
                         flows=_shared_deps(sorted(flow_records,
                                                   key=lambda f: (f[0], f[2], f[3]))))
        if depends:
            facts = replace(facts, depends=tuple(depends))
        if produced is None or not (produced.instances or produced.left_out):
            return facts
        return self._instantiated(facts, produced)

    # -- functions defined by pasting macros (cfront/pasted.py) -----------------------------

    def _pasted(self, active: bytes, read: tuple[list[MacroDef], tuple[str, ...]] | None,
                directives: Directives, invocations: Invocations, folder: str | None
                ) -> tuple[pasted.Pasted | None, list[pasted.Stamp]]:
        """The instances of the function-defining macros of the file, then of the headers
        it includes from its folder; and the stamps of the headers read. active: the text
        with its annotations (`__iomem` marks the pointers whose dereferences are sites)."""
        if self._instantiating:
            return None, []  # the produced text itself: it holds no #define to expand
        own = read[0] if read is not None else list(directives.definitions(active))
        defining = list(pasted.defining_macros(own))
        stamps: list[pasted.Stamp] = []
        if folder is not None:
            foreign, stamps = pasted.sibling_macros(
                folder, read[1] if read is not None else include_targets(active), _clean_header)
            defining.extend(foreign)
        if not defining:
            return None, stamps
        return pasted.instances(active, defining, directives, invocations,
                                forwarders=pasted.forwarding(own, defining)), stamps

    def _instantiated(self, facts: FileFacts, produced: pasted.Pasted) -> FileFacts:
        """facts with the functions the invocations produce: their text is extracted as C of
        its own (one line per invocation) and every position moved to the invocation's line,
        past its end (pasted.Instance)."""
        problems = list(facts.problems)
        if produced.left_out:
            problems.append(Problem(facts.path, (
                f"pasting macros: {produced.left_out} invocation(s) not instantiated past "
                f"{pasted.MAX_PRODUCED_BYTES:,} bytes of produced text")))
        if not produced.instances:
            return replace(facts, problems=tuple(problems))
        text = b"\n".join(i.text for i in produced.instances) + b"\n"
        self._instantiating = True
        try:
            sub = self.extract(facts.path, facts.digest, text)
        finally:
            self._instantiating = False
        if not sub.parsed:
            problems.extend(Problem(facts.path, f"pasting macros: {p.message}")
                            for p in sub.problems)
            return replace(facts, problems=tuple(problems))
        if sub.error_nodes:
            problems.append(Problem(facts.path, (
                f"pasting macros: the produced functions parsed with {sub.error_nodes} "
                "syntax error node(s)")))
        return pasted.merged(facts, sub, produced.instances, tuple(problems))

    def _regmaps(self, root: ts.Node, caps: dict[str, list[ts.Node]]) -> tuple[
            tuple[tuple[str, str, str, int, tuple[str, ...]], ...],
            tuple[tuple[int, int, str, str], ...],
            tuple[tuple[str, tuple[tuple[str, str], ...]], ...]]:
        regmap = self.regmap
        if regmap is None:
            return (), (), ()
        makers = self._regmap_makers
        return regmap_facts(root, caps.get("callee", []), caps.get("field", []),
                            lambda n: n in makers or regmap.is_bus(n), self._regmap_api,
                            regmap.field_alloc, regmap.callback_fields,
                            frozenset(regmap.generic))

    def _too_deep(self, path: str, digest: str, data: bytes) -> FileFacts:
        return FileFacts(path=path, digest=digest, size=len(data), parsed=False,
                         problems=(Problem(path, str(TooDeep(self.max_depth))),),
                         includes=include_targets(data))

    def _function_flows(self, caps: dict[str, list[ts.Node]], original: bytes,
                        nodes: list[ts.Node],
                        ref_nodes: list[ts.Node], starts: list[int], ends: list[int]
                        ) -> tuple[list[flows.Flow], list[flows.Selectors]]:
        """Parameter flows into call arguments, and register-selecting parameters, of every
        function (cfront/flows.py)."""
        records: list[flows.Flow] = []
        selectors: list[flows.Selectors] = []
        if not nodes:
            return records, selectors
        file_flows = flows.FileFlows(caps, original)
        refs: dict[int, list[ts.Node]] = {}
        for ref in ref_nodes:
            refs.setdefault(self._scope_at(starts, ends, ref.start_byte), []).append(ref)
        for index, node in enumerate(nodes):
            names, selects, contexts = flows.parameters(node, original)
            selectors.append((index, selects))
            records.extend(file_flows.function(index, node, names, self.interesting,
                                               refs.get(index, ()), contexts))
        return records, selectors

    # -- hot-path roots ----------------------------------------------------------------------

    @staticmethod
    def _registered(callee: ts.Node, name: str, positions: tuple[int, ...]
                    ) -> Iterator[tuple[str, str, int]]:
        """Functions passed as callbacks: `request_irq(irq, handler, ...)` -> handler. One
        passed as a later callback argument is installed by `name[index]` (the threaded
        handler of request_threaded_irq: request_threaded_irq[2])."""
        call = callee.parent
        args = call.child_by_field_name("arguments") if call is not None else None
        if args is None:
            return
        values = args.named_children
        for order, index in enumerate(positions):
            if index < len(values):
                arg = values[index]
                if arg.type == "pointer_expression":  # &handler
                    arg = arg.child_by_field_name("argument") or arg
                if arg.type == "identifier":
                    how = root_how(name, index) if order else name
                    yield _text(arg), how, arg.start_point[0] + 1

    @staticmethod
    def _registered_through(callee: ts.Node, name: str, positions: tuple[int, ...],
                            types: fnptrs.FileTypes, assigned: fnptrs.Assignments, scope: int
                            ) -> Iterator[tuple[str, str, int]]:
        """Callbacks passed through a field (`request_irq(irq, chip->isr, ...)`: root
        `struct T->isr` or `->isr`, expanded by the call graph) or a local variable (`poll =
        fast ? a_poll : b_poll; netif_napi_add(dev, napi, poll)`: a_poll and b_poll)."""
        call = callee.parent
        args = call.child_by_field_name("arguments") if call is not None else None
        if args is None:
            return
        values = args.named_children
        for index in positions:
            if index >= len(values):
                continue
            arg = values[index]
            if arg.type == "pointer_expression":  # &priv->handler
                arg = arg.child_by_field_name("argument") or arg
            line = arg.start_point[0] + 1
            if arg.type == "identifier":
                for fn in assigned.choices(arg):
                    yield fn, name, line
                continue
            through = fnptrs.field_root(arg, types, scope)
            if through is not None:
                yield through, name, line

    def _poll_op(self, callee: ts.Node, name: str, scope: int) -> Call | None:
        """`read_poll_timeout(my_rd32, val, cond, ...)`: a call of my_rd32, in a loop (the
        flow record says so: cfront/flows.py); an accessor as the op is a reference already."""
        call = callee.parent
        args = call.child_by_field_name("arguments") if call is not None else None
        values = [a for a in args.named_children if a.type != "comment"] if args else []
        index = flows.POLL_OPS[name][0]
        if index >= len(values) or values[index].type != "identifier":
            return None
        op = values[index]
        if _text(op) in self.interesting:
            return None
        row, col = op.start_point
        return Call(_text(op), row + 1, col + 1, scope)

    def _installed(self, fields: list[ts.Node], values: list[ts.Node]
                   ) -> Iterator[tuple[str, str, int]]:
        """`.ndo_start_xmit = fn` in an ops table -> fn."""
        by_pair = {v.parent.id: v for v in values if v.parent is not None}
        for field in fields:
            pair = field.parent.parent if field.parent is not None else None
            name = _text(field)
            if pair is None or name not in self.hot_fields:
                continue
            struct = _initialized_struct(pair)
            if struct is not None and name in self.hot_structs and \
                    struct != self.hot_structs[name]:
                continue  # `.poll` of a file_operations
            value = by_pair.get(pair.id)
            if value is not None:
                yield _text(value), "." + name, value.start_point[0] + 1

    # -- functions -------------------------------------------------------------------------

    def _function_scopes(self, nodes: list[ts.Node]
                         ) -> tuple[list[Scope], list[int], list[int], list[ts.Node]]:
        nodes = sorted(nodes, key=lambda n: n.start_byte)
        scopes: list[Scope] = []
        starts: list[int] = []
        ends: list[int] = []
        kept: list[ts.Node] = []
        for node in nodes:
            name = _function_name(node)
            if name is None:
                continue
            spec = _specifiers(node)
            scopes.append(Scope(
                name=name, kind="function", line=node.start_point[0] + 1,
                end_line=node.end_point[0] + 1, static="static" in spec,
                inline=bool(spec & {"inline", "__inline", "__inline__"}),
                has_error=node.has_error))
            starts.append(node.start_byte)
            ends.append(node.end_byte)
            kept.append(node)
        return scopes, starts, ends, kept

    @staticmethod
    def _scope_at(starts: list[int], ends: list[int], offset: int) -> int:
        i = bisect.bisect_right(starts, offset) - 1
        return i if i >= 0 and offset < ends[i] else -1

    def _interesting_uses(self, clean: bytes, root: ts.Node, directives: Directives,
                          starts: list[int], ends: list[int], calls: list[Call],
                          references: list[Call], ref_nodes: list[ts.Node]) -> None:
        """Catalogued names outside well-formed calls: values, and calls in broken code.

        The names are found by the byte scanner and looked up in the tree: far cheaper than a
        query with a 150-name predicate, which walks the whole tree once more.
        """
        in_scope = DeclaredNames(root)
        for start, end, _ in self.scanner.occurrences(clean):
            if directives.contains(start):
                continue
            node = root.named_descendant_for_byte_range(start, end)
            if node is None or node.type != "identifier" or node.end_byte != end:
                continue  # in a comment, a string, a macro body (lexed separately), ...
            parent = node.parent
            if parent is None:
                continue
            if parent.type == "call_expression" and parent.child_by_field_name("function") == node:
                continue  # already a call from the definitions query
            if parent.type in _DECLARING_PARENTS and parent.type != "init_declarator":
                continue
            if _names_a_member(node, parent):
                continue
            declared = parent.child_by_field_name("declarator")
            if parent.type == "init_declarator" and declared == node:
                continue
            row, col = node.start_point
            record = Call(_text(node), row + 1, col + 1,
                          self._scope_at(starts, ends, node.start_byte))
            if _is_call_in_disguise(node, parent):
                calls.append(record)
            elif not in_scope.declares(node, record.name):  # a local `inl` is no accessor
                references.append(record)
                ref_nodes.append(node)

    # -- macros ----------------------------------------------------------------------------

    def _macro_scopes(self, clean: bytes, macros: list[MacroDef], directives: Directives,
                      first_index: int, calls: list[Call], references: list[Call],
                      flow_records: list[flows.Flow], selectors: list[flows.Selectors],
                      invocations: Invocations,
                      field_calls: list[fnptrs.Indirect]) -> list[Scope]:
        scopes: list[Scope] = []
        line, counted = 1, 0  # newlines are counted incrementally: macros come in file order
        for macro in macros:
            line += clean.count(b"\n", counted, macro.start)
            counted = macro.start
            index = first_index + len(scopes)
            end_line = line + clean.count(b"\n", macro.start, macro.end)
            selectors.append((index, flows.macro_selectors(macro.params)))
            scopes.append(Scope(
                name=macro.name, kind="object-macro" if macro.params is None else "macro",
                line=line, end_line=end_line, params=macro.params or ()))
            if not lexer.may_hold_identifier(macro.body):
                continue  # `#define REG_CTRL 0x04`, nine macros in ten: no use, flow or paste
            body_line, body_col = self._body_position(clean, macro, line)
            # `#define readl readl` announces an accessor; it is not a use of it.
            skip = set(macro.params or ()) | {macro.name}
            self._lex_uses(macro.body, (body_line - 1, body_col - 1), index, skip,
                           calls, references, active=True)
            flow_records.extend(flows.macro_flows(
                index, macro.params, macro.body, self.interesting,
                frozenset(skip) | _C_KEYWORDS, (body_line, body_col),
                field_calls if macro.params is not None else None))
            for offset, name in expand_pasted(clean, macro, directives, self.interesting,
                                              invocations):
                at_line, at_col = lexer.position(macro.body, offset, body_line, body_col)
                calls.append(Call(name, at_line, at_col, index))
        return scopes

    @staticmethod
    def _body_position(clean: bytes, macro: MacroDef, line: int) -> tuple[int, int]:
        """1-based line and column where the macro's body starts."""
        head = clean[macro.start:macro.body_start]
        newlines = head.count(b"\n")
        if newlines == 0:
            return line, macro.body_start - macro.start + 1
        return line + newlines, len(head) - head.rfind(b"\n")

    def _lex_uses(self, text: bytes, start: tuple[int, int], scope: int, params: set[str],
                  calls: list[Call], references: list[Call], active: bool) -> None:
        # Positions are counted on from the previous use (uses come in text order).
        base, line, col = 0, start[0] + 1, start[1] + 1
        for use in lexer.identifiers(text):
            if (use.member or use.pasted or use.declared or use.name in params
                    or use.name in _C_KEYWORDS):
                continue
            if not use.called and use.name not in self.interesting:
                continue
            line, col = lexer.position(text, use.offset, line, col, base)
            base = use.offset
            record = Call(use.name, line, col, scope, active)
            (calls if use.called else references).append(record)

    def _inactive_uses(self, data: bytes, dead: tuple[Inactive, ...], calls: list[Call],
                       references: list[Call]) -> None:
        """Catalogued names in `#if 0` blocks: kept, marked inactive, never counted."""
        line, counted = 0, 0  # newlines before the range, counted on: ranges are sorted
        for r in dead:
            # Nested directives are blanked so `#ifdef X` does not read as a type before a call.
            text = _DIRECTIVE_LINE_RE.sub(lambda m: b" " * len(m.group(0)), data[r.start:r.end])
            line += data.count(b"\n", counted, r.start)
            counted = r.start
            col = r.start - (data.rfind(b"\n", 0, r.start) + 1)
            found_calls: list[Call] = []
            found_refs: list[Call] = []
            self._lex_uses(text, (line, col), -1, set(), found_calls, found_refs, active=False)
            calls.extend(c for c in found_calls if c.name in self.interesting)
            references.extend(found_refs)

    @staticmethod
    def _with_callees(scopes: list[Scope], calls: list[Call],
                      references: list[Call]) -> list[Scope]:
        callees: dict[int, set[str]] = {}
        values: dict[int, set[str]] = {}
        for c in calls:
            if c.scope >= 0 and c.active:
                callees.setdefault(c.scope, set()).add(c.name)
        for r in references:
            if r.scope >= 0 and r.active:
                values.setdefault(r.scope, set()).add(r.name)
        return [
            Scope(s.name, s.kind, s.line, s.end_line, s.static, s.inline, s.params,
                  tuple(sorted(callees.get(i, ()))), tuple(sorted(values.get(i, ()))),
                  s.has_error)
            for i, s in enumerate(scopes)
        ]


# -- merging the produced functions into the file's facts --------------------------------------

Deref = tuple[int, int, int, str, str, bool]


def _without_templates(produced: pasted.Pasted, first_macro: int, scopes: list[Scope],
                       calls: list[Call], references: list[Call], derefs: tuple[Deref, ...]
                       ) -> tuple[list[Call], list[Call], tuple[Deref, ...]]:
    """The accesses written in the body of a macro that was instantiated, and is invoked
    nowhere else, are made at its invocations (each its own function, with its own
    arguments): its body is a template, and counting it too would count them twice. An
    invocation that tree-sitter read as a file-scope call defines, it calls nothing."""
    instantiated = {i.macro for i in produced.instances}
    templates = {i for i in range(first_macro, len(scopes))
                 if scopes[i].kind == "macro" and scopes[i].name in produced.templates}
    calls = [c for c in calls if c.scope >= 0 or c.name not in instantiated]
    if not templates:
        return calls, references, derefs
    return ([c for c in calls if c.scope not in templates],
            [r for r in references if r.scope not in templates],
            tuple(d for d in derefs if d[2] not in templates))


def _definition_macros(macros: Iterable[MacroDef]
                       ) -> tuple[set[str], tuple[tuple[str, tuple[str, ...]], ...]]:
    """The file's macros that paste, stringify or declare with a parameter, and the others
    that pass a parameter on to macros they call (their forwards decide over the whole scan:
    analysis/definitions.py)."""
    defining: set[str] = set()
    forwards: dict[str, tuple[str, ...]] = {}
    for m in macros:
        if defines_with_params(m):
            defining.add(m.name)
        elif (called := forwarded_calls(m)):
            forwards.setdefault(m.name, called)
    return defining, tuple(sorted((n, c) for n, c in forwards.items() if n not in defining))


# Equal dependency tuples, one object each per file: most calls pass the same few shapes
# (`((), (0,), ())`), and a record pickles a shared object once. On the whole tree the flows'
# dependencies were 154 MB in memory as separate objects, 41 MB shared.
def _shared_deps(records: Iterable[flows.Flow]) -> tuple[flows.Flow, ...]:
    table: dict[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]] = {}
    return tuple((scope, callee, line, column, table.setdefault(deps, deps), loop, value)
                 for scope, callee, line, column, deps, loop, value in records)


def _shared_selectors(selectors: Iterable[flows.Selectors]) -> tuple[flows.Selectors, ...]:
    table: dict[tuple[int, ...], tuple[int, ...]] = {}
    return tuple((index, table.setdefault(selects, selects)) for index, selects in selectors)
