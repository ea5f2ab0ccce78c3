"""Imager failures: a full or read-only output folder raises EnvironmentFault naming it; others a one-line WSCleanError.

The disk-full cases run the real WSClean (and CASA tclean) on a tiny real MS with
its output in a small tmpfs mounted by the test (root only; skipped otherwise).
"""

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from dsa110_contimg.errors import ENVIRONMENT, ContimgError, EnvironmentFault, classify
from dsa110_contimg.imaging.image import ImageOptions, ImagingError, image_ms
from dsa110_contimg.imaging.wsclean import WSCleanError, WSCleanOptions, run_wsclean, wsclean_binary

needs_wsclean = pytest.mark.skipif(wsclean_binary() is None, reason="wsclean is not installed")
OPTS = WSCleanOptions(size=256, scale_arcsec=12.0, niter=10, data_column="DATA")


@pytest.fixture(scope="module")
def tiny_ms(tmp_path_factory, antpos_csv):
    """A real MS of the 'small' preset (a few MB), converted by the pipeline."""
    from dsa110_contimg.conversion.convert import ConvertOptions, convert_directory
    from dsa110_contimg.simulate.core import SimulateOptions, simulate

    root = tmp_path_factory.mktemp("wsclean_errors")
    simulate(SimulateOptions(output_dir=root / "in", preset="small", n_sources=2, noise=False, gains=False,
                             antpos_csv=antpos_csv, seed=5))
    res = convert_directory(root / "in", ConvertOptions(output_dir=root / "ms", antpos_csv=antpos_csv,
                                                        stage_dir=root / "stage"))
    return res[0].ms_path


@pytest.fixture
def tmpfs(tmp_path, mount_tmpfs):
    """Factory: mount a tmpfs of a given size (optionally read-only) under tmp_path (see conftest's mount_tmpfs)."""
    count = iter(range(1000))
    return lambda size, read_only=False: mount_tmpfs(tmp_path / f"fs{next(count)}", size, read_only)


@needs_wsclean
def test_full_disk_raises_environment_fault(tiny_ms, tmpfs):
    out = tmpfs("300k")  # holds the 256x256 PSF, not the dirty image after it
    with pytest.raises(EnvironmentFault) as ei:
        run_wsclean(tiny_ms, out / "img", OPTS)
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith(f"disk full: output folder {out} has 0 B free of 300.0 KiB"), msg
    assert str(tiny_ms) in msg and "error writing" in msg.lower()  # WSClean really ran into the full disk
    assert classify(ei.value) == ENVIRONMENT
    assert (out / "img-psf.fits").exists() and shutil.disk_usage(out).free == 0


@needs_wsclean
def test_full_disk_through_image_ms_is_not_an_imaging_error(tiny_ms, tmpfs):
    out = tmpfs("300k")
    with pytest.raises(EnvironmentFault, match=f"disk full: output folder {out} "):
        image_ms(tiny_ms, ImageOptions(backend="wsclean", out_dir=out, imsize=256, cell_arcsec=12.0, niter=10))


@needs_wsclean
def test_read_only_folder_raises_environment_fault(tiny_ms, tmpfs):
    out = tmpfs("1m", read_only=True)
    with pytest.raises(EnvironmentFault) as ei:
        run_wsclean(tiny_ms, out / "img", OPTS)
    msg = str(ei.value)
    assert msg.startswith(f"output folder {out} is on a read-only file system (1.0 MiB free"), msg
    assert "\n" not in msg and str(tiny_ms) in msg


@needs_wsclean
def test_other_failure_is_one_line_wsclean_error(tiny_ms, tmp_path):
    bad = WSCleanOptions(size=256, scale_arcsec=12.0, niter=10, data_column="NO_SUCH_COLUMN")
    with pytest.raises(WSCleanError) as ei:
        run_wsclean(tiny_ms, tmp_path / "img", bad)
    msg = str(ei.value)
    assert isinstance(ei.value, ContimgError) and isinstance(ei.value, RuntimeError)
    assert not isinstance(ei.value, EnvironmentFault)
    assert "\n" not in msg and "+ +" not in msg and ">>>" not in msg
    assert msg == f"wsclean failed on {tiny_ms} (exit 255): Table column NO_SUCH_COLUMN is unknown"


def test_error_classes():
    assert issubclass(WSCleanError, ContimgError) and issubclass(WSCleanError, RuntimeError)
    assert issubclass(ImagingError, ContimgError) and issubclass(ImagingError, RuntimeError)
    assert str(ImagingError("a\nb")) == "a; b"


def test_meaningful_tail_of_a_wsclean_exception():
    from dsa110_contimg.imaging.wsclean import meaningful_tail

    out = textwrap.dedent("""\
        WSClean version 3.1.0 (2022-04-01)
        This software package is released under the GPL version 3.
        === IMAGING TABLE ===
               # Pol Ch JG ²G FG FI In Freq(MHz)
        | Independent group:
        +-+-J- 0  I   0  0  0  0  0  0  1311-1499 (96)
        0%....10%....20%....30%....40%....50%....60%....70%....80%....90%....100%
        Writing psf image... + + + + + + + + + + + + + + + + + + +
        + An exception occured:
        + >>> CFITSIO reported error: couldn't create the named file
        + + + + + + + + + + + + + + + + + + +
        """)
    assert meaningful_tail(out) == "Writing psf image... | CFITSIO reported error: couldn't create the named file"
    assert meaningful_tail("a\n\nb\n+ + +\nc\nd\n") == "b | c | d"


def test_output_folder_fault_on_space_alone(tmp_path):
    from dsa110_contimg.imaging.wsclean import output_folder_fault

    total = shutil.disk_usage(tmp_path).total
    assert output_folder_fault(tmp_path, "", need_bytes=1) is None
    assert output_folder_fault(tmp_path, "Error writing data buffer", need_bytes=1) is None
    msg = output_folder_fault(tmp_path / "not" / "yet", "", need_bytes=total + 1)
    assert msg.startswith(f"disk full: output folder {tmp_path / 'not' / 'yet'} has ") and " free of " in msg
    assert output_folder_fault(tmp_path, "write failed: No space left on device").startswith("disk full")


TCLEAN = textwrap.dedent("""
    import sys
    from dsa110_contimg.casa_env import prepare_casa
    prepare_casa(sys.argv[1])
    from dsa110_contimg.errors import EnvironmentFault
    from dsa110_contimg.imaging.tclean import TcleanOptions, run_tclean
    try:
        run_tclean(sys.argv[2], sys.argv[3] + "/tc", TcleanOptions(imsize=256, cell_arcsec=12, niter=10,
                                                                  datacolumn="data"))
    except EnvironmentFault as exc:
        print("FAULT", exc)
""")


def test_tclean_full_disk_raises_before_casa_aborts(tiny_ms, tmpfs, tmp_path):
    """casacore aborts the whole process when tclean's table write hits a full disk: check before, in a child."""
    out = tmpfs("300k")
    env = {k: v for k, v in os.environ.items() if k != "CASASITECONFIG"}
    r = subprocess.run([sys.executable, "-c", TCLEAN, str(tmp_path / "state"), str(tiny_ms), str(out)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, (r.returncode, r.stderr[-1500:])
    line = r.stdout.strip().splitlines()[-1]
    assert line.startswith(f"FAULT disk full: output folder {out} has 300.0 KiB free of 300.0 KiB"), line
    assert "tclean cannot write the images of" in line and str(tiny_ms) in line
