"""One settings object for the whole pipeline, read once from the environment.

The variable names are the ones DSA-110 operators already use.  Every value
records where it came from (``env`` or ``default``) so that ``contimg config``
can show the effective configuration.

Examples
--------
>>> from dsa110_contimg.config import load_settings
>>> s = load_settings({"PIPELINE_STATE_DIR": "/tmp/st"})
>>> str(s.queue_db)
'/tmp/st/ingest_queue.sqlite3'
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from .errors import ContimgError


class ConfigError(ContimgError, ValueError):
    """A configuration value is invalid; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """Effective pipeline settings."""

    telescope_name: str
    """Name stamped into OBSERVATION::TELESCOPE_NAME (``PIPELINE_TELESCOPE_NAME``)."""
    state_dir: Path
    """Folder for databases, logs and CASA's site config (``PIPELINE_STATE_DIR``)."""
    queue_db: Path
    """SQLite ingest queue (``PIPELINE_QUEUE_DB``)."""
    products_db: Path
    """SQLite products database (``PIPELINE_PRODUCTS_DB``)."""
    cal_registry_db: Path
    """SQLite calibration registry (``CAL_REGISTRY_DB``)."""
    expected_subbands: int
    """Number of subband files that make a complete group (``PIPELINE_EXPECTED_SUBBANDS``)."""
    incoming_dir: Path
    """Where the correlator writes UVH5 files (``PIPELINE_INCOMING_DIR``)."""
    output_dir: Path
    """Where Measurement Sets and images go (``PIPELINE_OUTPUT_DIR``)."""
    stage_dir: Path
    """Fast scratch space for building MSs (``PIPELINE_STAGE_DIR``)."""
    antpos_csv: Path | None
    """Station coordinates CSV overriding the defaults (``PIPELINE_ANTPOS_CSV``); ``None`` (unset): the converter
    uses the UVH5 header positions, the simulator and the demo the packaged DSA-110 table
    (:func:`dsa110_contimg.telescope.packaged_station_csv`)."""
    api_token: str | None = None
    """Bearer token for the API's write endpoints (``PIPELINE_API_TOKEN``)."""
    api_cache_s: float = 1.0
    """How long the API reuses an answer it computed (s; 0: never) (``PIPELINE_API_CACHE_S``)."""
    stage_timeout_s: float = 1800.0
    """Wall-clock limit of one stage of one group, after which it is killed (``PIPELINE_STAGE_TIMEOUT_S``)."""
    mosaic_groups: int = 12
    """Groups per mosaic window the daemon builds (0: no mosaics) (``PIPELINE_MOSAIC_GROUPS``)."""
    selfcal: bool = True
    """Self-calibrate target groups before imaging (``PIPELINE_SELFCAL``: 1/0); on since it improves the
    realistic-sky images at full size (residual rms 0.886 -> 0.769 mJy/beam, ideal 0.749; flux ratio 0.941 ->
    1.019) for 44 s a group (``benchmarks/bench_selfcal.py``)."""
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    """Where each value came from: ``env:VAR`` or ``default``."""

    @property
    def catalog_path(self) -> Path:
        """The master source catalog: ``<state_dir>/catalogs/master_sources.sqlite3`` (``contimg catalog
        build-master`` writes it there by default; image QA crossmatches with it when it exists)."""
        return self.state_dir / "catalogs" / "master_sources.sqlite3"

    def as_rows(self) -> list[tuple[str, str, str]]:
        """Return ``(variable, value, source)`` rows for display."""
        rows = []
        for var, attr in _VARIABLES.items():
            value = getattr(self, attr)
            if attr == "api_token" and value:
                value = "***"
            if attr == "antpos_csv" and value is None:
                from .telescope import packaged_station_csv  # here: config stays free of numpy for a fast CLI

                value = f"unset: convert uses the UVH5 header positions, simulate/demo {packaged_station_csv()}"
            rows.append((var, "" if value is None else str(value), self.sources.get(attr, "default")))
        return rows


_VARIABLES: dict[str, str] = {
    "PIPELINE_TELESCOPE_NAME": "telescope_name",
    "PIPELINE_STATE_DIR": "state_dir",
    "PIPELINE_QUEUE_DB": "queue_db",
    "PIPELINE_PRODUCTS_DB": "products_db",
    "CAL_REGISTRY_DB": "cal_registry_db",
    "PIPELINE_EXPECTED_SUBBANDS": "expected_subbands",
    "PIPELINE_INCOMING_DIR": "incoming_dir",
    "PIPELINE_OUTPUT_DIR": "output_dir",
    "PIPELINE_STAGE_DIR": "stage_dir",
    "PIPELINE_ANTPOS_CSV": "antpos_csv",
    "PIPELINE_API_TOKEN": "api_token",
    "PIPELINE_API_CACHE_S": "api_cache_s",
    "PIPELINE_STAGE_TIMEOUT_S": "stage_timeout_s",
    "PIPELINE_MOSAIC_GROUPS": "mosaic_groups",
    "PIPELINE_SELFCAL": "selfcal",
}


