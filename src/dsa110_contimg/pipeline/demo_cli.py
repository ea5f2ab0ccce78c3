"""When ``contimg demo`` serves the dashboard (the command itself: :mod:`dsa110_contimg.cli.demo`)."""

from __future__ import annotations

import os
import sys


def should_serve(no_serve: bool) -> bool:
    """Serve the dashboard after the demo only in an interactive terminal, never under CI or ``--no-serve``."""
    return not no_serve and not os.environ.get("CI") and sys.stdin.isatty() and sys.stdout.isatty()
