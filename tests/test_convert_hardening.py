"""Conversion hardening: NaN/Inf visibilities, malformed headers, full and read-only disks (issue 18)."""

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from casacore.tables import table

from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory, convert_group
from dsa110_contimg.conversion.grouping import ConversionInputError, discover_groups
from dsa110_contimg.conversion.staging import PREFIX
from dsa110_contimg.errors import ENVIRONMENT, EnvironmentFault, classify

WRITERS = ["direct-subband", "monolithic"]


def _copy_group(src_files, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src_files:
        shutil.copy2(f, dst / f.name)
    return dst


def _digest(d: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir()) if p.is_file()}


def _sb(d: Path, sb: int) -> Path:
    return sorted(d.glob(f"*_sb{sb:02d}.hdf5"))[0]


def _opts(tmp_path, antpos_csv, writer, **kw):
    return ConvertOptions(output_dir=tmp_path / "out", writer=writer, antpos_csv=antpos_csv,
                          stage_dir=tmp_path / "stage", **kw)


def _read_ms(ms):
    with table(str(ms), ack=False) as t:
        cols = {c: t.getcol(c) for c in ("DATA", "CORRECTED_DATA", "FLAG", "TIME", "ANTENNA1", "ANTENNA2")}
    with table(str(ms / "SPECTRAL_WINDOW"), ack=False) as t:
        cols["FREQ"] = t.getcell("CHAN_FREQ", 0)
    return cols


def _ms_channel(ms_freqs, path: Path, chan: int) -> int:
    with h5py.File(path, "r") as f:
        fr = np.asarray(f["Header"]["freq_array"][()]).ravel()[chan]
    return int(np.argmin(np.abs(ms_freqs - fr)))


@pytest.fixture(scope="module")
def reference(small_cal_group, antpos_csv, tmp_path_factory):
    """The clean group converted by each writer."""
    out = {}
    for w in WRITERS:
        d = tmp_path_factory.mktemp(f"ref-{w}")
        res = convert_directory(small_cal_group.files[0].parent, _opts(d, antpos_csv, w))
        assert not isinstance(res[0], Exception), res
        out[w] = _read_ms(res[0].ms_path)
    return out


# ---------------------------------------------------------------- item 3: NaN / Inf visibilities

@pytest.mark.parametrize("writer", WRITERS)
def test_nonfinite_visibilities_flagged_zeroed_and_counted(small_cal_group, antpos_csv, tmp_path, writer, reference,
                                                           caplog):
    d = _copy_group(small_cal_group.files, tmp_path / "in")
    with h5py.File(_sb(d, 5), "r+") as f:  # a whole channel NaN (all records, both polarizations)
        v = f["Data"]["visdata"]
        nblts, npol = v.shape[0], v.shape[3]
        v[:, 0, 2, :] = np.complex64(complex(np.nan, 0))
    with h5py.File(_sb(d, 9), "r+") as f:  # Inf in the imaginary part of ten samples
        f["Data"]["visdata"][10:20, 0, 4, 1] = np.complex64(complex(1.0, np.inf))
    with h5py.File(_sb(d, 12), "r+") as f:  # a -Inf real part on a sample the correlator already flagged
        f["Data"]["visdata"][0, 0, 0, 0] = np.complex64(complex(-np.inf, 2.0))
        f["Data"]["flags"][0, 0, 0, 0] = True
    before = _digest(d)
    caplog.set_level(logging.WARNING, logger="dsa110_contimg.conversion.convert")
    [res] = convert_directory(d, _opts(tmp_path, antpos_csv, writer))
    assert not isinstance(res, Exception), res
    assert _digest(d) == before

    ms, ref = _read_ms(res.ms_path), reference[writer]
    assert np.all(np.isfinite(ms["DATA"])) and np.all(np.isfinite(ms["CORRECTED_DATA"]))
    c5, c9, c12 = (_ms_channel(ms["FREQ"], _sb(d, sb), ch) for sb, ch in ((5, 2), (9, 4), (12, 0)))
    assert np.all(ms["FLAG"][:, c5, :]) and np.all(ms["DATA"][:, c5, :] == 0)
    assert np.all(ms["CORRECTED_DATA"][:, c5, :] == 0)
    new = ms["FLAG"] & ~ref["FLAG"]
    assert new.sum() == nblts * npol + 11  # exactly the non-finite samples were flagged
    assert set(np.nonzero(new)[1]) == {c5, c9, c12}
    assert new[:, c9, 1].sum() == 10 and new[:, c9, 0].sum() == 0
    assert np.all(ms["DATA"][new] == 0)
    # every other sample is exactly what the clean group gives
    for col in ("TIME", "ANTENNA1", "ANTENNA2"):
        assert np.array_equal(ms[col], ref[col])
    assert np.array_equal(ms["DATA"][~new], ref["DATA"][~new])
    assert np.array_equal(ms["FLAG"][~new], ref["FLAG"][~new])
    # counted per subband and in total, and logged once with the count and the files
    want = {5: nblts * npol, 9: 10, 12: 1}
    assert res.nonfinite_samples == sum(want.values()) == new.sum()
    assert res.nonfinite_by_subband == {sb: want.get(sb, 0) for sb in range(16)}
    logged = [r.getMessage() for r in caplog.records if "NaN/Inf" in r.getMessage()]
    assert len(logged) == 1 and str(res.nonfinite_samples) in logged[0]
    assert all(_sb(d, sb).name in logged[0] for sb in want)


