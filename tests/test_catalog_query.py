"""Master catalog queries: cone search against brute force, primary-beam-weighted references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsa110_contimg.catalog import CatalogError
from dsa110_contimg.catalog.build_master import BuildMasterOptions, build_master
from dsa110_contimg.catalog.query import brightest_references, cone_search, open_catalog, ra_ranges
from test_catalog_support import offset, write_first_tsv, write_vlass_csv


def _haversine_deg(ra1, dec1, ra2, dec2):
    ra1, dec1, ra2, dec2 = map(np.radians, (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(h)))


@pytest.fixture(scope="module")
def random_sky(tmp_path_factory):
    """5000 sources: whole sky plus clusters at RA 0 (wrap), the north pole and dec -40; degree columns."""
    tmp = tmp_path_factory.mktemp("cat_cone")
    rng = np.random.default_rng(42)
    parts = [
        (rng.uniform(0, 360, 2000), np.degrees(np.arcsin(rng.uniform(-1, 1, 2000)))),
        (np.mod(rng.uniform(-6, 6, 1000), 360), rng.uniform(-8, 8, 1000)),
        (rng.uniform(0, 360, 1000), rng.uniform(82, 89.99, 1000)),
        (rng.uniform(40, 60, 1000), rng.uniform(-45, -35, 1000)),
    ]
    ra = np.concatenate([p[0] for p in parts])
    dec = np.concatenate([p[1] for p in parts])
    s = rng.uniform(5, 500, ra.size)
    lines = ["_RAJ2000,_DEJ2000,S1.4,e_S1.4"]
    lines += [f"{a!r},{d!r},{f!r},0.5" for a, d, f in zip(ra.tolist(), dec.tolist(), s.tolist())]
    (tmp / "nvss_deg.csv").write_text("\n".join(lines) + "\n")
    res = build_master(BuildMasterOptions(nvss=tmp / "nvss_deg.csv", out=tmp / "cone.sqlite3"))
    conn = open_catalog(res.out)
    yield {"db": res.out, "conn": conn, "ra": ra, "dec": dec, "n": res.n_sources}
    conn.close()


def test_cone_matches_brute_force(random_sky):
    sky = random_sky
    assert sky["n"] == sky["ra"].size
    rng = np.random.default_rng(1)
    centres = [(0.0, 0.0), (359.5, 3.0), (2.0, -7.0), (123.0, 89.0), (300.0, 85.0), (50.0, -40.0), (180, -89.5)]
    centres += list(zip(rng.uniform(0, 360, 150), rng.uniform(-90, 90, 150)))
    n_nonempty = 0
    for i, (ra0, dec0) in enumerate(centres):
        radius = [0.3, 2.0, 5.0, 12.0][i % 4]
        sep = _haversine_deg(ra0, dec0, sky["ra"], sky["dec"])
        expected = np.sort(sep[sep <= radius])
        got = cone_search(sky["conn"], ra0, dec0, radius)
        assert np.all(np.diff(got["sep_deg"]) >= 0)
        assert len(got) == len(expected), (ra0, dec0, radius)
        np.testing.assert_allclose(got["sep_deg"], expected, atol=1e-6)
        n_nonempty += len(got) > 0
    assert n_nonempty > 50


def test_cone_returns_requested_columns_and_accepts_path(random_sky):
    got = cone_search(random_sky["db"], 0.0, 0.0, 3.0, columns=("source_id", "s_nvss"))
    assert got.dtype.names == ("source_id", "s_nvss", "sep_deg")
    assert len(got) > 0 and np.all(got["s_nvss"] > 0.004)
    bright = cone_search(random_sky["db"], 0.0, 0.0, 3.0, min_flux_jy=0.25)
    assert 0 < len(bright) < len(got) and np.all(bright["s_nvss"] >= 0.25)
    with pytest.raises(CatalogError, match="unknown table"):
        cone_search(random_sky["conn"], 0, 0, 1, table="sources; DROP TABLE sources")
    with pytest.raises(CatalogError, match="final_references_table"):
        cone_search(random_sky["conn"], 0, 0, 1, table="final_references_table")


def test_ra_ranges_cover_cone():
    assert ra_ranges(0.5, 0.0, 1.0) == [(0.0, pytest.approx(1.5 + 1e-9)), (pytest.approx(359.5 - 1e-9), 360.0)]
    assert ra_ranges(10.0, 89.5, 1.0) == [(0.0, 360.0)]
    (lo, hi), = ra_ranges(180.0, 60.0, 1.0)
    assert hi - 180.0 == pytest.approx(math.degrees(math.asin(math.sin(math.radians(1)) / 0.5)), rel=1e-6)


def _airy(theta_rad, freq_hz):
    from scipy.special import j1

    from dsa110_contimg.telescope import DISH_DIAMETER_M

    x = math.pi * DISH_DIAMETER_M * math.sin(theta_rad) * freq_hz / 299_792_458.0
    return 1.0 if x == 0 else (2 * j1(x) / x) ** 2


def test_brightest_references_primary_beam_weighting(tmp_path):
    p_ra, p_dec = 100.0, 50.0
    srcs = {  # label: (offset deg, pa, S1.4 Jy, alpha, FIRST Maj)
        "X": (0.0, 0, 1.0, -0.5, 0.0), "Y": (1.5, 90, 3.0, -0.7, 0.0), "Z": (3.0, 0, 10.0, -0.3, 0.0),
        "W": (0.5, 180, 0.5, -0.6, 10.0), "V": (0.8, 270, 0.4, -1.0, 0.0),
    }
    pos = {k: offset(p_ra, p_dec, v[0] * 3600, v[1]) for k, v in srcs.items()}
    lines = ["RAJ2000,DEJ2000,S1.4,e_S1.4"] + [f"{pos[k][0]!r},{pos[k][1]!r},{v[2] * 1e3},{v[2]}"
                                               for k, v in srcs.items()]
    (tmp_path / "nvss.csv").write_text("\n".join(lines) + "\n")
    # VLASS totals chosen so that the QL-corrected alpha is exactly the one above; peaks > 3 mJy/beam
    write_vlass_csv(tmp_path / "vlass.csv", [
        {"ra": pos[k][0], "dec": pos[k][1], "tot": v[2] * 1e3 * (3 / 1.4) ** v[3] * 0.85, "peak": 100.0}
        for k, v in srcs.items()])
    write_first_tsv(tmp_path / "first.tsv", [{"ra": pos[k][0], "dec": pos[k][1], "maj": v[4]}
                                             for k, v in srcs.items()])
    res = build_master(BuildMasterOptions(nvss=tmp_path / "nvss.csv", vlass=tmp_path / "vlass.csv",
                                          first=tmp_path / "first.tsv", out=tmp_path / "refs.sqlite3"))
    assert res.n_good_references == 4  # W is resolved
    freq = 1.8e9
    refs = brightest_references(res.out, p_ra, p_dec, 3.5, freq_hz=freq, n=3)
    expected = {}
    for k, (off, _, s, a, maj) in srcs.items():
        if maj > 5:
            continue
        theta = math.radians(float(_haversine_deg(p_ra, p_dec, *pos[k])))  # true offset, not the nominal one
        expected[k] = s * (freq / 1.4e9) ** a * _airy(theta, freq)
    order = sorted(expected, key=expected.get, reverse=True)
    assert len(refs) == 3
    got_sources = [min(expected, key=lambda k: _haversine_deg(r["ra_deg"], r["dec_deg"], *pos[k])) for r in refs]
    assert got_sources == order[:3]
    np.testing.assert_allclose(refs["apparent_jy"], [expected[k] for k in order[:3]], rtol=1e-6)
    np.testing.assert_allclose(refs["pb_weight"], [expected[k] / srcs[k][2] / (freq / 1.4e9) ** srcs[k][3]
                                                   for k in order[:3]], rtol=1e-6)
    # the 10 Jy source 3 deg out is beyond the first null region: fainter than the on-axis 1 Jy one
    assert expected["Z"] < expected["X"]
    far = brightest_references(res.out, p_ra, p_dec, 3.5, freq_hz=freq, n=10, min_apparent_jy=0.3)
    assert all(far["apparent_jy"] >= 0.3) and len(far) == sum(v >= 0.3 for v in expected.values())
    # a different pointing centre changes the weights
    off_axis = brightest_references(res.out, p_ra, p_dec, 3.5, freq_hz=freq, n=10,
                                    pointing_ra_deg=pos["Z"][0], pointing_dec_deg=pos["Z"][1])
    assert off_axis["s_freq_jy"][0] == pytest.approx(10.0 * (freq / 1.4e9) ** -0.3, rel=1e-6)


def test_cone_sql_uses_the_covering_position_index(random_sky):
    conn = random_sky["conn"]
    for table in ("sources", "good_references", "final_references"):
        plan = conn.execute(f"EXPLAIN QUERY PLAN SELECT source_id, ra_deg, dec_deg, s_nvss, alpha FROM {table} "
                            "WHERE dec_band IN (90, 91) AND ra_deg >= 1 AND ra_deg <= 2").fetchall()
        detail = " ".join(str(row[-1]) for row in plan)
        assert "USING COVERING INDEX idx_sources_pos (dec_band=? AND ra_deg>? AND ra_deg<?)" in detail, detail
