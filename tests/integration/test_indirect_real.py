"""Calls through function-pointer fields and iopoll ops on the real tree (linux-source-6.12),
issue 12 items 2 and 6: generic MMIO GPIO's gc->read_reg/write_reg (the bgpio accessors
stored by gpio-mmio.c), pcnet32's lp->a->read_csr (an access table of two funnel sets, typed
through the member `a`) and tehuti's read_poll_timeout(tn40_read_reg, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .helpers import scan_folder

pytestmark = pytest.mark.integration

BGPIO_READS = ["bgpio_read16", "bgpio_read16be", "bgpio_read32", "bgpio_read32be",
               "bgpio_read64", "bgpio_read8"]



@pytest.fixture(scope="module")
def gpio(kernel_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scan_folder(kernel_tree, "drivers/gpio", tmp_path_factory.mktemp("gpio"))


@pytest.fixture(scope="module")
def amd(kernel_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scan_folder(kernel_tree, "drivers/net/ethernet/amd", tmp_path_factory.mktemp("amd"))


def _indirect(scan: dict[str, Any], path: str, callee: str) -> list[dict[str, Any]]:
    return [s for s in scan["sites"] if s["path"] == path and s["callee"] == callee
            and s.get("indirect")]


def test_bgpio_read_reg_calls_are_wrapper_sites(gpio: dict[str, Any]) -> None:
    own = _indirect(gpio, "drivers/gpio/gpio-mmio.c", "->read_reg")
    assert own and all(s["targets"] == BGPIO_READS and s["kind"] == "wrapper" for s in own)
    # another driver of the folder that calls through its gpio_chip
    other = _indirect(gpio, "drivers/gpio/gpio-mpc8xxx.c", "->read_reg")
    assert other and other[0]["targets"] == BGPIO_READS
    assert _indirect(gpio, "drivers/gpio/gpio-mmio.c", "->write_reg")
    assert gpio["stats"]["indirect_mixed"] > 0  # gpiolib's gc->get: every driver's


def test_pcnet32_access_table_is_typed_through_its_member(amd: dict[str, Any]) -> None:
    sites = _indirect(amd, "drivers/net/ethernet/amd/pcnet32.c", "->read_csr")
    assert sites and {tuple(s["targets"]) for s in sites} == {
        ("pcnet32_dwio_read_csr", "pcnet32_wio_read_csr")}


def test_read_poll_timeout_with_a_driver_funnel(kernel_tree: Path, tmp_path: Path) -> None:
    scan = scan_folder(kernel_tree, "drivers/net/ethernet/tehuti", tmp_path)
    polled = [s for s in scan["sites"] if s["callee"] == "tn40_read_reg"
              and "read_poll_timeout" in (s["code"] or "")]
    assert polled and all(s["kind"] == "wrapper" and s["tdx"]["ve_exits"] is None
                          for s in polled)
