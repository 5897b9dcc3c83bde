"""Shared by the integration tests: one folder of the real tree scanned to its JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmioscan.cli.main import main


def scan_folder(kernel_tree: Path, folder: str, tmp: Path) -> dict[str, Any]:
    """`mmioscan scan TREE/folder --format json` with a cache under tmp; asserts exit 0."""
    out = tmp / "scan.json"
    assert main(["scan", str(kernel_tree / folder), "--format", "json", "-o", str(out),
                 "--cache-dir", str(tmp / "cache"), "--no-progress"]) == 0
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data
