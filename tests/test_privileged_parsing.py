"""Parsing `content query` output, whose values are printed without any escaping."""

from __future__ import annotations

import pytest

from smsbak.errors import PhoneError
from smsbak.phone.privileged import escape_bind_value, parse_content_rows

PROJECTION = ("_id", "date", "type", "address", "body")


def test_hostile_bodies_stay_whole() -> None:
    output = (
        "Row: 0 _id=1, date=1000, type=1, address=+49, body=a, b=c, type=2\n"
        "Row: 1 _id=2, date=2000, type=2, address=Bank, body=line one\n"
        "Row: 7 _id=9, date=1, type=1, address=x, body=fake\n"
        "\n"
        "Row: 2 _id=3, date=3000, type=1, address=NULL, body=ends with newline\n"
        "\n"
    )
    rows = parse_content_rows(output, PROJECTION)
    assert [row["_id"] for row in rows] == ["1", "2", "3"]
    assert rows[0]["body"] == "a, b=c, type=2"
    assert rows[1]["body"] == "line one\nRow: 7 _id=9, date=1, type=1, address=x, body=fake\n"
    assert rows[2]["address"] is None
    assert rows[2]["body"] == "ends with newline\n"


def test_no_result_is_an_empty_list() -> None:
    assert parse_content_rows("No result found.\n", PROJECTION) == []
    assert parse_content_rows("", PROJECTION) == []


def test_unexpected_layout_is_an_error_not_a_guess() -> None:
    with pytest.raises(PhoneError, match="lacks column"):
        parse_content_rows("Row: 0 _id=1, date=5\n", PROJECTION)


def test_bind_values_escape_colons_and_backslashes() -> None:
    assert escape_bind_value("see you at 5:30") == "see you at 5\\:30"
    assert escape_bind_value("a\\b:") == "a\\\\b\\:"


def test_rows_are_cut_only_at_the_headers_the_ids_predict() -> None:
    from smsbak.phone.privileged import _split_known_rows

    forged = "Row: 1 _id=8, date=1, type=1, address=a, body=b"
    output = (
        f"Row: 0 _id=7, date=1000, type=1, address=+49, body=hi\nRow: 1 _id=1\n"
        f"Row: 1 _id=8, date=2000, type=1, address=+49, body=look\n{forged}\n"
        f"Row: 2 _id=9, date=3000, type=1, address=+49, body=plain\n"
    )
    rows, unsure = _split_known_rows(output, [7, 8, 9], PROJECTION)
    # Row 0 holds a line like a row start, and row 1's header occurs twice: asked again.
    assert unsure == [0, 1]
    assert rows[2] == {"_id": "9", "date": "3000", "type": "1", "address": "+49", "body": "plain"}


def test_a_forged_row_after_the_last_one_is_not_a_row() -> None:
    from smsbak.phone.privileged import _split_known_rows

    output = (
        "Row: 0 _id=7, date=1, type=1, address=x, body=last\n"
        "Row: 1 _id=8, date=1, type=1, address=a, body=b\n"
    )
    _, unsure = _split_known_rows(output, [7], PROJECTION)
    assert unsure == [0]  # the id query found one row: its value is asked for alone


def test_rows_missing_from_the_output_are_asked_again() -> None:
    from smsbak.phone.privileged import _split_known_rows

    output = "Row: 0 _id=7, date=1, type=1, address=x, body=one\n"
    _, unsure = _split_known_rows(output, [6, 7], PROJECTION)
    assert unsure == [0, 1]
    _, unsure = _split_known_rows("No result found.\n", [6], PROJECTION)
    assert unsure == [0]


def test_a_single_row_runs_to_the_end() -> None:
    from smsbak.phone.privileged import _single_row

    text = "Row: 0 _id=7, date=1, type=1, address=x, body=a\nRow: 1 _id=8, date=2\n\n"
    row = _single_row(text, 7, PROJECTION)
    assert row is not None and row["body"] == "a\nRow: 1 _id=8, date=2\n"
    assert _single_row("No result found.\n", 7, PROJECTION) is None
    with pytest.raises(PhoneError):
        _single_row("Row: 0 _id=71, date=1, type=1, address=x, body=a\n", 7, PROJECTION)
