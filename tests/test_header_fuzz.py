"""Fuzz the UVH5 header: read_meta either reads a file or raises ConversionInputError naming it (issue 18 item 4).

One valid small-preset subband file (the simulator's) is copied for every
example; one header dataset is replaced with a generated value (text, bytes,
huge / negative integers, floats, NaN, empty or wrong-shape arrays, values of
the right shape but wrong content) and :func:`read_meta` must never raise
anything but :class:`ConversionInputError`, whose one-line message names the file.
"""

import shutil

import h5py
import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dsa110_contimg.conversion.grouping import ConversionInputError
from dsa110_contimg.conversion.reader import read_meta

FIELDS = ["Nblts", "Nfreqs", "Npols", "ant_1_array", "ant_2_array", "time_array", "integration_time", "freq_array",
          "channel_width", "antenna_names", "antenna_numbers", "antenna_positions", "latitude", "longitude",
          "altitude", "polarization_array", "extra_keywords/phase_center_dec", "Ntimes"]
"""Every header dataset read_meta reads, plus one it does not (Ntimes)."""

DTYPES = [np.int64, np.uint64, np.int8, np.float64, np.float32, np.bool_, np.complex64, "S4"]
SPECIAL = [0, -1, 1, 2**31, 2**63 - 1, -(2**63), 2**64 - 1, np.nan, np.inf, -np.inf, 1e300, -1e-300, 0.5]


@pytest.fixture(scope="module")
def pristine(small_cal_group, tmp_path_factory):
    """A valid subband file, and the path each example writes its edited copy to."""
    d = tmp_path_factory.mktemp("fuzz")
    src = small_cal_group.files[6]
    read_meta(src)  # valid to start with
    with h5py.File(src, "r") as f:
        shapes = {k: f["Header"][k].shape for k in FIELDS}
        dtypes = {k: f["Header"][k].dtype for k in FIELDS}
    return src, d / src.name, shapes, dtypes


def _scalars():
    return st.one_of(st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from(SPECIAL), st.booleans(), st.text(max_size=12),
                     st.binary(max_size=12).filter(lambda b: b"\0" not in b).map(np.bytes_))


@st.composite
def header_edits(draw, shapes, dtypes):
    """(field, value): a field and a replacement value for it."""
    field = draw(st.sampled_from(FIELDS))
    shape, dtype = shapes[field], dtypes[field]
    kind = draw(st.sampled_from(["scalar", "array", "same-shape", "empty"]))
    if kind == "scalar":
        return field, draw(_scalars())
    if kind == "empty":
        return field, draw(st.sampled_from([np.array([]), np.array([], dtype="S1"), h5py.Empty("f8"),
                                            np.zeros((0, 3))]))
    if kind == "array":
        dt = draw(st.sampled_from(DTYPES))
        return field, draw(hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)))
    # the right shape and dtype, with one odd value planted among copies of a valid-looking one
    if dtype.kind in "SUO":
        text = draw(st.binary(min_size=0, max_size=4).filter(lambda b: b"\0" not in b))
        return field, np.array([text] * int(np.prod(shape)), dtype="S4").reshape(shape)
    value = np.full(shape, draw(st.sampled_from(SPECIAL + [1800, 6, 2, 2460000.5, 1.4e9])), dtype=np.float64)
    if value.size:
        idx = draw(st.integers(0, value.size - 1))
        value.ravel()[idx] = draw(st.sampled_from(SPECIAL))
    with np.errstate(invalid="ignore", over="ignore"):
        if dtype.kind in "iu":
            if not np.all(np.isfinite(value)) or np.abs(value).max(initial=0) >= 2**63:
                return field, value  # keep it float: a real-valued array where integers belong
            value = value.astype(dtype)
    return field, value


def _replace(path, field, value) -> bool:
    """Replace Header/<field> by ``value``; False when HDF5 cannot store such a value at all."""
    with h5py.File(path, "r+") as f:
        h = f["Header"]
        del h[field]
        try:
            h[field] = value
        except (TypeError, ValueError, OverflowError):
            return False
    return True


@settings(max_examples=150, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_read_meta_never_raises_anything_but_conversion_input_error(pristine, data):
    src, work, shapes, dtypes = pristine
    field, value = data.draw(header_edits(shapes, dtypes), label="edit")
    shutil.copyfile(src, work)
    if not _replace(work, field, value):
        event("not storable in HDF5")
        return
    try:
        meta = read_meta(work)
    except ConversionInputError as exc:
        event("rejected")
        msg = str(exc)
        assert msg.startswith(work.name), msg
        assert "\n" not in msg
        assert exc.files == [work]
        return
    event("accepted")  # what was read is consistent and sane
    assert meta.nblts == meta.ant_1.size == meta.time_jd.size >= 1
    assert meta.freqs_hz.size == meta.nfreqs and np.all(np.isfinite(meta.freqs_hz))
    assert meta.pols.size == meta.npols and np.all(np.isfinite(meta.time_jd))
    assert len(meta.antenna_names) == meta.antenna_numbers.size == meta.antenna_positions.shape[0]
