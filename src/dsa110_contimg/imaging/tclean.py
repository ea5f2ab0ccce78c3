"""Run CASA tclean (the reference imager) and export FITS: options mirroring tclean in, :class:`ImageSet` out."""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import EnvironmentFault
from .products import ImageSet
from .wsclean import output_folder_fault

log = logging.getLogger(__name__)


@dataclass
class TcleanOptions:
    """tclean parameters used by the pipeline."""

    imsize: int = 1024
    """imsize (pixels)."""
    cell_arcsec: float = 4.0
    """cell (arcsec)."""
    niter: int = 1000
    """niter."""
    weighting: str = "briggs"
    """weighting: 'natural', 'uniform' or 'briggs'."""
    robust: float = 0.0
    """robust (for briggs)."""
    threshold: str = "0mJy"
    """threshold."""
    nsigma: float = 3.0
    """nsigma: stop at this many sigma of the residual."""
    datacolumn: str = "corrected"
    """datacolumn: 'data' or 'corrected'."""
    gridder: str = "wproject"
    """gridder ('wproject': the array is far from coplanar at DSA-110 declinations)."""
    wprojplanes: int = -1
    """wprojplanes (-1: automatic)."""
    deconvolver: str = "hogbom"
    """deconvolver."""
    specmode: str = "mfs"
    """specmode."""
    stokes: str = "I"
    """stokes."""


def tclean_bytes(imsize: int, export_fits: bool = True) -> int:
    """Bytes tclean needs for its products (psf, residual, model, image, sumwt, plus FITS copies) and 1 MiB slack."""
    n = 5 + (4 if export_fits else 0)
    return n * 4 * imsize * imsize + (1 << 20)


def _check_output_folder(ms, prefix: Path, need_bytes: int, text: str = "") -> None:
    """Raise :class:`EnvironmentFault` when ``prefix``'s folder is read-only or has less than ``need_bytes`` free."""
    fault = output_folder_fault(prefix.absolute().parent, text, need_bytes=need_bytes)
    if fault:
        raise EnvironmentFault(f"{fault}; tclean cannot write the images of {ms}", files=[prefix.absolute().parent])


def run_tclean(ms: str | Path, prefix: str | Path, opts: TcleanOptions, export_fits: bool = True) -> ImageSet:
    """Image one MS with CASA tclean; export FITS unless ``export_fits`` is False.

    Raises
    ------
    EnvironmentFault
        The output folder is read-only or has less room than the products need.  This is
        checked before tclean starts: casacore aborts the whole process (no Python exception)
        when a table write hits a full disk.
    """
    from ..casa_env import prepare_casa

    prepare_casa()
    from casatasks import exportfits, tclean

    prefix = Path(prefix)
    for p in prefix.parent.glob(prefix.name + ".*"):
        if p.is_dir():
            shutil.rmtree(p)
    _check_output_folder(ms, prefix, tclean_bytes(opts.imsize, export_fits))
    after = 4 * opts.imsize * opts.imsize  # after a failure (products partly written): not one more image fits
    kw = asdict(opts)
    kw["cell"] = f"{kw.pop('cell_arcsec')}arcsec"
    try:
        tclean(vis=str(ms), imagename=str(prefix), uvrange=">0.1m", pbcor=False, **kw)
    except Exception as exc:
        _check_output_folder(ms, prefix, after, str(exc))
        raise
    out = ImageSet(backend="tclean", prefix=prefix, command=f"tclean(vis={ms!s}, imagename={prefix!s}, {kw})")
    for attr, ext in (("image", "image"), ("residual", "residual"), ("model", "model"), ("psf", "psf")):
        native = Path(f"{prefix}.{ext}")
        if not native.exists():
            continue
        out.native.append(native)
        if export_fits:
            fits = Path(f"{prefix}-{attr}.fits")
            exportfits(imagename=str(native), fitsimage=str(fits), overwrite=True, dropdeg=False)
            setattr(out, attr, fits)
        else:
            setattr(out, attr, native)
    if out.image is None:
        _check_output_folder(ms, prefix, after)
        raise RuntimeError(f"tclean wrote no image for {ms} (see the CASA log)")
    return out
