"""The simulator's RFI (``--rfi none|light|heavy``): what it injects, where, and the truth it writes."""

import h5py
import numpy as np
import pytest

from dsa110_contimg.simulate.core import SimulateOptions, simulate
from dsa110_contimg.simulate.rfi import RFI_LEVELS, baseline_taper, draw_rfi, load_rfi_truth, telegraph
from dsa110_contimg.simulate.truth import GroupTruth


def _sim(out, antpos_csv, rfi, **kw):
    kw = {"preset": "small", "n_sources": 0, "noise": False, "gains": False, "seed": 4, **kw}
    return simulate(SimulateOptions(output_dir=out, rfi=rfi, antpos_csv=antpos_csv, **kw)).groups[0]


def _file_vis(path):
    with h5py.File(path, "r") as f:
        d = f["Data/visdata"][()][:, 0]
        nt = int(f["Header/Ntimes"][()])
        a1, a2 = f["Header/ant_1_array"][()], f["Header/ant_2_array"][()]
    nbl = d.shape[0] // nt
    return d.reshape(nt, nbl, *d.shape[1:]), a1[:nbl], a2[:nbl]


@pytest.fixture(scope="module")
def heavy_rfi_only(tmp_path_factory, antpos_csv):
    """A small group whose visibilities are the RFI alone (no sky, noise or gains)."""
    return _sim(tmp_path_factory.mktemp("rfi_only"), antpos_csv, "heavy")


def test_truth_mask_is_in_file_order_and_matches_the_data(heavy_rfi_only):
    g = heavy_rfi_only
    truth = GroupTruth.from_json(g.truth_path)
    assert truth.rfi["level"] == "heavy" and truth.rfi["mask_file"] == f"{g.start_iso}_rfi.npz"
    rt = load_rfi_truth(g.truth_path.parent / truth.rfi["mask_file"])
    assert rt.subbands == list(range(16))
    for path in g.files:
        sb = int(path.stem.split("_sb")[1])
        vis, a1, a2 = _file_vis(path)
        mask, amp = rt.mask(sb), rt.amplitude(sb)
        assert mask.shape == vis.shape and amp.shape == vis.shape
        np.testing.assert_array_equal(rt.ant_1, a1)
        np.testing.assert_array_equal(rt.ant_2, a2)
        np.testing.assert_allclose(rt.freqs(sb), truth.freqs_hz[sb])
        # with no sky, noise or gains the cross-correlations hold exactly the injected RFI, in the mask's order
        cross = a1 != a2
        np.testing.assert_array_equal(np.abs(vis[:, cross]) > 0, mask[:, cross])
        np.testing.assert_allclose(np.abs(vis[:, cross]), amp[:, cross], rtol=1e-5, atol=1e-6)
        assert not mask[:, ~cross].any()  # autocorrelations (the SEFD only) carry none


def test_levels_touch_the_stated_fractions(heavy_rfi_only, tmp_path, antpos_csv):
    heavy = GroupTruth.from_json(heavy_rfi_only.truth_path).rfi
    light = GroupTruth.from_json(_sim(tmp_path / "light", antpos_csv, "light", preset="medium",
                                      subbands=(0,)).truth_path).rfi
    heavy_full = draw_rfi("heavy", 24, 768, np.linspace(5, 2500, 50), np.zeros(50, bool), 1.0,
                          np.random.default_rng(9))
    assert 0.015 <= light["fraction"] <= 0.03
    assert 0.08 <= heavy["fraction"] <= 0.13
    assert 0.09 <= heavy_full.occupancy() <= 0.115
    kinds = {e.kind for e in heavy_full.events}
    assert kinds == {"persistent", "intermittent", "burst"}
    for e in heavy_full.events:
        on = np.flatnonzero(e.time_profile > 0)
        assert 3.0 <= e.amp_sigma <= 300.0
        if e.kind == "burst":
            assert 1 <= on.size <= 3 and np.all(np.diff(on) == 1) and e.chan_profile.size >= 2
        else:
            assert 1 <= e.chan_profile.size <= 3
        if e.kind == "persistent":
            assert on.size >= 18  # most integrations
    amps = np.log10([e.amp_sigma for e in heavy_full.events])
    assert amps.min() < 1.0 and amps.max() > 1.8  # from a few to ~100+ sigma


def test_intermittent_lines_switch_on_and_off():
    rng = np.random.default_rng(3)
    seqs = [telegraph(24, rng) for _ in range(200)]
    switches = np.array([np.count_nonzero(np.diff(s.astype(int))) for s in seqs])
    assert all(s.any() for s in seqs)
    assert np.mean(switches >= 2) > 0.9  # on, off and on again within one group
    assert np.mean([s.mean() for s in seqs]) == pytest.approx(0.45, abs=0.1)


