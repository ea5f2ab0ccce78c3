"""The stage commands' flags are generated from the options dataclasses: one default, one help text.

Every existing flag (tests, README, docs) keeps working and maps onto its field; the
options object is built once from the parsed values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import click
import pytest

from dsa110_contimg.cli.options import OptionSet, field_docs


@dataclass(frozen=True)
class _Toy:
    """A stage's options."""

    out: Path
    """Where the products go."""
    mode: Literal["fast", "slow"] = "fast"
    """How to run: 'fast' or 'slow'."""
    niter: int = 100
    """Clean iterations."""
    gain: float | None = None
    """Loop gain; default ``None``: the imager's."""
    quick: bool = False
    """Cap the image size."""
    pbcor: bool = True
    """Also write the :class:`~x.y.PrimaryBeam`-corrected image."""
    centre: tuple[float, float] | None = None
    """Phase centre (deg)."""
    subbands: tuple[int, ...] | None = None
    """Only these subbands."""
    threshold_jy: float = 0.0
    """Stopping threshold (Jy)."""


def _parse(command: click.Command, args: list[str]) -> dict:
    return command.make_context(command.name or "cmd", list(args)).params


def test_flags_types_defaults_and_help_come_from_the_dataclass(tmp_path):
    toy = OptionSet(_Toy, rename={"threshold_jy": "--threshold"})

    @click.command()
    @toy
    def cmd(**kw):
        pass

    by_name = {o.name: o for o in cmd.params}
    assert set(by_name) == {f.name for f in dataclasses.fields(_Toy)}
    assert by_name["out"].required
    assert isinstance(by_name["mode"].type, click.Choice) and list(by_name["mode"].type.choices) == ["fast", "slow"]
    assert by_name["niter"].default == 100 and by_name["niter"].help == "Clean iterations."
    assert by_name["gain"].help == "Loop gain; default None: the imager's."
    assert by_name["quick"].is_flag and by_name["quick"].opts == ["--quick"]
    assert by_name["pbcor"].opts == ["--pbcor"] and by_name["pbcor"].secondary_opts == ["--no-pbcor"]
    assert by_name["pbcor"].help == "Also write the PrimaryBeam-corrected image."
    assert by_name["threshold_jy"].opts == ["--threshold"]
    params = _parse(cmd, ["--out", str(tmp_path), "--mode", "slow", "--quick", "--no-pbcor", "--centre", "1", "2",
                          "--subbands", "3", "--subbands", "5", "--threshold", "0.5"])
    opts = toy.build(params)
    assert opts == _Toy(tmp_path, "slow", 100, None, True, False, (1.0, 2.0), (3, 5), 0.5)
    assert toy.build(_parse(cmd, ["--out", str(tmp_path)])) == _Toy(tmp_path)  # the dataclass's own defaults
    with pytest.raises(click.UsageError):
        _parse(cmd, ["--out", str(tmp_path), "--mode", "medium"])


def test_settings_defaults_and_fixed_fields(tmp_path):
    class S:
        incoming_dir = tmp_path / "incoming"

    toy = OptionSet(_Toy, exclude=("centre",), settings={"out": "incoming_dir"})

    @click.command()
    @toy
    def cmd(**kw):
        pass

    out = next(o for o in cmd.params if o.name == "out")
    assert not out.required and out.default is None and "PIPELINE_INCOMING_DIR" in out.help
    assert toy.build(_parse(cmd, []), S(), centre=(5.0, 6.0)) == _Toy(S.incoming_dir, centre=(5.0, 6.0))
    assert toy.build(_parse(cmd, ["--out", "x"]), S()).out == Path("x")


def test_mistakes_are_caught_when_the_command_is_defined():
    with pytest.raises(TypeError, match="no field"):
        OptionSet(_Toy, rename={"nope": "--nope"})

    @dataclass
    class Bad:
        fn: object = None
        """A callable."""

    with pytest.raises(TypeError, match="Bad.fn"):
        OptionSet(Bad)
    assert OptionSet(Bad, exclude=("fn",)).names == ()


