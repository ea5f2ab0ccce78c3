"""One pass over blocks of baselines: base flags, RFI detection, MAD clip, and the sums the extension needs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import kernels as K
from .msio import MsLayout, read_block, read_row_column
from .options import FlagOptions

COUNT_KEYS = ("before", "base", "flagger", "mad", "pols")
"""Sample counts kept per pass: FLAG as found, base flags, and what each step added."""


@dataclass
class BlockTotals:
    """What a pass over some blocks adds up to (merged across workers)."""

    n_time: int
    """Integrations."""
    n_chan: int
    """Channels."""
    n_pol: int
    """Correlations."""
    n_bl: int
    """Baselines of the MS."""
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    """Sample counts (see :data:`COUNT_KEYS`)."""
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("read", "flagger", "mad"), 0.0))
    """Seconds per step (summed over workers: CPU-like, not wall)."""
    hit: np.ndarray | None = None
    """RFI-flagged usable cross-correlation samples per (time, channel, pol)."""
    usable: np.ndarray | None = None
    """Usable (not base-flagged) cross-correlation samples per (time, channel, pol)."""
    level: np.ndarray | None = None
    """Robust amplitude level per baseline (NaN: no data)."""

    def __post_init__(self):
        shape = (self.n_time, self.n_chan, self.n_pol)
        self.hit = np.zeros(shape, np.int64) if self.hit is None else self.hit
        self.usable = np.zeros(shape, np.int64) if self.usable is None else self.usable
        self.level = np.full(self.n_bl, np.nan) if self.level is None else self.level

    def merge(self, other: "BlockTotals") -> None:
        """Add ``other`` (from a disjoint set of baselines) into this one."""
        for k in self.counts:
            self.counts[k] = int(self.counts[k] + other.counts[k])
        for k in self.timings:
            self.timings[k] += other.timings.get(k, 0.0)
        self.hit += other.hit
        self.usable += other.usable
        done = np.isfinite(other.level)
        self.level[done] = other.level[done]

    def to_arrays(self) -> dict:
        """As arrays for ``np.savez``."""
        return {"shape": np.array([self.n_time, self.n_chan, self.n_pol, self.n_bl]), "hit": self.hit,
                "usable": self.usable, "level": self.level,
                "counts": np.array([self.counts[k] for k in COUNT_KEYS], dtype=np.int64),
                "timings": np.array([self.timings[k] for k in ("read", "flagger", "mad")])}

    @classmethod
    def from_arrays(cls, z) -> "BlockTotals":
        """Inverse of :meth:`to_arrays`."""
        nt, nch, npol, nbl = (int(x) for x in z["shape"])
        out = cls(nt, nch, npol, nbl, hit=z["hit"], usable=z["usable"], level=z["level"])
        out.counts = {k: int(v) for k, v in zip(COUNT_KEYS, z["counts"])}
        out.timings = {k: float(v) for k, v in zip(("read", "flagger", "mad"), z["timings"])}
        return out


def whole_baselines(layout: MsLayout, opts: FlagOptions) -> np.ndarray:
    """Baselines flagged whole by the base flags: autocorrelations and short baselines."""
    cross = ~layout.autos
    return (layout.autos & opts.flag_autocorr) | (cross & (layout.bl_len_m < opts.min_baseline_m))


def read_found(tab, layout: MsLayout, bls: np.ndarray) -> np.ndarray:
    """FLAG OR FLAG_ROW of a block, (time, baseline, channel, pol); absent cells flagged."""
    found = read_block(tab, layout, bls, "FLAG", fill=True)
    found |= read_row_column(tab, layout, bls, "FLAG_ROW", fill=True)[:, :, None, None]
    return found


def process_blocks(tab, layout: MsLayout, blocks: list[np.ndarray], opts: FlagOptions,
                   store: Callable[[np.ndarray, np.ndarray], None], engine=None,
                   casa_base: Callable[[np.ndarray], np.ndarray] | None = None) -> BlockTotals:
    """Flag ``blocks`` of baselines and hand each block's flags to ``store(bls, flags)``.

    Parameters
    ----------
    tab
        The MS main table, open (read-only is enough).
    layout
        Its :class:`~.msio.MsLayout`.
    blocks
        Baseline index arrays.
    opts
        Options (base flags, MAD clip, polarization extension).
    store
        Receives (baselines, flags of shape (time, len(bls), channel, pol)).
    engine
        :class:`~.aoflag.AoflaggerEngine`, or None when CASA has already flagged the MS.
    casa_base
        For the CASA path: ``casa_base(bls)`` gives the base flags written before flagdata ran.

    Returns
    -------
    BlockTotals
        Counts, consensus sums and baseline levels of these blocks.
    """
    tot = BlockTotals(layout.n_time, layout.n_chan, layout.n_pol, layout.n_bl)
    cross = ~layout.autos
    whole = whole_baselines(layout, opts)
    for bls in blocks:
        t0 = time.perf_counter()
        found = read_found(tab, layout, bls)
        data = read_block(tab, layout, bls, "DATA", fill=0)
        if casa_base is None:
            base = found | whole[bls][None, :, None, None]
            tot.counts["before"] += np.count_nonzero(found)
        else:
            base = casa_base(bls)
        if opts.flag_zeros:
            base |= data == 0
        tot.timings["read"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        if engine is not None:
            skip = whole[bls] | base.all(axis=(0, 2, 3))
            new = base | engine.flag_block(data, base, skip)[..., None]
        else:
            new = found | base  # FLAG after flagdata already holds its flags
        tot.counts["flagger"] += np.count_nonzero(new) - np.count_nonzero(base)
        tot.timings["flagger"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        amp = np.abs(data)
        del data
        added, lev = K.mad_clip(amp, new, opts.mad_threshold if opts.mad_clip else np.inf)
        del amp
        tot.counts["mad"] += np.count_nonzero(added)
        new |= added
        tot.level[bls] = K.nan_mean_rows(lev)
        if opts.extend_pols:
            ext = K.extend_pols(new)
            tot.counts["pols"] += np.count_nonzero(ext) - np.count_nonzero(new)
            new = ext
        h, u = K.consensus_counts(new, base, cross[bls])
        tot.hit += h
        tot.usable += u
        tot.counts["base"] += np.count_nonzero(base)
        store(bls, new)
        tot.timings["mad"] += time.perf_counter() - t0
    return tot


def save_block_flags(path: Path, parts: list[tuple[np.ndarray, np.ndarray]], totals: BlockTotals) -> None:
    """Write a worker's flags (bit-packed) and totals to ``path`` (npz)."""
    bls = np.concatenate([b for b, _ in parts]) if parts else np.zeros(0, int)
    flags = np.concatenate([f for _, f in parts], axis=1) if parts else np.zeros((0,), bool)
    np.savez(path, bls=bls, packed=np.packbits(flags.ravel()), fshape=np.array(flags.shape), **totals.to_arrays())


def load_block_flags(path: Path) -> tuple[np.ndarray, np.ndarray, BlockTotals]:
    """Inverse of :func:`save_block_flags`: (baselines, flags (time, bl, chan, pol), totals)."""
    with np.load(path) as z:
        shape = tuple(int(x) for x in z["fshape"])
        flags = np.unpackbits(z["packed"], count=int(np.prod(shape))).astype(bool).reshape(shape)
        return z["bls"], flags, BlockTotals.from_arrays(z)
