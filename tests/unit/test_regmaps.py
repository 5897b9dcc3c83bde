"""Regmap sites per map (cfront/regmaps.py facts, analysis/regmaps.py tracing)."""

from __future__ import annotations

import pytest

from mmioscan.analysis.callgraph import CallGraph
from mmioscan.analysis.regmaps import regmap_sites
from mmioscan.cfront.extract import Extractor
from mmioscan.core.model import FileFacts, Site
from mmioscan.core.ruleset import RuleSet, load_rules

MMIO = """\
struct mm_priv { struct regmap *regmap; struct regmap_field *fields[2]; };
static int mm_probe(struct platform_device *pdev)
{
	struct mm_priv *priv = devm_kzalloc(&pdev->dev, sizeof(*priv), GFP_KERNEL);
	void __iomem *base = devm_platform_ioremap_resource(pdev, 0);
	struct regmap *map;

	map = devm_regmap_init_mmio(&pdev->dev, base, &mm_config);
	priv->regmap = map;
	priv->fields[0] = devm_regmap_field_alloc(&pdev->dev, priv->regmap, mm_f0);
	regmap_write(map, 0, 1); /* expect: mmio */
	return regmap_field_write(priv->fields[0], 1); /* expect: mmio */
}
"""

MMIO_USER = """\
static void mm_set(struct mm_priv *priv)
{
	regmap_update_bits(priv->regmap, 4, 1, 1); /* expect: mmio */
}
static void mm_helper(struct regmap *map)
{
	regmap_read(map, 8, &v); /* expect: mmio (the folder makes only MMIO maps) */
}
"""

I2C = """\
struct ic_priv { struct regmap *regmap; };
static int ic_probe(struct i2c_client *client)
{
	struct ic_priv *priv = devm_kzalloc(&client->dev, sizeof(*priv), GFP_KERNEL);

	priv->regmap = devm_regmap_init_i2c(client, &ic_config);
	return regmap_write(priv->regmap, 0, 1); /* expect: none (an I2C map) */
}
"""

I2C_CORE = """\
static int ic_init(struct device *dev, struct regmap *regmap)
{
	return regmap_write(regmap, 1, 2); /* expect: none (its related ic-i2c.c makes I2C) */
}
"""

SYSCON = """\
struct sc_priv { struct regmap *syscfg; };
static int sc_probe(struct platform_device *pdev)
{
	struct sc_priv *priv = devm_kzalloc(&pdev->dev, sizeof(*priv), GFP_KERNEL);

	priv->syscfg = syscon_regmap_lookup_by_phandle(pdev->dev.of_node, "syscfg");
	regmap_read(dev_get_regmap(pdev->dev.parent, NULL), 0, &v); /* expect: unknown */
	return regmap_set_bits(priv->syscfg, 0, 1); /* expect: syscon */
}
"""

PORT = """\
static int pt_probe(struct device *dev)
{
	void __iomem *io = devm_ioport_map(dev, 0x60, 8);
	struct regmap *map = devm_regmap_init_mmio(dev, io, &pt_config);

	return regmap_read(map, 0, &v); /* expect: port */
}
"""

FUNNEL = """\
static int fn_read(void *ctx, unsigned int reg, unsigned int *val)
{
	struct fn_priv *p = ctx;
	*val = readl(p->base + reg);
	return 0;
}
static int fn_i2c_read(void *ctx, unsigned int reg, unsigned int *val)
{
	return i2c_smbus_read_byte_data(ctx, reg);
}
static const struct regmap_config fn_config = { .reg_bits = 32, .reg_read = fn_read };
static const struct regmap_config fn_i2c_config = { .reg_read = fn_i2c_read };
static int fn_probe(struct device *dev, struct fn_priv *p)
{
	struct regmap *map = devm_regmap_init(dev, NULL, p, &fn_config);
	struct regmap *other = devm_regmap_init(dev, NULL, p, &fn_i2c_config);

	regmap_write(other, 0, 1); /* expect: none (its reg_read reaches no accessor) */
	return regmap_write(map, 0, 1); /* expect: funnel */
}
"""

MIXED = """\
static int mx_probe(struct device *dev, struct i2c_client *client, void __iomem *base)
{
	struct regmap *a = devm_regmap_init_mmio(dev, base, &mx_config);
	struct regmap *b = devm_regmap_init_i2c(client, &mx_config);

	regmap_write(a, 0, 1); /* expect: mmio */
	regmap_write(b, 0, 1); /* expect: none */
	return 0;
}
static int mx_other(struct regmap *m)
{
	return regmap_write(m, 0, 1); /* expect: unknown (the file's maps disagree) */
}
"""

NO_MMIO_FOLDER = """\
static int nm_probe(struct spi_device *spi, struct regmap *parent)
{
	struct regmap *map = devm_regmap_init_spi(spi, &nm_config);

	regmap_write(parent, 0, 1); /* expect: none (no map here may be MMIO) */
	return regmap_write(map, 0, 1); /* expect: none */
}
"""

