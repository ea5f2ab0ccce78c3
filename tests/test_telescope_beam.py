"""Telescope identity, station CSV and the primary-beam model."""

import numpy as np
import pytest

from dsa110_contimg import telescope as tel
from dsa110_contimg.beam import SPEED_OF_LIGHT, airy_power, angular_separation, fwhm_rad


def test_station_csv(antpos_csv):
    ants = tel.read_station_csv(antpos_csv)
    assert len(ants) == 117
    assert ants.names[0] == "1" and ants.names[-1] == "117"
    assert ants.stations[102] == "DSA-103"
    assert list(ants.numbers[:3]) == [0, 1, 2]
    # independent geodetic -> ECEF with astropy (pure math, no download)
    from astropy.coordinates import EarthLocation
    import astropy.units as u

    loc = EarthLocation.from_geodetic(-118.2856408 * u.deg, 37.2333752 * u.deg, 1182.6 * u.m)
    np.testing.assert_allclose(ants.position_of("1"), [loc.x.value, loc.y.value, loc.z.value], atol=1e-3)
    # DSA-117 has a blank elevation: falls back to 1182.6 m
    loc117 = EarthLocation.from_geodetic(-118.2966607 * u.deg, 37.2315343 * u.deg, 1182.6 * u.m)
    np.testing.assert_allclose(ants.position_of("117"), [loc117.x.value, loc117.y.value, loc117.z.value], atol=1e-3)


def test_station_csv_bad_file(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(tel.AntennaTableError, match="bad.csv"):
        tel.read_station_csv(p)


def test_active_antennas_match_real_data():
    from dsa110_contimg.simulate.presets import PRESETS

    full = PRESETS["full"]
    assert len(full.active_antennas) == 96
    assert full.n_baselines == 4656
    for a in (10, 21, 22, 23, 52, 60, 67, 117):
        assert a not in full.active_antennas
    assert 103 in PRESETS["small"].active_antennas


def test_airy_beam_shape():
    f = 1.4e9
    lam = SPEED_OF_LIGHT / f
    assert airy_power(0.0, f) == pytest.approx(1.0)
    # half power at FWHM = 1.029 lambda / D (uniform illumination)
    assert airy_power(fwhm_rad(f) / 2, f) == pytest.approx(0.5, abs=2e-3)
    assert np.degrees(fwhm_rad(f)) == pytest.approx(2.71, abs=0.02)
    # first null at 1.22 lambda / D
    assert airy_power(1.2197 * lam / tel.DISH_DIAMETER_M, f) < 1e-6
    # wider at lower frequency
    assert airy_power(0.02, 1.3e9) > airy_power(0.02, 1.5e9)


def test_angular_separation():
    assert angular_separation(0.0, 0.0, np.pi / 2, 0.0) == pytest.approx(np.pi / 2)
    assert angular_separation(1.0, 0.5, 1.0, 0.6) == pytest.approx(0.1)
