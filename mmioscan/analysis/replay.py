"""The caller rounds replayed: after an edit that changes no file's facts, the files the rounds
parsed are parsed again without the rounds' search (analysis/gather.py runs both).

The rounds (analysis/rounds.py) decide which unparsed files to parse from the facts of the
files parsed so far and the bytes of the others: a deterministic function of the facts every
file in scope has when they start. A run keeps, in the facts cache, each file's content
digest at that point and the files each round added (a Record). A later run over the same
scope whose files at that point have the same digests, but for a few whose old facts
(still in the cache, by their old digest) equal their new ones in everything but digest and
size, would search the same bytes for the same names: it parses the recorded files, round by
round, and runs the same context-header and hot-header steps after each. The -I flags of the
Makefiles include resolution read are kept too, and must read the same. A comment added to
a driver (the common one-file edit of a warm tree), a constant changed, a string reworded:
the whole tree's rounds (about a third of a warm run's analysis) are then skipped. Any
other change (a call added, a file added or removed, an unparsed file edited: its bytes are
what the rounds search) runs the rounds. docs/design.md, "Caches", says where this sits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mmioscan.core.model import FileFacts
from mmioscan.core.sources import source_digest
from mmioscan.facts.cache import FactsCache
from mmioscan.kernel.includepaths import IncludePaths

# Changed files checked one by one (each is a cache look-up and a comparison of facts);
# past this many (a branch checked out) the rounds simply run
MAX_CHANGED = 64


@dataclass(frozen=True, slots=True)
class Record:
    """What one run of the rounds started from and what it added."""

    digests: dict[str, str]  # path -> content digest of every file with facts, at the start
    rounds: tuple[tuple[str, ...], ...]  # the files each round parsed, in order
    # the -I flags of every folder whose Makefile include resolution read (Makefiles have
    # no facts: an edit of one is seen here)
    flags: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]


def record_key(scope: Sequence[str], root: str) -> str:
    """The key of a scope's record: the files in scope and the code of the stages that
    decide what the rounds parse (gather and everything it imports)."""
    digest = hashlib.sha1(source_digest("mmioscan.analysis.gather").encode(),
                          usedforsecurity=False)
    digest.update(root.encode("utf-8", "surrogateescape") + b"\0")
    for path in scope:
        digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def digests_of(by_path: Mapping[str, FileFacts]) -> dict[str, str]:
    return {path: facts.digest for path, facts in by_path.items()}


def load(cache: FactsCache, key: str) -> Record | None:
    blob = cache.record(key)
    if blob is None:
        return None
    try:
        record = pickle.loads(zlib.decompress(blob))
    except Exception:  # noqa: BLE001 - a damaged record only costs the rounds
        return None
    return record if isinstance(record, Record) else None


def store(cache: FactsCache, key: str, record: Record) -> None:
    cache.store_record(key, zlib.compress(
        pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL), 1))


def replayable(record: Record, by_path: Mapping[str, FileFacts], cache: FactsCache,
               paths: IncludePaths) -> bool:
    """Would the rounds, started from by_path, parse what the record says they parsed?"""
    digests = record.digests
    if digests.keys() != by_path.keys():
        return False  # a file added, removed, or a header reached that was not before
    if any(paths.flags_of(folder) != flags for folder, flags in record.flags.items()):
        return False  # a Makefile's -I folders changed: includes may resolve elsewhere
    changed = [p for p, f in by_path.items() if digests[p] != f.digest or not f.digest]
    if len(changed) > MAX_CHANGED:
        return False
    old = cache.facts(digests[p] for p in changed if digests[p]) if changed else {}
    return all(same_facts(old.get(digests[p]), by_path[p]) for p in changed)


def same_facts(was: FileFacts | None, now: FileFacts) -> bool:
    """Only a parsed file may have changed, and only in its bytes: an unparsed one's bytes
    (its identifiers) are what the rounds search; a file without a digest is not cached."""
    if was is None or not now.digest or not now.parsed or not was.parsed:
        return False
    return dataclasses.replace(was, path=now.path, digest=now.digest, size=now.size) == now
