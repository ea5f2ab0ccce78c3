"""One error base and one handler: every exception the package defines is a ContimgError, and a pipeline
error (or an imager's failure) ends ``contimg`` with one line and exit code 1; ``-v`` shows the traceback."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import dsa110_contimg
from dsa110_contimg import errors
from dsa110_contimg.cli import main


def _package_exceptions() -> list[type]:
    found = []
    for info in pkgutil.walk_packages(dsa110_contimg.__path__, "dsa110_contimg."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def test_every_exception_class_derives_from_contimg_error():
    classes = _package_exceptions()
    assert len(classes) >= 20
    outside = [f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, errors.ContimgError)]
    assert outside == []


def test_builtin_bases_and_kinds_are_kept():
    from dsa110_contimg.calibration.fieldsel import FieldSelectionError
    from dsa110_contimg.calibration.solve import CalibrationError
    from dsa110_contimg.catalog.errors import CatalogError
    from dsa110_contimg.config import ConfigError
    from dsa110_contimg.db.queue_schema import QueueDBError
    from dsa110_contimg.simulate.sky import SkyModelError
    from dsa110_contimg.telescope import AntennaTableError

    for cls in (CatalogError, ConfigError, AntennaTableError, FieldSelectionError, QueueDBError, SkyModelError):
        assert issubclass(cls, ValueError), cls
    assert issubclass(CalibrationError, RuntimeError)
    # a malformed sources CSV is the (simulator's) input itself; the others are configuration, options or the
    # master catalog, not a group's files: the daemon must not quarantine a group's data for them
    assert errors.classify(SkyModelError("bad.csv: no ra_deg column")) == errors.BAD_INPUT
    for cls in (CatalogError, ConfigError, AntennaTableError, FieldSelectionError, CalibrationError):
        assert errors.classify(cls("x")) == errors.UNKNOWN, cls


def test_messages_are_one_line_and_survive_pickling():
    import pickle

    from dsa110_contimg.calibration.apply import NoValidCalibrationError

    exc = pickle.loads(pickle.dumps(NoValidCalibrationError("x.ms: no set\nvalid at MJD 1")))
    assert type(exc) is NoValidCalibrationError and str(exc) == "x.ms: no set; valid at MJD 1"


def test_database_unavailable_is_still_an_http_503():
    from fastapi import HTTPException

    from dsa110_contimg.api.context import DatabaseUnavailable

    exc = DatabaseUnavailable("queue", "/x/q.sqlite3", ValueError("file is not a database"))
    assert isinstance(exc, HTTPException) and isinstance(exc, errors.ContimgError)
    assert exc.status_code == 503 and "/x/q.sqlite3" in exc.detail


# ---------------------------------------------------------------------------- the handler


@pytest.fixture
def fake_image(monkeypatch, tmp_path):
    """``contimg image`` whose imaging step raises what the test sets."""
    import dsa110_contimg.pipeline.image_stage as stage

    box = {}

    def fail(*a, **k):
        raise box["exc"]

    monkeypatch.setattr(stage, "image_and_record", fail)
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path / "state"))
    from dsa110_contimg.config import reset_settings_cache

    reset_settings_cache()
    ms = tmp_path / "g.ms"
    ms.mkdir()
    yield box, ms
    reset_settings_cache()


@pytest.mark.parametrize("make", [
    lambda: __import__("dsa110_contimg.imaging.wsclean", fromlist=["x"]).WSCleanError(
        "g.ms: wsclean failed (exit 1): Error opening MS\nsecond line"),
    lambda: RuntimeError("tclean wrote no image for g.ms (see the CASA log)"),
    lambda: errors.EnvironmentFault("disk full: /products has 1 MiB free"),
], ids=["wsclean", "tclean", "environment"])
def test_imager_failure_is_one_line(fake_image, make):
    box, ms = fake_image
    box["exc"] = make()
    r = CliRunner().invoke(main, ["image", str(ms)])
    assert r.exit_code == 1
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in r.output, r.output
    r = CliRunner().invoke(main, ["-v", "image", str(ms)])
    assert r.exit_code == 1 and r.exception is box["exc"]  # -v: the exception itself, with its traceback


def test_any_pipeline_error_is_one_line(monkeypatch, tmp_path):
    import dsa110_contimg.cli.config as config_cmd

    def bad(*a, **k):
        raise errors.BadInputError("a.hdf5: not an HDF5 file\n(truncated)", files=["a.hdf5"])

    monkeypatch.setattr(config_cmd, "settings", bad)
    r = CliRunner().invoke(main, ["config"])
    assert r.exit_code == 1 and r.output.strip() == "Error: a.hdf5: not an HDF5 file; (truncated)"
    r = CliRunner().invoke(main, ["-q", "config"])
    assert r.exit_code == 1
    r = CliRunner().invoke(main, ["-v", "-q", "config"])
    assert r.exit_code == 2


def test_real_failure_of_contimg_image_ends_with_one_line(tmp_path):
    """Not a Measurement Set: casacore's RuntimeError ends the command with one line, no traceback."""
    bogus = tmp_path / "bogus.ms"
    bogus.mkdir()
    env = dict(os.environ, PIPELINE_STATE_DIR=str(tmp_path / "state"))
    exe = Path(sys.executable).with_name("contimg")
    r = subprocess.run([str(exe), "image", str(bogus)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert lines and lines[-1].startswith("Error: ") and "bogus.ms" in lines[-1], r.stderr
