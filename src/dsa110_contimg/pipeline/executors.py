"""Where the daemon's stages run: an embedded Dask cluster, an existing scheduler, or in-process.

:func:`kill_running` enforces the per-stage wall-clock timeout: Dask cannot
interrupt a task, so the worker process running it is restarted by its nanny
(the embedded ``LocalCluster`` always has nannies).  The in-process executor
runs a stage to its end inside ``submit``, so it cannot time out a stage; it is
meant for tests and debugging.
"""

from __future__ import annotations

import logging
import signal
from concurrent.futures import Future

log = logging.getLogger(__name__)


class InlineExecutor:
    """An executor with the Dask ``submit`` interface that runs in-process."""

    def submit(self, fn, *args, pure: bool = False, **kw) -> Future:
        f: Future = Future()
        try:
            f.set_result(fn(*args, **kw))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            f.set_exception(exc)
        return f

    def close(self) -> None:
        pass


def make_executor(kind: str, workers: int = 1, scheduler: str | None = None):
    """Return ``(executor, cluster_or_None)`` for ``kind`` ``'dask'`` or ``'inline'``.

    The workers run this process's logging set-up (:class:`.worker_logging.WorkerLogging`, also after a
    restart); those of the embedded cluster send their raw console output to
    ``<state>/logs/dask-worker-<n>.log`` unless verbose.
    """
    if kind == "inline":
        return InlineExecutor(), None
    from distributed import Client, LocalCluster

    from .. import logs
    from .worker_logging import WorkerLogging

    logs.apply_levels()  # importing distributed reset its loggers from Dask's configuration
    if scheduler:
        client = Client(scheduler)
        client.register_plugin(WorkerLogging(logs.verbosity()))
        return client, None
    try:
        from ..config import get_settings

        output_dir = get_settings().state_dir / "logs"
    except Exception as exc:  # noqa: BLE001 - without settings the output stays on the terminal
        log.debug("worker output stays on the terminal: %s", exc)
        output_dir = None
    # The scheduler always runs an HTTP server (health routes); with no address it takes :8787 and warns
    # when a second cluster (another daemon, parallel tests) holds it.  A free local port never clashes.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address="127.0.0.1:0", silence_logs=logs.dask_level())
    client = Client(cluster)
    client.register_plugin(WorkerLogging(logs.verbosity(), output_dir))
    return client, cluster


def kill_running(executor, fut) -> str:
    """Stop the task behind ``fut``; returns a short account of what was done (for the group's error).

    With Dask, the worker processing the task is restarted (``Client.restart_workers``);
    the future is cancelled in every case.
    """
    if isinstance(executor, InlineExecutor):
        return "in-process stage cannot be interrupted"
    key = getattr(fut, "key", None)
    workers: list[str] = []
    try:
        workers = [w for w, keys in executor.processing().items() if key in keys]
    except Exception as exc:  # noqa: BLE001 - best effort; reported below
        log.warning("cannot find the worker running %s: %s", key, exc)
    try:
        fut.cancel()
    except Exception:  # noqa: BLE001
        pass
    if not workers:
        return "task cancelled"
    try:
        executor.restart_workers(workers, timeout=120, raise_for_error=False)
    except Exception as exc:  # noqa: BLE001 - e.g. a worker without a nanny
        log.error("could not restart worker(s) %s: %s", ", ".join(workers), exc)
        return f"task cancelled; worker {', '.join(workers)} could not be restarted ({exc})"
    return f"worker {', '.join(workers)} restarted"


def sigterm_raises():
    """Make SIGTERM stop the loop like Ctrl-C (so the last heartbeat says 'stopped'); returns the previous handler.

    ``None`` when not called from the main thread (the handler cannot be installed there).
    """
    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        return signal.signal(signal.SIGTERM, _raise)
    except ValueError:
        return None
