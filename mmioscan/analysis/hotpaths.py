"""How each definition is hot: the kinds of the roots that reach it, and whether only
through reset or error handling (rules/hotpaths.toml [reset]).

A root is a callback the kernel calls per event (an interrupt handler, a NAPI poll, an xmit or
queue_rq function: cfront/extract.py records them, with how they were installed). Per kind,
two breadth-first searches run over the call graph from that kind's roots: one that never
enters a reset function (a function named *_reset, *_err_*, *_timeout, ..., or installed as
.ndo_tx_timeout, PCI .error_detected, ...) and one that does. A definition the first reaches
is hot with that kind; one only the second reaches is reset-only: it runs when the device
misbehaves, not per event, so it is not hot but says `hot_only_via: "reset"`.

By-name calls: a call through a field whose struct type is not known is resolved by field
name among the stores of the caller's folder, on the guess that the folder is one driver
(analysis/fnptrs.py). A search from a root follows it to a function another file of the
folder stored only when the root was registered in that folder or above it: a driver's own
roots (fsl_qmc_hdlc's ndo_start_xmit = hdlc_start_xmit -> `hdlc->xmit`, drivers/net/wan both)
and a core's roots (arcnet's xmit -> `lp->hw.command`). What the calling file stored itself
is its own default, followed from every root (i2c-mv64xxx's handler -> i2c_recover_bus ->
`bri->recover_bus` = i2c_generic_scl_recovery, stored by i2c-core-base.c). A driver elsewhere
that calls into a core folder hosting drivers (hci_intel's threaded handler ->
tty_set_termios -> `tty->ops->set_termios` in drivers/tty) would reach the callbacks of the
drivers that folder hosts (moxa's), whichever its object really is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mmioscan.analysis.callgraph import CallGraph
from mmioscan.core.model import FileFacts, HotRoot
from mmioscan.core.ruleset import RESET_KIND, HotPaths

RESET_ONLY = "reset"  # Site.hot_only_via of a site reached only through reset functions

# A definition reached from a root, with the root's home (CallGraph.hot_home: the folder it
# was registered in, or None when that changes nothing)
Seed = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class HotMark:
    """How one definition is hot."""

    hot: bool
    kinds: tuple[str, ...]  # sorted; the reset-only kinds when only_via is set
    only_via: str | None = None


def all_roots(facts: Iterable[FileFacts], rules: HotPaths | None = None
              ) -> tuple[HotRoot, ...]:
    """Every root recorded in the facts (reset ones too), each with its kind, sorted."""
    roots = {HotRoot(fn, f.path, line, how, rules.kind_of(how) if rules else "hot")
             for f in facts for fn, how, line in f.roots}
    return tuple(sorted(roots, key=lambda r: (r.path, r.line, r.function, r.how)))


def hot_map(graph: CallGraph, roots: Iterable[HotRoot], rules: HotPaths
            ) -> dict[str, HotMark]:
    """graph key -> HotMark for every definition some root reaches."""
    seeds: dict[str, set[Seed]] = {}
    resets: set[str] = set()
    for root in roots:
        home = graph.hot_home(root.path)
        # a function, or a field or variable the registration read it from (root_keys)
        for key in graph.root_keys(root.path, root.function):
            if root.kind == RESET_KIND:
                resets.add(key)
            else:
                seeds.setdefault(root.kind, set()).add((key, home))
    resets.update(k for k, d in graph.definitions.items() if rules.is_reset_name(d.name))
    normal: dict[str, set[str]] = {}
    reset_only: dict[str, set[str]] = {}
    for kind in sorted(seeds):
        every = _reach(graph, seeds[kind], frozenset())
        plain = _reach(graph, {s for s in seeds[kind] if s[0] not in resets},
                       frozenset(resets))
        for key in every:
            (normal if key in plain else reset_only).setdefault(key, set()).add(kind)
    marks = {key: HotMark(True, tuple(sorted(kinds))) for key, kinds in normal.items()}
    for key, kinds in reset_only.items():
        if key not in marks:
            marks[key] = HotMark(False, tuple(sorted(kinds)), RESET_ONLY)
    return marks


def _reach(graph: CallGraph, seeds: Iterable[Seed], blocked: frozenset[str]) -> set[str]:
    """Definitions reachable from seeds through none of `blocked`. The search runs over
    (definition, home) pairs: a call resolved by field name is followed only for the homes
    of its folder (CallGraph.callees_of)."""
    seen = set(seeds)
    queue: deque[Seed] = deque(sorted(seen, key=lambda s: (s[0], s[1] or "")))
    while queue:
        key, home = queue.popleft()
        for target in graph.callees_of(key, home):
            if (target, home) not in seen and target not in blocked:
                seen.add((target, home))
                queue.append((target, home))
    return {key for key, _ in seen}


def marks_of(marks: Mapping[str, HotMark], key: str | None) -> HotMark | None:
    return marks.get(key) if key else None
