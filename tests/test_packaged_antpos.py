"""The DSA-110 station table ships with the package and is the default; ``PIPELINE_ANTPOS_CSV`` still overrides it.

Every command runs as a subprocess in an empty folder (cwd and HOME in tmp) with none of the pipeline's
variables in its environment, as for a user who has just installed the package.  The only variable set is
``PIPELINE_STAGE_DIR``, so that conversion does not stage in the machine-wide ``/dev/shm/dsa110-contimg``.
"""

from __future__ import annotations

import csv
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from dsa110_contimg import telescope as tel

CONTIMG = Path(sys.executable).with_name("contimg")
REPO = Path(__file__).resolve().parents[1]
# what the test session (conftest, prepare_casa) put into os.environ; a fresh shell has none of it
_SESSION_VARS = ("CASASITECONFIG", "CASACORE_DATADIR", "AIPSPATH")


def _fresh_env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIPELINE_") and k != "CAL_REGISTRY_DB" and k not in _SESSION_VARS}
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), PIPELINE_STAGE_DIR=str(root / "stage"), COLUMNS="400", **extra)
    return env


def _contimg(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([str(CONTIMG), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"contimg {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


def _simulate(cwd: Path, env: dict[str, str]) -> list[Path]:
    _contimg(cwd, env, "simulate", "--preset", "small", "-o", "in", "--n-sources", "2", "--seed", "3")
    files = sorted((cwd / "in").glob("*_sb??.hdf5"))
    assert len(files) == 16
    return files


def _header_table(path: Path) -> tel.AntennaTable:
    with h5py.File(path, "r") as f:
        h = f["Header"]
        site = tel.geodetic_to_ecef(h["latitude"][()], h["longitude"][()], h["altitude"][()])
        return tel.antenna_table_from_header(h["antenna_names"][()], h["antenna_numbers"][()],
                                             h["antenna_positions"][()], site)


def _truth_antpos(cwd: Path) -> Path:
    [truth] = (cwd / "in").glob("*_truth.json")
    return Path(json.loads(truth.read_text())["antpos_source"])


def _ms_positions(ms: Path) -> tuple[list[str], np.ndarray]:
    from casacore.tables import table

    with table(str(ms / "ANTENNA"), ack=False) as t:
        return list(t.getcol("NAME")), t.getcol("POSITION")


def _assert_same_positions(names, ecef, expected: tel.AntennaTable, atol_m: float = 1e-6) -> None:
    assert tuple(names) == expected.names
    np.testing.assert_allclose(ecef, expected.ecef, rtol=0, atol=atol_m)


def _shifted_copy(src: Path, dst: Path, dlat_deg: float = 1e-4) -> Path:
    """A copy of the station CSV with every latitude moved by ``dlat_deg`` (~11 m north)."""
    rows = list(csv.reader(src.open(newline="")))
    header = next(i for i, r in enumerate(rows) if "Latitude" in r)
    i_lat = rows[header].index("Latitude")
    for r in rows[header + 1:]:
        if len(r) > i_lat and r[i_lat].strip():
            r[i_lat] = f"{float(r[i_lat]) + dlat_deg:.7f}"
    with dst.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return dst


@pytest.fixture(scope="module")
def no_env_run(tmp_path_factory):
    """``contimg simulate --preset small`` then ``contimg convert`` in an empty folder, no PIPELINE_ variable."""
    root = tmp_path_factory.mktemp("no_env")
    cwd = root / "empty"
    cwd.mkdir()
    env = _fresh_env(root)
    files = _simulate(cwd, env)
    _contimg(cwd, env, "convert", "in", "ms")
    [ms] = (cwd / "ms").glob("*.ms")
    return cwd, env, files, ms


def test_packaged_table_is_the_real_one(antpos_csv):
    path = tel.packaged_station_csv()
    assert path.name == tel.STATION_CSV_NAME and path.parent.name == "data"
    assert filecmp.cmp(path, antpos_csv, shallow=False)
    ants = tel.read_station_csv(path)
    assert len(ants) == tel.N_STATIONS == 117
    assert tel.resolve_station_csv(None) == path
    assert tel.resolve_station_csv(antpos_csv) == antpos_csv


def test_simulate_and_convert_without_env_use_packaged_table(no_env_run, antpos_csv):
    cwd, _, files, ms = no_env_run
    real = tel.read_station_csv(antpos_csv)
    for f in (files[0], files[-1]):
        hdr = _header_table(f)
        _assert_same_positions(hdr.names, hdr.ecef, real)
    used = _truth_antpos(cwd)
    assert used == tel.packaged_station_csv() and filecmp.cmp(used, antpos_csv, shallow=False)
    # the converter reads the header positions (PIPELINE_ANTPOS_CSV unset): the MS has the real stations
    names, pos = _ms_positions(ms)
    _assert_same_positions(names, pos, real)
    assert (cwd / "state").is_dir()  # state defaulted to ./state of the empty folder


def test_config_reports_the_default(no_env_run):
    cwd, env, _, _ = no_env_run
    out = _contimg(cwd, env, "config").stdout
    [row] = [line for line in out.splitlines() if "PIPELINE_ANTPOS_CSV" in line]
    assert str(tel.packaged_station_csv()) in row and "UVH5 header" in row
    assert re.search(r"\bdefault\b", row)


def test_env_overrides_simulator_and_converter(no_env_run, tmp_path, antpos_csv):
    cwd0, _, _, _ = no_env_run
    shifted = _shifted_copy(antpos_csv, tmp_path / "shifted.csv")
    moved = tel.read_station_csv(shifted)
    real = tel.read_station_csv(antpos_csv)
    assert np.all(np.linalg.norm(moved.ecef - real.ecef, axis=1) > 10)
    env = _fresh_env(tmp_path, PIPELINE_ANTPOS_CSV=str(shifted))
    # simulator: the override's positions are written into the files
    cwd = tmp_path / "sim"
    cwd.mkdir()
    files = _simulate(cwd, env)
    hdr = _header_table(files[7])
    _assert_same_positions(hdr.names, hdr.ecef, moved)
    assert _truth_antpos(cwd) == shifted
    out = _contimg(cwd, env, "config").stdout
    [row] = [line for line in out.splitlines() if "PIPELINE_ANTPOS_CSV" in line]
    assert str(shifted) in row and "env:PIPELINE_ANTPOS_CSV" in row
    # converter: the override wins over the header positions of files simulated with the packaged table
    _contimg(cwd, env, "convert", str(cwd0 / "in"), "ms_override")
    [ms] = (cwd / "ms_override").glob("*.ms")
    names, pos = _ms_positions(ms)
    _assert_same_positions(names, pos, moved)


_OFFLINE = re.compile(r"No matching distribution|Could not find a version|connection|Network is unreachable|"
                      r"Temporary failure in name resolution", re.I)


def test_wheel_ships_and_finds_the_table(tmp_path, antpos_csv):
    """A non-editable wheel install carries the CSV and ``packaged_station_csv`` finds it there."""
    src = tmp_path / "src_copy"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                        str(src)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0 and _OFFLINE.search(r.stdout + r.stderr):
        pytest.skip(f"cannot fetch the build backend: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stdout + r.stderr
    [whl] = (tmp_path / "dist").glob("*.whl")
    assert f"dsa110_contimg/data/{tel.STATION_CSV_NAME}" in zipfile.ZipFile(whl).namelist()
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(target), str(whl)], check=True, capture_output=True, timeout=300)
    code = ("from dsa110_contimg import telescope as t; p = t.packaged_station_csv(); "
            "print(t.__file__); print(p); print(len(t.read_station_csv(p)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=dict(_fresh_env(tmp_path), PYTHONPATH=str(target)), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    module, path, n = r.stdout.split()
    assert Path(module).is_relative_to(target) and Path(path).is_relative_to(target) and n == "117"
    assert filecmp.cmp(path, antpos_csv, shallow=False)
