"""The simulator writes files a reader cannot tell from the correlator's."""

import json
from datetime import datetime

import h5py
import numpy as np
import pytest

from dsa110_contimg.simulate.core import SimulateOptions, simulate
from dsa110_contimg.simulate.presets import subband_frequencies
from dsa110_contimg.simulate.truth import GroupTruth

REAL_HEADER_KEYS = {
    "latitude", "longitude", "altitude", "telescope_name", "instrument", "object_name", "history", "phase_type",
    "Nants_data", "Nants_telescope", "antenna_diameters", "ant_1_array", "ant_2_array", "antenna_names",
    "antenna_numbers", "Nbls", "Nblts", "Nfreqs", "Npols", "Ntimes", "Nspws", "uvw_array", "time_array",
    "integration_time", "freq_array", "channel_width", "spw_array", "polarization_array", "antenna_positions",
    "phase_center_app_dec", "extra_keywords",
}
REAL_EXTRA_KEYWORDS = {"phase_center_dec", "ha_phase_center", "phase_center_epoch", "applied_delays_ns", "fs_table"}


@pytest.fixture(scope="module")
def full_two_subbands(tmp_path_factory, antpos_csv):
    out = tmp_path_factory.mktemp("full")
    res = simulate(SimulateOptions(output_dir=out, preset="full", subbands=(0, 15), n_sources=3,
                                   antpos_csv=antpos_csv, seed=5))
    return res.groups[0]


def test_full_preset_header_and_shapes(full_two_subbands):
    sb00 = full_two_subbands.files[0]
    assert sb00.name.endswith("_sb00.hdf5")
    with h5py.File(sb00, "r") as f:
        h, d = f["Header"], f["Data"]
        assert set(h.keys()) == REAL_HEADER_KEYS
        assert h["telescope_name"][()] == b"OVRO_MMA" and h["instrument"][()] == b"DSA"
        assert h["phase_type"][()] == b"drift"
        assert h["Nants_telescope"][()] == 117 and h["Nants_data"][()] == 96
        assert h["Nbls"][()] == 4656 and h["Ntimes"][()] == 24 and h["Nblts"][()] == 111744
        assert h["Nfreqs"][()] == 48 and h["Npols"][()] == 2 and h["Nspws"][()] == 1
        assert list(h["polarization_array"][()]) == [-5, -6]
        assert h["freq_array"].shape == (1, 48)
        assert h["channel_width"][()] == 244140.625
        assert h["uvw_array"].dtype == np.float32 and h["uvw_array"].shape == (111744, 3)
        assert h["time_array"].dtype == np.float64
        np.testing.assert_allclose(np.unique(h["integration_time"][()]), [12.884902])
        assert [n.decode() for n in h["antenna_names"][()][:3]] == ["1", "2", "3"]
        assert list(h["antenna_numbers"][()][:3]) == [0, 1, 2]
        assert d["visdata"].dtype == np.complex64 and d["visdata"].shape == (111744, 1, 48, 2)
        assert d["flags"].dtype == bool and d["nsamples"].dtype == np.float32
        assert np.all(d["nsamples"][:1000] == 96)
        ek = h["extra_keywords"]
        assert ek["phase_center_epoch"][()] == b"HADEC" and ek["ha_phase_center"][()] == 0.0
        assert set(ek.keys()) == REAL_EXTRA_KEYWORDS
        assert np.degrees(ek["phase_center_dec"][()]) == pytest.approx(54.5734)
        assert len(ek["applied_delays_ns"][()].split()) == 2 * 117
        # the real writer's Header/phase_center_app_dec: a scalar, the pointing declination in radians
        assert h["phase_center_app_dec"].shape == () and h["phase_center_app_dec"].dtype == np.float64
        assert h["phase_center_app_dec"][()] == ek["phase_center_dec"][()]
        # fs_table: the path (a byte string) of the fringe-stopping table
        fs_table = ek["fs_table"][()]
        assert isinstance(fs_table, bytes) and fs_table.decode().endswith(".npz")
        # UVW written once and repeated for every integration
        uvw = h["uvw_array"][()].reshape(24, 4656, 3)
        assert np.all(uvw == uvw[0])
        # time-major records; autocorrelations present; ant_1/ant_2 follow the correlator's order
        t = h["time_array"][()].reshape(24, 4656)
        assert np.all(t == t[:, :1]) and np.all(np.diff(t[:, 0]) > 0)
        a1, a2 = h["ant_1_array"][()][:4656], h["ant_2_array"][()][:4656]
        assert np.sum(a1 == a2) == 96
        assert len({(x, y) for x, y in zip(a1, a2)}) == 4656
    assert 140e6 < sb00.stat().st_size < 150e6  # real files: 145,348,600 bytes


