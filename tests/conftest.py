"""Shared fixtures: the real station CSV from ../shared, a session state folder, CASA offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ANTPOS_CSV = (REPO.parent / "shared" / "data" / "DSA110_Station_Coordinates.csv").resolve()


@pytest.fixture(scope="session")
def antpos_csv() -> Path:
    """The real DSA-110 station coordinates (read from ../shared, never copied)."""
    assert ANTPOS_CSV.is_file(), f"missing {ANTPOS_CSV}"
    return ANTPOS_CSV


@pytest.fixture(scope="session", autouse=True)
def session_state(tmp_path_factory) -> Path:
    """A state folder for the whole session; CASA is prepared against it before any import."""
    state = tmp_path_factory.mktemp("state")
    os.environ["PIPELINE_STATE_DIR"] = str(state)
    os.environ["PIPELINE_STAGE_DIR"] = str(state / "stage")
    os.environ["PIPELINE_ANTPOS_CSV"] = str(ANTPOS_CSV)
    from dsa110_contimg.casa_env import prepare_casa
    from dsa110_contimg.config import reset_settings_cache

    reset_settings_cache()
    prepare_casa(state)
    return state


@pytest.fixture(scope="session")
def small_cal_group(tmp_path_factory, antpos_csv):
    """A small noise-free, unit-gain group with a calibrator at the meridian mid-group and one offset source."""
    from dsa110_contimg.simulate.core import SimulateOptions, simulate
    from dsa110_contimg.simulate.sky import SkySource, write_sources_csv

    out = tmp_path_factory.mktemp("sim_cal")
    src_csv = out / "extra.csv"
    # 0834+555 transits mid-group; add a 2 Jy source 0.6 deg away in both coordinates
    write_sources_csv([SkySource(129.5, 55.0, 2.0, -0.7, "offset")], src_csv)
    res = simulate(SimulateOptions(output_dir=out / "incoming", preset="small", calibrator="0834+555",
                                   sources_csv=src_csv, noise=False, gains=False, antpos_csv=antpos_csv, seed=3))
    return res.groups[0]



@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory, antpos_csv):
    """Databases and products of a real streaming run on three small groups (see ``api_helpers``)."""
    from api_helpers import run_pipeline

    return run_pipeline(tmp_path_factory.mktemp("api_run"), antpos_csv)


@pytest.fixture
def mount_tmpfs():
    """Factory ``mount(path, size, read_only=False)``: a small tmpfs (e.g. a full disk) at ``path``; root only
    (skips otherwise); unmounted at teardown."""
    import shutil
    import subprocess

    mounted = []

    def mount(path: Path, size: str, read_only: bool = False) -> Path:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting a small tmpfs needs root and the mount command")
        path.mkdir(parents=True, exist_ok=True)
        opts = f"size={size}" + (",ro" if read_only else "")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounted.append(path)
        return path

    yield mount
    for p in reversed(mounted):
        subprocess.run(["umount", "-l", str(p)], capture_output=True)
