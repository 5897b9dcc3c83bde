"""Inline SVG charts for the HTML report, drawn in Python: no script library, no fonts or
images to fetch, and the same bytes for the same input (coordinates rounded to 0.1).

The `<svg>` elements carry no xmlns: inside an HTML document the parser puts them in the SVG
namespace, and leaving it out keeps the report free of any URL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from mmioscan.core.model import Coverage

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
MAX_VERTICES = 400  # per curve: a 20,000-point curve still draws as a smooth line


def _f(value: float) -> str:
    return f"{value:.1f}"


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return (f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{extra}>'
            f"{escape(text)}</text>")


def sample_indices(count: int, limit: int = MAX_VERTICES) -> list[int]:
    """0-based indices to draw of a curve of `count` points: every one of the first points,
    then geometrically spaced ones (the x axis is logarithmic), always the last."""
    if count <= limit:
        return list(range(count))
    picked = set(range(min(count, limit // 4)))
    ratio = (count / max(len(picked), 1)) ** (1 / (limit - len(picked)))
    position = float(len(picked))
    while position < count:
        picked.add(int(position))
        position = max(position * ratio, position + 1)
    picked.add(count - 1)
    return sorted(picked)


class _Axes:
    """Log x (points, from 1) and linear y (share 0..1) inside the plot box."""

    def __init__(self, width: int, height: int, max_points: int) -> None:
        self.left, self.right, self.top, self.bottom = 52.0, width - 16.0, 14.0, height - 40.0
        self.span = math.log10(max_points) if max_points > 1 else 1.0

    def x(self, points: int) -> float:
        return self.left + (self.right - self.left) * math.log10(max(points, 1)) / self.span

    def y(self, share: float) -> float:
        return self.bottom - (self.bottom - self.top) * min(max(share, 0.0), 1.0)


def _grid(axes: _Axes, max_points: int) -> list[str]:
    parts = []
    for share in (0.0, 0.5, 0.9, 1.0):
        y = axes.y(share)
        dash = ' stroke-dasharray="4 3"' if share in (0.5, 0.9) else ""
        parts.append(f'<line x1="{_f(axes.left)}" y1="{_f(y)}" x2="{_f(axes.right)}" '
                     f'y2="{_f(y)}" stroke="#bbb"{dash}/>')
        parts.append(_text(axes.left - 6, y + 4, f"{share:.0%}", "end"))
    for tick in _ticks(max_points):
        x = axes.x(tick)
        parts.append(f'<line x1="{_f(x)}" y1="{_f(axes.bottom)}" x2="{_f(x)}" '
                     f'y2="{_f(axes.bottom + 5)}" stroke="#666"/>')
        parts.append(_text(x, axes.bottom + 18, f"{tick:,}", "middle"))
    parts.append(_text((axes.left + axes.right) / 2, axes.bottom + 34,
                       "patch points (log scale)", "middle"))
    return parts


def _ticks(max_points: int) -> list[int]:
    """Powers of ten up to the longest curve, and its length unless a power is close."""
    ticks, tick = [], 1
    while tick <= max_points:
        ticks.append(tick)
        tick *= 10
    if max_points > 1 and max_points >= ticks[-1] * 2:
        ticks.append(max_points)
    return ticks


def _polyline(axes: _Axes, cov: Coverage, color: str) -> str:
    points = cov.points
    coords = " ".join(f"{_f(axes.x(i + 1))},{_f(axes.y(points[i].cumulative_share))}"
                      for i in sample_indices(len(points)))
    return (f'<polyline points="{coords}" fill="none" stroke="{color}" '
            'stroke-width="2"/>')


def coverage_chart(curves: Sequence[tuple[str, Coverage]], width: int = 680,
                   height: int = 300) -> str:
    """Cumulative share of sites covered by the first N patch points, one line per curve."""
    drawn = [(name, cov) for name, cov in curves if cov.points]
    if not drawn:
        return '<p class="muted">No patch points to draw.</p>'
    max_points = max(len(cov.points) for _, cov in drawn)
    axes = _Axes(width, height, max_points)
    parts = [f'<svg class="chart" width="{width}" height="{height + 20 * len(drawn)}" '
             f'viewBox="0 0 {width} {height + 20 * len(drawn)}" role="img" '
             'aria-label="patch-point coverage curves">',
             "<title>Share of sites covered by the first N patch points</title>"]
    parts += _grid(axes, max_points)
    for i, (name, cov) in enumerate(drawn):
        color = COLORS[i % len(COLORS)]
        parts.append(_polyline(axes, cov, color))
        needed = dict(cov.needed).get(90)
        label = (f"{name}: {cov.sites:,} sites, 90% with "
                 f"{'-' if needed is None else f'{needed:,}'} points")
        y = height + 20 * i + 6
        parts.append(f'<rect x="{_f(axes.left)}" y="{_f(y - 9)}" width="14" height="4" '
                     f'fill="{color}"/>')
        parts.append(_text(axes.left + 20, y - 3, label))
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(items: Sequence[tuple[str, int]], title: str, width: int = 680) -> str:
    """Horizontal bars, one per (label, count), in the order given."""
    if not items:
        return '<p class="muted">None.</p>'
    row, label_w, value_w = 20, 190.0, 80.0
    height = row * len(items) + 8
    top = max(v for _, v in items) or 1
    bar_space = width - label_w - value_w
    parts = [f'<svg class="chart" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>"]
    for i, (label, value) in enumerate(items):
        y = 4 + i * row
        bar = bar_space * value / top
        parts.append(_text(label_w - 6, y + 14, label, "end"))
        parts.append(f'<rect x="{_f(label_w)}" y="{_f(y + 3)}" width="{_f(bar)}" '
                     f'height="{row - 6}" fill="{COLORS[0]}"/>')
        parts.append(_text(label_w + bar + 4, y + 14, f"{value:,}"))
    parts.append("</svg>")
    return "".join(parts)