def test_full_preset_reads_with_pyuvdata(full_two_subbands):
    from pyuvdata import UVData

    uv = UVData()
    # pyuvdata's default checks refuse the float32 UVW, exactly as with the real files
    with pytest.raises(ValueError, match="uvw_array"):
        uv.read(str(full_two_subbands.files[1]), file_type="uvh5")
    uv.read(str(full_two_subbands.files[1]), file_type="uvh5", run_check=False)
    assert uv.Nants_data == 96 and uv.telescope.Nants == 117
    assert uv.Ntimes == 24 and uv.Nfreqs == 48 and uv.Nbls == 4656
    assert list(uv.polarization_array) == [-5, -6]
    assert uv.telescope.name == "OVRO_MMA"
    assert np.all(np.diff(uv.freq_array) < 0)  # descending inside the file
    assert uv.freq_array.min() == pytest.approx(1311.3873e6, abs=100)  # sb15 last channel


def test_frequency_layout():
    f = np.concatenate([subband_frequencies(sb) for sb in range(16)])
    assert f.size == 768
    assert np.all(np.diff(f) < 0)  # sb00 highest, descending throughout
    np.testing.assert_allclose(np.diff(f), -244140.625)
    assert f[0] == pytest.approx(1498.6432e6, abs=50)
    assert f[-1] == pytest.approx(1311.3873e6, abs=50)
    top, bottom = f[0] + 244140.625 / 2, f[-1] - 244140.625 / 2
    assert top == pytest.approx(1498.75e6, abs=20e3) and bottom == pytest.approx(1311.25e6, abs=20e3)
    # the small preset averages 8 channels and keeps the band
    fs = np.concatenate([subband_frequencies(sb, 6) for sb in range(16)])
    assert fs.size == 96 and fs.mean() == pytest.approx(f.mean())


def test_timestamp_jitter_and_group_spacing(tmp_path, antpos_csv):
    res = simulate(SimulateOptions(output_dir=tmp_path, preset="small", groups=2, jitter_s=4, n_sources=2,
                                   antpos_csv=antpos_csv, seed=9))
    assert len(res.groups) == 2
    for g in res.groups:
        names = [p.name for p in g.files]
        assert [n[-10:] for n in names] == [f"_sb{i:02d}.hdf5" for i in range(16)]
        stamps = [datetime.strptime(n[:19], "%Y-%m-%dT%H:%M:%S") for n in names]
        spread = (max(stamps) - min(stamps)).total_seconds()
        assert 0 < spread <= 8
        times = []
        for p in g.files:
            with h5py.File(p, "r") as f:
                times.append(f["Header"]["time_array"][()])
        assert all(np.array_equal(times[0], t) for t in times)  # headers agree within a group
    dt = (res.groups[1].mid_mjd - res.groups[0].mid_mjd) * 86400
    assert dt == pytest.approx(309.24, abs=1e-3)
    assert not list(tmp_path.glob("*_incomplete.hdf5"))


def test_truth_roundtrip_and_reproducibility(tmp_path, antpos_csv):
    a = simulate(SimulateOptions(output_dir=tmp_path / "a", preset="small", n_sources=4, antpos_csv=antpos_csv,
                                 seed=21, flag_fraction=0.01))
    b = simulate(SimulateOptions(output_dir=tmp_path / "b", preset="small", n_sources=4, antpos_csv=antpos_csv,
                                 seed=21, flag_fraction=0.01))
    ta = GroupTruth.from_json(a.groups[0].truth_path)
    ta.to_json(tmp_path / "again.json")
    assert json.loads((tmp_path / "again.json").read_text()) == json.loads(a.groups[0].truth_path.read_text())
    assert len(ta.sources) == 4 and ta.noise["enabled"] and ta.seed == 21
    assert np.asarray(ta.gains["amp"]).shape == (117, 2)
    gm = ta.gain_model
    assert gm.amp.shape == (117, 2) and gm.bp_amp.shape[:2] == (117, 2)
    with h5py.File(a.groups[0].files[3], "r") as fa, h5py.File(b.groups[0].files[3], "r") as fb:
        assert np.array_equal(fa["Data"]["visdata"][()], fb["Data"]["visdata"][()])
        flags = fa["Data"]["flags"][()]
        assert 0.005 < flags.mean() < 0.02
