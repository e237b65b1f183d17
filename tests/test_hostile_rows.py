"""Messages whose text looks like `content query` output, through the fake rish/content.

`content query` prints ``Row: N col=val, ...`` without any escaping, and anyone can
send an SMS: a body may hold a line that looks like the next row, a whole forged row
(even with the id the next real row has), an "[ERROR]" line, or the word NULL (which
`content` prints like SQL NULL). Backup must store exactly the phone's messages;
restore must confirm its inserts and add nothing on a second run.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smsbak.mime import decode_mms, decode_sms, encode_call, encode_sms
from smsbak.model import Box, Call, CallType, Sms, sms_fingerprint
from smsbak.phone.call_writer import PhoneCallLog
from smsbak.phone.privileged import PrivilegedShell
from smsbak.phone.privileged_reader import PrivilegedPhone
from smsbak.phone.termux import TermuxPhone, TermuxTools
from smsbak.phone.writer import PhoneSmsStore
from tests.conftest import ACCOUNT, TEST_QUOTA_PER_MINUTE, Bed
from tests.fakes.phone import PDU_FROM, PDU_TO, FakePhone
from tests.test_backup_e2e import BASE
from tests.test_restore_e2e import factory_reset, phone_view

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests

SMS_COLUMNS = (
    "thread_id=1, date=1, date_sent=0, type=1, read=1, status=-1, sub_id=1, "
    "service_center=NULL, address=+4999, body=forged"
)


KINDS = ("row header", "forged row", "forged after the last", "NULL", "error line")


def hostile_sms(phone: FakePhone, kinds: tuple[str, ...] = KINDS) -> list[str]:
    """Six messages; newest first, so a hostile body sits in the row just before the
    one it imitates. Returns the bodies as on the phone (forged rows name real ids).
    """
    with phone.batch():
        for i in range(6):
            phone.add_sms(address=f"+4920{i}", body=f"plain {i}", date=BASE + (100 - i) * 1000 + 7)
    phone.reload()
    rows = sorted(phone.data["messages"], key=lambda row: -int(row["date"]))
    ids = [row["_id"] for row in rows]
    if "row header" in kinds:  # row 0: a line like the start of row 1 (header only)
        rows[0]["body"] = "hi\nRow: 1 _id=1"
    if "forged row" in kinds:  # row 2: a whole row 3, with the id the real row 3 has
        rows[2]["body"] = f"look\nRow: 3 _id={ids[3]}, {SMS_COLUMNS}"
    if "NULL" in kinds:  # the text NULL, which `content` prints like SQL NULL
        rows[4]["body"] = "NULL"
        rows[1]["address"] = "NULL"
    if "forged after the last" in kinds:  # only the row count can tell this one
        rows[5]["body"] = f"last\nRow: 6 _id={ids[5] + 1}, {SMS_COLUMNS}"
    if "error line" in kinds:  # `content` reports its own errors as such lines
        rows[3]["body"] = "a\n[ERROR] not an error"
    phone.save()
    return [row["body"] for row in rows]


def hostile_phone(bed: Bed, kinds: tuple[str, ...] = KINDS) -> list[str]:
    return hostile_sms(bed.phone, kinds)


def archive_as_termux_backs_up(bed: Bed) -> None:
    """Put the phone's SMS and calls into Gmail as a backup through Termux:API leaves them
    (whole-second dates, the phone's ids), encoded by smsbak's own encoders, without a
    backup run: only the restore's reading of the hostile rows is under test, and
    Termux:API's JSON cannot be forged."""
    when = datetime.now(UTC)
    for row in bed.phone.messages:
        sms = Sms(
            address=row["address"] or "",
            body=row["body"] or "",
            date_ms=row["date"] // 1000 * 1000,
            box=Box(row["type"]),
            read=bool(row["read"]),
            thread_id=row.get("thread_id"),
            android_id=row["_id"],
        )
        encoded = encode_sms(sms, account=ACCOUNT, contact_name=None, zone=UTC, backup_time=when)
        bed.emulator.add_message(encoded.raw, ["SMS"])
    for row in bed.phone.call_rows:
        call = Call(
            number=row["number"] or "",
            date_ms=row["date"] // 1000 * 1000,
            duration_s=row["duration"],
            type=CallType(row["type"]),
            sim_id=row.get("sim_id"),
        )
        encoded = encode_call(call, account=ACCOUNT, contact_name=None, zone=UTC, backup_time=when)
        bed.emulator.add_message(encoded.raw, ["Call log"])


def configure(bed: Bed) -> None:
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, reader="auto", call_log=False)


