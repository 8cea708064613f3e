"""Bar charts as inline SVG, so the report is one self-contained file: no script, no CDN, and
it prints. Each chart is an ``<svg role="img">`` with a ``<title>`` and ``<desc>`` (what a
screen reader announces); the same figures are in the report's tables below it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#1f5fa8", "#d9822b", "#2e8b57", "#8e44ad", "#555555")
"""Distinguishable in print and for the common colour-vision deficiencies (blue/orange first)."""

HEIGHT = 240
MIN_PLOT_WIDTH = 640.0
LABEL_WIDTH = 72.0  # a YYYY-MM-DD label at 10 px
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 16, 44


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # None: no data (no bar)


def _tick(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == 0 else f"{value:.2g}"


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    series: Sequence[Series],
    unit: str,
    *,
    top: float | None = None,
) -> Markup:
    """Grouped bars: one group per category (a day, a quarter), one bar per series."""
    for one in series:
        if len(one.values) != len(categories):
            raise ValueError(f"series {one.name!r} has {len(one.values)} values")
    present = [v for one in series for v in one.values if v is not None]
    scale_top = top if top is not None else max([*present, 0.0]) or 1.0
    group = max(12.0, 8.0 * len(series) + 6, MIN_PLOT_WIDTH / max(len(categories), 1))
    plot_width = group * max(len(categories), 1)
    width = LEFT + plot_width + RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    bar = (group - 6) / max(len(series), 1)
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" role="img" xmlns="http://www.w3.org/2000/svg"'
        f' width="{width:.0f}" height="{HEIGHT}" viewBox="0 0 {width:.0f} {HEIGHT}"'
        f' aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
    ]
    for step in range(5):
        tick = scale_top * step / 4
        y = TOP + plot_height * (1 - step / 4)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_width:.1f}" y1="{y:.1f}" y2="{y:.1f}"'
            ' stroke="#ccc" stroke-width="1"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{escape(_tick(tick))}</text>"
        )
    parts.append(
        f'<text x="12" y="{TOP + plot_height / 2:.1f}" font-size="11" text-anchor="middle"'
        f' transform="rotate(-90 12 {TOP + plot_height / 2:.1f})">{escape(unit)}</text>'
    )
    label_every = math.ceil(LABEL_WIDTH / group)
    for index, category in enumerate(categories):
        x0 = LEFT + index * group + 3
        for number, one in enumerate(series):
            value = one.values[index]
            if value is None:
                continue
            h = plot_height * min(value, scale_top) / scale_top
            parts.append(
                f'<rect class="bar" x="{x0 + number * bar:.1f}" y="{TOP + plot_height - h:.1f}"'
                f' width="{max(bar - 1, 1):.1f}" height="{max(h, 0.5):.1f}"'
                f' fill="{PALETTE[number % len(PALETTE)]}">'
                f"<title>{escape(one.name)}, {escape(category)}: {value:.4g} {escape(unit)}"
                "</title></rect>"
            )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x0:.1f}" y="{HEIGHT - BOTTOM + 14}" font-size="10">'
                f"{escape(category)}</text>"
            )
    for number, one in enumerate(series):
        x = LEFT + number * 110
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 16}" width="10" height="10"'
            f' fill="{PALETTE[number % len(PALETTE)]}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 7}" font-size="11">{escape(one.name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
