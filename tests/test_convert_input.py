"""Conversion of bad input, partial groups, grouping and staging cleanup."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
from casacore.tables import table

from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory
from dsa110_contimg.conversion.grouping import discover_groups, parse_subband_name
from dsa110_contimg.conversion.staging import PREFIX, clean_orphan_staging


def _copy_group(src_files, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src_files:
        shutil.copy2(f, dst / f.name)
    return dst


def _listing(d: Path):
    return sorted((p.name, p.stat().st_size) for p in d.iterdir() if p.is_file())


def _convert_err(indir, tmp_path, antpos_csv, **kw):
    before = _listing(indir)
    res = convert_directory(indir, ConvertOptions(output_dir=tmp_path / "out", antpos_csv=antpos_csv,
                                                  stage_dir=tmp_path / "stage", **kw))
    assert _listing(indir) == before  # no input file moved or deleted
    assert len(res) == 1
    err = res[0]
    assert isinstance(err, Exception), err
    assert "\n" not in str(err)
    assert not list((tmp_path / "stage").glob(PREFIX + "*"))
    return str(err)


def test_truncated_file(small_cal_group, tmp_path, antpos_csv):
    d = _copy_group(small_cal_group.files, tmp_path / "in")
    victim = sorted(d.glob("*_sb05.hdf5"))[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    msg = _convert_err(d, tmp_path, antpos_csv)
    assert victim.name in msg and ("truncated" in msg or "cannot read" in msg)


def test_non_hdf5_file(small_cal_group, tmp_path, antpos_csv):
    d = _copy_group(small_cal_group.files, tmp_path / "in")
    victim = sorted(d.glob("*_sb07.hdf5"))[0]
    victim.write_text("this is not an HDF5 file\n")
    msg = _convert_err(d, tmp_path, antpos_csv)
    assert victim.name in msg and "HDF5" in msg


def test_mismatched_headers(small_cal_group, tmp_path, antpos_csv):
    d = _copy_group(small_cal_group.files, tmp_path / "in")
    victim = sorted(d.glob("*_sb09.hdf5"))[0]
    with h5py.File(victim, "r+") as f:
        f["Header"]["extra_keywords"]["phase_center_dec"][()] = 0.5
    msg = _convert_err(d, tmp_path, antpos_csv)
    assert victim.name in msg and "declination" in msg


def test_missing_subband(small_cal_group, tmp_path, antpos_csv):
    d = _copy_group(small_cal_group.files[:11] + small_cal_group.files[12:], tmp_path / "in")
    msg = _convert_err(d, tmp_path, antpos_csv)
    assert "sb11" in msg and "missing" in msg and small_cal_group.files[0].name in msg


def test_partial_group_keeps_flagged_gap(small_cal_group, tmp_path, antpos_csv):
    d = _copy_group(small_cal_group.files[:11] + small_cal_group.files[12:], tmp_path / "in")
    res = convert_directory(d, ConvertOptions(output_dir=tmp_path / "out", antpos_csv=antpos_csv,
                                              stage_dir=tmp_path / "stage", allow_partial=True))
    r = res[0]
    assert r.missing_subbands == [11] and r.writer == "direct-subband"
    with table(str(r.ms_path / "SPECTRAL_WINDOW"), ack=False) as t:
        freqs = t.getcell("CHAN_FREQ", 0)
    with table(str(r.ms_path), ack=False) as t:
        flags = t.getcol("FLAG")
    assert freqs.size == 96 and np.allclose(np.diff(freqs), freqs[1] - freqs[0])  # no closed-up gap
    flagged = flags.all(axis=(0, 2))
    # sb11 is the 5th subband from the bottom in ascending order: channels 24..29
    assert list(np.where(flagged)[0]) == list(range(24, 30))


def test_grouping_with_jitter_incomplete_and_duplicates(tmp_path):
    names = ["2025-10-02T00:12:00_sb00.hdf5", "2025-10-02T00:12:03_sb01.hdf5", "2025-10-02T00:11:58_sb02.hdf5",
             "2025-10-02T00:12:01_sb02.hdf5", "2025-10-02T00:17:09_sb00.hdf5", "2025-10-02T00:17:10_sb01.hdf5",
             "2025-10-02T00:22:20_sb00_incomplete.hdf5", "notes.txt"]
    for n in names:
        (tmp_path / n).write_text("x")
    assert parse_subband_name(tmp_path / names[6]) is None
    groups = discover_groups(tmp_path, tolerance_s=30)
    assert [g.group_id for g in groups] == ["2025-10-02T00:11:58", "2025-10-02T00:17:09"]
    assert sorted(groups[0].files) == [0, 1, 2] and len(groups[0].duplicates) == 1
    assert groups[1].missing(3) == [2]
    assert [g.group_id for g in discover_groups(tmp_path, start="2025-10-02T00:15:00")] == ["2025-10-02T00:17:09"]


def test_orphan_staging_removed(tmp_path):
    orphan = tmp_path / f"{PREFIX}2025-10-02T001200-999999"
    orphan.mkdir()
    (orphan / "x").write_text("x")
    mine = tmp_path / f"{PREFIX}2025-10-02T001200-{os.getpid()}"
    mine.mkdir()
    removed = clean_orphan_staging([tmp_path])
    assert removed == [orphan] and not orphan.exists() and mine.exists()


SIGTERM_CHILD = r"""
import sys, time
from pathlib import Path
from dsa110_contimg.casa_env import prepare_casa
prepare_casa(sys.argv[4])
import dsa110_contimg.conversion.ms_writer as mw
original = mw.create_ms
def slow_create(*a, **k):
    t = original(*a, **k)
    print("WRITING", flush=True)
    time.sleep(60)   # stand-in for a long write of a full-size group
    return t
mw.create_ms = slow_create
from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory
convert_directory(sys.argv[1], ConvertOptions(output_dir=Path(sys.argv[2]), stage_dir=Path(sys.argv[3]),
                  writer="direct-subband"))
"""


def test_sigterm_mid_write_leaves_no_staging(small_cal_group, tmp_path, session_state):
    stage, out = tmp_path / "stage", tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-c", SIGTERM_CHILD, str(small_cal_group.files[0].parent), str(out),
                          str(stage), str(session_state)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    line = ""
    while time.time() < deadline and "WRITING" not in line:
        line = p.stdout.readline()
    assert "WRITING" in line
    assert list(stage.glob(PREFIX + "*"))  # mid-write: the staging MS exists
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    assert p.returncode != 0
    assert not list(stage.glob(PREFIX + "*"))
    assert not list(out.glob("*.ms")) and not list(out.glob(".*tmp*"))


def test_cli_convert_reports_and_exits(small_cal_group, tmp_path, session_state):
    exe = Path(sys.executable).with_name("contimg")
    d = _copy_group(small_cal_group.files[:3] + small_cal_group.files[4:], tmp_path / "in")
    env = dict(os.environ, PIPELINE_STATE_DIR=str(session_state))
    r = subprocess.run([str(exe), "convert", str(d), str(tmp_path / "out"), "--dry-run"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 1 and "sb03" in r.stderr and "missing" in r.stderr
    r = subprocess.run([str(exe), "convert", str(d), str(tmp_path / "out"), "--allow-partial", "--dry-run"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "dry-run" in r.stdout and "missing [3]" in r.stdout
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.ms"))
    r = subprocess.run([str(exe), "convert", str(d), str(tmp_path / "out"), "--allow-partial"], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "out").glob("*.ms"))) == 1
    r = subprocess.run([str(exe), "convert", str(d), str(tmp_path / "out"), "--allow-partial", "--skip-existing"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "skipped" in r.stdout
