"""Reprojection of one input onto a rectangle of the output grid, with the ``reproject`` package.

Profiling a 12-group mosaic of full-size images showed that ``reproject_interp``
spends ~85% of its time in wcslib: every output pixel is taken through the
output WCS to the sky and back through the input WCS to input pixels, ~0.45 us
per pixel (2 x 15 million pixels per input).  The pixel mapping is smooth (two
SIN or CAR projections a few degrees apart), so it is evaluated with astropy's
WCS exactly on a :class:`Lattice` of output pixels (every
``MosaicOptions.lattice_deg``) and bilinearly in between (error < 1e-3 pixel for
the pipeline's images), and handed to ``reproject_interp`` as an APE-14
low-level WCS whose "world" coordinates are the input's pixel coordinates, the
input being described by the matching identity WCS.  The interpolation of the
image itself, and its NaN and edge handling, stay reproject's.
``MosaicOptions.exact_coords`` gives reproject the real WCS pair instead.
The same lattice carries the primary beam (:func:`lattice_values`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..imaging.fits_products import grid_interp


@dataclass(frozen=True)
class Lattice:
    """Output pixels every ``step`` pixels of a rectangle, and their directions."""

    shape: tuple[int, int]
    """(ny, nx) of the rectangle."""
    gy: np.ndarray
    """Rows of the lattice (rectangle pixels, ascending, the last at or beyond ny - 1)."""
    gx: np.ndarray
    """Columns of the lattice."""
    ra: np.ndarray
    """RA of the lattice points (deg), shape (len(gy), len(gx))."""
    dec: np.ndarray
    """Dec of the lattice points (deg)."""

    def interp(self, values: np.ndarray) -> np.ndarray:
        """Values given on the lattice, on every pixel of the rectangle (bilinear)."""
        return grid_interp(values, self.gy, self.gx, *self.shape)

    def sub(self, i0: int, i1: int, j0: int, j1: int) -> tuple["Lattice", tuple[int, int, int, int]]:
        """The lattice rows ``i0..i1`` and columns ``j0..j1`` (inclusive) of a sub-rectangle, and that
        rectangle's ``(y0, y1, x0, x1)`` slice bounds.

        The rectangle's rows stop before lattice row ``i1`` (unless it is the last), so that the
        rectangles of consecutive row bands ``(i0, i1), (i1, i2), ...`` tile the rows without overlap;
        its columns run to lattice column ``j1`` included (clipped to this rectangle).
        """
        ny, nx = self.shape
        y0, x0 = int(self.gy[i0]), int(self.gx[j0])
        y1 = min(ny, int(self.gy[i1]) + 1) if i1 == len(self.gy) - 1 else int(self.gy[i1])
        x1 = min(nx, int(self.gx[j1]) + 1)
        lat = Lattice((y1 - y0, x1 - x0), self.gy[i0:i1 + 1] - y0, self.gx[j0:j1 + 1] - x0,
                      self.ra[i0:i1 + 1, j0:j1 + 1], self.dec[i0:i1 + 1, j0:j1 + 1])
        return lat, (y0, y1, x0, x1)


def make_lattice(out_wcs, shape: tuple[int, int], step: int) -> Lattice:
    """The :class:`Lattice` of a rectangle of ``shape`` of the celestial WCS ``out_wcs``."""
    ny, nx = shape
    step = max(1, int(step))
    gy = np.arange(0, max(ny - 1, 1) + step, step, dtype=float)
    gx = np.arange(0, max(nx - 1, 1) + step, step, dtype=float)
    xx, yy = np.meshgrid(gx, gy)
    ra, dec = out_wcs.pixel_to_world_values(xx, yy)
    return Lattice((int(ny), int(nx)), gy, gx, np.asarray(ra, dtype=float), np.asarray(dec, dtype=float))


@lru_cache(maxsize=1)
def _wcs_classes():
    """The two APE-14 low-level WCS classes (built on first use: astropy is imported here)."""
    import astropy.units as u
    from astropy.wcs.wcsapi import BaseLowLevelWCS

    class InputPixels(BaseLowLevelWCS):
        """Identity WCS of an input image: its world coordinates are its pixel coordinates."""

        pixel_n_dim = 2
        world_n_dim = 2
        world_axis_physical_types = ["custom:pos.input.x", "custom:pos.input.y"]
        world_axis_units = ["pix", "pix"]
        world_axis_names = ["input x", "input y"]
        world_axis_object_components = [("x", 0, "value"), ("y", 0, "value")]
        world_axis_object_classes = {"x": (u.Quantity, (), {"unit": u.pix}), "y": (u.Quantity, (), {"unit": u.pix})}

        def __init__(self, shape):
            self._shape = tuple(int(s) for s in shape)

        @property
        def array_shape(self):
            return self._shape

        @property
        def pixel_shape(self):
            return self._shape[::-1]

        @property
        def axis_correlation_matrix(self):
            return np.ones((2, 2), dtype=bool)

        def pixel_to_world_values(self, x, y):
            return np.asarray(x, dtype=float), np.asarray(y, dtype=float)

        def world_to_pixel_values(self, x, y):
            return np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    class LatticeMap(InputPixels):
        """Output pixel -> input pixel: given on the lattice (``tx``, ``ty``), bilinear in between."""

        def __init__(self, lat: Lattice, tx: np.ndarray, ty: np.ndarray, exact):
            super().__init__(lat.shape)
            self.lat, self.tx, self.ty, self.exact = lat, tx, ty, exact

        def pixel_to_world_values(self, x, y):
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
            ny, nx = self._shape
            if x.size == ny * nx and _is_grid(x, y, ny, nx):
                return self.lat.interp(self.tx).reshape(x.shape), self.lat.interp(self.ty).reshape(x.shape)
            return self.exact(x, y)  # not the whole rectangle (reproject_interp never does that): exact, slower

        def world_to_pixel_values(self, x, y):
            raise NotImplementedError("LatticeMap maps output pixels to input pixels only")

    return InputPixels, LatticeMap


def _is_grid(x: np.ndarray, y: np.ndarray, ny: int, nx: int) -> bool:
    """True when (x, y) are the pixel centres of an (ny, nx) grid in C order (y slow), as reproject makes them."""
    xs, ys = x.reshape(ny, nx), y.reshape(ny, nx)
    return bool(np.array_equal(xs[0], np.arange(nx, dtype=float)) and np.array_equal(ys[:, 0], np.arange(ny))
                and (xs == xs[0]).all() and (ys == ys[:, :1]).all())


def reproject_rect(data: np.ndarray, in_wcs, out_wcs, lat: Lattice, order: str = "bicubic",
                   exact: bool = False, pad: int = 16) -> np.ndarray:
    """Reproject ``data`` (2-D, native float32) onto a rectangle of the output grid.

    Only the part of the input the rectangle needs (plus ``pad`` pixels, the reach of a spline's
    prefilter) is handed to reproject, so a spline order prefilters each input pixel about once
    however many rectangles the input is cut into.

    Parameters
    ----------
    data
        Input image (NaN where undefined).
    in_wcs
        Its celestial WCS.
    out_wcs
        Celestial WCS of the rectangle (e.g. a slice of the mosaic's WCS).
    lat
        Lattice of the rectangle (its shape is the rectangle's).
    order
        reproject's interpolation order ('bicubic', 'bilinear', ...).
    exact
        Give reproject the real WCS pair (every pixel through wcslib) instead of the lattice mapping.
    pad
        Input pixels kept around the needed part.

    Returns
    -------
    numpy.ndarray
        float32, NaN outside the input.
    """
    from reproject import reproject_interp

    out = np.full(lat.shape, np.nan, dtype=np.float32)
    tx, ty = (np.asarray(a, dtype=float) for a in in_wcs.world_to_pixel_values(lat.ra, lat.dec))
    ok = np.isfinite(tx) & np.isfinite(ty)
    if not ok.any():
        return out
    ny, nx = data.shape
    x0, x1 = max(0, int(np.floor(tx[ok].min())) - pad), min(nx, int(np.ceil(tx[ok].max())) + pad + 1)
    y0, y1 = max(0, int(np.floor(ty[ok].min())) - pad), min(ny, int(np.ceil(ty[ok].max())) + pad + 1)
    if x0 >= x1 or y0 >= y1:
        return out
    crop = data[y0:y1, x0:x1]
    if exact:
        reproject_interp((crop, in_wcs[y0:y1, x0:x1]), out_wcs, shape_out=lat.shape, order=order,
                         roundtrip_coords=False, return_footprint=False, output_array=out)
        return out

    def exact_map(x, y):
        ra, dec = out_wcs.pixel_to_world_values(x, y)
        px, py = in_wcs.world_to_pixel_values(ra, dec)
        return np.asarray(px, dtype=float) - x0, np.asarray(py, dtype=float) - y0

    input_pixels, lattice_map = _wcs_classes()
    reproject_interp((crop, input_pixels(crop.shape)), lattice_map(lat, tx - x0, ty - y0, exact_map),
                     shape_out=lat.shape, order=order, roundtrip_coords=False, return_footprint=False,
                     output_array=out)
    return out
