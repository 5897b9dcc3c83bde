"""Peer tools for cross-checking mmioscan's direct sites on a real kernel tree.

Three producers of the same kind of answer, a set of ``(path relative to the tree, line,
accessor name)`` for every call of a catalogued accessor:

* :func:`coccinelle_sites` -- Coccinelle (``spatch``), a real C parser with its own macro
  heuristics: the independent oracle the integration tests measure mmioscan's recall against;
* :func:`ripgrep_sites` -- ``rg``, the lexical lower bound (``name (`` anywhere, comments and
  strings included, no notion of ``#if 0``);
* :func:`mmioscan_sites` -- the scanner itself, active sites of kind ``direct``.

How Coccinelle 1.1.1 is driven, and why (each point was checked on small files and on the
6.12 tree):

* The semantic patch is generated from the catalogue: one rule binds an identifier
  metavariable constrained by an anchored regex of every name (``identifier f =~ "^(a|b)$"``)
  and matches ``f@p(...)``; a python script rule appends ``file, line, name`` to a results
  file. Writing to a file opened in append mode, one ``write`` per line, keeps lines whole when
  ``-j`` forks several workers (their stdout buffers could otherwise interleave mid-line).
  A second rule matches every function definition it could parse (``f@p(...) { ... }``), so
  a site Coccinelle missed can be attributed to a function it could not parse.
* ``#if 0`` blocks, and the ``#else`` side of ``#if 1``: skipped by default ("if0 passing":
  the block is treated as a comment), the same as mmioscan's ``active`` flag, so only active
  mmioscan sites are compared. ``--noif0-passing`` would parse ``#if 0`` blocks too.
* ``#ifdef``/``#if CONFIG_...``/``#else``: both branches are parsed and matched (no
  configuration is evaluated), like mmioscan.
* Macro bodies: a ``#define`` body that parses as an expression, a statement or a whole
  function definition is matched, and its sites are reported on the body's lines, like
  mmioscan's macro scopes. Fragments (``x(b) +``, a declaration without its ``;``) are not.
  Token pasting (``op##sfx(...)``) is resolved only when Coccinelle expands a local macro at
  a toplevel invocation it could not otherwise parse: the site is then reported on the pasted
  token's line inside the ``#define``, with the expanded name.
* ``--no-includes``: no header is read while parsing a ``.c`` file (much faster, and the
  answer does not depend on type information). ``--include-headers``: ``.h`` files under the
  folder are processed on their own, as mmioscan does. ``--dir`` walks a folder recursively.
* ``-j N --chunksize 1``: N worker processes, one file at a time (the kernel's coccicheck
  uses the same pair). ``--timeout S``: give up on one file after S seconds (reported).
* ``--very-quiet`` would hide parse errors; instead ``--quiet --verbose-parsing`` is used and
  stderr is parsed for ``File "...", line N`` error lines, which are self-contained, so
  interleaving between workers does not matter. Parse failures are per toplevel element
  (usually one function): the rest of the file is still matched.
* ``--macro-file``: a few kernel macros Coccinelle 1.1.1's builtin ``standard.h`` does not
  know are declared as iterators (``scoped_guard(...) { ... }``). On the nine folders of
  tests/integration/test_coccinelle.py this removes 65 of 840 parse errors and adds 10 sites.
  See :data:`EXTRA_MACROS`.
* Files spatch gives up on (``--timeout``) are reported on stderr as ``EXN: ...Timeout in
  FILE`` with ``-j``; they are collected in :attr:`CoccinelleRun.failures`.
* ``--disable-worth-trying-opt`` made no difference (checked on drivers/gpio): the regex
  constraint gives Coccinelle no token to prefilter files with, so every file is parsed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

Site = tuple[str, int, str]

# Kernel macros taking a block that Coccinelle's builtin macro file does not know. Declared as
# iterators (Coccinelle's YACFE_ITERATOR hint), `scoped_guard(lock, &x) { ... }` parses like
# `list_for_each(...) { ... }` does. The names never collide with a catalogued accessor.
EXTRA_MACROS = """\
#define scoped_guard(x, ...) YACFE_ITERATOR
#define scoped_cond_guard(x, y, ...) YACFE_ITERATOR
"""

_SEMANTIC_PATCH = """\
@initialize:python@
@@
import os
OUT = {out!r}

