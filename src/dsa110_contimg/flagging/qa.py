"""QA plot of one group's flags: time x frequency waterfall of the flagged fraction, and per antenna."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def plot_flags(path: str | Path, waterfall: np.ndarray, freqs_hz: np.ndarray, times_s: np.ndarray,
               per_antenna: dict[str, float], title: str) -> Path:
    """Write the QA PNG.

    Parameters
    ----------
    path
        Output PNG.
    waterfall
        Flagged fraction over baselines and polarizations, (time, channel).
    freqs_hz, times_s
        Channel frequencies and integration centres (MJD seconds).
    per_antenna
        Flagged fraction per antenna name.
    title
        Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    order = np.argsort(freqs_hz)
    t_min = (np.asarray(times_s) - times_s[0]) / 60.0 if len(times_s) else np.zeros(0)
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(10, 7.5), gridspec_kw={"height_ratios": [3, 2]})
    f_mhz = np.asarray(freqs_hz)[order] / 1e6
    dt = float(np.median(np.diff(t_min))) if t_min.size > 1 else 0.2
    extent = [f_mhz[0], f_mhz[-1], t_min[-1] + dt / 2 if t_min.size else 1, t_min[0] - dt / 2 if t_min.size else 0]
    im = ax0.imshow(waterfall[:, order], aspect="auto", extent=extent, vmin=0, vmax=1, cmap="magma",
                    interpolation="nearest")
    ax0.set_xlabel("frequency (MHz)")
    ax0.set_ylabel("time since start (min)")
    ax0.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax0, label="flagged fraction")
    names = list(per_antenna)
    ax1.bar(range(len(names)), [per_antenna[n] for n in names], color="tab:red", width=0.8)
    ax1.set_ylim(0, 1)
    ax1.set_xlim(-1, len(names))
    step = max(1, len(names) // 32)
    ax1.set_xticks(range(0, len(names), step))
    ax1.set_xticklabels(names[::step], fontsize=7, rotation=90)
    ax1.set_xlabel("antenna")
    ax1.set_ylabel("flagged fraction")
    # fixed margins: tight_layout costs half a second of the stage's budget on this figure
    fig.subplots_adjust(left=0.07, right=0.99, top=0.95, bottom=0.11, hspace=0.38)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_data_path(png: str | Path) -> Path:
    """Where :func:`save_plot_data` keeps the data of the plot ``png``."""
    return Path(png).with_suffix(".npz")


def save_plot_data(png: str | Path, waterfall: np.ndarray, freqs_hz: np.ndarray, times_s: np.ndarray,
                   per_antenna: dict[str, float], title: str) -> Path:
    """Save what :func:`plot_flags` needs to draw ``png`` later (:func:`render_deferred`); returns the npz path."""
    out = plot_data_path(png)
    np.savez(out, waterfall=np.asarray(waterfall, dtype=np.float32), freqs_hz=np.asarray(freqs_hz),
             times_s=np.asarray(times_s), antennas=np.array(list(per_antenna), dtype=str),
             fractions=np.array(list(per_antenna.values()), dtype=float), title=np.array(title))
    return out


def render_deferred(png: str | Path) -> Path | None:
    """Draw ``png`` from its saved data if it does not exist yet; the PNG, or None when there is neither."""
    png = Path(png)
    if png.is_file():
        return png
    data = plot_data_path(png)
    if not data.is_file():
        return None
    with np.load(data) as z:
        per_antenna = dict(zip(z["antennas"].tolist(), z["fractions"].tolist()))
        tmp = png.with_name(f".{png.stem}.{os.getpid()}.png")
        plot_flags(tmp, z["waterfall"], z["freqs_hz"], z["times_s"], per_antenna, str(z["title"]))
    os.replace(tmp, png)  # atomic: a concurrent reader sees the whole PNG or none
    return png
