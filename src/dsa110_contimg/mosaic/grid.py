"""The common output grid of a mosaic, from the inputs' WCS and primary beams.

Projection
----------
The drift scan sweeps a strip of sky at one declination ``dec0``; the mosaic's
projection is chosen for that strip (``MosaicOptions.projection``):

* **SIN** (orthographic, the projection of the snapshots themselves), tangent at
  the strip centre, when the inputs' centres span at most ``sin_max_span_h``
  (1.5 h) of RA.  SIN compresses the radial scale by ``cos(d)`` at a distance
  ``d`` from the tangent point: for a 1.5 h strip at dec +55.6 deg the far ends
  of the 10% beam contour are ~6.8 deg away, a 0.7% compression of beams there,
  and the strip itself curves gently (the bounding box takes it in).  Below an
  hour (the daemon's 12-group windows, 1.03 h) it is under 0.4%.
* **CAR** (plate carree) for longer strips, centred on the strip: ``CRVAL =
  (strip centre RA, dec0)`` and square pixels ``CDELT = (-pix, pix)``.  With
  the reference point off the equator this CAR is oblique: its native equator
  (the row through ``CRPIX2``) is the great circle tangent to the strip at its
  centre, and the projection is equidistant along native meridians and exact
  along the native equator, the scale along native parallels being
  ``cos(native latitude)``.  The strip (a small circle) leaves the native
  equator by about ``s^2 tan(dec0) / 2`` at a distance ``s`` along it: at dec0
  = 55.6 deg, 0.5 deg at the ends of 1.5 h, 2.0 deg at 3 h, 7.9 deg at 6 h,
  28 deg at 12 h, so pixels there are ``cos`` of that (plus the beam's half
  width) narrower on the sky in x: < 0.2% up to 3 h, 1% at 6 h, 12% at 12 h
  (split longer strips).  The grid stays conformal-ish along the whole strip,
  and its pixels are square on the sky where tools such as the source finder
  read the pixel scale.  (A non-oblique plate carree with ``CRVAL2 = 0`` would
  keep the strip on a row for any span, but its pixels are ``cos(dec0)`` narrow
  in RA in projection-plane degrees, which the package's source finder and
  photometry take for the sky scale, and beams vary by +-7% in width across
  the strip.)

The pixel is the finest input pixel (or ``pixel_arcsec``); the extent is the
union of the inputs' footprints where their primary beam is at least the cutoff
(sampled on a coarse grid of each input, grown by one sample), plus a margin.
RA is handled on the circle, so strips crossing RA 0 are one interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ContimgError
from .beam import DriftBeam
from .kernels import dilate, strip_ra

SIN_MAX_SPAN_H = 1.5
"""Default longest RA span (h) of the inputs' centres mosaicked in SIN."""


class GridError(ContimgError, ValueError):
    """The inputs cannot be put on the requested grid (e.g. a strip too long for SIN, or too many pixels)."""


@dataclass(frozen=True)
class OutputGrid:
    """The pixel grid of a mosaic."""

    projection: str
    """'SIN' or 'CAR'."""
    ra0_deg: float
    """RA of the strip centre, the projection's reference point (deg)."""
    dec0_deg: float
    """Declination of the strip (deg)."""
    pix_deg: float
    """Pixel size (deg; on the sky at the projection centre)."""
    shape: tuple[int, int]
    """(ny, nx)."""
    crpix: tuple[float, float]
    """FITS reference pixel (1-based) of x and y."""

    def header_cards(self) -> dict:
        """The celestial WCS keywords (FITS, 2 axes)."""
        ny, nx = self.shape
        cards = {"NAXIS1": nx, "NAXIS2": ny, "CTYPE1": f"RA---{self.projection}",
                 "CTYPE2": f"DEC--{self.projection}", "CUNIT1": "deg", "CUNIT2": "deg",
                 "CRPIX1": self.crpix[0], "CRPIX2": self.crpix[1], "RADESYS": "FK5", "EQUINOX": 2000.0}
        cards.update(CRVAL1=self.ra0_deg, CRVAL2=self.dec0_deg, CDELT1=-self.pix_deg, CDELT2=self.pix_deg)
        return cards

    def wcs(self):
        """The celestial :class:`astropy.wcs.WCS` of the grid."""
        from astropy.wcs import WCS

        w = WCS(naxis=2)
        c = self.header_cards()
        w.wcs.ctype = [c["CTYPE1"], c["CTYPE2"]]
        w.wcs.cunit = ["deg", "deg"]
        w.wcs.crval = [c["CRVAL1"], c["CRVAL2"]]
        w.wcs.crpix = [c["CRPIX1"], c["CRPIX2"]]
        w.wcs.cdelt = [c["CDELT1"], c["CDELT2"]]
        w.wcs.radesys, w.wcs.equinox = "FK5", 2000.0
        w.wcs.set()
        w.pixel_shape = (self.shape[1], self.shape[0])
        return w


def pixel_scale_deg(wcs) -> float:
    """Smallest pixel side of a celestial WCS (deg)."""
    from astropy.wcs.utils import proj_plane_pixel_scales

    return float(np.min(proj_plane_pixel_scales(wcs)))


