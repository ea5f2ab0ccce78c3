"""Quality gates on real images (issue 16): a small calibrated group passes; the same group with antenna phase
errors (rms over thermal: warn), with a 30% amplitude error (flux scale: fail), or with a wrong restoring beam in its
FITS (beam size: fail) trips the gate meant to catch it."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from dsa110_contimg.qa.gates import FAIL, PASS


@pytest.fixture(scope="module")
def field(tmp_path_factory, antpos_csv):
    """A small group of 8 compact sources (0.3-1.5 Jy), unit gains, CORRECTED_DATA = DATA marked calibrated, and a
    master catalog holding the injected sources."""
    from api_helpers import build_truth_catalog
    from dsa110_contimg.simulate.sky import SkySource
    from imaging_helpers import calibrated_small_group, meridian_centre

    root = tmp_path_factory.mktemp("gates")
    start, dec0 = "2025-10-02T10:00:00", 54.57
    ra0 = meridian_centre(start, dec0)
    rng = np.random.default_rng(12)
    r, pa = rng.uniform(0.15, 0.7, 8), rng.uniform(0, 2 * np.pi, 8)
    srcs = [SkySource(ra0 + r[i] * math.sin(pa[i]) / math.cos(math.radians(dec0)), dec0 + r[i] * math.cos(pa[i]),
                      float(f), -0.7, f"s{i}") for i, f in enumerate(np.geomspace(0.3, 1.5, 8))]
    ms, sim = calibrated_small_group(root, antpos_csv, srcs, start, dec0, seed=4, sefd_jy=3000.0)
    catalog = build_truth_catalog(sim.groups, root / "master.sqlite3", root / "nvss.csv")
    return {"ms": ms, "catalog": catalog, "root": root}


def _assess(ms, catalog, out, edit_fits=None):
    from astropy.io import fits

    from dsa110_contimg.imaging.image import ImageOptions, image_ms
    from dsa110_contimg.pipeline.image_stage import run_qa

    opts = ImageOptions(backend="wsclean", quick=True, out_dir=out)
    res = image_ms(ms, opts)
    if edit_fits is not None:
        for path in (res.images.image, res.images.pbcor):
            with fits.open(path, mode="update") as h:
                edit_fits(h[0].header)
    return run_qa(ms, res, opts, catalog)[1]


def _corrupt(src, dst, factor_fn):
    """Copy the MS and multiply CORRECTED_DATA by ``factor_fn(a1, a2)`` (rows, broadcast over channels, pols)."""
    from casacore.tables import table

    shutil.copytree(src, dst)
    with table(str(dst), readonly=False, ack=False) as t:
        f = factor_fn(t.getcol("ANTENNA1"), t.getcol("ANTENNA2"))
        t.putcol("CORRECTED_DATA", t.getcol("CORRECTED_DATA") * f[:, None, None])
    return dst


def test_calibrated_image_passes(field, tmp_path):
    q = _assess(field["ms"], field["catalog"], tmp_path / "ok")
    print(q.reasons(), q.gates_dict())
    assert q.gate("flux_scale").state == PASS and abs(q.flux_scale.ratio - 1) < 0.1 and q.flux_scale.n_refs >= 4
    assert q.gate("astrometry").state == PASS and q.gate("beam_size").state != FAIL
    assert q.gate("rms_thermal").state != FAIL and q.state != FAIL


def test_phase_errors_trip_the_noise_gates(field, tmp_path):
    rng = np.random.default_rng(2)
    ph = np.exp(1j * np.radians(rng.normal(0, 70, 200)))
    ms = _corrupt(field["ms"], tmp_path / "phase.ms", lambda a1, a2: ph[a1] * np.conj(ph[a2]))
    q = _assess(ms, field["catalog"], tmp_path / "phase")
    print(q.reasons())
    # measured: rms 7.8 x thermal (calibrated: 0.78) -> warn; flux scale n/a (the smeared sources are not compact)
    assert q.state != PASS and q.gate("rms_thermal").state != PASS
    assert q.rms_over_thermal > 5 * _assess(field["ms"], None, tmp_path / "ok").rms_over_thermal


def test_amplitude_error_trips_the_flux_scale_gate(field, tmp_path):
    ms = _corrupt(field["ms"], tmp_path / "amp.ms", lambda a1, a2: np.full(a1.size, 0.7))
    q = _assess(ms, field["catalog"], tmp_path / "amp")
    print(q.reasons())
    assert q.gate("flux_scale").state == FAIL and abs(q.flux_scale.ratio - 0.7) < 0.05
    assert q.gate("rms_thermal").state != FAIL  # the noise alone does not see it


def test_wrong_restoring_beam_trips_the_beam_gate(field, tmp_path):
    def widen(h):
        h["BMAJ"], h["BMIN"] = 2.5 * h["BMAJ"], 2.5 * h["BMIN"]

    q = _assess(field["ms"], field["catalog"], tmp_path / "beam", edit_fits=widen)
    print(q.reasons())
    assert q.gate("beam_size").state == FAIL and q.state == FAIL
