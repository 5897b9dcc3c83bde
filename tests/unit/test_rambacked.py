"""cfront/rambacked.py (rules/ram.toml): derefs through `__iomem` pointers whose every
assignment in the file is RAM are no MMIO sites, and are counted apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmioscan.cfront.extract import Extractor
from mmioscan.core.catalogue import RuleError
from mmioscan.core.model import FileFacts
from mmioscan.core.ruleset import RuleSet, _ram, load_rules

from .helpers import scan_json
from .test_wrappers import mini_tree


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


@pytest.fixture(scope="module")
def extractor(rules: RuleSet) -> Extractor:
    return Extractor(rules.catalogue.names(), ram=rules.ram)


def _facts(extractor: Extractor, src: str) -> FileFacts:
    return extractor.extract("drivers/x/x.c", "digest", src.encode())


def _lines(src: str, facts: FileFacts) -> list[str]:
    lines = src.splitlines()
    return [lines[d[0] - 1].strip() for d in facts.derefs]


# A buffer from dma_pool_alloc, declared `void __iomem *` (the shape of at_hdmac's memset).
_POOL = """\
static int fill(struct dma_pool *pool, u32 value)
{
	void __iomem *vaddr;
	dma_addr_t paddr;

	vaddr = dma_pool_alloc(pool, GFP_NOWAIT, &paddr);
	if (!vaddr)
		return -ENOMEM;
	*(u32 *)vaddr = value;
	return 0;
}
"""

# A command ring: a field assigned an aligned dma_alloc_coherent buffer through a cast, read
# through locals and through a static function's parameter (the shape of a DBDMA ring).
_RING = """\
struct cmd { u16 count; u16 status; };
struct ring {
	struct cmd __iomem *cmds;
	void *space;
	dma_addr_t base;
};
static struct ring spare;

static int ring_alloc(struct device *dev, struct ring *r, int n)
{
	r->space = dma_alloc_coherent(dev, n * sizeof(struct cmd) + 15, &r->base, GFP_KERNEL);
	if (!r->space)
		return -ENOMEM;
	r->cmds = (struct cmd __iomem *)ALIGN((unsigned long)r->space, 16);
	return 0;
}

static void fix_up(struct ring *r, struct cmd __iomem *cp)
{
	cp->status = 0;
	cp = spare.cmds;
	cp->count = 1;
}

static void ring_walk(struct ring *r, int n, int cur)
{
	struct cmd __iomem *cp;
	int i;

	for (i = 0, cp = r->cmds; i < n; i++, cp++)
		cp->count = 0;
	if (cur)
		cp = spare.cmds;
	else
		cp = &r->cmds[cur];
	if (cp->status)
		fix_up(r, cp);
	cp = r->cmds + 2;
	cp->status = 1;
}
"""

# The address of a static object (even one declared __iomem) and pointers derived from it.
_STATIC = """\
struct block { u32 desc[4]; u8 pkt[64]; };
static __iomem struct block blk;
static __iomem struct hdr *h;
static __iomem char *msg;
static __iomem char *cur;
static u8 scratch[32];

static void setup(void)
{
	h = (struct hdr *)blk.pkt;
	h->len = 0;
	cur = msg = (char *)(h + 1);
}

static void put(char c)
{
	u32 __iomem *d = &blk.desc[1];
	u8 __iomem *s = scratch;

	*cur++ = c;
	if (c == '\\n')
		cur = msg;
	*d = 1;
	s[0] = c;
}
"""


@pytest.mark.parametrize(("src", "dropped"), [(_POOL, 1), (_RING, 5), (_STATIC, 4)])
def test_ram_backed_pointers_make_no_deref_sites(extractor: Extractor, rules: RuleSet,
                                                 src: str, dropped: int) -> None:
    facts = _facts(extractor, src)
    assert _lines(src, facts) == [] and facts.ram_backed_derefs == dropped
    # without the rule, the same derefs are sites
    assert len(Extractor(rules.catalogue.names()).extract("drivers/x/x.c", "d",
                                                         src.encode()).derefs) == dropped


@pytest.mark.parametrize("source", [
    "ioremap(start, 0x100)", "devm_ioremap_resource(&pdev->dev, res)",
    "pci_iomap(pdev, 0, 0)", "get_base(dev)", "*pp"])
def test_other_sources_stay_mmio(extractor: Extractor, source: str) -> None:
    src = (f"static void f(struct device *dev, void __iomem **pp)\n{{\n"
           f"\tu32 __iomem *regs = {source};\n\n\t*regs = 1;\n}}\n")
    facts = _facts(extractor, src)
    assert _lines(src, facts) == ["*regs = 1;"] and facts.ram_backed_derefs == 0


_MIXED = """\
struct chip { u32 __iomem *regs; struct ctl __iomem *ctl; };

