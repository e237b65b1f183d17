"""The call log goes to Gmail under "Call log", in SMS Backup+'s call format, incrementally."""

from __future__ import annotations

import email
import email.policy

import pytest

from smsbak.errors import ExitCode
from smsbak.mime import decode_call
from smsbak.model import Call, CallType
from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed
from tests.test_backup_e2e import BASE

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests


def calls(bed: Bed) -> dict[Call, email.message.EmailMessage]:
    found = {}
    for stored in bed.emulator.messages("Call log"):
        message = email.message_from_bytes(stored.raw, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        found[decode_call(stored.raw)] = message
    return found


def some_calls(bed: Bed) -> None:
    with bed.phone.batch():
        bed.phone.add_call(number="+4917012345", date=BASE + 437, type=1, duration=267, name="Anna")
        bed.phone.add_call(
            number="+4917012345", date=BASE + 60_000, type=2, duration=3725, sim_id="2"
        )
        bed.phone.add_call(number="+4930123", date=BASE + 120_000, type=3, duration=0, sim_id=None)
        bed.phone.add_call(number="", date=BASE + 180_000, type=5, duration=0)


def test_calls_are_backed_up_once_in_the_sms_backup_plus_format(bed: Bed) -> None:
    some_calls(bed)
    bed.phone.add_sms(address="+491", body="an sms too", date=BASE)
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert "Call log: 4 new calls" in result.stdout
    found = calls(bed)
    assert set(found) == {
        Call("+4917012345", BASE, 267, CallType.INCOMING, sim_id="1"),
        Call("+4917012345", BASE + 60_000, 3725, CallType.OUTGOING, sim_id="2"),
        Call("+4930123", BASE + 120_000, 0, CallType.MISSED),  # the old app gives no sim_id
        Call("", BASE + 180_000, 0, CallType.REJECTED, sim_id="1"),
    }
    by_type = {call.type: message for call, message in found.items()}
    incoming = by_type[CallType.INCOMING]
    assert incoming["X-smssync-datatype"] == "CALLLOG"
    assert incoming["X-smssync-duration"] == "267"
    assert incoming["Subject"] == "Call with Anna"
    assert incoming["From"].addresses[0].addr_spec == "+4917012345@unknown.email"
    assert incoming.get_content() == "267s (00:04:27)\n+4917012345 (incoming call)"
    outgoing = by_type[CallType.OUTGOING]
    assert outgoing["From"].addresses[0].addr_spec == "user@example.com"
    assert outgoing.get_content().startswith("3725s (01:02:05)\n")
    missed = by_type[CallType.MISSED]
    assert missed.get_content() == "+4930123 (missed call)"  # no duration line
    assert missed["Subject"] == "Call with +4930123"
    assert by_type[CallType.REJECTED]["Subject"] == "Call with Unknown"
    assert len(bed.emulator.messages("SMS")) == 1


def test_calls_are_incremental(bed: Bed) -> None:
    some_calls(bed)
    assert bed.smsbak("backup").returncode == 0
    inserts = bed.emulator.insert_calls
    again = bed.smsbak("backup")
    assert again.returncode == 0
    assert bed.emulator.insert_calls == inserts
    assert len(bed.phone.calls("termux-call-log")) == 2  # one page per run
    bed.phone.add_call(number="+4955", date=BASE + 3_600_000, type=1, duration=5)
    assert bed.smsbak("backup").returncode == 0
    assert bed.emulator.insert_calls == inserts + 1
    assert len(calls(bed)) == 5


def test_the_call_log_can_be_switched_off(bed: Bed) -> None:
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, call_log=False)
    some_calls(bed)
    assert bed.smsbak("backup").returncode == 0
    assert bed.phone.calls("termux-call-log") == []
    assert "Call log" not in [label["name"] for label in bed.emulator.labels()]


def test_an_old_termux_api_on_android_11_is_named_not_taken_for_no_calls(bed: Bed) -> None:
    bed.phone.set(generation="old")
    some_calls(bed)
    bed.phone.add_sms(address="+491", body="still backed up", date=BASE)
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.PHONE
    assert "termux-call-log printed nothing" in result.stderr
    assert "call_log = false" in result.stderr
    assert len(bed.emulator.messages("SMS")) == 1
    assert bed.emulator.messages("Call log") == []


def test_a_missing_call_log_permission_is_named(bed: Bed) -> None:
    bed.phone.set_mode(
        "termux-call-log", "permission", missing_permissions=["android.permission.READ_CALL_LOG"]
    )
    some_calls(bed)
    bed.phone.add_sms(address="+491", body="an sms before the call log", date=BASE)
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.PHONE
    assert "Call logs" in result.stderr
    assert "android.permission.READ_CALL_LOG" in result.stderr
    # The SMS went up before the call log failed, and the person is told so.
    assert len(bed.emulator.messages()) == 1
    assert "Backed up 1 new message" in result.stdout


def test_call_log_rows_smsbak_cannot_read_are_reported_not_dropped_silently(bed: Bed) -> None:
    some_calls(bed)
    bed.phone.add_call(number="+4930999", date=BASE + 300_000, type=42, duration=1)
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert "Call log: 4 new calls" in result.stdout
    assert "Warning (call log): 1 rows from" in result.stderr
