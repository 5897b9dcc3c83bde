"""Finding classes: what a site means for a TDX guest, as one stable rule id.

Shared by the SARIF and Markdown renderers, the HTML report and the submission gate, so a
site is an `unsupported-mmio` error in every one of them. The classes, most severe first:

| id | when | level |
|---|---|---|
| `raw-iomem-deref` | kind `deref`: the compiler chooses the instruction | error |
| `unsupported-mmio` | TDX path `unsupported` (MOVS, MOVDIR64B, ...): oops in a TD | error |
| `hot-ve-mmio` | TDX path `ve` on an interrupt, NAPI, xmit or I/O path (not reset-only) | warning |
| `ve-mmio` | TDX path `ve` elsewhere: decoded, one exception + hypercall each | note |
| `port-io` | port I/O (family `pio`, or instruction `port-io`) that traps | note |

Not findings (`finding_class` returns None):
- `paravirt` sites: the strategy's patched funnel skips the #VE; nothing to fix there.
- sites not assessed (`tdx` None, e.g. a scan without verdicts), unless their kind alone
  decides (`deref`): a report must not claim a trap it did not compute.
- inactive sites (inside `#if 0`).

Also here: the per-group and per-driver counts the Markdown and HTML reports share, derived
from the sites when the scan did not provide them (`result.drivers` empty).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mmioscan.core.model import Coverage, PatchPoint, ScanResult, Site, Tdx

Level = Literal["error", "warning", "note"]


@dataclass(frozen=True, slots=True)
class FindingClass:
    id: str  # the SARIF ruleId: never rename, code scanning matches alerts by it
    name: str  # PascalCase, as SARIF reportingDescriptor.name
    level: Level
    short: str
    full: str
    help: str  # plain text; the Markdown help is derived from it
    # Which sites the class takes, and in which order the classes are tried (lower first):
    # a site belongs to the first class whose predicate holds.
    precedence: int = 0
    matches: Callable[[Site], bool] = lambda site: False


RAW_DEREF = FindingClass(
    "raw-iomem-deref", "RawIomemDereference", "error",
    "Direct dereference of an __iomem pointer",
    "An __iomem pointer (or a structure overlay of device memory) is dereferenced directly, "
    "so the compiler chooses the instruction. In a TDX guest the #VE handler decodes only "
    "the MOV forms the io.h accessors emit; an ALU-with-memory, MOVSXD or vector access "
    "cannot be emulated and oopses the guest.",
    "Use the io.h accessors (readl/writel, ioread32/iowrite32, ...) instead of dereferencing "
    "the pointer. sparse (make C=2) reports the same access as an address-space violation.",
    0, lambda s: s.kind == "deref")
UNSUPPORTED = FindingClass(
    "unsupported-mmio", "UnsupportedMmioInstruction", "error",
    "MMIO access the TDX #VE handler cannot emulate",
    "The accessor reached here compiles to an instruction that insn_decode_mmio() rejects "
    "or that TDX's handle_mmio() refuses (MOVS from __iowrite32_copy's rep movsl, "
    "MOVDIR64B from iosubmit_cmds512, ...; string port I/O, REP INS/OUTS, likewise). In a "
    "TDX guest this access ends in a 'VE fault' oops.",
    "Replace the call with a loop of decodable accessors (writel/iowrite32), or keep the "
    "driver out of TDX guests. The via chain shows which wrapper reaches the accessor.",
    1, lambda s: _traps(s) and _worst(s).path == "unsupported")
HOT_VE = FindingClass(
    "hot-ve-mmio", "HotPathVeMmio", "warning",
    "MMIO access that traps (#VE) on a hot path",
    "This access is emulated through a #VE exception and a TDVMCALL hypercall in a TDX "
    "guest, and it is reachable from an interrupt handler, a NAPI poll, an xmit or a "
    "block/SCSI request callback (not only through reset or error handling), so the cost "
    "is paid per packet, per interrupt or per I/O.",
    "Consider a paravirtual funnel for the wrapper on the via chain (one patch point can "
    "cover many sites), batching the accesses, or moving them off the hot path.",
    3, lambda s: _traps(s) and s.hot)
VE = FindingClass(
    "ve-mmio", "VeMmio", "note",
    "MMIO access that traps (#VE) in a TDX guest",
    "This access is emulated through a #VE exception and a TDVMCALL hypercall in a TDX "
    "guest: it works, at the cost of an exception per access (per byte for the unrolled "
    "memcpy_toio/memcpy_fromio/memset_io).",
    "No change is needed for correctness. Listed for the inventory of what traps; the "
    "patch-point report shows which functions would remove the most traps.",
    4, lambda s: _traps(s))
PORT_IO = FindingClass(
    "port-io", "PortIo", "note",
    "Port I/O access that traps (#VE) in a TDX guest",
    "Port I/O (inb/outb, ioread* on a port cookie) also raises a #VE in a TDX guest; the "
    "guest handles it apart from MMIO (no instruction decoding), at the cost of an "
    "exception and a hypercall per access.",
    "No change is needed for correctness. Listed apart from MMIO so the MMIO numbers stay "
    "comparable.",
    2, lambda s: _traps(s) and (s.family == "pio" or _worst(s).insn == "port-io"))

# Most severe first: the order of SARIF rules, of truncation and of report sections.
FINDING_CLASSES: tuple[FindingClass, ...] = (RAW_DEREF, UNSUPPORTED, HOT_VE, VE, PORT_IO)
_BY_ID = {c.id: c for c in FINDING_CLASSES}
_DECISION = tuple(sorted(FINDING_CLASSES, key=lambda c: c.precedence))
_RANK = {c.id: i for i, c in enumerate(FINDING_CLASSES)}
HELP_URI = "https://docs.kernel.org/arch/x86/tdx.html"  # "MMIO handling" in tdx.rst


_RANKS = {"paravirt": 0, "ve": 1, "unsupported": 2}
_UNJUDGED = Tdx("paravirt", "-", 0, "")


def _worst(site: Site) -> Tdx:
    """The worst verdict over the platforms asked for (TDX's alone by default)."""
    verdicts = [v for _, v in site.verdicts()]
    return max(verdicts, key=lambda v: _RANKS.get(v.path, 1)) if verdicts else _UNJUDGED


def _traps(site: Site) -> bool:
    """Judged, and not covered by a patched funnel on every platform asked for."""
    return bool(site.verdicts()) and _worst(site).path != "paravirt"


def finding_class(site: Site) -> str | None:
    """The id of the site's finding class, or None when the site is not a finding.
    Adding a class: one FindingClass above, with its precedence and predicate."""
    if not site.active:
        return None
    return next((c.id for c in _DECISION if c.matches(site)), None)


def get_class(class_id: str) -> FindingClass:
    return _BY_ID[class_id]


def rank(class_id: str) -> int:
    """0 for the most severe class."""
    return _RANK[class_id]


@dataclass(frozen=True, slots=True)
class Finding:
    site: Site
    cls: FindingClass


def findings(sites: Iterable[Site], include_unreachable: bool = False) -> list[Finding]:
    """Every finding, most severe class first, then by path, line, column.

    Sites a --config does not build (reachable False) are left out unless asked for: they
    cannot run in the guest that config describes."""
    found = []
    for site in sites:
        if not include_unreachable and site.reachable is False:
            continue
        class_id = finding_class(site)
        if class_id is not None:
            found.append(Finding(site, _BY_ID[class_id]))
    found.sort(key=lambda f: (_RANK[f.cls.id], f.site.sort_key()))
    return found


def hot_order(found: Iterable[Finding]) -> list[Finding]:
    """Hot #VE findings costliest first: most #VE exits per execution (unknown counts as
    one), then source order. The order of the "top N hot sites" lists."""
    hot = [f for f in found if f.cls is HOT_VE]
    hot.sort(key=lambda f: (-_exits(f.site), f.site.sort_key()))
    return hot


def _exits(site: Site) -> int:
    if site.tdx is None or site.tdx.ve_exits is None:
        return 1
    return site.tdx.ve_exits


# --- texts shared by the renderers --------------------------------------------------------

def tdx_text(site: Site) -> str:
    """One phrase for the site's TDX verdict."""
    tdx = site.tdx
    if tdx is None:
        return "not assessed"
    exits = "" if tdx.ve_exits is None else f", {tdx.ve_exits} #VE exit" + \
        ("" if tdx.ve_exits == 1 else "s")
    reason = f": {tdx.reason}" if tdx.reason else ""
    return f"{tdx.path} ({tdx.insn}{exits}){reason}"


# How a site is hot, in words (rules/hotpaths.toml kinds); an unknown kind is said as is.
HOT_KIND_TEXT = {
    "irq": "interrupt handler", "irq-thread": "threaded interrupt handler",
    "tasklet": "tasklet", "napi": "NAPI poll", "xmit": "packet transmit",
    "netpoll": "netpoll", "io": "block/SCSI request", "io-poll": "polled I/O completion",
}


def hot_text(site: Site) -> str:
    """The kinds of hot path a site is on, in words ("interrupt handler, NAPI poll"); a
    reset-only site says so."""
    words = ", ".join(HOT_KIND_TEXT.get(k, k) for k in site.hot_kinds) or "hot path"
    return f"{words}, only via {site.hot_only_via}" if site.hot_only_via else words


def via_text(site: Site) -> str:
    return " > ".join(site.via) if site.via else site.callee


_UNDECODABLE = re.compile("[\udc80-\udcff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED = re.compile(r"\\x([89a-f][0-9a-f])")


def clean(text: str) -> str:
    """Text safe to encode as UTF-8, the one rule of every output format.

    File names and source lines are decoded with surrogateescape: a byte that is not UTF-8
    (0xFF) is the lone surrogate U+DCFF, which a write or a strict JSON parser would reject.
    Each such byte becomes the four characters `\\xff` (lowercase hex); any other lone
    surrogate (none comes from a file) becomes `?`. SARIF URIs percent-encode the raw bytes
    instead (`%FF`, report/sarif.py `artifact_uri`)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    text = _UNDECODABLE.sub(lambda m: f"\\x{ord(m[0]) - 0xDC00:02x}", text)
    return _SURROGATE.sub("?", text)


def unclean(text: str) -> str:
    """The inverse of `clean` for the `\\xNN` escapes (bytes 0x80-0xFF), for names read
    back from mmioscan's own files (a baseline's scanned folders)."""
    if "\\x" not in text:
        return text
    return _ESCAPED.sub(lambda m: chr(0xDC00 + int(m[1], 16)), text)


def escaped(value: Any) -> Any:
    """A JSON document with `clean` applied to every string, keys included."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(k) if isinstance(k, str) else k: escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [escaped(v) for v in value]
    return value


# --- counts per group and per driver -------------------------------------------------------

GROUP_NAMES = ("virtio", "x86", "generic")
PATHS = ("ve", "paravirt", "unsupported", "not assessed")


@dataclass(frozen=True, slots=True)
class GroupCounts:
    group: str  # virtio | x86 | generic | unknown | all
    sites: int
    drivers: int
    paths: tuple[tuple[str, int], ...]  # (tdx path or "not assessed", sites), PATHS order
    hot: int
    hot_ve: int
    ve_exits: int

    def path(self, name: str) -> int:
        return dict(self.paths).get(name, 0)


def path_of(site: Site) -> str:
    return site.tdx.path if site.tdx is not None else "not assessed"


def group_counts(sites: Sequence[Site]) -> list[GroupCounts]:
    """One row per group present (the three groups always), "unknown" when sites have no
    group yet, then "all"."""
    by_group: dict[str, list[Site]] = {g: [] for g in GROUP_NAMES}
    for site in sites:
        by_group.setdefault(site.group or "unknown", []).append(site)
    rows = [_counts(g, members) for g, members in by_group.items()
            if g in GROUP_NAMES or members]
    return rows + [_counts("all", sites)]


def _counts(group: str, sites: Sequence[Site]) -> GroupCounts:
    paths = Counter(path_of(s) for s in sites)
    ve = [s for s in sites if s.tdx is not None and s.tdx.path == "ve"]
    return GroupCounts(
        group=group, sites=len(sites), drivers=len({s.driver for s in sites}),
        paths=tuple((p, paths.get(p, 0)) for p in PATHS), hot=sum(s.hot for s in sites),
        hot_ve=sum(s.hot for s in ve),
        ve_exits=sum(s.tdx.ve_exits or 0 for s in ve if s.tdx is not None))


@dataclass(frozen=True, slots=True)
class DriverRow:
    """A driver table line: from result.drivers, or derived from the sites before Kbuild
    mapping exists (then config symbol and reachability are unknown)."""

    name: str
    group: str | None
    group_reason: str
    config_symbol: str | None
    reachable: bool | None
    folders: tuple[str, ...]
    sites: int
    ve: int
    paravirt: int
    unsupported: int
    hot: int
    ve_exits: int
    points_90: int | None


def driver_rows(result: ScanResult, sites: Sequence[Site]) -> list[DriverRow]:
    """Every driver, most sites first, then by name."""
    if result.drivers:
        rows = [DriverRow(d.info.name, d.info.group, d.info.group_reason,
                          d.info.config_symbol, d.info.reachable, d.folders, d.sites, d.ve,
                          d.paravirt, d.unsupported, d.hot, d.ve_exits, d.points_90)
                for d in result.drivers]
    else:
        rows = _derived_rows(result, sites)
    rows.sort(key=lambda r: (-r.sites, r.name))
    return rows


def _derived_rows(result: ScanResult, sites: Sequence[Site]) -> list[DriverRow]:
    by_driver: dict[str, list[Site]] = {}
    for site in sites:
        by_driver.setdefault(site.driver or ".", []).append(site)
    needed = {name: dict(cov.needed).get(90) for name, cov in result.patch_points}
    rows = []
    for name, members in by_driver.items():
        first = members[0]
        counts = _counts(first.group or "unknown", members)
        rows.append(DriverRow(
            name, first.group, first.group_reason or "", first.config_symbol, first.reachable,
            tuple(sorted({s.path.rsplit("/", 1)[0] for s in members})), len(members),
            counts.path("ve"), counts.path("paravirt"), counts.path("unsupported"),
            counts.hot, counts.ve_exits, needed.get(name)))
    return rows


# --- patch-point coverage ------------------------------------------------------------------

def coverage_curves(result: ScanResult, sites: Iterable[Site]) -> list[tuple[str, Coverage]]:
    """Coverage of "all", then of each group.

    The scan's own group curves ("group:NAME" entries) are used when present. Otherwise a
    group's curve is merged from its drivers' curves (the group of a driver: its sites'): each
    driver's greedy points cover disjoint sites, so summing a point's sites over drivers and
    ordering by size gives a valid cover of the group, an upper bound on the points the
    group needs (a shared header funnel is counted once)."""
    coverages = dict(result.patch_points)
    curves = [("all", coverages["all"])] if "all" in coverages else []
    own = [(name[6:], cov) for name, cov in result.patch_points if name.startswith("group:")]
    if own:
        return curves + own
    groups = {s.driver: s.group for s in sites if s.driver and s.group}
    for group in GROUP_NAMES:
        members = [cov for name, cov in result.patch_points
                   if name != "all" and groups.get(name) == group]
        if members:
            curves.append((group, merge_coverages(members)))
    return curves


def merge_coverages(coverages: Sequence[Coverage]) -> Coverage:
    total = sum(c.sites for c in coverages)
    covered: dict[str, int] = {}
    first: dict[str, PatchPoint] = {}
    for cov in coverages:
        for p in cov.points:
            covered[p.key] = covered.get(p.key, 0) + p.covered
            first.setdefault(p.key, p)
    order = sorted(covered, key=lambda k: (-covered[k], k))
    points, cumulative, running = [], [], 0
    for key in order:
        running += covered[key]
        cumulative.append(running)
        p = first[key]
        share = round(running / total, 4) if total else 0.0
        points.append(PatchPoint(key, p.name, p.path, p.line, covered[key], share))
    needed = tuple((pct, _needed(cumulative, total, pct)) for pct in (50, 90, 100))
    return Coverage(total, tuple(points), needed)


def _needed(cumulative: Sequence[int], total: int, percent: int) -> int | None:
    """Points needed for percent% of total sites (the scanner's rule: ceiling of the share)."""
    need = -(-total * percent // 100)
    if need == 0:
        return 0
    for i, running in enumerate(cumulative, start=1):
        if running >= need:
            return i
    return None
