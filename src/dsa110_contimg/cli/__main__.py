"""``python -m dsa110_contimg.cli``: the ``contimg`` command."""

from . import main

main()
