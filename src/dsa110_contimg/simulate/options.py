"""Options and results of :func:`dsa110_contimg.simulate.core.simulate` (the ``contimg simulate`` flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import telescope as tel

SIDEREAL_DAY_S = 86164.0905
"""Length of a sidereal day (s): ``--days`` repeats the same LST range this far apart."""


@dataclass
class SimulateOptions:
    """Options of :func:`simulate` (mirrors ``contimg simulate``)."""

    output_dir: Path
    """Folder the subband files and truth JSON are written to."""
    preset: str = "small"
    """'full' (real dimensions) or 'small' (same layout, fewer antennas/channels/integrations)."""
    groups: int = 1
    """Number of consecutive groups."""
    days: int = 1
    """Consecutive sidereal days, each with the same ``groups`` (starting at the calibrator's transit when given)."""
    start: str = "2025-10-02T00:12:00"
    """Start of the first group (UTC ISO); shifted to the calibrator's transit when one is given."""
    dec_deg: float | None = None
    """Pointing declination (deg); default 54.5734, or the calibrator's declination."""
    sources_csv: Path | None = None
    """CSV of point sources (ra_deg, dec_deg, flux_jy, alpha); default: a random field."""
    n_sources: int = 20
    """Sources per group in the default random field."""
    calibrator: str | None = None
    """Bundled calibrator name or 'RA_DEG,DEC_DEG[,FLUX_JY]' to transit mid-group of group 0."""
    calibrator_flux_jy: float | None = None
    """Override of the calibrator's 1.4 GHz flux density."""
    seed: int = 1
    """Seed of every random draw."""
    noise: bool = True
    """Add thermal noise."""
    sefd_jy: float = tel.SEFD_JY
    """System-equivalent flux density for the noise (Jy)."""
    gains: bool = True
    """Apply random antenna gains (False: unit gains)."""
    gain_amp_sigma: float = 0.1
    """Scatter of gain amplitudes about 1."""
    delay_sigma_ns: float = 2.0
    """Scatter of residual antenna delays (ns)."""
    phase_drift_deg_per_hour: float = 0.0
    """Scatter of slow gain-phase drift rates (deg/hour)."""
    flag_fraction: float = 0.0
    """Fraction of visibilities flagged at random."""
    rfi: str = "none"
    """Radio-frequency interference injected before gains and noise: 'none', 'light' (~2%) or 'heavy' (~10%)."""
    jitter_s: float = 3.0
    """Maximum per-file timestamp jitter inside a group (s)."""
    antpos_csv: Path | None = None
    """Station-coordinates CSV; default: PIPELINE_ANTPOS_CSV."""
    fringestop_lon_deg: float = tel.FRINGESTOP_LON_DEG
    """Longitude of the meridian the correlator fringe-stops to (deg)."""
    shuffle_antenna_order: bool = True
    """Use a non-trivial correlator antenna order (the real order is not public)."""
    subbands: tuple[int, ...] | None = None
    """Write only these subbands (default: all 16); the rest of the group is simulated identically."""
    progress: bool = False
    """Show a progress bar."""
    sky: str = "default"
    """'default' (the random field of ``n_sources``) or 'realistic' (drawn from the 1.4 GHz source counts)."""
    sky_catalog: Path | None = None
    """Catalog in NVSS layout (RAJ2000, DEJ2000, S1.4 in mJy, MajAxis, MinAxis, PA) used as the sky instead."""
    sky_min_flux_jy: float = 1e-3
    """Faintest 1.4 GHz flux density of the realistic or catalog sky (Jy)."""
    sky_radius_deg: float = 6.3
    """Radius of the realistic or catalog sky around each group's centre (deg; 6.3 = second null at 1311 MHz)."""
    sky_min_apparent_jy: float = 1e-4
    """Realistic or catalog sky: drop sources whose beam-attenuated flux never exceeds this (Jy)."""
    sky_resolved_fraction: float = 0.01
    """Fraction of the realistic sky's sources above 20 mJy that are elliptical Gaussians."""
    bright_sidelobe: int = 0
    """Bright (20-50 Jy) sources placed in the first sidelobe of the first group (realistic sky)."""
    predict: str = "auto"
    """Visibility predict: 'direct' (the reference sum), 'nufft' (finufft), 'auto' (nufft above 200 sources)."""
    pointing_error_arcmin: float = 0.0
    """Rms per-axis pointing error of every antenna and polarization (arcmin); 0: one shared beam."""
    gain_variation: bool = False
    """Multiply the gains by time-correlated amplitude and phase variations (recorded per integration)."""
    gain_var_amp: float = 0.03
    """Rms fractional amplitude of the gain variation."""
    gain_var_phase_deg: float = 30.0
    """Rms phase of the gain variation (deg)."""
    gain_var_time_s: float = 300.0
    """Correlation time of the gain variation (s; squared-exponential covariance)."""
    ionosphere: bool = False
    """Add a drifting thin-screen ionosphere (300 km): direction-dependent phases, constant over facets."""
    iono_rms_deg: float = 10.0
    """Rms ionospheric phase difference at 1.4 GHz between pierce points 10 km apart (deg)."""
    iono_facet_deg: float = 0.5
    """Side of the square facets over which the ionospheric phase is constant (deg)."""
    iono_speed_mps: float = 150.0
    """Drift speed of the ionospheric screen (m/s)."""
    truth_image_like: Path | None = None
    """FITS image whose grid and restoring beam (BMAJ, BMIN, BPA) the truth sky is also drawn on, per group."""


@dataclass
class SimulatedGroup:
    """One simulated group."""

    start_iso: str
    """Nominal start time (UTC)."""
    files: list[Path]
    """Subband files, sb00 first."""
    truth_path: Path
    """Truth JSON."""
    mid_mjd: float
    """Mid-time of the group (MJD)."""


@dataclass
class SimulationResult:
    """What :func:`simulate` produced."""

    groups: list[SimulatedGroup]
    """The groups, in time order."""
    wall_s: float
    """Wall time (s)."""
    bytes_written: int
    """Total size of the subband files (bytes)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent per step (sky, visibilities, gains, noise, write)."""
