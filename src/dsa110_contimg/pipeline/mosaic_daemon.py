"""The daemon's mosaic scheduler: builds a window's mosaic once each of its groups is imaged or has failed.

It runs beside the per-group chain, never in its way: mosaics are built one at a time in a process of their own
(``executor='inline'``: in the daemon's process, for tests), and the daemon's loop only polls it.  A window is
ready when every one of its groups in the queue is completed or failed and it is closed: a later group has
arrived, or the daemon has nothing else to do (the end of a run).  A window is built again when its inputs change
(a group reprocessed, a late group); the new mosaic replaces the old files and row.  After a restart the scheduler
looks at every window of the queue whose mosaic is missing or out of date.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from pathlib import Path

from ..db import mosaics as mdb
from ..db import products as pdb
from ..db import queue as q
from ..errors import one_line
from .mosaic_stage import MosaicJob, MosaicOutcome, record_mosaic, run_mosaic
from .mosaic_windows import Window, fingerprint, group_states, window_closed, window_inputs, window_of

log = logging.getLogger(__name__)

TERMINAL = (q.COMPLETED, q.FAILED)
"""Queue states after which a group's image will not change."""


class MosaicScheduler:
    """Decides which windows to build and runs their builds; see the module docstring.

    Parameters
    ----------
    settings
        Pipeline settings (``mosaic_groups``, ``queue_db``, ``products_db``).
    output_dir
        The daemon's output folder (MSs, images; mosaics go to ``<output_dir>/mosaics``).
    catalog_path
        Master catalog for the mosaic QA, or None.
    inline
        Build in the calling process (tests) instead of a process of its own.
    """

    def __init__(self, settings, output_dir: Path, catalog_path: Path | None, inline: bool = False):
        self.settings = settings
        self.n_groups = int(getattr(settings, "mosaic_groups", 12))
        self.output_dir = Path(output_dir)
        self.catalog_path = catalog_path
        self.inline = inline
        self.pending: set[Window] = set()
        self.running: tuple[MosaicJob, Future] | None = None
        self._pool = None
        self._failed: dict[str, str] = {}  # window name -> fingerprint that failed (not retried unchanged)

    @property
    def enabled(self) -> bool:
        """Whether the daemon builds mosaics (``PIPELINE_MOSAIC_GROUPS`` > 0)."""
        return self.n_groups > 0

    def start(self, queue_conn) -> None:
        """Look at every window of the queue (a restart resumes the windows left unbuilt)."""
        if not self.enabled:
            return
        for g in q.list_groups(queue_conn, limit=1_000_000):
            if g.state in TERMINAL:
                self.pending.add(window_of(g.group_id, self.n_groups))

    def group_done(self, group_id: str) -> None:
        """A group completed or failed: its window may be ready."""
        if self.enabled:
            self.pending.add(window_of(group_id, self.n_groups))

    def busy(self) -> bool:
        """A build is running."""
        return self.running is not None

    def poll(self, queue_conn, draining: bool = False) -> bool:
        """Record a finished build, start the next ready one; returns True while work remains.

        ``draining``: the daemon has nothing else to do, so windows not closed by a later group are built too.
        Never raises for one window: a failed build is recorded (and logged) as that window's failure.
        """
        if not self.enabled:
            return False
        self._collect()
        if self.running is not None:
            return True
        for w in sorted(self.pending, key=lambda x: x.index):
            states = group_states(queue_conn, w)
            if not states:
                self.pending.discard(w)
                continue
            if any(s not in TERMINAL for s in states.values()) or not (draining or window_closed(queue_conn, w)):
                continue
            self.pending.discard(w)
            job = self._job(w, states)
            if job is not None:
                self._submit(job)
                return True
        return False

    def drain(self) -> bool:
        """The daemon has nothing else to do: :meth:`poll` with ``draining``; True while a build remains."""
        if not self.enabled:
            return False
        conn = q.connect(self.settings.queue_db)
        try:
            return self.poll(conn, draining=True)
        finally:
            conn.close()

    def close(self) -> None:
        """Wait for a running build to be recorded, then stop the build process."""
        if self.running is not None:
            try:
                self.running[1].result()
            except Exception:  # noqa: BLE001 - recorded by _collect
                pass
            self._collect()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # ------------------------------------------------------------------ internals
    def _job(self, w: Window, states: dict[str, str]) -> MosaicJob | None:
        conn = pdb.connect(self.settings.products_db)
        try:
            inputs = window_inputs(conn, states, self.output_dir)
            fp = fingerprint(inputs)
            old = mdb.get_by_name(conn, w.name)
        finally:
            conn.close()
        if (old is not None and old.fingerprint == fp) or self._failed.get(w.name) == fp:
            return None  # built from these very inputs already
        return MosaicJob(w.name, tuple(inputs), self.output_dir / "mosaics", fp, self.catalog_path)

    def _submit(self, job: MosaicJob) -> None:
        log.info("mosaic %s: building from %d group(s)", job.name, len(job.inputs))
        if self.inline:
            fut: Future = Future()
            try:
                fut.set_result(run_mosaic(job))
            except BaseException as exc:  # noqa: BLE001 - recorded by _collect
                fut.set_exception(exc)
        else:
            if self._pool is None:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            fut = self._pool.submit(run_mosaic, job)
        self.running = (job, fut)

    def _collect(self) -> None:
        if self.running is None or not self.running[1].done():
            return
        job, fut = self.running
        self.running = None
        try:
            outcome = fut.result()
        except Exception as exc:  # noqa: BLE001 - a crash of the build is the window's failure
            outcome = MosaicOutcome(job, None, [], f"{type(exc).__name__}: {one_line(str(exc), 600)}")
            if self._pool is not None and "BrokenProcessPool" in type(exc).__name__:
                self._pool = None
        try:
            conn = pdb.connect(self.settings.products_db)
            try:
                rec = record_mosaic(conn, outcome)
            finally:
                conn.close()
            if rec.status != mdb.OK:
                self._failed[job.name] = job.fingerprint
        except Exception as exc:  # noqa: BLE001 - the daemon goes on; the window is tried again later
            log.error("mosaic %s: could not be recorded: %s: %s", job.name, type(exc).__name__, one_line(str(exc)))
