"""One logging set-up (``contimg -q`` / default / ``-v``) and FITS headers astropy has nothing to fix."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from dsa110_contimg import logs


@pytest.fixture
def configured():
    """Configure logging into a buffer; restore the loggers afterwards."""
    touched = ["", logs.PACKAGE, *logs.LIBRARY_LOGGERS, *logs.DETAIL_LOGGERS, "distributed.worker", "py.warnings"]
    saved = {n: (logging.getLogger(n or None).level, logging.getLogger(n or None).propagate) for n in touched
             if n != "astropy"}
    buffers = []

    def setup(verbosity):
        buf = io.StringIO()
        logs.configure(verbosity, stream=buf)
        buffers.append(buf)
        return buf

    yield setup
    root = logging.getLogger()
    root.removeHandler(logs._STATE["handler"])
    logs._STATE.update(verbosity=logs.NORMAL, handler=None)
    logging.captureWarnings(False)
    for n, (level, propagate) in saved.items():
        logging.getLogger(n or None).setLevel(level)
        logging.getLogger(n or None).propagate = propagate


def _emit_everything():
    logging.getLogger("dsa110_contimg.conversion.convert").info("converted G1 in 1.0 s")
    logging.getLogger("dsa110_contimg.conversion.convert").info("converted G1 in 1.0 s")  # repeated: once
    logging.getLogger("dsa110_contimg.conversion.convert").debug("load 0.2 s")
    logging.getLogger("dsa110_contimg.imaging.wsclean").info("running wsclean -size 1024 ...")
    logging.getLogger("distributed.scheduler").info("Register worker addr: tcp://127.0.0.1:1")
    logging.getLogger("distributed.worker").error("Compute Failed\nKey: run_apply-1\nState: executing")
    logging.getLogger("dsa110_contimg.pipeline.stream").error("group G1: apply failed (pending): boom")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a real problem", UserWarning)


def test_default_is_one_line_per_stage(configured):
    buf = configured(logs.NORMAL)
    _emit_everything()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].endswith(" converted G1 in 1.0 s") and "INFO" not in lines[0]
    assert "ERROR dsa110_contimg.pipeline.stream: group G1: apply failed" in lines[1]
    assert "WARNING py.warnings:" in lines[2] and lines[2].endswith("UserWarning: a real problem")


def test_warning_keeps_its_category_when_a_library_replaced_formatwarning(configured):
    """pyuvdata's objects set ``warnings.formatwarning`` to one that drops the file and category: the log line
    still says what kind of warning it is."""
    saved = warnings.formatwarning
    warnings.formatwarning = lambda message, *a, **k: f"{message}\n"
    try:
        buf = configured(logs.NORMAL)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("a real problem", UserWarning)
    finally:
        warnings.formatwarning = saved
    line = buf.getvalue().strip()
    assert "WARNING py.warnings:" in line and line.endswith("UserWarning: a real problem"), line


def test_quiet_and_verbose(configured):
    buf = configured(logs.QUIET)
    _emit_everything()
    assert [x.split(" ", 3)[2] for x in buf.getvalue().splitlines()] == ["ERROR", "WARNING"]
    buf = configured(logs.VERBOSE)
    _emit_everything()
    text = buf.getvalue()
    for part in ("DEBUG", "load 0.2 s", "running wsclean", "INFO [MainProcess] distributed.scheduler",
                 "Compute Failed"):
        assert part in text, part
    assert text.count("converted G1") == 2


def test_astropy_warnings_go_through_the_same_lines(configured):
    from astropy.utils.exceptions import AstropyUserWarning

    buf = configured(logs.NORMAL)
    logs.adopt_astropy()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("header fixed", AstropyUserWarning)
    assert buf.getvalue().count("\n") == 1 and "WARNING py.warnings:" in buf.getvalue(), buf.getvalue()


def test_distributed_import_does_not_bring_its_chatter_back(configured):
    buf = configured(logs.NORMAL)
    import distributed  # noqa: F401 - its import configures its loggers from Dask's config

    logs.apply_levels()
    logging.getLogger("distributed.scheduler").info("State start")
    assert buf.getvalue() == ""
    assert logs.dask_level() == logging.WARNING


def test_worker_output_goes_to_a_file_and_its_log_lines_to_the_terminal(tmp_path):
    """What the Dask worker plugin does: C-level output (CASA's console) to a file, log lines to stderr."""
    code = (
        "import logging, os, sys; from dsa110_contimg import logs; "
        f"term = logs.send_output_to({str(tmp_path / 'w.log')!r}); logs.configure(logs.NORMAL, stream=term); "
        "os.write(2, b'SEVERE casa chatter\\n'); os.write(1, b'imager progress\\n'); print('print'); "
        "logging.getLogger('dsa110_contimg.imaging.image').info('imaged G1'); sys.stdout.flush()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr.strip().endswith("imaged G1") and "chatter" not in r.stderr
    text = (tmp_path / "w.log").read_text()
    assert "SEVERE casa chatter" in text and "imager progress" in text and "print" in text


def test_cli_verbosity_flags(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from dsa110_contimg.cli import main

    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path))
    try:
        for args, want in ((["-q"], logs.QUIET), ([], logs.NORMAL), (["-v"], logs.VERBOSE)):
            r = CliRunner().invoke(main, [*args, "config"])
            assert r.exit_code == 0, r.output
            assert logs.verbosity() == want
    finally:
        logging.getLogger().removeHandler(logs._STATE["handler"])
        logs._STATE.update(verbosity=logs.NORMAL, handler=None)
        logging.captureWarnings(False)
        for n in ("", logs.PACKAGE, *logs.DETAIL_LOGGERS):
            logging.getLogger(n or None).setLevel(logging.NOTSET if n else logging.WARNING)


# ---------------------------------------------------------------------------- FITS headers


def _wsclean_like_fits(path):
    """A FITS image with the header WSClean writes (DATE-OBS and EQUINOX, no MJD-OBS, no RADESYS)."""
    from astropy.io import fits

    h = fits.Header()
    for k, v in (("CTYPE1", "RA---SIN"), ("CRPIX1", 33.0), ("CRVAL1", 85.65), ("CDELT1", -0.002), ("CUNIT1", "deg"),
                 ("CTYPE2", "DEC--SIN"), ("CRPIX2", 33.0), ("CRVAL2", 49.85), ("CDELT2", 0.002), ("CUNIT2", "deg"),
                 ("CTYPE3", "FREQ"), ("CRPIX3", 1.0), ("CRVAL3", 1.405e9), ("CDELT3", 1.875e8), ("CUNIT3", "Hz"),
                 ("CTYPE4", "STOKES"), ("CRPIX4", 1.0), ("CRVAL4", 1.0), ("CDELT4", 1.0), ("EQUINOX", 2000.0),
                 ("BMAJ", 0.01), ("BMIN", 0.008), ("BPA", 10.0), ("SPECSYS", "TOPOCENT"),
                 ("DATE-OBS", "2025-10-02T12:51:12.4")):
        h[k] = v
    fits.PrimaryHDU(np.zeros((1, 1, 64, 64), np.float32), h).writeto(path)


def test_completed_headers_leave_astropy_nothing_to_fix(tmp_path):
    from astropy.io import fits
    from astropy.time import Time
    from astropy.wcs import WCS, FITSFixedWarning

    from dsa110_contimg.imaging.fits_products import complete_header

    path = tmp_path / "g.wsclean-image.fits"
    _wsclean_like_fits(path)
    with pytest.warns(FITSFixedWarning, match="MJD-OBS"):  # what the demo printed for every image
        WCS(fits.getheader(path))
    complete_header(path, SimpleNamespace(telescope="OVRO_DSA", date_obs="2025-10-02T12:51:06.000"))  # MS facts used
    h = fits.getheader(path)
    assert h["MJD-OBS"] == pytest.approx(Time("2025-10-02T12:51:06", scale="utc").mjd, abs=1e-9)
    assert (h["RADESYS"], h["EQUINOX"], h["DATE-OBS"]) == ("FK5", 2000.0, "2025-10-02T12:51:06.000")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        WCS(h)
        WCS(h, naxis=None).celestial
