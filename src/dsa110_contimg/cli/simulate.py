"""``contimg simulate``: groups of correlator-style UVH5 subband files and their truth."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import ContimgError
from ..simulate.core import SimulateOptions
from ..simulate.presets import PRESETS
from .common import settings
from .options import OptionSet

_EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)

SIMULATE = OptionSet(
    SimulateOptions, exclude=("progress",),
    choices={"preset": tuple(PRESETS), "sky": ("default", "realistic"), "predict": ("auto", "direct", "nufft")},
    rename={"output_dir": ("--output-dir", "-o"), "dec_deg": "--dec", "sources_csv": "--sources",
            "calibrator_flux_jy": "--calibrator-flux", "sefd_jy": "--sefd", "gains": "--gains/--unit-gains",
            "phase_drift_deg_per_hour": "--phase-drift", "jitter_s": "--jitter", "sky_min_flux_jy": "--sky-min-flux",
            "sky_min_apparent_jy": "--sky-min-apparent"},
    types={"sources_csv": _EXISTING_FILE, "antpos_csv": _EXISTING_FILE, "sky_catalog": _EXISTING_FILE,
           "truth_image_like": _EXISTING_FILE},
    settings={"output_dir": "incoming_dir"})
"""The flags of ``contimg simulate``, from :class:`~dsa110_contimg.simulate.core.SimulateOptions`."""


@click.command("simulate")
@SIMULATE
def simulate_cmd(**kw) -> None:
    """Write groups of 16 correlator-style UVH5 subband files and their truth."""
    from ..simulate.core import simulate

    opts = SIMULATE.build(kw, settings(), progress=sys.stderr.isatty())
    try:
        res = simulate(opts)
    except ContimgError:
        raise
    except (ValueError, KeyError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    for g in res.groups:
        click.echo(f"group {g.start_iso}: {len(g.files)} files, truth {g.truth_path}")
    click.echo(f"wrote {res.bytes_written / 1e6:.1f} MB in {res.wall_s:.1f} s")
