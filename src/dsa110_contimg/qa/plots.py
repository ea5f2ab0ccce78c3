"""PNG products of image QA: a thumbnail and a QA plot (matplotlib, Agg)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np


def _stretch(data, rms):
    """Arcsinh stretch to [0, 1]: linear to a few rms, logarithmic above."""
    finite = np.isfinite(data)
    if not finite.any():
        return np.zeros_like(data)
    lo = np.nanpercentile(data[finite], 0.5)
    hi = max(float(np.max(data[finite])), lo + 1e-30)
    a = max(3.0 * rms, 1e-30) if rms > 0 else (hi - lo) / 100.0
    x = np.arcsinh((np.clip(np.where(finite, data, lo), lo, hi) - lo) / a) / np.arcsinh((hi - lo) / a)
    return x


def _downsample(data, size: int):
    ny, nx = data.shape
    f = int(math.ceil(max(ny, nx) / max(1, size)))
    if f <= 1:
        return data
    ny2, nx2 = ny // f * f, nx // f * f
    with warnings.catch_warnings():  # all-NaN blocks stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(data[:ny2, :nx2].reshape(ny2 // f, f, nx2 // f, f), axis=(1, 3))


def write_thumbnail(data, rms: float, path: Path, size: int = 512) -> Path:
    """PNG of the image (arcsinh stretch, at most ``size`` pixels a side, no axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = _stretch(_downsample(np.asarray(data, dtype=float), size), rms)
    plt.imsave(path, img, cmap="inferno", vmin=0.0, vmax=1.0, origin="lower")
    return Path(path)


def write_qa_plot(data, rms: float, res, path: Path, title: str = "") -> Path:
    """QA figure: image with detections, pixel histogram with the rms Gaussian, and
    (when matched) flux ratio vs catalog flux and position offsets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    matched = [(s, m) for s, m in zip(res.sources, res.matches) if m is not None]
    ncol = 4 if matched else 2
    fig, axes = plt.subplots(1, ncol, figsize=(4.2 * ncol, 4.4))
    ax = axes[0]
    ax.imshow(_stretch(data, rms), cmap="inferno", origin="lower", vmin=0, vmax=1, interpolation="nearest")
    r = max(4.0, 0.02 * max(data.shape))
    for s, m in zip(res.sources, res.matches):
        ax.add_patch(Circle((s.x, s.y), r, fill=False, lw=0.8, color="cyan" if m is not None else "lime"))
    ax.set_title(f"{len(res.sources)} sources (cyan: matched)", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])

    ax = axes[1]
    v = data[np.isfinite(data)]
    if rms > 0 and v.size:
        med = float(np.median(v))
        bins = np.linspace(med - 8 * rms, med + 8 * rms, 81)
        ax.hist(v * 1e3, bins=bins * 1e3, histtype="step", color="k", label="pixels")
        xg = 0.5 * (bins[1:] + bins[:-1])
        g = v.size * (bins[1] - bins[0]) / (rms * math.sqrt(2 * math.pi)) * np.exp(-0.5 * ((xg - med) / rms) ** 2)
        ax.plot(xg * 1e3, g, "r-", lw=1, label=f"Gaussian, rms {rms * 1e3:.3g} mJy")
        ax.set_yscale("log")
        ax.set_ylim(0.5, None)
        ax.legend(fontsize=8)
    ax.set_xlabel("pixel value (mJy/beam)")
    ax.set_title(f"peak {res.peak_jy:.3g} Jy/beam, DR {res.dynamic_range:.0f}", fontsize=9)

    if matched:
        cat_f = np.array([m["catalog_flux_jy"] for _, m in matched])
        ratio = np.array([m["flux_ratio"] for _, m in matched])
        ax = axes[2]
        ax.scatter(cat_f, ratio, s=10)
        ax.set_xscale("log")
        ax.axhline(1.0, color="grey", lw=0.8)
        if res.flux_ratio_median is not None:
            ax.axhline(res.flux_ratio_median, color="r", lw=0.8, label=f"median {res.flux_ratio_median:.3f}")
            ax.legend(fontsize=8)
        ax.set_xlabel("catalog flux at image freq (Jy)")
        ax.set_ylabel(f"image / catalog ({res.flux_compared})")
        ax = axes[3]
        dra = np.array([m["dra_arcsec"] for _, m in matched])
        ddec = np.array([m["ddec_arcsec"] for _, m in matched])
        ax.scatter(dra, ddec, s=10)
        ax.plot([res.ra_offset_arcsec], [res.dec_offset_arcsec], "r+", ms=12)
        rad = res.match_radius_arcsec or float(np.max(np.hypot(dra, ddec)))
        ax.add_patch(Circle((0, 0), rad, fill=False, ls="--", color="grey"))
        ax.set_xlim(-rad * 1.1, rad * 1.1)
        ax.set_ylim(-rad * 1.1, rad * 1.1)
        ax.set_aspect("equal")
        ax.set_xlabel("dRA cos(dec) (arcsec)")
        ax.set_ylabel("dDec (arcsec)")
        ax.set_title(f"{len(matched)} matched, median sep {res.astrometry_offset_arcsec:.2f}\"", fontsize=9)
    fig.suptitle(f"{title}  beam {res.bmaj_arcsec:.1f}\"x{res.bmin_arcsec:.1f}\" PA {res.bpa_deg:.0f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
