"""Small server-side SVG charts for the dashboard (no JavaScript library)."""

from __future__ import annotations

from html import escape
from typing import Sequence

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")
"""Series colours, in order."""


def nice_max(value: float) -> float:
    """Smallest of 1, 2, 2.5, 5 x 10^n that is >= ``value`` (the top of the y axis)."""
    if value <= 0:
        return 1.0
    from math import floor, log10

    scale = 10 ** floor(log10(value))
    return next(m * scale for m in (1, 2, 2.5, 5, 10) if m * scale >= value * (1 - 1e-12))


def bar_chart(labels: Sequence[str], series: dict[str, Sequence[float | None]], title: str, unit: str = "",
              width: int = 640, height: int = 220, limit_line: float | None = None,
              limit_label: str = "") -> str:
    """Stacked bar chart as an inline ``<svg>`` string.

    Parameters
    ----------
    labels
        One label per bar (shown as a tooltip; the first and last also under the axis).
    series
        Name -> one value per bar (``None`` counts as 0); stacked in the given order.
    title, unit
        Chart title and y-axis unit.
    limit_line
        Draw a dashed horizontal line at this value (e.g. the 309 s cadence).
    """
    n = len(labels)
    left, right, top, bottom = 48, 10, 26, 34
    pw, ph = width - left - right, height - top - bottom
    out = [f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
           f'width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
           f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>']
    if n == 0:
        out.append(f'<text x="{left + pw / 2}" y="{top + ph / 2}" text-anchor="middle" class="chart-empty">'
                   'no data yet</text></svg>')
        return "".join(out)
    totals = [sum(float(s[i] or 0.0) for s in series.values()) for i in range(n)]
    if limit_line is not None and limit_line > 4 * max(totals):  # the bars would be flat lines under it
        out.append(f'<text x="{left + pw}" y="16" text-anchor="end" class="tick">{escape(limit_label)}: '
                   f'{limit_line:g} {escape(unit)}, off scale</text>')
        limit_line = None
    ymax = nice_max(max(totals + [limit_line or 0.0]))
    for k in range(5):  # grid and y labels
        v = ymax * k / 4
        y = top + ph - ph * v / ymax
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">{v:g}</text>')
    bw = pw / n
    for i, label in enumerate(labels):
        y0 = top + ph
        for j, (name, values) in enumerate(series.items()):
            v = float(values[i] or 0.0)
            h = ph * v / ymax
            if h > 0:
                out.append(f'<rect x="{left + i * bw + bw * 0.1:.1f}" y="{y0 - h:.1f}" width="{max(bw * 0.8, 1):.1f}" '
                           f'height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(label)} '
                           f'{escape(name)}: {v:.3g} {escape(unit)}</title></rect>')
                y0 -= h
    if limit_line is not None:
        y = top + ph - ph * limit_line / ymax
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="limit"/>'
                   f'<text x="{left + pw}" y="{y - 3:.1f}" text-anchor="end" class="tick">{escape(limit_label)}</text>')
    out.append(f'<text x="{left}" y="{height - 18}" class="tick">{escape(labels[0])}</text>')
    if n > 1:
        out.append(f'<text x="{left + pw}" y="{height - 18}" text-anchor="end" class="tick">'
                   f'{escape(labels[-1])}</text>')
    out.append(f'<text x="4" y="{top - 6}" class="tick">{escape(unit)}</text>')
    if len(series) > 1:  # legend
        x = left
        for j, name in enumerate(series):
            out.append(f'<rect x="{x}" y="{height - 11}" width="9" height="9" fill="{PALETTE[j % len(PALETTE)]}"/>'
                       f'<text x="{x + 12}" y="{height - 3}" class="tick">{escape(name)}</text>')
            x += 14 + 7 * len(name) + 10
    out.append("</svg>")
    return "".join(out)
