"""The flagging stage: :func:`flag_ms` (:class:`FlagOptions` in, :class:`FlagResult` out).

Order of work on one MS:

1. base flags: FLAG/FLAG_ROW as found, plus autocorrelations, exact zeros and
   (optionally) short baselines;
2. RFI detection: AOFlagger with the Lua strategy per baseline (default; the
   block pass runs in ``workers`` processes), or CASA flagdata ``tfcrop`` +
   ``rflag`` + ``extend``;
3. a robust MAD clip over time and frequency per baseline, polarization and subband;
4. extension: both polarizations; (time, channel) cells, integrations and
   channels flagged on more than a fraction of the baselines; antennas that are
   dead, wildly off or almost all flagged;
5. FLAG written in chunks of baselines, the QA PNG, the report.

With AOFlagger nothing is written until the flags are complete, so a crash
leaves FLAG as it was. The CASA path writes the base flags first (so flagdata
keeps them); a crash there leaves those, nothing else.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import BadInputError
from . import kernels as K
from .blocks import BlockTotals, process_blocks, read_found, whole_baselines
from .msio import MsLayout, baseline_blocks, read_layout, write_flags
from .options import FlagOptions, FlagResult

log = logging.getLogger(__name__)

N_SUBBANDS = 16
"""Correlator subbands per group (equal channel blocks of the MS's window)."""


def _aoflagger_pass(ms_path: Path, layout: MsLayout, blocks: list, opts: FlagOptions, flags: np.ndarray,
                    versions: dict) -> BlockTotals:
    from casacore.tables import table

    from . import worker
    from .aoflag import AoflaggerEngine

    engine = AoflaggerEngine(opts.strategy, opts.aoflagger_input)  # fails here, before any worker, if broken
    versions["aoflagger"] = engine.version
    n_work = max(1, min(int(opts.workers), len(blocks)))
    shares = [blocks[i::n_work] for i in range(n_work)]

    def store(bls, f):
        flags[:, bls] = f

    with tempfile.TemporaryDirectory(prefix=".flag_", dir=str(ms_path.parent)) as work:
        handles = [worker.launch(ms_path, shares[i], opts, Path(work), i) for i in range(1, n_work)]
        try:
            with table(str(ms_path), ack=False) as tab:
                totals = process_blocks(tab, layout, shares[0], opts, store, engine)
            for h in handles:
                bls, f, part = worker.collect(h, ms_path)
                if bls.size:
                    flags[:, bls] = f
                totals.merge(part)
        finally:
            worker.stop(handles)
    return totals


def _casa_pass(ms_path: Path, layout: MsLayout, blocks: list, opts: FlagOptions, flags: np.ndarray,
               versions: dict, tm: dict) -> BlockTotals:
    from casacore.tables import table

    from .casa import casa_flag

    t0 = time.perf_counter()
    whole = whole_baselines(layout, opts)
    before = 0
    with table(str(ms_path), ack=False) as tab:
        for bls in blocks:
            found = read_found(tab, layout, bls)
            before += np.count_nonzero(found)
            flags[:, bls] = found | whole[bls][None, :, None, None]
    write_flags(ms_path, layout, flags, opts.block_baselines)  # base flags in, so flagdata keeps them
    tm["base"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    versions.update({k: v for k, v in casa_flag(ms_path, opts).items() if k == "casatasks"})
    tm["casa"] = time.perf_counter() - t0

    def store(bls, f):
        flags[:, bls] = f

    with table(str(ms_path), ack=False) as tab:
        totals = process_blocks(tab, layout, blocks, opts, store, None, casa_base=lambda bls: flags[:, bls])
    totals.counts["before"] = before
    return totals


def flag_ms(ms_path: str | Path, opts: FlagOptions | None = None) -> FlagResult:
    """Flag RFI in one group's MS and report what was flagged.

    Parameters
    ----------
    ms_path
        Measurement Set written by the converter (one spectral window, XX/YY).
    opts
        Options; default :class:`FlagOptions`.

    Returns
    -------
    FlagResult
        Fractions before/after, per subband, antenna, integration and channel, timings, QA PNG.

    Raises
    ------
    BadInputError
        Not a Measurement Set, or all data flagged after flagging (the message gives the fraction).
    ContimgError
        The flagger crashed (the message says how); the MS is kept.
    """
    opts = opts or FlagOptions()
    ms_path = Path(ms_path)
    if not (ms_path / "table.dat").exists():
        raise BadInputError(f"{ms_path}: not a Measurement Set", [ms_path])
    if opts.flagger not in ("aoflagger", "casa"):
        raise ValueError(f"unknown flagger {opts.flagger!r}: use 'aoflagger' or 'casa'")
    t_all = time.perf_counter()
    tm: dict[str, float] = {}
    layout = read_layout(ms_path)
    nt, nbl, nch, npol = layout.n_time, layout.n_bl, layout.n_chan, layout.n_pol
    blocks = baseline_blocks(nbl, opts.block_baselines)
    flags = np.ones((nt, nbl, nch, npol), dtype=bool)  # (integration, baseline) cells absent from the MS stay flagged
    versions: dict[str, str] = {}
    t0 = time.perf_counter()
    if opts.flagger == "aoflagger":
        from .aoflag import default_strategy

        opts = _with_strategy(opts, Path(opts.strategy) if opts.strategy else default_strategy())
        totals = _aoflagger_pass(ms_path, layout, blocks, opts, flags, versions)
        strategy_text = str(opts.strategy)
    else:
        from .casa import casa_commands

        totals = _casa_pass(ms_path, layout, blocks, opts, flags, versions, tm)
        strategy_text = "; ".join(casa_commands(opts))
    tm["pass"] = time.perf_counter() - t0 - tm.get("base", 0.0) - tm.get("casa", 0.0)
    tm.update({f"{k}_sum": v for k, v in totals.timings.items()})

    t0 = time.perf_counter()
    cross = ~layout.autos
    before_ext = np.count_nonzero(flags)
    cells = K.consensus_flags(totals.hit, totals.usable, opts.cell_fraction, opts.time_fraction,
                              opts.channel_fraction)
    if opts.extend_pols:
        cells = K.extend_pols(cells)
    flags |= cells[:, None]
    tb, _ = K.count_tables(flags)
    after_cells = int(tb.sum())
    bad = K.antenna_outliers(totals.level, tb.sum(axis=0) / (nt * nch * npol), layout.ant1, layout.ant2, cross,
                             len(layout.antenna_names), opts.antenna_amp_factor, opts.antenna_max_flagged)
    for a in bad:
        flags[:, (layout.ant1 == a) | (layout.ant2 == a)] = True
    tb, tcp = K.count_tables(flags)
    tm["extend"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    write_flags(ms_path, layout, flags, opts.block_baselines)
    tm["write"] = time.perf_counter() - t0

    res = _result(ms_path, opts, layout, tb, tcp, totals, before_ext, after_cells, bad, strategy_text, versions)
    if opts.plot:
        t0 = time.perf_counter()
        from .qa import plot_flags, save_plot_data

        out_dir = Path(opts.qa_dir) if opts.qa_dir else ms_path.parent
        out_dir.mkdir(parents=True, exist_ok=True)
        autos = np.flatnonzero(layout.autos)
        n_cross = int(cross.sum()) or nbl
        w_counts = tcp - (np.add.reduce(flags[:, autos].view(np.uint8), axis=1, dtype=np.int64)
                          if cross.any() and autos.size else 0)
        waterfall = w_counts.sum(axis=-1) / (n_cross * npol)
        title = (f"{ms_path.name}: {opts.flagger}, {100 * res.fraction_after:.1f}% flagged "
                 f"(base {100 * res.fraction_base:.1f}%)")
        png = out_dir / f"{ms_path.stem}_flags.png"
        if opts.defer_plot:
            png.unlink(missing_ok=True)  # a stale plot of an earlier run must not be served
            save_plot_data(png, waterfall, layout.freqs_hz, layout.times_s, res.per_antenna, title)
            res.qa_png = png
        else:
            res.qa_png = plot_flags(png, waterfall, layout.freqs_hz, layout.times_s, res.per_antenna, title)
        tm["qa"] = time.perf_counter() - t0
    tm["total"] = time.perf_counter() - t_all
    res.timings = tm
    log.info("%s", res.summary())
    n_cross_samples = int(cross.sum()) * nt * nch * npol
    if int(tb[:, cross].sum()) >= n_cross_samples:
        raise BadInputError(f"{ms_path}: all data flagged after RFI flagging "
                            f"(fraction {res.fraction_after:.3f}, base {res.fraction_base:.3f})", [ms_path])
    return res


def _with_strategy(opts: FlagOptions, strategy: Path) -> FlagOptions:
    from dataclasses import replace

    return replace(opts, strategy=strategy)


def _result(ms_path: Path, opts: FlagOptions, layout: MsLayout, tb: np.ndarray, tcp: np.ndarray,
            totals: BlockTotals, before_ext: int, after_cells: int, bad: dict, strategy: str,
            versions: dict) -> FlagResult:
    nt, nbl, nch, npol = layout.n_time, layout.n_bl, layout.n_chan, layout.n_pol
    n_all = nt * nbl * nch * npol
    per_chan = tcp.sum(axis=(0, 2)) / (nt * nbl * npol)
    per_subband: dict[str, float] = {}
    if nch % N_SUBBANDS == 0 and nch >= N_SUBBANDS:
        blocks = per_chan.reshape(N_SUBBANDS, nch // N_SUBBANDS).mean(axis=1)
        ascending = layout.freqs_hz[-1] > layout.freqs_hz[0]
        for i, f in enumerate(blocks):
            per_subband[f"sb{(N_SUBBANDS - 1 - i) if ascending else i:02d}"] = float(f)
        per_subband = dict(sorted(per_subband.items()))
    per_bl = tb.sum(axis=0) / (nt * nch * npol)
    per_ant = {}
    for a, name in enumerate(layout.antenna_names):
        mine = (layout.ant1 == a) | (layout.ant2 == a)
        if mine.any():
            per_ant[name] = float(per_bl[mine].mean())
    c = totals.counts
    after_all = int(tb.sum())
    steps = {k: float(c[k]) / n_all for k in ("flagger", "mad", "pols")}
    steps.update(consensus=float(after_cells - before_ext) / n_all, antennas=float(after_all - after_cells) / n_all)
    return FlagResult(
        ms_path=ms_path, flagger=opts.flagger, strategy=strategy, fraction_before=float(c["before"]) / n_all,
        fraction_base=float(c["base"]) / n_all, fraction_after=after_all / n_all, per_subband=per_subband,
        per_antenna=per_ant, per_integration=[float(x) for x in tb.sum(axis=1) / (nbl * nch * npol)],
        per_channel=[float(x) for x in per_chan], steps=steps,
        flagged_antennas={layout.antenna_names[a]: why for a, why in bad.items()}, versions=versions)
