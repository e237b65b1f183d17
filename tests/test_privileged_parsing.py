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
