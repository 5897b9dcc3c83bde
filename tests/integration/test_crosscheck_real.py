"""The precise engine on linux-source-6.12 under Debian's cloud-amd64 config: the prepared
build (made here once, then reused from the cache), Kbuild's flags, and the crosscheck of
both engines on drivers/nvme/host, drivers/virtio and drivers/net/virtio_net.c."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmioscan.analysis.crosscheck import CrossCheck, crosscheck
from mmioscan.clang.flags import plan
from mmioscan.clang.prepare import Prepared, prepare
from mmioscan.core.paths import cache_base

pytestmark = pytest.mark.integration

PATHS = ("drivers/nvme/host", "drivers/virtio", "drivers/net/virtio_net.c")


@pytest.fixture(scope="module")
def prepared(kernel_tree: Path, cloud_config_file: Path) -> Prepared:
    return prepare(kernel_tree, cloud_config_file)


@pytest.fixture(scope="module")
def cross(kernel_tree: Path, prepared: Prepared) -> CrossCheck:
    return crosscheck(tuple(kernel_tree / p for p in PATHS), prepared, kernel_tree, jobs=2,
                      cache_dir=cache_base() / "facts")


def test_the_build_is_out_of_tree_and_prepared(kernel_tree: Path, prepared: Prepared) -> None:
    assert not prepared.build.is_relative_to(kernel_tree)
    assert (prepared.build / "include/generated/autoconf.h").is_file()
    assert (prepared.build / "arch/x86/include/generated/asm/syscalls_64.h").is_file()
    assert not (kernel_tree / ".config").exists()
    assert not (kernel_tree / "include/generated").exists()
    autoconf = (prepared.build / "include/generated/autoconf.h").read_text()
    assert "#define CONFIG_INTEL_TDX_GUEST 1" in autoconf


def test_flags_are_kbuilds_for_each_object(prepared: Prepared) -> None:
    built = plan(prepared, ["drivers/net/virtio_net.c", "drivers/nvme/host/core.c",
                            "drivers/nvme/host/apple.c"],
                 ["drivers/net/virtio_net.c", "drivers/nvme/host"])
    module = built.flags["drivers/net/virtio_net.c"]  # CONFIG_VIRTIO_NET=m
    assert "-DMODULE" in module and '-DKBUILD_MODNAME="virtio_net"' in module
    builtin = built.flags["drivers/nvme/host/core.c"]  # part of nvme-core, built in
    assert "-DMODULE" not in builtin and '-DKBUILD_MODNAME="nvme_core"' in builtin
    assert any(a.endswith("include/linux/compiler_types.h") for a in builtin)
    assert not any(a.startswith(("-fconserve-stack", "-mindirect-branch", "-Wp,")) for a in
                   builtin)
    assert built.not_built == ("drivers/nvme/host/apple.c",)  # an Apple SoC driver


def test_every_built_file_parses_cleanly(cross: CrossCheck) -> None:
    assert len(cross.files) >= 25
    assert cross.failed == ()
    assert "drivers/nvme/host/apple.c" in cross.not_built


def test_direct_sites_agree(cross: CrossCheck) -> None:
    direct = cross.kinds["direct"]
    assert direct.both >= 100
    assert direct.agreement >= 0.99, dict(direct.causes)


def test_every_disagreement_has_a_cause(cross: CrossCheck) -> None:
    unexplained = {kind: n for kind, count in cross.kinds.items()
                   for (_, cause), n in count.causes.items() if cause == "unexplained"}
    assert not unexplained
