"""``contimg mosaic``: a primary-beam-weighted linear mosaic of groups' images, recorded in the products database."""

from __future__ import annotations

from pathlib import Path

import click

from .common import settings

_EXCLUDE = ("out", "catalog_path", "threads", "exact_coords", "lattice_deg")


def _option_set():
    from ..mosaic.models import MosaicOptions
    from .options import OptionSet

    return OptionSet(MosaicOptions, exclude=_EXCLUDE, choices={"projection": ("auto", "SIN", "CAR"),
                                                              "order": ("bicubic", "bilinear")})


def _with_options(fn):
    """Decorate with the :class:`~dsa110_contimg.mosaic.models.MosaicOptions` flags (imported when the command
    is loaded, not when the CLI starts)."""
    return _option_set()(fn)


def _mjd(text: str, flag: str) -> float:
    from astropy.time import Time

    try:
        return float(Time(text, scale="utc").mjd)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a time (ISO, e.g. 2025-10-02T00:00:00)", param_hint=flag) from None


@click.command("mosaic")
@click.argument("group_ids", nargs=-1)
@click.option("--start", "start", default=None, help="Mosaic the groups whose mid-time is at or after this (UTC ISO).")
@click.option("--end", "end", default=None, help="... and at or before this (UTC ISO); with --start.")
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Mosaic FITS (the weight, noise and preview files go beside it); default "
                   "<output_dir>/mosaics/<name>.fits.")
@click.option("--name", default=None, help="Name of the mosaic in the products database (default: from the groups).")
@click.option("--rms-factor", type=float, default=3.0, show_default=True,
              help="Leave out images whose rms is above this many times the median of the inputs' (0: no cut).")
@_with_options
def mosaic_cmd(group_ids, start, end, out, name, rms_factor, **kw) -> None:
    """Combine the groups' images (before primary-beam correction) into a linear mosaic weighted by pb^2 / rms^2.

    Give the groups by id, or a time range with --start and --end.  Writes the mosaic, its weight and predicted
    noise maps (FITS) and a preview PNG, records them in the products database, and lists the images left out.
    """
    from ..db import products as pdb
    from ..db import queue as q
    from ..errors import ContimgError
    from ..pipeline.mosaic_stage import MosaicJob, record_mosaic, run_mosaic
    from ..pipeline.mosaic_windows import fingerprint, images_between, window_inputs

    if bool(group_ids) == bool(start or end):
        raise click.UsageError("give GROUP_IDs or --start/--end, not both and not neither")
    if bool(start) != bool(end):
        raise click.UsageError("--start and --end go together")
    s = settings()
    conn = pdb.connect(s.products_db)
    try:
        if group_ids:
            qconn = q.connect(s.queue_db)
            try:
                states = {g: (row.state if (row := q.get_group(qconn, g)) else "unknown to the queue")
                          for g in group_ids}
            finally:
                qconn.close()
            inputs = window_inputs(conn, states, s.output_dir)
        else:
            inputs = images_between(conn, _mjd(start, "--start"), _mjd(end, "--end"))
            if not inputs:
                raise click.ClickException(f"no image of a group between {start} and {end} in {s.products_db}")
        name = name or (inputs[0].group_id if len(inputs) == 1 else f"{inputs[0].group_id}_{inputs[-1].group_id}")
        out_dir, stem = (out.parent, out.name[:-5] if out.name.endswith(".fits") else out.name) if out \
            else (s.output_dir / "mosaics", name)
        opts = _option_set().build(kw, s)
        overrides = {k: getattr(opts, k) for k in kw if hasattr(opts, k)}
        catalog = s.catalog_path if s.catalog_path.is_file() else None
        job = MosaicJob(name, tuple(inputs), out_dir, fingerprint(inputs), catalog, rms_factor or None, overrides,
                        stem)
        rec = record_mosaic(conn, run_mosaic(job))
    finally:
        conn.close()
    for i in rec.inputs:
        if not i.get("used"):
            click.echo(f"  left out {i['group_id']}: {i.get('reason')}")
    if rec.status != "ok":
        raise ContimgError(f"mosaic {name}: {rec.error}")
    noise = f" (predicted {1e3 * rec.noise_median_jy:.3g})" if rec.noise_median_jy else ""
    rms = f"{1e3 * rec.rms_jy:.3g}" if rec.rms_jy else "?"
    click.echo(f"mosaic {name}: {rec.n_used}/{rec.n_inputs} images, {rec.projection}, rms {rms} mJy/beam{noise}, "
               f"{rec.seconds:.1f} s")
    for label, p in (("mosaic", rec.path), ("weight", rec.weight_path), ("noise", rec.noise_path),
                     ("preview", rec.preview_path)):
        if p:
            click.echo(f"  {label}: {p}")
