"""Calls through function-pointer fields and iopoll ops (issue 12 items 2 and 6): which
functions a field holds (by struct type when seen, else by field name within the driver's
folder), wrapper sites of calls whose candidates are all funnels, mixes counted apart, the
op of read_poll_timeout, and hot roots registered through a field or a variable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .helpers import scan_json
from .test_wrappers import mini_tree

_FPA = """\
struct fpa_chip {
	void __iomem *base;
	u32 (*rd)(struct fpa_chip *c, u32 reg);
	void (*log)(struct fpa_chip *c);
	u32 (*mix)(struct fpa_chip *c, u32 reg);
	irqreturn_t (*isr)(int irq, void *data);
	struct fpa_ops *ops;
};

static u32 fpa_rd32(struct fpa_chip *c, u32 reg)
{
	return readl(c->base + reg);
}

static void fpa_log(struct fpa_chip *c)
{
	pr_info("fpa\\n");
}

static u32 fpa_nop(struct fpa_chip *c, u32 reg)
{
	return 0;
}

static irqreturn_t fpa_isr(int irq, void *data)
{
	struct fpa_chip *c = data;

	writel(1, c->base + 8);
	return IRQ_HANDLED;
}

static int fpa_poll_a(struct napi_struct *napi, int budget)
{
	return 0;
}

static int fpa_poll_b(struct napi_struct *napi, int budget)
{
	struct fpa_chip *c = napi_to_chip(napi);

	writel(2, c->base + 12);
	return 0;
}

static const struct fpa_ops fpa_table = {
	.rd = fpa_rd32,
};

void fpa_setup(struct fpa_chip *c, struct net_device *dev, int fast)
{
	int (*poll)(struct napi_struct *, int);

	c->rd = fpa_rd32;
	c->log = fpa_log;
	c->mix = fpa_rd32;
	c->mix = fpa_nop;
	c->isr = fpa_isr;
	poll = fast ? fpa_poll_a : fpa_poll_b;
	netif_napi_add(dev, &c->napi, poll);
	request_irq(c->irq, c->isr, 0, "fpa", c);
}

static u32 fpa_get(struct fpa_chip *c, u32 reg)
{
	return c->rd(c, reg);
}

static u32 fpa_slow(struct fpa_chip *c)
{
	return 7;
}

u32 fpa_use(struct fpa_chip *c)
{
	u32 v;

	c->log(c);
	v = c->mix(c, 4);
	v += (*c->rd)(c, 0x20);
	v += c->ops->rd(c, 0x24);
	v += fpa_ops_of(c)->rd(c, 0x34);
	v += fpa_get(c, 0x28);
	read_poll_timeout(fpa_rd32, v, v & 1, 10, 100, false, c, 0x2c);
	read_poll_timeout(fpa_slow, v, v & 1, 10, 100, false, c);
	return v;
}
"""

# A file of the same driver that calls through the field and mentions no accessor.
_FPA_USER = """\
struct fpa_chip {
	void __iomem *base;
	u32 (*rd)(struct fpa_chip *c, u32 reg);
};

u32 fpa_status(struct fpa_chip *c)
{
	return c->rd(c, 0x30);
}
"""

# Another driver with a field of the same name holding a function that reaches no accessor.
_FPB = """\
struct fpb_priv {
	struct fpb_inner q;
};

static u32 fpb_plain(struct fpb_priv *p, u32 reg)
{
	return reg + 1;
}

static struct fpb_priv fpb_priv = {
	.q = { .rd = fpb_plain },
};

u32 fpb_use(struct fpb_priv *p)
{
	return p->q.rd(p, 4) + readl(p->base);
}
"""

# Two struct types with a field of the same name: the type decides, the name alone mixes.
_FPC = """\
static u32 fpc_rd32(struct fpc_a *a, u32 reg)
{
	return readl(a->base + reg);
}

static u32 fpc_quiet(struct fpc_b *b, u32 reg)
{
	return reg;
}

void fpc_setup(struct fpc_a *a, struct fpc_b *b)
{
	a->rd = fpc_rd32;
	b->rd = fpc_quiet;
}

