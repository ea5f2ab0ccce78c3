"""The logging set-up of :mod:`dsa110_contimg.logs`, run in every Dask worker (also the restarted ones).

Imported only where Dask is used (:func:`~dsa110_contimg.pipeline.executors.make_executor`).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin


class WorkerLogging(WorkerPlugin):
    """Configure logging in a worker like in the daemon, at the daemon's verbosity.

    Parameters
    ----------
    verbosity
        :data:`~dsa110_contimg.logs.QUIET`, :data:`~dsa110_contimg.logs.NORMAL` or
        :data:`~dsa110_contimg.logs.VERBOSE`.
    output_dir
        Unless verbose, the worker's raw console output (CASA's logger, casacore's C++
        messages, imager output) goes to ``<output_dir>/dask-worker-<name>.log``
        instead of the terminal; its log lines still go to the terminal.  ``None``
        (a remote cluster): the output stays where the worker writes it.
    """

    name = "dsa110-contimg-logging"

    def __init__(self, verbosity: int, output_dir: str | Path | None = None) -> None:
        self.verbosity = verbosity
        self.output_dir = None if output_dir is None else str(output_dir)

    def setup(self, worker) -> None:
        from .. import logs

        stream, problem = None, None
        if self.output_dir is not None and self.verbosity < logs.VERBOSE:
            label = re.sub(r"[^\w.-]+", "_", str(worker.name))
            try:
                stream = logs.send_output_to(Path(self.output_dir) / f"dask-worker-{label}.log")
            except OSError as exc:  # e.g. a read-only state folder: the output stays on the terminal
                problem = exc
        logs.configure(self.verbosity, stream=stream)
        logs.adopt_astropy()
        if problem is not None:
            logging.getLogger(__name__).warning("worker %s: console output stays on the terminal: %s",
                                                worker.name, problem)
