"""Helpers (no tests): small survey catalogs in the real column layouts, written by the catalog tests.

Positions are formatted to sexagesimal here, independently of the package's parser.
"""

from __future__ import annotations

import math
from pathlib import Path

NVSS_HEADER = ("RAJ2000,DEJ2000,e_RAJ2000,e_DEJ2000,S1.4,e_S1.4,l_MajAxis,MajAxis,l_MinAxis,MinAxis,PA,e_PA,"
               "Field,Xpos,Ypos")
VLASS_HEADER = ("Component_name,RA,DEC,E_RA,E_DEC,Total_flux,E_Total_flux,Peak_flux,E_Peak_flux,Maj,Min,PA,"
                "Isl_rms,S_Code,DC_Maj,DC_Min,DC_PA,Duplicate_flag,Quality_flag")
FIRST_COLS = ["RAJ2000", "DEJ2000", "p(S)", "Fpeak", "Fint", "Rms", "Maj", "Min", "PA", "fMaj", "fMin", "fPA"]


def hms(ra_deg: float) -> str:
    """'hh mm ss.sss' of an RA in degrees."""
    total = round(ra_deg / 15.0 * 3600.0, 3)
    h, rem = divmod(total, 3600.0)
    m, s = divmod(rem, 60.0)
    return f"{int(h):02d} {int(m):02d} {s:06.3f}"


def dms(dec_deg: float) -> str:
    """'+dd mm ss.ss' of a declination in degrees."""
    sign = "-" if dec_deg < 0 else "+"
    total = round(abs(dec_deg) * 3600.0, 2)
    d, rem = divmod(total, 3600.0)
    m, s = divmod(rem, 60.0)
    return f"{sign}{int(d):02d} {int(m):02d} {s:05.2f}"


def offset(ra_deg: float, dec_deg: float, arcsec: float, pa_deg: float = 0.0) -> tuple[float, float]:
    """Position ``arcsec`` away at position angle ``pa_deg`` (small-angle)."""
    d = arcsec / 3600.0
    dra = d * math.sin(math.radians(pa_deg)) / math.cos(math.radians(dec_deg))
    return (ra_deg + dra) % 360.0, dec_deg + d * math.cos(math.radians(pa_deg))


