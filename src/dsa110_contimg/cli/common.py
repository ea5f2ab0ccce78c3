"""What the command modules share: the settings, once per command, and the master catalog's path."""

from __future__ import annotations

from pathlib import Path


def settings(create_dirs: bool = True):
    """The effective settings; a bad value ends the command with a message naming the variable."""
    from ..config import cli_settings

    return cli_settings(create_dirs)


def master_catalog(s) -> Path:
    """Path of the master reference catalog under the settings' state folder (it may not exist)."""
    return s.state_dir / "catalogs" / "master_sources.sqlite3"


def verbose() -> bool:
    """Whether the command runs under ``contimg -v`` (then errors show their traceback)."""
    import click

    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return bool(obj and obj.get("verbose"))
