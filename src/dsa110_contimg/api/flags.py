"""The RFI flagging report of a group, as the API shows it (fractions) and serves it (``flags.png``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .context import ApiContext


def flag_summary(ctx: ApiContext, group_id: str) -> dict[str, Any] | None:
    """Flagged fractions of the group's MS (overall, base, RFI, per subband, antenna and integration), or ``None``."""
    from ..db import flag_reports

    with ctx.products() as conn:
        rep = flag_reports.get_for_group(conn, group_id) if conn is not None else None
    if rep is None:
        return None
    r = rep.report
    return {"flagger": rep.flagger, "seconds": rep.seconds, "fraction_base": rep.fraction_base,
            "fraction_flagged": rep.fraction_flagged, "fraction_rfi": rep.fraction_new,
            "per_subband": r.get("per_subband", {}), "per_antenna": r.get("per_antenna", {}),
            "per_integration": r.get("per_integration", []), "flagged_antennas": r.get("flagged_antennas", {}),
            "plot_url": f"/api/groups/{group_id}/flags.png" if rep.plot_path else None}


def flag_plot(ctx: ApiContext, group_id: str) -> Path | None:
    """Registered path of the group's flagging QA plot (drawn now from its saved data if the stage deferred it), or
    ``None``."""
    from ..db import flag_reports

    with ctx.products() as conn:
        rep = flag_reports.get_for_group(conn, group_id) if conn is not None else None
    if rep is None or not rep.plot_path:
        return None
    from ..flagging.qa import render_deferred

    try:  # the streaming chain leaves the drawing to the first reader (off the group's critical path)
        return render_deferred(rep.plot_path) or Path(rep.plot_path)
    except OSError:  # a read-only output folder: serve what is there (404 when nothing)
        return Path(rep.plot_path)
