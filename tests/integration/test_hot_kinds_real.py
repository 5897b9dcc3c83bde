"""How sites are hot on the real tree (issue 12 item 6): blk-mq and the NVMe interrupt
(pci_request_irq, threaded or not), a SCSI host's queuecommand doorbell, and igb's VF reset
handling that its interrupt reaches only through reset functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .helpers import scan_folder

pytestmark = pytest.mark.integration



def _site(data: dict[str, Any], function: str, callee: str) -> dict[str, Any]:
    found = [s for s in data["sites"] if s["function"] == function and s["callee"] == callee]
    assert found, (function, callee)
    return found[0]


def test_nvme_roots_and_doorbells(kernel_tree: Path, tmp_path: Path) -> None:
    data = scan_folder(kernel_tree, "drivers/nvme/host", tmp_path)
    roots = {(r["function"], r["how"], r["kind"]) for r in data["hot_roots"]
             if r["path"].endswith("/pci.c")}
    assert {("nvme_queue_rq", ".queue_rq", "io"), ("nvme_poll", ".poll", "io-poll"),
            ("nvme_irq", "pci_request_irq", "irq"),
            ("nvme_irq", "pci_request_irq[3]", "irq-thread")} <= roots
    assert _site(data, "nvme_write_sq_db", "writel")["hot_kinds"] == ["io"]
    assert _site(data, "nvme_ring_cq_doorbell", "writel")["hot_kinds"] == [
        "io-poll", "irq", "irq-thread"]


def test_scsi_queuecommand_doorbell(kernel_tree: Path, tmp_path: Path) -> None:
    data = scan_folder(kernel_tree, "drivers/scsi/mpi3mr", tmp_path)
    site = _site(data, "mpi3mr_op_request_post", "writel")
    assert site["hot"] and "io" in site["hot_kinds"]


def test_igb_vf_reset_is_reset_only(kernel_tree: Path, tmp_path: Path) -> None:
    data = scan_folder(kernel_tree, "drivers/net/ethernet/intel/igb", tmp_path)
    reset = _site(data, "igb_vf_reset_msg", "wr32")
    assert (reset["hot"], reset["hot_kinds"], reset["hot_only_via"]) == (False, ["irq"], "reset")
    tail = _site(data, "igb_tx_map", "writel")
    assert (tail["hot"], tail["hot_kinds"], tail["hot_only_via"]) == (True, ["xmit"], None)
