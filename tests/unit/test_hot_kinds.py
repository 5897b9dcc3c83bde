"""How a site is hot (issue 12 item 6): root kinds, the threaded handler, blk-mq and SCSI
roots, ops fields checked against their struct, the driver's headers on the path from a root,
and sites reached only through reset or error handling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mmioscan.core.catalogue import RuleError
from mmioscan.core.ruleset import _hot, load_rules

from .helpers import scan_json
from .test_wrappers import mini_tree

# A network driver: every callback touches its own register, so each site tells which roots
# reach it. hk_ring.h names no accessor: only the hot-header parse brings hk_ring_kick in.
_NET_MAIN = """\
#include "hk_ring.h"

#define HK_ACK		0x00
#define HK_STATUS	0x04
#define HK_RX		0x08
#define HK_TAIL		0x0c
#define HK_CTRL		0x10
#define HK_DUMP		0x14
#define HK_FOP		0x18
#define HK_WORK		0x1c
#define HK_SLOW		0x20
#define HK_ERR		0x24
#define HK_SHARED	0x28

static void __iomem *hk_regs;

void hk_write_tail(u32 tail)
{
	writel(tail, hk_regs + HK_TAIL);
}

void hk_write_slow(u32 val)
{
	writel(val, hk_regs + HK_SLOW);
}

static void hk_shared(void)
{
	writel(1, hk_regs + HK_SHARED);
}

static void hk_hw_reset(void)
{
	writel(1, hk_regs + HK_CTRL);
	hk_shared();
}

static void hk_handle_err(void)
{
	writel(1, hk_regs + HK_ERR);
}

static netdev_tx_t hk_xmit(struct sk_buff *skb, struct net_device *ndev)
{
	struct hk_ring *ring = netdev_priv(ndev);

	ring->tail++;
	hk_ring_kick(ring);
	return NETDEV_TX_OK;
}

static void hk_tx_timeout(struct net_device *ndev, unsigned int txq)
{
	hk_hw_reset();
}

static int hk_poll(struct napi_struct *napi, int budget)
{
	int done = readl(hk_regs + HK_RX);

	hk_shared();
	if (done < 0)
		hk_hw_reset();
	return done;
}

static irqreturn_t hk_isr(int irq, void *data)
{
	writel(1, hk_regs + HK_ACK);
	hk_ptp_event();
	return IRQ_WAKE_THREAD;
}

static irqreturn_t hk_isr_thread(int irq, void *data)
{
	u32 status = readl(hk_regs + HK_STATUS);

	if (status & 1)
		hk_handle_err();
	return IRQ_HANDLED;
}

static void hk_get_regs(struct net_device *ndev, struct ethtool_regs *regs, void *p)
{
	*(u32 *)p = readl(hk_regs + HK_DUMP);
}

static __poll_t hk_fop_poll(struct file *file, poll_table *wait)
{
	return readl(hk_regs + HK_FOP);
}

static void hk_work(struct work_struct *work)
{
	writel(0, hk_regs + HK_WORK);
}

static const struct net_device_ops hk_netdev_ops = {
	.ndo_start_xmit		= hk_xmit,
	.ndo_tx_timeout		= hk_tx_timeout,
};

static const struct ethtool_ops hk_ethtool_ops = {
	.get_regs		= hk_get_regs,
};

static const struct file_operations hk_fops = {
	.poll			= hk_fop_poll,
};

int hk_probe(struct net_device *ndev, struct hk_ring *ring, struct work_struct *w)
{
	netif_napi_add(ndev, &ring->napi, hk_poll);
	INIT_WORK(w, hk_work);
	hk_slow_kick(ring);
	return request_threaded_irq(ndev->irq, hk_isr, hk_isr_thread, 0, "hk", ndev);
}
"""

_NET_PTP = """\
#define HK_PTP		0x2c

extern void __iomem *hk_ptp_regs;

void hk_ptp_event(void)
{
	writel(1, hk_ptp_regs + HK_PTP);
}
"""

_NET_RING = """\
/* Ring helpers: no register access written here, only calls of the driver's functions. */
#ifndef HK_RING_H
#define HK_RING_H

struct hk_ring {
	struct napi_struct napi;
	u32 tail;
};

void hk_write_tail(u32 tail);
void hk_write_slow(u32 val);

static inline void hk_ring_kick(struct hk_ring *ring)
{
	hk_write_tail(ring->tail);
}

static inline void hk_slow_kick(struct hk_ring *ring)
{
	hk_write_slow(ring->tail);
}

#ifdef CONFIG_HK_PTP
void hk_ptp_event(void);
#else
static inline void hk_ptp_event(void)
{
}
#endif

#endif
"""

# A blk-mq driver and a SCSI host: queue_rq and queuecommand ring a doorbell, poll reads the
# completion queue, the timeout and the host reset are reset handling.
_BLOCK = """\
#define BK_DB		0x00
#define BK_CQ		0x04
#define BK_ABORT	0x08
#define BK_DONE		0x0c
#define BK_OTHER	0x10
#define SK_DB		0x20
#define SK_RESET	0x24
#define SK_RECOVER	0x28

