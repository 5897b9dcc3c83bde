"""The submission gate: two versions of a tree (or a tree and a baseline) -> new and fixed
findings, each new one judged by the policy, and an exit code.

    gate_revisions(tree, base, head)   git commits, head None = the working tree
    gate_patch(tree, patch_file)       the tree on disk (or a commit) before and after a patch
    gate_baseline(tree, baseline)      a scan of the tree against accepted findings

Both versions are materialised into temporary folders with only what a scan of the changed
files' folders reads (gitrev.needed_paths), so a one-file change in a 90,000-file tree scans
one driver folder twice. All findings of the scanned folders are compared, not only those in
the changed files: editing a wrapper macro in a driver header changes the sites at its callers.

Matching is by fingerprint (no line numbers), counted as a multiset: a finding of the head
that the base (or the baseline) also has is unchanged, whatever line it moved to.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import posixpath
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mmioscan.core.fileio import read_input
from mmioscan.core.findings import finding_class, rank
from mmioscan.core.model import Problem, ScanResult, Site
from mmioscan.gate import gitrev, patchfile
from mmioscan.gate.baseline import Baseline, site_key
from mmioscan.gate.policy import INFO, Decision, Policy, decide
from mmioscan.gate.triage import EMPTY, Triage
from mmioscan.kernel.tree import SOURCE_SUFFIXES

State = Literal["new", "unchanged", "absent"]
# Scans one version: (materialised root, folders relative to it) -> result.
_STATE_ORDER = {"new": 0, "absent": 1, "unchanged": 2}  # what a reviewer reads first
Scanner = Callable[[Path, tuple[str, ...]], ScanResult]


@dataclass(frozen=True, slots=True)
class GateFinding:
    site: Site
    class_id: str
    state: State  # SARIF baselineState: new, unchanged, absent (fixed)
    decision: Decision = INFO  # for new findings only
    triage: str | None = None  # the triage label, if any
    baselined: bool = False  # unchanged only because the baseline accepts it

    @property
    def blocking(self) -> bool:
        return self.state == "new" and self.decision.action == "block" and not self.triaged

    @property
    def warning(self) -> bool:
        return self.state == "new" and self.decision.action == "warn" and not self.triaged

    @property
    def triaged(self) -> bool:
        """Kept out of the gate by a `safe` or `excluded` label."""
        return self.triage in ("safe", "excluded")


@dataclass(frozen=True, slots=True)
class GateReport:
    root: str  # the user's tree
    base: str  # what was compared: a commit, "working tree", "baseline FILE"
    head: str
    changed: tuple[str, ...]  # changed files (all of them, not only C)
    scanned: tuple[str, ...]  # folders scanned
    findings: tuple[GateFinding, ...]
    kernel_version: str | None = None
    problems: tuple[Problem, ...] = ()
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())

    def of(self, state: State) -> list[GateFinding]:
        return [f for f in self.findings if f.state == state]

    @property
    def blocking(self) -> list[GateFinding]:
        return [f for f in self.findings if f.blocking]

    @property
    def warnings(self) -> list[GateFinding]:
        return [f for f in self.findings if f.warning]

    @property
    def exit_code(self) -> int:
        return 1 if self.blocking else 0


@dataclass(frozen=True, slots=True)
class GateOptions:
    policy: Policy
    scanner: Scanner
    triage: Triage = EMPTY
    baseline: Baseline | None = None
    keep_temp: Path | None = None  # materialise here and keep it (debugging)
    # Reused between runs (one subfolder per tree, locked while in use), so the facts and
    # Kconfig caches, keyed by path, hit on the second run. None: a fresh temporary folder.
    workspace: Path | None = None


# ---- matching ------------------------------------------------------------------------------


def _findings(sites: Sequence[Site]) -> list[tuple[Site, str]]:
    found = []
    for site in sites:
        class_id = finding_class(site)
        if class_id is not None:
            found.append((site, class_id))
    return found


def compare(base: Sequence[Site], head: Sequence[Site], options: GateOptions
            ) -> tuple[GateFinding, ...]:
    """Head findings as new or unchanged, base findings the head lost as absent."""
    before = _findings(base)
    remaining = Counter(site_key(s) for s, _ in before)
    accepted = options.baseline.counts() if options.baseline is not None else Counter()
    out: list[GateFinding] = []
    for site, class_id in _findings(head):
        key = site_key(site)
        label = options.triage.label_of(site)
        if remaining[key] > 0:
            remaining[key] -= 1
            out.append(GateFinding(site, class_id, "unchanged", triage=label))
        elif accepted[key] > 0:
            accepted[key] -= 1
            out.append(GateFinding(site, class_id, "unchanged", triage=label, baselined=True))
        else:
            decision = decide(site, class_id, options.policy)
            out.append(GateFinding(site, class_id, "new", decision, label))
    lost = Counter(site_key(s) for s, _ in _findings(head))
    for site, class_id in before:
        key = site_key(site)
        if lost[key] > 0:
            lost[key] -= 1
        else:
            out.append(GateFinding(site, class_id, "absent",
                                   triage=options.triage.label_of(site)))
    out.sort(key=lambda f: (_STATE_ORDER[f.state], rank(f.class_id), f.site.sort_key()))
    return tuple(out)


# ---- the three use cases -------------------------------------------------------------------


def source_folders(paths: Sequence[str]) -> tuple[str, ...]:
    """The folders of the changed C files: what both versions scan."""
    return tuple(sorted({posixpath.dirname(p) for p in paths
                         if p.endswith(SOURCE_SUFFIXES)}))


def gate_revisions(tree: Path, base: str, head: str | None,
                   options: GateOptions) -> GateReport:
    """Compare a commit with another commit, or with the working tree (head None)."""
    start = time.monotonic()
    root = gitrev.toplevel(tree)
    base_commit = gitrev.commit_of(root, base)
    head_commit = gitrev.commit_of(root, head) if head is not None else None
    changed = tuple(c.path for c in gitrev.changed_files(root, base_commit, head_commit))
    base_source = gitrev.RevSource(root, base_commit, f"{base} ({base_commit[:12]})")
    head_source: gitrev.Source = (
        gitrev.RevSource(root, head_commit, f"{head} ({head_commit[:12]})")
        if head is not None and head_commit is not None
        else gitrev.DiskSource(root))
    return _run(root, base_source, head_source, changed, options, start)


def gate_patch(tree: Path, patch_file: Path, base: str | None,
               options: GateOptions) -> GateReport:
    """The tree (its files on disk, or commit `base`) before and after applying a patch."""
    start = time.monotonic()
    try:
        text = read_input(patch_file).decode("utf-8", "surrogateescape")
    except OSError as exc:
        raise patchfile.PatchError(f"cannot read {patch_file}: {exc.strerror}") from None
    patch = patchfile.parse(text, patch_file.name)
    root = tree.resolve()
    base_source: gitrev.Source
    if base is not None:
        root = gitrev.toplevel(tree)
        commit = gitrev.commit_of(root, base)
        base_source = gitrev.RevSource(root, commit, f"{base} ({commit[:12]})")
    else:
        if not root.is_dir():
            raise gitrev.GitError(f"no such folder: {tree}")
        base_source = gitrev.DiskSource(root, "tree on disk")

    def is_link(path: str) -> bool:
        return base_source.link_target(path) is not None

    def current(path: str) -> bytes | None:
        """What the patch's hunks apply to: a file's bytes, a symlink's text (as in git)."""
        link = base_source.link_target(path)
        if link is not None:
            return link.encode("utf-8", "surrogateescape")
        return base_source.read([path]).get(path)

    changes = patchfile.resolve(patch, lambda p: base_source.is_file(p) or is_link(p))
    result = patchfile.apply(changes, current)
    patchfile.check_folders(result, base_source.is_file)
    head_source = gitrev.OverlaySource(base_source, result, f"+ {patch_file.name}",
                                       patchfile.symlinks(changes, result, is_link))
    note = (f"{patch.messages} patch{'es' if patch.messages != 1 else ''}, "
            f"{len(patch.files)} file change{'s' if len(patch.files) != 1 else ''}")
    report = _run(root, base_source, head_source, patchfile.touched(changes), options, start)
    return _with_notes(report, note)


