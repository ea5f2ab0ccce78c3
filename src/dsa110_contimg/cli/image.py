"""``contimg image`` and ``contimg image-worker``: the imaging stage (image, FITS, QA, products database)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ContimgError
from ..imaging.image import ImageOptions
from .common import master_catalog, settings, verbose
from .options import OptionSet

IMAGE = OptionSet(ImageOptions, rename={"threshold_jy": "--threshold"},
                  choices={"backend": ("wsclean", "tclean"), "weighting": ("natural", "uniform", "briggs"),
                           "datacolumn": ("auto", "data", "corrected")})
"""The flags of ``contimg image`` and ``image-worker``, from :class:`~dsa110_contimg.imaging.image.ImageOptions`."""


@click.command("image")
@click.argument("ms_path", type=click.Path(exists=True, path_type=Path))
@IMAGE
def image_cmd(ms_path, **kw) -> None:
    """Image an MS (WSClean or tclean), export FITS, run QA and record the products."""
    from .. import logs
    from ..pipeline.image_stage import image_and_record

    s = settings()
    logs.adopt_astropy()
    catalog = master_catalog(s)
    try:
        res = image_and_record(ms_path, s.products_db, IMAGE.build(kw), catalog if catalog.is_file() else None)
    except ContimgError:
        raise
    except RuntimeError as exc:  # tclean (casatools) fails with a bare RuntimeError: one line too
        if verbose():
            raise
        raise click.ClickException(f"imaging {Path(ms_path).name} failed: {exc}") from None
    img = res.image
    for w in img.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"{img.images.backend}: {img.images.image} ({img.imsize} px x {img.cell_arcsec}\", niter "
               f"{img.niter}, {img.datacolumn})")
    if img.images.pbcor:
        click.echo(f"primary-beam corrected: {img.images.pbcor}")
    if res.qa is not None:
        q = res.qa
        click.echo(f"QA: rms {q.rms_jy * 1e3:.2f} mJy/beam, peak {q.peak_jy:.3f} Jy/beam, DR {q.dynamic_range:.0f}, "
                   f"beam {q.bmaj_arcsec:.1f}\"x{q.bmin_arcsec:.1f}\", {q.n_sources} sources, "
                   f"{q.n_matched} matched; thumbnail {q.thumbnail_path}")
    click.echo("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in {**img.timings, **res.timings}.items()))


@click.group("image-worker")
def image_worker_group() -> None:
    """Image every MS of a folder that has no image yet."""


@image_worker_group.command("scan")
@click.argument("ms_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@IMAGE
def image_worker_scan(ms_dir, **kw) -> None:
    """Image the MSs in MS_DIR not yet in the products DB, once."""
    from ..pipeline.image_worker import scan_once

    s = settings()
    res = scan_once(ms_dir, s.products_db, IMAGE.build(kw))
    click.echo(f"imaged {len(res.imaged)}, already done {res.skipped}, failed {len(res.failed)}")
    for ms, err in res.failed.items():
        click.echo(f"FAILED {ms}: {err}", err=True)


@image_worker_group.command("daemon")
@click.argument("ms_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--interval", type=float, default=30.0, show_default=True, help="Seconds between scans.")
@IMAGE
def image_worker_daemon(ms_dir, interval, **kw) -> None:
    """Keep imaging new MSs in MS_DIR (Ctrl-C to stop)."""
    from ..pipeline.image_worker import run_daemon

    s = settings()
    try:
        run_daemon(ms_dir, s.products_db, IMAGE.build(kw), interval_s=interval)
    except KeyboardInterrupt:
        click.echo("stopped")