def test_field_docs_reads_the_attribute_docstrings():
    from dsa110_contimg.conversion.convert import ConvertOptions

    docs = field_docs(ConvertOptions)
    assert set(docs) == {f.name for f in dataclasses.fields(ConvertOptions)}
    assert docs["tolerance_s"] == "Timestamp tolerance for grouping (s)."


# ---------------------------------------------------------------------------- the real commands


def _command(path: str) -> click.Command:
    from dsa110_contimg.cli import main

    cmd: click.Command = main
    for name in path.split():
        ctx = click.Context(cmd)
        cmd = cmd.get_command(ctx, name)  # type: ignore[attr-defined]
    return cmd


STAGE_COMMANDS = [
    ("convert", "dsa110_contimg.conversion.convert", "ConvertOptions", "dsa110_contimg.cli.convert", "CONVERT"),
    ("image", "dsa110_contimg.imaging.image", "ImageOptions", "dsa110_contimg.cli.image", "IMAGE"),
    ("image-worker scan", "dsa110_contimg.imaging.image", "ImageOptions", "dsa110_contimg.cli.image", "IMAGE"),
    ("calibrate", "dsa110_contimg.calibration.solve", "CalibrateOptions", "dsa110_contimg.cli.calibrate",
     "CALIBRATE"),
    ("calibrators find", "dsa110_contimg.calibration.transits", "FindOptions", "dsa110_contimg.cli.calibrate",
     "FIND"),
    ("stream", "dsa110_contimg.pipeline.stream", "StreamOptions", "dsa110_contimg.cli.stream", "STREAM"),
    ("simulate", "dsa110_contimg.simulate.core", "SimulateOptions", "dsa110_contimg.cli.simulate", "SIMULATE"),
]


@pytest.mark.parametrize("path, module, cls_name, cli_module, attr", STAGE_COMMANDS,
                         ids=[c[0] for c in STAGE_COMMANDS])
def test_each_stage_flag_is_its_field(path, module, cls_name, cli_module, attr):
    import importlib

    cls = getattr(importlib.import_module(module), cls_name)
    option_set = getattr(importlib.import_module(cli_module), attr)
    cmd = _command(path)
    docs = field_docs(cls)
    params = {p.name: p for p in cmd.params}
    for f in dataclasses.fields(cls):
        if f.name not in option_set.names:
            continue
        p = params[f.name]
        assert docs[f.name].split(" (")[0].replace("``", "")[:20] in (p.help or ""), (f.name, p.help)
        if f.default is not dataclasses.MISSING and p.default is not None and not p.multiple:
            assert p.default == f.default, f.name  # one default: the dataclass's


