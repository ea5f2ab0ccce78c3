"""Chunked access to a Measurement Set's main table as (time, baseline, channel, pol) blocks.

Rows are mapped once to (integration, baseline) from TIME, ANTENNA1 and
ANTENNA2, whatever their order; a block of baselines is then read and written
as the runs of consecutive rows it covers (24 runs per block for the
converter's time-major layout), so memory stays at one block of data plus the
flags of the whole MS (bool, ~0.34 GB for a full group).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInputError


@dataclass
class MsLayout:
    """Where each (integration, baseline) of an MS lives."""

    path: Path
    """The Measurement Set."""
    n_time: int
    """Distinct integrations (TIME values)."""
    n_chan: int
    """Channels of the (single) spectral window."""
    n_pol: int
    """Correlations."""
    rows: np.ndarray
    """Row number per (integration, baseline), -1 where absent, shape (n_time, n_bl)."""
    ant1: np.ndarray
    """ANTENNA1 of each baseline, shape (n_bl,)."""
    ant2: np.ndarray
    """ANTENNA2 of each baseline, shape (n_bl,)."""
    bl_len_m: np.ndarray
    """Baseline length |UVW| (m, median over integrations), shape (n_bl,)."""
    times_s: np.ndarray
    """Integration centres (MJD seconds), shape (n_time,)."""
    freqs_hz: np.ndarray
    """Channel frequencies in MS order, shape (n_chan,)."""
    antenna_names: list[str]
    """ANTENNA::NAME, indexed by antenna id."""

    @property
    def n_bl(self) -> int:
        """Baselines (including autocorrelations)."""
        return int(self.ant1.size)

    @property
    def autos(self) -> np.ndarray:
        """True for autocorrelations, shape (n_bl,)."""
        return self.ant1 == self.ant2


def read_layout(ms_path: str | Path) -> MsLayout:
    """Map the rows of ``ms_path`` onto an (integration, baseline) grid (single spectral window)."""
    from casacore.tables import table

    ms_path = Path(ms_path)
    with table(str(ms_path), ack=False) as t:
        time_col = t.getcol("TIME")
        a1 = t.getcol("ANTENNA1")
        a2 = t.getcol("ANTENNA2")
        uvw = t.getcol("UVW")
        ddid = t.getcol("DATA_DESC_ID")
        shape = t.getcell("FLAG", 0).shape if t.nrows() else (0, 0)
    if ddid.size and np.any(ddid != ddid[0]):
        raise BadInputError(f"{ms_path}: more than one DATA_DESC_ID; the flagger expects one spectral window",
                            [ms_path])
    with table(str(ms_path / "SPECTRAL_WINDOW"), ack=False) as t:
        freqs = np.asarray(t.getcell("CHAN_FREQ", int(ddid[0]) if ddid.size else 0), dtype=float)
    with table(str(ms_path / "ANTENNA"), ack=False) as t:
        names = list(t.getcol("NAME"))
    times, tidx = np.unique(np.round(time_col, 3), return_inverse=True)
    key = np.minimum(a1, a2).astype(np.int64) * 100_000 + np.maximum(a1, a2)
    _, first, bidx = np.unique(key, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(first.size)  # baselines numbered in order of first appearance
    bidx = rank[bidx]
    rows = np.full((times.size, first.size), -1, dtype=np.int64)
    rows[tidx, bidx] = np.arange(time_col.size)
    order = np.argsort(rank)
    ant1 = np.minimum(a1, a2)[first[order]]
    ant2 = np.maximum(a1, a2)[first[order]]
    length = np.zeros(first.size)
    np.maximum.at(length, bidx, np.linalg.norm(uvw, axis=1))
    return MsLayout(ms_path, int(times.size), int(shape[0]), int(shape[1]), rows, ant1.astype(int), ant2.astype(int),
                    length, times, freqs, names)


def baseline_blocks(n_bl: int, block: int) -> list[np.ndarray]:
    """Baseline indices in consecutive blocks of at most ``block``."""
    return [np.arange(b0, min(n_bl, b0 + block)) for b0 in range(0, n_bl, max(1, block))]


def _runs(rows: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """(start row, n rows, positions in ``rows``) of the consecutive runs of the valid rows, sorted."""
    flat = rows.ravel()
    pos = np.flatnonzero(flat >= 0)
    if pos.size == 0:
        return []
    pos = pos[np.argsort(flat[pos], kind="stable")]
    r = flat[pos]
    breaks = np.flatnonzero(np.diff(r) != 1) + 1
    return [(int(r[s]), int(len(p)), p) for s, p in zip(np.r_[0, breaks], np.split(pos, breaks))]


def read_block(tab, layout: MsLayout, bls: np.ndarray, column: str, fill=0) -> np.ndarray:
    """Column ``column`` of baselines ``bls`` as (n_time, len(bls), n_chan, n_pol); absent cells ``fill``."""
    sub = layout.rows[:, bls]
    out = None
    for start, n, pos in _runs(sub):
        chunk = tab.getcol(column, startrow=start, nrow=n)
        if out is None:
            out = np.full((sub.size,) + chunk.shape[1:], fill, dtype=chunk.dtype)
        out[pos] = chunk
    if out is None:
        dtype = bool if column == "FLAG" else np.complex64
        out = np.full((sub.size, layout.n_chan, layout.n_pol), fill, dtype=dtype)
    return out.reshape(sub.shape + out.shape[1:])


def write_block(tab, layout: MsLayout, bls: np.ndarray, column: str, values: np.ndarray) -> None:
    """Write (n_time, len(bls), n_chan, n_pol) ``values`` into ``column`` for baselines ``bls``."""
    sub = layout.rows[:, bls]
    flat = values.reshape((sub.size,) + values.shape[2:])
    for start, n, pos in _runs(sub):
        tab.putcol(column, np.ascontiguousarray(flat[pos]), startrow=start, nrow=n)


def read_flags(ms_path: str | Path, layout: MsLayout, block: int = 512) -> np.ndarray:
    """FLAG (OR FLAG_ROW) of the whole MS as (n_time, n_bl, n_chan, n_pol); absent cells flagged."""
    from casacore.tables import table

    flags = np.ones((layout.n_time, layout.n_bl, layout.n_chan, layout.n_pol), dtype=bool)
    with table(str(ms_path), ack=False) as t:
        for bls in baseline_blocks(layout.n_bl, block):
            flags[:, bls] = read_block(t, layout, bls, "FLAG", fill=True)
            rowflag = read_row_column(t, layout, bls, "FLAG_ROW", fill=True)
            flags[:, bls] |= rowflag[:, :, None, None]
    return flags


def read_row_column(tab, layout: MsLayout, bls: np.ndarray, column: str, fill=0) -> np.ndarray:
    """A scalar column of baselines ``bls`` as (n_time, len(bls))."""
    sub = layout.rows[:, bls]
    out = None
    for start, n, pos in _runs(sub):
        chunk = tab.getcol(column, startrow=start, nrow=n)
        if out is None:
            out = np.full(sub.size, fill, dtype=chunk.dtype)
        out[pos] = chunk
    if out is None:
        out = np.full(sub.size, fill)
    return out.reshape(sub.shape)


def write_flags(ms_path: str | Path, layout: MsLayout, flags: np.ndarray, block: int = 512) -> None:
    """Write FLAG (and FLAG_ROW = all channels and correlations flagged) from a full flag array."""
    from casacore.tables import table

    with table(str(ms_path), readonly=False, ack=False) as t:
        for bls in baseline_blocks(layout.n_bl, block):
            f = flags[:, bls]
            write_block(t, layout, bls, "FLAG", f)
            sub = layout.rows[:, bls]
            row_flag = f.all(axis=(2, 3)).ravel()
            for start, n, pos in _runs(sub):
                t.putcol("FLAG_ROW", row_flag[pos], startrow=start, nrow=n)