def gate_baseline(result: ScanResult, baseline_name: str, options: GateOptions,
                  seconds: float = 0.0) -> GateReport:
    """A finished scan against the baseline in options (no second version)."""
    findings = compare((), result.sites, options)
    return GateReport(result.root, f"baseline {baseline_name}", "tree on disk", (),
                      result.scanned, findings, result.kernel_version, result.problems,
                      seconds)


def _with_notes(report: GateReport, *notes: str) -> GateReport:
    return GateReport(report.root, report.base, report.head, report.changed, report.scanned,
                      report.findings, report.kernel_version, report.problems,
                      report.seconds, (*report.notes, *notes))


def _run(root: Path, base: gitrev.Source, head: gitrev.Source, changed: tuple[str, ...],
         options: GateOptions, start: float) -> GateReport:
    folders = source_folders(changed)
    try:
        with _workspace(options, root) as work:
            before = _scan_version(base, folders, work / "base", options.scanner)
            after = _scan_version(head, folders, work / "head", options.scanner)
    except _CacheFull:
        # The reused workspace is an optimisation, like the facts cache: when its disk is
        # full or read-only, the gate runs as without it, in a temporary folder.
        with _temporary() as work:
            before = _scan_version(base, folders, work / "base", options.scanner)
            after = _scan_version(head, folders, work / "head", options.scanner)
    findings = compare(before.sites if before else (), after.sites if after else (), options)
    found = {p for r in (before, after) if r is not None for p in r.problems}
    # C files of the scanned folders that were not read (a symlink leaving the tree, a
    # dangling one): the same problems `mmioscan scan` records for them.
    found.update(Problem(path, message) for source in (base, head)
                 for path, message in source.problems.items()
                 if posixpath.dirname(path) in folders)
    problems = tuple(sorted(found, key=lambda p: (p.path, p.message)))
    version = next((r.kernel_version for r in (after, before) if r is not None), None)
    notes = () if folders else ("no C source or header file changed",)
    return GateReport(str(root), base.label, head.label, changed, folders, findings,
                      version, problems, time.monotonic() - start, notes)


