"""kbuild: Makefile forms, Kconfig groups, .config reachability, on tests/fixtures/kbuild.

The fixture tree is written for these tests: one folder per Makefile form, a Kconfig with
one symbol per group rule, and fixture.config (see the comments in each file).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mmioscan.core.catalogue import RuleError
from mmioscan.core.model import DriverInfo
from mmioscan.kernel.dotconfig import ConfigError, load_config
from mmioscan.kernel.drivermap import DriverMap
from mmioscan.kernel.groups import GroupRules, load_group_rules

KBUILD = Path(__file__).resolve().parent.parent / "fixtures" / "kbuild"


@pytest.fixture(scope="module")
def rules() -> GroupRules:
    return load_group_rules()


@pytest.fixture(scope="module")
def config() -> dict[str, str]:
    return load_config(KBUILD / "fixture.config")


@pytest.fixture(scope="module")
def plain(rules: GroupRules) -> DriverMap:
    return DriverMap.build(KBUILD, rules)


@pytest.fixture(scope="module")
def configured(rules: GroupRules, config: dict[str, str]) -> DriverMap:
    return DriverMap.build(KBUILD, rules, config)


def _fixture_files() -> list[str]:
    return sorted(p.relative_to(KBUILD).as_posix() for p in KBUILD.rglob("*")
                  if p.suffix in (".c", ".h"))


# ------------------------------------------------------------------ .config files


def test_load_config_values() -> None:
    values = load_config(KBUILD / "fixture.config")
    assert values["CONFIG_FASTNIC"] == "m"
    assert values["CONFIG_PCI"] == "y"
    assert values["CONFIG_FASTNIC_HWMON"] == "n"  # "# CONFIG_X is not set"
    assert values["CONFIG_LOCALVERSION"] == '"-fixture"'
    assert values["CONFIG_PHYS_START"] == "0x1000000"
    assert "CONFIG_MISC_TWO" not in values


@pytest.mark.parametrize(("content", "expected"), [
    (b"CONFIG_A=y\nthis is not a config line\n", ":2: not a .config line: 'this is not"),
    (b"CONFIG_A=y\nCONFIG_B y\n", ":2: not a .config line: 'CONFIG_B y'"),
    (b"CONFIG_A=y\n\x00\x01\x02", "binary file"),
    (b"CONFIG_A=\xff\xfe\n", "not UTF-8"),
    (b"", "no CONFIG_ line"),
    (b"# just a comment\n\n", "no CONFIG_ line"),
])
def test_load_config_rejects(tmp_path: Path, content: bytes, expected: str) -> None:
    bad = tmp_path / "bad.config"
    bad.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    message = str(info.value)
    assert expected in message
    assert message.startswith(str(bad))
    assert "\n" not in message  # one line: the CLI prints it and exits 2


def test_load_config_unreadable(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.config", tmp_path):  # a folder is unreadable too
        with pytest.raises(ConfigError, match="cannot read"):
            load_config(path)


def test_load_config_tolerates_blank_lines_and_comments(tmp_path: Path) -> None:
    good = tmp_path / "good.config"
    good.write_text("\n# comment\n   \nCONFIG_A=m\r\n# CONFIG_B is not set\n")
    assert load_config(good) == {"CONFIG_A": "m", "CONFIG_B": "n"}


# ------------------------------------------------------------------ group rules


def test_shipped_group_rules(rules: GroupRules) -> None:
    assert [g.name for g in rules.groups] == ["virtio", "x86"]
    assert "VIRTIO" in rules.groups[0].symbols
    assert "arch/x86/" in rules.groups[1].paths
    assert rules.arch == "x86" and "COMPILE_TEST" in rules.assume_off


@pytest.mark.parametrize(("text", "expected"), [
    ("[[group]\n", "not valid TOML"),
    ("[kconfig]\narch = 'x86'\n", "no [[group]] entries"),
    ("[[group]]\nname = 'arm'\n", "name must be virtio or x86"),
    ("[[group]]\nname = 'x86'\nsymbols = 'X86'\n", "symbols must be a list of strings"),
    ("[[group]]\nname = 'x86'\n[[group]]\nname = 'x86'\n", "listed twice"),
    ("[[group]]\nname = 'x86'\n[kconfig]\ndepth = 9\n", "depth must be an integer"),
    ("[[group]]\nname = 'x86'\n[kconfig]\narch = '../x'\n", "kconfig.arch"),
    ("[[group]]\nname = 'x86'\narch_only = 'yes'\n", "arch_only must be true or false"),
])
def test_broken_group_rules(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "groups.toml"
    path.write_text(text)
    with pytest.raises(RuleError, match=expected.replace("[", r"\[")):
        load_group_rules(path)


def test_missing_group_rules(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="cannot read"):
        load_group_rules(tmp_path / "nope.toml")


# ------------------------------------------------------------------ Makefile forms


def _info(m: DriverMap, path: str) -> DriverInfo:
    return m.lookup(path)


def test_simple_object(plain: DriverMap) -> None:
    info = _info(plain, "drivers/net/vnet.c")
    assert (info.name, info.config_symbol) == ("vnet", "VNET")
    assert info.evidence == "drivers/net/Makefile: obj-$(CONFIG_VNET) += vnet.o"
    assert info.reachable is None  # no config given


def test_composite_objs_with_continuation(plain: DriverMap) -> None:
    for part in ("main", "hw"):
        info = _info(plain, f"drivers/net/ethernet/fastnic/{part}.c")
        assert (info.name, info.config_symbol) == ("fastnic", "FASTNIC")
        assert info.evidence.endswith(f"fastnic-objs := {part}.o")


def test_composite_part_with_its_own_condition(configured: DriverMap) -> None:
    info = _info(configured, "drivers/net/ethernet/fastnic/hwmon.c")
    assert (info.name, info.config_symbol) == ("fastnic", "FASTNIC")
    assert "fastnic-$(CONFIG_FASTNIC_HWMON) += hwmon.o" in info.evidence
    assert "also needs CONFIG_FASTNIC_HWMON" in info.evidence
    assert info.reachable is False  # FASTNIC=m but FASTNIC_HWMON is not set
    assert _info(configured, "drivers/net/ethernet/fastnic/main.c").reachable is True


def test_ifeq_branches_all_count(configured: DriverMap) -> None:
    for part in ("debug", "nodebug"):
        info = _info(configured, f"drivers/net/ethernet/fastnic/{part}.c")
        assert info.name == "fastnic" and info.reachable is True


def test_composite_y_through_variables_and_functions(plain: DriverMap) -> None:
    # multi-y += $(MULTI_OBJS) $(patsubst ...): addprefix, addsuffix, recursive variables
    for path in ("drivers/misc/sub/one.c", "drivers/misc/sub/two.c", "drivers/misc/glue.c"):
        info = _info(plain, path)
        assert (info.name, info.config_symbol) == ("multi", "MISC_ONE"), path
    assert "multi-y += sub/one.o" in _info(plain, "drivers/misc/sub/one.c").evidence


def test_condition_spellings(plain: DriverMap) -> None:
    # $(subst m,y,$(CONFIG_X)), $(CONFIG_X:m=y) with $(foreach), obj-m
    assert _info(plain, "drivers/misc/two_core.c").config_symbol == "MISC_TWO"
    for name in ("two_a", "two_b"):
        info = _info(plain, f"drivers/misc/{name}.c")
        assert (info.name, info.config_symbol) == (name, "MISC_TWO")
    # obj-m in a folder reached under MISC_DEVICES: the folder's symbol
    assert _info(plain, "drivers/misc/always_mod.c").config_symbol == "MISC_DEVICES"


def test_if_on_a_config_symbol(plain: DriverMap) -> None:
    # obj-y += $(if $(CONFIG_MISC_ONE),if_on.o,if_off.o): "then" needs MISC_ONE; "else"
    # cannot say "not MISC_ONE" and counts as unconditional
    assert _info(plain, "drivers/misc/if_on.c").config_symbol == "MISC_ONE"
    assert _info(plain, "drivers/misc/if_off.c").config_symbol == "MISC_DEVICES"


def test_include_and_multi_level_descent(plain: DriverMap) -> None:
    extra = _info(plain, "drivers/misc/extra.c")
    assert extra.evidence == "drivers/misc/extra.mk: obj-$(CONFIG_MISC_EXTRA) += extra.o"
    assert _info(plain, "drivers/char/foo/foochar.c").name == "foochar"  # `char/foo/`


def test_kbuild_file_wins_over_makefile(plain: DriverMap) -> None:
    assert _info(plain, "drivers/accel/ioatlike.c").evidence.startswith("drivers/accel/Kbuild")
    shadowed = _info(plain, "drivers/accel/shadowed.c")
    assert shadowed.name == "drivers/accel" and shadowed.config_symbol is None


def test_recipes_and_flags_are_not_objects(plain: DriverMap) -> None:
    problems = {p.path for p in plain.problems}
    assert "never" not in problems  # `@echo obj-y += never/` is a recipe line
    assert not any("recipe" in i.evidence for i in map(plain.lookup, _fixture_files()))


def test_top_makefile_and_arch_makefile(configured: DriverMap) -> None:
    pci = _info(configured, "arch/x86/pci/direct.c")  # drivers-$(CONFIG_PCI) += arch/x86/pci/
    assert (pci.config_symbol, pci.reachable) == ("PCI", True)
    strops = _info(configured, "lib/strops.c")  # libs-y := lib/, lib-y := strops.o
    assert (strops.name, strops.reachable) == ("strops", True)
    # $(BITS) is 64 and the top Makefile's `SRCARCH := sparc` branch does not leak
    assert _info(configured, "arch/x86/kernel/process_64.c").name == "process_64"
    assert _info(configured, "arch/x86/kernel/process_32.c").name == "arch/x86/kernel"


def test_always_built_folder(configured: DriverMap) -> None:
    info = _info(configured, "arch/x86/boot/main.c")
    assert info.reachable is True and "always_built" in info.evidence


# ------------------------------------------------------------------ headers and loose files


def test_header_of_one_driver(configured: DriverMap) -> None:
    info = _info(configured, "drivers/net/ethernet/fastnic/fastnic.h")
    assert (info.name, info.config_symbol, info.reachable) == ("fastnic", "FASTNIC", True)
    assert info.evidence.startswith("header next to the sources of fastnic")


def test_header_of_several_drivers(configured: DriverMap) -> None:
    info = _info(configured, "drivers/virtio/vpci.h")
    assert (info.name, info.config_symbol) == ("drivers/virtio", None)
    assert info.reachable is True and "vcore, vpci" in info.evidence
    misc = _info(configured, "drivers/misc/misc_common.h")
    assert misc.name == "drivers/misc" and misc.reachable is False


def test_file_in_no_makefile(plain: DriverMap, configured: DriverMap) -> None:
    loose = _info(configured, "drivers/nomake/loose.c")
    assert (loose.name, loose.config_symbol, loose.reachable) == ("drivers/nomake", None, False)
    assert loose.evidence == "in no Makefile"
    header = _info(configured, "include/linux/fixture_io.h")
    assert (header.name, header.reachable) == ("include/linux", None)  # depends on includers
    # listed nowhere, folder built: only an #include can build it
    template = _info(configured, "drivers/net/ethernet/fastnic/template.c")
    assert template.reachable is None and "#includes" in template.evidence
    assert _info(plain, "drivers/nomake/loose.c").reachable is None


# ------------------------------------------------------------------ reachability


def test_every_level_must_be_enabled(configured: DriverMap) -> None:
    # MISC_ONE=y but drivers/misc/ is only entered with MISC_DEVICES, which is unset
    assert _info(configured, "drivers/misc/sub/one.c").reachable is False
    # FASTNIC=m, ETHERNET=y, NETDEVICES=y: three levels, all on
    assert _info(configured, "drivers/net/ethernet/fastnic/main.c").reachable is True
    assert _info(configured, "drivers/virtio/vpci_legacy.c").reachable is False
    assert _info(configured, "drivers/accel/ioatlike.c").reachable is True  # =m counts


def test_reachable_is_none_without_config(plain: DriverMap) -> None:
    assert {plain.lookup(f).reachable for f in _fixture_files()} == {None}


# ------------------------------------------------------------------ groups


@pytest.mark.parametrize(("path", "group", "reason"), [
    ("drivers/virtio/vpci_modern.c", "virtio", "path rule drivers/virtio/"),
    ("drivers/net/vnet.c", "virtio", "Kconfig VNET: depends on NETDEVICES && VIRTIO"),
    ("drivers/vconsole.c", "virtio", "Kconfig VCONSOLE: selects VIRTIO"),
    ("arch/x86/kernel/hpet.c", "x86", "path rule arch/x86/"),
    ("drivers/platform/x86/wmi.c", "x86", "path rule drivers/platform/x86/"),
    ("drivers/accel/ioatlike.c", "x86", "Kconfig IOAT_LIKE: depends on PCI && X86_64"),
    ("drivers/accel/child.c", "x86",
     "Kconfig ACCEL_CHILD: depends on IOAT_LIKE (IOAT_LIKE: depends on PCI && X86_64)"),
    ("drivers/accel/ctonly.c", "x86", "Kconfig CT_ONLY: depends on X86 || COMPILE_TEST"),
    ("drivers/accel/apicuser.c", "x86",
     "Kconfig APIC_USER: depends on PCI && X86_LOCAL_APIC (X86_LOCAL_APIC exists only on x86)"),
    ("drivers/accel/multiarch.c", "generic",
     "no x86 or virtio dependency (Kconfig MULTIARCH: depends on X86 || ARM64)"),
    # HV_GUEST depends on X86_64 here, but arm64 defines it too: no evidence of x86-only
    ("drivers/accel/hvbus.c", "generic",
     "no x86 or virtio dependency (Kconfig HVBUS: depends on HV_GUEST)"),
    ("drivers/net/ethernet/fastnic/hw.c", "generic",
     "no x86 or virtio dependency (Kconfig FASTNIC: depends on PCI && ETHERNET)"),
    ("lib/strops.c", "generic", "no Kconfig symbol and no path rule"),
])
def test_groups(plain: DriverMap, path: str, group: str, reason: str) -> None:
    info = plain.lookup(path)
    assert (info.group, info.group_reason) == (group, reason)


def test_missing_kconfig_falls_back_to_path_rules(tmp_path: Path, rules: GroupRules) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(KBUILD, tree)
    (tree / "Kconfig").unlink()
    m = DriverMap.build(tree, rules)
    assert any(p.path == "." and "path rules only" in p.message for p in m.problems)
    assert m.lookup("drivers/virtio/vcore.c").group == "virtio"  # path rule still applies
    vnet = m.lookup("drivers/net/vnet.c")
    assert (vnet.name, vnet.group) == ("vnet", "generic")  # Makefiles are still read
    assert "Kconfig unavailable" in vnet.group_reason


def test_broken_kconfig_is_a_problem_not_an_exception(tmp_path: Path, rules: GroupRules) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(KBUILD, tree)
    with (tree / "drivers" / "Kconfig").open("a") as f:
        f.write("config BROKEN_ENTRY\n\tfrobnicate yes please\n")
    m = DriverMap.build(tree, rules)
    kconfig = [p for p in m.problems if p.path == "Kconfig"]
    assert len(kconfig) == 1 and "drivers/Kconfig" in kconfig[0].message
    assert "\n" not in kconfig[0].message


def test_kconfig_environment_is_restored(rules: GroupRules) -> None:
    before = dict(os.environ)
    DriverMap.build(KBUILD, rules)
    assert dict(os.environ) == before


# ------------------------------------------------------------------ problems, cache, scope


def test_problems_are_recorded(plain: DriverMap) -> None:
    messages = {(p.path, p.message) for p in plain.problems}
    assert ("drivers/misc/Makefile",
            "line 10: cannot evaluate $(shell) in obj-$(CONFIG_MISC_BROKEN); read as empty") \
        in messages
    assert any(path == "drivers/empty" and "no Kbuild or Makefile" in message
               for path, message in messages)
    assert len(plain.problems) == len(set(plain.problems))


def test_no_root_kbuild(tmp_path: Path, rules: GroupRules, config: dict[str, str]) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(KBUILD / "drivers", tree / "drivers")
    m = DriverMap.build(tree, rules, config)
    # not a kernel tree: one problem line, not one per missing piece
    assert [p.path for p in m.problems] == ["."]
    assert "no Kconfig and no Kbuild at the root" in m.problems[0].message
    info = m.lookup("drivers/net/vnet.c")  # named from its own Makefile, build unknown
    assert (info.name, info.config_symbol, info.reachable) == ("vnet", "VNET", None)


def test_kconfig_cache(tmp_path: Path, rules: GroupRules) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(KBUILD, tree)
    cache = tmp_path / "cache"
    first = DriverMap.build(tree, rules, cache_dir=cache)
    assert len(list(cache.glob("kconfig-*.json"))) == 1
    second = DriverMap.build(tree, rules, cache_dir=cache)
    files = _fixture_files()
    assert [first.lookup(f) for f in files] == [second.lookup(f) for f in files]
    # an edited Kconfig file invalidates the cache
    kconfig = tree / "drivers" / "Kconfig"
    kconfig.write_text(kconfig.read_text().replace("depends on PCI && X86_64", "depends on PCI"))
    third = DriverMap.build(tree, rules, cache_dir=cache)
    assert third.lookup("drivers/accel/ioatlike.c").group == "generic"


def test_damaged_cache_is_rebuilt(tmp_path: Path, rules: GroupRules) -> None:
    cache = tmp_path / "cache"
    DriverMap.build(KBUILD, rules, cache_dir=cache)
    for entry in cache.glob("kconfig-*.json"):
        entry.write_text("{not json")
    m = DriverMap.build(KBUILD, rules, cache_dir=cache)
    assert m.lookup("drivers/net/vnet.c").group == "virtio"


def test_paths_scope_gives_the_same_answers(rules: GroupRules, configured: DriverMap,
                                            config: dict[str, str]) -> None:
    scoped = DriverMap.build(KBUILD, rules, config, paths=["drivers/net/vnet.c"])
    files = _fixture_files()
    assert [scoped.lookup(f) for f in files] == [configured.lookup(f) for f in files]


def test_results_are_deterministic(rules: GroupRules, config: dict[str, str]) -> None:
    files = _fixture_files()
    runs = [[DriverMap.build(KBUILD, rules, config).lookup(f) for f in files]
            for _ in range(2)]
    assert runs[0] == runs[1]


def test_other_architectures_are_never_built(configured: DriverMap, plain: DriverMap) -> None:
    """arch/arm64/ code and headers are not built for x86, whatever their Makefiles say."""
    header = configured.lookup("arch/arm64/include/asm/io.h")
    assert header.reachable is False and "not built for arch/x86" in header.evidence
    assert configured.lookup("arch/arm64/kernel/setup.c").reachable is False
    assert plain.lookup("arch/arm64/include/asm/io.h").reachable is None  # no config
    assert configured.lookup("arch/x86/pci/direct.c").reachable is True