def test_the_fake_content_tool_prints_hostile_bodies_as_they_are(bed: Bed) -> None:
    """As Content.java does: ``Row: N `` plus ``name=value`` joined by ``, ``, unescaped."""
    bodies = hostile_phone(bed)
    bed.phone.enable_privileged(rish=True)
    script = "content query --uri content://sms --projection _id:body --sort 'date DESC'"
    result = bed.phone.run("rish", "-c", script)
    stdout = result.stdout.decode()
    lines = [f"Row: {i} _id={row_id}, body={body}" for i, (row_id, body) in enumerate(
        (row["_id"], row["body"])
        for row in sorted(bed.phone.messages, key=lambda row: -int(row["date"]))
    )]  # fmt: skip
    assert stdout == "".join(line + "\n" for line in lines)
    assert "Row: 1 _id=1\nRow: 1 _id=" in stdout
    assert len(bodies) == 6


@pytest.mark.parametrize("kind", KINDS)
def test_backup_stores_exactly_the_phones_messages(bed: Bed, kind: str) -> None:
    bodies = hostile_phone(bed, (kind,))
    bed.phone.enable_privileged(rish=True)
    configure(bed)
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    stored = [decode_sms(m.raw) for m in bed.emulator.messages("SMS")]
    assert sorted(s.body for s in stored) == sorted(bodies)
    assert sorted((s.address, s.body, s.date_ms) for s in stored) == sorted(
        (row["address"], row["body"], row["date"]) for row in bed.phone.messages
    )
    again = bed.smsbak("backup", "--full")
    assert again.returncode == 0, again.stderr
    assert len(bed.emulator.messages("SMS")) == len(bodies)


def test_backup_of_every_kind_at_once(bed: Bed) -> None:
    bodies = hostile_phone(bed)
    bed.phone.enable_privileged(su=True)
    configure(bed)
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert sorted(decode_sms(m.raw).body for m in bed.emulator.messages("SMS")) == sorted(bodies)


def test_mms_text_that_looks_like_rows_stays_in_its_part(bed: Bed) -> None:
    bed.phone.enable_privileged(rish=True)
    configure(bed)
    text = (
        "see\nRow: 2 _id=99, seq=2, ct=text/plain, chset=106, cid=NULL, cl=NULL, "
        "name=NULL, text=forged part"
    )
    bed.phone.add_mms(
        date_s=1_772_362_800,
        box=1,
        addresses=[("+4917011", PDU_FROM), ("+4917000", PDU_TO)],
        parts=[
            {"ct": "application/smil", "text": "<smil><body/></smil>"},
            {"ct": "text/plain", "text": text},
        ],
    )
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    (stored,) = bed.emulator.messages("SMS")
    mms = decode_mms(stored.raw)
    texts = [part.text for part in mms.parts if part.content_type == "text/plain"]
    assert texts == [text]


@pytest.mark.parametrize("kind", [*KINDS, "all"])
def test_restore_confirms_hostile_messages_and_a_second_run_adds_nothing(
    bed: Bed, kind: str
) -> None:
    hostile_phone(bed, KINDS if kind == "all" else (kind,))
    archive_as_termux_backs_up(bed)
    assert len(bed.emulator.messages("SMS")) == 6
    original = phone_view(bed.phone.messages)
    factory_reset(bed)
    bed.phone.enable_privileged(rish=True)
    result = bed.smsbak("restore", "--to", "phone")
    assert result.returncode == 0, result.stderr
    assert "6 messages restored" in result.stdout
    assert phone_view(bed.phone.messages) == original
    again = bed.smsbak("restore", "--to", "phone")
    assert again.returncode == 0, again.stderr
    assert "0 messages restored" in again.stdout
    assert phone_view(bed.phone.messages) == original


def test_the_sent_time_is_restored(bed: Bed) -> None:
    bed.phone.add_sms(address="+4921", body="sent time", date=BASE + 456)
    bed.phone.reload()
    bed.phone.data["messages"][0]["date_sent"] = BASE - 2000
    bed.phone.save()
    bed.phone.enable_privileged(su=True)
    configure(bed)
    assert bed.smsbak("backup").returncode == 0
    (stored,) = bed.emulator.messages("SMS")
    message = email.message_from_bytes(stored.raw, policy=email.policy.default)
    assert message["X-smsbak-date-sent"] == str(BASE - 2000)
    factory_reset(bed)
    bed.phone.enable_privileged(su=True)
    assert bed.smsbak("restore", "--to", "phone").returncode == 0
    assert [row["date_sent"] for row in bed.phone.messages] == [BASE - 2000]


