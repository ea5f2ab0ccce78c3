"""Truth written beside each simulated group, as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .instrument import GainModel

CONVENTIONS = {
    "baseline": "b = x(ant2) - x(ant1), ITRF metres; ant_1/ant_2 as in the UVH5 file",
    "visibility": "V = g1 * conj(g2) * (sum_k S_k(f) B_k(t,f) exp(+2 pi i b.(s_k - s0) f / c) + noise)",
    "fringe_stop": "s0 = meridian (HA = 0) at the pointing declination and fringestop_lon_deg, per integration",
    "gain": ("g = amp exp(i (phase + phase_rate (t - t_ref))) exp(2 pi i delay (f - f_ref)) "
             "(1 + sum_k bp_amp[k] P_k(x)) exp(i sum_k bp_phase[k] P_k(x)), x = 2 (f - f_lo)/(f_hi - f_lo) - 1"),
    "gain_index": "gains arrays are indexed [antenna_number (name - 1), pol (0 = XX, 1 = YY)]",
    "stokes": "unpolarized sources: XX = YY = I",
    "noise": "noise added before gains: sigma per real/imag part = SEFD / sqrt(2 dnu dt)",
    "apparent_flux": "mean over integrations and channels of S(t, f) * B(t, f)",
    "intrinsic_flux": ("intrinsic_flux_jy: mean over integrations and channels of S(t, f); flux_1p4_jy: mean over "
                       "integrations of S(t, 1.4 GHz); beam_mean: mean over integrations and channels of B(t, f)"),
    "lightcurve": ("S(t, f) = (flux_jy * multiplier(t) + added_jy(t)) * (f / 1.4 GHz) ** alpha, t the integration "
                   "centre (see dsa110_contimg.simulate.lightcurves)"),
    "spectral_index": "S(f) = flux_jy * (f / 1.4 GHz) ** alpha",
    "shape": ("major_arcsec > 0: elliptical Gaussian of FWHM major_arcsec x minor_arcsec at pa_deg (north through "
              "east), flux_jy its integrated flux; visibility = point visibility * exp(-2 pi^2 (s_maj^2 u_maj^2 + "
              "s_min^2 u_min^2))"),
    "gain_time_factor": ("gains.time_factor_re/_im [antenna_number, time, pol] at gains.time_mjd multiply g (linear "
                         "interpolation in between): the gain variation of effects.gain_variation"),
    "ionosphere": ("effects.ionosphere: V_pq *= exp(i (phi_p - phi_q) f_ref / f), phi the screen phase at the pierce "
                   "point of the centre of the source's facet (PhaseScreen.phase), direction-dependent"),
    "rfi": ("RFI added to the sky visibilities before noise and gains, cross-correlations only; sample amplitude = "
            "amp_sigma * sigma_jy * chan_profile * time_profile * pol_factor / sqrt(1 + |b| / baseline_scale_m); "
            "chan_start counts the group's channels in file order (sb00 first, descending); mask and amplitude per "
            "subband in mask_file, (time, baseline, channel, pol) in the file's own order"),
}


@dataclass
class GroupTruth:
    """Everything that went into one simulated group."""

    group_start_iso: str
    """Nominal group start (UTC, ISO)."""
    files: list[str]
    """Subband file names, sb00 first."""
    preset: str
    """Preset name."""
    seed: int
    """Random seed of the simulation."""
    pointing_dec_deg: float
    """Apparent declination of the pointing and fringe-stop centre (deg)."""
    fringestop_lon_deg: float
    """Longitude of the fringe-stop meridian (deg)."""
    times_mjd: list[float]
    """Integration centres (UTC MJD)."""
    integration_s: float
    """Integration time (s)."""
    freqs_hz: list[list[float]]
    """Channel frequencies per subband in file order."""
    channel_width_hz: float
    """Channel width (Hz)."""
    active_antennas: list[int]
    """Antenna names with data."""
    antenna_order: list[int]
    """Correlator antenna order used for the baseline layout."""
    antpos_source: str
    """Station CSV the positions came from."""
    sources: list[dict]
    """Sources: ra_deg, dec_deg, flux_jy, alpha, name, lightcurve, and this group's apparent_flux_jy, beam_mid,
    intrinsic_flux_jy, flux_1p4_jy and beam_mean (see ``conventions``)."""
    gains: dict
    """:meth:`GainModel.to_dict` output, or the unit model."""
    noise: dict
    """``enabled``, ``sefd_jy``, ``sigma_per_vis_jy``."""
    flag_fraction: float = 0.0
    """Fraction of visibilities randomly flagged."""
    calibrator: dict | None = None
    """The injected calibrator, if any."""
    rfi: dict | None = None
    """RFI model (level, events, fraction, mask_file) when ``--rfi`` was not ``none``."""
    effects: dict | None = None
    """Realistic effects (:meth:`.realism.RunEffects.to_dict`): sky model, pointing offsets, gain variation,
    ionospheric screen, and the predict used."""
    conventions: dict = field(default_factory=lambda: dict(CONVENTIONS))
    """How to read the numbers above."""
    version: int = 1
    """Truth format version."""

    @property
    def gain_model(self) -> GainModel:
        """The gains as a :class:`GainModel`."""
        return GainModel.from_dict(self.gains)

    def to_json(self, path: str | Path) -> Path:
        """Write the truth as JSON."""
        path = Path(path)
        path.write_text(json.dumps(asdict(self), indent=1))
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> "GroupTruth":
        """Read a truth file."""
        return cls(**json.loads(Path(path).read_text()))
