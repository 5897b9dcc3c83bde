"""Hand-built ScanResults for the renderer tests (SARIF, CSV, Markdown, HTML).

`sample_result()` is small and realistic: drivers in all three groups, sites of every kind and
every TDX path (and not assessed, inactive, not built under the config), strategy rows, patch
points, problems, and text that must be escaped (`|`, backticks, `</script>`, non-ASCII, a
lone surrogate from a non-UTF-8 source line). `big_result(n)` is synthetic and large, for the
size bounds.
"""

from __future__ import annotations

from dataclasses import replace

from mmioscan.analysis.fingerprint import fingerprint
from mmioscan.core.evolve import enriched
from mmioscan.core.model import (
    Coverage,
    DriverInfo,
    DriverSummary,
    PatchPoint,
    Problem,
    ScanResult,
    ScanStats,
    Site,
    StrategyRow,
    Tdx,
)

ROOT = "/src/linux-6.12"
VE = Tdx("ve", "mov", 1, "readl is an inline mov: decoded by insn_decode_mmio")
VE_BULK = Tdx("ve", "unrolled-mov", 64, "memcpy_toio unrolls to one writeb per byte in a TD")
PARAVIRT = Tdx("paravirt", "tdvmcall", 0, "vp_ioread16 is patched (virtio-paravirt)")
MOVS = Tdx("unsupported", "movs", None, "__iowrite32_copy is rep movsl: MOVS is rejected")
MOVDIR = Tdx("unsupported", "movdir64b", None, "iosubmit_cmds512 is MOVDIR64B: decode fails")
DEREF = Tdx("unsupported", "compiler-chosen", None, "raw __iomem dereference")
PIO = Tdx("ve", "in", 1, "port I/O traps (#VE), handled apart from MMIO")

VIRTIO = DriverInfo("virtio_pci", "VIRTIO_PCI", "virtio", "Kconfig VIRTIO_PCI: depends on VIRTIO",
                    True, "drivers/virtio/Makefile: obj-$(CONFIG_VIRTIO_PCI) += virtio_pci.o")
E1000E = DriverInfo("e1000e", "E1000E", "generic", "Kconfig E1000E: depends on PCI", True)
HPET = DriverInfo("hpet", "HPET", "x86", "Kconfig HPET: depends on X86", True)
IDXD = DriverInfo("idxd", "INTEL_IDXD", "x86", "Kconfig INTEL_IDXD: depends on X86_64", False)
ODD = DriverInfo("odd|name<script>", None, "generic", "folder drivers/odd", None)


def site(info: DriverInfo, path: str, line: int, callee: str, accessor: str, kind: str,
         tdx: Tdx | None, *, code: str, function: str | None = "probe", hot: bool = False,
         via: tuple[str, ...] = (), family: str = "mmio", access: str = "read",
         width: int | None = 32, active: bool = True, column: int = 9) -> Site:
    base = Site(path, line, column, function, callee, accessor, kind,  # type: ignore[arg-type]
                access, width, family, active, via, (accessor,), info.name, hot,
                hot_kinds=("irq",) if hot else ())
    fp = fingerprint(path, function, kind, callee, code, 0)
    return enriched(base, info, tdx, fp, code)


