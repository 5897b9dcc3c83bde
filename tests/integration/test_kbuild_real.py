"""kbuild on the real tree (linux-source-6.12) with Debian's cloud-amd64 .config.

The facts below were checked by hand against the tree's Makefiles and Kconfig files and the
.config (CONFIG_VIRTIO_PCI=y, CONFIG_VIRTIO_NET=m, CONFIG_E1000E and
CONFIG_NET_VENDOR_BROADCOM not set, CONFIG_DRM not set, CONFIG_HPET_TIMER=y).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mmioscan.core.model import DriverInfo
from mmioscan.kernel.dotconfig import load_config
from mmioscan.kernel.drivermap import DriverMap
from mmioscan.kernel.groups import GroupRules, load_group_rules
from mmioscan.kernel.kernelsrc import KernelSourceError, ensure_cloud_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rules() -> GroupRules:
    return load_group_rules()


@pytest.fixture(scope="module")
def cloud_config() -> dict[str, str]:
    try:
        return load_config(ensure_cloud_config())
    except KernelSourceError as exc:
        pytest.fail(f"cloud config unavailable: {exc}")


@pytest.fixture(scope="module")
def kconfig_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kconfig-cache")


@pytest.fixture(scope="module")
def cloud(kernel_tree: Path, rules: GroupRules, cloud_config: dict[str, str],
          kconfig_cache: Path) -> DriverMap:
    return DriverMap.build(kernel_tree, rules, cloud_config, cache_dir=kconfig_cache)


@pytest.fixture(scope="module")
def driver_files(kernel_tree: Path) -> list[str]:
    found = []
    for folder, _dirs, files in os.walk(kernel_tree / "drivers"):
        rel = Path(folder).relative_to(kernel_tree).as_posix()
        found.extend(f"{rel}/{name}" for name in files if name.endswith(".c"))
    return sorted(found)


def test_virtio_pci_modern(cloud: DriverMap) -> None:
    info = cloud.lookup("drivers/virtio/virtio_pci_modern.c")
    assert (info.name, info.config_symbol, info.group, info.reachable) == \
        ("virtio_pci", "VIRTIO_PCI", "virtio", True)
    assert info.evidence.startswith("drivers/virtio/Makefile: obj-$(CONFIG_VIRTIO_PCI) += "
                                    "virtio_pci.o")


def test_virtio_net(cloud: DriverMap) -> None:
    info = cloud.lookup("drivers/net/virtio_net.c")
    assert info == DriverInfo(
        "virtio_net", "VIRTIO_NET", "virtio",
        "Kconfig VIRTIO_NET: depends on VIRTIO && NET_CORE && NETDEVICES", True,
        "drivers/net/Makefile: obj-$(CONFIG_VIRTIO_NET) += virtio_net.o")


def test_e1000e_is_generic_and_not_in_the_cloud_kernel(cloud: DriverMap) -> None:
    info = cloud.lookup("drivers/net/ethernet/intel/e1000e/netdev.c")
    assert (info.name, info.config_symbol, info.group, info.reachable) == \
        ("e1000e", "E1000E", "generic", False)
    assert info.group_reason.startswith("no x86 or virtio dependency (Kconfig E1000E: "
                                        "depends on PCI && ")
    header = cloud.lookup("drivers/net/ethernet/intel/e1000e/e1000.h")
    assert (header.name, header.config_symbol) == ("e1000e", "E1000E")


def test_bnxt_composite(cloud: DriverMap) -> None:
    info = cloud.lookup("drivers/net/ethernet/broadcom/bnxt/bnxt_hwrm.c")
    assert (info.name, info.config_symbol, info.reachable) == ("bnxt_en", "BNXT", False)
    hwmon = cloud.lookup("drivers/net/ethernet/broadcom/bnxt/bnxt_hwmon.c")
    assert "also needs CONFIG_BNXT_HWMON" in hwmon.evidence


def test_x86_by_path_and_by_kconfig(cloud: DriverMap) -> None:
    hpet = cloud.lookup("arch/x86/kernel/hpet.c")
    assert (hpet.group, hpet.group_reason, hpet.config_symbol, hpet.reachable) == \
        ("x86", "path rule arch/x86/", "HPET_TIMER", True)
    ioat = cloud.lookup("drivers/dma/ioat/init.c")
    assert (ioat.name, ioat.group) == ("ioatdma", "x86")
    assert ioat.group_reason == "Kconfig INTEL_IOATDMA: depends on PCI && X86_64 && !UML && " \
                                "DMADEVICES"
    assert cloud.lookup("drivers/gpu/drm/i915/i915_drv.h").group == "x86"  # header of i915
    assert cloud.lookup("drivers/iommu/intel/iommu.c").group == "x86"
    assert cloud.lookup("drivers/platform/x86/intel/pmc/core.c").group == "x86"


def test_not_x86_only(cloud: DriverMap) -> None:
    # Hyper-V and Xen build on arm64 too: their x86 dependency is not x86-only evidence.
    assert cloud.lookup("drivers/hv/vmbus_drv.c").group == "generic"
    assert cloud.lookup("drivers/xen/events/events_base.c").group == "generic"
    assert cloud.lookup("drivers/char/hpet.c").group == "generic"


def test_virtio_by_select_and_header(cloud: DriverMap) -> None:
    console = cloud.lookup("drivers/char/virtio_console.c")
    assert (console.group, console.group_reason) == \
        ("virtio", "Kconfig VIRTIO_CONSOLE: selects VIRTIO")
    assert cloud.lookup("drivers/gpu/drm/virtio/virtgpu_vq.c").group == "virtio"
    header = cloud.lookup("include/linux/virtio_pci_modern.h")
    assert (header.group, header.reachable) == ("virtio", None)


def test_cross_folder_objects_and_included_makefiles(cloud: DriverMap) -> None:
    # amdgpu's Makefile includes display/'s Makefiles, which list ../display/... objects
    dc = cloud.lookup("drivers/gpu/drm/amd/display/dc/core/dc.c")
    assert (dc.name, dc.config_symbol, dc.reachable) == ("amdgpu", "DRM_AMDGPU", False)
    # msm-y += $(msm-display-y): conditional sub-lists
    assert cloud.lookup("drivers/gpu/drm/msm/dsi/phy/dsi_phy_14nm.c").name == "msm"
    # libstub is entered through subdir-$(CONFIG_EFI_STUB)
    stub = cloud.lookup("drivers/firmware/efi/libstub/efi-stub-helper.c")
    assert (stub.config_symbol, stub.reachable) == ("EFI_STUB", True)


def test_drivers_coverage_and_groups(cloud: DriverMap, driver_files: list[str]) -> None:
    infos = [cloud.lookup(path) for path in driver_files]
    listed = [i for i in infos if not i.evidence.startswith(("not in", "in no"))]
    assert len(driver_files) > 20000
    assert len(listed) / len(infos) > 0.98  # measured: 99.1%
    groups = {g: [i for i in infos if i.group == g] for g in ("virtio", "x86", "generic")}
    assert 40 <= len(groups["virtio"]) <= 150
    assert 0.04 <= len(groups["x86"]) / len(infos) <= 0.15  # measured: 8%
    virtio_modules = {i.name for i in groups["virtio"]}
    assert {"virtio_net", "virtio_blk", "virtio_scsi", "virtio_console", "virtio_pci"} \
        <= virtio_modules
    built = [i for i in infos if i.reachable]
    assert 1000 < len(built) < 4000  # a cloud kernel: a small share of drivers/
    assert all(i.reachable is not None for i in listed)


def test_few_problems_on_the_real_tree(cloud: DriverMap) -> None:
    assert len(cloud.problems) < 20, cloud.problems


def test_scoped_build_agrees(kernel_tree: Path, rules: GroupRules,
                             cloud_config: dict[str, str], kconfig_cache: Path,
                             cloud: DriverMap) -> None:
    folder = kernel_tree / "drivers" / "net" / "ethernet" / "intel"
    paths = sorted(p.relative_to(kernel_tree).as_posix() for p in folder.rglob("*.[ch]"))
    scoped = DriverMap.build(kernel_tree, rules, cloud_config, paths=paths,
                             cache_dir=kconfig_cache)
    assert [scoped.lookup(p) for p in paths] == [cloud.lookup(p) for p in paths]
    outside = "drivers/virtio/virtio_ring.c"  # widened on demand
    assert scoped.lookup(outside) == cloud.lookup(outside)


def test_whole_tree_build_time(kernel_tree: Path, rules: GroupRules,
                               cloud_config: dict[str, str], kconfig_cache: Path) -> None:
    # ~1 s warm on an idle 2-core machine (Kconfig from the cache, every Kbuild file read);
    # the bound leaves room for a loaded machine.
    start = time.perf_counter()
    DriverMap.build(kernel_tree, rules, cloud_config, cache_dir=kconfig_cache)
    assert time.perf_counter() - start < 15