def test_strongest_on_short_baselines(heavy_rfi_only):
    rt = load_rfi_truth(heavy_rfi_only.truth_path.parent / f"{heavy_rfi_only.start_iso}_rfi.npz")
    truth = GroupTruth.from_json(heavy_rfi_only.truth_path)
    from dsa110_contimg.telescope import read_station_csv

    ants = read_station_csv(truth.antpos_source)
    length = np.linalg.norm(ants.ecef[rt.ant_2] - ants.ecef[rt.ant_1], axis=1)
    amp = np.concatenate([rt.amplitude(sb) for sb in rt.subbands], axis=2)
    mask = np.concatenate([rt.mask(sb) for sb in rt.subbands], axis=2)
    per_bl = np.array([np.median(amp[:, b][mask[:, b]]) if mask[:, b].any() else np.nan
                       for b in range(length.size)])
    cross = rt.ant_1 != rt.ant_2
    short = cross & (length < np.percentile(length[cross], 20))
    long_ = cross & (length > np.percentile(length[cross], 80))
    assert np.nanmedian(per_bl[short]) > 2.0 * np.nanmedian(per_bl[long_])
    taper = baseline_taper(np.array([0.0, 100.0, 2500.0]), RFI_LEVELS["heavy"].baseline_scale_m,
                           np.zeros(3, bool))
    assert taper[0] == 1.0 and taper[0] > taper[1] > taper[2] > 0.1
    # a random phase per baseline: phases of one sample across baselines are spread over the circle
    sb = next(s for s in rt.subbands if rt.mask(s).any())
    vis, a1, a2 = _file_vis(heavy_rfi_only.files[sb])
    m = rt.mask(sb)
    t, c = np.argwhere(m[:, :, :, 0].any(axis=1))[0]
    ph = np.angle(vis[t, m[t, :, c, 0], c, 0])
    assert np.abs(np.mean(np.exp(1j * ph))) < 0.3


def test_reproducible_and_added_before_gains_and_noise(tmp_path, antpos_csv):
    kw = {"noise": True, "gains": True, "n_sources": 3, "subbands": (3, 9)}
    a = _sim(tmp_path / "a", antpos_csv, "heavy", **kw)
    b = _sim(tmp_path / "b", antpos_csv, "heavy", **kw)
    clean = _sim(tmp_path / "c", antpos_csv, "none", **kw)
    assert GroupTruth.from_json(clean.truth_path).rfi is None
    assert not list((tmp_path / "c").glob("*_rfi.npz"))
    ta, tb = GroupTruth.from_json(a.truth_path), GroupTruth.from_json(b.truth_path)
    assert ta.rfi == tb.rfi
    ra = load_rfi_truth(a.truth_path.parent / ta.rfi["mask_file"])
    for fa, fb, fc in zip(a.files, b.files, clean.files):
        sb = int(fa.stem.split("_sb")[1])
        va, _, _ = _file_vis(fa)
        vb, _, _ = _file_vis(fb)
        vc, _, _ = _file_vis(fc)
        np.testing.assert_array_equal(va, vb)  # same seed, same group
        mask = ra.mask(sb)
        # RFI on: sky, gains and noise unchanged outside the mask (its own random stream) ...
        np.testing.assert_array_equal(va[~mask], vc[~mask])
        assert np.all(va[mask] != vc[mask])
    # ... and inside, the difference is the RFI times the gains g1 conj(g2): amplitude within the gain scatter
    gm = ta.gain_model
    sb = 3
    va, a1, a2 = _file_vis(a.files[0])
    vc, _, _ = _file_vis(clean.files[0])
    from dsa110_contimg.simulate.instrument import evaluate_gains

    g = evaluate_gains(gm, np.asarray(ta.freqs_hz[sb]), np.asarray(ta.times_mjd))  # (ant, time, chan, pol)
    gg = g[a1].transpose(1, 0, 2, 3) * np.conj(g[a2]).transpose(1, 0, 2, 3)
    mask = ra.mask(sb)
    np.testing.assert_allclose(np.abs(va - vc)[mask], (ra.amplitude(sb) * np.abs(gg))[mask], rtol=2e-3, atol=1e-3)
    other = GroupTruth.from_json(_sim(tmp_path / "d", antpos_csv, "heavy", seed=5, **kw).truth_path).rfi
    assert other["events"] != ta.rfi["events"]


def test_unknown_level_is_refused(tmp_path, antpos_csv):
    with pytest.raises(ValueError, match="rfi"):
        _sim(tmp_path, antpos_csv, "extreme")


@pytest.mark.parametrize("writer", ["direct-subband", "monolithic"])
def test_mask_maps_onto_ms_rows_and_channels(heavy_rfi_only, writer, tmp_path, antpos_csv):
    """Mapped to MS order (ascending frequency, the writer's row order and baseline orientation), the mask
    marks exactly the samples that carry the RFI, with the injected amplitude."""
    from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory
    from dsa110_contimg.flagging.evaluate import truth_in_ms_order
    from dsa110_contimg.flagging.msio import read_block, read_layout

    from casacore.tables import table

    [res] = convert_directory(heavy_rfi_only.files[0].parent,
                              ConvertOptions(output_dir=tmp_path, writer=writer, antpos_csv=antpos_csv,
                                             stage_dir=tmp_path / "stage"))
    layout = read_layout(res.ms_path)
    assert np.all(np.diff(layout.freqs_hz) > 0)
    truth = GroupTruth.from_json(heavy_rfi_only.truth_path)
    mask, amp, _ = truth_in_ms_order(heavy_rfi_only.truth_path.parent / truth.rfi["mask_file"], layout)
    with table(str(res.ms_path), ack=False) as t:
        data = read_block(t, layout, np.arange(layout.n_bl), "DATA")
    cross = ~layout.autos
    assert mask[:, cross].any()
    np.testing.assert_array_equal(np.abs(data[:, cross]) > 0, mask[:, cross])
    np.testing.assert_allclose(np.abs(data[:, cross]), amp[:, cross], rtol=1e-4, atol=1e-5)
