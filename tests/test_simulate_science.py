"""The simulated sky comes back at its beam-attenuated flux through pyuvdata + CASA tclean."""

import shutil

import numpy as np
import pytest

from dsa110_contimg.conversion.uvh5_io import declare_meridian_phasing, phase_to_icrs, read_group_pyuvdata
from dsa110_contimg.simulate.core import SimulateOptions, simulate
from dsa110_contimg.simulate.instrument import evaluate_gains
from dsa110_contimg.simulate.truth import GroupTruth
from dsa110_contimg.telescope import read_station_csv

from imaging_helpers import fit_point_source, offset_arcsec, tclean_image


def _ms_via_pyuvdata(group, antpos_csv, ms, truth, divide_gains=False):
    uv = read_group_pyuvdata(group.files, read_station_csv(antpos_csv))
    if divide_gains:
        gm = truth.gain_model
        jd = np.unique(uv.time_array)
        g = evaluate_gains(gm, uv.freq_array, jd - 2400000.5)  # (Nant, Nt, Nchan, Npol)
        it = np.searchsorted(jd, uv.time_array)
        uv.data_array /= g[uv.ant_1_array, it] * np.conj(g[uv.ant_2_array, it])
    declare_meridian_phasing(uv, truth.fringestop_lon_deg)
    cal = truth.sources[0]
    phase_to_icrs(uv, cal["ra_deg"], cal["dec_deg"], "cal")
    shutil.rmtree(ms, ignore_errors=True)
    uv.write_ms(str(ms), run_check=False)
    return ms


def _check_image(image, truth, flux_tol):
    cal, off = truth.sources[0], truth.sources[1]
    fit = fit_point_source(image, cal["ra_deg"], cal["dec_deg"])
    # flux: the unit-gain, noise-free source at the meridian comes back at its beam-attenuated flux
    assert fit["peak"] == pytest.approx(cal["apparent_flux_jy"], rel=flux_tol)
    assert cal["apparent_flux_jy"] < cal["flux_jy"]  # the truth is attenuated, not the catalog flux
    beam = np.sqrt(fit["bmaj_arcsec"] * fit["bmin_arcsec"])
    assert offset_arcsec(fit["ra_deg"], fit["dec_deg"], cal["ra_deg"], cal["dec_deg"]) < beam / 10
    # an offset source lands at its true position (catches sign and geometry errors)
    fo = fit_point_source(image, off["ra_deg"], off["dec_deg"])
    assert offset_arcsec(fo["ra_deg"], fo["dec_deg"], off["ra_deg"], off["dec_deg"]) < beam / 10
    assert fo["peak"] == pytest.approx(off["apparent_flux_jy"], rel=0.05)


def test_unit_gain_source_recovered_by_tclean(small_cal_group, antpos_csv, tmp_path):
    truth = GroupTruth.from_json(small_cal_group.truth_path)
    assert truth.sources[0]["name"] == "0834+555"
    ms = _ms_via_pyuvdata(small_cal_group, antpos_csv, tmp_path / "cal.ms", truth)
    image = tclean_image(ms, tmp_path / "img")
    _check_image(image, truth, flux_tol=0.01)


def test_gains_divided_out_recover_source(tmp_path, antpos_csv):
    from dsa110_contimg.simulate.sky import SkySource, write_sources_csv

    src_csv = tmp_path / "extra.csv"
    write_sources_csv([SkySource(129.5, 55.0, 2.0, -0.7, "offset")], src_csv)
    res = simulate(SimulateOptions(output_dir=tmp_path / "in", preset="small", calibrator="0834+555",
                                   sources_csv=src_csv, noise=False, gains=True, delay_sigma_ns=3.0,
                                   antpos_csv=antpos_csv, seed=4))
    truth = GroupTruth.from_json(res.groups[0].truth_path)
    assert np.std(truth.gain_model.phase_rad) > 0.5  # real gains were applied
    ms = _ms_via_pyuvdata(res.groups[0], antpos_csv, tmp_path / "g.ms", truth, divide_gains=True)
    image = tclean_image(ms, tmp_path / "gimg")
    _check_image(image, truth, flux_tol=0.01)
