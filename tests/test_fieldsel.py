"""CASA-style field selection against FIELD::NAME."""

from __future__ import annotations

import numpy as np
import pytest

from dsa110_contimg.calibration.fieldsel import FieldSelectionError, select_fields, to_casa_field_string

# a DSA-110 drift-scan MS: one field per integration, plus a named calibrator
NAMES = [f"meridian_icrs_t{i}" for i in range(24)] + ["3C286", "0834+555"]


@pytest.mark.parametrize("spec", ["", "   ", "*", " * ", None])
def test_all_fields(spec):
    assert select_fields(spec, NAMES) == list(range(len(NAMES)))


def test_all_of_no_fields():
    assert select_fields("", []) == []


def test_single_ids_and_order_and_duplicates():
    assert select_fields("7", NAMES) == [7]
    assert select_fields("0", NAMES) == [0]
    assert select_fields("12,3,3,12,0", NAMES) == [0, 3, 12]
    assert select_fields("007", NAMES) == [7]


def test_ranges():
    assert select_fields("0~3", NAMES) == [0, 1, 2, 3]
    assert select_fields("5~5", NAMES) == [5]
    assert select_fields("23~25", NAMES) == [23, 24, 25]
    assert select_fields(" 2 ~ 4 ", NAMES) == [2, 3, 4]


def test_mixed_list_with_whitespace():
    assert select_fields(" 0~2 , 10, 3C286 ,meridian_icrs_t2", NAMES) == [0, 1, 2, 10, 24]


def test_globs():
    assert select_fields("meridian_icrs_t*", NAMES) == list(range(24))
    assert select_fields("meridian_icrs_t1?", NAMES) == list(range(10, 20))
    assert select_fields("meridian_icrs_t[0-2]", NAMES) == [0, 1, 2]
    assert select_fields("3C*", NAMES) == [24]
    assert select_fields("*+555", NAMES) == [25]


def test_exact_names_with_digits():
    assert select_fields("meridian_icrs_t5", NAMES) == [5]
    assert select_fields("3C286", NAMES) == [24]
    assert select_fields("0834+555", NAMES) == [25]


def test_glob_is_case_sensitive():
    with pytest.raises(FieldSelectionError):
        select_fields("3c286", NAMES)


def test_exact_name_with_glob_metacharacters():
    names = ["a[1]", "b"]
    assert select_fields("a[1]", names) == [0]


def test_repeated_names_all_selected():
    assert select_fields("cal", ["cal", "tgt", "cal"]) == [0, 2]


def test_numpy_names():
    assert select_fields("b*", np.array(["a1", "b1", "b2"])) == [1, 2]


def test_id_out_of_range():
    with pytest.raises(FieldSelectionError, match=r"field id 26 .*out of range.*0~25"):
        select_fields("26", NAMES)
    with pytest.raises(FieldSelectionError, match="out of range"):
        select_fields("0", [])


def test_range_errors():
    with pytest.raises(FieldSelectionError, match=r"'5~2'.*start 5 is greater than end 2"):
        select_fields("5~2", NAMES)
    with pytest.raises(FieldSelectionError, match=r"field id 30 in term '20~30' is out of range"):
        select_fields("20~30", NAMES)


def test_no_match_names_term_and_lists_names():
    with pytest.raises(FieldSelectionError) as info:
        select_fields("0, nosuchfield", ["a", "b", "c"])
    msg = str(info.value)
    assert "'nosuchfield'" in msg and "a, b, c" in msg and "more" not in msg


def test_no_match_truncates_long_name_list():
    with pytest.raises(FieldSelectionError) as info:
        select_fields("J1331*", NAMES)
    msg = str(info.value)
    assert "'J1331*'" in msg
    assert "meridian_icrs_t0" in msg and "meridian_icrs_t11" in msg
    assert "meridian_icrs_t12," not in msg and "meridian_icrs_t23" not in msg
    assert "(14 more)" in msg


@pytest.mark.parametrize("spec", ["0,,1", "0,", ",0"])
def test_empty_term(spec):
    with pytest.raises(FieldSelectionError, match="empty term"):
        select_fields(spec, NAMES)


def test_error_is_value_error():
    assert issubclass(FieldSelectionError, ValueError)


@pytest.mark.parametrize("ids, expected", [
    ([0, 1, 2, 3, 7], "0~3,7"),
    ([7, 3, 1, 2, 0, 3], "0~3,7"),
    ([5], "5"),
    ([1, 2], "1~2"),
    ([0, 2, 4], "0,2,4"),
    ([0, 1, 5, 6, 7, 9], "0~1,5~7,9"),
    (np.array([3, 4, 5]), "3~5"),
])
def test_to_casa_field_string(ids, expected):
    assert to_casa_field_string(ids) == expected


def test_to_casa_field_string_errors():
    with pytest.raises(FieldSelectionError, match="empty"):
        to_casa_field_string([])
    with pytest.raises(FieldSelectionError, match="negative"):
        to_casa_field_string([-1, 0])
    with pytest.raises(FieldSelectionError, match="integers"):
        to_casa_field_string([1.5])


def test_round_trip():
    for spec in ("0~3,7", "meridian_icrs_t1*,25", "3C286"):
        ids = select_fields(spec, NAMES)
        assert select_fields(to_casa_field_string(ids), NAMES) == ids
