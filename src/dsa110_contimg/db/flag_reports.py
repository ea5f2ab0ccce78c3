"""RFI flagging reports in the products database (``flag_reports``, schema version 4): one per MS.

Written only by the daemon (:func:`upsert`, from a :class:`~dsa110_contimg.flagging.FlagResult`);
read by the API (:func:`get_for_group`).
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class FlagReport:
    """One row of ``flag_reports``."""

    ms_path: str
    """The Measurement Set flagged."""
    group_id: str | None
    """Its group."""
    created_at: str | None
    """When the report was recorded (ISO UTC)."""
    flagger: str | None
    """'aoflagger' or 'casa'."""
    seconds: float | None
    """Time the flagging took."""
    fraction_base: float | None
    """Flagged fraction after the base flags (autocorrelations, zeros, short baselines, gaps)."""
    fraction_flagged: float | None
    """Flagged fraction after RFI flagging."""
    fraction_new: float | None
    """Fraction flagged as RFI beyond the base flags."""
    plot_path: str | None
    """QA PNG (waterfall of the flagged fraction, per-antenna bars)."""
    report: dict[str, Any]
    """The whole report (per subband, antenna, integration, channel, steps, timings)."""


def upsert(conn: sqlite3.Connection, group_id: str, result) -> None:
    """Store (or replace) the report of ``result.ms_path``."""
    d = result.to_dict()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    with conn:
        conn.execute("INSERT OR REPLACE INTO flag_reports (ms_path, group_id, created_at, flagger, seconds, "
                     "fraction_base, fraction_flagged, fraction_new, plot_path, report_json) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (os.path.abspath(str(result.ms_path)), group_id, now, result.flagger,
                      result.timings.get("total"), result.fraction_base, result.fraction_after,
                      result.fraction_rfi, d.get("qa_png"), json.dumps(d)))


def _row(r: sqlite3.Row) -> FlagReport:
    return FlagReport(r["ms_path"], r["group_id"], r["created_at"], r["flagger"], r["seconds"], r["fraction_base"],
                      r["fraction_flagged"], r["fraction_new"], r["plot_path"], json.loads(r["report_json"] or "{}"))


def get_for_group(conn: sqlite3.Connection, group_id: str) -> FlagReport | None:
    """The newest report of the group, or ``None`` (also for a database older than schema version 4)."""
    try:
        r = conn.execute("SELECT * FROM flag_reports WHERE group_id = ? ORDER BY created_at DESC LIMIT 1",
                         (group_id,)).fetchone()
    except sqlite3.OperationalError:  # no such table: not migrated yet (read-only readers)
        return None
    return None if r is None else _row(r)
