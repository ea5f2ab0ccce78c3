"""The bundled table of bright compact L-band calibrators (flux models in :mod:`.flux_models`)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from .flux_models import has_standard, perley_butler_2017
from .values import sexagesimal_to_deg


@dataclass(frozen=True)
class Calibrator:
    """One calibrator of the bundled list."""

    name: str
    """Common name, e.g. '3C286'."""
    alt_name: str
    """J2000 name, e.g. 'J1331+3030'."""
    ra_deg: float
    """J2000 right ascension (deg)."""
    dec_deg: float
    """J2000 declination (deg)."""
    flux_jy: float
    """Flux density at 1.4 GHz (Jy)."""
    alpha: float
    """Spectral index (S ~ nu**alpha)."""
    flux_standard: str
    """Flux standard setjy applies ('' for a point model)."""

    def flux_at(self, freq_hz):
        """Flux density (Jy) at ``freq_hz``: the flux standard when there is one, else the power law."""
        if has_standard(self.name, self.flux_standard):
            return perley_butler_2017(self.name, freq_hz)
        return self.flux_jy * (np.asarray(freq_hz) / 1.4e9) ** self.alpha

    @property
    def model_name(self) -> str:
        """'Perley-Butler 2017' or 'point (power law)'."""
        return "Perley-Butler 2017" if has_standard(self.name, self.flux_standard) else "point (power law)"


def _deg(text: str, hours: bool) -> float:
    return float(sexagesimal_to_deg([text], hours=hours)[0])


@lru_cache(maxsize=1)
def bundled_calibrators() -> tuple[Calibrator, ...]:
    """Load the calibrator list shipped with the package."""
    text = resources.files("dsa110_contimg").joinpath("data/calibrators.csv").read_text()
    rows = [r for r in csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))]
    return tuple(
        Calibrator(
            name=r["name"], alt_name=r["alt_name"], ra_deg=_deg(r["ra_hms"], True), dec_deg=_deg(r["dec_dms"], False),
            flux_jy=float(r["flux_1p4_jy"]), alpha=float(r["alpha"]), flux_standard=r["flux_standard"].strip(),
        )
        for r in rows
    )


def lookup_calibrator(name: str) -> Calibrator:
    """Find a bundled calibrator by common or J2000 name (case-insensitive).

    Raises
    ------
    KeyError
        With the list of known names when ``name`` is unknown.
    """
    key = name.strip().upper()
    for cal in bundled_calibrators():
        if key in (cal.name.upper(), cal.alt_name.upper()):
            return cal
    known = ", ".join(c.name for c in bundled_calibrators())
    raise KeyError(f"unknown calibrator {name!r}; known: {known}")
