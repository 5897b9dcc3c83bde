"""The cyclic garbage collector and the analysis's long-lived data.

A whole-tree scan holds some 30 million objects (facts, indexes, the call graph, sites) that
live until the end of the run and are almost all acyclic tuples and strings. Left to itself,
the collector passes over its oldest generation again each time the objects surviving since
its last pass reach a quarter of it: 37 full passes over an ever larger heap, 34 s of a 205 s
warm whole-tree scan (45 s with the young generations). So while an analysis runs the
automatic collector is off (`hold`), and `settle` is called where a stage has built what it
keeps: one pass collects the cycles made since the last call (each object is looked at once,
a few cycles per stage: refcounting frees everything else as it goes) and `gc.freeze` moves
the survivors out of later passes; facts read from the cache, which hold no cycle, are only
frozen (`keep`). `release` gives the collector everything back when the
analysis returns (a process running many analyses, the gate's two or the test suite's,
leaks nothing).
"""

from __future__ import annotations

import gc


def hold() -> bool:
    """Stop automatic collections for the analysis; whether they were on (for release)."""
    was = gc.isenabled()
    gc.disable()
    return was


def settle() -> None:
    """Collect the cycles made so far, then leave every surviving object out of later
    collections (they live until the run ends)."""
    gc.collect()
    gc.freeze()


def keep() -> None:
    """Leave every object made so far out of later passes without a pass of its own: for
    data that holds no cycle, like facts just read from the cache (unpickled tuples: a pass
    over a round's facts found nothing to free and took 9 s of a warm whole-tree scan). A
    cycle made since the last settle stays until release, and is collected then."""
    gc.freeze()


def release(enabled: bool = True) -> None:
    """Give the collector back every object settle froze (the analysis is done), and its
    automatic collections if they were on."""
    gc.unfreeze()
    if enabled:
        gc.enable()
