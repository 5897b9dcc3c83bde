"""The few libclang functions the Python bindings (PyPI `libclang` 18) do not wrap.

- `file_position`: clang_getFileLocation, the position in a file a token came from: where a
  macro argument was written, or the macro invocation for a token of a macro's body (the
  bindings only give the expansion location, which puts macro arguments at the invocation);
- operator kinds of unary and binary operators (clang_getCursor*OperatorKind, libclang 17);
- the ranges the preprocessor skipped in a file (#if blocks that are off under the .config);
- whether a function is inline.
"""

from __future__ import annotations

import ctypes
from functools import cache

from clang import cindex as ci

_lib_ready = False


class _RangeList(ctypes.Structure):
    _fields_ = [("count", ctypes.c_uint), ("ranges", ctypes.POINTER(ci.SourceRange))]


def _lib() -> ctypes.CDLL:
    global _lib_ready
    lib: ctypes.CDLL = ci.conf.lib
    if not _lib_ready:
        lib.clang_getFileLocation.argtypes = [
            ci.SourceLocation, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_uint),
            ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint)]
        lib.clang_getFileLocation.restype = None
        lib.clang_getCursorBinaryOperatorKind.argtypes = [ci.Cursor]
        lib.clang_getCursorBinaryOperatorKind.restype = ctypes.c_int
        lib.clang_getCursorUnaryOperatorKind.argtypes = [ci.Cursor]
        lib.clang_getCursorUnaryOperatorKind.restype = ctypes.c_int
        lib.clang_getBinaryOperatorKindSpelling.argtypes = [ctypes.c_int]
        lib.clang_getBinaryOperatorKindSpelling.restype = ci._CXString
        lib.clang_getUnaryOperatorKindSpelling.argtypes = [ctypes.c_int]
        lib.clang_getUnaryOperatorKindSpelling.restype = ci._CXString
        lib.clang_getSkippedRanges.argtypes = [ci.TranslationUnit, ctypes.c_void_p]
        lib.clang_getSkippedRanges.restype = ctypes.POINTER(_RangeList)
        lib.clang_disposeSourceRangeList.argtypes = [ctypes.POINTER(_RangeList)]
        lib.clang_disposeSourceRangeList.restype = None
        lib.clang_Cursor_isFunctionInlined.argtypes = [ci.Cursor]
        lib.clang_Cursor_isFunctionInlined.restype = ctypes.c_uint
        lib.clang_getFile.argtypes = [ci.TranslationUnit, ctypes.c_char_p]
        lib.clang_getFile.restype = ctypes.c_void_p
        _lib_ready = True
    return lib


def file_position(location: ci.SourceLocation) -> tuple[int, int, int, int]:
    """(file handle, line, column, offset) of the file position a location comes from."""
    handle = ctypes.c_void_p()
    line, column, offset = ctypes.c_uint(), ctypes.c_uint(), ctypes.c_uint()
    _lib().clang_getFileLocation(location, ctypes.byref(handle), ctypes.byref(line),
                                 ctypes.byref(column), ctypes.byref(offset))
    return handle.value or 0, line.value, column.value, offset.value


def file_handle(tu: ci.TranslationUnit, path: str) -> int:
    return int(_lib().clang_getFile(tu, path.encode()) or 0)


@cache
def _binary_spelling(kind: int) -> str:
    return str(ci._CXString.from_result(_lib().clang_getBinaryOperatorKindSpelling(kind)))


@cache
def _unary_spelling(kind: int) -> str:
    return str(ci._CXString.from_result(_lib().clang_getUnaryOperatorKindSpelling(kind)))


def binary_operator(cursor: ci.Cursor) -> str:
    """`=`, `+=`, `+`, ... of a BINARY_OPERATOR or COMPOUND_ASSIGNMENT_OPERATOR cursor."""
    return _binary_spelling(_lib().clang_getCursorBinaryOperatorKind(cursor))


def unary_operator(cursor: ci.Cursor) -> str:
    """`*`, `&`, `++`, `--`, `-`, `!`, `__extension__`, ... of a UNARY_OPERATOR cursor."""
    return _unary_spelling(_lib().clang_getCursorUnaryOperatorKind(cursor))


def skipped_lines(tu: ci.TranslationUnit, handle: int) -> tuple[tuple[int, int], ...]:
    """(first line, last line) of every block the preprocessor skipped in one file."""
    if not handle:
        return ()
    found = _lib().clang_getSkippedRanges(tu, handle)
    if not found:
        return ()
    try:
        ranges = found.contents
        return tuple((ranges.ranges[i].start.line, ranges.ranges[i].end.line)
                     for i in range(ranges.count))
    finally:
        _lib().clang_disposeSourceRangeList(found)


def is_inline(cursor: ci.Cursor) -> bool:
    return bool(_lib().clang_Cursor_isFunctionInlined(cursor))


_CONTINUE, _RECURSE = 1, 2


def main_file_declarations(tu: ci.TranslationUnit, kinds: frozenset[int]) -> list[ci.Cursor]:
    """Top-level cursors of the given kind ids whose location is in the main file: one
    visit, without the bindings' per-child checks (a kernel file has ~50,000 top-level
    cursors, nearly all from headers)."""
    lib = _lib()
    found: list[ci.Cursor] = []

    main = file_handle(tu, tu.spelling)

    def visit(child: ci.Cursor, _parent: ci.Cursor, _data: object) -> int:
        # The file position, not clang_Location_isFromMainFile: a declaration a macro makes
        # (module_param, DEFINE_*) is located in the macro's body.
        if child._kind_id in kinds and file_position(
                lib.clang_getCursorLocation(child))[0] == main:
            child._tu = tu
            found.append(child)
        return _CONTINUE

    lib.clang_visitChildren(tu.cursor, ci.callbacks["cursor_visit"](visit), [])
    return found


def preorder(root: ci.Cursor) -> tuple[list[ci.Cursor], list[int]]:
    """Every cursor under root (itself first) in pre-order, with its parent's index."""
    tu = root._tu
    cursors: list[ci.Cursor] = [root]
    parents: list[int] = [-1]
    index_of: dict[bytes, int] = {bytes(root): 0}

    def visit(child: ci.Cursor, parent: ci.Cursor, _data: object) -> int:
        child._tu = tu
        index_of[bytes(child)] = len(cursors)
        parents.append(index_of.get(bytes(parent), 0))
        cursors.append(child)
        return _RECURSE

    _lib().clang_visitChildren(root, ci.callbacks["cursor_visit"](visit), [])
    return cursors, parents