def sample_sites() -> tuple[Site, ...]:
    vp = "drivers/virtio/virtio_pci_modern_dev.c"
    e1k = "drivers/net/ethernet/intel/e1000e/netdev.c"
    sites = [
        site(VIRTIO, vp, 40, "vp_ioread16", "ioread16", "wrapper", PARAVIRT,
             code="return vp_ioread16(&cfg->num_queues);", via=("vp_ioread16", "ioread16"),
             width=16),
        site(VIRTIO, vp, 52, "ioread8", "ioread8", "direct", VE, code="ioread8(&cfg->status);",
             width=8, hot=True, function="vp_get_status"),
        site(VIRTIO, vp, 60, "memcpy_toio", "memcpy_toio", "direct", VE_BULK,
             code="memcpy_toio(dst, src, 64);", family="bulk", access="write", width=None),
        site(E1000E, e1k, 100, "er32", "readl", "wrapper", VE, code="icr = er32(ICR);",
             via=("er32", "__er32", "readl"), hot=True, function="e1000_intr"),
        site(E1000E, e1k, 120, "ew32", "writel", "wrapper", VE, code="ew32(IMS, IMS_ENABLE);",
             via=("ew32", "__ew32", "writel"), access="write"),
        site(E1000E, e1k, 130, "ioread32", "ioread32", "reference", VE,
             code=".read = ioread32,", family="iomap", function=None),
        site(E1000E, e1k, 140, "regmap_read", "readl", "regmap", None,
             code="regmap_read(map, REG, &v);", family="regmap",
             via=("regmap_read", "regmap_mmio_read", "readl")),
        site(E1000E, e1k, 150, "writel", "writel", "direct", VE, code="writel(0, reg);",
             active=False, access="write"),
        site(HPET, "arch/x86/kernel/hpet.c", 30, "hpet_readl", "readl", "wrapper", VE,
             code="return hpet_readl(HPET_COUNTER);", via=("hpet_readl", "readl"), hot=True,
             function="read_hpet"),
        site(HPET, "arch/x86/kernel/hpet.c", 44, "inb", "inb", "direct", PIO,
             code="inb(0x61);", family="pio", width=8),
        site(HPET, "arch/x86/kernel/hpet.c", 50, "p->field", "deref", "deref", DEREF,
             code="regs->ctrl |= 1; /* `odd` | pipes */", access="write", width=None,
             family="deref"),
        site(IDXD, "drivers/dma/idxd/submit.c", 70, "iosubmit_cmds512", "iosubmit_cmds512",
             "direct", MOVDIR, code="iosubmit_cmds512(portal, desc, 1);", family="submit",
             access="write", width=None),
        site(ODD, "drivers/odd/odd main.c", 12, "__iowrite32_copy", "__iowrite32_copy",
             "direct", MOVS, code='__iowrite32_copy(to, "</script><!--", n); // caf\u00e9 \udcff',
             family="bulk", access="write", width=32, function=None, hot=True),
    ]
    return tuple(sorted(sites, key=Site.sort_key))


def _point(key: str, covered: int, share: float) -> PatchPoint:
    path, name = key.rsplit(":", 1)
    return PatchPoint(key, name, path, 10, covered, share)


def sample_coverage() -> tuple[tuple[str, Coverage], ...]:
    """Greedy curves: "all" (90% and 100% out of reach: a file-scope site has no candidate)
    and one per driver."""
    keys = ("drivers/virtio/virtio_pci_modern_dev.c:vp_get_status",
            "drivers/net/ethernet/intel/e1000e/netdev.c:__er32",
            "drivers/net/ethernet/intel/e1000e/netdev.c:__ew32",
            "arch/x86/kernel/hpet.c:hpet_readl", "arch/x86/kernel/hpet.c:read_hpet",
            "include/linux/virtio_pci_modern.h:vp_ioread16")
    covers = (2, 1, 1, 1, 1, 1)
    shares = (0.25, 0.375, 0.5, 0.625, 0.75, 0.875)
    pts = [_point(k, c, s) for k, c, s in zip(keys, covers, shares, strict=True)]
    vp2, er, ew, hp, hp2, vp = pts
    return (
        ("all", Coverage(8, tuple(pts), ((50, 3), (90, None), (100, None)))),
        ("e1000e", Coverage(2, (_share(er, 0.5), _share(ew, 1.0)),
                            ((50, 1), (90, 2), (100, 2)))),
        ("hpet", Coverage(2, (_share(hp, 0.5), _share(hp2, 1.0)),
                          ((50, 1), (90, 2), (100, 2)))),
        ("virtio_pci", Coverage(3, (_share(vp2, 0.6667), _share(vp, 1.0)),
                                ((50, 1), (90, 2), (100, 2)))),
    )


