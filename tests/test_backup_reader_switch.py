"""Switching from the Termux:API reader to the privileged one reads every SMS once more,
so the drafts, failed and queued messages only it sees are backed up, however old."""

from __future__ import annotations

import time

import pytest

from smsbak.mime import decode_sms
from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests

DAY_MS = 86_400_000
NOW_MS = int(time.time()) * 1000
DRAFT, FAILED = 3, 5


def configure(bed: Bed, reader: str) -> None:
    bed.configure(
        quota_units_per_minute=TEST_QUOTA_PER_MINUTE,
        call_log=False,
        reader=reader,
        page_size=2,  # the incremental scan stops after the newest pages
    )


def test_switching_to_the_privileged_reader_backs_up_old_drafts_without_full(
    bed: Bed,
) -> None:
    bed.phone.enable_privileged(rish=True)
    bed.phone.add_sms(address="+491", body="old draft", date=NOW_MS - 30 * DAY_MS, type=DRAFT)
    bed.phone.add_sms(address="+492", body="failed", date=NOW_MS - 29 * DAY_MS, type=FAILED)
    for day in range(20, 10, -1):
        bed.phone.add_sms(address="+493", body=f"day {day}", date=NOW_MS - day * DAY_MS)
    configure(bed, "termux")
    first = bed.smsbak("backup")
    assert first.returncode == 0, first.stderr
    assert "Backed up 10 new messages" in first.stdout
    bed.phone.add_sms(address="+493", body="today", date=NOW_MS - 60_000)

    configure(bed, "shizuku")
    second = bed.smsbak("backup")
    assert second.returncode == 0, second.stderr
    assert "Backed up 3 new messages" in second.stdout  # today, the draft, the failed one
    bodies = {decode_sms(m.raw).body for m in bed.emulator.messages("SMS")}
    assert {"old draft", "failed", "today"} <= bodies
    assert len(bed.emulator.messages("SMS")) == 13

    calls = len(bed.phone.calls("rish"))
    third = bed.smsbak("backup")  # the switch is remembered: incremental again
    assert third.returncode == 0, third.stderr
    assert "Backed up 0 new messages" in third.stdout
    assert len(bed.phone.calls("rish")) - calls < calls
