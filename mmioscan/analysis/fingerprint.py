"""Fingerprints that identify a finding across line shifts and kernel versions.

Like semgrep's and smatch's audit hashes, a fingerprint never contains a line number: it is a
hash of the path, the enclosing function, the kind and callee of the site, the normalized
code of its line, and an occurrence index that tells apart identical lines in one function.
An unrelated edit elsewhere in the file keeps every fingerprint; editing the line itself, or
moving it to another function, makes a new finding.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator

from mmioscan.core.model import Site

_COMMENT_RE = re.compile(r"/\*.*?(\*/|$)|//.*$")
_SPACE_RE = re.compile(r"\s+")
FINGERPRINT_VERSION = "1"


def normalize_code(line: str) -> str:
    """The line without comments, with runs of whitespace collapsed to one space."""
    return _SPACE_RE.sub(" ", _COMMENT_RE.sub(" ", line)).strip()


def fingerprint(path: str, function: str | None, kind: str, callee: str, code: str,
                occurrence: int) -> str:
    text = "\0".join((FINGERPRINT_VERSION, path, function or "", kind, callee, code,
                      str(occurrence)))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def assign(sites: Iterable[tuple[Site, str]]) -> Iterator[tuple[Site, str]]:
    """(site, normalized code) in source order -> (site, fingerprint). The occurrence index
    counts earlier sites with the same path, function, kind, callee and code."""
    seen: dict[tuple[str, str | None, str, str, str], int] = {}
    for site, code in sites:
        key = (site.path, site.function, site.kind, site.callee, code)
        index = seen.get(key, 0)
        seen[key] = index + 1
        yield site, fingerprint(site.path, site.function, site.kind, site.callee, code, index)
