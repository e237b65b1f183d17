"""An MMS the reader cannot parse at scan time is reported, and read again by the next
runs until it can be backed up (through the fake phone and the Gmail emulator)."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed
from tests.fakes.phone import INSERT_ADDRESS_TOKEN, PDU_FROM, PDU_TO

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests

OLD_S = 1_772_362_800


def text_mms(bed: Bed, date_s: int, text: str) -> dict[str, object]:
    return bed.phone.add_mms(
        date_s=date_s,
        box=2,
        addresses=[(INSERT_ADDRESS_TOKEN, PDU_FROM), ("+4917011", PDU_TO)],
        parts=[{"ct": "text/plain", "text": text}],
    )


def test_an_mms_unreadable_on_a_later_page_is_retried_until_it_goes_up(bed: Bed) -> None:
    bed.phone.enable_privileged(rish=True)
    bed.configure(
        quota_units_per_minute=TEST_QUOTA_PER_MINUTE,
        call_log=False,
        page_size=2,
        lookback_hours=0.01,  # 36 s: an incremental run reads only the newest pages
    )
    broken = text_mms(bed, OLD_S, "the old one")
    for step in range(1, 5):
        text_mms(bed, OLD_S + 86_400 * step, f"newer {step}")
    bad_id = broken["_id"]
    # A date that is no number: unreadable (a box outside 1 and 2 would be hidden by the
    # restricted view shell and root read through).
    next(r for r in bed.phone.mms_rows if r["_id"] == bad_id)["date"] = "soon"
    bed.phone.save()

    first = bed.smsbak("backup")
    assert first.returncode == 0, first.stderr
    assert f"MMS _id {bad_id} could not be read" in first.stdout
    # reported once, by id, not counted again as unusable rows
    assert "rows from" not in first.stdout + first.stderr
    assert len(bed.emulator.messages("SMS")) == 4

    second = bed.smsbak("backup")
    assert second.returncode == 0, second.stderr
    assert f"MMS _id {bad_id} could not be read" in second.stdout  # read again
    assert len(bed.emulator.messages("SMS")) == 4

    next(r for r in bed.phone.mms_rows if r["_id"] == bad_id)["date"] = OLD_S
    bed.phone.save()
    # Without a usable date the row could not hold the watermark back: a full scan
    # finds it once it is readable.
    third = bed.smsbak("backup", "--full")
    assert third.returncode == 0, third.stderr
    assert "MMS: 1 new" in third.stdout
    assert "could not be read" not in third.stdout
    assert len(bed.emulator.messages("SMS")) == 5
    quiet = bed.smsbak("backup")
    assert quiet.returncode == 0, quiet.stderr
    assert len(bed.emulator.messages("SMS")) == 5


def test_rows_the_privileged_reader_cannot_use_are_reported_as_read_through_it(
    bed: Bed,
) -> None:
    bed.phone.enable_privileged(rish=True)
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, call_log=False)
    bed.phone.add_sms(address="+491", body="fine", date=1_772_362_000_000)
    bed.phone.add_sms(address="+491", body="odd box", date=1_772_362_001_000, type=9)
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    said = result.stdout + result.stderr
    assert "1 rows from Shizuku (rish) were not messages" in said
    assert "Termux:API" not in said
