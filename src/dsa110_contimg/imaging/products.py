"""The products of one imaging run, as the pipeline passes them along (flint's ``ImageSet``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ImageSet:
    """Files written by an imager for one MS."""

    backend: str
    """'wsclean' or 'tclean'."""
    prefix: Path
    """Name prefix of the products."""
    image: Path | None = None
    """Restored image (FITS, or CASA image with --skip-fits for tclean)."""
    residual: Path | None = None
    """Residual image."""
    model: Path | None = None
    """Clean-component model image."""
    psf: Path | None = None
    """Point-spread function."""
    pbcor: Path | None = None
    """Primary-beam-corrected restored image (FITS)."""
    native: list[Path] = field(default_factory=list)
    """Native products of the backend (CASA images for tclean)."""
    command: str = ""
    """The command or call that made them."""
