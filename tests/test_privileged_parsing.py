"""Parsing `content query` output, whose values are printed without any escaping.

Every reader of rows goes through :func:`smsbak.phone.privileged.query_rows`
(SMS, MMS, the SMS and call-log writers); these tests pin its pieces, and one
drives it whole through the fake rish and content.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from smsbak.errors import PhoneError
from smsbak.phone.privileged import PrivilegedShell, escape_bind_value, query_rows
from tests.fakes.phone import FakePhone

PROJECTION = ("_id", "date", "type", "address", "body")


def test_hostile_bodies_stay_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    phone = FakePhone(tmp_path / "phone")
    phone.enable_privileged(rish=True)
    for key, value in phone.env().items():
        monkeypatch.setenv(key, value)
    bodies = [
        ("+49", "a, b=c, type=2"),
        ("Bank", "line one\nRow: 7 _id=9, date=1, type=1, address=x, body=fake\n"),
        ("NULL", "ends with newline\n"),
    ]
    with phone.batch():
        for i, (address, body) in enumerate(bodies):
            phone.add_sms(address=address, body=body, date=1_000_000 * (i + 1))
    rows = query_rows(
        PrivilegedShell("rish", timeout=30), "content://sms", PROJECTION, "reading", sort="date"
    )
    assert [row["_id"] for row in rows] == [str(row["_id"]) for row in phone.messages]
    assert rows[0]["body"] == "a, b=c, type=2"
    assert rows[1]["body"] == "line one\nRow: 7 _id=9, date=1, type=1, address=x, body=fake\n"
    assert rows[2]["address"] is None  # the text NULL prints like SQL NULL: see tell_null_from_text
    assert rows[2]["body"] == "ends with newline\n"


def test_no_result_is_an_empty_list() -> None:
    from smsbak.phone.privileged import _parse_ids, _split_known_rows

    assert _parse_ids("No result found.\n") == []
    assert _parse_ids("") == []
    assert _split_known_rows("No result found.\n", [], PROJECTION) == ([], [])


def test_unexpected_layout_is_an_error_not_a_guess() -> None:
    from smsbak.phone.privileged import _single_row

    with pytest.raises(PhoneError, match="lacks column"):
        _single_row("Row: 0 _id=1, date=5\n", 1, PROJECTION)


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
