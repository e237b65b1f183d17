"""A group MMS conversation is one Gmail thread: the received messages list the user's
own number as a recipient, the sent ones do not (through the fake phone and emulator)."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed
from tests.fakes.phone import INSERT_ADDRESS_TOKEN, PDU_FROM, PDU_TO

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests

ME, ANNA, BEN = "+4917099", "+4917011", "+4917022"
THREAD = 41
ACCOUNT = "user@example.com"


def setup(bed: Bed) -> None:
    bed.phone.enable_privileged(rish=True)
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, call_log=False)


def received_from_anna(bed: Bed, date_s: int) -> None:
    bed.phone.add_mms(
        date_s=date_s,
        box=1,
        thread_id=THREAD,
        addresses=[(ANNA, PDU_FROM), (ME, PDU_TO), (BEN, PDU_TO)],
        parts=[{"ct": "text/plain", "text": "dinner at 8?"}],
    )


def sent_to_both(bed: Bed, date_s: int) -> None:
    bed.phone.add_mms(
        date_s=date_s,
        box=2,
        thread_id=THREAD,
        addresses=[(INSERT_ADDRESS_TOKEN, PDU_FROM), (ANNA, PDU_TO), (BEN, PDU_TO)],
        parts=[{"ct": "text/plain", "text": "yes!"}],
    )


def emails(bed: Bed) -> dict[str, EmailMessage]:
    """By X-smsbak-msg-box: "1" received, "2" sent."""
    parsed = [
        email.message_from_bytes(m.raw, policy=email.policy.default)
        for m in bed.emulator.messages("SMS")
    ]
    return {str(m["X-smsbak-msg-box"]): m for m in parsed}  # type: ignore[misc]


def all_emails(bed: Bed) -> list[EmailMessage]:
    return [
        email.message_from_bytes(m.raw, policy=email.policy.default)  # type: ignore[misc]
        for m in bed.emulator.messages("SMS")
    ]


def addr_specs(message: EmailMessage, header: str) -> set[str]:
    return {a.addr_spec for a in message[header].addresses}


def test_received_and_sent_mms_of_one_group_share_one_thread(bed: Bed) -> None:
    setup(bed)
    received_from_anna(bed, 1_772_362_800)
    sent_to_both(bed, 1_772_362_900)
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    by_box = emails(bed)
    received, sent = by_box["1"], by_box["2"]
    assert received["References"] == sent["References"]
    assert received["Subject"] == sent["Subject"]
    assert addr_specs(received, "From") == {f"{ANNA}@unknown.email"}
    assert addr_specs(received, "To") == {ACCOUNT, f"{BEN}@unknown.email"}
    assert addr_specs(sent, "From") == {ACCOUNT}
    assert addr_specs(sent, "To") == {f"{ANNA}@unknown.email", f"{BEN}@unknown.email"}
    assert ME not in str(received["Subject"])


def test_the_own_number_found_once_still_threads_a_later_received_mms(bed: Bed) -> None:
    """An incremental run that reads only the newest MMS remembers the own number."""
    bed.phone.enable_privileged(rish=True)
    bed.configure(
        quota_units_per_minute=TEST_QUOTA_PER_MINUTE,
        call_log=False,
        page_size=2,
        lookback_hours=0.01,  # 36 s: the next run stops at the MMS below
    )
    received_from_anna(bed, 1_772_362_800)
    sent_to_both(bed, 1_772_362_900)
    for date_s in (1_772_362_950, 1_772_363_000):  # another thread, newer
        bed.phone.add_mms(
            date_s=date_s,
            box=2,
            addresses=[(INSERT_ADDRESS_TOKEN, PDU_FROM), ("+4917055", PDU_TO)],
            parts=[{"ct": "text/plain", "text": f"elsewhere {date_s}"}],
        )
    assert bed.smsbak("backup").returncode == 0
    (group,) = [m for m in all_emails(bed) if f"{ANNA}@" in str(m["To"])]
    first = group["References"]
    bed.phone.add_mms(
        date_s=1_772_363_000 + 200 * 86_400,  # far beyond the look-back window
        box=1,
        thread_id=THREAD,
        addresses=[(BEN, PDU_FROM), (ANNA, PDU_TO), (ME, PDU_TO)],
        parts=[{"ct": "text/plain", "text": "count me in"}],
    )
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert "MMS: 1 new" in result.stdout, result.stderr
    newest = max(
        (
            email.message_from_bytes(m.raw, policy=email.policy.default)
            for m in bed.emulator.messages("SMS")
        ),
        key=lambda m: int(str(m["X-smssync-date"])),
    )
    assert newest["References"] == first
    assert addr_specs(newest, "To") == {ACCOUNT, f"{ANNA}@unknown.email"}
