"""One logging set-up for the command line, the streaming daemon and its Dask workers.

Three verbosities, chosen with ``contimg -q`` / (default) / ``contimg -v``:

* :data:`QUIET`: warnings and errors only.
* :data:`NORMAL`: the pipeline's INFO lines, one per group and stage (each stage
  logs one summary line; the sub-steps in :data:`DETAIL_LOGGERS` only warn), a
  repeated identical INFO line only once; libraries at WARNING; Dask's own INFO
  chatter and its "Compute Failed" reports (the daemon reports every failed stage
  itself) hidden.
* :data:`VERBOSE`: DEBUG for the pipeline, INFO for the libraries, every line
  with its level, process and logger.

Python warnings go through logging (:func:`logging.captureWarnings`), astropy's
too (:func:`adopt_astropy` removes its own console handler), so a warning is one
line in the same format.  A Dask worker runs the same set-up
(:class:`dsa110_contimg.pipeline.worker_logging.WorkerLogging`, registered by
:func:`dsa110_contimg.pipeline.executors.make_executor`); unless verbose it also
sends the raw console output of the libraries it runs (CASA's logger, casacore's
C++ messages, imager output) to a file (:func:`send_output_to`), so only log
lines reach the terminal.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import TextIO

QUIET, NORMAL, VERBOSE = -1, 0, 1
"""The verbosities: ``contimg -q``, the default, ``contimg -v``."""

PACKAGE = "dsa110_contimg"
"""The pipeline's loggers (``logging.getLogger(__name__)`` in every module)."""

DETAIL_LOGGERS = (
    "dsa110_contimg.calibration.model",
    "dsa110_contimg.imaging.tclean",
    "dsa110_contimg.imaging.wsclean",
    "dsa110_contimg.qa",
)
"""Sub-steps of a stage (the model written, the imager's command line, the QA figures): their INFO lines
are detail, shown with ``-v``; the stage's own summary line is the one line of the default output."""

LIBRARY_LOGGERS = ("distributed", "dask", "tornado", "bokeh", "asyncio", "astropy", "matplotlib", "PIL", "h5py",
                   "numexpr", "watchdog", "fsspec", "urllib3", "casacore", "pyuvdata")
"""Third-party loggers kept at WARNING unless ``-v`` (INFO then); their own console handlers are removed."""

_STATE: dict = {"verbosity": NORMAL, "handler": None}


class _Stderr(logging.StreamHandler):
    """A stream handler writing to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # logging.StreamHandler.setStream; nothing to keep
        pass


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Python's own ``file:line: Category: message`` (a library may replace ``warnings.formatwarning``: pyuvdata's
    objects set one that drops the file and the category)."""
    return f"{filename}:{lineno}: {category.__name__}: {message}\n" + (f"  {line.strip()}\n" if line else "")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """The warnings hook: one WARNING record of ``py.warnings`` (as :func:`logging.captureWarnings`), formatted by
    :func:`_format_warning` whatever ``warnings.formatwarning`` is now."""
    text = _format_warning(message, category, filename, lineno, line)
    if file is not None:
        file.write(text)
    else:
        logging.getLogger("py.warnings").warning("%s", text)


class _Formatter(logging.Formatter):
    """``time message`` for progress lines; level and logger for warnings and errors; everything with ``-v``."""

    def __init__(self, verbosity: int) -> None:
        super().__init__(datefmt="%Y-%m-%d %H:%M:%S")
        self.verbose = verbosity >= VERBOSE

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == "py.warnings" and not self.verbose:
            message = message.strip().splitlines()[0] if message.strip() else message  # not the source line
        when = self.formatTime(record, self.datefmt)
        if self.verbose:
            head = f"{when} {record.levelname} [{record.processName}] {record.name}:"
        elif record.levelno >= logging.WARNING:
            head = f"{when} {record.levelname} {record.name}:"
        else:
            head = when
        text = f"{head} {message}"
        if record.exc_info:
            if self.verbose:
                text += "\n" + self.formatException(record.exc_info)
            elif record.exc_info[1] is not None:
                text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        if record.stack_info and self.verbose:
            text += "\n" + self.formatStack(record.stack_info)
        return text


class _Filter(logging.Filter):
    """Drops, unless verbose, Dask's reports of failed tasks and INFO lines identical to a recent one."""

    def __init__(self, verbosity: int, memory: int = 512) -> None:
        super().__init__()
        self.verbose = verbosity >= VERBOSE
        self.memory = memory
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbose:
            return True
        if record.name.startswith("distributed.") and str(record.msg).startswith("Compute Failed"):
            return False  # the daemon reports the stage's failure itself, on one line
        if record.levelno < logging.WARNING:
            key = (record.name, record.getMessage())
            if key in self._seen:
                self._seen.move_to_end(key)
                return False
            self._seen[key] = None
            if len(self._seen) > self.memory:
                self._seen.popitem(last=False)
        return True


