"""Measures data: a current TAI_UTC from astropy-iers-data, so casacore logs no 'TAI_UTC seems out-of-date'.

casacore's MeasTable::dUTC logs that SEVERE message when the VS_DATE keyword of
geodetic/TAI_UTC is more than 180 days before the clock; python-casacore's
bundled table is frozen at its release.
"""

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dsa110_contimg import casa_env
from dsa110_contimg.casa_env import casacore_data_dir, prepare_casa

WARNING = "TAI_UTC seems out-of-date"
CASA_ENV_VARS = ("CASASITECONFIG", "AIPSPATH", "CASACORE_DATADIR", "CASARCFILES")


def _rows(path):
    from casacore.tables import table

    with table(str(path), ack=False) as t:
        return [tuple(float(t.getcell(c, i)) for c in ("MJD", "dUTC", "Offset", "Multiplier"))
                for i in range(t.nrows())]


def _fresh_or_skip():
    leap = casa_env.read_leap_seconds()
    if leap is None:
        pytest.skip("astropy-iers-data is not installed")
    if (dt.date.today() - leap.vs_date).days > casa_env.STALE_AFTER_DAYS:
        pytest.skip(f"astropy-iers-data {leap.package_version} is stale too: rerun scripts/setup.sh")
    return leap


@pytest.fixture
def fresh_cache():
    casa_env.fresh_measures_dir.cache_clear()
    yield
    casa_env.fresh_measures_dir.cache_clear()


def test_measures_folder_has_a_current_tai_utc():
    leap = _fresh_or_skip()
    bundled = casa_env.bundled_casacore_data_dir()
    measures = casacore_data_dir()
    assert measures != bundled
    assert casa_env.table_vs_date(measures / "geodetic" / "TAI_UTC") == leap.vs_date
    assert (dt.date.today() - leap.vs_date).days <= 180
    # every other table is python-casacore's own
    for sub in ("geodetic", "ephemerides"):
        names = {p.name for p in (bundled / sub).iterdir()} - {"TAI_UTC", "TAI_UTC.old"}
        for name in names:
            assert (measures / sub / name).resolve() == (bundled / sub / name).resolve()
    # the same leap seconds as the bundled table (none announced since 2017), pre-1972 drift rows kept
    new, old = _rows(measures / "geodetic" / "TAI_UTC"), _rows(bundled / "geodetic" / "TAI_UTC")
    assert new[: len(old)] == old
    assert new[-1][:2] == (57754.0, 37.0)


def test_vs_date_is_the_fetch_date_capped_at_expiry():
    def leap(fetched, expires=dt.date(2027, 6, 28), bulletin="Updated through IERS Bulletin 72 issued in July 2026"):
        return casa_env.LeapSeconds(Path("x"), (), expires, bulletin, "0", fetched)

    assert leap(dt.date(2026, 11, 2)).vs_date == dt.date(2026, 11, 2)
    assert leap(dt.date(2027, 3, 1)).vs_date == dt.date(2027, 6, 28) - dt.timedelta(days=180)
    assert leap(None).vs_date == dt.date(2026, 7, 1)
    assert leap(None, bulletin="").vs_date is None


def test_falls_back_to_bundled_data(monkeypatch, fresh_cache):
    bundled = casa_env.bundled_casacore_data_dir()
    monkeypatch.setattr(casa_env, "read_leap_seconds", lambda: None)
    assert casacore_data_dir() == bundled
    casa_env.fresh_measures_dir.cache_clear()
    real = casa_env.LeapSeconds(Path("x"), ((41317.0, 10.0),) * 30, None, "", "0", dt.date(2000, 1, 1))
    monkeypatch.setattr(casa_env, "read_leap_seconds", lambda: real)  # older than the bundled table
    assert casacore_data_dir() == bundled


def test_built_once_atomically_in_a_writable_root(tmp_path, monkeypatch, fresh_cache):
    _fresh_or_skip()
    roots = [tmp_path / "readonly", tmp_path / "cache"]
    (tmp_path / "readonly").mkdir()
    (tmp_path / "readonly").chmod(0o500)
    if os.access(tmp_path / "readonly", os.W_OK):  # root ignores modes: use a file where a folder is needed
        (tmp_path / "readonly").chmod(0o700)
        (tmp_path / "readonly").rmdir()
        (tmp_path / "readonly").write_text("not a folder")
    monkeypatch.setattr(casa_env, "_cache_roots", lambda: roots)
    first = casa_env.fresh_measures_dir()
    assert first is not None and first.parent == tmp_path / "cache"
    casa_env.fresh_measures_dir.cache_clear()
    assert casa_env.fresh_measures_dir() == first
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]  # no temporary folder left


PROBE = textwrap.dedent("""
    import sys
    from casacore.tables import table  # python-casacore first, as the converter's imports do
    from dsa110_contimg.casa_env import prepare_casa
    prepare_casa(sys.argv[1])
    import casatasks, casatools
    me = casatools.measures()
    tai = me.measure(me.epoch("utc", "today"), "tai")["m0"]["value"]
    from casacore.measures import measures
    dm = measures()
    tai2 = dm.measure(dm.epoch("utc", "today"), "tai")["m0"]["value"]
    leap = dm.measure(dm.epoch("utc", "2020-01-01T00:00:00"), "tai")["m0"]["value"] - 58849.0
    casatasks.casalog.post("probe done")
    print("OK", round(leap * 86400, 3), abs(tai - tai2) < 1e-6)
""")

PROBE_CASACORE_LATE = textwrap.dedent("""
    import sys
    from dsa110_contimg.casa_env import prepare_casa
    prepare_casa(sys.argv[1])
    from casacore.measures import measures
    dm = measures()
    print("OK", dm.measure(dm.epoch("utc", "today"), "tai")["m0"]["value"] > 0)
""")


def _run(script, state):
    env = {k: v for k, v in os.environ.items() if k not in CASA_ENV_VARS}
    return subprocess.run([sys.executable, "-c", script, str(state)], capture_output=True, text=True, timeout=300,
                          env=env)


def _skip_if_only_stale_data_exist(output: str) -> None:
    """Where even the newest data installed are over 180 days old, the warning is right: skip, saying so."""
    if WARNING in output and hasattr(casa_env, "read_leap_seconds"):
        _fresh_or_skip()


def test_no_leap_second_severe_from_casa_or_python_casacore(tmp_path):
    r = _run(PROBE, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "OK 37.0 True"
    log = (tmp_path / "casa" / "casa.log").read_text()
    assert "probe done" in log
    _skip_if_only_stale_data_exist(log + r.stderr)
    assert WARNING not in log
    assert WARNING not in r.stderr, r.stderr


def test_python_casacore_imported_after_prepare_casa(tmp_path):
    r = _run(PROBE_CASACORE_LATE, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "OK True"
    _skip_if_only_stale_data_exist(r.stderr)
    assert WARNING not in r.stderr, r.stderr


def test_site_config_points_casa_at_the_measures_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(casa_env, "_PREPARED", casa_env._PREPARED)  # restored afterwards: the session's config
    for var in CASA_ENV_VARS:
        if var in os.environ:
            monkeypatch.setenv(var, os.environ[var])
    prepare_casa(tmp_path)
    text = (tmp_path / "casa" / "config.py").read_text()
    assert f"measurespath = {str(casacore_data_dir())!r}" in text
    assert f"datapath = [{str(casacore_data_dir())!r}" in text
    assert os.environ["CASACORE_DATADIR"] == str(casacore_data_dir())