static void __iomem *bk_regs;

static blk_status_t bk_queue_rq(struct blk_mq_hw_ctx *hctx, const struct blk_mq_queue_data *bd)
{
	writel(1, bk_regs + BK_DB);
	return BLK_STS_OK;
}

static int bk_poll(struct blk_mq_hw_ctx *hctx, struct io_comp_batch *iob)
{
	return readl(bk_regs + BK_CQ);
}

static void bk_complete(struct request *req)
{
	writel(1, bk_regs + BK_DONE);
}

static enum blk_eh_timer_return bk_timeout(struct request *req)
{
	writel(1, bk_regs + BK_ABORT);
	return BLK_EH_DONE;
}

static int bk_other_poll(struct other_ops *ops)
{
	return readl(bk_regs + BK_OTHER);
}

static const struct blk_mq_ops bk_mq_ops = {
	.queue_rq	= bk_queue_rq,
	.poll		= bk_poll,
	.complete	= bk_complete,
	.timeout	= bk_timeout,
};

static const struct other_ops bk_other_ops = {
	.poll		= bk_other_poll,
};

static void sk_recover(void)
{
	writel(1, bk_regs + SK_RECOVER);
}

static int sk_queuecommand(struct Scsi_Host *shost, struct scsi_cmnd *cmd)
{
	if (!cmd)
		sk_recover();
	writel(1, bk_regs + SK_DB);
	return 0;
}

static int sk_host_reset(struct scsi_cmnd *cmd)
{
	writel(1, bk_regs + SK_RESET);
	return SUCCESS;
}

static const struct scsi_host_template sk_sht = {
	.queuecommand		= sk_queuecommand,
	.eh_host_reset_handler	= sk_host_reset,
};
"""


def _by_register(data: dict[str, Any]) -> dict[str, tuple[bool, list[str], str | None]]:
    """register macro named in the site's code -> (hot, hot_kinds, hot_only_via)."""
    found: dict[str, tuple[bool, list[str], str | None]] = {}
    for site in data["sites"]:
        code = site["code"] or ""
        names = [w.strip("(),;") for w in code.replace("+", " ").split()
                 if w.strip("(),;").isupper()]
        assert len(names) == 1, code
        found[names[0]] = (site["hot"], site["hot_kinds"], site["hot_only_via"])
    return found


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("net")
    root = mini_tree(tmp / "linux", {"drivers/net/hk/hk_main.c": _NET_MAIN,
                                     "drivers/net/hk/hk_ring.h": _NET_RING,
                                     "drivers/net/hk/hk_ptp.c": _NET_PTP})
    return scan_json(tmp, root / "drivers/net/hk")