@pytest.mark.parametrize("writer", WRITERS)
def test_all_nonfinite_subband_is_bad_input(small_cal_group, antpos_csv, tmp_path, writer):
    d = _copy_group(small_cal_group.files, tmp_path / "in")
    victim = _sb(d, 7)
    with h5py.File(victim, "r+") as f:
        v = f["Data"]["visdata"]
        n = int(np.prod(v.shape))
        bad = np.full(v.shape, complex(np.nan, np.nan), dtype=np.complex64)
        bad[::2] = complex(np.inf, 0)
        v[...] = bad
    before = _digest(d)
    [err] = convert_directory(d, _opts(tmp_path, antpos_csv, writer))
    assert isinstance(err, ConversionInputError), err
    assert str(err) == f"{victim.name}: all {n} visibilities are NaN/Inf"
    assert err.files == [victim]
    assert _digest(d) == before
    assert not list((tmp_path / "out").glob("*.ms")) and not list((tmp_path / "stage").glob(PREFIX + "*"))


@pytest.mark.parametrize("writer", WRITERS)
def test_all_nonfinite_group_is_bad_input(small_cal_group, antpos_csv, tmp_path, writer):
    d = _copy_group(small_cal_group.files, tmp_path / "in")
    for p in d.iterdir():
        with h5py.File(p, "r+") as f:
            f["Data"]["visdata"][...] = np.complex64(complex(np.nan, 0))
    [err] = convert_directory(d, _opts(tmp_path, antpos_csv, writer))
    assert isinstance(err, ConversionInputError), err
    assert "visibilities are NaN/Inf" in str(err) and str(err).startswith(_sb(d, 0).name)
    assert not list((tmp_path / "out").glob("*.ms"))


# ---------------------------------------------------------------- item 4: malformed headers

@pytest.mark.parametrize("field, value, words", [
    ("Nblts", np.bytes_("abc"), ["Nblts", "dtype"]),
    ("Nfreqs", np.int64(-6), ["Nfreqs", "-6"]),
    ("time_array", None, ["time_array", "non-finite"]),
    ("freq_array", np.zeros((2, 2)), ["freq_array"]),
    ("antenna_positions", np.zeros(5), ["antenna_positions", "shape"]),
    ("Npols", np.float64(2.0), ["Npols", "dtype"]),
], ids=["Nblts-string", "Nfreqs-negative", "time-nan", "freq-shape", "antpos-shape", "Npols-float"])
def test_malformed_header_is_bad_input(small_cal_group, antpos_csv, tmp_path, field, value, words):
    d = _copy_group(small_cal_group.files, tmp_path / "in")
    victim = _sb(d, 3)
    with h5py.File(victim, "r+") as f:
        h = f["Header"]
        if value is None:  # NaN in one time stamp
            t = h[field][()]
            t[5] = np.nan
            value = t
        del h[field]
        h[field] = value
    before = _digest(d)
    [err] = convert_directory(d, _opts(tmp_path, antpos_csv, "direct-subband"))
    assert isinstance(err, ConversionInputError), err
    assert str(err).startswith(victim.name) and all(w in str(err) for w in words), str(err)
    assert err.files == [victim] and "\n" not in str(err)
    assert _digest(d) == before


