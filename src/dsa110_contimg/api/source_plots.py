"""Pictures of the survey sources: the eta-V plane (inline SVG) and a light curve (PNG, matplotlib Agg).

Both are drawn on request from the products database's rows; nothing is stored.
"""

from __future__ import annotations

import io
import math
from html import escape
from typing import Any, Sequence

from .charts import PALETTE

ETA_FLOOR = 1e-2
"""Smallest eta drawn (smaller ones, e.g. a perfectly steady source, sit on the left edge)."""
V_FLOOR = 1e-3
"""Smallest V drawn."""


def _log_range(values: Sequence[float], floor: float, mark: float) -> tuple[float, float]:
    """Decades (log10) spanning ``values`` and the threshold ``mark``, one decade of margin at least."""
    logs = [math.log10(max(v, floor)) for v in values] + [math.log10(mark)]
    lo, hi = math.floor(min(logs)), math.ceil(max(logs))
    return (lo, hi + 1) if hi <= lo else (lo, hi)


def eta_v_plane(points: Sequence[dict[str, Any]], eta_min: float, v_min: float, width: int = 640,
                height: int = 400) -> str:
    """The eta-V plane of the sources as an inline ``<svg>`` string (log-log axes).

    Parameters
    ----------
    points
        One dict per source with ``id``, ``name``, ``eta``, ``v_index``, ``is_variable``, ``is_new``;
        sources without eta or V are left out.
    eta_min, v_min
        The variability thresholds, drawn as dashed lines (class ``threshold``).
    width, height
        Size of the drawing (px, scaled to the page width).

    Returns
    -------
    str
        The SVG; each source is a ``<circle>`` inside a link to ``/sources/{id}``.
    """
    pts = [p for p in points if p.get("eta") is not None and p.get("v_index") is not None]
    left, right, top, bottom = 52, 12, 26, 38
    pw, ph = width - left - right, height - top - bottom
    title = "Variability: eta (weighted reduced chi-square) vs V (modulation index)"
    out = [f'<svg class="chart eta-v" role="img" aria-label="eta-V plane" viewBox="0 0 {width} {height}" '
           f'width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
           f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>']
    x0, x1 = _log_range([p["eta"] for p in pts], ETA_FLOOR, eta_min)
    y0, y1 = _log_range([p["v_index"] for p in pts], V_FLOOR, v_min)

    def sx(v: float) -> float:
        return left + pw * (math.log10(max(v, ETA_FLOOR)) - x0) / (x1 - x0)

    def sy(v: float) -> float:
        return top + ph - ph * (math.log10(max(v, V_FLOOR)) - y0) / (y1 - y0)

    for d in range(x0, x1 + 1):  # decades: grid and labels
        x = left + pw * (d - x0) / (x1 - x0)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" class="grid"/>'
                   f'<text x="{x:.1f}" y="{top + ph + 13}" text-anchor="middle" class="tick">{10.0 ** d:g}</text>')
    for d in range(y0, y1 + 1):
        y = top + ph - ph * (d - y0) / (y1 - y0)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">{10.0 ** d:g}</text>')
    xe, yv = sx(eta_min), sy(v_min)
    out.append(f'<line x1="{xe:.1f}" x2="{xe:.1f}" y1="{top}" y2="{top + ph}" class="limit threshold" '
               f'data-threshold="eta_min" data-value="{eta_min:g}"/>'
               f'<text x="{xe + 3:.1f}" y="{top + 10}" class="tick">eta = {eta_min:.3g}</text>'
               f'<line x1="{left}" x2="{left + pw}" y1="{yv:.1f}" y2="{yv:.1f}" class="limit threshold" '
               f'data-threshold="v_min" data-value="{v_min:g}"/>'
               f'<text x="{left + pw}" y="{yv - 3:.1f}" text-anchor="end" class="tick">V = {v_min:.3g}</text>')
    for p in pts:
        colour = PALETTE[3] if p.get("is_variable") else PALETTE[1] if p.get("is_new") else PALETTE[0]
        out.append(f'<a href="/sources/{int(p["id"])}" class="source-point"><circle cx="{sx(p["eta"]):.1f}" '
                   f'cy="{sy(p["v_index"]):.1f}" r="4" fill="{colour}"><title>{escape(str(p.get("name", "")))}: '
                   f'eta {p["eta"]:.3g}, V {p["v_index"]:.3g}</title></circle></a>')
    if not pts:
        out.append(f'<text x="{left + pw / 2}" y="{top + ph / 2}" text-anchor="middle" class="chart-empty">'
                   'no sources with two measurements yet</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle" class="tick">eta</text>'
               f'<text x="4" y="{top - 6}" class="tick">V</text></svg>')
    return "".join(out)


def lightcurve_png(name: str, measurements: Sequence[Any], width_in: float = 8.0, height_in: float = 3.6) -> bytes:
    """A light curve as PNG bytes: flux against time, error bars, detections filled and forced points open.

    Parameters
    ----------
    name
        Source name (the title).
    measurements
        :class:`~dsa110_contimg.db.sources.MeasurementRecord` (or anything with ``mjd``, ``flux_jy``,
        ``flux_err_jy``, ``kind``), in any order.
    width_in, height_in
        Figure size (inches, at 100 dpi).

    Returns
    -------
    bytes
        The PNG file.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for kind, marker, face in (("detection", "o", PALETTE[0]), ("forced", "s", "none")):
        ms = [m for m in measurements if m.kind == kind]
        if ms:
            ax.errorbar([m.mjd for m in ms], [m.flux_jy * 1e3 for m in ms], yerr=[m.flux_err_jy * 1e3 for m in ms],
                        fmt=marker, mfc=face, mec=PALETTE[0] if kind == "detection" else PALETTE[1],
                        ecolor=PALETTE[0] if kind == "detection" else PALETTE[1], capsize=2, ms=5,
                        label=f"{kind} ({len(ms)})")
    if not measurements:
        ax.text(0.5, 0.5, "no measurements", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(loc="best", fontsize=8)
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.set_xlabel("time (MJD)")
    ax.set_ylabel("flux density (mJy)")
    ax.set_title(name, fontsize=10)
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
