"""Array and correlator presets of the simulator, and the DSA-110 frequency layout."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..telescope import INACTIVE_ANTENNAS, N_STATIONS

N_SUBBANDS = 16
"""Subband files per group."""
CHANNELS_PER_SUBBAND = 48
"""Channels per subband file at full resolution."""
CHANNEL_WIDTH_HZ = 244_140.625
"""Width of one full-resolution channel (8 native 30.5 kHz channels averaged)."""
NATIVE_CHANNEL_WIDTH_HZ = 250e6 / 8192
"""Native correlator channel width."""
TOP_CHANNEL_HZ = 1530e6 - 1027.5 * NATIVE_CHANNEL_WIDTH_HZ
"""Centre of the first (highest) channel of sb00: 1498.6431884765625 MHz."""
N_INTEGRATIONS = 24
"""Integrations per file at full size."""
NSAMPLES = 96.0
"""nsamples value of every visibility."""


def subband_frequencies(subband: int, channels: int = CHANNELS_PER_SUBBAND) -> np.ndarray:
    """Channel centres of one subband in file order (descending), Hz.

    With ``channels < 48`` each output channel averages ``48 // channels``
    full-resolution channels, keeping the band edges.
    """
    avg = CHANNELS_PER_SUBBAND // channels
    fine = TOP_CHANNEL_HZ - (CHANNELS_PER_SUBBAND * subband + np.arange(CHANNELS_PER_SUBBAND)) * CHANNEL_WIDTH_HZ
    return fine.reshape(channels, avg).mean(axis=1)


@dataclass(frozen=True)
class Preset:
    """Dimensions of a simulated group."""

    name: str
    """Preset name."""
    active_antennas: tuple[int, ...]
    """Antenna names (1-based numbers) that produce data."""
    channels_per_subband: int
    """Channels per subband file."""
    n_integrations: int
    """Integrations per file."""

    @property
    def channel_width_hz(self) -> float:
        """Width of one channel of this preset."""
        return CHANNEL_WIDTH_HZ * (CHANNELS_PER_SUBBAND // self.channels_per_subband)

    @property
    def n_baselines(self) -> int:
        """Baselines including autocorrelations."""
        n = len(self.active_antennas)
        return n * (n + 1) // 2


def full_active_antennas() -> tuple[int, ...]:
    """The 96 active antennas of recent real data."""
    return tuple(a for a in range(1, N_STATIONS + 1) if a not in INACTIVE_ANTENNAS)


def small_active_antennas(n: int = 24) -> tuple[int, ...]:
    """An evenly spread subset of the active antennas that includes antenna 103."""
    active = full_active_antennas()
    idx = np.linspace(0, len(active) - 1, n).round().astype(int)
    chosen = sorted({active[i] for i in idx})
    if 103 not in chosen:
        chosen[-2] = 103
    return tuple(sorted(chosen))


PRESETS = {
    "full": Preset("full", full_active_antennas(), CHANNELS_PER_SUBBAND, N_INTEGRATIONS),
    "small": Preset("small", small_active_antennas(24), 6, 6),
    "medium": Preset("medium", small_active_antennas(32), CHANNELS_PER_SUBBAND, N_INTEGRATIONS),
}