def footprint(wcs, shape: tuple[int, int], beam: DriftBeam, cutoff: float, n: int = 48) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """Directions ``(ra, dec)`` (deg) sampling where an image's primary beam is at least ``cutoff``.

    The image is sampled on an ``n`` x ``n`` grid (corners included); the samples above the cutoff
    are grown by one sample so the true boundary lies inside their hull.  Empty when the beam is
    below the cutoff everywhere on the image.
    """
    ny, nx = shape
    gy, gx = np.linspace(-0.5, ny - 0.5, n), np.linspace(-0.5, nx - 0.5, n)
    xx, yy = np.meshgrid(gx, gy)
    ra, dec = (np.asarray(a) for a in wcs.pixel_to_world_values(xx, yy))
    ok = np.isfinite(ra) & np.isfinite(dec)
    pb = np.zeros(ra.shape)
    pb[ok] = beam.power(ra[ok], dec[ok])
    keep = dilate(pb >= cutoff) & ok
    return ra[keep], dec[keep]


def _centres(wcses, shapes) -> tuple[np.ndarray, np.ndarray]:
    ra, dec = [], []
    for w, (ny, nx) in zip(wcses, shapes):
        r, d = w.pixel_to_world_values((nx - 1) / 2.0, (ny - 1) / 2.0)
        ra.append(float(r))
        dec.append(float(d))
    return np.array(ra), np.array(dec)


def choose_projection(requested: str, span_ra_deg: float, sin_max_span_h: float = SIN_MAX_SPAN_H) -> str:
    """'SIN' or 'CAR' for ``requested`` ('auto', 'SIN', 'CAR'; any case) and the RA span of the strip."""
    req = requested.upper()
    if req not in ("AUTO", "SIN", "CAR"):
        raise GridError(f"unknown projection {requested!r} (auto, SIN or CAR)")
    if req != "AUTO":
        return req
    return "SIN" if span_ra_deg <= 15.0 * sin_max_span_h else "CAR"


def plan_grid(wcses, shapes, footprints, projection: str = "auto", pixel_deg: float | None = None,
              sin_max_span_h: float = SIN_MAX_SPAN_H, margin_px: int = 2,
              max_pixels: int = 2_000_000_000) -> OutputGrid:
    """The output grid of a mosaic.

    Parameters
    ----------
    wcses, shapes
        Celestial WCS and (ny, nx) of each input.
    footprints
        ``(ra, dec)`` arrays per input (:func:`footprint`).
    projection
        'auto', 'SIN' or 'CAR' (see the module docstring).
    pixel_deg
        Output pixel (deg); None: the finest input pixel.
    sin_max_span_h
        Longest RA span of the inputs' centres that 'auto' puts in SIN (h).
    margin_px
        Pixels added on each side of the footprints' bounding box.
    max_pixels
        Refuse grids larger than this.

    Raises
    ------
    GridError
        No footprint, a footprint SIN cannot project (strip too long: use CAR), or a grid too large.
    """
    ra_c, dec_c = _centres(wcses, shapes)
    ra0, span = strip_ra(ra_c)
    dec0 = float(np.median(dec_c))
    proj = choose_projection(projection, span, sin_max_span_h)
    pix = float(pixel_deg) if pixel_deg else min(pixel_scale_deg(w) for w in wcses)
    ra = np.concatenate([np.ravel(f[0]) for f in footprints]) if footprints else np.empty(0)
    dec = np.concatenate([np.ravel(f[1]) for f in footprints]) if footprints else np.empty(0)
    if ra.size == 0:
        raise GridError("no input has a primary beam above the cutoff")
    trial = OutputGrid(proj, ra0, dec0, pix, (1, 1), (1.0, 1.0)).wcs()
    x, y = (np.asarray(a) for a in trial.world_to_pixel_values(ra, dec))
    if proj == "SIN":
        from ..beam import separation_deg

        far = float(np.max(separation_deg(ra0, dec0, ra, dec)))
        if far >= 80.0 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise GridError(f"inputs reach {far:.0f} deg from the strip centre: too far for SIN, use CAR")
    x0, x1 = math.floor(np.min(x)) - margin_px, math.ceil(np.max(x)) + margin_px
    y0, y1 = math.floor(np.min(y)) - margin_px, math.ceil(np.max(y)) + margin_px
    nx, ny = x1 - x0 + 1, y1 - y0 + 1
    if nx * ny > max_pixels:
        raise GridError(f"mosaic grid of {ny} x {nx} pixels is too large (max {max_pixels})")
    return OutputGrid(proj, ra0, dec0, pix, (ny, nx), (1.0 - x0, 1.0 - y0))


def bounding_box(grid_wcs, shape: tuple[int, int], ra, dec, pad: int = 2) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)`` (Python slice bounds) of the output pixels around directions, clipped to the
    grid; None when they fall outside it."""
    x, y = (np.asarray(a) for a in grid_wcs.world_to_pixel_values(np.asarray(ra), np.asarray(dec)))
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return None
    ny, nx = shape
    x0, x1 = max(0, math.floor(x[ok].min()) - pad), min(nx, math.ceil(x[ok].max()) + pad + 1)
    y0, y1 = max(0, math.floor(y[ok].min()) - pad), min(ny, math.ceil(y[ok].max()) + pad + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    return y0, y1, x0, x1
