"""One file's bytes -> FileFacts, with tree-sitter-c for code and the lexer for macro bodies."""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import tree_sitter as ts
import tree_sitter_c as tsc

from mmioscan.cfront import lexer
from mmioscan.cfront.prefilter import NameScanner
from mmioscan.cfront.preprocess import (
    Inactive,
    blank_annotations,
    blank_define_comments,
    blank_ranges,
    inactive_ranges,
)
from mmioscan.model import Call, FileFacts, Problem, Scope

_DEFS_QUERY = """
(function_definition) @function
(preproc_function_def name: (identifier) @macro_name) @macro
(preproc_def name: (identifier) @object_macro_name) @object_macro
(call_expression function: (identifier) @callee)
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

# Parents under which an identifier declares or tests a name instead of using it as a value.
_DECLARING_PARENTS = frozenset({
    "function_declarator", "preproc_def", "preproc_function_def", "preproc_ifdef",
    "preproc_defined", "init_declarator", "declaration", "parameter_declaration",
    "pointer_declarator", "array_declarator", "parenthesized_declarator", "preproc_params",
    "labeled_statement", "goto_statement", "enumerator", "field_declaration",
})


def _text(node: ts.Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _function_name(node: ts.Node) -> str | None:
    """Name of a function_definition, looking through pointer and parenthesised declarators."""
    decl = node.child_by_field_name("declarator")
    while decl is not None and decl.type != "function_declarator":
        decl = decl.child_by_field_name("declarator")
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


def _is_call_in_disguise(node: ts.Node, parent: ts.Node) -> bool:
    """`(readl)(p)`, or a call that error recovery split from its `(`."""
    if parent.type == "parenthesized_expression":
        outer = parent.parent
        return (outer is not None and outer.type == "call_expression"
                and outer.child_by_field_name("function") == parent)
    sibling = node.next_sibling
    return parent.type == "ERROR" and sibling is not None and sibling.type == "("


def _specifiers(node: ts.Node) -> set[str]:
    return {_text(c) for c in node.children if c.type == "storage_class_specifier"}


class Extractor:
    """Builds FileFacts; one per process (the parser and queries are reused across files)."""

    def __init__(self, interesting: Iterable[str]) -> None:
        self.interesting = frozenset(interesting)
        self.language = ts.Language(tsc.language())
        self.parser = ts.Parser(self.language)
        self.defs_query = ts.Query(self.language, _DEFS_QUERY)
        self.scanner = NameScanner(self.interesting)

    def extract(self, path: str, digest: str, data: bytes) -> FileFacts:
        problems: list[Problem] = []
        data_nc = blank_define_comments(data)
        dead = inactive_ranges(data_nc)
        clean = blank_annotations(blank_ranges(data_nc, dead))
        tree = self.parser.parse(clean)
        root = tree.root_node
        caps = ts.QueryCursor(self.defs_query).captures(root)
        scopes, starts, ends = self._function_scopes(caps.get("function", []))
        calls: list[Call] = []
        references: list[Call] = []
        for node in caps.get("callee", []):
            row, col = node.start_point
            calls.append(Call(_text(node), row + 1, col + 1,
                              self._scope_at(starts, ends, node.start_byte)))
        self._interesting_uses(clean, root, starts, ends, calls, references)
        macro_scopes = self._macro_scopes(caps, len(scopes), calls, references)
        scopes.extend(macro_scopes)
        self._inactive_uses(data, dead, calls, references)
        errors = len(caps.get("error", []))
        if errors:
            problems.append(Problem(path, f"parsed with {errors} syntax error node(s)"))
        scopes = self._with_callees(scopes, calls, references)
        calls.sort(key=lambda c: (c.line, c.column, c.name))
        references.sort(key=lambda c: (c.line, c.column, c.name))
        return FileFacts(path=path, digest=digest, size=len(data), parsed=True,
                         error_nodes=errors, scopes=tuple(scopes), calls=tuple(calls),
                         references=tuple(references), problems=tuple(problems))

    # -- functions -------------------------------------------------------------------------

    def _function_scopes(self, nodes: list[ts.Node]) -> tuple[list[Scope], list[int], list[int]]:
        nodes = sorted(nodes, key=lambda n: n.start_byte)
        scopes: list[Scope] = []
        starts: list[int] = []
        ends: list[int] = []
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
        return scopes, starts, ends

    @staticmethod
    def _scope_at(starts: list[int], ends: list[int], offset: int) -> int:
        i = bisect.bisect_right(starts, offset) - 1
        return i if i >= 0 and offset < ends[i] else -1

    def _interesting_uses(self, clean: bytes, root: ts.Node, starts: list[int], ends: list[int],
                          calls: list[Call], references: list[Call]) -> None:
        """Catalogued names outside well-formed calls: values, and calls in broken code.

        The names are found by the byte scanner and looked up in the tree: far cheaper than a
        query with a 150-name predicate, which walks the whole tree once more.
        """
        for start, end, _ in self.scanner.occurrences(clean):
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
            declared = parent.child_by_field_name("declarator")
            if parent.type == "init_declarator" and declared == node:
                continue
            row, col = node.start_point
            record = Call(_text(node), row + 1, col + 1,
                          self._scope_at(starts, ends, node.start_byte))
            (calls if _is_call_in_disguise(node, parent) else references).append(record)

    # -- macros ----------------------------------------------------------------------------

    def _macro_scopes(self, caps: dict[str, list[ts.Node]], first_index: int,
                      calls: list[Call], references: list[Call]) -> list[Scope]:
        defs = [(n, "macro") for n in caps.get("macro", [])]
        defs += [(n, "object-macro") for n in caps.get("object_macro", [])]
        defs.sort(key=lambda d: d[0].start_byte)
        scopes: list[Scope] = []
        for node, kind in defs:
            name_node = node.child_by_field_name("name")
            if name_node is None:
                continue
            params_node = node.child_by_field_name("parameters")
            params = tuple(_text(p) for p in params_node.named_children) if params_node else ()
            index = first_index + len(scopes)
            body = node.child_by_field_name("value")
            if body is not None:
                # `#define readl readl` announces an accessor; it is not a use of it.
                skip = set(params) | {_text(name_node)}
                self._lex_uses(body.text or b"", body.start_point, index, skip,
                               calls, references, active=True)
            scopes.append(Scope(
                name=_text(name_node), kind="macro" if kind == "macro" else "object-macro",
                line=node.start_point[0] + 1, end_line=_end_line(node), params=params))
        return scopes

    def _lex_uses(self, text: bytes, start: tuple[int, int], scope: int, params: set[str],
                  calls: list[Call], references: list[Call], active: bool) -> None:
        for use in lexer.identifiers(text):
            if use.member or use.pasted or use.name in params or use.name in _C_KEYWORDS:
                continue
            if not use.called and use.name not in self.interesting:
                continue
            line, col = lexer.position(text, use.offset, start[0] + 1, start[1] + 1)
            record = Call(use.name, line, col, scope, active)
            (calls if use.called else references).append(record)

    def _inactive_uses(self, data: bytes, dead: tuple[Inactive, ...], calls: list[Call],
                       references: list[Call]) -> None:
        """Catalogued names in `#if 0` blocks: kept, marked inactive, never counted."""
        for r in dead:
            text = data[r.start:r.end]
            line = data.count(b"\n", 0, r.start)
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