def test_pyuvdata_reader_names_the_malformed_file(small_cal_group, tmp_path):
    """A field only pyuvdata reads (Ntimes) malformed: ConversionInputError naming the file, not a ValueError."""
    from dsa110_contimg.conversion.uvh5_io import read_subband_pyuvdata

    victim = shutil.copy2(small_cal_group.files[4], tmp_path / small_cal_group.files[4].name)
    with h5py.File(victim, "r+") as f:
        del f["Header"]["Ntimes"]
        f["Header"]["Ntimes"] = np.bytes_("six")
    with pytest.raises(ConversionInputError) as info:
        read_subband_pyuvdata(victim)
    assert str(info.value).startswith(Path(victim).name) and "pyuvdata" in str(info.value)
    assert info.value.files == [Path(victim)]


# ---------------------------------------------------------------- item 10: full / read-only disk

CONVERT_CHILD = r"""
import json, sys
from pathlib import Path
from dsa110_contimg.casa_env import prepare_casa
prepare_casa(sys.argv[6])
from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory
from dsa110_contimg.errors import classify
try:
    res = convert_directory(sys.argv[1], ConvertOptions(output_dir=Path(sys.argv[2]), stage_dir=Path(sys.argv[3]),
                            writer=sys.argv[4], antpos_csv=Path(sys.argv[5])))
    out = {"result": [str(r) for r in res]}
except Exception as exc:
    out = {"type": type(exc).__name__, "kind": classify(exc), "message": str(exc)}
print("RESULT " + json.dumps(out), flush=True)
"""


def _convert_in_child(indir, out, stage, writer, antpos_csv, state):
    """Convert in a child process: casacore aborts the whole process on a write error, so never in pytest's."""
    r = subprocess.run([sys.executable, "-c", CONVERT_CHILD, str(indir), str(out), str(stage), writer,
                        str(antpos_csv), str(state)], capture_output=True, text=True, timeout=300)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert r.returncode == 0 and lines, f"child died (rc {r.returncode}): {r.stderr[-1500:]}"
    return json.loads(lines[-1][len("RESULT "):])


def _nothing_left(*dirs):
    for d in dirs:
        if d.is_dir():
            assert not list(d.glob(PREFIX + "*")) and not list(d.glob("*.ms")) and not list(d.glob(".*tmp*")), \
                sorted(p.name for p in d.iterdir())


@pytest.mark.parametrize("writer", WRITERS)
def test_full_disk_is_one_line_environment_fault(small_cal_group, antpos_csv, tmp_path, session_state, writer,
                                                 mount_tmpfs):
    disk = mount_tmpfs(tmp_path / "disk", "5m")  # the MS needs ~10 MB
    indir = small_cal_group.files[0].parent
    before = _digest(indir)
    out = _convert_in_child(indir, disk / "out", disk / "stage", writer, antpos_csv, session_state)
    assert out.get("type") == "EnvironmentFault" and out["kind"] == ENVIRONMENT, out
    msg = out["message"]
    assert "\n" not in msg and len(msg) < 300
    assert "disk full" in msg and str(disk / "out") in msg and "MB free" in msg
    assert _digest(indir) == before
    _nothing_left(disk / "out", disk / "stage")


