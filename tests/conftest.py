"""Shared fixtures: the real kernel tree (integration) and the fixtures folder (unit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmioscan.kernel.kernelsrc import KernelSourceError, ensure_cloud_config, ensure_tree

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def kernel_tree() -> Path:
    """Debian's linux-source-6.12, extracted into the cache (installed by .ci/run)."""
    try:
        return ensure_tree()
    except KernelSourceError as exc:  # a real failure: integration tests must not pass silently
        pytest.fail(f"kernel tree unavailable: {exc}")


@pytest.fixture(scope="session")
def cloud_config_file() -> Path:
    """Debian's cloud-amd64 .config for linux 6.12 (CONFIG_INTEL_TDX_GUEST=y)."""
    try:
        return ensure_cloud_config()
    except KernelSourceError as exc:
        pytest.fail(f"cloud config unavailable: {exc}")
