"""Run WSClean: options mirroring its flags in, an :class:`ImageSet` out."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ContimgError, EnvironmentFault
from .products import ImageSet

log = logging.getLogger(__name__)


class WSCleanError(ContimgError, RuntimeError):
    """WSClean failed; the one-line message names the MS and carries the last meaningful lines of its output."""


_NO_SPACE = re.compile(r"no space left on device|enospc|disk quota exceeded|edquot|disk full|file system full",
                       re.IGNORECASE)
_READ_ONLY = re.compile(r"read-only file system|erofs", re.IGNORECASE)
_WRITE_ERROR = re.compile(r"error writing|write error|writing to fits file|could not write|cannot write|"
                          r"failed to write|short write|couldn't create|cannot create|could not create",
                          re.IGNORECASE)
_NOISE = re.compile(r"^(?:[+\s]*|[\d%.\s]*|an exception occ?urr?ed:?|wsclean version.*|this software package is.*|"
                    r"author:.*|=+ .* =+|#\s+pol\b.*|\|.*|-[-+]*j-.*)$", re.IGNORECASE)
_EXCEPTION_LINE = re.compile(r"^[+\s]*>>>\s*")


def human_bytes(n: float) -> str:
    """``n`` bytes as '1.5 MiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def meaningful_tail(text: str, n: int = 3) -> str:
    """The informative end of an imager's output, joined by ' | '.

    When WSClean reports an exception (its ``+ >>> message`` block), that message and
    the step it was doing; otherwise the last ``n`` lines that are not banners,
    progress bars or the imaging table.
    """
    raw = (text or "").splitlines()
    cleaned = []
    for line in raw:
        c = _EXCEPTION_LINE.sub("", line) if _EXCEPTION_LINE.match(line) else re.sub(r"^[+\s]+", "", line)
        c = re.sub(r"(?:\s*\+)+\s*$", "", c).strip()  # the '+ + +' banner WSClean prints around exceptions
        cleaned.append("" if _NOISE.match(c) else c)
    exc = [i for i, line in enumerate(raw) if _EXCEPTION_LINE.match(line) and cleaned[i]]
    if exc:
        before = [c for c in cleaned[: exc[0]] if c][-1:]
        return " | ".join(before + [cleaned[i] for i in exc])
    return " | ".join([c for c in cleaned if c][-n:])


def _existing_ancestor(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def output_folder_fault(out_dir: str | Path, text: str = "", need_bytes: int = 0) -> str | None:
    """Why ``out_dir`` cannot take an imager's products, as one line, or None when the folder looks fine.

    The folder is read-only when the output text says so or its file system is
    mounted read-only, and a fault too when this user cannot write it; it is
    full when the text reports ENOSPC (or a quota), when less than
    ``need_bytes`` are free, or when nothing is free and the text reports a
    write error.  (Space freed again by the imager on exit, e.g. temporary
    files, cannot be seen afterwards.)
    """
    out_dir = Path(out_dir).absolute()
    probe = _existing_ancestor(out_dir)
    try:
        usage = shutil.disk_usage(probe)
    except OSError:
        usage = None
    free = f"{human_bytes(usage.free)} free of {human_bytes(usage.total)}" if usage else "free space unknown"
    try:
        read_only = bool(_READ_ONLY.search(text)) or bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = bool(_READ_ONLY.search(text))
    if read_only:
        return f"output folder {out_dir} is on a read-only file system ({free})"
    if not os.access(probe, os.W_OK):
        return f"output folder {out_dir} is not writable by this user ({free})"
    low_space = usage is not None and usage.free < need_bytes
    if _NO_SPACE.search(text) or low_space or (usage is not None and usage.free == 0 and _WRITE_ERROR.search(text)):
        return f"disk full: output folder {out_dir} has {free}"
    return None


def image_bytes(size: int, n_images: int) -> int:
    """Bytes of ``n_images`` float32 FITS images of ``size`` x ``size`` pixels (with headers)."""
    return n_images * (4 * size * size + 2 * 2880)


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
    update_model: bool = False
    """Write the clean components' visibilities to MODEL_DATA (self-calibration); else -no-update-model-required."""
    auto_mask: float | None = None
    """-auto-mask: clean deeper (to -auto-threshold) inside a mask grown at this many sigma."""


def wsclean_binary() -> str | None:
    """Path of the wsclean executable, or None."""
    return shutil.which("wsclean")


def wsclean_command(ms: str | Path, prefix: str | Path, opts: WSCleanOptions) -> list[str]:
    """The WSClean command line for one MS."""
    exe = wsclean_binary() or "wsclean"
    cmd = [exe, "-name", str(prefix), "-size", str(opts.size), str(opts.size), "-scale", f"{opts.scale_arcsec}asec",
           "-niter", str(opts.niter), "-mgain", str(opts.mgain), "-gain", str(opts.gain),
           "-weight", *opts.weight.split(), "-data-column", opts.data_column, "-pol", opts.pol,
           "-j", str(opts.threads), "-mem", str(opts.mem_percent)]
    if not opts.update_model:
        cmd.append("-no-update-model-required")
    if opts.threshold_jy is not None:
        cmd += ["-threshold", str(opts.threshold_jy)]
    if opts.auto_threshold is not None:
        cmd += ["-auto-threshold", str(opts.auto_threshold)]
    if opts.auto_mask is not None:
        cmd += ["-auto-mask", str(opts.auto_mask)]
    if opts.use_wgridder:
        cmd.append("-use-wgridder")
    cmd.append(str(ms))
    return cmd


def run_wsclean(ms: str | Path, prefix: str | Path, opts: WSCleanOptions, timeout_s: float = 3600) -> ImageSet:
    """Image one MS with WSClean.

    Raises
    ------
    EnvironmentFault
        WSClean failed and its output folder is full or read-only.
    WSCleanError
        WSClean is missing or exits with an error (or writes no image) for another reason.
    """
    if wsclean_binary() is None:
        raise WSCleanError("wsclean is not installed (Debian package 'wsclean')")
    cmd = wsclean_command(ms, prefix, opts)
    log.info("running %s", " ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if p.returncode != 0:
        _raise_failure(ms, prefix, opts, f"exit {p.returncode}", f"{p.stdout or ''}\n{p.stderr or ''}")
    prefix = Path(prefix)
    out = ImageSet(backend="wsclean", prefix=prefix, command=" ".join(cmd))
    for attr, suffix in (("image", "image"), ("residual", "residual"), ("model", "model"), ("psf", "psf")):
        path = prefix.with_name(f"{prefix.name}-{suffix}.fits")
        if path.exists():
            setattr(out, attr, path)
    if out.image is None:
        _raise_failure(ms, prefix, opts, "no image written", f"{p.stdout or ''}\n{p.stderr or ''}")
    return out


def _raise_failure(ms, prefix, opts: WSCleanOptions, what: str, output: str) -> None:
    """Raise :class:`EnvironmentFault` when the output folder is full or read-only, else :class:`WSCleanError`."""
    tail = meaningful_tail(output) or "no output"
    out_dir = Path(prefix).absolute().parent
    # WSClean reports a full disk only as a CFITSIO write error; 2 images is its smallest write set (dirty, psf)
    fault = output_folder_fault(out_dir, output, need_bytes=image_bytes(opts.size, 2))
    if fault:
        raise EnvironmentFault(f"{fault}; wsclean could not write the images of {ms} ({tail})", files=[out_dir])
    raise WSCleanError(f"wsclean failed on {ms} ({what}): {tail}", files=[ms])
