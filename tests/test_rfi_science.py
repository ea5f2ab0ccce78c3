"""Science with RFI (issue 13): on a `--rfi heavy` calibrator group, flagging then calibrating recovers the
injected gains and the calibrator's flux as the RFI-free tests do; the same group without RFI flagging is
measurably wrong.

Medium size (32 antennas, 24 integrations x 768 channels: the real time-frequency layout, which the
flagger needs), 3C147 transiting, SEFD 1500 Jy as in the calibration tests, random gains.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from dsa110_contimg.calibration.solution_qa import read_solutions
from dsa110_contimg.calibration.solve import CalibrateOptions, calibrate_ms
from dsa110_contimg.conversion.convert import ConvertOptions, convert_group
from dsa110_contimg.conversion.grouping import discover_groups
from dsa110_contimg.simulate.core import SimulateOptions, simulate
from dsa110_contimg.simulate.instrument import evaluate_gains
from dsa110_contimg.simulate.truth import GroupTruth

from imaging_helpers import fit_point_source, tclean_image

REFANT = 102  # antenna index of the default reference antenna '103'


@pytest.fixture(scope="module")
def heavy_cal(tmp_path_factory, antpos_csv):
    root = tmp_path_factory.mktemp("rfi_science")
    sim = simulate(SimulateOptions(output_dir=root / "in", preset="medium", calibrator="3C147", n_sources=0,
                                   sefd_jy=1500.0, rfi="heavy", antpos_csv=antpos_csv, seed=41, jitter_s=2))
    truth = GroupTruth.from_json(sim.groups[0].truth_path)
    c = truth.sources[0]
    [group] = discover_groups(root / "in")
    ms = convert_group(group, ConvertOptions(output_dir=root / "ms", stage_dir=root / "stage", antpos_csv=antpos_csv,
                                             phase_center_deg=(c["ra_deg"], c["dec_deg"]),
                                             field_name=c["name"])).ms_path
    return {"root": root, "ms": ms, "truth": truth}


def _solve(ms: Path, flag: bool):
    """Optionally RFI-flag ``ms``, then solve B and G on it; returns the solve and the B and G solutions."""
    from dsa110_contimg.flagging import FlagOptions, flag_ms

    if flag:
        res = flag_ms(ms, FlagOptions(plot=False))
        assert res.fraction_rfi > 0.05  # heavy RFI: ~10% of the samples
    sol = calibrate_ms(ms, CalibrateOptions())
    b, g = read_solutions(sol.tables["B"], "B"), read_solutions(sol.tables["G"], "G")
    return sol, b, g


def _errors(ms: Path, truth: GroupTruth, b, g) -> tuple[float, float, float]:
    """99th percentile and largest phase error (deg), and median relative amplitude error, of B x G against the
    injected gains, over every antenna, polarization, channel and integration."""
    from casacore.tables import table

    with table(str(ms), ack=False) as t:
        tm = np.unique(t.getcol("TIME"))
    gt = evaluate_gains(truth.gain_model, b.freqs_hz, tm / 86400.0)
    phase, amp = [], []
    for p in range(2):
        for a in (x - 1 for x in truth.active_antennas):
            bsol = b.values[b.antenna == a][0, :, p]
            bflag = b.flags[b.antenna == a][0, :, p]
            gs, gtimes = g.values[g.antenna == a][:, 0, p], g.time[g.antenna == a]
            sol = gs[np.argmin(np.abs(gtimes[:, None] - tm[None, :]), axis=0)][:, None] * bsol[None, :]
            want = np.conj(gt[a, :, :, p]) * gt[REFANT, :, :, p] / np.abs(gt[REFANT, :, :, p])
            ok = ~bflag & np.isfinite(bsol)
            phase.append(np.degrees(np.abs(np.angle(sol[:, ok] * np.conj(want[:, ok])))).ravel())
            amp.append(np.median(np.abs(np.abs(sol[:, ok]) / np.abs(gt[a, :, :, p][:, ok]) - 1)))
    phase = np.concatenate(phase)
    return float(np.percentile(phase, 99)), float(phase.max()), float(np.median(amp))


def _flux_ratio(ms: Path, sol, truth: GroupTruth, out: Path) -> float:
    """Calibrated calibrator's fitted peak over its apparent (beam-attenuated) flux."""
    from dsa110_contimg.calibration.apply import apply_tables

    apply_tables(ms, "rfi-science", [(k, sol.tables[k]) for k in ("B", "G")])
    c = truth.sources[0]
    image = tclean_image(ms, out, imsize=512, cell_arcsec=12.0, niter=300, threshold="50mJy")
    return fit_point_source(image, c["ra_deg"], c["dec_deg"])["peak"] / c["apparent_flux_jy"]


@pytest.mark.slow  # medium-size simulation, two solves and two images: ~2 min; run with `make test-slow`
def test_flagged_heavy_rfi_calibrates_like_clean_data(heavy_cal, tmp_path):
    truth = heavy_cal["truth"]
    flagged = tmp_path / "flagged.ms"
    raw = tmp_path / "unflagged.ms"
    shutil.copytree(heavy_cal["ms"], flagged)
    shutil.copytree(heavy_cal["ms"], raw)

    sol_f, b_f, g_f = _solve(flagged, flag=True)
    phase_f, worst_f, amp_f = _errors(flagged, truth, b_f, g_f)
    ratio_f = _flux_ratio(flagged, sol_f, truth, tmp_path / "img_flagged")

    sol_r, b_r, g_r = _solve(raw, flag=False)
    phase_r, worst_r, amp_r = _errors(raw, truth, b_r, g_r)
    ratio_r = _flux_ratio(raw, sol_r, truth, tmp_path / "img_unflagged")

    print(f"flagged: phase p99 {phase_f:.2f} max {worst_f:.2f} deg, amp {amp_f:.4f}, flux ratio {ratio_f:.4f}; "
          f"unflagged: phase p99 {phase_r:.2f} max {worst_r:.2f} deg, amp {amp_r:.4f}, flux ratio {ratio_r:.4f}")
    # flagged: the calibration tests' tolerances (1 deg, 1%; calibrator flux within 3%) for 99% of the solution
    # samples; the last 1% carry residual RFI that adds out of phase with the 22 Jy calibrator (it lowers the
    # amplitude, so no amplitude-based flagger sees it; measured 3.4 deg at most), bounded at 5 deg
    assert phase_f < 1.0 and worst_f < 5.0 and amp_f < 0.01
    assert ratio_f == pytest.approx(1.0, abs=0.03)
    # unflagged: measurably wrong: the bandpass phases under the RFI are off by tens of degrees
    assert phase_r > 3 * phase_f and worst_r > 15.0