def emit(kind, pos, name):
    line = "%s\\t%s\\t%s\\t%s\\n" % (kind, pos[0].file, pos[0].line, name)
    fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)

@acc@
identifier f =~ "^({names})$";
position p;
@@
f@p(...)

@script:python@
f << acc.f;
p << acc.p;
@@
emit("SITE", p, f)

@fn@
identifier g;
position q;
@@
g@q(...) {{ ... }}

@script:python@
g << fn.g;
q << fn.q;
@@
emit("FUNC", q, g)
"""

_ERROR_RE = re.compile(r'^\s*= File "(?P<file>[^"]+)", line (?P<line>\d+)')
# With -j, a file whose processing raised (a --timeout, typically) is reported on one line.
_EXN_RE = re.compile(r"^EXN: (?P<exn>\S+) in (?P<file>\S+)\s*$")
_ABORT_RE = re.compile(r"^timeout \(we abort\): (?P<file>\S+)\s*$")
_IDENT_CALL = r"\s*\("


@dataclass
class CoccinelleRun:
    """Everything one Coccinelle pass over some folders reported."""

    sites: set[Site] = field(default_factory=set)
    # (path, function name) of every function definition Coccinelle parsed.
    functions: set[tuple[str, str]] = field(default_factory=set)
    # path -> sorted lines where a parse error was reported (one per failed toplevel element).
    parse_errors: dict[str, list[int]] = field(default_factory=dict)
    # path -> exception for files spatch gave up on (Common.Timeout after --timeout seconds).
    failures: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # folder -> wall time

    def sites_in(self, folder: str) -> set[Site]:
        prefix = folder.rstrip("/") + "/"
        return {s for s in self.sites if s[0].startswith(prefix)}


def _rel(tree: Path, path: str) -> str:
    """POSIX path relative to the tree (spatch and rg print the paths they were given)."""
    p = Path(path)
    try:
        return p.relative_to(tree).as_posix()
    except ValueError:
        pass
    try:
        return p.resolve().relative_to(tree.resolve()).as_posix()
    except ValueError:
        return os.path.relpath(p, tree)


def semantic_patch(names: Iterable[str], out: Path) -> str:
    """The generated SmPL text: call sites of `names`, and parsed function definitions."""
    ordered = sorted(set(names), key=lambda n: (-len(n), n))
    for n in ordered:
        if not re.fullmatch(r"[A-Za-z_]\w*", n):
            raise ValueError(f"not a C identifier: {n!r}")
    return _SEMANTIC_PATCH.format(out=str(out), names="|".join(ordered))


def run_coccinelle(tree: Path, folders: list[str], names: Iterable[str], jobs: int = 2,
                   timeout: int = 120, spatch: str = "spatch") -> CoccinelleRun:
    """Run spatch once per folder; collect sites, parsed functions, parse errors, timings."""
    exe = shutil.which(spatch)
    if exe is None:
        raise FileNotFoundError(f"{spatch} not found on PATH")
    tree = Path(tree).resolve()
    run = CoccinelleRun()
    names = list(names)
    with tempfile.TemporaryDirectory(prefix="mmioscan-cocci-") as tmp:
        tmpdir = Path(tmp)
        out = tmpdir / "results.tsv"
        cocci = tmpdir / "accessors.cocci"
        cocci.write_text(semantic_patch(names, out), encoding="utf-8")
        macros = tmpdir / "extra_macros.h"
        macros.write_text(EXTRA_MACROS, encoding="utf-8")
        for folder in folders:
            cmd = [exe, "--quiet", "--verbose-parsing", "--no-includes", "--include-headers",
                   "--macro-file", str(macros), "-j", str(jobs), "--chunksize", "1",
                   "--timeout", str(timeout), "--tmp-dir", str(tmpdir / "par"),
                   "--sp-file", str(cocci), "--dir", str(tree / folder)]
            start = time.monotonic()
            proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, errors="replace", check=False, cwd=tmpdir)
            run.seconds[folder] = time.monotonic() - start
            if proc.returncode != 0:
                tail = "\n".join(proc.stderr.splitlines()[-20:])
                raise RuntimeError(f"spatch failed on {folder} ({proc.returncode}):\n{tail}")
            _parse_stderr(tree, proc.stderr, run)
        if out.exists():
            for line in out.read_text(encoding="utf-8", errors="replace").splitlines():
                kind, path, lineno, name = line.split("\t")
                rel = _rel(tree, path)
                if kind == "SITE":
                    run.sites.add((rel, int(lineno), name))
                else:
                    run.functions.add((rel, name))
    for path in run.parse_errors:
        run.parse_errors[path] = sorted(set(run.parse_errors[path]))
    return run


def _parse_stderr(tree: Path, stderr: str, run: CoccinelleRun) -> None:
    for text in stderr.splitlines():
        m = _ERROR_RE.match(text)
        if m:
            run.parse_errors.setdefault(_rel(tree, m["file"]), []).append(int(m["line"]))
            continue
        m = _EXN_RE.match(text)
        if m:
            run.failures[_rel(tree, m["file"])] = m["exn"].rsplit(".", 1)[-1]
            continue
        m = _ABORT_RE.match(text)
        if m:
            run.failures[_rel(tree, m["file"])] = "Timeout"


def coccinelle_sites(tree: Path, folders: list[str], names: Iterable[str], jobs: int = 2,
                     timeout: int = 120) -> set[Site]:
    """(path, line, name) of every call of `names` Coccinelle finds under the folders."""
    return run_coccinelle(tree, folders, names, jobs=jobs, timeout=timeout).sites


def ripgrep_sites(tree: Path, folders: list[str], names: Iterable[str]) -> set[Site]:
    """The lexical lower bound: every `name (` in .c and .h files, comments included."""
    exe = shutil.which("rg")
    if exe is None:
        raise FileNotFoundError("rg not found on PATH")
    tree = Path(tree).resolve()
    alternation = "|".join(sorted(set(names), key=lambda n: (-len(n), n)))
    pattern = rf"\b({alternation}){_IDENT_CALL}"
    cmd = [exe, "--json", "--no-config", "--no-ignore", "--hidden", "-g", "*.c", "-g", "*.h",
           "-e", pattern, *[str(tree / f) for f in folders]]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", check=False)
    if proc.returncode not in (0, 1):  # 1: nothing found
        raise RuntimeError(f"rg failed ({proc.returncode}): {proc.stderr.strip()}")
    found: set[Site] = set()
    for line in proc.stdout.splitlines():
        event = json.loads(line)
        if event.get("type") != "match":
            continue
        data = event["data"]
        path = _rel(tree, data["path"].get("text", ""))
        lineno = data["line_number"]
        for sub in data["submatches"]:
            name = re.match(r"\w+", sub["match"].get("text", ""))
            if name:
                found.add((path, lineno, name.group(0)))
    return found


def mmioscan_sites(tree: Path, folders: list[str], jobs: int = 2) -> set[Site]:
    """Active direct sites from an in-process, uncached mmioscan scan of the folders."""
    return {(s["path"], s["line"], s["callee"]) for s in mmioscan_json(tree, folders, jobs)
            ["sites"] if s["active"] and s["kind"] == "direct"}


def mmioscan_json(tree: Path, folders: list[str], jobs: int = 2) -> dict:
    """The scanner's JSON document for the folders (in-process, --no-cache)."""
    from mmioscan.cli.main import main

    tree = Path(tree).resolve()
    with tempfile.TemporaryDirectory(prefix="mmioscan-peer-") as tmp:
        out = Path(tmp) / "scan.json"
        argv = ["scan", *[str(tree / f) for f in folders], "--root", str(tree),
                "--format", "json", "-o", str(out), "--no-cache", "--no-progress",
                "-j", str(jobs)]
        code = main(argv)
        if code != 0:
            raise RuntimeError(f"mmioscan scan exited with {code}")
        return json.loads(out.read_text(encoding="utf-8"))
