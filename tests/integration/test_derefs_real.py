"""Raw __iomem dereferences on the real tree (linux-source-6.12), checked by hand.

Only the files named here are scanned (`--direct-only`, a second or two). Each expected site
was read against the code: the pointer is declared `__iomem` in the same file (a parameter, a
local, a global, a field of a struct of the file, or a cast) and the statement reads or writes
through it. The negative lines are the look-alikes that the first version of the analysis
reported and that are not compiler-chosen MMIO accesses: `&r->x` handed to an accessor, an
array of a register struct decaying to its address, a call through an ops member that shares
a field name, a macro that takes `&` of its argument, an asm memory operand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmioscan.analysis.pipeline import ScanOptions, run_scan
from mmioscan.core.model import Site
from mmioscan.core.ruleset import load_rules

pytestmark = pytest.mark.integration

# (path, text on the line, access, form): one deref site each.
FOUND = [
    ("drivers/cpufreq/sc520_freq.c", "*cpuctl = clockspeed_reg |", "write", "*p"),  # global
    ("drivers/cpufreq/sc520_freq.c", "u8 clockspeed_reg = *cpuctl;", "read", "*p"),
    ("drivers/macintosh/via-pmu.c", "via1[SR] = x; eieio();", "write", "p[i]"),
    ("drivers/block/swim3.c", "sw->nseek = n;", "write", "p->field"),  # struct overlay local
    ("drivers/usb/gadget/udc/fsl_udc_core.c", "tmp_reg = usb_sys_regs->snoop1;", "read",
     "p->field"),
    ("drivers/acpi/acpi_extlog.c", "extlog_l1_addr)->flags |= FLAG_OS_OPTIN;", "both",
     "p->field"),  # cast away from __iomem, then dereferenced
    ("drivers/gpu/drm/tilcdc/tilcdc_regs.h", "*(volatile u64 __force *)addr =", "write", "*p"),
    ("drivers/usb/host/oxu210hp-hcd.c", "oxu->mem->frame_list[i] = EHCI_LIST_END;", "write",
     "p->field"),  # a field of a struct of the same file
    ("drivers/spi/spi-au1550.c", "hw->regs->psc_ctrl = PSC_CTRL_ENABLE;", "write", "p->field"),
    ("drivers/scsi/mesh.c", "nb = (mr->count_hi << 8) + mr->count_lo;", "read", "p->field"),
]

# (path, text on the line): no deref site on any line holding the text.
NOT_FOUND = [
    ("drivers/scsi/mesh.c", "out_8(&mr->sequence, SEQ_RESETMESH);"),
    ("drivers/scsi/mesh.c", "while(in_8(&mr->fifo_count))"),
    ("drivers/block/swim3.c", "out_8(&sw->control_bic, DO_ACTION | WRITE_SECTORS);"),
    ("drivers/mailbox/arm_mhuv2.c", "readl_relaxed(&mhu->send->ch_wn[priv->ch_wn_idx].stat)"),
    ("drivers/mailbox/arm_mhuv2.c", "writel_relaxed(0xFFFFFFFF, &mhu->recv->ch_wn[i].mask_set);"),
    ("drivers/mailbox/arm_mhuv2.c", "get_irq_chan_comb(mhu, mhu->send->chcomb_int_st);"),
    ("drivers/firmware/arm_scmi/transports/mailbox.c", "core->shmem->tx_prepare("),
    ("drivers/scsi/arcmsr/arcmsr_hba.c", "arcmsr_get_adapter_config(acb, reg->message_rwbuffer);"),
    ("drivers/scsi/arcmsr/arcmsr_hba.c", "iop_data = (uint32_t __iomem *)prbuffer->data;"),
    ("drivers/watchdog/rc32434_wdt.c", "SET_BITS(wdt_reg->errcs, or, nand);"),
    ("arch/x86/include/asm/special_insns.h", '"+m" (*__dst)'),
    # declared __iomem, but RAM (rules/ram.toml): a dma_pool_alloc buffer, a DBDMA command
    # ring from dma_alloc_coherent, a static buffer handed to the hypervisor
    ("drivers/dma/at_hdmac.c", "*(u32*)vaddr = value;"),
    ("sound/ppc/pmac.c", "cp->xfer_status = cpu_to_le16(0);"),
    ("arch/powerpc/platforms/ps3/gelic_udbg.c", "*pmsgc++ = ch;"),
]

# Files whose every __iomem pointer is RAM-backed, and how many derefs each leaves out
RAM_BACKED = {"drivers/dma/at_hdmac.c": 2, "sound/ppc/pmac.c": 20,
              "arch/powerpc/platforms/ps3/gelic_udbg.c": 18}


@pytest.fixture(scope="module")
def derefs(kernel_tree: Path) -> dict[str, list[Site]]:
    paths = sorted({p for p, *_ in FOUND} | {p for p, _ in NOT_FOUND})
    result = run_scan(ScanOptions(paths=tuple(kernel_tree / p for p in paths), root=kernel_tree,
                                  direct_only=True), load_rules()).result
    by_path: dict[str, list[Site]] = {p: [] for p in paths}
    for site in result.sites:
        if site.kind == "deref":
            by_path[site.path].append(site)
    return by_path


def _lines(kernel_tree: Path, path: str, text: str) -> list[int]:
    lines = (kernel_tree / path).read_text(encoding="utf-8").splitlines()
    found = [i for i, line in enumerate(lines, start=1) if text in line]
    assert found, f"{path}: no line holds {text!r} (tree changed?)"
    return found


@pytest.mark.parametrize(("path", "text", "access", "form"), FOUND,
                         ids=[f"{p.rsplit('/', 1)[-1]}:{t[:20]}" for p, t, *_ in FOUND])
def test_hand_checked_derefs_are_found(kernel_tree: Path, derefs: dict[str, list[Site]],
                                       path: str, text: str, access: str, form: str) -> None:
    lines = set(_lines(kernel_tree, path, text))
    hits = [s for s in derefs[path] if s.line in lines and s.active]
    assert hits, f"{path}: no deref on the line of {text!r}"
    assert {(s.access, s.callee, s.accessor, s.family) for s in hits} == {
        (access, form, "deref", "deref")}


@pytest.mark.parametrize(("path", "text"), NOT_FOUND,
                         ids=[f"{p.rsplit('/', 1)[-1]}:{t[:20]}" for p, t in NOT_FOUND])
def test_addresses_and_look_alikes_are_not_derefs(kernel_tree: Path,
                                                  derefs: dict[str, list[Site]],
                                                  path: str, text: str) -> None:
    lines = set(_lines(kernel_tree, path, text))
    assert not [s for s in derefs[path] if s.line in lines]


def test_whole_files(derefs: dict[str, list[Site]]) -> None:
    # mesh.c reads its register overlay directly in ~80 places (debug dumps, MKWORD(...));
    # arm_mhuv2.c, the scmi transport and arcmsr only ever pass addresses.
    assert 70 <= len([s for s in derefs["drivers/scsi/mesh.c"] if s.active]) <= 100
    for clean in ("drivers/mailbox/arm_mhuv2.c", "drivers/firmware/arm_scmi/transports/mailbox.c",
                  "drivers/scsi/arcmsr/arcmsr_hba.c", "drivers/watchdog/rc32434_wdt.c",
                  "arch/x86/include/asm/special_insns.h"):
        assert derefs[clean] == [], clean
    assert all(s.function is not None for p in derefs.values() for s in p)


def test_ram_backed_derefs_are_counted_not_listed(kernel_tree: Path) -> None:
    for path, count in RAM_BACKED.items():
        result = run_scan(ScanOptions(paths=(kernel_tree / path,), root=kernel_tree,
                                      direct_only=True), load_rules()).result
        assert not [s for s in result.sites if s.kind == "deref"], path
        assert result.ram_backed_derefs == count, path
