"""Worker processes of the AOFlagger pass: ``python -m dsa110_contimg.flagging.worker JOB.json OUT.npz``.

AOFlagger's Python binding keeps the GIL while it runs, so threads do not help;
the stage runs ``workers - 1`` subprocesses beside its own process, each reading
its share of the baseline blocks from the MS (read-only) and handing back its
flags (bit-packed) and totals in an npz file. Subprocesses, not
``multiprocessing``: the stage may itself run in a daemonic Dask worker, which
may not fork children of that kind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..errors import ContimgError, one_line


def launch(ms_path: Path, blocks: list[np.ndarray], opts, work_dir: Path, index: int):
    """Start one worker on ``blocks``; returns a handle for :func:`collect`."""
    job = work_dir / f"job{index}.json"
    out = work_dir / f"out{index}.npz"
    err = work_dir / f"err{index}.txt"
    job.write_text(json.dumps({"ms": str(ms_path), "blocks": [[int(b) for b in bl] for bl in blocks],
                               "opts": opts.to_dict()}))
    with open(err, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "dsa110_contimg.flagging.worker", str(job), str(out)],
                                stdout=subprocess.DEVNULL, stderr=fh, env=dict(os.environ))
    return proc, out, err


def collect(handle, ms_path: Path):
    """Wait for a worker; returns (baselines, flags, totals) or raises :class:`ContimgError` with its error."""
    from .blocks import load_block_flags

    proc, out, err = handle
    rc = proc.wait()
    if rc != 0 or not out.exists():
        tail = err.read_text(errors="replace").strip().splitlines()[-5:] if err.exists() else []
        raise ContimgError(f"{ms_path}: flagging worker failed (exit {rc}): {one_line(' | '.join(tail), 600)}")
    return load_block_flags(out)


def stop(handles) -> None:
    """Kill workers still running (after a failure in the parent)."""
    for proc, _, _ in handles:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _exit_with_parent(poll_s: float = 0.5) -> None:
    """Exit when the stage's process goes away (a stage timeout kills it, not its worker)."""
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(3)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def main(argv: list[str] | None = None) -> int:
    """Entry point of a worker process."""
    from casacore.tables import table

    from .aoflag import AoflaggerEngine
    from .blocks import process_blocks, save_block_flags
    from .msio import read_layout
    from .options import FlagOptions

    job_path, out_path = (argv if argv is not None else sys.argv[1:])[:2]
    _exit_with_parent()
    job = json.loads(Path(job_path).read_text())
    opts = FlagOptions.from_dict(job["opts"])
    ms = Path(job["ms"])
    layout = read_layout(ms)
    engine = AoflaggerEngine(opts.strategy, opts.aoflagger_input)
    parts: list = []
    with table(str(ms), ack=False) as tab:
        totals = process_blocks(tab, layout, [np.asarray(b) for b in job["blocks"]], opts,
                                lambda bls, f: parts.append((bls, f)), engine)
    tmp = Path(str(out_path) + ".part.npz")
    save_block_flags(tmp, parts, totals)
    tmp.rename(out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