def test_existing_flags_still_map_onto_their_fields(tmp_path):
    from dsa110_contimg.cli.calibrate import CALIBRATE
    from dsa110_contimg.cli.convert import CONVERT
    from dsa110_contimg.cli.image import IMAGE
    from dsa110_contimg.cli.simulate import SIMULATE
    from dsa110_contimg.cli.stream import STREAM
    from dsa110_contimg.config import load_settings

    s = load_settings({"PIPELINE_STATE_DIR": str(tmp_path)})
    src = tmp_path / "src.csv"
    src.write_text("ra_deg,dec_deg,flux_jy,alpha\n1,2,3,-0.7\n")
    sim = SIMULATE.build(_parse(_command("simulate"), [
        "-o", str(tmp_path / "o"), "--preset", "small", "--groups", "2", "--dec", "55", "--sources", str(src),
        "--n-sources", "3", "--calibrator", "3C147", "--calibrator-flux", "20", "--seed", "4", "--no-noise",
        "--sefd", "5000", "--unit-gains", "--phase-drift", "1.5", "--flag-fraction", "0.1", "--jitter", "0"]), s)
    assert (sim.output_dir, sim.dec_deg, sim.sources_csv, sim.calibrator_flux_jy, sim.noise, sim.sefd_jy, sim.gains,
            sim.phase_drift_deg_per_hour, sim.jitter_s) == (tmp_path / "o", 55.0, src, 20.0, False, 5000.0, False,
                                                            1.5, 0.0)
    assert SIMULATE.build(_parse(_command("simulate"), []), s).output_dir == s.incoming_dir

    conv = CONVERT.build(_parse(_command("convert"), [
        str(tmp_path), str(tmp_path / "ms"), "--writer", "monolithic", "--tolerance-s", "10", "--allow-partial",
        "--skip-existing", "--dry-run", "--phase-per-integration"]), s, output_dir=tmp_path / "ms")
    assert (conv.writer, conv.tolerance_s, conv.allow_partial, conv.skip_existing, conv.dry_run,
            conv.phase_per_integration) == ("monolithic", 10.0, True, True, True, True)
    assert (conv.stage_dir, conv.expected_subbands, conv.telescope_name) == (s.stage_dir, s.expected_subbands,
                                                                             s.telescope_name)

    img = IMAGE.build(_parse(_command("image"), [
        str(tmp_path), "--backend", "tclean", "--quick", "--skip-fits", "--imsize", "256", "--cell-arcsec", "4",
        "--niter", "10", "--weighting", "briggs", "--robust", "0.5", "--threshold", "0.01", "--datacolumn", "data"]))
    assert (img.backend, img.quick, img.skip_fits, img.imsize, img.cell_arcsec, img.niter, img.robust,
            img.threshold_jy, img.datacolumn) == ("tclean", True, True, 256, 4.0, 10, 0.5, 0.01, "data")

    cal = CALIBRATE.build(_parse(_command("calibrate"), [
        str(tmp_path), "--field", "0", "--refant", "104", "--do-k", "--gain-calmode", "ap", "--gain-solint", "int",
        "--uvrange", ">100m", "--minsnr", "2", "--fast", "--min-baseline-m", "30", "--calibrator", "3C147"]))
    assert (cal.field, cal.refant, cal.do_k, cal.gain_calmode, cal.fast, cal.min_baseline_m, cal.calibrator) == (
        "0", "104", True, "ap", True, 30.0, "3C147")

    st = STREAM.build(_parse(_command("stream"), [
        "--workers", "2", "--executor", "inline", "--poll", "0.2", "--no-inotify", "--group-timeout-s", "5",
        "--max-retries", "1", "--stage-timeout-s", "9", "--init", "--until-idle"]), s)
    assert (st.workers, st.executor, st.poll_interval_s, st.use_inotify, st.group_timeout_s, st.max_retries,
            st.stage_timeout_s, st.init) == (2, "inline", 0.2, False, 5.0, 1, 9.0, True)
    assert (st.input_dir, st.output_dir) == (s.incoming_dir, s.output_dir)


def test_convert_calibrator_is_built_into_the_options_once(tmp_path, monkeypatch):
    """``--calibrator`` gives the phase centre and field name at construction (no mutation afterwards)."""
    from click.testing import CliRunner

    import dsa110_contimg.conversion.convert as convert
    from dsa110_contimg.cli import main

    seen = []
    monkeypatch.setattr(convert, "convert_directory", lambda d, opts, start, end: seen.append(opts) or [])
    monkeypatch.setattr("dsa110_contimg.casa_env.prepare_casa", lambda *a, **k: None)
    r = CliRunner().invoke(main, ["convert", str(tmp_path), str(tmp_path / "out"), "--calibrator", "3C147"])
    assert r.exit_code == 0, r.output
    (opts,) = seen
    assert opts.field_name == "3C147" and opts.phase_center_deg == pytest.approx((85.6506, 49.852), abs=1e-3)
    r = CliRunner().invoke(main, ["convert", str(tmp_path), str(tmp_path / "out"), "--calibrator", "NOPE"])
    assert r.exit_code == 1 and "NOPE" in r.output


def test_help_lists_every_command_without_importing_them():
    import subprocess
    import sys

    code = ("import sys; from click.testing import CliRunner; from dsa110_contimg.cli import main, COMMANDS; "
            "r = CliRunner().invoke(main, ['--help']); "
            "assert r.exit_code == 0 and all(n in r.output for n in COMMANDS), r.output; "
            "print([m for m in ('numpy', 'casatools', 'distributed', 'pyuvdata', 'fastapi') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
