"""The batched box kernels of forced photometry (photometry.boxes) pinned to the per-position computations they
replace: the same numbers (to rounding), at image edges and NaN patches too."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsa110_contimg.photometry import boxes
from dsa110_contimg.photometry import kernels as k
from dsa110_contimg.qa.sources import robust_rms

BEAM = (2.2, 1.6, 0.4)


def _image(rng, n=160):
    img = 0.003 * rng.normal(size=(n, n))
    yy, xx = np.mgrid[0:n, 0:n]
    img += 0.5 * boxes.beam_model(xx, yy, 80.3, 79.6, BEAM)
    img[10:25, 120:140] = np.nan  # a blanked patch
    img[:, :4] = np.nan  # a blanked edge (pb cutoff)
    return img


def _positions(rng, n=300, size=160):
    # anywhere, including partly off the image and on the NaN patch
    return rng.uniform(-5, size + 5, n), rng.uniform(-5, size + 5, n)


def test_robust_rms_rows_equals_robust_rms_of_each_row():
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(200, 301))
    rows[::7, ::5] = np.nan  # NaN is not a value
    rows[::3, :20] += 40.0  # outliers clipped away
    rows[5] = 1.0  # a constant row: rms 0
    rows[6, :] = np.nan  # no values
    rows[7, 3:] = np.nan  # three values
    rows[8] = np.round(rows[8])  # ties
    got = boxes.robust_rms_rows(rows)
    want = np.array([robust_rms(r) for r in rows])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True)
    assert np.isnan(got[6]) and got[5] == 0.0
    few = rows[:5]  # below FEW_ROWS: the per-row path
    np.testing.assert_allclose(boxes.robust_rms_rows(few), want[:5], rtol=1e-12)


def test_fit_isolated_equals_the_single_position_least_squares():
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(4)
    img = _image(rng)
    xs, ys = _positions(rng)
    half = 6
    kk = int(math.ceil(4.0 * BEAM[0]))
    ky, kx = np.mgrid[-kk:kk + 1, -kk:kk + 1]
    kern = boxes.beam_model(kx, ky, 0.0, 0.0, BEAM)
    amp, fac, npix = boxes.fit_isolated(img, xs, ys, BEAM, half, kern)
    ny, nx = img.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    n_ok = 0
    for i, (x, y) in enumerate(zip(xs, ys)):
        sel = ((xx - x) ** 2 + (yy - y) ** 2 <= half ** 2) & np.isfinite(img)
        if sel.sum() < 4:
            assert np.isnan(amp[i]) and npix[i] == 0
            continue
        g = np.where(sel, boxes.beam_model(xx, yy, x, y, BEAM), 0.0)
        btb = (g * g).sum()
        want_amp = (g[sel] * img[sel]).sum() / btb
        want_fac = math.sqrt((g[sel] * fftconvolve(g, kern, mode="same")[sel]).sum()) / btb
        assert amp[i] == pytest.approx(want_amp, rel=1e-9, abs=1e-12)
        assert fac[i] == pytest.approx(want_fac, rel=1e-6)
        assert npix[i] == sel.sum()
        n_ok += 1
    assert n_ok > 200
    # forced_fit routes isolated positions here, blends through the joint fit
    fit = k.forced_fit(img, xs[:3], ys[:3], BEAM, half, cluster_px=1.0)
    np.testing.assert_allclose(fit.amp, amp[:3], rtol=1e-12, equal_nan=True)


def test_local_fit_rms_equals_the_per_position_box_scatter():
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(5)
    img = _image(rng)
    xs, ys = _positions(rng, 120)
    xs, ys = np.append(xs, [-40.0, 200.0, 2.0]), np.append(ys, [80.0, 80.0, 80.0])  # off the image; on the NaN edge
    half, box, exclude = 6, 40, 10.0
    got = boxes.local_fit_rms(img, xs, ys, BEAM, half, box, exclude)
    ky, kx = np.mgrid[-half:half + 1, -half:half + 1]
    inside = kx ** 2 + ky ** 2 <= half ** 2
    kern = np.where(inside, boxes.beam_model(kx, ky, 0.0, 0.0, BEAM), 0.0)
    h, (ny, nx) = box // 2, img.shape
    want = np.full(xs.size, np.nan)
    for i, (x, y) in enumerate(zip(xs, ys)):  # one box at a time, clipped at the image's edges
        cx, cy = int(round(x)), int(round(y))
        x0, x1 = max(0, cx - h - half), min(nx, cx + h + half + 1)
        y0, y1 = max(0, cy - h - half), min(ny, cy + h + half + 1)
        if x1 - x0 <= 2 * half or y1 - y0 <= 2 * half:
            continue
        sub = img[y0:y1, x0:x1]
        bad = ~np.isfinite(sub)
        amp = fftconvolve(np.where(bad, 0.0, sub), kern, mode="valid") / (kern ** 2).sum()
        hit = fftconvolve(bad.astype(float), inside.astype(float), mode="valid") > 0.5
        yy, xx = np.mgrid[y0 + half:y1 - half, x0 + half:x1 - half]
        use = ~hit & ((xx - x) ** 2 + (yy - y) ** 2 > exclude ** 2)
        if use.sum() >= 16:
            want[i] = robust_rms(amp[use])
    assert np.isfinite(want).sum() > 60 and np.isnan(want[-3:-1]).all()
    np.testing.assert_allclose(got, want, rtol=1e-9, equal_nan=True)


def test_pair_extrema_each_equals_pair_extrema_per_source():
    rng = np.random.default_rng(6)
    n = 50
    flux_new, err_new = rng.uniform(0.01, 1.0, n), rng.uniform(0.001, 0.05, n)
    owner = rng.integers(0, n - 5, 400)  # the last five sources have no earlier measurement
    flux_old, err_old = rng.uniform(-0.01, 1.0, owner.size), rng.uniform(0.001, 0.05, owner.size)
    vs, m = k.pair_extrema_each(flux_new, err_new, flux_old, err_old, owner)
    for i in range(n):
        sel = owner == i
        want = k.pair_extrema(flux_new[i], err_new[i], flux_old[sel], err_old[sel])
        assert (vs[i], m[i]) == pytest.approx(want, rel=1e-12), i
    assert (vs[-5:] == 0).all() and (m[-5:] == 0).all()
