"""One built .c file -> FileFacts, with libclang over the flags Kbuild gives it (the precise
engine; docs/precise.md). The same contract as the fast engine (cfront/extract.py):

- scopes: the functions the file defines (after preprocessing: a function a macro generates
  is there, at the macro's invocation); no macro scopes, macros are expanded;
- calls: every call of a named function (or function pointer variable) after macro
  expansion, at its spelling in the file: where it is written, or, for a call a macro's body
  makes, the macro invocation in the file. A call inside the expansion of a catalogued macro
  (`readl_poll_timeout` expands to calls of `readl`, `ktime_get`, ...) is that macro's call:
  the site is the catalogued name, as the source reads;
- references: catalogued functions used as values (`.read = ioread32`);
- roots: callbacks registered by call (`request_irq`) or installed in a hot ops field, by
  initializer or assignment; fnptrs: every function stored in a function-pointer field, with
  the struct's type;
- derefs: raw `__iomem` dereferences from types (clang/derefs.py);
- inactive: catalogued names in blocks the preprocessor skipped (`#if 0`, and `#ifdef` of an
  option the .config turns off), kept as inactive, like the fast engine's `#if 0`;
- depends: every header the parse read, with its size and mtime, so the cache notices a
  changed header (facts/runner.py).

Headers are no translation units: `.h` files (in scope or read as context) go to the fast
engine, whose macros and inline functions the call graph needs. A `.c` file the .config does
not build is not parsed (wrong flags would break it): its facts say so.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from clang import cindex as ci

from mmioscan.cfront.depth import TREE_SITTER_DEPTH
from mmioscan.cfront.extract import Extractor
from mmioscan.cfront.flows import Flow
from mmioscan.cfront.prefilter import NameScanner, include_targets
from mmioscan.clang import native
from mmioscan.clang.ast import PAREN, K, Tree
from mmioscan.clang.derefs import Derefs
from mmioscan.core.model import FileFacts, Problem, Scope
from mmioscan.core.ruleset import Regmap, root_how

NOT_BUILT = "not built by this .config: not parsed (clang engine)"
_REF_STRIP = frozenset({PAREN, K.UNEXPOSED_EXPR, K.CSTYLE_CAST_EXPR})
_WALKED = frozenset({K.FUNCTION_DECL.value, K.VAR_DECL.value})
_ERROR = ci.Diagnostic.Error
_NEWLINE = re.compile(rb"\n")
# The preprocessing record is what clang_getSkippedRanges reads.
_OPTIONS = (ci.TranslationUnit.PARSE_DETAILED_PROCESSING_RECORD
            | ci.TranslationUnit.PARSE_INCOMPLETE)


class ClangExtractor:
    """Builds FileFacts with libclang; one per worker process (the index is reused)."""


    def __init__(self, names: Iterable[str], registrations: dict[str, tuple[int, ...]],
                 hot_fields: Iterable[str], tree: str,
                 flags: Iterable[tuple[str, tuple[str, ...]]], regmap: Regmap | None = None,
                 max_depth: int | None = None,
                 hot_structs: Mapping[str, str] | None = None) -> None:
        self.interesting = frozenset(names)
        self.registrations = registrations
        self.hot_fields = frozenset(hot_fields)
        self.hot_structs = dict(hot_structs or {})  # field -> its ops struct (as the fast one)
        self.tree = Path(tree)
        self.flags = dict(flags)
        self.fast = Extractor(self.interesting, registrations, self.hot_fields, regmap,
                              TREE_SITTER_DEPTH if max_depth is None else max_depth,
                              hot_structs=self.hot_structs)
        self.scanner = NameScanner(self.interesting)
        self.index = ci.Index.create()

    @staticmethod
    def prefiltered(path: str) -> bool:
        """Every .c file is parsed whatever names it mentions; headers, read by the fast
        engine, only when the byte prefilter finds a reason (as in a fast scan)."""
        return not path.endswith(".c")

    def extract(self, path: str, digest: str, data: bytes) -> FileFacts:
        if not path.endswith(".c"):
            return self.fast.extract(path, digest, data)
        args = self.flags.get(path)
        if args is None:
            return FileFacts(path, digest, len(data), parsed=False, engine="clang",
                             problems=(Problem(path, NOT_BUILT),),
                             includes=include_targets(data))
        main = str(self.tree / path)
        try:
            tu = self.index.parse(main, args=list(args), unsaved_files=[(main, data)],
                                  options=_OPTIONS)
        except ci.TranslationUnitLoadError as exc:
            return FileFacts(path, digest, len(data), parsed=False, engine="clang",
                             problems=(Problem(path, f"clang could not parse it: {exc}"),),
                             includes=include_targets(data))
        unit = _Unit(self, tu, path, main, digest, data)
        facts = unit.facts()
        return _with_text_facts(facts, self.fast.extract(path, digest, data), data,
                                unit.expanded)


def _with_text_facts(facts: FileFacts, text: FileFacts, data: bytes = b"",
                     expanded: dict[tuple[str, int, int], list[set[int]]] | None = None
                     ) -> FileFacts:
    """What the precise engine takes from the fast engine's reading of the same bytes: facts
    about the text, by name or file position (exports, macros that define accessors, regmap
    maps, uses and configs), and the data-flow records of the funnel rule (cfront/flows.py),
    moved from the fast engine's function scopes to clang's (same name and first line). A
    call clang sees under the same name at the same place keeps its flow; a call a macro
    invoked there expands to gets, per argument, the dependencies of the macro arguments its
    tokens are written in."""
    moved = {}
    by_key = {(s.name, s.line): j for j, s in enumerate(facts.scopes)}
    for i, fast_scope in enumerate(text.scopes):
        j = (by_key.get((fast_scope.name, fast_scope.line)) if fast_scope.kind == "function"
             else None)
        if j is not None:
            moved[i] = j
    flows: list[Flow] = [(moved[f[0]], *f[1:]) for f in text.flows if f[0] in moved]
    made: dict[tuple[int, int, int], list[str]] = {}
    for name, line, column, scope, _ in facts.calls:
        if (name, line, column) in (expanded or {}):
            made.setdefault((scope, line, column), []).append(name)
    starts = _line_starts(data) if made else []
    for where, name, line, column, deps, loop, value in list(flows):
        for other in made.get((where, line, column), ()):
            if other == name or (expanded is None):
                continue
            spans = _macro_arguments(data, starts[line - 1] + column - 1)
            per_arg = tuple(
                tuple(sorted({d for k, (lo, hi) in enumerate(spans) if k < len(deps)
                              and any(lo <= o < hi for o in offsets) for d in deps[k]}))
                for offsets in expanded[(other, line, column)])
            flows.append((where, other, line, column, per_arg, loop, value))
    return dataclasses.replace(
        facts, exports=text.exports, definition_macros=text.definition_macros,
        macro_forwards=text.macro_forwards,
        regmap_maps=text.regmap_maps, regmap_uses=text.regmap_uses,
        regmap_configs=text.regmap_configs,
        selectors=tuple((moved[i], sel) for i, sel in text.selectors if i in moved),
        flows=tuple(sorted(flows, key=lambda f: (f[0], f[2], f[3], f[1]))))


def _line_starts(data: bytes) -> list[int]:
    return [0, *(m.end() for m in _NEWLINE.finditer(data))]


def _macro_arguments(data: bytes, offset: int) -> list[tuple[int, int]]:
    """(start, end) offsets of the arguments of the macro invoked at offset (its name)."""
    i = offset
    while i < len(data) and (data[i:i + 1].isalnum() or data[i:i + 1] == b"_"):
        i += 1
    while i < len(data) and data[i:i + 1] in (b" ", b"\t", b"\n", b"\\"):
        i += 1
    if data[i:i + 1] != b"(":
        return []
    spans, depth, start = [], 0, i + 1
    for j in range(i, min(len(data), i + 20000)):
        c = data[j:j + 1]
        if c in (b"(", b"[", b"{"):
            depth += 1
        elif c in (b")", b"]", b"}"):
            depth -= 1
            if depth == 0:
                spans.append((start, j))
                return spans
        elif c == b"," and depth == 1:
            spans.append((start, j))
            start = j + 1
    return spans


def _subtree(tree: Tree, index: int) -> list[int]:
    found, stack = [], [index]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(tree.children[node])
    return found


class _Unit:
    """The facts of one translation unit's main file."""

    def __init__(self, ex: ClangExtractor, tu: ci.TranslationUnit, path: str, main: str,
                 digest: str, data: bytes) -> None:
        self.ex, self.tu, self.path, self.main, self.digest, self.data = (
            ex, tu, path, main, digest, data)
        self.handle = native.file_handle(tu, main)
        # Catalogued names as written in the file, by offset: a call made by the expansion of
        # a catalogued macro is located at the macro's name and takes that name.
        self.written = {start: name for start, _, name in ex.scanner.occurrences(data)}
        self.scopes: list[Scope] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.calls: set[tuple[str, int, int, int, bool]] = set()
        self.references: set[tuple[str, int, int, int, bool]] = set()
        self.roots: set[tuple[str, str, int]] = set()
        self.fnptrs: set[tuple[str, str, str, int]] = set()
        self.derefs: dict[int, tuple[int, int, int, str, str, bool]] = {}
        self.type_levels: dict[str, int] = {}
        # (callee, line, column) of a call a macro's expansion made -> per argument, the file
        # offsets its tokens come from (inside the macro's arguments, or the invocation)
        self.expanded: dict[tuple[str, int, int], list[set[int]]] = {}

    def facts(self) -> FileFacts:
        decls = native.main_file_declarations(self.tu, _WALKED)
        trees = [Tree(c) for c in decls]
        self._functions(trees)
        for tree in trees:
            self._walk(tree)
        skipped = native.skipped_lines(self.tu, self.handle)
        self._inactive(skipped)
        errors, problems, error_lines = self._diagnostics()
        scopes = self._with_callees(error_lines)
        order = lambda c: (c[1], c[2], c[0])  # noqa: E731
        return FileFacts(
            path=self.path, digest=self.digest, size=len(self.data), parsed=True,
            error_nodes=errors, scopes=tuple(scopes),
            calls=tuple(sorted(self.calls, key=order)),
            references=tuple(sorted(self.references, key=order)),
            problems=tuple(problems), includes=include_targets(self.data),
            roots=tuple(sorted(self.roots, key=lambda r: (r[2], r[0], r[1]))),
            derefs=tuple(self.derefs[k] for k in sorted(self.derefs)),
            fnptrs=tuple(sorted(self.fnptrs, key=lambda f: (f[3], f[0], f[1], f[2]))),
            depends=self._depends(), skipped=skipped, engine="clang")

    # -- functions ---------------------------------------------------------------------------

    def _functions(self, trees: list[Tree]) -> None:
        found = []
        for tree in trees:
            cursor = tree.cursors[0]
            if tree.kinds[0] != K.FUNCTION_DECL or not cursor.is_definition():
                continue
            _, line, _, start = tree.start(0)
            _, end_line, _, end = native.file_position(cursor.extent.end)
            found.append((start, max(end, start + 1), Scope(
                name=cursor.spelling, kind="function", line=line, end_line=max(end_line, line),
                static=cursor.storage_class == ci.StorageClass.STATIC,
                inline=native.is_inline(cursor))))
        found.sort(key=lambda f: (f[0], -f[1]))
        for start, end, scope in found:
            self.starts.append(start)
            self.ends.append(end)
            self.scopes.append(scope)

    def _scope_at(self, offset: int) -> int:
        i = bisect.bisect_right(self.starts, offset) - 1
        while i >= 0 and offset >= self.ends[i]:
            i -= 1  # nested ranges cannot happen in C, but a macro-made function is tiny
        return i

    # -- calls, references, function pointers ----------------------------------------------

    def _site(self, tree: Tree, index: int, name: str) -> tuple[str, int, int, int] | None:
        """(name, line, column, offset) where a use of `name` is in the main file."""
        handle, line, column, offset = tree.position(index)
        if handle != self.handle:
            return None
        written = self.written.get(offset)
        if written is not None and written != name:
            name = written  # made by the expansion of the catalogued macro written here
        return name, line, column, offset

    def _walk(self, tree: Tree) -> None:
        derefs = Derefs(tree, self.type_levels)
        callees: set[int] = set()
        for index, kind in enumerate(tree.kinds):
            if kind == K.CALL_EXPR:
                callee = tree.strip(tree.child(index, 0))
                if callee >= 0 and tree.kinds[callee] == K.DECL_REF_EXPR:
                    callees.add(callee)
                    self._call(tree, index, callee)
            elif kind == K.DECL_REF_EXPR and index not in callees:
                self._reference(tree, index)
            elif kind == K.INIT_LIST_EXPR:
                self._initializers(tree, index)
            elif kind == K.BINARY_OPERATOR and native.binary_operator(tree.cursors[index]) == "=":
                self._assignment(tree, index)
        for index, access, form in derefs.found():
            handle, line, column, offset = tree.start(index)
            if handle != self.handle or offset in self.written:
                continue  # the body of a catalogued macro: how it is implemented
            self.derefs.setdefault(offset, (line, column, self._scope_at(offset), access,
                                            form, True))

    def _call(self, tree: Tree, call: int, callee: int) -> None:
        site = self._site(tree, callee, tree.cursors[callee].spelling)
        if site is None:
            return
        name, line, column, offset = site
        self.calls.add((name, line, column, self._scope_at(offset), True))
        if self.data[offset:offset + len(name)] != name.encode():
            # made by the macro invoked here: where each argument's parts are written
            self.expanded[(name, line, column)] = [
                {tree.position(k)[3] for k in _subtree(tree, arg)} - {offset}
                for arg in tree.children[call][1:]]
        positions = self.ex.registrations.get(name)
        if positions:
            args = tree.children[call][1:]
            for order, n in enumerate(positions):
                if n < len(args):
                    function = self._function_value(tree, args[n])
                    if function is not None:  # a later callback: name[n] (cfront/extract.py)
                        how = root_how(name, n) if order else name
                        self.roots.add((function[0], how, function[1]))

    def _reference(self, tree: Tree, index: int) -> None:
        referenced = tree.cursors[index].referenced
        if referenced is None or referenced.kind != K.FUNCTION_DECL:
            return
        site = self._site(tree, index, tree.cursors[index].spelling)
        if site is None or site[0] not in self.ex.interesting:
            return
        name, line, column, offset = site
        self.references.add((name, line, column, self._scope_at(offset), True))

    def _function_value(self, tree: Tree, index: int) -> tuple[str, int] | None:
        """(function, line) when the expression is a function (`fn`, `&fn`, `(cast)fn`)."""
        node = tree.strip(index, _REF_STRIP)
        if node >= 0 and tree.kinds[node] == K.UNARY_OPERATOR:
            node = tree.strip(tree.child(node, 0), _REF_STRIP)
        if node < 0 or tree.kinds[node] != K.DECL_REF_EXPR:
            return None
        referenced = tree.cursors[node].referenced
        if referenced is None or referenced.kind != K.FUNCTION_DECL:
            return None
        handle, line, _, _ = tree.position(node)
        return (referenced.spelling, line) if handle == self.handle else None

    def _initializers(self, tree: Tree, index: int) -> None:
        """`.field = fn` in a struct initializer (a designator and its value)."""
        for item in tree.children[index]:
            kids = tree.children[item]
            if len(kids) < 2 or tree.kinds[kids[-2]] != K.MEMBER_REF:
                continue
            self._stored(tree, kids[-2], kids[-1])

    def _assignment(self, tree: Tree, index: int) -> None:
        """`ops->field = fn`, `ops.field = fn`."""
        left = tree.strip(tree.child(index, 0), frozenset({PAREN}))
        if left >= 0 and tree.kinds[left] == K.MEMBER_REF_EXPR:
            self._stored(tree, left, tree.child(index, 1))

    def _stored(self, tree: Tree, member: int, value: int) -> None:
        function = self._function_value(tree, value)
        if function is None:
            return
        field = tree.cursors[member].referenced
        if field is None or field.kind != K.FIELD_DECL:
            return
        parent = field.semantic_parent
        struct = parent.type.spelling if parent is not None else ""
        self.fnptrs.add((struct, field.spelling, function[0], function[1]))
        wanted = self.ex.hot_structs.get(field.spelling)
        if field.spelling in self.ex.hot_fields and (
                wanted is None or struct.removeprefix("struct ") == wanted):
            self.roots.add((function[0], "." + field.spelling, function[1]))

    # -- the rest of the file ----------------------------------------------------------------

    def _inactive(self, skipped: tuple[tuple[int, int], ...]) -> None:
        """Catalogued names in skipped blocks: inactive calls (before `(`) or references."""
        if not skipped:
            return
        data = self.data
        line_starts = _line_starts(data)
        for start, end, name in self.ex.scanner.occurrences(data):
            line = bisect.bisect_right(line_starts, start)
            if not any(first < line < last for first, last in skipped):
                continue  # the directive lines themselves are live
            column = start - line_starts[line - 1] + 1
            rest = data[end:end + 80].lstrip()
            record = (name, line, column, -1, False)
            (self.calls if rest.startswith(b"(") else self.references).add(record)

    def _diagnostics(self) -> tuple[int, list[Problem], set[int]]:
        errors = 0
        first = ""
        lines: set[int] = set()
        for diag in self.tu.diagnostics:
            if diag.severity < _ERROR:
                continue
            errors += 1
            location = diag.location
            where = location.file.name if location.file is not None else "?"
            if not first:
                shown = where[len(str(self.ex.tree)) + 1:] if where.startswith(
                    str(self.ex.tree)) else where
                first = f"{shown}:{location.line}: {diag.spelling}"
            if location.file is not None and location.file.name == self.main:
                lines.add(location.line)
        problems = [Problem(self.path, f"clang: {errors} error(s), first: {first}")] if errors \
            else []
        return errors, problems, lines

    def _with_callees(self, error_lines: set[int]) -> list[Scope]:
        callees: dict[int, set[str]] = {}
        values: dict[int, set[str]] = {}
        for name, _, _, scope, active in self.calls:
            if scope >= 0 and active:
                callees.setdefault(scope, set()).add(name)
        for name, _, _, scope, active in self.references:
            if scope >= 0 and active:
                values.setdefault(scope, set()).add(name)
        return [s._replace(callees=tuple(sorted(callees.get(i, ()))),
                           values=tuple(sorted(values.get(i, ()))),
                           has_error=any(s.line <= n <= s.end_line for n in error_lines))
                for i, s in enumerate(self.scopes)]

    def _depends(self) -> tuple[tuple[str, int, int], ...]:
        seen: dict[str, tuple[str, int, int]] = {}
        for inclusion in self.tu.get_includes():
            name = os.path.abspath(inclusion.include.name)
            if name in seen or name == self.main:
                continue
            try:
                st = os.stat(name)
            except OSError:
                continue
            seen[name] = (name, st.st_size, st.st_mtime_ns)
        return tuple(seen[n] for n in sorted(seen))


class EngineSpec(Protocol):
    """What facts/runner.py's ExtractSpec carries for this engine."""

    names: frozenset[str]
    registrations: tuple[tuple[str, tuple[int, ...]], ...]
    hot_fields: frozenset[str]
    hot_structs: tuple[tuple[str, str], ...]
    tree: str
    flags: tuple[tuple[str, tuple[str, ...]], ...]
    regmap: Regmap | None
    limits: Any  # facts/runner.py Limits: max_depth


def make(spec: EngineSpec) -> ClangExtractor:
    """The extractor of one worker process (facts/runner.py ENGINES)."""
    return ClangExtractor(spec.names, dict(spec.registrations), spec.hot_fields, spec.tree,
                          spec.flags, spec.regmap, spec.limits.max_depth,
                          dict(spec.hot_structs))