static int probe_real(struct chip *c, struct platform_device *pdev)
{
	c->regs = devm_platform_ioremap_resource(pdev, 0);
	return 0;
}

static int probe_fake(struct chip *c)
{
	c->regs = kzalloc(64, GFP_KERNEL);
	return 0;
}

static void kick(struct chip *c, u32 __iomem *port, int v)
{
	*c->regs = v;
	*port = v;
}

static void test_buffer(int v)
{
	u32 __iomem *regs = kzalloc(64, GFP_KERNEL);

	*regs = v;
}

void exported(u32 __iomem *p)
{
	*p = 2;
}

static void __iomem *shared;

static void set_shared(void)
{
	shared = kzalloc(16, GFP_KERNEL);
	get_mapping(&shared);
}

static void poke(void)
{
	*(u32 __iomem *)shared = 3;
}
"""


def test_only_names_every_assignment_proves_ram_are_dropped(extractor: Extractor) -> None:
    facts = _facts(extractor, _MIXED)
    # c->regs: once ioremap, once kzalloc; port, p: parameters; shared: its address escapes.
    # The local `regs` named like the field is RAM and goes.
    assert _lines(_MIXED, facts) == [
        "*c->regs = v;", "*port = v;", "*p = 2;", "*(u32 __iomem *)shared = 3;"]
    assert facts.ram_backed_derefs == 1


def test_pointer_to_pointers_in_ram_still_reaches_mmio(extractor: Extractor) -> None:
    src = """\
static void f(int n)
{
	u32 __iomem **tbl = kcalloc(n, sizeof(*tbl), GFP_KERNEL);

	**tbl = 1;
}
"""
    assert _lines(src, _facts(extractor, src)) == ["**tbl = 1;"]


def test_a_static_function_called_with_mmio_keeps_its_parameter(extractor: Extractor) -> None:
    src = """\
static void put(u32 __iomem *p)
{
	*p = 1;
}

static void both(struct device *dev, void __iomem *base)
{
	put(kzalloc(4, GFP_KERNEL));
	put(base);
}
"""
    assert _lines(src, _facts(extractor, src)) == ["*p = 1;"]


def test_a_macro_assigning_the_field_keeps_it(extractor: Extractor) -> None:
    src = """\
#define SET_REGS(c, v) ((c)->regs = (v))
struct chip { u32 __iomem *regs; };

static void f(struct chip *c)
{
	c->regs = kzalloc(4, GFP_KERNEL);
	*c->regs = 1;
}
"""
    assert _lines(src, _facts(extractor, src)) == ["*c->regs = 1;"]


def test_the_scan_counts_what_it_left_out(tmp_path: Path) -> None:
    root = mini_tree(tmp_path / "linux", {"drivers/x/pool.c": _POOL, "drivers/x/ring.c": _RING})
    scan = scan_json(tmp_path, root / "drivers", extra=("-j", "1"))
    assert scan["stats"]["ram_backed_derefs"] == 6
    assert not [s for s in scan["sites"] if s["kind"] == "deref"]


@pytest.mark.parametrize("change", ["swap(p, q);", "list_for_each_entry(p, head, node) ;",
                                    "NEXT(p);"])
def test_a_macro_may_assign_a_bare_argument(extractor: Extractor, change: str) -> None:
    src = f"""\
#define NEXT(x) ((x) = (x)->next)

static void f(u32 __iomem *q, struct list_head *head)
{{
	u32 __iomem *p = kzalloc(4, GFP_KERNEL);

	{change}
	*p = 1;
}}
"""
    assert "*p = 1;" in _lines(src, _facts(extractor, src))


def test_headers_keep_their_derefs(extractor: Extractor) -> None:
    # a header's static function is called from every includer, unseen here
    src = "static inline void put(u32 __iomem *p)\n{\n\t*p = 1;\n}\n" \
        "static inline void put_ram(void)\n{\n\tput(kzalloc(4, GFP_KERNEL));\n}\n"
    facts = extractor.extract("drivers/x/x.h", "d", src.encode())
    assert len(facts.derefs) == 1 and facts.ram_backed_derefs == 0
    assert _facts(extractor, src).derefs == ()


@pytest.mark.parametrize("bad", [{"objects": "yes"}, {"allocators": "kzalloc"},
                                 {"align": [1]}, {"assigners": {"swap": 1}}])
def test_bad_ram_rules_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(RuleError, match=r"ram\.toml"):
        _ram(bad)
