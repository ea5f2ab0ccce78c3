"""Radio-frequency interference for the simulator (``contimg simulate --rfi none|light|heavy``).

Three kinds of terrestrial interference are drawn once per group over the whole
band (channel index ``k`` counts the group's channels in file order: sb00 first,
each subband descending in frequency, i.e. the concatenation of the files):

* persistent narrowband lines, 1-3 channels wide, present in most integrations;
* intermittent lines that switch on and off (a random telegraph in time);
* broadband bursts of 1-3 integrations over a contiguous part of the band.

Each event has a peak amplitude ``amp_sigma`` (log-uniform from a few to a few
hundred times the per-visibility noise ``sigma``), falls off with baseline length
as ``1 / sqrt(1 + |b| / baseline_scale_m)`` (terrestrial RFI decorrelates less on
short baselines), and has a random phase per baseline that rotates slowly from
one integration to the next (faster on longer baselines). XX and YY see the same
emitter with the same phase and a random amplitude ratio. Autocorrelations get
none. The RFI is added to the sky visibilities before noise and gains.

The truth goes beside the files as ``<start>_rfi.npz`` (see :func:`write_rfi_truth`
and :func:`load_rfi_truth`) and the model parameters into the truth JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class RfiLevel:
    """Parameters of one ``--rfi`` level."""

    name: str
    """Level name."""
    target_fraction: float
    """Fraction of the (time, channel) cells, hence of the cross-correlation samples, touched."""
    amp_min_sigma: float = 3.0
    """Smallest event peak amplitude, in units of the per-visibility noise."""
    amp_max_sigma: float = 300.0
    """Largest event peak amplitude, in units of the per-visibility noise."""
    baseline_scale_m: float = 100.0
    """Amplitude falls as 1 / sqrt(1 + |b| / baseline_scale_m)."""
    shares: tuple[float, float, float] = (0.35, 0.15, 0.50)
    """Shares of the target taken by persistent lines, intermittent lines and bursts."""


RFI_LEVELS = {
    "light": RfiLevel("light", 0.02),
    "heavy": RfiLevel("heavy", 0.10),
}
"""The levels of ``--rfi`` other than ``none``."""


@dataclass
class RfiEvent:
    """One interference event over the whole band of a group."""

    kind: str
    """'persistent', 'intermittent' or 'burst'."""
    chan0: int
    """First channel (group channel index, file order)."""
    chan_profile: np.ndarray
    """Relative amplitude per channel, shape (n_chan,)."""
    time_profile: np.ndarray
    """Relative amplitude per integration (0 = off), shape (n_time,)."""
    amp_sigma: float
    """Peak amplitude on a zero-length baseline, in units of sigma."""
    pol: np.ndarray
    """Relative amplitude in XX and YY, shape (2,)."""
    phase0: np.ndarray
    """Phase per baseline at the first integration (rad), shape (n_bl,)."""
    rate: np.ndarray
    """Phase change per integration per baseline (rad), shape (n_bl,)."""

    def to_dict(self, freqs_hz: np.ndarray) -> dict:
        """JSON-ready summary (channels, frequencies, integrations on, amplitudes)."""
        f = freqs_hz[self.chan0:self.chan0 + self.chan_profile.size]
        return {"kind": self.kind, "chan_start": int(self.chan0), "n_chan": int(self.chan_profile.size),
                "freq_min_hz": float(f.min()), "freq_max_hz": float(f.max()),
                "integrations": [int(t) for t in np.flatnonzero(self.time_profile)],
                "amp_sigma": float(self.amp_sigma), "pol_factors": [float(p) for p in self.pol]}


@dataclass
class RfiModel:
    """All events of one group and what is needed to evaluate them per subband."""

    level: RfiLevel
    """The level drawn."""
    events: list[RfiEvent]
    """The events."""
    sigma_jy: float
    """Per-visibility noise (real or imaginary part) the amplitudes refer to (Jy)."""
    taper: np.ndarray
    """Baseline amplitude factor, 0 on autocorrelations, shape (n_bl,)."""
    n_time: int
    """Integrations."""
    n_chan: int
    """Channels of the whole band."""
    masks: dict[int, np.ndarray] = field(default_factory=dict)
    """Truth mask per written subband, (time, baseline, channel, pol)."""
    amps: dict[int, np.ndarray] = field(default_factory=dict)
    """Injected amplitude (Jy) per written subband, at the True samples of its mask (C order)."""

    def occupancy(self) -> float:
        """Fraction of (time, channel) cells touched by at least one event."""
        return float(occupancy_grid(self.events, self.n_time, self.n_chan).mean())

    def inject(self, vis: np.ndarray, subband: int, chan0: int) -> None:
        """Add the RFI of channels ``chan0..`` to ``vis`` (time, baseline, channel, pol) in place; keep the truth."""
        rfi, mask = rfi_block(self, chan0, vis.shape[2])
        vis += rfi
        self.masks[subband] = mask
        self.amps[subband] = np.abs(rfi[mask]).astype(np.float32)

    def to_dict(self, freqs_hz: np.ndarray, mask_file: str) -> dict:
        """The model as recorded in the truth JSON."""
        lv = self.level
        return {"level": lv.name, "mask_file": mask_file, "target_fraction": lv.target_fraction,
                "fraction": self.occupancy(), "amp_range_sigma": [lv.amp_min_sigma, lv.amp_max_sigma],
                "baseline_scale_m": lv.baseline_scale_m, "sigma_jy": self.sigma_jy,
                "events": [e.to_dict(freqs_hz) for e in self.events]}


def baseline_taper(bl_len_m: np.ndarray, scale_m: float, autos: np.ndarray) -> np.ndarray:
    """Amplitude factor ``1 / sqrt(1 + |b| / scale_m)`` per baseline, 0 on autocorrelations."""
    t = 1.0 / np.sqrt(1.0 + np.asarray(bl_len_m, dtype=float) / scale_m)
    return np.where(autos, 0.0, t)


def occupancy_grid(events: list[RfiEvent], n_time: int, n_chan: int) -> np.ndarray:
    """Boolean (time, channel) grid of the cells touched by ``events``."""
    grid = np.zeros((n_time, n_chan), dtype=bool)
    for e in events:
        grid[np.ix_(e.time_profile > 0, np.arange(e.chan0, e.chan0 + e.chan_profile.size))] = True
    return grid


def telegraph(n_time: int, rng: np.random.Generator, on: tuple[int, int] = (2, 6),
              off: tuple[int, int] = (2, 8)) -> np.ndarray:
    """Random on/off sequence (bool, shape (n_time,)) with on and off runs drawn from the given ranges."""
    out = np.zeros(n_time, dtype=bool)
    state = bool(rng.integers(2))
    t = 0
    while t < n_time:
        lo, hi = on if state else off
        n = int(rng.integers(lo, hi + 1))
        out[t:t + n] = state
        t += n
        state = not state
    if not out.any():
        out[rng.integers(n_time)] = True
    return out


def _event(kind: str, chan0: int, chan_profile: np.ndarray, on: np.ndarray, lv: RfiLevel, bl_len: np.ndarray,
           rng: np.random.Generator) -> RfiEvent:
    n_time, n_bl = on.size, bl_len.size
    time_profile = np.where(on, rng.uniform(0.6, 1.0, n_time), 0.0)
    amp = float(np.exp(rng.uniform(np.log(lv.amp_min_sigma), np.log(lv.amp_max_sigma))))
    pol = np.array([1.0, rng.uniform(0.3, 1.0)])[rng.permutation(2)]
    phase0 = rng.uniform(0, 2 * np.pi, n_bl)
    rate = rng.uniform(-1, 1, n_bl) * np.pi * bl_len / max(float(bl_len.max()), 1.0)
    return RfiEvent(kind, int(chan0), chan_profile, time_profile, amp, pol, phase0, rate)


def draw_rfi(level: str, n_time: int, n_chan: int, bl_len_m: np.ndarray, autos: np.ndarray, sigma_jy: float,
             rng: np.random.Generator) -> RfiModel:
    """Draw the RFI events of one group.

    Parameters
    ----------
    level
        'light' or 'heavy' (see :data:`RFI_LEVELS`).
    n_time, n_chan
        Integrations and channels of the whole band.
    bl_len_m
        Baseline lengths (m) in file order, shape (n_bl,).
    autos
        True for autocorrelations, shape (n_bl,).
    sigma_jy
        Per-visibility noise the amplitudes are scaled to (Jy).
    rng
        Random generator (drawn from the simulation seed and group index).

    Returns
    -------
    RfiModel
        Events until the touched fraction of (time, channel) cells reaches the level's target.
    """
    lv = RFI_LEVELS[level]
    bl_len = np.asarray(bl_len_m, dtype=float)
    target = lv.target_fraction * n_time * n_chan
    events: list[RfiEvent] = []
    grid = np.zeros((n_time, n_chan), dtype=bool)
    goals = np.cumsum(lv.shares) / np.sum(lv.shares) * target
    for kind, goal in zip(("persistent", "intermittent", "burst"), goals):
        for _ in range(10_000):
            if grid.sum() >= goal:
                break
            if kind == "burst":
                nt = int(rng.integers(1, min(3, n_time) + 1))
                t0 = int(rng.integers(0, n_time - nt + 1))
                on = np.zeros(n_time, dtype=bool)
                on[t0:t0 + nt] = True
                want = int(round(rng.uniform(0.03, 0.25) * n_chan))
                nc = int(np.clip(min(want, np.ceil((goal - grid.sum()) / nt)), 2, n_chan))
                c0 = int(rng.integers(0, n_chan - nc + 1))
                prof = 0.4 + 0.6 * np.sin(np.pi * (np.arange(nc) + 0.5) / nc)
            else:
                nc = int(rng.integers(1, min(3, n_chan) + 1))
                c0 = int(rng.integers(0, n_chan - nc + 1))
                prof = np.ones(nc)
                prof[np.arange(nc) != nc // 2] = rng.uniform(0.3, 1.0, nc - 1)
                on = rng.uniform(size=n_time) < 0.9 if kind == "persistent" else telegraph(n_time, rng)
                if kind == "persistent" and on.sum() < max(1, int(0.75 * n_time)):
                    on[:] = True
            ev = _event(kind, c0, prof, on, lv, bl_len, rng)
            events.append(ev)
            grid |= occupancy_grid([ev], n_time, n_chan)
    return RfiModel(lv, events, float(sigma_jy), baseline_taper(bl_len, lv.baseline_scale_m, autos), n_time, n_chan)


def rfi_block(model: RfiModel, chan0: int, n_chan: int) -> tuple[np.ndarray, np.ndarray]:
    """RFI visibilities and truth mask of channels ``chan0 .. chan0 + n_chan`` (one subband).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        complex64 and bool arrays of shape (time, baseline, channel, 2).
    """
    n_bl = model.taper.size
    rfi = np.zeros((model.n_time, n_bl, n_chan, 2), dtype=np.complex64)
    mask = np.zeros(rfi.shape, dtype=bool)
    cross = model.taper > 0
    t_idx = np.arange(model.n_time)
    for e in model.events:
        lo, hi = max(chan0, e.chan0), min(chan0 + n_chan, e.chan0 + e.chan_profile.size)
        if lo >= hi:
            continue
        ts = t_idx[e.time_profile > 0]
        amp_bl = (e.amp_sigma * model.sigma_jy) * model.taper  # (n_bl,)
        phase = np.exp(1j * (e.phase0[None, :] + e.rate[None, :] * ts[:, None]))  # (nt, n_bl)
        tb = (e.time_profile[ts, None] * amp_bl[None, :] * phase)[:, :, None, None]
        cp = e.chan_profile[lo - e.chan0:hi - e.chan0][None, None, :, None] * e.pol[None, None, None, :]
        sl = (ts, slice(None), slice(lo - chan0, hi - chan0), slice(None))
        rfi[sl] += (tb * cp).astype(np.complex64)
        mask[ts[:, None], np.flatnonzero(cross)[None, :], lo - chan0:hi - chan0] = True
    return rfi, mask


def make_injector(level: str, seed: int, group: int, n_time: int, n_chan: int, bl_itrf_m: np.ndarray,
                  autos: np.ndarray, sigma_jy: float) -> RfiModel | None:
    """The group's :class:`RfiModel` (None for ``level='none'``), from its own generator.

    The generator is seeded with ``(seed, group)`` apart from the simulation's main
    stream, so turning RFI on does not change the sky, gains or noise.
    """
    if level == "none":
        return None
    if level not in RFI_LEVELS:
        raise ValueError(f"unknown --rfi level {level!r}: use none, light or heavy")
    rng = np.random.default_rng([int(seed), 0x5F1, int(group)])
    return draw_rfi(level, n_time, n_chan, np.linalg.norm(bl_itrf_m, axis=1), autos, sigma_jy, rng)


def write_rfi_truth(path: str | Path, model: RfiModel, ant_1: np.ndarray, ant_2: np.ndarray,
                    freqs_hz: dict[int, np.ndarray], times_mjd: np.ndarray) -> Path:
    """Write ``<start>_rfi.npz``.

    Keys: ``mask_sbNN`` (bool, (time, baseline, channel, pol) in the file's own
    baseline and channel order), ``amp_sbNN`` (float32 injected amplitude in Jy at
    the True samples of the mask, C order; :meth:`RfiTruth.amplitude` expands it),
    ``freqs_sbNN`` (Hz, file order), ``ant_1``/``ant_2`` (antenna numbers of one
    integration's baselines), ``times_mjd``, ``sigma_jy``, ``subbands``.
    """
    path = Path(path)
    arrays = {"ant_1": np.asarray(ant_1), "ant_2": np.asarray(ant_2), "times_mjd": np.asarray(times_mjd),
              "sigma_jy": np.float64(model.sigma_jy), "subbands": np.array(sorted(model.masks), dtype=int)}
    for sb in sorted(model.masks):
        arrays[f"mask_sb{sb:02d}"] = model.masks[sb]
        arrays[f"amp_sb{sb:02d}"] = model.amps[sb]
        arrays[f"freqs_sb{sb:02d}"] = np.asarray(freqs_hz[sb])
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


@dataclass
class RfiTruth:
    """A ``<start>_rfi.npz`` file, read lazily."""

    path: Path
    """The file."""
    subbands: list[int]
    """Subbands with a mask."""
    sigma_jy: float
    """Per-visibility noise the model was scaled to (Jy)."""
    ant_1: np.ndarray
    """First antenna number of each baseline (file order)."""
    ant_2: np.ndarray
    """Second antenna number of each baseline (file order)."""
    times_mjd: np.ndarray
    """Integration centres (MJD)."""
    _npz: object = None

    def mask(self, subband: int) -> np.ndarray:
        """Truth mask (time, baseline, channel, pol) of one subband."""
        return self._npz[f"mask_sb{subband:02d}"]

    def freqs(self, subband: int) -> np.ndarray:
        """Channel frequencies (Hz) of one subband, file order."""
        return self._npz[f"freqs_sb{subband:02d}"]

    def amplitude(self, subband: int) -> np.ndarray:
        """Injected amplitude (Jy) of one subband as a dense float32 array shaped like its mask."""
        m = self.mask(subband)
        out = np.zeros(m.shape, dtype=np.float32)
        out[m] = self._npz[f"amp_sb{subband:02d}"]
        return out


def load_rfi_truth(path: str | Path) -> RfiTruth:
    """Open a ``<start>_rfi.npz`` written by :func:`write_rfi_truth`."""
    z = np.load(Path(path))
    return RfiTruth(Path(path), [int(s) for s in z["subbands"]], float(z["sigma_jy"]), z["ant_1"], z["ant_2"],
                    z["times_mjd"], z)