def _scan_version(source: gitrev.Source, folders: tuple[str, ...], dest: Path,
                  scanner: Scanner) -> ScanResult | None:
    """Materialise what a scan of the folders needs from one version, and scan it; None when
    none of the folders holds C files in this version."""
    if not folders:
        return None
    contents = gitrev.needed_paths(source, folders)
    present = gitrev.scan_folders(contents, folders)
    if not present:
        return None
    try:
        gitrev.sync_tree(dest, contents)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in a name
        raise _MaterialiseError(dest, exc) from None
    return scanner(dest, present)


class WorkspaceError(Exception):
    """The folder the two versions are laid out in cannot be used (--keep-temp, /tmp)."""


class _MaterialiseError(WorkspaceError):
    def __init__(self, dest: Path, exc: OSError | ValueError) -> None:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        super().__init__(f"cannot lay out the files to scan in {dest}: {reason}")


class _CacheFull(Exception):
    """Laying out the files in the reused workspace failed: retry without it."""


KEEP_TEMP_MARKER = ".mmioscan-keep-temp"


def _keep_temp(folder: Path) -> Path:
    """--keep-temp DIR: a new or empty folder, or one an earlier --keep-temp made (its
    base/ and head/ are then rewritten); anything else the user has there is not ours."""
    marker = folder / KEEP_TEMP_MARKER
    try:
        if folder.exists() and not folder.is_dir():
            raise WorkspaceError(f"--keep-temp {folder}: not a folder")
        if folder.is_dir() and not marker.is_file() and any(folder.iterdir()):
            raise WorkspaceError(f"--keep-temp {folder}: the folder is not empty and no "
                                 "earlier --keep-temp made it; give a new or empty folder")
        folder.mkdir(parents=True, exist_ok=True)
        marker.write_text("made by mmioscan gate --keep-temp: base/ and head/ are rewritten "
                          "by the next run\n", encoding="utf-8")
    except OSError as exc:
        raise WorkspaceError(f"--keep-temp {folder}: {exc.strerror or exc}") from None
    return folder


@contextlib.contextmanager
def _workspace(options: GateOptions, root: Path) -> Iterator[Path]:
    """Where the two versions are laid out: --keep-temp, else the tree's reusable folder
    under options.workspace if no other gate run holds it, else a temporary folder."""
    if options.keep_temp is not None:
        yield _keep_temp(options.keep_temp)
        return
    if options.workspace is not None:
        place = options.workspace / hashlib.sha1(os.fsencode(root),
                                                  usedforsecurity=False).hexdigest()[:16]
        try:
            place.mkdir(parents=True, exist_ok=True)
            lock = (place / ".lock").open("w")
        except OSError:
            lock = None
        if lock is not None:
            with lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    pass  # busy: another gate run on the same tree; use a temporary folder
                else:
                    try:
                        yield place
                    except _MaterialiseError:
                        raise _CacheFull() from None
                    return
    with _temporary() as temp:
        yield temp


@contextlib.contextmanager
def _temporary() -> Iterator[Path]:
    try:
        temp = Path(tempfile.mkdtemp(prefix="mmioscan-gate-"))
    except OSError as exc:
        raise WorkspaceError(f"cannot make a temporary folder: {exc.strerror or exc}") from None
    try:
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)
