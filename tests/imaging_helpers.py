"""Test helpers: tclean an MS, measure point sources with CASA's imfit, a self-contained pipeline environment."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np


def tclean_image(ms: str | Path, imagename: str | Path, imsize: int = 1024, cell_arcsec: float = 6.0,
                 niter: int = 300, threshold: str = "20mJy", **kw) -> Path:
    """Make a natural-weighted MFS image with CASA tclean (autocorrelations excluded).

    W-projection is essential: the array is far from coplanar towards dec ~55 deg (zenith
    angle ~18 deg), and the 'standard' gridder shifts a source 0.8 deg from the phase centre
    by ~6 arcsec (w-term).
    """
    from casatasks import tclean

    imagename = str(imagename)
    for p in Path(imagename).parent.glob(Path(imagename).name + ".*"):
        shutil.rmtree(p, ignore_errors=True)
    tclean(vis=str(ms), imagename=imagename, imsize=imsize, cell=f"{cell_arcsec}arcsec", niter=niter,
           threshold=threshold, weighting="natural", specmode="mfs", deconvolver="hogbom", uvrange=">1m",
           gridder="wproject", wprojplanes=-1, **kw)
    return Path(imagename + ".image")


def fit_point_source(image: str | Path, ra_deg: float, dec_deg: float, box_pix: int = 10) -> dict:
    """Fit a Gaussian with imfit in a box around (ra, dec); returns peak (Jy/beam), ra, dec (deg), beam (arcsec)."""
    import casatools
    from casatasks import imfit

    ia = casatools.image()
    ia.open(str(image))
    cs = ia.coordsys()
    pix = cs.convert(coordin=[np.radians(ra_deg), np.radians(dec_deg), 0, 0], absin=[True] * 4,
                     unitsin=["rad", "rad", "pix", "pix"], absout=[True] * 4, unitsout=["pix"] * 4)
    beam = ia.restoringbeam()
    ia.close()
    x, y = int(round(pix[0])), int(round(pix[1]))
    box = f"{x - box_pix},{y - box_pix},{x + box_pix},{y + box_pix}"
    res = imfit(imagename=str(image), box=box)
    comp = res["results"]["component0"]
    peak = comp["peak"]["value"]
    ra = np.degrees(comp["shape"]["direction"]["m0"]["value"]) % 360
    dec = np.degrees(comp["shape"]["direction"]["m1"]["value"])
    return {"peak": peak, "ra_deg": ra, "dec_deg": dec, "bmaj_arcsec": beam["major"]["value"],
            "bmin_arcsec": beam["minor"]["value"]}


def offset_arcsec(ra1, dec1, ra2, dec2) -> float:
    """Angular distance between two positions (arcsec)."""
    from dsa110_contimg.beam import angular_separation

    return float(np.degrees(angular_separation(*np.radians([ra1, dec1, ra2, dec2]))) * 3600)


def pipeline_env(root: Path, antpos_csv: Path) -> dict:
    """Environment of a self-contained pipeline under ``root`` (state, incoming, products, stage)."""
    return dict(os.environ, PIPELINE_STATE_DIR=str(root / "state"), PIPELINE_ANTPOS_CSV=str(antpos_csv),
                PIPELINE_INCOMING_DIR=str(root / "incoming"), PIPELINE_OUTPUT_DIR=str(root / "out"),
                PIPELINE_STAGE_DIR=str(root / "stage"))


def staged_groups(root: Path, antpos_csv: Path, groups: int, seed: int, n_sources: int):
    """Simulate small groups (the first with 3C147 transiting) and copy their files into the incoming
    folder of a self-contained pipeline under ``root``; returns (simulated groups, env, settings)."""
    from dsa110_contimg.config import load_settings
    from dsa110_contimg.simulate.core import SimulateOptions, simulate

    sim = simulate(SimulateOptions(output_dir=root / "sim", preset="small", groups=groups, calibrator="3C147",
                                   n_sources=n_sources, antpos_csv=antpos_csv, seed=seed))
    env = pipeline_env(root, antpos_csv)
    settings = load_settings(env)
    for g in sim.groups:
        for p in g.files:
            shutil.copy(p, settings.incoming_dir / p.name)
    return sim.groups, env, settings


def assert_rigid_phase_offset(phase, good, uvw, times, freqs_hz, max_offset_arcsec: float = 1.0,
                              max_residual_rad: float = 1e-5) -> None:
    """Per integration, one direction offset (dl, dm, dn) must explain the phase differences ``phase`` (rows,
    channels, pols) of every good sample: ``2 pi (u dl + v dm + w dn) / lambda``, to ``max_residual_rad``,
    with ``|(dl, dm)| < max_offset_arcsec`` (two libraries' apparent places of the same phase centre)."""
    k = 2 * np.pi * np.asarray(freqs_hz) / 299_792_458.0
    for t in np.unique(times):
        rows, chans, pols = np.nonzero(good & (times == t)[:, None, None])
        design = uvw[rows] * k[chans][:, None]
        offset, *_ = np.linalg.lstsq(design, phase[rows, chans, pols], rcond=None)
        assert np.degrees(np.hypot(offset[0], offset[1])) * 3600 < max_offset_arcsec, offset
        assert np.abs(phase[rows, chans, pols] - design @ offset).max() < max_residual_rad


def meridian_centre(start: str, dec_deg: float) -> float:
    """J2000 RA (deg) on the fringe-stopping meridian at mid-group of a group starting at ``start``."""
    import math
    from datetime import datetime

    import numpy as np

    from dsa110_contimg import telescope as tel
    from dsa110_contimg.geometry import meridian_j2000
    from dsa110_contimg.timeconv import datetime_to_mjd

    mid = datetime_to_mjd(datetime.fromisoformat(start)) + 150.0 / 86400
    return float(np.degrees(meridian_j2000(math.radians(dec_deg), [mid], math.radians(tel.FRINGESTOP_LON_DEG))[0])[0])


def calibrated_small_group(root: Path, antpos_csv: Path, sources, start: str, dec_deg: float, seed: int,
                           sefd_jy: float):
    """A small group of ``sources`` (unit gains, noise), converted, CORRECTED_DATA = DATA marked calibrated;
    returns (MS path, the simulation result)."""
    from casacore.tables import table

    from dsa110_contimg.conversion.convert import ConvertOptions, convert_group
    from dsa110_contimg.conversion.grouping import discover_groups
    from dsa110_contimg.ms import mark_corrected
    from dsa110_contimg.simulate.core import simulate
    from dsa110_contimg.simulate.options import SimulateOptions
    from dsa110_contimg.simulate.sky import write_sources_csv

    root.mkdir(parents=True, exist_ok=True)
    write_sources_csv(sources, root / "sky.csv")
    sim = simulate(SimulateOptions(output_dir=root / "in", preset="small", sources_csv=root / "sky.csv", gains=False,
                                   sefd_jy=sefd_jy, antpos_csv=antpos_csv, seed=seed, start=start, dec_deg=dec_deg,
                                   jitter_s=0))
    ms = convert_group(discover_groups(root / "in")[0], ConvertOptions(output_dir=root / "ms", antpos_csv=antpos_csv,
                                                                        stage_dir=root / "stage")).ms_path
    with table(str(ms), readonly=False, ack=False) as t:
        t.putcol("CORRECTED_DATA", t.getcol("DATA"))
        mark_corrected(t, True, "test")
    return ms, sim
