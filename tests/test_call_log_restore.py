"""The call log comes back: into the phone (rish/su), to both call-log files, from
smsbak's and SMS Backup+'s call emails."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from smsbak.formats.sbr import read_calls_xml
from smsbak.formats.smsie import read_calls_json
from smsbak.model import Call, CallType
from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed
from tests.fakes import sbp_corpus
from tests.test_backup_e2e import BASE
from tests.test_restore_e2e import restore_login

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests

ORIGINAL = [
    Call("+4917012345", BASE, 267, CallType.INCOMING, sim_id="1"),
    Call("+4917012345", BASE + 60_000, 3725, CallType.OUTGOING, sim_id="2"),
    Call("+4930123", BASE + 120_000, 0, CallType.MISSED),
    Call("", BASE + 180_000, 0, CallType.REJECTED, sim_id="8901410321111851072"),
    Call("+44 20: 7946", BASE + 240_000, 12, CallType.INCOMING, sim_id="1"),
]


@pytest.fixture
def backed_up(bed: Bed) -> Bed:
    with bed.phone.batch():
        for call in ORIGINAL:
            bed.phone.add_call(
                number=call.number,
                date=call.date_ms + 123,
                type=call.type,
                duration=call.duration_s,
                sim_id=call.sim_id,
            )
    assert bed.smsbak("backup").returncode == 0
    assert len(bed.emulator.messages("Call log")) == len(ORIGINAL)
    bed.phone.set(calls=[])  # factory reset
    shutil.rmtree(bed.home)
    bed.home.mkdir()
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE)
    restore_login(bed)
    return bed


def phone_calls(bed: Bed) -> set[Call]:
    return {
        Call(row["number"] or "", int(row["date"]) // 1000 * 1000, int(row["duration"]),
             CallType(int(row["type"])))
        for row in bed.phone.call_rows
    }  # fmt: skip


def test_round_trip_through_the_phones_call_log(backed_up: Bed) -> None:
    bed = backed_up
    bed.phone.enable_privileged(rish=True)
    result = bed.smsbak("restore", "--calls", "--to", "phone")
    assert result.returncode == 0, result.stderr
    assert "5 calls restored" in result.stdout
    # The phone gets no SIM: a lone phone-account id, without the component name
    # Termux:API does not give, names no account there.
    assert phone_calls(bed) == {replace(call, sim_id=None) for call in ORIGINAL}
    again = bed.smsbak("restore", "--calls", "--to", "phone")
    assert again.returncode == 0
    assert len(bed.phone.call_rows) == len(ORIGINAL)
    inserts = bed.emulator.insert_calls
    assert bed.smsbak("backup").returncode == 0
    assert bed.emulator.insert_calls == inserts, "restored calls were uploaded again"


@pytest.mark.parametrize("kind", ["xml", "smsie"])
def test_round_trip_through_the_call_log_files(backed_up: Bed, tmp_path: Path, kind: str) -> None:
    bed = backed_up
    path = tmp_path / ("calls.xml" if kind == "xml" else "calls.json")
    result = bed.smsbak("restore", "--calls", "--to", f"{kind}:{path}")
    assert result.returncode == 0, result.stderr
    reader = read_calls_xml if kind == "xml" else read_calls_json
    assert set(reader(path)) == set(ORIGINAL)


def test_a_wrong_suffix_for_calls_is_a_usage_error(backed_up: Bed, tmp_path: Path) -> None:
    result = backed_up.smsbak("restore", "--calls", "--to", f"smsie:{tmp_path / 'calls.zip'}")
    assert result.returncode == 2
    assert ".json" in result.stderr


def test_sms_backup_plus_call_log_emails_are_restored(bed: Bed, tmp_path: Path) -> None:
    restore_login(bed)
    for index, number in enumerate(("+4912", "+4913")):
        raw = sbp_corpus.call_email(1_500_000_000_000 + index * 1000, number)
        bed.emulator.add_message(raw, ["Call log"])
    bed.emulator.add_message(sbp_corpus.plain_email(), ["Call log"])
    path = tmp_path / "calls.xml"
    result = bed.smsbak("restore", "--calls", "--to", f"xml:{path}")
    assert result.returncode == 0, result.stderr
    assert set(read_calls_xml(path)) == {
        Call("+4912", 1_500_000_000_000, 67, CallType.INCOMING),
        Call("+4913", 1_500_000_001_000, 67, CallType.INCOMING),
    }
    assert "skipped: no datatype header" in result.stdout
