"""Master catalog build: matches, alpha, flags, units, formats, views, meta, export, CLI."""

from __future__ import annotations

import csv
import hashlib
import math
import sqlite3
import subprocess
import sys

import pytest
from click.testing import CliRunner

from dsa110_contimg.catalog.build_master import BuildMasterOptions, build_master
from test_catalog_support import alpha, survey_set, write_nvss_csv, write_vlass_csv


def _rows(db, sql="SELECT * FROM sources", args=()):
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def _by_label(db, positions, table="sources"):
    """Map test labels to rows by nearest position (within 1 arcsec)."""
    rows = _rows(db, f"SELECT * FROM {table}")
    out = {}
    for label, (ra, dec) in positions.items():
        for r in rows:
            dra = (r["ra_deg"] - ra + 180) % 360 - 180
            if math.hypot(dra * math.cos(math.radians(dec)), r["dec_deg"] - dec) < 1 / 3600:
                out[label] = r
    return out


@pytest.fixture(scope="module")
def sky(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cat_build")
    s = survey_set(tmp)
    s["tmp"] = tmp
    s["result"] = build_master(BuildMasterOptions(nvss=s["nvss"], vlass=s["vlass"], first=s["first"],
                                                  out=tmp / "master.sqlite3",
                                                  export_csv=tmp / "good.csv"))
    s["db"] = tmp / "master.sqlite3"
    s["rows"] = _by_label(s["db"], s["positions"])
    return s


def test_every_nvss_row_is_a_source_with_its_position(sky):
    rows = sky["rows"]
    assert len(rows) == len(sky["nvss_rows"]) == sky["result"].n_sources
    # sexagesimal parsing, incl. a negative declination with 0 degrees and RA near 360
    assert rows["I"]["dec_deg"] == pytest.approx(-0.5, abs=1e-7)
    assert rows["I"]["ra_deg"] == pytest.approx(200.0, abs=1e-6)
    assert rows["H"]["ra_deg"] == pytest.approx(359.999, abs=1e-6)
    for r in sky["nvss_rows"]:
        got = rows[r["label"]]
        assert got["s_nvss"] == pytest.approx(r["s"] * 1e-3)  # mJy -> Jy
        assert got["snr_nvss"] == pytest.approx(r["s"] / r["e"])


def test_vlass_matches_and_quality_cut(sky):
    rows = sky["rows"]
    assert rows["A"]["vlass_sep_arcsec"] == pytest.approx(1.0, abs=0.02)
    assert rows["A"]["s_vlass"] == pytest.approx(1.4)  # as catalogued, Jy
    assert rows["H"]["vlass_sep_arcsec"] == pytest.approx(4.25, abs=0.02)  # match across RA = 0
    assert rows["D"]["s_vlass"] is None and rows["D"]["n_vlass"] == 0  # 9" > 7.5"
    assert rows["E"]["s_vlass"] is None and rows["E"]["n_vlass"] == 0  # Quality_flag 1, Duplicate_flag 2 dropped
    assert rows["I"]["s_vlass"] is None
    assert rows["C"]["n_vlass"] == 2 and rows["C"]["s_vlass"] == pytest.approx(0.3)  # nearest of two
    res = sky["result"]
    assert res.n_input_rows["vlass"] == len(sky["vlass_rows"])
    assert res.n_vlass_clean == len(sky["vlass_rows"]) - 2
    assert res.n_vlass_matched == 9  # A B C F G H J K L; not D (too far), E (flags), I (none)


def test_alpha_uses_integrated_fluxes_with_ql_correction(sky):
    rows = sky["rows"]
    for label, expected in sky["alpha"].items():
        assert rows[label]["alpha"] == pytest.approx(expected, abs=1e-6), label
    # below 3 mJy/beam peak no correction: s_vlass_corr == s_vlass
    assert rows["H"]["s_vlass_corr"] == pytest.approx(rows["H"]["s_vlass"])
    assert rows["A"]["s_vlass_corr"] == pytest.approx(1.4 / 0.85)
    assert rows["D"]["alpha"] is None


def test_resolved_and_confusion_flags(sky):
    rows = sky["rows"]
    assert rows["B"]["resolved_flag"] == 1 and rows["B"]["size_source"] == 1  # FIRST Maj 8"
    assert rows["A"]["resolved_flag"] == 0 and rows["A"]["first_maj_arcsec"] == 0.0
    assert rows["F"]["resolved_flag"] == 0
    assert rows["L"]["resolved_flag"] == 1 and rows["L"]["size_source"] == 2  # no FIRST: VLASS DC_Maj 7"
    assert rows["J"]["resolved_flag"] == 0 and rows["J"]["size_source"] == 2
    assert rows["I"]["resolved_flag"] is None and rows["I"]["size_source"] == 0
    confused = {k for k, r in rows.items() if r["confusion_flag"]}
    assert confused == {"C", "K"}  # two VLASS components / two FIRST components within 7.5"
    assert rows["K"]["n_first"] == 2


def test_views_default_thresholds(sky):
    good = set(_by_label(sky["db"], sky["positions"], "good_references"))
    final = set(_by_label(sky["db"], sky["positions"], "final_references"))
    assert good == {"A", "F"}
    assert final == {"A"}
    assert sky["result"].n_good_references == 2 and sky["result"].n_final_references == 1


def test_views_custom_thresholds_ids_and_materialized(sky):
    tmp = sky["tmp"]
    ids_file = tmp / "stable_ids.txt"
    f_id = sky["rows"]["F"]["source_id"]
    ids_file.write_text(f"source_id\n# stable set\n{f_id}\n{sky['rows']['J']['source_id']}\n")
    res = build_master(BuildMasterOptions(
        nvss=sky["nvss"], vlass=sky["vlass"], first=sky["first"], out=tmp / "custom.sqlite3",
        goodref_snr_min=55, goodref_alpha_max=0.6, finalref_snr_min=55, finalref_ids=ids_file,
        materialize_final=True))
    good = set(_by_label(res.out, sky["positions"], "good_references"))
    assert good == {"A", "F", "J"}  # J (alpha 0.5) now allowed; F (SNR 60) still > 55
    assert set(_by_label(res.out, sky["positions"], "final_references")) == {"F", "J"}  # ids restrict
    table = _rows(res.out, "SELECT * FROM final_references_table ORDER BY source_id")
    view = _rows(res.out, "SELECT * FROM final_references ORDER BY source_id")
    assert table == view and len(table) == 2
    res2 = build_master(BuildMasterOptions(nvss=sky["nvss"], vlass=sky["vlass"], first=sky["first"],
                                           out=tmp / "strict.sqlite3", goodref_snr_min=100))
    assert set(_by_label(res2.out, sky["positions"], "good_references")) == {"A"}


def test_meta_provenance(sky):
    meta = dict((r["key"], r["value"]) for r in _rows(sky["db"], "SELECT * FROM meta"))
    for name in ("nvss", "vlass", "first"):
        path = sky[name]
        assert meta[f"input.{name}.sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert int(meta[f"input.{name}.size_bytes"]) == path.stat().st_size
        assert meta[f"input.{name}.mtime_iso"]
    assert int(meta["input.nvss.rows"]) == 12
    assert int(meta["input.vlass.rows"]) == 13 and int(meta["input.first.rows"]) == 5
    assert float(meta["goodref_snr_min"]) == 50 and float(meta["finalref_snr_min"]) == 80
    assert float(meta["goodref_alpha_min"]) == -1.2 and float(meta["goodref_alpha_max"]) == 0.2
    assert float(meta["match_radius_arcsec"]) == 7.5
    assert meta["build_time_iso"].startswith("20")


def test_export_csv_matches_view(sky):
    with open(sky["tmp"] / "good.csv", newline="") as fh:
        exported = list(csv.DictReader(fh))
    view = _rows(sky["db"], "SELECT * FROM good_references ORDER BY source_id")
    assert [int(r["source_id"]) for r in exported] == [r["source_id"] for r in view]
    assert [float(r["alpha"]) for r in exported] == pytest.approx([r["alpha"] for r in view])
    assert sky["result"].n_exported == 2


@pytest.mark.parametrize("unit,scale", [("jy", 1e-3), ("ujy", 1e3)])
def test_flux_units_converted_to_jy(sky, tmp_path, unit, scale):
    nvss = write_nvss_csv(tmp_path / "nvss.csv", sky["nvss_rows"], scale=scale)
    vlass = write_vlass_csv(tmp_path / "vlass.csv", sky["vlass_rows"], scale=scale)
    res = build_master(BuildMasterOptions(nvss=nvss, vlass=vlass, first=sky["first"], out=tmp_path / "m.sqlite3",
                                          nvss_flux_unit=unit, vlass_flux_unit=unit))
    rows = _by_label(res.out, sky["positions"])
    for label in ("A", "H", "G"):
        for col in ("s_nvss", "s_vlass", "s_vlass_corr", "alpha"):
            assert rows[label][col] == pytest.approx(sky["rows"][label][col], rel=1e-9), (label, col)


def test_fits_input_and_degree_positions_and_explicit_mapping(sky, tmp_path):
    from astropy.table import Table

    rows = sky["nvss_rows"]
    Table({"RAJ2000": [r["ra"] for r in rows], "DEJ2000": [r["dec"] for r in rows],
           "S1.4": [r["s"] for r in rows], "e_S1.4": [r["e"] for r in rows]}).write(tmp_path / "nvss.fits")
    # odd names that need explicit mappings, lower-case alternates for the rest
    text = "pos_a,pos_d,flux_total_mjy,err\n" + "".join(
        f"{r['ra']!r},{r['dec']!r},{r['s']},{r['e']}\n" for r in rows)
    (tmp_path / "nvss_odd.csv").write_text(text)
    a = build_master(BuildMasterOptions(nvss=tmp_path / "nvss.fits", vlass=sky["vlass"], out=tmp_path / "a.sqlite3"))
    b = build_master(BuildMasterOptions(nvss=tmp_path / "nvss_odd.csv", vlass=sky["vlass"], out=tmp_path / "b.sqlite3",
                                        nvss_col=["ra=pos_a", "dec=pos_d", "flux=flux_total_mjy", "flux_err=err"]))
    for res in (a, b):
        got = _by_label(res.out, sky["positions"])
        assert set(got) == set(sky["positions"])
        assert got["A"]["alpha"] == pytest.approx(sky["alpha"]["A"], abs=1e-6)
        assert got["I"]["dec_deg"] == pytest.approx(-0.5)
    ids_sql = "SELECT source_id FROM sources ORDER BY 1"
    assert _rows(a.out, ids_sql) == _rows(b.out, ids_sql)


def test_cli_group_and_python_m_share_flags(sky, tmp_path):
    from dsa110_contimg.catalog.cli import catalog

    out = tmp_path / "cli.sqlite3"
    r = CliRunner().invoke(catalog, ["build-master", "--nvss", str(sky["nvss"]), "--vlass", str(sky["vlass"]),
                                     "--first", str(sky["first"]), "--out", str(out), "--goodref-snr-min", "100",
                                     "--export-view", "sources", "--export-csv", str(tmp_path / "all.csv")])
    assert r.exit_code == 0, r.output
    assert len(_rows(out, "SELECT * FROM good_references")) == 1
    assert sum(1 for _ in open(tmp_path / "all.csv")) == 1 + 12
    r = CliRunner().invoke(catalog, ["cone", "150.0", "30.0", "--radius", "0.01", "--db", str(out)],
                            env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert str(sky["rows"]["A"]["source_id"]) in r.output
    helps = []
    for cmd in ([sys.executable, "-m", "dsa110_contimg.catalog.build_master", "--help"],):
        helps.append(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    helps.append(CliRunner().invoke(catalog, ["build-master", "--help"]).output)
    flags = lambda text: sorted(w.rstrip(",") for w in text.split() if w.startswith("--"))
    assert flags(helps[0]) == flags(helps[1])
    assert {"--nvss", "--nvss-col", "--finalref-ids", "--materialize-final", "--export-view"} <= set(flags(helps[0]))


def test_default_out_is_under_state_dir(sky, session_state, monkeypatch):
    monkeypatch.chdir(sky["tmp"])
    res = build_master(BuildMasterOptions(nvss=sky["nvss"]))
    assert res.out == session_state / "catalogs" / "master_sources.sqlite3"
    assert res.out.is_file() and res.n_sources == 12 and res.n_good_references == 0  # no VLASS: no alpha


def test_cli_import_is_cheap():
    code = ("import sys, dsa110_contimg.catalog.cli; "
            "print(any(m in sys.modules for m in ('numpy', 'astropy', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    assert alpha(1.0, 1.0) == 0.0
