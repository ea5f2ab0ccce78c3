"""The realistic simulator's parts against their definitions (issue 16): source counts, the NUFFT
predict against the direct sum, per-antenna pointing beams against the exact voltage product,
time-correlated gain variations, the ionospheric screen's direction dependence, the truth image,
and a small ``--sky realistic`` run whose truth records every effect."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dsa110_contimg.simulate.beams import (ARCMIN, beam_weight_sets, combine_pointing, draw_pointing_errors,
                                           per_antenna_voltages, tangent_basis)
from dsa110_contimg.simulate.effects import gain_variation_factors, random_screen
from dsa110_contimg.simulate.predict import direct_sum, nufft_sum
from dsa110_contimg.simulate.skycounts import (SkyBox, differential_counts, draw_fluxes, expected_number,
                                               realistic_sky)


def _unit(ra_deg, dec_deg):
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def test_source_counts_match_hopkins_fit():
    """~3e5 sources/sr above 1 mJy (Hopkins et al. 2003); drawn fluxes follow dN/dS bin by bin."""
    n_sr = expected_number(1.0, 1e-3)
    assert 1.5e5 < n_sr < 6e5, n_sr
    rng = np.random.default_rng(3)
    s = draw_fluxes(200_000, 1e-3, 1.0, rng)
    assert s.min() >= 1e-3 and s.max() <= 1.0
    edges = np.geomspace(1e-3, 1.0, 13)
    counts, _ = np.histogram(s, edges)
    expect = np.array([expected_number(1.0, a, b) for a, b in zip(edges[:-1], edges[1:])])
    expect *= s.size / expect.sum()
    ok = expect > 20
    pull = (counts[ok] - expect[ok]) / np.sqrt(expect[ok])
    assert np.all(np.abs(pull) < 5), pull
    # Euclidean normalisation rises with S between 1 and 100 mJy (the sub-Euclidean slope of the counts)
    assert differential_counts(0.1) * 0.1 ** 2.5 > differential_counts(0.001) * 0.001 ** 2.5


def test_realistic_sky_number_and_properties():
    box = SkyBox(100.0, 6.0, 52.0, 58.0)
    rng = np.random.default_rng(5)
    sky = realistic_sky(box, rng, min_flux_jy=5e-3, resolved_fraction=0.2)
    n_exp = expected_number(box.area_sr, 5e-3)
    assert abs(len(sky) - n_exp) < 5 * np.sqrt(n_exp)
    flux = np.array([s.flux_jy for s in sky])
    assert flux.min() >= 5e-3 and np.all(np.diff(flux) <= 0)
    alpha = np.array([s.alpha for s in sky])
    assert abs(np.median(alpha) + 0.7) < 0.1 and alpha.min() >= -2 and alpha.max() <= 1
    res = [s for s in sky if s.major_arcsec > 0]
    assert res and all(s.flux_jy >= 0.02 and 0 < s.minor_arcsec <= s.major_arcsec for s in res)
    ra = np.array([s.ra_deg for s in sky])
    dec = np.array([s.dec_deg for s in sky])
    assert box.contains(ra, dec).all()


def test_nufft_predict_matches_direct_sum():
    """The fast predict is pinned to the direct sum (relative error < 1e-6 of the total flux)."""
    rng = np.random.default_rng(7)
    nbl, nsrc, nch = 40, 300, 96
    freqs = 1.311e9 + 244140.625 * np.arange(nch)
    delays = rng.uniform(-2e-6, 2e-6, (nbl, nsrc))
    spec = (freqs / 1.4e9)[None, None, :] ** rng.normal(-0.7, 0.3, (1, nsrc, 1))
    weights = rng.uniform(0.001, 1.0, (2, nsrc, 1)) * spec
    ref = direct_sum(delays, weights, freqs)
    fast = nufft_sum(delays, weights, freqs)
    scale = weights.sum(axis=1).max()
    assert np.abs(fast - ref).max() < 1e-6 * scale
    # with a (small) ionospheric phase the fast path linearises 1/f about the band centre
    iono = rng.normal(0, 0.2, (nbl, nsrc))
    ref_i = direct_sum(delays, weights, freqs, iono=iono)
    fast_i = nufft_sum(delays, weights, freqs, iono=iono)
    assert np.abs(fast_i - ref_i).max() < 1e-2 * scale
    assert np.abs(ref_i - ref).max() > 10 * np.abs(fast_i - ref_i).max()  # the iono term itself is not negligible


def test_pointing_errors_first_order_matches_exact_voltage_product():
    rng = np.random.default_rng(11)
    ra0, dec0 = 120.0, 55.0
    s0 = _unit(ra0, dec0)
    freqs = np.array([1.32e9, 1.4e9, 1.49e9])
    n_ant, nsrc = 6, 50
    r = np.radians(rng.uniform(0.1, 1.5, nsrc))
    pa = rng.uniform(0, 2 * np.pi, nsrc)
    east, north = tangent_basis(s0)
    dirs = np.cos(r)[:, None] * s0 + np.sin(r)[:, None] * (np.sin(pa)[:, None] * east + np.cos(pa)[:, None] * north)
    offsets = draw_pointing_errors(n_ant, 2, 3.0, rng)
    assert abs(np.std(offsets) / ARCMIN - 3.0) < 1.5
    a1, a2 = np.triu_indices(n_ant, 1)
    w = beam_weight_sets(dirs, s0, freqs, gradient=True)  # (3, Nsrc, Nchan)
    volt = per_antenna_voltages(dirs, s0, offsets, freqs)  # (Nant, Npol, Nsrc, Nchan)
    errs, effects = [], []
    for b in range(a1.size):  # each source on its own (a sum over directions cancels the first order)
        one1, one2 = np.full(nsrc, a1[b]), np.full(nsrc, a2[b])
        approx = combine_pointing(w, offsets, one1, one2)  # (Nsrc, Nchan, Npol)
        exact = np.transpose(volt[a1[b]] * volt[a2[b]], (1, 2, 0))
        effect = np.abs(exact - w[0][:, :, None])
        # the neglected second order is ~ 2.8 (|d_p + d_q| / 2 FWHM)**2: < 1% of the peak for these offsets
        assert np.abs(approx - exact).max() < 0.01
        errs.append(np.abs(approx - exact).ravel())
        effects.append(effect.ravel())
        # and the effect is real: the baseline's beam differs from the shared beam by > 0.1% somewhere
        assert effect.max() > 1e-3
    # over all baselines the first order captures most of the effect (a wrong sign would give 2)
    assert np.median(np.concatenate(errs)) < 0.25 * np.median(np.concatenate(effects))
    # antennas differ: the same source seen by two baselines gets different beam gains
    g01 = volt[0] * volt[1]
    g23 = volt[2] * volt[3]
    assert np.abs(g01 - g23).max() > 1e-3


def test_gain_variation_amplitude_phase_and_correlation_time():
    rng = np.random.default_rng(2)
    f = gain_variation_factors(400, 2, rng, amp_sigma=0.03, phase_sigma_deg=30.0, corr_time_s=300.0)
    t = np.arange(0, 309, 12.884902)
    g = f(t)  # (Nant, Nt, Npol)
    assert g.shape == (400, t.size, 2)
    amp = np.abs(g) - 1.0
    ph = np.degrees(np.angle(g))
    assert 0.02 < amp.std() < 0.04
    assert 20.0 < ph.std() < 40.0
    # correlated in time: one integration apart nearly the same, 5 correlation times apart independent
    d_near = np.degrees(np.angle(f(np.array([0.0, 12.9]))))
    d_far = np.degrees(np.angle(f(np.array([0.0, 1500.0]))))
    near = np.std(d_near[:, 1] - d_near[:, 0])
    far = np.std(d_far[:, 1] - d_far[:, 0])
    assert near < 5.0 and far > 30.0, (near, far)


def test_ionospheric_screen_makes_phase_depend_on_direction():
    rng = np.random.default_rng(4)
    screen = random_screen(rng, 60950.0, rms_deg_10km=10.0, facet_deg=0.5)
    ant = np.stack([rng.uniform(-1200, 1200, 50), rng.uniform(-200, 200, 50)], axis=1)
    lm = np.radians(np.array([[0.0, 0.0], [0.1, 0.1], [2.0, 0.0], [0.0, -2.0]]))
    facets = screen.facet_of(lm)
    assert (facets[0] == facets[1]).all() and not (facets[0] == facets[2]).all()
    ph = screen.antenna_phases(ant, np.unique(facets, axis=0), 0.0)  # (Nant, Nfacet)
    diff = ph - ph[:1]  # relative to a reference antenna
    spread = np.degrees(np.std(diff[:, 1:] - diff[:, :1], axis=0))
    assert spread.min() > 0.05 and spread.max() > 1.0, spread  # direction-dependent phase across the array
    # the screen drifts: the same pierce points see a different phase a few minutes later
    later = screen.antenna_phases(ant, np.unique(facets, axis=0), 300.0)
    assert np.degrees(np.abs(later - ph)).max() > 1.0


def test_truth_image_peak_is_the_apparent_flux():
    from astropy.wcs import WCS

    from dsa110_contimg.simulate.truth_image import truth_image

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    w.wcs.crval = [150.0, 55.0]
    w.wcs.crpix = [65, 65]
    w.wcs.cdelt = [-3.0 / 3600, 3.0 / 3600]

    class _T:
        sources = [{"ra_deg": 150.0, "dec_deg": 55.0, "apparent_flux_jy": 0.25, "flux_1p4_jy": 0.3},
                   {"ra_deg": 150.0, "dec_deg": 55.02, "apparent_flux_jy": 0.1, "flux_1p4_jy": 0.1,
                    "major_arcsec": 30.0, "minor_arcsec": 30.0, "pa_deg": 0.0}]

    beam = (30.0 / 3600, 15.0 / 3600, 0.0)
    img = truth_image(_T(), w, (128, 128), beam)
    assert img[64, 64] == pytest.approx(0.25, rel=1e-3)
    # the resolved source: peak diluted by (beam area / (beam + source) area), integral = flux
    y2 = int(round(64 + 0.02 * 3600 / 3.0))
    dil = np.sqrt(30 * 15 / ((30 ** 2 + 30 ** 2) * (15 ** 2 + 30 ** 2)) * 30 * 15)
    assert img[y2, 64] == pytest.approx(0.1 * dil, rel=0.02)
    img_i = truth_image(_T(), w, (128, 128), beam, fluxes="intrinsic")
    assert img_i[64, 64] == pytest.approx(0.3, rel=1e-3)


def test_small_realistic_run_records_every_effect(tmp_path):
    from dsa110_contimg.simulate.core import simulate
    from dsa110_contimg.simulate.options import SimulateOptions

    opts = SimulateOptions(output_dir=tmp_path, preset="small", sky="realistic", sky_min_flux_jy=0.02,
                           pointing_error_arcmin=3.0, gain_variation=True, ionosphere=True, seed=9,
                           subbands=(0,))
    res = simulate(opts)
    truth = json.loads(res.groups[0].truth_path.read_text())
    text = json.dumps(truth)
    for key in ("pointing_offsets_rad", "gain_variation", "ionosphere", "Hopkins"):
        assert key in text, key
    srcs = truth.get("sources") or truth["groups"][0]["sources"]
    assert len(srcs) > 20
    assert min(s["flux_1p4_jy"] for s in srcs) >= 0.02 - 1e-12