def _share(point: PatchPoint, share: float) -> PatchPoint:
    return replace(point, cumulative_share=share)


def sample_drivers(sites: tuple[Site, ...]) -> tuple[DriverSummary, ...]:
    rows = []
    for info in (E1000E, HPET, IDXD, ODD, VIRTIO):
        mine = [s for s in sites if s.driver == info.name and s.active]
        ve = [s for s in mine if s.tdx and s.tdx.path == "ve"]
        rows.append(DriverSummary(
            info, tuple(sorted({s.path.rsplit("/", 1)[0] for s in mine})), len(mine), len(ve),
            sum(1 for s in mine if s.tdx and s.tdx.path == "paravirt"),
            sum(1 for s in mine if s.tdx and s.tdx.path == "unsupported"),
            sum(s.hot for s in mine), sum(s.tdx.ve_exits or 0 for s in ve if s.tdx),
            None if info is ODD else 2))
    return tuple(rows)


def sample_strategies() -> tuple[StrategyRow, ...]:
    rows = []
    for strategy, paravirt in (("upstream", 0), ("virtio-paravirt", 1)):
        for group, sites in (("virtio", 3), ("x86", 4), ("generic", 6), ("all", 13)):
            pv = paravirt if group in ("virtio", "all") else 0
            rows.append(StrategyRow(strategy, group, 2, sites, sites - 2 - pv, pv, 2, 1, 1,
                                    sites * 3, 1, None if group == "all" else 2))
    return tuple(rows)


def sample_result(**changes: object) -> ScanResult:
    sites = sample_sites()
    result = ScanResult(
        root=ROOT, kernel_version="6.12.9", scanned=("drivers", "arch/x86"), sites=sites,
        problems=(Problem("drivers/bad|file.c", "not UTF-8 <binary>"),),
        stats=ScanStats(10, 8, 2, 1, 100, 1, 20, 0),
        patch_points=sample_coverage(), drivers=sample_drivers(sites),
        strategy="upstream", config="/boot/config-6.12", strategies=sample_strategies())
    return replace(result, **changes)  # type: ignore[arg-type]


def big_result(count: int = 250_000) -> ScanResult:
    """A drivers/-sized synthetic result: ~2,500 drivers, 4% unsupported, 14% hot #VE."""
    sites = []
    infos = [DriverInfo(f"drv{i:04d}", f"DRV{i:04d}", ("virtio", "x86", "generic")[i % 3],
                        f"Kconfig DRV{i:04d}: depends on PCI", True) for i in range(2500)]
    for n in range(count):
        index = n % len(infos)
        info = infos[index]
        path = f"drivers/grp{index % 97}/{info.name}/file{n % 13}.c"
        tdx = MOVS if n % 25 == 0 else VE if n % 7 else PARAVIRT
        code = f"value = readl(priv->regs + REG_{n:06d}); /* register {n} of the device */"
        sites.append(site(info, path, 10 + n % 5000, "rd32", "readl", "wrapper", tdx,
                          code=code, via=("rd32", "__rd32", "readl"), hot=n % 7 == 1,
                          function=f"func_{n % 4000}"))
    sites.sort(key=Site.sort_key)
    points = tuple(_point(f"drivers/x/{info.name}.c:rd32", 100, min(1.0, (i + 1) / 2500))
                   for i, info in enumerate(infos))
    return ScanResult(
        root=ROOT, kernel_version="6.12.9", scanned=("drivers",), sites=tuple(sites),
        problems=tuple(Problem(f"drivers/p{i}.c", "parse error") for i in range(500)),
        stats=ScanStats(31000, 8700, 22000, 1600, 214000, 1500, 50000, 0),
        patch_points=(("all", Coverage(count, points, ((50, 1250), (90, 2250), (100, 2500)))),),
        strategy="upstream")
