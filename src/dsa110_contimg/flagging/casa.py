"""CASA ``flagdata`` as the alternative flagger: ``tfcrop`` then ``rflag``, then ``extend``."""

from __future__ import annotations

from pathlib import Path

from ..errors import ContimgError


def casa_commands(opts) -> list[str]:
    """The flagdata ``mode='list'`` commands for :class:`~dsa110_contimg.flagging.options.FlagOptions` ``opts``."""
    f = float  # flagdata's list parser wants floats where it declares them (``growtime=90`` is refused)
    return [
        f"mode='tfcrop' datacolumn='DATA' ntime='scan' timecutoff={f(opts.casa_timecutoff)} "
        f"freqcutoff={f(opts.casa_freqcutoff)} timefit='line' freqfit='poly' maxnpieces=7 flagdimension='freqtime' "
        f"extendflags=False",
        f"mode='rflag' datacolumn='DATA' ntime='scan' timedevscale={f(opts.casa_timedevscale)} "
        f"freqdevscale={f(opts.casa_freqdevscale)} winsize={int(opts.casa_winsize)} extendflags=False",
        f"mode='extend' growtime={f(opts.casa_growtime)} growfreq={f(opts.casa_growfreq)} extendpols=True "
        f"growaround={bool(opts.casa_growaround)} flagneartime=False flagnearfreq=False",
    ]


def casa_flag(ms_path: str | Path, opts) -> dict:
    """Run the CASA commands on ``ms_path`` (its FLAG column is read first and only added to).

    Returns
    -------
    dict
        ``commands`` and ``casatasks`` version.

    Raises
    ------
    ContimgError
        flagdata raised or reported failure (the message names the MS).
    """
    from ..casa_env import prepare_casa

    prepare_casa()
    import casatasks
    from casatasks import flagdata

    cmds = casa_commands(opts)
    try:
        res = flagdata(vis=str(ms_path), mode="list", inpfile=cmds, flagbackup=False, action="apply")
    except Exception as exc:
        raise ContimgError(f"{ms_path}: CASA flagdata failed: {exc}") from exc
    if res is False:
        raise ContimgError(f"{ms_path}: CASA flagdata failed (see the CASA log)")
    return {"commands": cmds, "casatasks": getattr(casatasks, "version_string", lambda: "")()}