u32 fpc_use(struct fpc_a *a, struct fpc_b *b, struct fpc_any *x)
{
	return a->rd(a, 4) + b->rd(b, 8) + x->y->rd(x, 12);
}
"""


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = mini_tree(tmp_path_factory.mktemp("fp") / "linux", {
        "drivers/fpa/fpa.c": _FPA, "drivers/fpa/fpa_user.c": _FPA_USER,
        "drivers/fpb/fpb.c": _FPB, "drivers/fpc/fpc.c": _FPC})
    return scan_json(tmp_path_factory.mktemp("out"), root / "drivers", extra=("-j", "1"))


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _sites(scan: dict[str, Any], path: str, text: str, needle: str) -> list[dict[str, Any]]:
    line = _line(text, needle)
    return [s for s in scan["sites"] if s["path"] == path and s["line"] == line]


def test_call_through_a_typed_field_is_a_wrapper_site(scan: dict[str, Any]) -> None:
    [site] = _sites(scan, "drivers/fpa/fpa.c", _FPA, "return c->rd(c, reg);")
    assert site["kind"] == "wrapper" and site["indirect"] is True
    assert site["callee"] == "->rd" and site["targets"] == ["fpa_rd32"]
    assert site["via"] == ["->rd", "fpa_rd32", "readl"] and site["function"] == "fpa_get"


def test_a_caller_through_a_field_is_a_funnel(scan: dict[str, Any]) -> None:
    # fpa_get(c, reg) passes reg into the field's call: its own callers select the register
    [site] = _sites(scan, "drivers/fpa/fpa.c", _FPA, "v += fpa_get(c, 0x28);")
    assert site["callee"] == "fpa_get" and site["via"][:3] == ["fpa_get", "fpa_rd32", "readl"]
    assert site["tdx"]["ve_exits"] == 1


def test_star_form_and_a_file_without_accessors(scan: dict[str, Any]) -> None:
    [star] = _sites(scan, "drivers/fpa/fpa.c", _FPA, "(*c->rd)(c, 0x20)")
    assert star["targets"] == ["fpa_rd32"] and star["tdx"]["ve_exits"] == 1
    [user] = _sites(scan, "drivers/fpa/fpa_user.c", _FPA_USER, "return c->rd(c, 0x30);")
    assert user["targets"] == ["fpa_rd32"]


def test_field_holding_no_funnel_or_a_mix_makes_no_site(scan: dict[str, Any]) -> None:
    assert _sites(scan, "drivers/fpa/fpa.c", _FPA, "c->log(c);") == []
    assert _sites(scan, "drivers/fpa/fpa.c", _FPA, "v = c->mix(c, 4);") == []
    # c->mix (fpa_rd32 or fpa_nop) and fpc's x->y->rd (fpc_rd32 or fpc_quiet)
    assert scan["stats"]["indirect_mixed"] == 2


def test_name_match_stays_in_the_driver(scan: dict[str, Any]) -> None:
    # untyped: every `.rd = ` of drivers/fpa (fpa_rd32), not drivers/fpb's fpb_plain
    [site] = _sites(scan, "drivers/fpa/fpa.c", _FPA, "fpa_ops_of(c)->rd(c, 0x34)")
    assert site["targets"] == ["fpa_rd32"]
    # drivers/fpb's own call reaches fpb_plain only: no site (fpa_rd32 is not in sight)
    assert [s["callee"] for s in _sites(scan, "drivers/fpb/fpb.c", _FPB, "p->q.rd(p, 4)")
            ] == ["readl"]


def test_member_types_give_the_type_of_a_chain(scan: dict[str, Any]) -> None:
    # c->ops is a `struct fpa_ops *` member of struct fpa_chip: fpa_table's `.rd`
    [site] = _sites(scan, "drivers/fpa/fpa.c", _FPA, "c->ops->rd(c, 0x24)")
    assert site["targets"] == ["fpa_rd32"]


def test_struct_type_beats_the_field_name(scan: dict[str, Any]) -> None:
    sites = _sites(scan, "drivers/fpc/fpc.c", _FPC, "a->rd(a, 4)")
    assert [(s["callee"], s.get("targets")) for s in sites] == [("->rd", ["fpc_rd32"])]
    assert scan["stats"]["indirect_sites"] == 6  # fpa 4, fpa_user 1, fpc 1


def test_iopoll_op_is_a_repeated_wrapper_site(scan: dict[str, Any]) -> None:
    sites = _sites(scan, "drivers/fpa/fpa.c", _FPA, "read_poll_timeout(fpa_rd32")
    [site] = [s for s in sites if s["callee"] == "fpa_rd32"]
    assert site["kind"] == "wrapper" and site["tdx"]["ve_exits"] is None
    assert [s["callee"] for s in _sites(scan, "drivers/fpa/fpa.c", _FPA,
                                        "read_poll_timeout(fpa_slow")] == []


def test_roots_through_a_field_and_a_variable_are_hot(scan: dict[str, Any]) -> None:
    [isr] = _sites(scan, "drivers/fpa/fpa.c", _FPA, "writel(1, c->base + 8);")
    [poll] = _sites(scan, "drivers/fpa/fpa.c", _FPA, "writel(2, c->base + 12);")
    assert isr["hot"] and poll["hot"]
    how = {(r["function"], r["how"]) for r in scan["hot_roots"]}
    assert {("struct fpa_chip->isr", "request_irq"), ("fpa_poll_b", "netif_napi_add"),
            ("fpa_poll_a", "netif_napi_add")} <= how


# -- the fast engine's records (cfront/fnptrs.py) ----------------------------------------------

_STORES = """\
struct demo_dev {
	struct demo_ops *ops;
	int len;
};
static struct demo_ops demo_table[] = {
	{ .rd = demo_rd8 },
	{ .rd = &demo_rd16, .flags = DEMO_FLAG },
};
static struct demo_dev demo_dev = {
	.ops = { .wr = demo_wr },
	.a.b = demo_ab,
};
void demo_init(struct demo_dev *d, struct demo_ops *o)
{
	d->rd = demo_rd32;
	o->rd = NULL;
	d->ops.wr = (void *)demo_wr2;
	d->len = len;
	x = (struct demo_ops){ .rd = demo_lit };
	d->ops->wr(d, 1);
	demo_of(d)->rd(d, 2);
}
"""


def test_fast_engine_records_stores_and_calls() -> None:
    from mmioscan.cfront.extract import Extractor
    from mmioscan.core.catalogue import load_catalogue

    got = Extractor(load_catalogue().names()).extract("drivers/demo/d.c", "0", _STORES.encode())
    assert {(s, f, fn) for s, f, fn, _ in got.fnptrs} == {
        ("struct demo_ops", "rd", "demo_rd8"), ("struct demo_ops", "rd", "demo_rd16"),
        ("struct demo_dev.ops", "wr", "demo_wr"),  # the type of member ops: members
        ("struct demo_dev.a", "b", "demo_ab"),
        ("struct demo_dev", "rd", "demo_rd32"), ("struct demo_dev.ops", "wr", "demo_wr2"),
        ("struct demo_ops", "rd", "demo_lit"),
        ("struct demo_dev", "len", "len"),  # a value the call graph finds no function for
    }
    assert [(f, s, scope) for f, s, _l, _c, scope in got.indirect] == [
        ("wr", "struct demo_dev.ops", 0), ("rd", "", 0)]
    assert got.members == (("struct demo_dev", "ops", "struct demo_ops"),)


def _hook_driver(count: int) -> str:
    """A core calling `hook->run(...)` from its interrupt handler, and `count` users each
    storing a function that writes a register into that field."""
    users = "".join(f"""