def test_output_full_stage_roomy(small_cal_group, antpos_csv, tmp_path, session_state, mount_tmpfs):
    """Stage folder fine, output on another, too small file system: refused before the copy, staging removed."""
    disk = mount_tmpfs(tmp_path / "disk", "5m")
    indir = small_cal_group.files[0].parent
    out = _convert_in_child(indir, disk, tmp_path / "stage", "direct-subband", antpos_csv, session_state)
    assert out.get("type") == "EnvironmentFault", out
    assert "disk full" in out["message"] and f"output folder {disk} " in out["message"]
    assert "\n" not in out["message"]
    _nothing_left(disk, tmp_path / "stage")


def test_read_only_output_is_environment_fault(small_cal_group, antpos_csv, tmp_path, session_state, mount_tmpfs):
    ro = mount_tmpfs(tmp_path / "ro", "50m", read_only=True)
    indir = small_cal_group.files[0].parent
    before = _digest(indir)
    out = _convert_in_child(indir, ro, tmp_path / "stage", "direct-subband", antpos_csv, session_state)
    assert out.get("type") == "EnvironmentFault" and out["kind"] == ENVIRONMENT, out
    assert "read-only" in out["message"] and str(ro) in out["message"] and "MB free" in out["message"]
    assert "\n" not in out["message"]
    assert _digest(indir) == before
    _nothing_left(tmp_path / "stage")


def test_room_reserved_by_a_running_conversion_counts(tmp_path):
    """Two conversions must not both count the same free space: a live staging reservation is not free."""
    from dsa110_contimg.conversion.staging import RESERVATION, StagingArea

    stage, out, gid = tmp_path / "stage", tmp_path / "out", "2025-10-02T00:12:00"
    out.mkdir()
    running = stage / f"{PREFIX}2025-10-02T001700-{os.getpid()}"  # a live process staging another group
    crashed = stage / f"{PREFIX}2025-10-02T002200-999999"  # its process is gone: reservation void
    for d in (running, crashed):
        d.mkdir(parents=True)
        (d / RESERVATION).write_text(str(shutil.disk_usage(tmp_path).free))
    with pytest.raises(EnvironmentFault) as info:
        StagingArea.choose(stage, out, 0, gid, ms_bytes=10 << 20)
    msg = str(info.value)
    assert "disk full" in msg and "reserved by running conversions" in msg and f"stage folder {stage} " in msg
    assert sorted(p.name for p in stage.iterdir()) == sorted([running.name, crashed.name])  # nothing created
    (running / RESERVATION).unlink()  # that conversion finished
    with StagingArea.choose(stage, out, 0, gid, ms_bytes=10 << 20) as area:
        assert area.role == "stage" and (area.path / RESERVATION).read_text() == str(10 << 20)
    assert not area.path.exists()


def test_disk_filling_during_commit(small_cal_group, antpos_csv, tmp_path, mount_tmpfs, monkeypatch):
    """Room at the start, but another writer fills the output disk before the MS is moved there."""
    from dsa110_contimg.conversion import staging

    disk = mount_tmpfs(tmp_path / "disk", "24m")
    real_commit = staging.StagingArea.commit

    def commit_after_fill(self, staged, final):
        with open(disk / "filler", "wb") as f:  # leave ~1 MB: the ~10 MB MS cannot be copied
            f.write(b"\0" * (shutil.disk_usage(disk).free - (1 << 20)))
        return real_commit(self, staged, final)

    monkeypatch.setattr(staging.StagingArea, "commit", commit_after_fill)
    indir = small_cal_group.files[0].parent
    before = _digest(indir)
    [group] = discover_groups(indir)
    with pytest.raises(EnvironmentFault) as info:
        convert_group(group, ConvertOptions(output_dir=disk, stage_dir=tmp_path / "stage", antpos_csv=antpos_csv,
                                            writer="direct-subband"))
    msg = str(info.value)
    assert classify(info.value) == ENVIRONMENT
    assert "\n" not in msg and len(msg) < 300 and "disk full" in msg and f"output folder {disk} " in msg
    assert _digest(indir) == before
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no partial copy left behind
    _nothing_left(tmp_path / "stage")
    os.remove(disk / "filler")
