"""RFI flagging of one group's Measurement Set: AOFlagger (default) or CASA flagdata, then a MAD clip.

Stage function :func:`flag_ms` (:class:`FlagOptions` in, :class:`FlagResult` out).
"""

from .flag import flag_ms
from .options import FlagOptions, FlagResult

__all__ = ["flag_ms", "FlagOptions", "FlagResult"]
