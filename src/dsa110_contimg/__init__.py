"""dsa110-contimg: real-time continuum imaging pipeline of the DSA-110."""

__version__ = "0.1.0"