FILES = {
    "drivers/mm/mm_main.c": MMIO, "drivers/mm/mm_user.c": MMIO_USER,
    "sound/ic/ic-i2c.c": I2C, "sound/ic/ic.c": I2C_CORE, "sound/ic/sc.c": SYSCON,
    "drivers/pt/pt.c": PORT, "drivers/fn/fn.c": FUNNEL, "drivers/mx/mx.c": MIXED,
    "drivers/nm/nm.c": NO_MMIO_FOLDER,
}


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


@pytest.fixture(scope="module")
def sites(rules: RuleSet) -> dict[tuple[str, int], Site]:
    extractor = Extractor(rules.catalogue.names() | rules.regmap.maybe_mmio(),
                          regmap=rules.regmap)
    facts: dict[str, FileFacts] = {
        path: extractor.extract(path, "d", src.encode()) for path, src in FILES.items()}
    graph = CallGraph(facts.values(), rules.catalogue.accessors,
                      max_function_lines=rules.wrappers.max_function_lines)
    found = regmap_sites(tuple(facts.values()), facts, graph, rules.regmap, rules.catalogue)
    return {(s.path, s.line): s for s in found}


def _expectations() -> list[tuple[str, int, str]]:
    wanted = []
    for path, src in FILES.items():
        for number, line in enumerate(src.splitlines(), 1):
            if "/* expect: " in line:
                wanted.append((path, number, line.split("/* expect: ")[1].split()[0]))
    return wanted


@pytest.mark.parametrize(("path", "line", "expected"), _expectations())
def test_map_of_each_call(sites: dict[tuple[str, int], Site], path: str, line: int,
                          expected: str) -> None:
    site = sites.get((path, line))
    assert (site.map if site is not None else "none") == expected


def test_port_and_funnel_sites_name_their_accessors(sites: dict[tuple[str, int], Site]
                                                    ) -> None:
    port = sites[("drivers/pt/pt.c", 6)]
    assert (port.family, port.accessors) == ("port", ("inl",))
    line = next(n for n, text in enumerate(FUNNEL.splitlines(), 1) if "expect: funnel" in text)
    funnel = sites[("drivers/fn/fn.c", line)]
    assert (funnel.accessor, funnel.via[:2]) == ("readl", ("regmap_write", "fn_read"))


def test_every_site_is_regmap(sites: dict[tuple[str, int], Site]) -> None:
    assert sites and {s.kind for s in sites.values()} == {"regmap"}
    assert len(sites) == len([e for e in _expectations() if e[2] != "none"])


def test_extracted_facts(rules: RuleSet) -> None:
    facts = Extractor(rules.catalogue.names(), regmap=rules.regmap).extract(
        "drivers/mm/mm_main.c", "d", MMIO.encode())
    assert ("devm_regmap_init_mmio", "map", "@mm_probe", 8, ("dev", "base", "mm_config")
            ) in facts.regmap_maps
    assert ("=", "regmap", "mm_priv", 9, ("map", "@mm_probe")) in facts.regmap_maps
    assert ("devm_regmap_field_alloc", "fields", "mm_priv", 10, ("regmap", "mm_priv")
            ) in facts.regmap_maps
    assert (11, 2, "map", "@mm_probe") in facts.regmap_uses
    configs = Extractor(rules.catalogue.names(), regmap=rules.regmap).extract(
        "drivers/fn/fn.c", "d", FUNNEL.encode()).regmap_configs
    assert ("fn_config", (("reg_read", "fn_read"),)) in configs


def test_rules_name_the_bus_makers(rules: RuleSet) -> None:
    regmap = rules.regmap
    assert regmap.is_bus("devm_regmap_init_i2c") and regmap.is_bus("devm_regmap_init_sdw")
    assert not regmap.is_bus("devm_regmap_init_mmio") and not regmap.is_bus("regmap_read")
    assert "syscon_node_to_regmap" in regmap.maybe_mmio()
    assert "devm_regmap_init_i2c" in regmap.bus


def test_callbacks_assigned_at_run_time(rules: RuleSet) -> None:
    src = """\
static int rt_probe(struct device *dev, struct rt_priv *p)
{
	struct regmap_config conf = rt_base_config;
	struct regmap *map;

	conf.reg_read = rt_sdw_read;
	map = devm_regmap_init(dev, NULL, p, &conf);
	return regmap_write(map, 0, 1);
}
"""
    facts = Extractor(rules.catalogue.names(), regmap=rules.regmap).extract(
        "sound/rt/rt.c", "d", src.encode())
    assert facts.regmap_configs == (("conf", (("reg_read", "rt_sdw_read"),)),)


def test_uses_come_in_source_order(rules: RuleSet) -> None:
    """The records follow the text, the same in every run (the query's captures come in
    hash order, memory addresses: the records came out shuffled, differently each run)."""
    writes = "".join(f"\tregmap_write(map, {i}, 1);\n" for i in range(40))
    src = f"static void so_set(struct regmap *map)\n{{\n{writes}}}\n"
    facts = Extractor(rules.catalogue.names(), regmap=rules.regmap).extract(
        "drivers/so/so.c", "d", src.encode())
    assert [u[0] for u in facts.regmap_uses] == list(range(3, 43))
