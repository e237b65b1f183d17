"""Reading SMS through Shizuku or root: every box, exact milliseconds, SIM; same identity."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from smsbak.errors import ExitCode
from smsbak.mime import decode_sms
from smsbak.model import Box
from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed
from tests.format_readers import sms_only
from tests.test_backup_e2e import BASE

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests

HOSTILE = [
    "commas, and = signs, type=2, body=fake",
    "two\nlines\nRow: 7 _id=1, thread_id=1, date=5, type=1, read=1, sub_id=1, address=x, body=y",
    "ends with a newline\n",
    "NULL",
]


def fill(bed: Bed) -> None:
    with bed.phone.batch():
        for i, body in enumerate(HOSTILE):
            bed.phone.add_sms(address=f"+4910{i}", body=body, date=BASE + i * 1000 + 789)
        bed.phone.add_sms(address="+4911", body="sent one", date=BASE + 10_000 + 1, type=2)
        bed.phone.add_sms(address="+4912", body="a draft", date=BASE + 20_000 + 2, type=3)
        bed.phone.add_sms(address="+4913", body="failed", date=BASE + 30_000 + 3, type=5)


def configure(bed: Bed, reader: str) -> None:
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, reader=reader, call_log=False)


def test_the_privileged_reader_sees_every_box_with_exact_times(bed: Bed) -> None:
    fill(bed)
    bed.phone.enable_privileged(rish=True)
    configure(bed, "auto")
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    stored = {decode_sms(m.raw).body: decode_sms(m.raw) for m in bed.emulator.messages("SMS")}
    assert set(stored) == {*HOSTILE, "sent one", "a draft", "failed"}
    assert stored["a draft"].box is Box.DRAFT
    assert stored["commas, and = signs, type=2, body=fake"].date_ms == BASE + 789
    assert bed.sms_list_calls() == 0  # SMS came through content, not termux-sms-list


def test_switching_readers_uploads_nothing_twice(bed: Bed) -> None:
    fill(bed)
    configure(bed, "termux")
    assert bed.smsbak("backup").returncode == 0
    first = bed.emulator.insert_calls
    assert first == len(HOSTILE) + 1  # Termux:API sees received and sent only
    bed.phone.enable_privileged(rish=True)
    configure(bed, "shizuku")
    assert bed.smsbak("backup", "--full").returncode == 0
    assert bed.emulator.insert_calls == first + 2  # only the draft and the failed one
    configure(bed, "termux")
    assert bed.smsbak("backup", "--full").returncode == 0
    assert bed.emulator.insert_calls == first + 2
    assert len(bed.emulator.messages("SMS")) == len(HOSTILE) + 3


def test_exact_milliseconds_and_the_sim_go_into_the_headers(bed: Bed) -> None:
    bed.phone.add_sms(address="+4914", body="dual sim", date=BASE + 456)
    bed.phone.reload()
    row = bed.phone.data["messages"][0]
    row.update(sub_id=2, date_sent=BASE - 2000, status=0, service_center="+491710760000")
    bed.phone.save()
    bed.phone.enable_privileged(su=True)
    configure(bed, "root")
    assert bed.smsbak("backup").returncode == 0
    (stored,) = bed.emulator.messages("SMS")
    message = email.message_from_bytes(stored.raw, policy=email.policy.default)
    assert message["X-smssync-date"] == str(BASE + 456)
    assert message["X-smsbak-sub-id"] == "2"
    assert message["X-smsbak-date-sent"] == str(BASE - 2000)
    assert message["X-smssync-status"] == "0"
    assert message["X-smssync-service_center"] == "+491710760000"


@pytest.mark.parametrize(("reader", "tool"), [("root", "su"), ("shizuku", "rish")])
def test_a_forced_reader_that_does_not_answer_is_named(bed: Bed, reader: str, tool: str) -> None:
    bed.phone.add_sms(address="+4915", body="x", date=BASE)
    configure(bed, reader)
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.PHONE
    assert f"{tool} does not answer" in result.stderr
    assert bed.emulator.messages("SMS") == []


def test_the_sim_comes_back_where_the_target_keeps_it(bed: Bed, tmp_path: Path) -> None:
    from smsbak.formats.sbr import read_messages_xml
    from tests.test_restore_e2e import factory_reset

    bed.phone.add_sms(address="+4916", body="sim two", date=BASE)
    bed.phone.reload()
    bed.phone.data["messages"][0]["sub_id"] = 2
    bed.phone.save()
    bed.phone.enable_privileged(rish=True)
    configure(bed, "auto")
    assert bed.smsbak("backup").returncode == 0
    factory_reset(bed)
    assert bed.smsbak("restore", "--to", "phone").returncode == 0
    assert [row.get("sub_id") for row in bed.phone.messages] == [2]
    bed.phone.clear_messages()  # a file gets what the phone lacks
    path = tmp_path / "sim.xml"
    assert bed.smsbak("restore", "--to", f"xml:{path}").returncode == 0
    assert [s.sub_id for s in sms_only(read_messages_xml(path))] == [2]