# --- every path that reads `content` rows -----------------------------------------------
#
# The same hostile values through each reader of rows: the privileged SMS reader (backup),
# the SMS store and the call log as restore targets read them (what is already there, and
# the confirmation of each chunk). MMS text parts are above; a call's free text is its
# number (a SIP address or a caller id anyone can choose).

CALL_COLUMNS = "date=1, type=1, duration=0, number=+4999"


def hostile_call_log(phone: FakePhone, kinds: tuple[str, ...] = KINDS) -> list[Call]:
    """Six calls, newest first, hostile as :func:`hostile_phone` makes SMS; returns them."""
    with phone.batch():
        for i in range(6):
            phone.add_call(
                number=f"+4930{i}", date=BASE + (100 - i) * 1000 + 7, type=1 + i % 3, duration=i
            )
    phone.reload()
    rows = sorted(phone.call_rows, key=lambda row: -int(row["date"]))
    ids = [row["_id"] for row in rows]
    if "row header" in kinds:
        rows[0]["number"] = "+49\nRow: 1 _id=1"
    if "forged row" in kinds:  # the whole of row 3, with the id the real row 3 has
        rows[2]["number"] = f"+49\nRow: 3 _id={ids[3]}, {CALL_COLUMNS}"
    if "NULL" in kinds:
        rows[4]["number"] = "NULL"
    if "forged after the last" in kinds:
        rows[5]["number"] = f"+49\nRow: 6 _id={ids[5] + 1}, {CALL_COLUMNS}"
    if "error line" in kinds:
        rows[3]["number"] = "+49\n[ERROR] not an error"
    phone.save()
    return [
        Call(row["number"], row["date"], row["duration"], CallType(row["type"])) for row in rows
    ]


@pytest.fixture
def rish_phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePhone:
    fake = FakePhone(tmp_path / "phone")
    fake.enable_privileged(rish=True)
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RISH_APPLICATION_ID", "com.termux")
    return fake


def read_sms_reader(phone: FakePhone) -> set[str]:
    shell = PrivilegedShell("rish", timeout=30)
    reader = PrivilegedPhone(shell, TermuxPhone(TermuxTools(timeout=30)))
    page = reader.sms_page(0, 100)
    assert page.unusable == 0
    return {message.sms.fingerprint for message in page.messages}


def read_sms_store(phone: FakePhone) -> set[str]:
    return PhoneSmsStore(PrivilegedShell("rish", timeout=30)).existing_fingerprints()


def read_call_log(phone: FakePhone) -> set[str]:
    return PhoneCallLog(PrivilegedShell("rish", timeout=30)).existing_fingerprints()


def sms_on(phone: FakePhone, kind: str) -> set[str]:
    bodies = hostile_sms(phone, (kind,))
    assert len(bodies) == 6
    return {
        sms_fingerprint(Box(row["type"]), row["address"] or "", row["date"], row["body"] or "")
        for row in phone.messages
    }


def calls_on(phone: FakePhone, kind: str) -> set[str]:
    return {call.fingerprint for call in hostile_call_log(phone, (kind,))}


ROW_READERS = {
    "sms reader": (sms_on, read_sms_reader),
    "sms store": (sms_on, read_sms_store),
    "call log": (calls_on, read_call_log),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reader", sorted(ROW_READERS))
def test_every_row_reader_reads_hostile_rows_exactly(
    rish_phone: FakePhone, reader: str, kind: str
) -> None:
    plant, read = ROW_READERS[reader]
    expected = plant(rish_phone, kind)
    assert read(rish_phone) == expected


def test_restore_confirms_hostile_calls_and_a_second_run_adds_nothing(bed: Bed) -> None:
    calls = hostile_call_log(bed.phone)
    archive_as_termux_backs_up(bed)
    assert len(bed.emulator.messages("Call log")) == len(calls)
    original = sorted((r["number"], r["date"] // 1000, r["type"]) for r in bed.phone.call_rows)
    bed.phone.set(calls=[])
    factory_reset(bed)
    bed.phone.enable_privileged(rish=True)
    result = bed.smsbak("restore", "--calls", "--to", "phone")
    assert result.returncode == 0, result.stderr
    assert "6 calls restored" in result.stdout
    restored = sorted((r["number"], r["date"] // 1000, r["type"]) for r in bed.phone.call_rows)
    assert restored == original
    again = bed.smsbak("restore", "--calls", "--to", "phone")
    assert again.returncode == 0, again.stderr
    assert "0 calls restored" in again.stdout
    assert len(bed.phone.call_rows) == len(calls)
