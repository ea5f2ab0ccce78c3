"""Backfill worker: image every MS in a folder that has no image in the products DB yet."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..db import products as pdb
from .image_stage import image_and_record

log = logging.getLogger(__name__)


@dataclass
class ScanResult:
    """One scan of the folder."""

    imaged: list[Path] = field(default_factory=list)
    """MSs imaged in this scan."""
    failed: dict[str, str] = field(default_factory=dict)
    """MS path -> error, for the MSs that failed (recorded in ms_index, retried next scan)."""
    skipped: int = 0
    """MSs that already had an image."""


def scan_once(ms_dir: str | Path, products_db: str | Path, opts=None, catalog_path: Path | None = None) -> ScanResult:
    """Image every ``*.ms`` under ``ms_dir`` not yet in ``images``; failures are recorded, not raised."""
    out = ScanResult()
    conn = pdb.connect(products_db)
    try:
        done = pdb.ms_paths_with_images(conn)
    finally:
        conn.close()
    for ms in sorted(Path(ms_dir).glob("*.ms")):
        if not (ms / "table.dat").exists() or ms.name.startswith("."):
            continue
        if str(ms.absolute()) in done:
            out.skipped += 1
            continue
        try:
            image_and_record(ms, products_db, opts, catalog_path)
            out.imaged.append(ms)
        except Exception as exc:  # one bad MS must not stop the worker
            out.failed[str(ms)] = str(exc)
            log.error("image-worker: %s failed: %s", ms.name, exc)
    return out


def run_daemon(ms_dir: str | Path, products_db: str | Path, opts=None, interval_s: float = 30.0,
               max_scans: int | None = None, catalog_path: Path | None = None) -> int:
    """Scan every ``interval_s`` seconds until interrupted (or ``max_scans``); returns the number imaged."""
    n = 0
    scans = 0
    while max_scans is None or scans < max_scans:
        res = scan_once(ms_dir, products_db, opts, catalog_path)
        n += len(res.imaged)
        scans += 1
        if max_scans is not None and scans >= max_scans:
            break
        time.sleep(interval_s)
    return n
