"""The MS facts layer (:mod:`dsa110_contimg.ms`) and the time conversions (:mod:`dsa110_contimg.timeconv`)."""

import shutil
from datetime import datetime, timezone

import numpy as np
import pytest
from casacore.tables import table

from dsa110_contimg import timeconv as tc
from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory
from dsa110_contimg.ms import CORRECTED_KEY, POINTING_DEC_KEY, mark_corrected, read_ms_info, read_pointing
from dsa110_contimg.simulate.truth import GroupTruth


def test_time_conversions_agree_with_astropy():
    from astropy.time import Time

    t = Time("2025-10-02T15:43:32.123", scale="utc")
    assert tc.ms_seconds_to_mjd(tc.time_to_ms_seconds(t)) == pytest.approx(t.mjd, abs=1e-11)
    assert tc.ms_seconds_to_time(tc.mjd_to_ms_seconds(t.mjd)).isot == t.isot
    unix = t.unix
    assert tc.unix_to_mjd(unix) == pytest.approx(t.mjd, abs=1e-10)
    assert tc.unix_to_ms_seconds(unix) == pytest.approx(tc.mjd_to_ms_seconds(t.mjd), abs=1e-5)
    assert tc.jd_to_mjd(t.jd) == pytest.approx(t.mjd, abs=1e-9) and tc.mjd_to_jd(t.mjd) == pytest.approx(t.jd)
    dt = datetime(2025, 10, 2, 15, 43, 32, 123000)
    assert tc.datetime_to_mjd(dt) == pytest.approx(t.mjd, abs=1e-10)
    assert tc.datetime_to_mjd(dt.replace(tzinfo=timezone.utc)) == tc.datetime_to_mjd(dt)
    assert abs((tc.mjd_to_datetime(t.mjd) - dt).total_seconds()) < 1e-4
    assert tc.mjd_to_iso(t.mjd) == "2025-10-02T15:43:32Z" and tc.mjd_to_iso(None) == "-"


@pytest.fixture(scope="module")
def converted(small_cal_group, antpos_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("msinfo")
    res = convert_directory(small_cal_group.files[0].parent,
                            ConvertOptions(output_dir=out, antpos_csv=antpos_csv, stage_dir=out / "stage"))
    return res[0].ms_path, GroupTruth.from_json(small_cal_group.truth_path)


def test_msinfo_holds_the_group(converted):
    ms, truth = converted
    info = read_ms_info(ms)
    np.testing.assert_allclose(info.times_mjd, truth.times_mjd, rtol=0, atol=1e-8)
    assert info.integration_s == pytest.approx(truth.integration_s)
    assert info.start_mjd == pytest.approx(truth.times_mjd[0] - truth.integration_s / 2 / 86400, abs=1e-9)
    assert info.end_mjd == pytest.approx(truth.times_mjd[-1] + truth.integration_s / 2 / 86400, abs=1e-9)
    assert info.start.isot == info.date_obs and info.n_times == len(truth.times_mjd)
    np.testing.assert_allclose(info.freqs_hz, np.sort(np.concatenate(truth.freqs_hz)), atol=1e-3)
    assert info.channel_width_hz == pytest.approx(truth.channel_width_hz) and info.n_channels == 96
    assert info.n_antennas == 117 and info.n_pols == 2 and info.telescope == "OVRO_DSA"
    assert info.n_rows == len(truth.times_mjd) * 24 * 25 // 2
    dec, lon = info.pointing()
    assert np.degrees(dec) == pytest.approx(truth.pointing_dec_deg) and np.degrees(lon) == pytest.approx(
        truth.fringestop_lon_deg)
    assert (dec, lon) == read_pointing(ms)
    assert info.field_names[0].startswith("meridian_") and info.field_dirs_rad.shape == (1, 2)
    assert not info.corrected_is_calibrated and info.calibration_set == ""


def test_calibrated_flag_is_explicit(converted, tmp_path):
    ms = shutil.copytree(converted[0], tmp_path / "flag.ms")
    with table(str(ms), readonly=False, ack=False) as t:
        mark_corrected(t, True, "set_a")
    info = read_ms_info(ms)
    assert info.corrected_is_calibrated and info.calibration_set == "set_a"
    with table(str(ms), readonly=False, ack=False) as t:
        mark_corrected(t, False, "ignored")
    info = read_ms_info(ms)
    assert not info.corrected_is_calibrated and info.calibration_set == ""


def test_an_ms_from_elsewhere(converted, tmp_path):
    """Without the pipeline's keywords: not calibrated, and no pointing (a one-line ValueError)."""
    ms = shutil.copytree(converted[0], tmp_path / "foreign.ms")
    with table(str(ms), readonly=False, ack=False) as t:
        for key in (POINTING_DEC_KEY, CORRECTED_KEY):
            t.removekeyword(key)
    info = read_ms_info(ms)
    assert not info.corrected_is_calibrated and info.pointing_dec_rad is None
    with pytest.raises(ValueError, match="not written by dsa110-contimg"):
        info.pointing()
    with pytest.raises(ValueError, match="not written by dsa110-contimg"):
        read_pointing(ms)
