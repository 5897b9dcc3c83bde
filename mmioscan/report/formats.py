"""The output formats, in one table: adding a format is one line here and its renderer.

Renderers are loaded when used (importlib), so the command line can list the formats without
importing any of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmioscan.core.model import ScanResult

Renderer = Callable[["ScanResult"], str]


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    renderer: str  # "module:function" in mmioscan.report
    scan: bool  # offered by `mmioscan scan --format`
    suffixes: tuple[str, ...] = ()  # `mmioscan report -o FILE` picks the format by suffix


FORMATS: tuple[Format, ...] = (
    Format("text", "text:render", True),
    Format("json", "json:render", True),
    Format("sarif", "sarif:render", True),
    Format("csv", "csv:render", True),
    Format("markdown", "markdown:render", True, (".md",)),
    Format("summary", "summary:render", True, (".json",)),
    Format("html", "html:render", False, (".html", ".htm")),
    Format("strategies-text", "text:strategies", False),
    Format("strategies-json", "json:render_strategies", False),
)


def scan_formats() -> tuple[str, ...]:
    return tuple(sorted(f.name for f in FORMATS if f.scan))


def report_suffixes() -> dict[str, str]:
    """`.html` -> "html", `.md` -> "markdown", `.json` -> "summary"."""
    return {suffix: f.name for f in FORMATS for suffix in f.suffixes}


def renderer(name: str) -> Renderer:
    """The render function of a format (KeyError for an unknown name)."""
    entry = next(f for f in FORMATS if f.name == name)
    module, function = entry.renderer.split(":")
    render: Renderer = getattr(importlib.import_module(f"mmioscan.report.{module}"), function)
    return render