def levels(verbosity: int) -> dict[str, int]:
    """Logger name (``""``: root) -> level for ``verbosity``."""
    if verbosity <= QUIET:
        out = {"": logging.WARNING, PACKAGE: logging.WARNING}
        out.update({name: logging.WARNING for name in LIBRARY_LOGGERS})
        return out
    if verbosity >= VERBOSE:
        out = {"": logging.INFO, PACKAGE: logging.DEBUG}
        out.update({name: logging.INFO for name in LIBRARY_LOGGERS})
        out.update({name: logging.DEBUG for name in DETAIL_LOGGERS})
        return out
    out = {"": logging.WARNING, PACKAGE: logging.INFO}
    out.update({name: logging.WARNING for name in LIBRARY_LOGGERS + DETAIL_LOGGERS})
    return out


def configure(verbosity: int = NORMAL, stream: TextIO | None = None) -> logging.Handler:
    """Set up logging for this process: one handler on the root logger, the levels, warnings captured.

    Calling it again replaces the handler it installed (other handlers, e.g. a test
    runner's, are left alone).

    Parameters
    ----------
    verbosity
        :data:`QUIET`, :data:`NORMAL` or :data:`VERBOSE`.
    stream
        Where the lines go (default: ``sys.stderr`` at the time of each line).

    Returns
    -------
    logging.Handler
        The handler installed.
    """
    root = logging.getLogger()
    old = _STATE["handler"]
    if old is not None:
        root.removeHandler(old)
    handler = _Stderr() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(_Formatter(verbosity))
    handler.addFilter(_Filter(verbosity))
    root.addHandler(handler)
    _STATE.update(verbosity=verbosity, handler=handler)
    apply_levels()
    logging.captureWarnings(False)  # hook warnings again: something may have replaced the hook since
    logging.captureWarnings(True)  # (saves the original hook: captureWarnings(False) puts it back)
    warnings.showwarning = _show_warning
    if "astropy.logger" in sys.modules:
        adopt_astropy()
    return handler


def verbosity() -> int:
    """The verbosity this process was configured with (:data:`NORMAL` when :func:`configure` was not called)."""
    return _STATE["verbosity"]


def dask_level() -> int:
    """The level of Dask's own loggers for the configured verbosity (``LocalCluster(silence_logs=...)``)."""
    return levels(verbosity())["distributed"]


def apply_levels() -> None:
    """(Re)apply the levels of :func:`levels`; libraries' own console handlers are removed.

    Call it again after importing ``distributed``: its import sets its loggers' levels
    and handlers from Dask's configuration.  Before :func:`configure`, only the
    libraries' loggers are set.
    """
    configured = _STATE["handler"] is not None
    for name, level in levels(verbosity()).items():
        if not configured and name not in LIBRARY_LOGGERS:
            continue  # a library user's own levels are theirs
        if name == "astropy":
            continue  # astropy makes its logger of its own class at import: never create it first (adopt_astropy)
        logger = logging.getLogger(name or None)
        logger.setLevel(level)
        if name in LIBRARY_LOGGERS:
            for h in list(logger.handlers):
                if type(h) in (logging.StreamHandler, logging.Handler) or type(h).__module__.startswith(name):
                    logger.removeHandler(h)
            logger.propagate = True


def adopt_astropy() -> None:
    """Route astropy's log and its warnings through this set-up (astropy prints them itself otherwise)."""
    try:
        from astropy.logger import LoggingError, log
    except ImportError:  # pragma: no cover - astropy is a dependency
        return
    if log.warnings_logging_enabled():
        try:
            log.disable_warnings_logging()
        except LoggingError:  # warnings.showwarning was replaced since: warnings already bypass astropy
            pass
    for h in list(log.handlers):
        log.removeHandler(h)
    log.propagate = True
    log.setLevel(levels(verbosity())["astropy"])
    logging.captureWarnings(True)


def send_output_to(path: str | Path) -> TextIO:
    """Point this process's standard output and error (file descriptors 1 and 2) at ``path``.

    C and C++ libraries (CASA's logger, casacore) and subprocesses write there from
    then on.  Returns a stream on the original standard error, for the log lines.

    Parameters
    ----------
    path
        File appended to (its folder is created).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    terminal = _STATE.get("terminal")  # a second call must not take the file for the terminal
    if terminal is None:
        terminal = _STATE["terminal"] = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8",
                                                  errors="replace")
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except (OSError, ValueError):
            pass
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return terminal
