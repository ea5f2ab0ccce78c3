"""Average a converted MS in time and/or frequency into a new MS (python-casacore).

Used before solving (CASA averages the data inside each solution interval
anyway, so pre-averaging in time to the gain solution interval gives the
solvers the same input at a fraction of the I/O; ``--fast`` also averages
channels) and by quick imaging (fewer channels).  The averaging is a weighted
mean with flags (weights add up), written with the converter's MS writer.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import ContimgError
from ..ms import mark_corrected, read_ms_info, stamp_pointing
from ..telescope import AntennaTable
from .ms_writer import MSLayout, create_ms


class AveragingNotSupported(ContimgError, ValueError):
    """The MS rows are not a regular time x baseline grid (not written by the converter)."""


def solint_to_integrations(solint: str, int_time_s: float, n_times: int) -> int:
    """Number of integrations per solution interval ('int', 'inf', '60s', '1min', '2.5m')."""
    text = solint.strip().lower()
    if text == "int":
        return 1
    if text == "inf":
        return n_times
    m = re.fullmatch(r"([\d.]+)\s*(s|sec|m|min|h)?", text)
    if not m:
        raise ValueError(f"cannot parse solution interval {solint!r}")
    value = float(m[1]) * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, None: 1}[m[2]]
    return int(min(n_times, max(1, round(value / int_time_s))))


def _chan_sum(x: np.ndarray, chan_bin: int) -> np.ndarray:
    """Sum groups of ``chan_bin`` adjacent channels of a (Nbl, Nchan, Npol) array."""
    if chan_bin == 1:
        return x
    nbl, nchan, npol = x.shape
    return x.reshape(nbl, nchan // chan_bin, chan_bin, npol).sum(axis=2)


def average_ms(src: str | Path, dst: str | Path, time_bin: int, chan_bin: int = 1,
               columns: tuple[str, ...] = ("DATA",), rename: dict[str, str] | None = None) -> Path:
    """Write ``dst``: ``src`` averaged over ``time_bin`` integrations and ``chan_bin`` channels.

    ``rename`` maps a source column to the column it is written to (e.g.
    ``{"CORRECTED_DATA": "DATA"}``); the output's DATA also fills its CORRECTED_DATA.

    Raises
    ------
    AveragingNotSupported
        When the rows are not a regular (time, baseline) grid.
    """
    from casacore.tables import table

    src, dst = str(src), Path(dst)
    info = read_ms_info(src)
    dec, lon = info.pointing()
    with table(src, ack=False) as t:
        times = t.getcol("TIME")
        a1, a2 = t.getcol("ANTENNA1"), t.getcol("ANTENNA2")
        utimes = np.unique(times)
        nt = utimes.size
        nbl = t.nrows() // nt
        if nbl * nt != t.nrows() or not (np.all(a1.reshape(nt, nbl) == a1[:nbl]) and
                                          np.all(times.reshape(nt, nbl) == utimes[:, None])):
            raise AveragingNotSupported(f"{src}: rows are not a regular time x baseline grid")
        field_id = t.getcol("FIELD_ID").reshape(nt, nbl)[:, 0]
    interval, npol, freqs, width = info.integration_s, info.n_pols, info.freqs_hz, info.channel_width_hz
    with table(f"{src}/ANTENNA", ack=False) as t:
        ants = AntennaTable(names=tuple(t.getcol("NAME")), numbers=np.arange(t.nrows()),
                            stations=tuple(t.getcol("STATION")), ecef=t.getcol("POSITION"), source=src)
    with table(f"{src}/POLARIZATION", ack=False) as t:
        corr = list(t.getcell("CORR_TYPE", 0))
    with table(f"{src}/FIELD", ack=False) as t:
        ftimes = t.getcol("TIME")
    with table(f"{src}/OBSERVATION", ack=False) as t:
        trange = tuple(t.getcell("TIME_RANGE", 0))
        tel_pos = t.getcell("TELESCOPE_LOCATION", 0) if "TELESCOPE_LOCATION" in t.colnames() else ants.ecef.mean(0)
    bins_check = [field_id[i:i + time_bin] for i in range(0, nt, time_bin)]
    if any(np.unique(b).size > 1 for b in bins_check):
        raise AveragingNotSupported(f"{src}: the phase centre changes inside a time bin (one field per integration)")
    nchan = freqs.size - freqs.size % chan_bin
    out_freqs = freqs[:nchan].reshape(-1, chan_bin).mean(axis=1)
    bins = [list(range(i, min(i + time_bin, nt))) for i in range(0, nt, time_bin)]
    layout = MSLayout(antennas=ants, telescope_name=info.telescope, array_position=np.asarray(tel_pos),
                      freqs_hz=out_freqs, channel_width_hz=width * chan_bin, corr_types=corr,
                      field_names=list(info.field_names), field_dirs_rad=info.field_dirs_rad, field_times_s=ftimes,
                      time_range_s=trange,
                      history=f"averaged from {Path(src).name}: {time_bin} integrations x {chan_bin} channels")
    ms = create_ms(dst, len(bins) * nbl, layout)
    try:
        with table(src, ack=False) as t:
            for ib, b in enumerate(bins):
                r0, n, k = b[0] * nbl, len(b) * nbl, len(b)
                o0 = ib * nbl
                flags = t.getcol("FLAG", r0, n).reshape(k, nbl, -1, npol)[:, :, :nchan]
                weight = t.getcol("WEIGHT", r0, n).reshape(k, nbl, 1, npol)
                w = np.where(flags, np.float32(0), weight.astype(np.float32))
                wsum = _chan_sum(w.sum(axis=0), chan_bin)
                for col in columns:
                    v = t.getcol(col, r0, n).reshape(k, nbl, -1, npol)[:, :, :nchan]
                    num = _chan_sum(np.einsum("tbcp,tbcp->bcp", v, w), chan_bin)
                    mean = np.divide(num, wsum, out=np.zeros_like(num), where=wsum > 0).astype(np.complex64)
                    out_col = (rename or {}).get(col, col)
                    ms.putcol(out_col, mean, o0, nbl)
                    if out_col == "DATA":
                        ms.putcol("CORRECTED_DATA", mean, o0, nbl)
                fl = wsum <= 0
                ms.putcol("FLAG", fl, o0, nbl)
                row_w = (wsum.sum(axis=1) / max(1, out_freqs.size)).astype(np.float32)
                ms.putcol("WEIGHT", row_w, o0, nbl)
                ms.putcol("SIGMA", np.where(row_w > 0, 1 / np.sqrt(np.maximum(row_w, 1e-30)), 0).astype(np.float32),
                          o0, nbl)
                ms.putcol("FLAG_ROW", fl.all(axis=(1, 2)), o0, nbl)
                uvw = t.getcol("UVW", r0, n).reshape(k, nbl, 3).mean(axis=0)
                tc = float(utimes[b].mean())
                ms.putcol("UVW", uvw, o0, nbl)
                for name, val in (("TIME", tc), ("TIME_CENTROID", tc), ("INTERVAL", interval * k),
                                  ("EXPOSURE", interval * k)):
                    ms.putcol(name, np.full(nbl, val), o0, nbl)
                for name, val in (("ANTENNA1", a1[:nbl]), ("ANTENNA2", a2[:nbl]),
                                  ("FIELD_ID", np.full(nbl, field_id[b[0]])), ("SCAN_NUMBER", np.ones(nbl)),
                                  ("STATE_ID", np.full(nbl, -1)), ("FEED1", np.zeros(nbl)), ("FEED2", np.zeros(nbl)),
                                  ("DATA_DESC_ID", np.zeros(nbl)), ("ARRAY_ID", np.zeros(nbl)),
                                  ("OBSERVATION_ID", np.zeros(nbl)), ("PROCESSOR_ID", np.zeros(nbl))):
                    ms.putcol(name, np.asarray(val, dtype=np.int32), o0, nbl)
        stamp_pointing(ms, dec, lon)
        mark_corrected(ms, False)  # its CORRECTED_DATA is a copy of its DATA
    finally:
        ms.close()
    return dst
