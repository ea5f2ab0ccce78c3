"""Run-level set-up of the realistic effects: the sky strip, pointing errors, gain variation, ionosphere.

Everything is drawn once per run from its own generator (``default_rng([seed, 16])``), so the default
simulation's random stream is unchanged and the sky, beams and screens are the same for every group
and day of a run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .beams import draw_pointing_errors
from .effects import PhaseScreen, gain_variation_factors, random_screen
from .instrument import GainModel
from .options import SimulateOptions
from .sky import SkySource
from .skycounts import HOPKINS03, MAX_FLUX_JY, SPECTRAL_INDEX, catalog_sky, realistic_sky, select_sources, strip_box

DRIFT_MARGIN_DEG = 1.0
"""Extra radius of each group's selection: the sky drifts ~0.73 deg (at dec 55) during a group."""


@dataclass
class RunEffects:
    """What :func:`setup_effects` drew for one run."""

    sky: list[SkySource] | None
    """The strip's sources (realistic or catalog sky), None for the default field."""
    sky_info: dict
    """Description of the sky model for the truth."""
    pointing: np.ndarray | None
    """Pointing offsets (rad), (Nant, Npol, 2), or None."""
    gain_factors: Callable | None
    """``f(t_s) -> (Nant, Nt, Npol)`` gain-variation factors, or None."""
    screen: PhaseScreen | None
    """The ionospheric screen, or None."""
    t0_mjd: float
    """Time origin of the gain variation (MJD)."""

    def group_sources(self, ra_deg: float, dec_deg: float, radius_deg: float) -> list[SkySource]:
        """The strip's sources around one group's centre (with the drift margin)."""
        return select_sources(self.sky or [], ra_deg, dec_deg, radius_deg + DRIFT_MARGIN_DEG)

    def group_gains(self, gm: GainModel, times_mjd: np.ndarray) -> GainModel:
        """``gm`` with this group's gain-variation factors at its integrations (``gm`` itself without)."""
        if self.gain_factors is None:
            return gm
        t = np.asarray(times_mjd, dtype=float)
        return replace(gm, time_mjd=t, time_factor=self.gain_factors((t - self.t0_mjd) * 86400.0))

    def to_dict(self, opts: SimulateOptions) -> dict:
        """The effects for the truth (the gain factors themselves are in the truth's gains)."""
        return {
            "sky": self.sky_info,
            "pointing_offsets_rad": None if self.pointing is None else self.pointing.tolist(),
            "pointing_convention": "offsets [antenna_number, pol, (east, north)] of the pointing in the tangent "
                                   "plane; baseline beam E_p E_q ~ B + (d_p + d_q).grad B / 2 (first order)",
            "gain_variation": None if self.gain_factors is None else {
                "amp_sigma": opts.gain_var_amp, "phase_sigma_deg": opts.gain_var_phase_deg,
                "corr_time_s": opts.gain_var_time_s, "t0_mjd": self.t0_mjd,
                "model": "(1 + amp_sigma n_a(t)) exp(i phase_sigma n_p(t)), n unit Gaussian processes with "
                         "covariance exp(-dt^2 / (2 corr_time^2)); values per integration in gains.time_factor_*"},
            "ionosphere": None if self.screen is None else self.screen.to_dict(),
        }


def setup_effects(opts: SimulateOptions, n_ant: int, ra_centres_deg, dec_deg: float, t0_mjd: float,
                  first_centre_deg: tuple[float, float]) -> RunEffects:
    """Draw the run's realistic sky and instrument effects from ``opts``.

    Parameters
    ----------
    opts
        Simulation options.
    n_ant
        Stations in the table (gains and pointing are indexed by antenna number).
    ra_centres_deg
        RA of every group's centre (meridian at mid-group), all days.
    dec_deg
        Pointing declination (deg).
    t0_mjd
        Start of the run (MJD).
    first_centre_deg
        (RA, Dec) of the first group's centre (for the bright sidelobe sources).
    """
    rng = np.random.default_rng([opts.seed, 16])
    if opts.sky not in ("default", "realistic"):
        raise ValueError(f"sky={opts.sky!r}: expected 'default' or 'realistic'")
    if opts.predict not in ("auto", "direct", "nufft"):
        raise ValueError(f"predict={opts.predict!r}: expected 'auto', 'direct' or 'nufft'")
    sky, info = None, {"kind": "default"}
    if opts.sky_catalog is not None or opts.sky == "realistic":
        box = strip_box(ra_centres_deg, dec_deg, opts.sky_radius_deg + DRIFT_MARGIN_DEG)
        common = {"min_flux_jy": opts.sky_min_flux_jy, "radius_deg": opts.sky_radius_deg,
                  "min_apparent_jy": opts.sky_min_apparent_jy, "strip": box.__dict__,
                  "spectral_index": f"N({SPECTRAL_INDEX[0]}, {SPECTRAL_INDEX[1]}) clipped to [-2, 1]"}
        if opts.sky_catalog is not None:
            sky = catalog_sky(opts.sky_catalog, box, rng, opts.sky_min_flux_jy)
            info = {"kind": "catalog", "catalog": str(opts.sky_catalog), **common}
        else:
            sky = realistic_sky(box, rng, opts.sky_min_flux_jy, opts.sky_resolved_fraction, opts.bright_sidelobe,
                                first_centre_deg)
            info = {"kind": "realistic", "counts": "Hopkins et al. 2003, AJ 125, 465, eq. 1",
                    "counts_coefficients": list(HOPKINS03), "max_flux_jy": MAX_FLUX_JY,
                    "resolved_fraction": opts.sky_resolved_fraction, "bright_sidelobe": opts.bright_sidelobe,
                    **common}
        info["n_strip"] = len(sky)
    pointing = None
    if opts.pointing_error_arcmin > 0:
        pointing = draw_pointing_errors(n_ant, 2, opts.pointing_error_arcmin, rng)
    factors = None
    if opts.gain_variation:
        factors = gain_variation_factors(n_ant, 2, rng, opts.gain_var_amp, opts.gain_var_phase_deg,
                                         opts.gain_var_time_s)
    screen = None
    if opts.ionosphere:
        screen = random_screen(rng, t0_mjd, rms_deg_10km=opts.iono_rms_deg, speed_mps=opts.iono_speed_mps,
                               facet_deg=opts.iono_facet_deg)
    return RunEffects(sky, info, pointing, factors, screen, t0_mjd)
