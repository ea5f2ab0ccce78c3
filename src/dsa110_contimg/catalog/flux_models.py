"""Flux-density models of calibrators: Perley & Butler (2017) polynomials, else a power law.

setjy's Perley-Butler 2017 tables are not in python-casacore's data, so the
standard is computed here and written into MODEL_DATA by the pipeline (and then
checked before solving).  ``log10 S[Jy] = sum_k a_k (log10 nu[GHz])**k``.
"""

from __future__ import annotations

import numpy as np

PERLEY_BUTLER_2017 = {
    "3C286": (1.2481, -0.4507, -0.1798, 0.0357),
    "3C48": (1.3253, -0.7553, -0.1914, 0.0498),
    "3C147": (1.4516, -0.6961, -0.2007, 0.0640, -0.0464, 0.0289),
    "3C138": (1.0088, -0.4981, -0.1552, -0.0102, 0.0223),
}
"""Perley & Butler (2017, ApJS 230, 7) Table 6 coefficients (frequency in GHz)."""


def perley_butler_2017(name: str, freq_hz) -> np.ndarray:
    """Flux density (Jy) of a Perley-Butler 2017 calibrator.

    Raises
    ------
    KeyError
        When ``name`` has no PB2017 polynomial here.
    """
    coeffs = PERLEY_BUTLER_2017[name.upper()]
    lg = np.log10(np.asarray(freq_hz, dtype=float) / 1e9)
    return 10.0 ** sum(a * lg**k for k, a in enumerate(coeffs))


def has_standard(name: str, standard: str) -> bool:
    """True when ``standard`` is Perley-Butler 2017 and a polynomial exists for ``name``."""
    return standard.lower().replace("_", "-").startswith("perley-butler 2017") and name.upper() in PERLEY_BUTLER_2017


def spectral_index_at(name: str, freq_hz: float) -> float:
    """Local spectral index d log S / d log nu of a PB2017 calibrator at ``freq_hz``."""
    f1, f2 = freq_hz / 1.01, freq_hz * 1.01
    s1, s2 = perley_butler_2017(name, f1), perley_butler_2017(name, f2)
    return float(np.log(s2 / s1) / np.log(f2 / f1))
