"""Hand-made enriched sites for the gate's unit tests, and a fake scanner.

The fake scanner reads the materialised tree like the real one would, but only by regex:
`__iowrite32_copy(` is unsupported, `readl(`/`writel(` and `vp_ioread32(` trap (#VE). It lets
the gate's plumbing (git, patches, matching, policy) be tested without the analysis stack.
"""

from __future__ import annotations

import re
from pathlib import Path

from mmioscan.analysis.fingerprint import assign, fingerprint, normalize_code
from mmioscan.core.model import ScanResult, ScanStats, Site, Tdx

_CALL_RE = re.compile(r"\b(__iowrite32_copy|readl|writel|vp_ioread32)\s*\(")
_FUNC_RE = re.compile(r"^\w[\w\s\*]*\b(\w+)\s*\([^;]*$")


def make_site(path: str = "drivers/foo/foo.c", line: int = 10, function: str | None = "foo",
              callee: str = "readl", *, kind: str = "direct", tdx: str | None = "ve",
              hot: bool = False, group: str | None = "generic", reachable: bool | None = None,
              code: str | None = None, via: tuple[str, ...] = (), occurrence: int = 0,
              fp: str | None = None) -> Site:
    code = code if code is not None else f"{callee}(x);"
    verdict = None if tdx is None else Tdx(tdx, "movs" if tdx == "unsupported" else "mov",  # type: ignore[arg-type]
                                            1, "test")
    return Site(path, line, 1, function, callee, callee, kind, "write", 32,  # type: ignore[arg-type]
                "mmio", via=via or (callee,), driver=path.split("/")[-2], hot=hot,
                group=group, reachable=reachable, tdx=verdict,  # type: ignore[arg-type]
                fingerprint=fp or fingerprint(path, function, kind, callee, code, occurrence),
                code=code)


def result_of(sites: list[Site], root: str = "/tree",
              scanned: tuple[str, ...] = (".",)) -> ScanResult:
    return ScanResult(root, "6.12.0", scanned, tuple(sites), (),
                      ScanStats(0, 0, 0, 0, 0, 0, 0, 0))


def fake_scan(root: Path, folders: tuple[str, ...]) -> ScanResult:
    """Regex sites of every .c/.h file directly in the folders, fingerprinted."""
    found: list[tuple[Site, str]] = []
    for folder in folders:
        for file in sorted((root / folder).rglob("*.[ch]")):
            rel = file.relative_to(root).as_posix()
            function = None
            for number, text in enumerate(file.read_text().splitlines(), start=1):
                head = _FUNC_RE.match(text)
                if head:
                    function = head.group(1)
                for m in _CALL_RE.finditer(text):
                    callee = m.group(1)
                    tdx = "unsupported" if callee == "__iowrite32_copy" else "ve"
                    site = make_site(rel, number, function, callee, tdx=tdx,
                                     group="virtio" if "virtio" in rel else "generic")
                    found.append((site, normalize_code(text)))
    sites = []
    for site, fp in assign(found):
        code = normalize_code(_line(root / site.path, site.line))
        sites.append(make_site(site.path, site.line, site.function, site.callee,
                               tdx=site.tdx.path if site.tdx else None, group=site.group,
                               code=code, fp=fp))
    return result_of(sites, str(root), tuple(f or "." for f in folders))


def _line(path: Path, number: int) -> str:
    return path.read_text().splitlines()[number - 1]
