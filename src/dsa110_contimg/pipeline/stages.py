"""The stage registry: every stage of a group's chain, in order, with how it runs and how it is recorded.

The daemon, the demo and the API iterate :data:`REGISTRY`; adding a stage is one
new module (a ``run`` function on workers and a ``record`` function in the
daemon) plus one entry here.

Examples
--------
>>> [s.stage.value for s in REGISTRY]
['convert', 'flag', 'calibrate', 'apply', 'image', 'photometry']
>>> checkpoints()
('converted', 'flagged', 'calibrated', 'applied', 'imaged', 'photometered')
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass
from typing import Callable

from . import chain, flag_stage, photometry_stage, recording


class Stage(str, enum.Enum):
    """The stages of a group's chain."""

    CONVERT = "convert"
    FLAG = "flag"
    CALIBRATE = "calibrate"
    APPLY = "apply"
    IMAGE = "image"
    PHOTOMETRY = "photometry"


@dataclass(frozen=True)
class Timing:
    """A time the API shows for a stage: the sum of some ``performance_metrics`` columns."""

    name: str
    """Name shown (``convert``, ``calibrate``, ``apply``, ``image``, ``qa``)."""
    columns: tuple[str, ...]
    """Columns summed."""
    total: str | None = None
    """Column of the whole stage's time, preferred when recorded."""


@dataclass(frozen=True)
class StageSpec:
    """One entry of the registry."""

    stage: Stage
    """Which stage."""
    checkpoint: str
    """Value of the queue's ``processing_stage`` once it is done."""
    run: Callable[[chain.StageJob], chain.StageOutcome]
    """Computes the stage on a worker (no database writes)."""
    record: Callable[[sqlite3.Connection, object, chain.StageOutcome], None]
    """Records its outcome in the daemon (queue connection, settings, outcome)."""
    needed: Callable[[chain.StageJob], bool]
    """Whether the group goes through this stage (e.g. calibration only for a calibrator group)."""
    timings: tuple[Timing, ...]
    """Times shown by the API for it."""


def _always(job: chain.StageJob) -> bool:
    return True


def _calibrator_group(job: chain.StageJob) -> bool:
    return job.calibrator is not None


REGISTRY: tuple[StageSpec, ...] = (
    StageSpec(Stage.CONVERT, "converted", chain.run_convert, recording.record_convert, _always,
              (Timing("convert", ("total_time",)),)),
    StageSpec(Stage.FLAG, flag_stage.CHECKPOINT, flag_stage.run_flag, flag_stage.record_flag, flag_stage.needed,
              (Timing("flag", ("flag_time",)),)),
    StageSpec(Stage.CALIBRATE, "calibrated", chain.run_calibrate, recording.record_calibrate, _calibrator_group,
              (Timing("calibrate", ("cal_k_time", "cal_b_time", "cal_g_time"), "calibrate_time"),)),
    StageSpec(Stage.APPLY, "applied", chain.run_apply, recording.record_apply, _always,
              (Timing("apply", ("apply_time",)),)),
    StageSpec(Stage.IMAGE, "imaged", chain.run_image, recording.record_image, _always,
              (Timing("image", ("image_time",)), Timing("qa", ("qa_time",)))),
    StageSpec(Stage.PHOTOMETRY, photometry_stage.CHECKPOINT, photometry_stage.run_photometry,
              photometry_stage.record_photometry, photometry_stage.needed,
              (Timing("photometry", ("photometry_time",)),)),
)
"""Every stage, in the order a group goes through them."""


def checkpoints() -> tuple[str, ...]:
    """The checkpoints, in order (``processing_stage`` holds the last one finished)."""
    return tuple(s.checkpoint for s in REGISTRY)


def by_checkpoint(checkpoint: str) -> StageSpec:
    """The stage that records ``checkpoint``; ``KeyError`` for an unknown one."""
    for s in REGISTRY:
        if s.checkpoint == checkpoint:
            return s
    raise KeyError(checkpoint)


def next_stage(done: str | None, job: chain.StageJob) -> StageSpec | None:
    """The first stage after checkpoint ``done`` (``None``: from the start) that ``job`` needs; ``None`` when finished."""
    order = checkpoints()
    start = order.index(done) + 1 if done in order else 0
    for spec in REGISTRY[start:]:
        if spec.needed(job):
            return spec
    return None


def timings() -> tuple[Timing, ...]:
    """Every time the API shows, in chain order."""
    return tuple(t for s in REGISTRY for t in s.timings)


def checkpoint_of_timing(name: str) -> str:
    """The checkpoint after which the time ``name`` has been spent (``qa`` -> ``imaged``)."""
    for s in REGISTRY:
        if any(t.name == name for t in s.timings):
            return s.checkpoint
    raise KeyError(name)
