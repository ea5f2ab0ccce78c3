"""Prepare CASA to run offline, before casatools or casatasks is first imported.

CASA 6 reads a site config named by ``CASASITECONFIG``.  We write one into the
state folder that points ``measurespath`` at python-casacore's bundled
``casacore/data`` (no download ever), turns auto-updates off and sends CASA's
log to the state folder.  :func:`prepare_casa` must run before the first
``import casatools``; every pipeline function that imports CASA calls it first.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

_PREPARED: Path | None = None


def casacore_data_dir() -> Path:
    """Return python-casacore's bundled measures data folder.

    Raises
    ------
    RuntimeError
        If python-casacore is not installed or ships no data folder.
    """
    spec = importlib.util.find_spec("casacore")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("python-casacore is not installed: cannot locate measures data")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    if not (data / "geodetic").is_dir():
        raise RuntimeError(f"python-casacore measures data not found at {data}")
    return data


def _casadata_dir() -> Path | None:
    """Folder of the optional ``casadata`` package (flux standards), if installed."""
    spec = importlib.util.find_spec("casadata")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    for cand in (root / "__data__", root / "data"):
        if cand.is_dir():
            return cand
    return None


def prepare_casa(state_dir: str | Path | None = None) -> Path:
    """Write the offline CASA site config and point ``CASASITECONFIG`` at it.

    Parameters
    ----------
    state_dir
        Folder for the config and CASA's log; default: the settings' state dir.

    Returns
    -------
    pathlib.Path
        Path of the site config written.

    Raises
    ------
    RuntimeError
        If casatools was imported before this call with another configuration.
    """
    global _PREPARED
    if _PREPARED is not None and state_dir is None:
        return _PREPARED
    if state_dir is None:
        from .config import get_settings

        state_dir = get_settings().state_dir
    state = Path(state_dir).absolute()
    casa_dir = state / "casa"
    casa_dir.mkdir(parents=True, exist_ok=True)
    measures = casacore_data_dir()
    datapath = [str(measures)]
    extra = _casadata_dir()
    if extra is not None:
        datapath.append(str(extra))
    cfg = casa_dir / "config.py"
    text = (
        "# written by dsa110_contimg.casa_env.prepare_casa: CASA runs offline\n"
        f"measurespath = {str(measures)!r}\n"
        f"datapath = {datapath!r}\n"
        "measures_auto_update = False\n"
        "data_auto_update = False\n"
        "skipnetworkcheck = True\n"
        f"logfile = {str(casa_dir / 'casa.log')!r}\n"
        "nologger = True\n"
        "log2term = False\n"
    )
    if not cfg.exists() or cfg.read_text() != text:
        cfg.write_text(text)
    if "casatools" in sys.modules and os.environ.get("CASASITECONFIG") not in (None, str(cfg)):
        # casatools keeps the configuration of its first import; a second state dir is not honoured.
        return Path(os.environ["CASASITECONFIG"])
    os.environ["CASASITECONFIG"] = str(cfg)
    _PREPARED = cfg
    return cfg


def casa_log_path() -> Path | None:
    """Return the CASA log file of the prepared configuration, if any."""
    if _PREPARED is None:
        return None
    return _PREPARED.parent / "casa.log"
