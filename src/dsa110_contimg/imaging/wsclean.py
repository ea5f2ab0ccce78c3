"""Run WSClean: options mirroring its flags in, an :class:`ImageSet` out."""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .products import ImageSet

log = logging.getLogger(__name__)


class WSCleanError(RuntimeError):
    """WSClean failed; the message carries the end of its output."""


@dataclass
class WSCleanOptions:
    """WSClean flags used by the pipeline."""

    size: int = 1024
    """-size N N: image width and height (pixels)."""
    scale_arcsec: float = 4.0
    """-scale: pixel size (arcsec)."""
    niter: int = 1000
    """-niter: maximum number of clean iterations."""
    weight: str = "briggs 0"
    """-weight: 'natural', 'uniform' or 'briggs R'."""
    threshold_jy: float | None = None
    """-threshold: absolute stopping threshold (Jy)."""
    auto_threshold: float | None = 3.0
    """-auto-threshold: stop at this many sigma of the residual."""
    mgain: float = 0.8
    """-mgain: major-cycle gain."""
    gain: float = 0.1
    """-gain: minor-cycle loop gain."""
    data_column: str = "CORRECTED_DATA"
    """-data-column."""
    pol: str = "I"
    """-pol."""
    use_wgridder: bool = True
    """-use-wgridder: accurate w-gridder (the default w-stacking over-cleans sparse DSA-110 PSFs)."""
    threads: int = 2
    """-j: threads."""
    mem_percent: int = 50
    """-mem: maximum memory use (percent)."""


def wsclean_binary() -> str | None:
    """Path of the wsclean executable, or None."""
    return shutil.which("wsclean")


def wsclean_command(ms: str | Path, prefix: str | Path, opts: WSCleanOptions) -> list[str]:
    """The WSClean command line for one MS."""
    exe = wsclean_binary() or "wsclean"
    cmd = [exe, "-name", str(prefix), "-size", str(opts.size), str(opts.size), "-scale", f"{opts.scale_arcsec}asec",
           "-niter", str(opts.niter), "-mgain", str(opts.mgain), "-gain", str(opts.gain),
           "-weight", *opts.weight.split(), "-data-column", opts.data_column, "-pol", opts.pol,
           "-j", str(opts.threads), "-mem", str(opts.mem_percent), "-no-update-model-required"]
    if opts.threshold_jy is not None:
        cmd += ["-threshold", str(opts.threshold_jy)]
    if opts.auto_threshold is not None:
        cmd += ["-auto-threshold", str(opts.auto_threshold)]
    if opts.use_wgridder:
        cmd.append("-use-wgridder")
    cmd.append(str(ms))
    return cmd


def run_wsclean(ms: str | Path, prefix: str | Path, opts: WSCleanOptions, timeout_s: float = 3600) -> ImageSet:
    """Image one MS with WSClean.

    Raises
    ------
    WSCleanError
        WSClean is missing or exits with an error.
    """
    if wsclean_binary() is None:
        raise WSCleanError("wsclean is not installed (Debian package 'wsclean')")
    cmd = wsclean_command(ms, prefix, opts)
    log.info("running %s", " ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()[-5:]
        raise WSCleanError(f"wsclean failed on {ms} (exit {p.returncode}): {' | '.join(tail)}")
    prefix = Path(prefix)
    out = ImageSet(backend="wsclean", prefix=prefix, command=" ".join(cmd))
    for attr, suffix in (("image", "image"), ("residual", "residual"), ("model", "model"), ("psf", "psf")):
        path = prefix.with_name(f"{prefix.name}-{suffix}.fits")
        if path.exists():
            setattr(out, attr, path)
    if out.image is None:
        raise WSCleanError(f"wsclean wrote no image for {ms}")
    return out
