"""IncludeIndex.first_of (analysis/includes.py) against a plain walk of the include graph:
the first candidate a file includes, its direct includes first in their order, then the
others it reaches (cycles included) by path."""

from __future__ import annotations

import posixpath

from hypothesis import given, settings
from hypothesis import strategies as st

from mmioscan.analysis.includes import IncludeIndex
from mmioscan.core.model import FileFacts

HEADERS = [f"d/h{i}.h" for i in range(8)]
SOURCES = ["d/a.c", "d/b.c"]


def _index(edges: dict[str, list[str]]) -> IncludeIndex:
    files = {path: FileFacts(path, "x", 1, parsed=False, includes=tuple(
                 f'"{posixpath.basename(h)}"' for h in edges.get(path, ())))
             for path in HEADERS + SOURCES}
    return IncludeIndex(files)


def _reference(edges: dict[str, list[str]], path: str, candidates: list[str]) -> str | None:
    direct = list(dict.fromkeys(h for h in edges.get(path, ()) if h != path))
    for header in direct:
        if header in candidates:
            return header
    seen: set[str] = set()
    todo = list(direct)
    while todo:
        header = todo.pop()
        if header not in seen:
            seen.add(header)
            todo.extend(edges.get(header, ()))
    reached = sorted(c for c in candidates if c in seen and c != path)
    return reached[0] if reached else None


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(HEADERS + SOURCES),
                       st.lists(st.sampled_from(HEADERS), max_size=4), max_size=10),
       st.lists(st.sampled_from(HEADERS), max_size=5, unique=True))
def test_first_of_is_the_first_candidate_in_include_precedence(
        edges: dict[str, list[str]], candidates: list[str]) -> None:
    index = _index(edges)
    for path in HEADERS + SOURCES:
        assert index.first_of(path, candidates) == _reference(edges, path, candidates), path


def test_a_cycle_of_headers_reaches_itself_and_what_it_includes() -> None:
    """h0 and h1 include each other (no file includes them from outside): each reaches the
    other and h2, which h1 includes; the .c file including h0 reaches all three."""
    edges = {"d/h0.h": ["d/h1.h"], "d/h1.h": ["d/h0.h", "d/h2.h"], "d/a.c": ["d/h0.h"]}
    index = _index(edges)
    assert index.first_of("d/h0.h", ["d/h2.h"]) == "d/h2.h"
    assert index.first_of("d/a.c", ["d/h2.h", "d/h1.h"]) == "d/h1.h"
    assert index.first_of("d/b.c", ["d/h2.h"]) is None
    assert index.first_of("d/a.c", []) is None


def _reached(edges: dict[str, list[str]], path: str) -> set[str]:
    """Every file path includes, transitively (itself too when it is on a cycle)."""
    seen: set[str] = set()
    todo = [h for h in edges.get(path, ()) if h != path]
    while todo:
        header = todo.pop()
        if header not in seen:
            seen.add(header)
            todo.extend(edges.get(header, ()))
    return seen


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(HEADERS + SOURCES),
                       st.lists(st.sampled_from(HEADERS), max_size=4), max_size=10),
       st.dictionaries(st.sampled_from(HEADERS),
                       st.frozensets(st.sampled_from(["f", "g", "h", "k"]), max_size=2)))
def test_names_seen_is_the_union_over_every_file_included(
        edges: dict[str, list[str]], per_file: dict[str, frozenset[str]]) -> None:
    index = _index(edges)
    for path in HEADERS + SOURCES:
        expected = frozenset().union(*(per_file.get(h, frozenset())
                                       for h in _reached(edges, path)))
        assert index.names_seen(path, None, per_file) == expected, path


def test_an_include_chain_deeper_than_the_python_stack_is_walked() -> None:
    """The condensation is iterative: a chain of 5,000 headers (deeper than the default
    recursion limit) resolves its far end."""
    chain = [f"d/c{i}.h" for i in range(5000)]
    files = {path: FileFacts(path, "x", 1, parsed=False,
                             includes=(f'"{posixpath.basename(nxt)}"',))
             for path, nxt in zip(chain, chain[1:], strict=False)}
    files[chain[-1]] = FileFacts(chain[-1], "x", 1, parsed=False)
    files["d/a.c"] = FileFacts("d/a.c", "x", 1, parsed=False, includes=('"c0.h"',))
    index = IncludeIndex(files)
    assert index.first_of("d/a.c", [chain[-1]]) == chain[-1]
    assert index.names_seen("d/a.c", None, {chain[-1]: frozenset({"far"})}) == {"far"}