static void fph_run{i}(struct fph_hook *h)
{{
	writel({i}, h->base);
}}

static struct fph_hook fph_hook{i} = {{ .run = fph_run{i} }};
""" for i in range(count))
    return f"""\
struct fph_hook {{
	void __iomem *base;
	void (*run)(struct fph_hook *h);
}};

static irqreturn_t fph_isr(int irq, void *data)
{{
	struct fph_hook *hook = data;

	hook->run(hook);
	return IRQ_HANDLED;
}}

void fph_setup(int irq, struct fph_hook *hook)
{{
	request_irq(irq, fph_isr, 0, "fph", hook);
}}
{users}"""


@pytest.mark.parametrize(("count", "hot"), [(8, True), (9, False)])
def test_hot_reach_follows_a_field_of_few_candidates(tmp_path: Path, count: int,
                                                     hot: bool) -> None:
    # a field holding more is a framework's hook: every user's function would be hot
    root = mini_tree(tmp_path / "linux", {"drivers/fph/fph.c": _hook_driver(count)})
    scan = scan_json(tmp_path, root / "drivers", extra=("-j", "1"))
    writes = [s for s in scan["sites"] if s["callee"] == "writel"]
    assert len(writes) == count and all(s["hot"] is hot for s in writes)


def _driver(name: str, store: str) -> dict[str, str]:
    """A driver declaring its own `struct mac_ops` (same name in both drivers) and calling
    through it; store is what it puts into the field."""
    return {f"drivers/{name}/{name}.c": (
        "struct mac_ops { u32 (*rd)(struct hw *hw, u32 reg); };\n"
        "struct hw { void __iomem *base; struct mac_ops ops; };\n"
        f"static u32 {name}_rd(struct hw *hw, u32 reg)\n{{\n{store}}}\n"
        f"void {name}_setup(struct hw *hw)\n{{\n\thw->ops.rd = {name}_rd;\n}}\n"
        f"u32 {name}_status(struct hw *hw)\n{{\n\treturn hw->ops.rd(hw, 8);\n}}\n")}


def test_same_struct_in_two_drivers_stays_in_each(tmp_path: Path) -> None:
    """igb and e1000e both declare e1000_mac_operations: scanned together, one driver's
    calls through the struct must not take the other's stores (once they did, and a mix made
    13 igb sites disappear in a scan of intel/ that igb alone lists)."""
    files = {**_driver("aa", "\treturn readl(hw->base + reg);\n"),
             **_driver("bb", "\treturn reg;\n")}
    alone = scan_json(tmp_path, mini_tree(tmp_path / "one", dict(list(files.items())[:1])),
                      name="alone.json")
    both = scan_json(tmp_path, mini_tree(tmp_path / "two", files), name="both.json")

    def sites(data: dict[str, Any]) -> list[tuple[str, int, str, Any]]:
        return [(s["path"], s["line"], s["callee"], s.get("targets")) for s in data["sites"]
                if s["path"].startswith("drivers/aa/")]

    assert ("drivers/aa/aa.c", 13, "->rd", ["aa_rd"]) in sites(alone)
    assert sites(both) == sites(alone)


def test_a_name_declared_twice_in_a_function_takes_its_first_type() -> None:
    """Twenty blocks of one function each declare `m` with a struct type of their own: the
    first declaration gives the type of every store through `m`, in every run (it was the
    declaration the query's hash-ordered captures happened to give first)."""
    from mmioscan.cfront.extract import Extractor
    from mmioscan.core.catalogue import load_catalogue

    blocks = "".join(f"\t{{\n\t\tstruct dt_t{i} m;\n\n\t\tm.hook = dt_fn{i};\n\t}}\n"
                     for i in range(20))
    src = f"void dt_init(void)\n{{\n{blocks}}}\n"
    got = Extractor(load_catalogue().names()).extract("drivers/dt/d.c", "0", src.encode())
    assert {s for s, _f, _fn, _l in got.fnptrs} == {"struct dt_t0"}
    assert len(got.fnptrs) == 20


# A tty-like core whose folder also hosts a polled board driver (no interrupt handler), and a
# Bluetooth-like driver elsewhere whose threaded handler calls the core's exported
# ttyx_set_termios. The core's objects are declared in a header naming no accessor (not
# parsed), so `tty->ops->set_termios` is resolved by field name among drivers/ttyx's stores.
_TTYX_H = """\
struct ttyx_struct;

struct ttyx_operations {
	void (*set_termios)(struct ttyx_struct *tty);
};

struct ttyx_struct {
	const struct ttyx_operations *ops;
	void *driver_data;
};
"""

_TTYX_CORE = """\
#include <linux/ttyx.h>

void ttyx_set_termios(struct ttyx_struct *tty)
{
	if (tty->ops->set_termios)
		tty->ops->set_termios(tty);
}
EXPORT_SYMBOL_GPL(ttyx_set_termios);

u32 ttyx_probe_io(void __iomem *base)
{
	return readl(base);
}
"""

_TTYX_BOARD = """\
#include <linux/ttyx.h>

static void __iomem *tb_base;

static void tb_set_termios(struct ttyx_struct *tty)
{
	writew(1, tb_base + 0x40);
}

static const struct ttyx_operations tb_ops = {
	.set_termios	= tb_set_termios,
};
"""

_BTX_UART = """\
#include <linux/ttyx.h>

struct btx_dev {
	void __iomem *regs;
	struct ttyx_struct *tty;
};

static irqreturn_t btx_wake_thread(int irq, void *data)
{
	struct btx_dev *bd = data;

	writel(1, bd->regs + 0x10);
	ttyx_set_termios(bd->tty);
	return IRQ_HANDLED;
}

int btx_probe(struct btx_dev *bd, int irq)
{
	return request_threaded_irq(irq, NULL, btx_wake_thread, IRQF_ONESHOT, "btx", bd);
}
"""

# A generic-HDLC-like core and a card driver in the same folder: the card installs the core's
# start_xmit as its ndo_start_xmit, and its own xmit into the core's device (through a call:
# no struct type), which the core calls per packet.
_WANX_CORE = """\
#include <linux/wanx.h>

netdev_tx_t wanx_start_xmit(struct sk_buff *skb, struct net_device *dev)
{
	return dev_to_wanx(dev)->xmit(skb, dev);
}
EXPORT_SYMBOL(wanx_start_xmit);

u32 wanx_probe_io(void __iomem *base)
{
	return readl(base);
}
"""

_WANX_CARD = """\
#include <linux/wanx.h>

static void __iomem *wc_base;

static netdev_tx_t wc_xmit(struct sk_buff *skb, struct net_device *dev)
{
	writel(skb->len, wc_base + 0x20);
	return NETDEV_TX_OK;
}

static const struct net_device_ops wc_netdev_ops = {
	.ndo_start_xmit	= wanx_start_xmit,
};

int wc_probe(struct net_device *dev)
{
	dev->netdev_ops = &wc_netdev_ops;
	dev_to_wanx(dev)->xmit = wc_xmit;
	return 0;
}
"""


# An i2c-like core that stores its own default into the adapter's recovery info and calls
# it through a by-name field, a controller in its folder storing its own, and a bus driver
# below it whose interrupt handler calls the core.
_I2CX_H = """\
struct i2cx_adapter;

struct i2cx_unstick_info {
	int (*unstick_bus)(struct i2cx_adapter *adap);
};

struct i2cx_adapter {
	struct i2cx_unstick_info *unstick_info;
};
"""

_I2CX_CORE = """\
#include <linux/i2cx.h>

static void __iomem *ic_base;

static int i2cx_generic_unstick(struct i2cx_adapter *adap)
{
	writel(1, ic_base + 0x08);
	return 0;
}

void i2cx_init_unstick(struct i2cx_adapter *adap)
{
	struct i2cx_unstick_info *info = adap->unstick_info;

	if (!info->unstick_bus)
		info->unstick_bus = i2cx_generic_unstick;
}

int i2cx_unstick_bus(struct i2cx_adapter *adap)
{
	return adap->unstick_info->unstick_bus(adap);
}
EXPORT_SYMBOL_GPL(i2cx_unstick_bus);
"""

_I2CX_MUX = """\
#include <linux/i2cx.h>

static void __iomem *im_base;

static int im_unstick(struct i2cx_adapter *adap)
{
	writel(1, im_base + 0x0c);
	return 0;
}

static struct i2cx_unstick_info im_unstick_info = {
	.unstick_bus	= im_unstick,
};
"""

_I2CX_BUS = """\
#include <linux/i2cx.h>

struct mvx_dev {
	void __iomem *regs;
	struct i2cx_adapter adapter;
};

static irqreturn_t mvx_isr(int irq, void *data)
{
	struct mvx_dev *md = data;

	if (readl(md->regs + 0x04) & 0x80)
		i2cx_unstick_bus(&md->adapter);
	return IRQ_HANDLED;
}

int mvx_probe(struct mvx_dev *md, int irq)
{
	return request_irq(irq, mvx_isr, 0, "mvx", md);
}
"""


@pytest.fixture(scope="module")
def by_name(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("by_name")
    root = mini_tree(tmp / "linux", {
        "include/linux/ttyx.h": _TTYX_H, "drivers/ttyx/ttyx_core.c": _TTYX_CORE,
        "drivers/ttyx/ttyx_board.c": _TTYX_BOARD, "drivers/btx/btx_uart.c": _BTX_UART,
        "include/linux/wanx.h": "struct wanx_device;\n",
        "drivers/wanx/wanx_core.c": _WANX_CORE, "drivers/wanx/wanx_card.c": _WANX_CARD,
        "include/linux/i2cx.h": _I2CX_H, "drivers/i2cx/i2cx_core.c": _I2CX_CORE,
        "drivers/i2cx/i2cx_mux.c": _I2CX_MUX, "drivers/i2cx/busses/mvx.c": _I2CX_BUS})
    return scan_json(tmp, root / "drivers", extra=("-j", "1"))


def _site(scan: dict[str, Any], function: str) -> dict[str, Any]:
    found = [s for s in scan["sites"] if s["function"] == function]
    assert len(found) == 1, found
    return found[0]


def test_another_drivers_handler_does_not_reach_a_core_folders_drivers(
        by_name: dict[str, Any]) -> None:
    # btx's handler is hot; the set_termios of the board hosted in the core's folder is not
    # (moxa's, reached from hci_intel's threaded handler through tty_set_termios)
    assert _site(by_name, "btx_wake_thread")["hot_kinds"] == ["irq-thread"]
    board = _site(by_name, "tb_set_termios")
    assert (board["hot"], board["hot_kinds"], board["hot_only_via"]) == (False, [], None)


def test_a_drivers_own_root_reaches_its_callback_through_a_core_in_its_folder(
        by_name: dict[str, Any]) -> None:
    # fsl_qmc_hdlc: ndo_start_xmit = hdlc_start_xmit -> hdlc->xmit = qmc_hdlc_xmit
    card = _site(by_name, "wc_xmit")
    assert (card["hot"], card["hot_kinds"]) == (True, ["xmit"])
    roots = {(r["function"], r["how"], r["path"]) for r in by_name["hot_roots"]}
    assert ("wanx_start_xmit", ".ndo_start_xmit", "drivers/wanx/wanx_card.c") in roots


def test_a_core_files_own_default_stays_hot_from_a_driver_elsewhere(
        by_name: dict[str, Any]) -> None:
    # i2c-mv64xxx's handler -> i2c_recover_bus -> `bri->recover_bus` = i2c_generic_scl_recovery
    # (stored by i2c-core-base.c itself); what another file of drivers/i2cx stores is not
    generic = _site(by_name, "i2cx_generic_unstick")
    assert (generic["hot"], generic["hot_kinds"]) == (True, ["irq"])
    assert not _site(by_name, "im_unstick")["hot"]


def test_function_names_kept_from_round_to_round_equal_a_fresh_build() -> None:
    # the caller rounds add each round's files to one FileFunctions: what it answers must
    # be what a build over all the files answers, and a replaced file's names must go
    from mmioscan.analysis.fnptrs import FileFunctions
    from mmioscan.cfront.extract import Extractor
    from mmioscan.core.catalogue import load_catalogue

    extractor = Extractor(load_catalogue().names())
    texts = {"drivers/demo/d.c": _STORES,
             "drivers/demo/sub/e.c": "int demo_e(void) { return 0; }\n",
             "drivers/other/f.c": "static int demo_f(void) { return 0; }\n"
                                  "int demo_g(void) { return 0; }\n"}
    files = {p: extractor.extract(p, "0", t.encode()) for p, t in texts.items()}
    kept = FileFunctions(frozenset({"readl"}))
    kept.update({p: f for p, f in files.items() if p != "drivers/other/f.c"})
    grown = kept.update(files)
    fresh = FileFunctions(frozenset({"readl"})).update(files)
    asked = [(p, n) for p in (*texts, "drivers/demo/x.c", "drivers/other/sub/y.c")
             for n in ("demo_rd8", "demo_e", "demo_f", "demo_g", "readl", "len")]
    assert [grown.seen(p, n) for p, n in asked] == [fresh.seen(p, n) for p, n in asked]
    assert grown.seen("drivers/other/f.c", "demo_f")
    assert not grown.seen("drivers/demo/d.c", "demo_f")  # static: its own file only
    assert grown.seen("drivers/demo/d.c", "demo_e")  # non-static in the subtree below
    replaced = dict(files, **{"drivers/other/f.c": extractor.extract(
        "drivers/other/f.c", "1", b"int demo_h(void) { return 0; }\n")})
    again = kept.update(replaced)
    assert not again.seen("drivers/other/f.c", "demo_f")
    assert again.seen("drivers/other/f.c", "demo_h")


_HX_H = """\
struct hx_dev;
struct hx_ops {
	u32 (*rd)(struct hx_dev *h, u32 reg);
	u32 (*mix)(struct hx_dev *h, u32 reg);
	u32 (*any)(struct hx_dev *h);
};
struct hx_dev {
	void __iomem *base;
	const struct hx_ops *ops;
};

#define HX_RD(h, reg)	(h)->ops->rd((h), (reg))
#define HX_MIX(h, reg)	(h)->ops->mix((h), (reg))
#define HX_CALL(fn, h)	(h)->ops->fn(h)
"""

_HX_C = """\
#include "hx.h"

static u32 hx_rd32(struct hx_dev *h, u32 reg)
{
	return readl(h->base + reg);
}

static u32 hx_nop(struct hx_dev *h, u32 reg)
{
	return reg;
}

static u32 hx_any(struct hx_dev *h)
{
	return readl(h->base);
}

const struct hx_ops hx_ops = { .rd = hx_rd32, .mix = hx_rd32, .any = hx_any };
const struct hx_ops hx_ops_b = { .rd = hx_rd32, .mix = hx_nop };
"""

_HX_USER = """\
#include "hx.h"

u32 hx_status(struct hx_dev *h)
{
	return HX_RD(h, 0x10) + HX_MIX(h, 0x14) + HX_CALL(any, h);
}
"""


def test_calls_through_fields_in_macro_bodies(tmp_path: Path) -> None:
    # HX_RD's field stores only a funnel: the macro is one, its calls wrapper sites; HX_MIX's
    # also stores a plain function; HX_CALL's field is a parameter, named at each use
    root = mini_tree(tmp_path / "linux", {"drivers/hx/hx.h": _HX_H,
                                          "drivers/hx/hx_ops.c": _HX_C,
                                          "drivers/hx/hx_user.c": _HX_USER})
    data = scan_json(tmp_path, root / "drivers", extra=("--root", str(root)))
    wrappers = {(s["path"], s["callee"], s["access"]) for s in data["sites"]
                if s["kind"] == "wrapper"}
    assert ("drivers/hx/hx_user.c", "HX_RD", "read") in wrappers
    assert not {w for w in wrappers if w[1] in ("HX_MIX", "HX_CALL")}
    rd = next(s for s in data["sites"] if s["callee"] == "HX_RD")
    assert rd["via"][0] == "HX_RD" and rd["via"][-1] == "readl"
