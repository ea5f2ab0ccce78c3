"""Sky models for the simulator: point sources (or Gaussians) from a CSV, a default field, a calibrator.

The realistic sky drawn from the source counts, and real catalogs, are in :mod:`.skycounts`.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInputError

REFERENCE_FREQ_HZ = 1.4e9
"""Frequency at which source flux densities are given."""


@dataclass(frozen=True)
class SkySource:
    """A point source."""

    ra_deg: float
    """J2000 right ascension (deg)."""
    dec_deg: float
    """J2000 declination (deg)."""
    flux_jy: float
    """Flux density at 1.4 GHz (Jy)."""
    alpha: float = -0.7
    """Spectral index (S ~ nu**alpha)."""
    name: str = ""
    """Label used in the truth file."""
    lightcurve: str = "steady"
    """Light curve (:mod:`.lightcurves`): 'steady', 'sine:..', 'flare:..' or 'step:..'."""
    major_arcsec: float = 0.0
    """FWHM of the major axis of an elliptical Gaussian (arcsec); 0: a point source."""
    minor_arcsec: float = 0.0
    """FWHM of the minor axis (arcsec)."""
    pa_deg: float = 0.0
    """Position angle of the major axis, north through east (deg)."""

    @property
    def resolved(self) -> bool:
        """True for a Gaussian (major axis > 0)."""
        return self.major_arcsec > 0.0

    def flux_at(self, freq_hz) -> np.ndarray:
        """Flux density (Jy) at ``freq_hz`` (the base flux, without the light curve)."""
        return self.flux_jy * (np.asarray(freq_hz, dtype=float) / REFERENCE_FREQ_HZ) ** self.alpha

    def flux_1p4_at_times(self, mjd) -> np.ndarray:
        """1.4 GHz flux density (Jy) at times ``mjd`` (UTC MJD), with the light curve."""
        from .lightcurves import evaluate, parse_lightcurve

        mult, add = evaluate(parse_lightcurve(self.lightcurve), mjd)
        return self.flux_jy * mult + add

    def flux_at_times(self, freq_hz, mjd) -> np.ndarray:
        """Flux density (Jy), shape ``(len(mjd), len(freq_hz))``, with the light curve and the spectrum."""
        spectrum = (np.atleast_1d(np.asarray(freq_hz, dtype=float)) / REFERENCE_FREQ_HZ) ** self.alpha
        return self.flux_1p4_at_times(np.atleast_1d(mjd))[:, None] * spectrum[None, :]

    def to_dict(self) -> dict:
        """Plain dict for JSON."""
        return asdict(self)


class SkyModelError(BadInputError):
    """A sources CSV is malformed; the message names the file."""


def read_sources_csv(path: str | Path) -> list[SkySource]:
    """Read point sources from a CSV with columns ``ra_deg, dec_deg, flux_jy, alpha``.

    ``alpha``, ``name`` and ``lightcurve`` are optional (default -0.7, ``src<N>`` and ``steady``;
    see :mod:`.lightcurves`).
    """
    from .lightcurves import LightCurveError, parse_lightcurve

    path = Path(path)
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip() for f in (reader.fieldnames or [])]
        missing = [c for c in ("ra_deg", "dec_deg", "flux_jy") if c not in fields]
        if missing:
            raise SkyModelError(f"{path}: missing column(s) {missing}; found {fields}")
        out = []
        for i, row in enumerate(reader):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            try:
                out.append(SkySource(
                    ra_deg=float(row["ra_deg"]), dec_deg=float(row["dec_deg"]), flux_jy=float(row["flux_jy"]),
                    alpha=float(row["alpha"]) if row.get("alpha") else -0.7,
                    name=row.get("name") or f"src{i:03d}",
                    lightcurve=_checked_lightcurve(row.get("lightcurve"), parse_lightcurve),
                ))
            except LightCurveError as exc:
                raise SkyModelError(f"{path}: row {i + 2}: {exc}") from exc
            except ValueError as exc:
                raise SkyModelError(f"{path}: row {i + 2}: {exc}") from exc
    return out


def _checked_lightcurve(text: str | None, parse) -> str:
    """The light-curve text as given (``steady`` when empty), once ``parse`` accepts it."""
    text = (text or "").strip() or "steady"
    parse(text)
    return text


def write_sources_csv(sources: list[SkySource], path: str | Path) -> None:
    """Write sources in the format :func:`read_sources_csv` reads."""
    with Path(path).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "ra_deg", "dec_deg", "flux_jy", "alpha", "lightcurve"])
        for s in sources:
            w.writerow([s.name, f"{s.ra_deg:.8f}", f"{s.dec_deg:.8f}", f"{s.flux_jy:.6g}", f"{s.alpha:.4g}",
                        s.lightcurve or "steady"])


def default_field(ra_deg: float, dec_deg: float, n_sources: int, rng: np.random.Generator,
                  radius_deg: float = 1.2, flux_range_jy: tuple[float, float] = (0.05, 2.0),
                  min_sep_deg: float = 0.1, prefix: str = "src") -> list[SkySource]:
    """Random point sources around a field centre.

    Positions are uniform on the sphere within ``radius_deg`` (no two closer than
    ``min_sep_deg``), fluxes log-uniform in ``flux_range_jy``, spectral indices
    normal around -0.7 (sigma 0.2).
    """
    out: list[SkySource] = []
    dec0 = np.radians(dec_deg)
    tries = 0
    while len(out) < n_sources and tries < 100 * max(n_sources, 1):
        tries += 1
        r = np.radians(radius_deg) * np.sqrt(rng.uniform())
        pa = rng.uniform(0, 2 * np.pi)
        ra_d, dec_d = offset_position(ra_deg, dec_deg, r, pa)
        if any(np.hypot((ra_d - s.ra_deg) * np.cos(dec0), dec_d - s.dec_deg) < min_sep_deg for s in out):
            continue
        flux = float(np.exp(rng.uniform(np.log(flux_range_jy[0]), np.log(flux_range_jy[1]))))
        alpha = float(rng.normal(-0.7, 0.2))
        out.append(SkySource(ra_deg=float(ra_d), dec_deg=dec_d, flux_jy=flux, alpha=alpha,
                             name=f"{prefix}{len(out):03d}"))
    return out


def offset_position(ra_deg: float, dec_deg: float, r_rad: float, pa_rad: float) -> tuple[float, float]:
    """The direction ``r_rad`` away from (ra, dec) at position angle ``pa_rad`` (north through east), deg."""
    dec0 = np.radians(dec_deg)
    dec = np.arcsin(np.sin(dec0) * np.cos(r_rad) + np.cos(dec0) * np.sin(r_rad) * np.cos(pa_rad))
    dra = np.arctan2(np.sin(pa_rad) * np.sin(r_rad) * np.cos(dec0), np.cos(r_rad) - np.sin(dec0) * np.sin(dec))
    return float((ra_deg + np.degrees(dra)) % 360.0), float(np.degrees(dec))