@pytest.fixture(scope="module")
def block(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("block")
    root = mini_tree(tmp / "linux", {"drivers/block/bk/bk_main.c": _BLOCK})
    return scan_json(tmp, root / "drivers/block/bk")


def test_net_roots_carry_their_kind(net: dict[str, Any]) -> None:
    roots = {(r["function"], r["how"], r["kind"]) for r in net["hot_roots"]}
    assert roots == {
        ("hk_xmit", ".ndo_start_xmit", "xmit"),
        ("hk_poll", "netif_napi_add", "napi"),
        ("hk_isr", "request_threaded_irq", "irq"),
        ("hk_isr_thread", "request_threaded_irq[2]", "irq-thread"),
    }  # no .ndo_tx_timeout (a reset function, no root), no ethtool, fops .poll or work


def test_threaded_handler_is_irq_thread_not_irq(net: dict[str, Any]) -> None:
    sites = _by_register(net)
    assert sites["HK_ACK"] == (True, ["irq"], None)
    assert sites["HK_STATUS"] == (True, ["irq-thread"], None)


def test_napi_and_shared_callee(net: dict[str, Any]) -> None:
    sites = _by_register(net)
    assert sites["HK_RX"] == (True, ["napi"], None)
    # called from the poll directly and from the reset: hot through the direct path
    assert sites["HK_SHARED"] == (True, ["napi"], None)


def test_header_inline_on_the_xmit_path_is_parsed(net: dict[str, Any]) -> None:
    """hk_xmit -> hk_ring_kick (hk_ring.h, no accessor text) -> hk_write_tail -> writel."""
    assert _by_register(net)["HK_TAIL"] == (True, ["xmit"], None)


def test_a_parsed_header_stub_does_not_hide_the_real_function(net: dict[str, Any]) -> None:
    """hk_ring.h's `#else` stub of hk_ptp_event is parsed now; the interrupt still reaches
    the driver's real hk_ptp_event (hk_ptp.c)."""
    assert _by_register(net)["HK_PTP"] == (True, ["irq"], None)


def test_header_inline_off_the_hot_path_is_not_hot(net: dict[str, Any]) -> None:
    """hk_probe -> hk_slow_kick (same header): parsed too, but no root reaches it."""
    assert _by_register(net)["HK_SLOW"] == (False, [], None)


def test_reset_and_error_only_sites(net: dict[str, Any]) -> None:
    sites = _by_register(net)
    # hk_poll -> hk_hw_reset (a reset function by name; also .ndo_tx_timeout's callee)
    assert sites["HK_CTRL"] == (False, ["napi"], "reset")
    # hk_isr_thread -> hk_handle_err: error handling
    assert sites["HK_ERR"] == (False, ["irq-thread"], "reset")


def test_callbacks_that_are_not_hot(net: dict[str, Any]) -> None:
    sites = _by_register(net)
    assert sites["HK_DUMP"] == (False, [], None)  # ethtool .get_regs
    assert sites["HK_FOP"] == (False, [], None)  # .poll of a file_operations, not blk-mq's
    assert sites["HK_WORK"] == (False, [], None)  # a workqueue item


def test_block_and_scsi_roots(block: dict[str, Any]) -> None:
    roots = {(r["function"], r["how"], r["kind"]) for r in block["hot_roots"]}
    assert roots == {
        ("bk_queue_rq", ".queue_rq", "io"),
        ("bk_poll", ".poll", "io-poll"),
        ("bk_complete", ".complete", "io"),
        ("sk_queuecommand", ".queuecommand", "io"),
    }
    sites = _by_register(block)
    assert sites["BK_DB"] == (True, ["io"], None)
    assert sites["BK_CQ"] == (True, ["io-poll"], None)
    assert sites["BK_DONE"] == (True, ["io"], None)
    assert sites["SK_DB"] == (True, ["io"], None)


def test_block_negatives(block: dict[str, Any]) -> None:
    sites = _by_register(block)
    assert sites["BK_ABORT"] == (False, [], None)  # .timeout: reset, and no root reaches it
    assert sites["BK_OTHER"] == (False, [], None)  # .poll of another struct
    assert sites["SK_RESET"] == (False, [], None)  # .eh_host_reset_handler
    assert sites["SK_RECOVER"] == (False, ["io"], "reset")  # queuecommand -> sk_recover


def test_every_output_says_how_a_site_is_hot(tmp_path: Path) -> None:
    root = mini_tree(tmp_path / "linux", {"drivers/block/bk/bk_main.c": _BLOCK})
    out = tmp_path / "out.csv"
    from .helpers import run_cli
    assert run_cli(["scan", str(root / "drivers/block/bk"), "--format", "csv", "-o", str(out),
                    "--no-cache", "--no-progress"]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0].endswith(",hot_kinds,hot_only_via")
    assert any(line.endswith(",io,") for line in text.splitlines())
    assert any(line.endswith(",io,reset") for line in text.splitlines())


# -- the rules ----------------------------------------------------------------------------------


def test_rule_kinds_and_reset_names() -> None:
    hot = load_rules().hot
    assert hot.kind_of("request_threaded_irq") == "irq"
    assert hot.kind_of("request_threaded_irq[2]") == "irq-thread"
    assert hot.kind_of("devm_request_threaded_irq[3]") == "irq-thread"
    assert hot.kind_of(".queuecommand") == "io"
    assert hot.kind_of(".ndo_tx_timeout") == "reset"
    assert hot.kind_of("unknown_registration") == "hot"
    assert hot.structs["poll"] == "blk_mq_ops"
    for name in ("igb_reset", "e1000e_recover", "nvme_timeout", "foo_handle_err",
                 "ixgbe_tx_timeout", "mlx_error_irq"):
        assert hot.is_reset_name(name), name
    for name in ("igb_msix_ring", "readl_poll_timeout", "e1000_intr", "ferry_xmit",
                 "foo_interrupt", "nvme_irq"):
        assert not hot.is_reset_name(name), name


@pytest.mark.parametrize("bad", [
    {"registration_kinds": {"request_irq": ["irq", "irq"]}},
    {"registration_kinds": {"no_such_call": "irq"}},
    {"fields": {"queue_rq": {"struct": "blk_mq_ops"}}},
    {"reset": {"words": "reset"}},
])
def test_bad_hot_rules_are_refused(bad: dict[str, Any]) -> None:
    data: dict[str, Any] = {"registration": {"request_irq": [1]},
                            "fields": {"queue_rq": {"struct": "blk_mq_ops", "kind": "io"}}}
    data.update(bad)
    with pytest.raises(RuleError):
        _hot(data, "hotpaths.toml")


def test_legacy_field_form_still_loads() -> None:
    hot = _hot({"registration": {}, "fields": {"ndo_start_xmit": "net_device_ops"}}, "x")
    assert hot.kind_of(".ndo_start_xmit") == "hot"
    assert hot.structs == {"ndo_start_xmit": "net_device_ops"}