def write_nvss_csv(path: Path, rows: list[dict], scale: float = 1.0, header: str = NVSS_HEADER) -> Path:
    """VizieR CSV export: sexagesimal positions, S1.4/e_S1.4 in mJy (times ``scale``)."""
    lines = [header]
    for r in rows:
        lines.append(f"{hms(r['ra'])},{dms(r['dec'])},0.05,0.6,{r['s'] * scale!r},{r['e'] * scale!r},<,"
                     f"{r.get('maj', 15.0)},<,{r.get('min', 12.0)},,,C1500P32,512.2,511.9")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_vlass_csv(path: Path, rows: list[dict], scale: float = 1.0) -> Path:
    """CIRADA VLASS QL epoch 1 CSV: degrees, fluxes in mJy (times ``scale``), quality flags."""
    lines = [VLASS_HEADER]
    for r in rows:
        lines.append(f"VLASS1QLCIR J000000+000000,{r['ra']!r},{r['dec']!r},0.1,0.1,{r['tot'] * scale!r},"
                     f"{r.get('etot', 0.1) * scale!r},{r['peak'] * scale!r},0.1,2.6,2.3,40,0.12,S,"
                     f"{r.get('dcmaj', 0.0)},{r.get('dcmaj', 0.0) * 0.5},20,{r.get('dup', 0)},{r.get('q', 0)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_first_tsv(path: Path, rows: list[dict]) -> Path:
    """VizieR TSV export: '#' comments, header, units line, dashes line; sexagesimal, mJy, arcsec."""
    lines = ["#", "# VizieR Astronomical Server vizier.cds.unistra.fr", "#Table VIII/92/first14", "",
             "\t".join(FIRST_COLS),
             "\t".join(['"h:m:s"', '"d:m:s"', "", "mJy", "mJy", "mJy", "arcsec", "arcsec", "deg", "arcsec",
                        "arcsec", "deg"]),
             "\t".join("-" * 8 for _ in FIRST_COLS)]
    for r in rows:
        lines.append("\t".join([hms(r["ra"]).replace(" ", ":"), dms(r["dec"]).replace(" ", ":"), "0.01",
                                f"{r.get('fpeak', 100.0)}", f"{r.get('fint', 110.0)}", "0.15", f"{r['maj']}",
                                f"{r.get('min', 0.0)}", "30.0", f"{r['maj'] + 5.4}", "5.4", "30.0"]))
    path.write_text("\n".join(lines) + "\n")
    return path


def alpha(s14: float, s30: float) -> float:
    """Two-point spectral index between 1.4 and 3.0 GHz."""
    return math.log(s30 / s14) / math.log(3.0 / 1.4)


DEC0 = 30.0


def survey_set(tmp: Path) -> dict:
    """The standard small test sky: NVSS, VLASS, FIRST files and the expected properties by label."""
    P = {k: (150.0 + 0.02 * i, DEC0) for i, k in enumerate("ABCDEFGJKL")}
    P["H"] = (359.999, 10.0)
    P["I"] = (200.0, -0.5)
    nvss = {"A": (2000, 10), "B": (1000, 10), "C": (800, 10), "D": (500, 5), "E": (500, 5), "F": (600, 10),
            "G": (1000, 5), "H": (3.0, 0.45), "I": (100, 1), "J": (500, 5), "K": (700, 7), "L": (900, 9)}
    nvss_rows = [{"label": k, "ra": P[k][0], "dec": P[k][1], "s": s, "e": e} for k, (s, e) in nvss.items()]
    j_tot = 500 * (3 / 1.4) ** 0.5 * 0.85
    v = [  # label, offset arcsec, pa, tot, peak, extra
        ("A", 1.0, 30, 1400, 1300, {"dcmaj": 0.5}), ("B", 1.0, 0, 600, 500, {}),
        ("C", 2.0, 90, 300, 280, {}), ("C", 5.0, 270, 200, 150, {}),
        ("D", 9.0, 0, 400, 380, {}),
        ("E", 1.0, 0, 400, 380, {"q": 1}), ("E", 1.5, 180, 400, 380, {"dup": 2}),
        ("F", 1.0, 45, 400, 380, {}), ("G", 1.0, 0, 200, 190, {}),
        ("H", 4.25, 90, 2.5, 2.9, {}), ("J", 1.0, 0, j_tot, j_tot * 0.9, {}), ("K", 1.0, 0, 400, 380, {}),
        ("L", 1.0, 0, 600, 300, {"dcmaj": 7.0}),
    ]
    vlass_rows = []
    for label, off, pa, tot, peak, extra in v:
        ra, dec = offset(*P[label], off, pa)
        vlass_rows.append({"ra": ra, "dec": dec, "tot": tot, "peak": peak, **extra})
    f = [("A", 0.5, 0, 0.0), ("B", 1.0, 0, 8.0), ("F", 1.0, 90, 1.0), ("K", 1.0, 0, 0.0), ("K", 6.0, 180, 0.0)]
    first_rows = []
    for label, off, pa, maj in f:
        ra, dec = offset(*P[label], off, pa)
        first_rows.append({"ra": ra, "dec": dec, "maj": maj})
    return {
        "positions": P, "nvss_rows": nvss_rows, "vlass_rows": vlass_rows, "first_rows": first_rows,
        "nvss": write_nvss_csv(tmp / "nvss.csv", nvss_rows),
        "vlass": write_vlass_csv(tmp / "vlass_ql_epoch1.csv", vlass_rows),
        "first": write_first_tsv(tmp / "first.tsv", first_rows),
        "alpha": {"A": alpha(2000, 1400 / 0.85), "F": alpha(600, 400 / 0.85), "G": alpha(1000, 200 / 0.85),
                  "H": alpha(3.0, 2.5), "J": 0.5, "B": alpha(1000, 600 / 0.85), "C": alpha(800, 300 / 0.85),
                  "K": alpha(700, 400 / 0.85), "L": alpha(900, 600 / 0.85)},
    }
