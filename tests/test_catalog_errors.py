"""Master catalog bad input: clear errors, and an existing catalog survives a failed build."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner

from dsa110_contimg.catalog import CatalogError
from dsa110_contimg.catalog.build_master import BuildMasterOptions, build_master
from dsa110_contimg.catalog.query import open_catalog
from test_catalog_support import NVSS_HEADER, survey_set


@pytest.fixture(scope="module")
def sky(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cat_err")
    s = survey_set(tmp)
    s["tmp"] = tmp
    return s


def test_missing_column_names_file_column_and_columns_found(sky, tmp_path):
    text = sky["nvss"].read_text().splitlines()
    header = text[0].split(",")
    drop = header.index("e_S1.4")
    bad = tmp_path / "nvss_no_err.csv"
    bad.write_text("\n".join(",".join(f for i, f in enumerate(line.split(",")) if i != drop) for line in text))
    with pytest.raises(CatalogError) as exc:
        build_master(BuildMasterOptions(nvss=bad, out=tmp_path / "m.sqlite3"))
    msg = str(exc.value)
    assert str(bad) in msg
    assert "e_S1.4" in msg and "flux_err" in msg
    assert "columns found: RAJ2000, DEJ2000, e_RAJ2000, e_DEJ2000, S1.4, l_MajAxis" in msg


def test_missing_vlass_position_column(sky, tmp_path):
    text = sky["vlass"].read_text().replace("Component_name,RA,DEC,", "Component_name,RA,DECL,", 1)
    bad = tmp_path / "vlass.csv"
    bad.write_text(text)
    with pytest.raises(CatalogError, match=r"vlass\.csv: missing required VLASS column for 'dec'.*DECL"):
        build_master(BuildMasterOptions(nvss=sky["nvss"], vlass=bad, out=tmp_path / "m.sqlite3"))


def test_bad_explicit_mapping(sky, tmp_path):
    with pytest.raises(CatalogError, match="column 'FLUX_TOTAL' .* not found; columns found: RAJ2000"):
        build_master(BuildMasterOptions(nvss=sky["nvss"], nvss_col=["flux=FLUX_TOTAL"], out=tmp_path / "m.sqlite3"))
    with pytest.raises(CatalogError, match="unknown field 'brightness'"):
        build_master(BuildMasterOptions(nvss=sky["nvss"], nvss_col=["brightness=S1.4"], out=tmp_path / "m.sqlite3"))
    with pytest.raises(CatalogError, match="expected FIELD=COLUMN"):
        build_master(BuildMasterOptions(nvss=sky["nvss"], nvss_col=["S1.4"], out=tmp_path / "m.sqlite3"))


@pytest.mark.filterwarnings("ignore")
def test_unreadable_files(sky, tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(CatalogError, match=r"nope\.csv: NVSS catalog file not found"):
        build_master(BuildMasterOptions(nvss=missing, out=tmp_path / "m.sqlite3"))
    garbage = tmp_path / "first.fits"
    garbage.write_bytes(b"SIMPLE  =                    T" + b"\x00\xff" * 50)
    with pytest.raises(CatalogError, match=r"first\.fits: cannot read FIRST table"):
        build_master(BuildMasterOptions(nvss=sky["nvss"], first=garbage, out=tmp_path / "m.sqlite3"))
    binary = tmp_path / "vlass.dat"
    binary.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(CatalogError, match=r"vlass\.dat: "):
        build_master(BuildMasterOptions(nvss=sky["nvss"], vlass=binary, out=tmp_path / "m.sqlite3"))
    text = tmp_path / "nvss_text_flux.csv"
    text.write_text(NVSS_HEADER + "\n" + "12 00 00.0,+30 00 00,0.1,0.1,bright,0.5,<,1,<,1,,,F,1,1\n")
    with pytest.raises(CatalogError, match=r"nvss_text_flux\.csv: column 'S1\.4' is not numeric \(e\.g\. 'bright'\)"):
        build_master(BuildMasterOptions(nvss=text, out=tmp_path / "m.sqlite3"))


def test_wrong_unit_string(sky, tmp_path):
    with pytest.raises(CatalogError, match="--vlass-flux-unit: unknown flux unit 'mJansky'; expected one of jy"):
        build_master(BuildMasterOptions(nvss=sky["nvss"], vlass_flux_unit="mJansky", out=tmp_path / "m.sqlite3"))
    from dsa110_contimg.catalog.cli import catalog

    r = CliRunner().invoke(catalog, ["build-master", "--nvss", str(sky["nvss"]), "--nvss-flux-unit", "Jansky",
                                     "--out", str(tmp_path / "m.sqlite3")])
    assert r.exit_code == 2 and "Jansky" in r.output and not (tmp_path / "m.sqlite3").exists()


def test_empty_catalog(sky, tmp_path):
    empty = tmp_path / "nvss_empty.csv"
    empty.write_text(NVSS_HEADER + "\n")
    with pytest.raises(CatalogError, match=r"nvss_empty\.csv: NVSS catalog contains no rows"):
        build_master(BuildMasterOptions(nvss=empty, out=tmp_path / "m.sqlite3"))
    blank = tmp_path / "blank.tsv"
    blank.write_text("")
    with pytest.raises(CatalogError, match=r"blank\.tsv: empty file"):
        build_master(BuildMasterOptions(nvss=sky["nvss"], first=blank, out=tmp_path / "m.sqlite3"))
    from astropy.table import Table

    Table({"RA": [1.0][:0], "DEC": [1.0][:0], "Total_flux": [1.0][:0]}).write(tmp_path / "vlass_empty.fits")
    with pytest.raises(CatalogError, match=r"vlass_empty\.fits: VLASS catalog contains no rows"):
        build_master(BuildMasterOptions(nvss=sky["nvss"], vlass=tmp_path / "vlass_empty.fits",
                                        out=tmp_path / "m.sqlite3"))


def test_failed_build_leaves_existing_catalog_untouched(sky, tmp_path):
    out = tmp_path / "catalogs" / "master_sources.sqlite3"
    build_master(BuildMasterOptions(nvss=sky["nvss"], vlass=sky["vlass"], first=sky["first"], out=out))
    before = hashlib.sha256(out.read_bytes()).hexdigest()
    mtime = out.stat().st_mtime_ns
    bad_vlass = tmp_path / "vlass_bad.csv"
    bad_vlass.write_text("RA,DEC\n1,2\n")
    with pytest.raises(CatalogError):
        build_master(BuildMasterOptions(nvss=sky["nvss"], vlass=bad_vlass, out=out))
    # a failure late in the build (after the SQLite file was written): the export target is a directory
    (tmp_path / "export_dir").mkdir()
    with pytest.raises(CatalogError, match="cannot write CSV export"):
        build_master(BuildMasterOptions(nvss=sky["nvss"], out=out, export_csv=tmp_path / "export_dir"))
    assert hashlib.sha256(out.read_bytes()).hexdigest() == before and out.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in out.parent.iterdir()) == ["master_sources.sqlite3"]  # no temp file left
    conn = open_catalog(out)
    assert conn.execute("SELECT COUNT(*) FROM sources").fetchone()[0] == 12
    conn.close()


def test_bad_options_and_catalog_paths(sky, tmp_path):
    with pytest.raises(CatalogError, match="--export-view 'bogus'"):
        build_master(BuildMasterOptions(nvss=sky["nvss"], export_view="bogus", export_csv=tmp_path / "x.csv"))
    with pytest.raises(CatalogError, match="--goodref-alpha-min 1.0 > --goodref-alpha-max"):
        build_master(BuildMasterOptions(nvss=sky["nvss"], goodref_alpha_min=1.0, out=tmp_path / "m.sqlite3"))
    ids = tmp_path / "ids.txt"
    ids.write_text("123\nJ1234+5678\n")
    with pytest.raises(CatalogError, match=r"ids\.txt: line 2: 'J1234\+5678' is not an integer source_id"):
        build_master(BuildMasterOptions(nvss=sky["nvss"], finalref_ids=ids, out=tmp_path / "m.sqlite3"))
    with pytest.raises(CatalogError, match="master catalog not found"):
        open_catalog(tmp_path / "missing.sqlite3")
    (tmp_path / "junk.sqlite3").write_text("not a database at all" * 100)
    with pytest.raises(CatalogError, match="not an SQLite master catalog"):
        open_catalog(tmp_path / "junk.sqlite3")