def _ensure_dir(var: str, path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{var}={path}: directory does not exist and cannot be created ({exc.strerror})") from exc
    if not os.access(path, os.W_OK):
        raise ConfigError(f"{var}={path}: directory is not writable")
    return path


def _seconds(var: str, raw: str | None, default: float, lo: float, hi: float) -> float:
    """A duration variable: ``default`` when unset, else a number in [lo, hi] (else a ConfigError naming ``var``)."""
    try:
        value = default if raw is None else float(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r}: not a number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{var}={value}: must be between {lo} and {hi} seconds")
    return value


def load_settings(environ: Mapping[str, str] | None = None, create_dirs: bool = True) -> Settings:
    """Build :class:`Settings` from an environment mapping.

    Parameters
    ----------
    environ
        Mapping to read (default: ``os.environ``).
    create_dirs
        Create the state, incoming, output and stage folders when missing.

    Returns
    -------
    Settings
        The effective settings.

    Raises
    ------
    ConfigError
        A value is malformed or a folder cannot be created; the message names the variable.
    """
    env = dict(os.environ if environ is None else environ)
    sources: dict[str, str] = {}

    def get(var: str) -> str | None:
        value = env.get(var)
        if value is not None and value.strip() != "":
            sources[_VARIABLES[var]] = f"env:{var}"
            return value.strip()
        sources[_VARIABLES[var]] = "default"
        return None

    telescope = get("PIPELINE_TELESCOPE_NAME") or "OVRO_DSA"
    state_dir = Path(get("PIPELINE_STATE_DIR") or "./state").expanduser().absolute()
    queue_db = Path(get("PIPELINE_QUEUE_DB") or state_dir / "ingest_queue.sqlite3").expanduser().absolute()
    products_db = Path(get("PIPELINE_PRODUCTS_DB") or state_dir / "products.sqlite3").expanduser().absolute()
    cal_db = Path(get("CAL_REGISTRY_DB") or state_dir / "cal_registry.sqlite3").expanduser().absolute()
    raw_nsb = get("PIPELINE_EXPECTED_SUBBANDS")
    if raw_nsb is None:
        nsb = 16
    else:
        try:
            nsb = int(raw_nsb)
        except ValueError:
            raise ConfigError(f"PIPELINE_EXPECTED_SUBBANDS={raw_nsb!r}: not an integer") from None
        if not 1 <= nsb <= 16:
            raise ConfigError(f"PIPELINE_EXPECTED_SUBBANDS={nsb}: must be between 1 and 16")
    incoming = Path(get("PIPELINE_INCOMING_DIR") or state_dir / "incoming").expanduser().absolute()
    output = Path(get("PIPELINE_OUTPUT_DIR") or state_dir / "products").expanduser().absolute()
    raw_stage = get("PIPELINE_STAGE_DIR")
    if raw_stage:
        stage = Path(raw_stage).expanduser().absolute()
    elif Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK):
        stage = Path("/dev/shm/dsa110-contimg")
    else:
        stage = state_dir / "stage"
    raw_csv = get("PIPELINE_ANTPOS_CSV")
    antpos = Path(raw_csv).expanduser().absolute() if raw_csv else None
    if antpos is not None and not antpos.is_file():
        raise ConfigError(f"PIPELINE_ANTPOS_CSV={antpos}: file not found")
    token = get("PIPELINE_API_TOKEN")
    cache_s = _seconds("PIPELINE_API_CACHE_S", get("PIPELINE_API_CACHE_S"), 1.0, 0, 3600)
    timeout_s = _seconds("PIPELINE_STAGE_TIMEOUT_S", get("PIPELINE_STAGE_TIMEOUT_S"), 1800.0, 1, 86400)
    raw_mosaic = get("PIPELINE_MOSAIC_GROUPS")
    try:
        mosaic_groups = 12 if raw_mosaic is None else int(raw_mosaic)
    except ValueError:
        raise ConfigError(f"PIPELINE_MOSAIC_GROUPS={raw_mosaic!r}: not an integer") from None
    if not 0 <= mosaic_groups <= 1000:
        raise ConfigError(f"PIPELINE_MOSAIC_GROUPS={mosaic_groups}: must be between 0 (no mosaics) and 1000")
    raw_selfcal = (get("PIPELINE_SELFCAL") or "1").strip().lower()
    if raw_selfcal not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
        raise ConfigError(f"PIPELINE_SELFCAL={raw_selfcal!r}: use 1 or 0")
    selfcal = raw_selfcal in ("1", "true", "yes", "on")

    if create_dirs:
        _ensure_dir("PIPELINE_STATE_DIR", state_dir)
        _ensure_dir("PIPELINE_INCOMING_DIR", incoming)
        _ensure_dir("PIPELINE_OUTPUT_DIR", output)
        _ensure_dir("PIPELINE_STAGE_DIR", stage)
        for var, db in (("PIPELINE_QUEUE_DB", queue_db), ("PIPELINE_PRODUCTS_DB", products_db),
                        ("CAL_REGISTRY_DB", cal_db)):
            _ensure_dir(var, db.parent)

    return Settings(
        telescope_name=telescope,
        state_dir=state_dir,
        queue_db=queue_db,
        products_db=products_db,
        cal_registry_db=cal_db,
        expected_subbands=nsb,
        incoming_dir=incoming,
        output_dir=output,
        stage_dir=stage,
        antpos_csv=antpos,
        api_token=token,
        api_cache_s=cache_s,
        stage_timeout_s=timeout_s,
        mosaic_groups=mosaic_groups,
        selfcal=selfcal,
        sources=sources,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from ``os.environ``."""
    return load_settings()


def quarantine_dir(incoming_dir: str | os.PathLike[str]) -> Path:
    """Where the streaming daemon keeps the files of a group that failed on bad input (beside the incoming folder)."""
    return Path(incoming_dir).parent / "quarantine"


def cli_settings(create_dirs: bool = True) -> Settings:
    """:func:`get_settings` for the CLI commands: a :class:`ConfigError` becomes a click error (exit 1).

    ``create_dirs=False`` (read-only commands such as ``contimg api``) reads the environment
    without creating any folder.
    """
    import click

    try:
        return get_settings() if create_dirs else load_settings(create_dirs=False)
    except ConfigError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


def reset_settings_cache() -> None:
    """Forget the cached settings (tests change the environment)."""
    get_settings.cache_clear()
