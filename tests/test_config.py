"""Settings: defaults, environment overrides, provenance and errors naming the variable."""

import subprocess
import sys
from pathlib import Path

import pytest

from dsa110_contimg.config import ConfigError, load_settings


def test_defaults_inside_state_dir(tmp_path):
    s = load_settings({"PIPELINE_STATE_DIR": str(tmp_path / "st")})
    assert s.telescope_name == "OVRO_DSA"
    assert s.expected_subbands == 16
    assert s.queue_db == tmp_path / "st" / "ingest_queue.sqlite3"
    assert s.products_db.parent == tmp_path / "st"
    assert s.cal_registry_db.parent == tmp_path / "st"
    assert s.antpos_csv is None
    assert s.sources["telescope_name"] == "default"
    assert s.sources["state_dir"] == "env:PIPELINE_STATE_DIR"
    assert (tmp_path / "st").is_dir()


def test_environment_overrides(tmp_path, antpos_csv):
    env = {
        "PIPELINE_STATE_DIR": str(tmp_path),
        "PIPELINE_TELESCOPE_NAME": "DSA_TEST",
        "PIPELINE_EXPECTED_SUBBANDS": "8",
        "PIPELINE_QUEUE_DB": str(tmp_path / "q" / "queue.db"),
        "PIPELINE_STAGE_DIR": str(tmp_path / "stage"),
        "PIPELINE_ANTPOS_CSV": str(antpos_csv),
    }
    s = load_settings(env)
    assert s.telescope_name == "DSA_TEST"
    assert s.expected_subbands == 8
    assert s.queue_db == tmp_path / "q" / "queue.db"
    assert s.stage_dir == tmp_path / "stage" and s.stage_dir.is_dir()
    assert s.antpos_csv == antpos_csv
    rows = {r[0]: r for r in s.as_rows()}
    assert rows["PIPELINE_EXPECTED_SUBBANDS"][1:] == ("8", "env:PIPELINE_EXPECTED_SUBBANDS")


@pytest.mark.parametrize("value", ["sixteen", "3.5", "0", "40"])
def test_bad_subband_count_names_variable(tmp_path, value):
    with pytest.raises(ConfigError, match="PIPELINE_EXPECTED_SUBBANDS"):
        load_settings({"PIPELINE_STATE_DIR": str(tmp_path), "PIPELINE_EXPECTED_SUBBANDS": value})


@pytest.mark.parametrize("value", ["soon", "-1", "7200"])
def test_bad_api_cache_names_variable(tmp_path, value):
    with pytest.raises(ConfigError, match="PIPELINE_API_CACHE_S"):
        load_settings({"PIPELINE_STATE_DIR": str(tmp_path), "PIPELINE_API_CACHE_S": value})
    assert load_settings({"PIPELINE_STATE_DIR": str(tmp_path), "PIPELINE_API_CACHE_S": "0"}).api_cache_s == 0.0


def test_uncreatable_directory_names_variable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="PIPELINE_OUTPUT_DIR"):
        load_settings({"PIPELINE_STATE_DIR": str(tmp_path), "PIPELINE_OUTPUT_DIR": str(blocker / "sub")})


def test_missing_antpos_csv_names_variable(tmp_path):
    with pytest.raises(ConfigError, match="PIPELINE_ANTPOS_CSV"):
        load_settings({"PIPELINE_STATE_DIR": str(tmp_path), "PIPELINE_ANTPOS_CSV": str(tmp_path / "nope.csv")})


def _contimg(*args, env=None):
    exe = Path(sys.executable).with_name("contimg")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=60)


def test_cli_config_prints_values_and_sources(tmp_path):
    import os

    env = dict(os.environ, PIPELINE_STATE_DIR=str(tmp_path), PIPELINE_EXPECTED_SUBBANDS="12",
               COLUMNS="200")
    r = _contimg("config", env=env)
    assert r.returncode == 0, r.stderr
    assert "PIPELINE_EXPECTED_SUBBANDS" in r.stdout and "12" in r.stdout
    assert "env:PIPELINE_EXPECTED_SUBBANDS" in r.stdout


def test_cli_bad_value_fails_at_start(tmp_path):
    import os

    env = dict(os.environ, PIPELINE_STATE_DIR=str(tmp_path), PIPELINE_EXPECTED_SUBBANDS="many")
    r = _contimg("config", env=env)
    assert r.returncode != 0
    assert "PIPELINE_EXPECTED_SUBBANDS" in r.stderr


def test_cli_help_is_fast_and_light():
    code = ("import time, sys; t = time.perf_counter(); import dsa110_contimg.cli as c; "
            "dt = time.perf_counter() - t; heavy = [m for m in ('casatools', 'casatasks', 'pyuvdata', 'casacore') "
            "if m in sys.modules]; print(dt, heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    dt, heavy = r.stdout.split(" ", 1)
    assert heavy.strip() == "[]"
    assert float(dt) < 0.5
    r = _contimg("--help")
    assert r.returncode == 0 and "simulate" in r.stdout
