"""Calibration registry: schema/migrations, sets, validity windows, selection, CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from dsa110_contimg.db import cal_registry as reg
from dsa110_contimg.db.cal_registry import (
    CalRegistryError,
    CalTableEntry,
    activate_set,
    active_set_at,
    connect,
    get_set,
    list_sets,
    nearest_active_set,
    register_set,
    retire_set,
    update_quality,
    verify_set_on_disk,
)

T0 = 60950.25  # 2025-10-02T06:00:00 UTC
HOUR = 1.0 / 24.0


def make_tables(root: Path, prefix: str, types=("K", "B", "G")) -> list[CalTableEntry]:
    """Create one directory per table (a CASA table is a directory) and return the entries."""
    entries = []
    for i, t in enumerate(types):
        p = root / f"{prefix}.{t}cal"
        p.mkdir(parents=True)
        (p / "table.dat").write_bytes(b"")
        entries.append(CalTableEntry(str(p), t, i, quality_metrics={"flagged_frac": 0.1 * i}))
    return entries


@pytest.fixture()
def db(tmp_path):
    conn = connect(tmp_path / "sub" / "cal_registry.sqlite3")
    yield conn
    conn.close()


def n_rows(conn) -> int:
    return conn.execute("SELECT COUNT(*) FROM caltables").fetchone()[0]


def dump(conn) -> list[tuple]:
    return [tuple(r) for r in conn.execute("SELECT * FROM caltables ORDER BY id")]


# --------------------------------------------------------------------------- schema


def test_connect_creates_schema(tmp_path):
    path = tmp_path / "a" / "b" / "reg.sqlite3"
    conn = connect(path)
    assert path.is_file()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == reg.SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cols = [r[1] for r in conn.execute("PRAGMA table_info(caltables)")]
    assert cols == ["id", "set_name", "path", "table_type", "order_index", "cal_field", "refant", "created_at",
                    "valid_start_mjd", "valid_end_mjd", "status", "notes", "source_ms_path", "solver_command",
                    "solver_version", "solver_params", "quality_metrics", "qa_plot_path"]
    indices = {r[0]: r[1] for r in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")}
    assert "(status, valid_start_mjd, valid_end_mjd)" in indices["idx_caltables_status_valid"]
    assert "(set_name)" in indices["idx_caltables_set"]
    conn.close()
    # reconnecting is a no-op
    conn = connect(path)
    assert reg.migrate(conn) == reg.SCHEMA_VERSION
    conn.close()


def test_migrate_old_schema_keeps_rows(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE caltables (id INTEGER PRIMARY KEY, set_name TEXT, path TEXT, table_type TEXT, "
                "order_index INTEGER, valid_start_mjd REAL, valid_end_mjd REAL, status TEXT)")
    old.executemany("INSERT INTO caltables (set_name, path, table_type, order_index, valid_start_mjd, "
                    "valid_end_mjd, status) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [("old", "/data/old.K", "K", 0, T0, T0 + 0.5, "active"),
                     ("old", "/data/old.G", "G", 1, T0, T0 + 0.5, "active"),
                     (None, "/data/orphan.G", "G", 0, T0 - 2, T0 - 1.5, None)])
    old.commit()
    assert old.execute("PRAGMA user_version").fetchone()[0] == 0
    old.close()

    conn = connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == reg.SCHEMA_VERSION
    cols = {r[1] for r in conn.execute("PRAGMA table_info(caltables)")}
    assert {"cal_field", "refant", "created_at", "notes", "source_ms_path", "solver_command",
            "solver_version", "solver_params", "quality_metrics"} <= cols
    assert n_rows(conn) == 3
    s = get_set(conn, "old")
    assert s.paths == ["/data/old.K", "/data/old.G"] and s.status == "active"
    assert active_set_at(conn, T0 + 0.1).set_name == "old"
    orphan = get_set(conn, "legacy-3")
    assert orphan.status == "active" and orphan.paths == ["/data/orphan.G"]
    # the migrated registry enforces unique paths and accepts new sets
    update_quality(conn, "/data/old.G", {"snr": 40})
    assert get_set(conn, "old").entries[1].quality_metrics == {"snr": 40}
    register_set(conn, "new", make_tables(tmp_path, "new"), valid_start_mjd=T0 + 1)
    assert n_rows(conn) == 6
    conn.close()


def test_migrate_empty_database(tmp_path):
    path = tmp_path / "empty.sqlite3"
    sqlite3.connect(path).close()
    conn = connect(path)
    assert n_rows(conn) == 0 and list_sets(conn) == []
    conn.close()


def test_newer_schema_refused(tmp_path):
    path = tmp_path / "future.sqlite3"
    c = sqlite3.connect(path)
    c.execute(f"PRAGMA user_version = {reg.SCHEMA_VERSION + 1}")
    c.close()
    with pytest.raises(CalRegistryError, match="newer"):
        connect(path)


# --------------------------------------------------------------------------- register


def test_register_and_get(db, tmp_path):
    entries = make_tables(tmp_path, "cal1")
    entries[1].solver_params = {"solint": "inf", "combine": "scan"}
    s = register_set(db, "cal1", list(reversed(entries)), valid_start_mjd=T0, cal_field="3C286",
                     refant="pad103", source_ms_path=tmp_path / "x.ms", solver_command="bandpass",
                     solver_version="casa 6.7", notes="first")
    assert s.set_name == "cal1" and s.status == "active"
    assert s.table_types == ["K", "B", "G"]
    assert [e.order_index for e in s.entries] == [0, 1, 2]
    assert s.paths == [e.path for e in entries]
    assert s.valid_start_mjd == T0
    assert s.valid_end_mjd == pytest.approx(T0 + reg.DEFAULT_VALIDITY_HOURS * HOUR)
    assert s.cal_field == "3C286" and s.refant == "pad103" and s.notes == "first"
    assert s.source_ms_path == str(tmp_path / "x.ms")
    assert s.solver_command == "bandpass" and s.solver_version == "casa 6.7"
    assert s.created_at.endswith("Z")
    assert s.entries[1].solver_params == {"solint": "inf", "combine": "scan"}
    assert s.entries[2].quality_metrics == {"flagged_frac": pytest.approx(0.2)}
    assert get_set(db, "cal1") == s
    assert n_rows(db) == 3
    row = db.execute("SELECT solver_params FROM caltables WHERE table_type = 'B'").fetchone()
    assert json.loads(row[0]) == {"combine": "scan", "solint": "inf"}


def test_register_span_and_explicit_end(db, tmp_path):
    a = register_set(db, "a", make_tables(tmp_path, "a", ("G",)), valid_start_mjd=T0, span_hours=6)
    assert a.valid_end_mjd == pytest.approx(T0 + 0.25)
    b = register_set(db, "b", make_tables(tmp_path, "b", ("G",)), valid_start_mjd=T0, valid_end_mjd=T0 + 2)
    assert b.valid_end_mjd == T0 + 2


def test_relative_paths_stored_absolute(db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("rel.G").mkdir()
    s = register_set(db, "rel", [CalTableEntry("rel.G", "G", 0)], valid_start_mjd=T0)
    assert s.paths == [str(tmp_path / "rel.G")]


def test_missing_table_on_disk_nothing_written(db, tmp_path):
    entries = make_tables(tmp_path, "m")
    gone = [tmp_path / "gone1.Gcal", tmp_path / "gone2.Bcal"]
    entries += [CalTableEntry(str(gone[0]), "G", 5), CalTableEntry(str(gone[1]), "B", 6)]
    with pytest.raises(CalRegistryError) as info:
        register_set(db, "m", entries, valid_start_mjd=T0)
    msg = str(info.value)
    assert "missing on disk" in msg and str(gone[0]) in msg and str(gone[1]) in msg
    assert str(entries[0].path) not in msg
    assert n_rows(db) == 0


def test_table_that_is_a_file_rejected(db, tmp_path):
    f = tmp_path / "plain.G"
    f.write_text("not a table")
    with pytest.raises(CalRegistryError, match="not a directory"):
        register_set(db, "f", [CalTableEntry(str(f), "G", 0)], valid_start_mjd=T0)
    assert n_rows(db) == 0


def test_duplicate_path_leaves_db_unchanged(db, tmp_path):
    first = make_tables(tmp_path, "dup")
    register_set(db, "first", first, valid_start_mjd=T0)
    before = dump(db)
    fresh = make_tables(tmp_path, "fresh", ("K",))
    second = fresh + [CalTableEntry(first[2].path, "G", 1)]
    with pytest.raises(CalRegistryError, match=r"already registered.*dup\.Gcal.*'first'"):
        register_set(db, "second", second, valid_start_mjd=T0 + 1)
    assert dump(db) == before
    with pytest.raises(CalRegistryError):
        get_set(db, "second")


def test_duplicate_set_name_leaves_db_unchanged(db, tmp_path):
    register_set(db, "s", make_tables(tmp_path, "s1"), valid_start_mjd=T0)
    before = dump(db)
    with pytest.raises(CalRegistryError, match="'s' is already registered"):
        register_set(db, "s", make_tables(tmp_path, "s2"), valid_start_mjd=T0 + 1)
    assert dump(db) == before


def test_integrity_error_inside_transaction_rolls_back(db, tmp_path):
    """Even a failure in the middle of the inserts (e.g. a concurrent writer) leaves nothing behind."""
    entries = make_tables(tmp_path, "race")
    db.execute("CREATE TRIGGER boom BEFORE INSERT ON caltables WHEN NEW.table_type = 'G' "
               "BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: simulated'); END")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO caltables (set_name, path, table_type) VALUES ('x', '/x', 'G')")
    with pytest.raises(CalRegistryError, match="not registered"):
        register_set(db, "race", entries, valid_start_mjd=T0)
    assert n_rows(db) == 0 and not db.in_transaction


@pytest.mark.parametrize("kwargs, match", [
    ({"valid_start_mjd": T0, "valid_end_mjd": T0}, "not after"),
    ({"valid_start_mjd": T0, "valid_end_mjd": T0 - 1}, "not after"),
    ({"valid_start_mjd": float("nan")}, "not finite"),
    ({"valid_start_mjd": "soon"}, "not a number"),
    ({"valid_start_mjd": T0, "span_hours": 0}, "positive"),
])
def test_bad_window(db, tmp_path, kwargs, match):
    with pytest.raises(CalRegistryError, match=match):
        register_set(db, "w", make_tables(tmp_path, "w", ("G",)), **kwargs)
    assert n_rows(db) == 0


def test_bad_entries(db, tmp_path):
    e = make_tables(tmp_path, "e", ("K", "G"))
    with pytest.raises(CalRegistryError, match="no calibration tables"):
        register_set(db, "e", [], valid_start_mjd=T0)
    with pytest.raises(CalRegistryError, match="non-empty"):
        register_set(db, "  ", e, valid_start_mjd=T0)
    with pytest.raises(CalRegistryError, match="listed twice"):
        register_set(db, "e", [e[0], CalTableEntry(e[0].path, "G", 1)], valid_start_mjd=T0)
    with pytest.raises(CalRegistryError, match="order_index 0 used twice"):
        register_set(db, "e", [e[0], CalTableEntry(e[1].path, "G", 0)], valid_start_mjd=T0)
    with pytest.raises(CalRegistryError, match="JSON"):
        register_set(db, "e", [CalTableEntry(e[0].path, "K", 0, quality_metrics={"x": object()})],
                     valid_start_mjd=T0)
    assert n_rows(db) == 0


# --------------------------------------------------------------------------- selection


def test_window_inside_outside_boundaries(db, tmp_path):
    s = register_set(db, "w", make_tables(tmp_path, "w"), valid_start_mjd=T0, span_hours=12)
    end = s.valid_end_mjd
    assert active_set_at(db, T0).set_name == "w"  # start inclusive
    assert active_set_at(db, T0 + 6 * HOUR).set_name == "w"
    assert active_set_at(db, end).set_name == "w"  # end inclusive
    assert active_set_at(db, T0 - 1e-6) is None
    assert active_set_at(db, end + 1e-6) is None
    assert active_set_at(db, T0 - 10) is None
    assert s.contains(T0) and s.contains(end) and not s.contains(end + 1e-6)


def test_overlapping_sets_nearest_transit_wins(db, tmp_path):
    register_set(db, "early", make_tables(tmp_path, "early"), valid_start_mjd=T0, span_hours=24)
    register_set(db, "late", make_tables(tmp_path, "late"), valid_start_mjd=T0 + 8 * HOUR, span_hours=24)
    assert active_set_at(db, T0 + 2 * HOUR).set_name == "early"  # late not valid yet
    assert active_set_at(db, T0 + 9 * HOUR).set_name == "late"
    assert active_set_at(db, T0 + 30 * HOUR).set_name == "late"  # only late still valid
    assert active_set_at(db, T0 + 33 * HOUR) is None
    # retired sets are ignored, and come back when re-activated
    retire_set(db, "late", "bad bandpass")
    assert active_set_at(db, T0 + 9 * HOUR).set_name == "early"
    assert active_set_at(db, T0 + 30 * HOUR) is None
    activate_set(db, "late")
    assert active_set_at(db, T0 + 9 * HOUR).set_name == "late"


def test_windows_starting_before_transit(db, tmp_path):
    """With explicit windows, "nearest" is measured to the validity start on either side."""
    register_set(db, "a", make_tables(tmp_path, "a", ("G",)), valid_start_mjd=T0, valid_end_mjd=T0 + 1)
    register_set(db, "b", make_tables(tmp_path, "b", ("G",)), valid_start_mjd=T0 + 0.2, valid_end_mjd=T0 + 1)
    assert active_set_at(db, T0 + 0.05).set_name == "a"
    assert active_set_at(db, T0 + 0.25).set_name == "b"


def test_tie_goes_to_most_recent(db, tmp_path):
    register_set(db, "older", make_tables(tmp_path, "older"), valid_start_mjd=T0)
    register_set(db, "newer", make_tables(tmp_path, "newer"), valid_start_mjd=T0)
    db.execute("UPDATE caltables SET created_at = '2000-01-01T00:00:00.000000Z' WHERE set_name = 'older'")
    assert active_set_at(db, T0 + HOUR).set_name == "newer"
    db.execute("UPDATE caltables SET created_at = '2100-01-01T00:00:00.000000Z' WHERE set_name = 'older'")
    assert active_set_at(db, T0 + HOUR).set_name == "older"


def test_nearest_active_set(db, tmp_path):
    assert nearest_active_set(db, T0) is None
    register_set(db, "a", make_tables(tmp_path, "a"), valid_start_mjd=T0, span_hours=12)
    register_set(db, "b", make_tables(tmp_path, "b"), valid_start_mjd=T0 + 1, span_hours=12)
    assert nearest_active_set(db, T0 + HOUR).set_name == "a"  # covered: same as active_set_at
    # gap: a ends at T0+0.5, b starts at T0+1; T0+0.6 is 2.4 h after a, 9.6 h before b
    assert nearest_active_set(db, T0 + 0.6).set_name == "a"
    assert nearest_active_set(db, T0 + 0.9).set_name == "b"
    assert nearest_active_set(db, T0 + 0.6, max_gap_hours=2.0) is None
    assert nearest_active_set(db, T0 + 0.6, max_gap_hours=3.0).set_name == "a"
    assert nearest_active_set(db, T0 - 0.1).set_name == "a"
    retire_set(db, "a", "x")
    assert nearest_active_set(db, T0 + 0.6).set_name == "b"


# --------------------------------------------------------------------------- management


def test_list_sets(db, tmp_path):
    register_set(db, "second", make_tables(tmp_path, "second"), valid_start_mjd=T0 + 1)
    register_set(db, "first", make_tables(tmp_path, "first"), valid_start_mjd=T0)
    retire_set(db, "second", "test")
    assert [s.set_name for s in list_sets(db)] == ["first", "second"]
    assert [s.set_name for s in list_sets(db, "all")] == ["first", "second"]
    assert [s.set_name for s in list_sets(db, "active")] == ["first"]
    assert [s.set_name for s in list_sets(db, "retired")] == ["second"]
    with pytest.raises(CalRegistryError, match="status"):
        list_sets(db, "bogus")


def test_retire_activate_notes(db, tmp_path):
    register_set(db, "r", make_tables(tmp_path, "r"), valid_start_mjd=T0, notes="solved by hand")
    s = retire_set(db, "r", "RFI in bandpass")
    assert s.status == "retired"
    assert s.notes.startswith("solved by hand; retired ") and s.notes.endswith(": RFI in bandpass")
    assert {r[0] for r in db.execute("SELECT status FROM caltables")} == {"retired"}
    s = activate_set(db, "r")
    assert s.status == "active" and "activated" in s.notes and "RFI in bandpass" in s.notes
    with pytest.raises(CalRegistryError, match="unknown calibration set 'nope'"):
        retire_set(db, "nope", "x")
    with pytest.raises(CalRegistryError, match="unknown"):
        activate_set(db, "nope")
    with pytest.raises(CalRegistryError, match="unknown"):
        get_set(db, "nope")


def test_update_quality_merges(db, tmp_path):
    entries = make_tables(tmp_path, "q")
    register_set(db, "q", entries, valid_start_mjd=T0)
    merged = update_quality(db, entries[2].path, {"snr_median": 55.5, "flagged_frac": 0.3})
    assert merged == {"snr_median": 55.5, "flagged_frac": 0.3}
    merged = update_quality(db, Path(entries[2].path), {"n_ant": 96})
    assert get_set(db, "q").entries[2].quality_metrics == {"snr_median": 55.5, "flagged_frac": 0.3, "n_ant": 96}
    with pytest.raises(CalRegistryError, match="not registered"):
        update_quality(db, tmp_path / "other", {"a": 1})
    with pytest.raises(CalRegistryError, match="dict"):
        update_quality(db, entries[2].path, [1, 2])


def test_verify_set_on_disk(db, tmp_path):
    entries = make_tables(tmp_path, "v")
    s = register_set(db, "v", entries, valid_start_mjd=T0)
    assert verify_set_on_disk(s) == []
    import shutil

    shutil.rmtree(entries[1].path)
    assert verify_set_on_disk(get_set(db, "v")) == [entries[1].path]


def test_savepoint_inside_caller_transaction(db, tmp_path):
    db.execute("BEGIN")
    register_set(db, "t", make_tables(tmp_path, "t"), valid_start_mjd=T0)
    with pytest.raises(CalRegistryError):
        register_set(db, "t", make_tables(tmp_path, "t2"), valid_start_mjd=T0)
    assert n_rows(db) == 3
    db.execute("ROLLBACK")
    assert n_rows(db) == 0


# --------------------------------------------------------------------------- CLI


@pytest.fixture()
def cli_env(tmp_path, monkeypatch):
    from dsa110_contimg.config import reset_settings_cache

    dbpath = tmp_path / "cli" / "cal.sqlite3"
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CAL_REGISTRY_DB", str(dbpath))
    monkeypatch.setenv("COLUMNS", "250")
    reset_settings_cache()
    yield dbpath
    reset_settings_cache()


def _run(*args):
    from dsa110_contimg.db.cal_registry_cli import caltables

    return CliRunner().invoke(caltables, list(args), catch_exceptions=False)


def test_cli_list_show_retire_activate(cli_env, tmp_path):
    conn = connect(cli_env)
    entries = make_tables(tmp_path, "cli")
    entries[0].quality_metrics = {"delay_rms_ns": 1.25, "bad_ants": ["pad7"]}
    register_set(conn, "3C286_2025-10-02", entries, valid_start_mjd=T0, cal_field="3C286", refant="pad103")
    register_set(conn, "old_set", make_tables(tmp_path, "old"), valid_start_mjd=T0 - 1)
    retire_set(conn, "old_set", "superseded")
    conn.close()

    res = _run("list")
    assert res.exit_code == 0, res.output
    assert "3C286_2025-10-02" in res.output and "old_set" not in res.output
    assert "K,B,G" in res.output and "pad103" in res.output
    assert "2025-10-02T06:00:00Z" in res.output and "2025-10-02T18:00:00Z" in res.output

    res = _run("list", "--status", "all")
    assert "3C286_2025-10-02" in res.output and "old_set" in res.output and "retired" in res.output
    res = _run("list", "--status", "retired")
    assert "3C286_2025-10-02" not in res.output and "old_set" in res.output

    res = _run("show", "3C286_2025-10-02")
    assert res.exit_code == 0, res.output
    for e in entries:
        assert e.path in res.output
    assert '"delay_rms_ns": 1.25' in res.output and '"pad7"' in res.output
    assert "pad103" in res.output and "MISSING" not in res.output

    res = _run("retire", "3C286_2025-10-02", "--reason", "phase jumps")
    assert res.exit_code == 0 and "retired" in res.output
    res = _run("list")
    assert "no active calibration sets" in res.output
    res = _run("show", "3C286_2025-10-02")
    assert "phase jumps" in res.output and "retired" in res.output

    res = _run("activate", "3C286_2025-10-02")
    assert res.exit_code == 0
    assert "3C286_2025-10-02" in _run("list").output

    conn = connect(cli_env)
    assert get_set(conn, "3C286_2025-10-02").status == "active"
    conn.close()


def test_cli_errors(cli_env):
    res = _run("show", "nope")
    assert res.exit_code != 0 and "unknown calibration set 'nope'" in res.output
    res = _run("retire", "nope", "--reason", "x")
    assert res.exit_code != 0 and "unknown" in res.output
    res = _run("retire", "nope")
    assert res.exit_code != 0 and "--reason" in res.output
    res = _run("activate", "nope")
    assert res.exit_code != 0
    res = _run("list", "--status", "bogus")
    assert res.exit_code != 0


def test_cli_show_flags_missing_tables(cli_env, tmp_path):
    import shutil

    conn = connect(cli_env)
    entries = make_tables(tmp_path, "gone")
    register_set(conn, "gone", entries, valid_start_mjd=T0)
    conn.close()
    shutil.rmtree(entries[0].path)
    res = _run("show", "gone")
    assert res.exit_code == 0 and "MISSING" in res.output


def test_cli_not_a_database(cli_env):
    cli_env.parent.mkdir(parents=True, exist_ok=True)
    cli_env.write_text("this is not sqlite " * 100)
    res = _run("list")
    assert res.exit_code != 0 and "calibration registry" in res.output


def test_cli_module_imports_are_cheap():
    import subprocess
    import sys

    code = ("import sys, dsa110_contimg.db.cal_registry_cli as m; "
            "bad = [x for x in ('rich', 'numpy', 'casatools', 'pyuvdata') if x in sys.modules]; "
            "print(bad); assert not bad")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
