"""Edits that change no answer: a run whose inputs differ from a stored entry's only in a few
.c files whose facts, and whatever else the stages read from their text, are the same as
before is served that entry's result and renderings (facts/products.py), after parsing
just those files. A comment added or reworded, a string or a constant changed on a line
with no site: the common small edit of a warm tree, answered in the time it takes to hash
the tree and parse the edited file, with the bytes a cold run would write.

Why the result is then the same: every stage reads the sources through their facts, except
in five places. The caller rounds search the bytes of unparsed files (so an edited file must
have been parsed by the byte prefilter before and after the edit, never only because a
round forced it); the hot-header step reads the code names of headers (so only .c files
count); the platform models read files of arch/ and lib/ (so no edit there counts); and the
drivers-and-verdicts stage reads, from each file with sites, the lines of its sites, the
blocks the .config leaves out and the arguments of bulk calls (analysis/enrich.py's
TextRead, stored with the entry and read again here from the edited file); and a file
including a .c file of its folder reads that file's macros into its own facts (so no edited
file may be named in quotes by a file beside it). Equal facts give
the same sites in the same places, so the same lines are read; when they read the same
too, the enriched sites, and every count and summary made of them, are the same.

Anything else (a file added or removed, a Makefile or Kconfig edited, a header, facts that
differ in a position, a site's line edited) runs the analysis.
"""

from __future__ import annotations

from pathlib import Path

from mmioscan.analysis.enrich import read_again
from mmioscan.analysis.gather import extract_spec
from mmioscan.analysis.replay import same_facts
from mmioscan.core.model import TextRead
from mmioscan.core.ruleset import RuleSet
from mmioscan.facts.products import Products
from mmioscan.facts.runner import collect_facts, open_cache
from mmioscan.kernel.ifconfig import ConfigConditions

# Changed files checked one by one (each is parsed); past this many the analysis runs
MAX_EDITED = 8
# Earlier entries of the same options key compared with (the most recent first)
MAX_ENTRIES_TRIED = 2
# Files read by the platform models (platforms/x86: io.h, iomem.c, the #VE and #VC
# handlers, lib/iomap*.c) lie here: an edit under them is never served
_MODEL_TREES = ("arch/", "lib/")


def serve_unchanged(products: Products, root: Path, rules: RuleSet,
                    config: dict[str, str] | None, cache_dir: Path) -> bool:
    """Make products hold, for the current inputs, an earlier entry's result when the
    edits since leave every answer the same (see the module doc); True when it does."""
    if products.inputs is None or not products.each:
        return False
    for stem in products.earlier()[:MAX_ENTRIES_TRIED]:
        before = products.side(stem, "inputs")
        if not isinstance(before, dict) or before.keys() != products.each.keys():
            continue  # a file added or removed (or an entry from before this was kept)
        edited = sorted(p for p, d in products.each.items() if before[p] != d)
        if (not edited or len(edited) > MAX_EDITED or not all(map(_may_serve, edited))
                or any(_included_nearby(root, p) for p in edited)):
            continue
        reads = products.side(stem, "reads")
        if not isinstance(reads, dict):
            continue
        if (_edits_parse_alike(root, rules, cache_dir, edited, before)
                and _same_reads(root, edited, reads, config)):
            return products.adopt(stem)
    return False


def _may_serve(path: str) -> bool:
    return path.endswith(".c") and not path.startswith(_MODEL_TREES)


def _included_nearby(root: Path, path: str) -> bool:
    """May a file of the same folder include this one (`#include "ehci-q.c"`)? Its facts
    then depend on this file's bytes (the pasting macros it reads: cfront/pasted.py), and
    would be made again. Any file naming it in quotes counts."""
    folder = (root / path).parent
    quoted = f'"{Path(path).name}"'.encode()
    try:
        return any(quoted in other.read_bytes() for other in folder.iterdir()
                   if other.is_file() and other.name != Path(path).name
                   and other.suffix in (".c", ".h"))
    except OSError:
        return True


def _edits_parse_alike(root: Path, rules: RuleSet, cache_dir: Path, edited: list[str],
                before: dict[str, str]) -> bool:
    """Do the edited files parse to the facts they had (by their old digest, in the facts
    cache), all parsed by the byte prefilter (never forced: an unparsed file's bytes are
    what the caller rounds search)?"""
    spec = extract_spec(rules)
    cache = open_cache(cache_dir, rules.digest, spec)
    try:
        old = cache.facts(before[p] for p in edited)
    finally:
        cache.close()
    run = collect_facts(root, tuple(edited), spec, rules.digest, 1, cache_dir)
    if run.problems:
        return False
    for facts in run.facts:
        was = old.get(before[facts.path])
        if was is None or was.forced or facts.forced or not same_facts(was, facts):
            return False
    return True


def _same_reads(root: Path, edited: list[str], reads: dict[str, TextRead],
                config: dict[str, str] | None) -> bool:
    """Does the text of each edited file read as it did for its sites?"""
    conditions = ConfigConditions(config) if config is not None else None
    for path in edited:
        was = reads.get(path)
        if was is not None and read_again(root, was, conditions) != was:
            return False
    return True
