"""The streaming daemon: watch the incoming folder, queue groups, run their chains on Dask.

Only this process writes the SQLite databases (queue, registry, products);
stages run on Dask workers (an embedded ``LocalCluster`` by default, an existing
cluster with ``scheduler``) or in-process (``executor='inline'``) and return
results that the daemon records.  Every stage is checkpointed in the queue, so a
restart resumes a group from its last finished stage.

Nothing a group does stops the daemon: a stage's exception is classified
(:func:`dsa110_contimg.errors.classify`): bad input fails the group and
quarantines its files, an environment fault (disk full, damaged database) defers
it without using up its retries, anything else is retried with backoff and
recorded with the stage and the files.  A stage running longer than
``stage_timeout_s`` is killed (its Dask worker restarted) and retried.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..calibration.apply import NoValidCalibrationError
from ..catalog.calibrators import bundled_calibrators
from ..config import quarantine_dir
from ..conversion.convert import ms_name
from ..conversion.staging import clean_orphan_staging
from ..db import queue as q
from ..db.health import check_startup
from ..errors import BAD_INPUT, ENVIRONMENT, StageTimeout, classify, one_line
from ..ms import read_ms_info
from ..telescope import GROUP_SECONDS
from . import chain, stages
from .executors import kill_running, make_executor, sigterm_raises
from .ingest import compare_duplicates, scan_folder, start_watcher
from .mosaic_daemon import MosaicScheduler

log = logging.getLogger(__name__)


@dataclass
class StreamOptions:
    """Options of the daemon (mirrors ``contimg stream``)."""

    input_dir: Path
    """Folder the correlator writes to."""
    output_dir: Path
    """Folder of the Measurement Sets and images."""
    workers: int = 1
    """Groups processed at once (Dask workers of the embedded cluster)."""
    scheduler: str | None = None
    """Address of an existing Dask scheduler (tcp://host:8786)."""
    executor: str = "dask"
    """'dask' or 'inline' (in-process, for tests and debugging; no stage timeout)."""
    poll_interval_s: float = 1.0
    """Main-loop period; also the polling interval of the fallback watcher."""
    use_inotify: bool = True
    """Watch with inotify (watchdog) to wake the loop early; False polls only (network filesystems)."""
    group_timeout_s: float = 2 * GROUP_SECONDS
    """A group still incomplete after this long is processed as a partial group."""
    tolerance_s: float = 30.0
    """Timestamp tolerance for grouping files."""
    max_retries: int = 3
    """Attempts before a group is failed."""
    backoff_s: float = 30.0
    """First retry delay (doubles every retry)."""
    quick_image: bool = True
    """Quick imaging of every group."""
    hold_retry_s: float = 60.0
    """How long a group waiting for a calibration set is held before it is tried again."""
    stage_timeout_s: float | None = None
    """Wall-clock limit of one stage (s); ``None``: the settings' ``PIPELINE_STAGE_TIMEOUT_S``."""
    environment_retry_s: float = 60.0
    """Delay before a group deferred by an environment fault (disk full, ...) is tried again."""
    flagger: str = "aoflagger"
    """RFI flagger of the flag stage: 'aoflagger', 'casa' or 'none' (skip RFI flagging)."""
    init: bool = False
    """Start even though the queue database is missing while products exist (a new queue)."""


@dataclass
class DaemonStats:
    """What a run of the loop did."""

    completed: list[str] = field(default_factory=list)
    """Groups completed."""
    failed: list[str] = field(default_factory=list)
    """Groups failed."""


@dataclass
class _Running:
    stage: str
    fut: Future
    files: dict
    started: float


class StreamDaemon:
    """Watch, queue and process groups; see the module docstring."""

    def __init__(self, opts: StreamOptions, settings):
        self.opts = opts
        self.settings = settings
        self.cfg = chain.ChainConfig(
            output_dir=Path(opts.output_dir), stage_dir=settings.stage_dir, antpos_csv=settings.antpos_csv,
            telescope_name=settings.telescope_name, cal_registry_db=settings.cal_registry_db,
            expected_subbands=settings.expected_subbands, quick_image=opts.quick_image,
            catalog_path=_catalog(settings), products_db=Path(settings.products_db), flagger=opts.flagger,
            selfcal=chain.selfcal_options(settings))
        self.timeout_s = float(opts.stage_timeout_s if opts.stage_timeout_s is not None
                               else getattr(settings, "stage_timeout_s", 1800.0))
        self.quarantine = quarantine_dir(opts.input_dir)
        self.running: dict[str, _Running] = {}
        self.executor = None
        self._cluster = None
        self.observer = None
        self.stats = DaemonStats()
        self._seen: set[str] = set()  # files already handed to the queue by this process
        self._wake = threading.Event()
        self.mosaics = MosaicScheduler(settings, Path(opts.output_dir), self.cfg.catalog_path, opts.executor == "inline")

    # ------------------------------------------------------------------ set-up
    def start(self) -> None:
        """Check the databases, housekeeping, start the executor and the watcher, scan what arrived meanwhile.

        Raises
        ------
        dsa110_contimg.db.health.StartupRefused
            The queue database is missing while products exist (without ``init``), or a
            database is damaged; the message names the file.
        """

        check_startup(self.settings, init=self.opts.init)
        Path(self.opts.output_dir).mkdir(parents=True, exist_ok=True)
        conn = q.connect(self.settings.queue_db)
        try:
            stale = q.reset_stale(conn)
            if stale:
                log.warning("re-queued %d group(s) left in progress by a crash: %s", len(stale), ", ".join(stale))
            self.mosaics.start(conn)
        finally:
            conn.close()
        clean_orphan_staging([Path(self.settings.stage_dir), Path(self.opts.output_dir)])
        self.executor, self._cluster = make_executor(self.opts.executor, self.opts.workers, self.opts.scheduler)
        self.scan()
        if self.opts.use_inotify:
            self.observer = start_watcher(Path(self.opts.input_dir), self._wake)

    def stop(self) -> None:
        """Stop the watcher and the executor; the last heartbeat says the daemon stopped."""

        try:
            conn = q.connect(self.settings.queue_db)
            try:
                q.beat(conn, "stream", {"pid": os.getpid(), "host": socket.gethostname(), "running": [],
                                        "executor": self.opts.executor, "stopped": True})
            finally:
                conn.close()
        except Exception as exc:  # noqa: BLE001 - stopping must go on
            log.error("cannot write the last heartbeat: %s", exc)
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
        self.mosaics.close()
        if self.executor is not None:
            self.executor.close()
            self.executor = None
        if self._cluster is not None:  # a client does not close the cluster it was handed
            self._cluster.close()
            self._cluster = None

    # ------------------------------------------------------------------ ingest
    def scan(self) -> int:
        """Register the new subband files of the incoming folder; set aside the rest; compare duplicates.

        Never raises for a bad file (see :mod:`.ingest`).
        """

        conn = q.connect(self.settings.queue_db)
        try:
            n = scan_folder(conn, Path(self.opts.input_dir), self._seen, self.opts.tolerance_s,
                            self.settings.expected_subbands)
            compare_duplicates(conn)
        finally:
            conn.close()
        return n

    # ------------------------------------------------------------------ loop
    def step(self) -> None:
        """One pass: ingest, promote, dispatch stages, record the finished ones, kill the overdue ones."""

        self.scan()
        conn = q.connect(self.settings.queue_db)
        try:
            q.promote_timed_out(conn, timeout_s=self.opts.group_timeout_s)
            q.release_held(conn)
            self._collect(conn)
            self._expire(conn)
            while len(self.running) < max(1, self.opts.workers):
                row = q.claim_next(conn)
                if row is None:
                    break
                self._guarded(conn, row.group_id, "dispatch", row.files, self._dispatch, conn, row.group_id)
            self.mosaics.poll(conn)
            mosaic = [f"mosaic {self.mosaics.running[0].name}"] if self.mosaics.running else []
            q.beat(conn, "stream", {"pid": os.getpid(), "host": socket.gethostname(),
                                    "running": sorted(self.running) + mosaic, "executor": self.opts.executor})
        finally:
            conn.close()

    def run(self, max_seconds: float | None = None, until_idle: bool = False,
            more_coming: Callable[[], bool] | None = None) -> DaemonStats:
        """Loop until interrupted (SIGINT/SIGTERM), ``max_seconds``, or (``until_idle``) nothing is left to do.

        ``more_coming`` (e.g. a feeder thread's ``is_alive``) keeps an idle loop going while it is true.

        An error of one pass (e.g. the queue database became unreadable) is logged on one
        line naming the file, and the loop goes on after a pause.
        """
        previous = sigterm_raises()
        self.start()
        t0 = time.monotonic()
        errors = 0
        try:
            while True:
                try:
                    self.step()
                    if (until_idle and not self.running and not (more_coming and more_coming()) and self._idle()
                            and not self.mosaics.drain()):
                        break
                    errors = 0
                except Exception as exc:  # noqa: BLE001 - the daemon never dies of one pass
                    errors += 1
                    log.error("daemon loop: %s: %s (pass %d failed; retrying)", type(exc).__name__,
                              one_line(str(exc)), errors)
                    time.sleep(min(60.0, self.opts.poll_interval_s * 2 ** min(errors, 6)))
                if max_seconds is not None and time.monotonic() - t0 > max_seconds:
                    break
                self._wake.wait(self.opts.poll_interval_s)
                self._wake.clear()
        finally:
            self.stop()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return self.stats

    def _idle(self) -> bool:
        """Nothing left to do: no group collecting, pending or running, none held except for an operator."""

        conn = q.connect(self.settings.queue_db)
        try:
            counts = q.counts_by_state(conn)
            if any(counts.get(s, 0) for s in (q.COLLECTING, q.PENDING, q.IN_PROGRESS)):
                return False
            return all(g.operator_hold for g in q.list_groups(conn, state=q.HELD, limit=100000))
        finally:
            conn.close()

    # ------------------------------------------------------------------ stages
    def _dispatch(self, conn, group_id: str) -> None:
        """Submit the group's next stage (from the registry), or complete it; hold it if an operator must decide."""

        row = q.get_group(conn, group_id)
        reason = q.conflict_reason(conn, group_id)
        if reason is not None:  # a different copy of a subband arrived: an operator decides
            q.hold_for_operator(conn, group_id, reason)
            return
        done = row.processing_stage
        ms = Path(self.opts.output_dir) / ms_name(group_id)
        job = chain.StageJob(group_id, dict(row.files), ms, self.cfg,
                             calibrator=self._calibrator_of(ms) if done else None, force=row.reconvert)
        spec = stages.next_stage(done, job)
        if spec is None:
            self._finish(conn, group_id)
            return
        # pure=False: a retried stage (same arguments) must run again, not return Dask's cached failure
        fut = self.executor.submit(spec.run, job, pure=False)
        self.running[group_id] = _Running(spec.stage.value, fut, row.files, time.monotonic())

    @staticmethod
    def _calibrator_of(ms: Path) -> str | None:
        """Name of the calibrator the MS was phased to (its field name), if it is a bundled calibrator."""
        if not (ms / "FIELD").exists():
            return None
        name = read_ms_info(ms).field_names[0]
        return name if name in {c.name for c in bundled_calibrators()} else None

    def _collect(self, conn) -> None:
        for group_id, run in list(self.running.items()):
            if not run.fut.done():
                continue
            del self.running[group_id]
            try:
                outcome = run.fut.result()
            except BaseException as exc:  # noqa: BLE001 - classified below
                self._guarded(conn, group_id, run.stage, run.files, self._handle_failure, conn, group_id, run.stage,
                              run.files, exc)
                continue
            self._guarded(conn, group_id, run.stage, run.files, self._advance, conn, outcome, run.files)

    def _advance(self, conn, outcome: chain.StageOutcome, files: dict) -> None:

        stages.by_checkpoint(outcome.stage).record(conn, self.settings, outcome)
        q.checkpoint(conn, outcome.group_id, outcome.stage, str(outcome.ms_path) if outcome.ms_path else None)
        if outcome.stage == "converted" and q.get_group(conn, outcome.group_id).reconvert:
            q.clear_reconvert(conn, outcome.group_id)
        self._dispatch(conn, outcome.group_id)

    def _guarded(self, conn, group_id: str, stage: str, files: dict, fn, *args) -> None:
        """Run one step of a group's handling; an error there is that group's failure, not the daemon's."""
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001
            if fn == self._handle_failure:  # recording the failure failed: log it, the queue keeps the state
                log.error("group %s: could not record the failure of %s: %s: %s", group_id, stage,
                          type(exc).__name__, one_line(str(exc)))
                return
            self._guarded(conn, group_id, stage, files, self._handle_failure, conn, group_id, stage, files, exc)

    def _expire(self, conn) -> None:
        """Kill the stages that ran past the timeout; the group is retried (or failed) with the reason."""
        now = time.monotonic()
        for group_id, run in list(self.running.items()):
            elapsed = now - run.started
            if run.fut.done() or elapsed <= self.timeout_s:
                continue
            del self.running[group_id]
            how = kill_running(self.executor, run.fut)
            exc = StageTimeout(f"{run.stage} of group {group_id} timed out after {elapsed:.0f} s "
                               f"(limit {self.timeout_s:.0f} s; {how})", list(run.files.values()))
            self._guarded(conn, group_id, run.stage, run.files, self._handle_failure, conn, group_id, run.stage,
                          run.files, exc)

    def _handle_failure(self, conn, group_id: str, stage: str, files: dict, exc: BaseException) -> None:

        if isinstance(exc, NoValidCalibrationError):
            q.hold(conn, group_id, str(exc), retry_after_s=self.opts.hold_retry_s)
            log.info("group %s held: %s", group_id, exc)
            return
        kind = classify(exc)
        message = f"{stage}: {type(exc).__name__}: {one_line(str(exc))}"
        if kind == BAD_INPUT:
            q.fail_permanently(conn, group_id, message)
            self._quarantine(files)
            self.stats.failed.append(group_id)
            self.mosaics.group_done(group_id)
            log.error("group %s failed (bad input, files quarantined): %s", group_id, message)
            return
        if kind == ENVIRONMENT:
            q.defer(conn, group_id, message, retry_after_s=self.opts.environment_retry_s)
            return
        culprits = [Path(p).name for p in getattr(exc, "files", [])] or [Path(p).name for p in files.values()]
        where = f" [files: {_names(culprits)}]" if culprits else ""
        state = q.fail(conn, group_id, message + where, max_retries=self.opts.max_retries,
                       backoff_s=self.opts.backoff_s)
        log.error("group %s: %s failed (%s): %s", group_id, stage, state, one_line(str(exc)))
        if state == q.FAILED:
            self.stats.failed.append(group_id)
            self.mosaics.group_done(group_id)

    def _quarantine(self, files: dict) -> None:
        self.quarantine.mkdir(parents=True, exist_ok=True)
        for path in files.values():
            p = Path(path)
            if p.exists() or p.is_symlink():
                shutil.move(str(p), str(self.quarantine / p.name))

    def _finish(self, conn, group_id: str) -> None:

        q.complete(conn, group_id)
        self.stats.completed.append(group_id)
        self.mosaics.group_done(group_id)
        log.info("group %s completed", group_id)


def _names(names: list[str], limit: int = 4) -> str:
    """``a, b, c`` or ``a, b, ... z (16 files)`` for long lists."""
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit - 1])}, ... {names[-1]} ({len(names)} files)"


def _catalog(settings) -> Path | None:
    p = settings.catalog_path
    return p if p.is_file() else None
