"""Round trip: a written MS read back with pyuvdata (a reader independent of our writers) against the UVH5 input.

The input is the correlator-format group of ``small_cal_group`` (noise-free, unit gains), read with pyuvdata,
its meridian fringe-stopping declared (:func:`declare_meridian_phasing`) and rephased by pyuvdata to the MS's
phase centre.  Both writers must give back the same times, frequencies, baselines, polarizations, antenna
positions, flags and samples, the autocorrelations bit for bit (rephasing does not touch them), the
cross-correlation amplitudes to float32 precision and the phases up to one rigid sub-arcsecond direction
offset per integration (the two libraries' apparent places; see ``test_direct_and_monolithic_equivalent``).
"""

import warnings

import numpy as np
import pytest

from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory
from dsa110_contimg.conversion.uvh5_io import declare_meridian_phasing, read_group_pyuvdata
from dsa110_contimg.ms import read_ms_info
from dsa110_contimg.telescope import FRINGESTOP_LON_DEG, read_station_csv

from imaging_helpers import assert_rigid_phase_offset


def _normalise(uv):
    """One baseline conjugation, blt order (time, baseline), ascending frequencies, AIPS polarization order."""
    uv.conjugate_bls("ant1<ant2")
    uv.reorder_blts(order="time", minor_order="baseline")
    uv.reorder_freqs(channel_order="freq")
    uv.reorder_pols("AIPS")
    return uv


@pytest.fixture(scope="module")
def inputs(small_cal_group):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyuvdata's notes on the correlator's float32 UVW
        return read_group_pyuvdata(sorted(small_cal_group.files), None)


@pytest.fixture(scope="module", params=["direct-subband", "monolithic"])
def roundtrip(request, small_cal_group, antpos_csv, tmp_path_factory, inputs):
    """(MS path, the MS read by pyuvdata, the UVH5 input rephased by pyuvdata to the MS's centre)."""
    from pyuvdata import UVData

    out = tmp_path_factory.mktemp(f"rt_{request.param}")
    res = convert_directory(small_cal_group.files[0].parent,
                            ConvertOptions(output_dir=out, writer=request.param, antpos_csv=antpos_csv,
                                           stage_dir=out / "stage"))
    assert len(res) == 1 and not isinstance(res[0], Exception), res
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ms = _normalise(UVData.from_file(str(res[0].ms_path), file_type="ms", run_check=False))
        centre = ms.phase_center_catalog[next(iter(ms.phase_center_catalog))]
        uv = inputs.copy()
        declare_meridian_phasing(uv, FRINGESTOP_LON_DEG)
        uv.phase(lon=centre["cat_lon"], lat=centre["cat_lat"], epoch="J2000", phase_frame="icrs", cat_name="rt",
                 cat_type="sidereal")
    return res[0].ms_path, ms, _normalise(uv)


def test_metadata_survive(roundtrip, inputs, antpos_csv):
    path, ms, uv = roundtrip
    assert (ms.Ntimes, ms.Nbls, ms.Nfreqs, ms.Npols) == (inputs.Ntimes, inputs.Nbls, inputs.Nfreqs, inputs.Npols)
    assert list(ms.polarization_array) == list(uv.polarization_array) == [-5, -6]  # XX, YY
    assert ms.telescope.name == "OVRO_DSA"
    np.testing.assert_array_equal(ms.ant_1_array, uv.ant_1_array)
    np.testing.assert_array_equal(ms.ant_2_array, uv.ant_2_array)
    np.testing.assert_allclose(ms.time_array, uv.time_array, rtol=0, atol=1e-8)  # JD: < 1 ms
    np.testing.assert_allclose(ms.integration_time, uv.integration_time, rtol=1e-9)
    np.testing.assert_allclose(ms.freq_array, uv.freq_array, rtol=0, atol=1e-3)  # Hz, every channel
    np.testing.assert_allclose(np.diff(ms.freq_array), np.diff(ms.freq_array)[0])  # one contiguous window
    # antenna positions: the station table the conversion was given (absolute ECEF)
    names = list(ms.telescope.antenna_names)
    ecef = ms.telescope.antenna_positions + ms.telescope._location.xyz()
    table = read_station_csv(antpos_csv)
    for a in np.unique(np.concatenate([ms.ant_1_array, ms.ant_2_array])):
        name = names[list(ms.telescope.antenna_numbers).index(a)]
        np.testing.assert_allclose(ecef[list(ms.telescope.antenna_numbers).index(a)], table.position_of(name),
                                   atol=1e-3)
    np.testing.assert_array_equal(ms.flag_array, uv.flag_array)
    np.testing.assert_allclose(ms.nsample_array, uv.nsample_array, rtol=1e-6)
    assert not read_ms_info(path).corrected_is_calibrated  # as converted: CORRECTED_DATA is a copy of DATA


def test_autocorrelations_bit_for_bit(roundtrip):
    _, ms, uv = roundtrip
    autos = ms.ant_1_array == ms.ant_2_array
    assert autos.any()
    np.testing.assert_array_equal(ms.data_array[autos], uv.data_array[autos])


def test_cross_correlations_up_to_a_rigid_offset(roundtrip):
    """Amplitudes to float32 precision; phases: per integration, one direction offset (< 1") explains every
    baseline and channel to 1e-5 rad (the libraries' apparent places; 0 for the monolithic writer, which is
    pyuvdata itself)."""
    _, ms, uv = roundtrip
    cross = ms.ant_1_array != ms.ant_2_array
    a, b = ms.data_array[cross], uv.data_array[cross]
    np.testing.assert_allclose(np.abs(a), np.abs(b), rtol=2e-6, atol=1e-5)
    assert_rigid_phase_offset(np.angle(a * np.conj(b)), ~ms.flag_array[cross] & (np.abs(a) > 1e-3),
                              ms.uvw_array[cross], ms.time_array[cross], ms.freq_array,
                              max_offset_arcsec=1.0, max_residual_rad=1e-5)
    # UVW: both libraries' J2000 projections (CASA's own agree with the direct writer to 1 mm: test_convert.py)
    np.testing.assert_allclose(ms.uvw_array, uv.uvw_array, rtol=0, atol=0.15)
