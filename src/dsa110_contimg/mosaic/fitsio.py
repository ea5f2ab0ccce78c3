"""Writing the mosaic's FITS maps (the I/O edge of :mod:`.build`): full WCS, beam, time span, inputs; atomic."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

MAP_UNITS = {"MOSAIC": "JY/BEAM", "WEIGHT": "1/(JY/BEAM)**2", "NOISE": "JY/BEAM"}
"""BUNIT of each map."""


def map_header(grid_cards: dict, *, kind: str, freq_hz: float, bandwidth_hz: float,
               beam_arcsec: tuple[float, float, float], date_obs: str, mjd_range: tuple[float, float],
               inputs: list[tuple[str, str]], extra: dict | None = None):
    """The header of one map (:data:`MAP_UNITS` ``kind``): celestial WCS plus a degenerate FREQ axis,
    BMAJ/BMIN/BPA, BUNIT, DATE-OBS/MJD-OBS of the first input, MJD-BEG/MJD-END, and the inputs
    (``IMGnnn`` file names, ``GRPnnn`` groups, full paths in HISTORY)."""
    from astropy.io import fits
    from astropy.time import Time

    h = fits.Header()
    h["NAXIS"] = 3
    h["NAXIS1"], h["NAXIS2"], h["NAXIS3"] = grid_cards["NAXIS1"], grid_cards["NAXIS2"], 1
    for k, v in grid_cards.items():
        if not k.startswith("NAXIS"):
            h[k] = v
    h["CTYPE3"], h["CRVAL3"], h["CDELT3"], h["CRPIX3"], h["CUNIT3"] = "FREQ", freq_hz, bandwidth_hz, 1.0, "Hz"
    h["BUNIT"] = MAP_UNITS[kind]
    h["BTYPE"] = ("Intensity" if kind == "MOSAIC" else kind.capitalize())
    bmaj, bmin, bpa = beam_arcsec
    h["BMAJ"], h["BMIN"], h["BPA"] = bmaj / 3600.0, bmin / 3600.0, bpa
    h["TELESCOP"], h["INSTRUME"], h["ORIGIN"] = "OVRO_DSA", "DSA-110", "dsa110-contimg"
    h["DATE-OBS"] = (date_obs, "start of the first input")
    h["MJD-OBS"] = (float(Time(date_obs, scale="utc").mjd), "[d] DATE-OBS as an MJD (UTC)")
    h["MJD-BEG"] = (mjd_range[0], "[d] first integration centre, inputs (UTC)")
    h["MJD-END"] = (mjd_range[1], "[d] last integration centre, inputs (UTC)")
    h["DATE-BEG"] = (Time(mjd_range[0], format="mjd", scale="utc").isot, "MJD-BEG as ISO (UTC)")
    h["DATE-END"] = (Time(mjd_range[1], format="mjd", scale="utc").isot, "MJD-END as ISO (UTC)")
    h["MOSMAP"] = (kind, "MOSAIC, WEIGHT or NOISE")
    for k, v in (extra or {}).items():
        h[k] = v
    h["NINPUT"] = (len(inputs), "input images")
    for i, (path, group) in enumerate(inputs, start=1):
        h[f"IMG{i:03d}"] = Path(path).name[:68]
        if group:
            h[f"GRP{i:03d}"] = str(group)[:68]
    for path, _ in inputs:
        h.add_history(f"input {path}")
    return h


def write_atomic(path: Path, data: np.ndarray, header) -> Path:
    """Write a FITS image to a temporary file beside ``path``, then ``os.replace`` it into place
    (a reader sees the old file or the new one, never a partial one)."""
    from astropy.io import fits

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        fits.PrimaryHDU(data.reshape((1,) + data.shape), header).writeto(tmp, overwrite=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
