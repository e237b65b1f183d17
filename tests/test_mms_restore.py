"""`smsbak restore --to phone` brings MMS back through the fake rish/content provider:
backed up to the Gmail emulator, the phone reset, restored, compared row by row."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from smsbak.errors import ExitCode
from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed
from tests.fakes.phone import (
    INBOX,
    INSERT_ADDRESS_TOKEN,
    PDU_BCC,
    PDU_CC,
    PDU_FROM,
    PDU_TO,
    SENT,
)
from tests.test_restore_e2e import Archive, back_up_once, restore_login

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests

ANNA, BERT, CARL, OWN = "+4917011111", "+4917022222", "+4917033333", "+4917099999"
DATE_S = 1_772_362_800
PHOTO = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
VOICE = b"#!AMR\n" + os.urandom(2000)
VCARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bob, Jr.\r\nTEL:+4917000000\r\nEND:VCARD\r\n"
SMIL = "<smil><body><par><img src='photo.png'/></par></body></smil>"
HOSTILE = "a, b=c\nRow: 7 _id=1, text=forged\n  end="


def mms_corpus(bed: Bed) -> None:
    """Sent and received, a group with several senders, photo, voice note, vCard, a
    subject-only MMS, text that looks like rows."""
    phone = bed.phone
    with phone.batch():
        group = phone.add_mms(
            date_s=DATE_S,
            box=SENT,
            addresses=[
                (INSERT_ADDRESS_TOKEN, PDU_FROM),
                (ANNA, PDU_TO),
                (BERT, PDU_TO),
                (CARL, PDU_CC),
            ],
            parts=[
                {"ct": "application/smil", "seq": -1, "text": SMIL},
                {"ct": "image/png", "name": "photo.png", "cl": "photo.png", "data": PHOTO},
                {"ct": "text/plain", "text": "Trip, day 1 " + HOSTILE},
            ],
            subject="Trip, Grüße 🎉",
        )
        phone.add_mms(  # Anna answers the group with a voice note
            date_s=DATE_S + 60,
            box=INBOX,
            addresses=[(ANNA, PDU_FROM), (OWN, PDU_TO), (BERT, PDU_TO), (CARL, PDU_TO)],
            parts=[{"ct": "audio/amr", "name": "voice.amr", "data": VOICE}],
            read=False,
            thread_id=group["thread_id"],
        )
        phone.add_mms(  # and Bert with a photo
            date_s=DATE_S + 120,
            box=INBOX,
            addresses=[(BERT, PDU_FROM), (OWN, PDU_TO), (ANNA, PDU_TO), (CARL, PDU_BCC)],
            parts=[
                {"ct": "image/png", "cl": "b.png", "data": PHOTO[::-1]},
                {"ct": "text/plain", "text": "ok"},
            ],
            thread_id=group["thread_id"],
        )
        phone.add_mms(  # a vCard from Carl alone
            date_s=DATE_S + 180,
            box=INBOX,
            addresses=[(CARL, PDU_FROM), (OWN, PDU_TO)],
            parts=[{"ct": "text/x-vcard", "name": "bob.vcf", "data": VCARD}],
        )
        phone.add_mms(  # only a subject
            date_s=DATE_S + 240,
            box=SENT,
            addresses=[(INSERT_ADDRESS_TOKEN, PDU_FROM), (ANNA, PDU_TO)],
            parts=[],
            subject="just a subject",
        )
        phone.add_sms(address=ANNA, body="an SMS too", date=(DATE_S + 300) * 1000)


def phone_mms(bed: Bed) -> list[tuple[Any, ...]]:
    """What must survive: date, box, read, subject, addresses, parts with their bytes
    (SMIL layout parts are not carried by the emails), in date order."""
    view = []
    for mms in sorted(bed.phone.mms_rows, key=lambda m: m["date"]):
        parts = []
        for part in sorted(mms["parts"], key=lambda p: p.get("seq", 0)):
            if part["ct"] == "application/smil":
                continue
            data = Path(part["data_file"]).read_bytes() if part.get("data_file") else None
            parts.append((part["ct"], part.get("name"), part.get("text"), data))
        addresses = [(a["address"], a["type"]) for a in mms["addresses"]]
        view.append((mms["date"], mms["msg_box"], mms["read"], mms.get("sub"), addresses, parts))
    return view


def thread_groups(bed: Bed) -> list[list[int]]:
    """Which MMS (by date) share a conversation, whatever the thread ids are."""
    groups: dict[int, list[int]] = {}
    for mms in bed.phone.mms_rows:
        groups.setdefault(mms["thread_id"], []).append(mms["date"])
    return sorted(sorted(dates) for dates in groups.values())


def factory_reset(bed: Bed) -> None:
    bed.phone.clear_messages()
    bed.phone.set(mms=[], threads=[], appops={})
    shutil.rmtree(bed.phone.directory / "mms-parts", ignore_errors=True)
    shutil.rmtree(bed.home)
    bed.home.mkdir()
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, call_log=False)
    restore_login(bed)


def privileged_corpus(bed: Bed) -> None:
    bed.phone.enable_privileged(rish=True)
    mms_corpus(bed)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    made = back_up_once(tmp_path_factory, privileged_corpus, call_log=False)
    assert "MMS: 5 new" in made.stdout
    return made


@pytest.fixture
def backed_up(bed: Bed, tmp_path: Path, archive: Archive) -> tuple[Bed, list[tuple[Any, ...]], str]:
    """The corpus was backed up (``archive``: its emails), then the phone was reset."""
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, call_log=False)
    privileged_corpus(bed)
    original = phone_mms(bed)
    factory_reset(bed)
    archive.seed(bed.emulator)
    user = tmp_path / "user"
    (user / "storage" / "shared").mkdir(parents=True)
    (user / "storage" / "downloads").mkdir()
    return bed, original, str(user)


def decoded_subject(sub: str | None) -> str | None:
    """The provider keeps a subject as its UTF-8 bytes in ISO-8859-1 (PduPersister)."""
    return None if sub is None else sub.encode("latin-1").decode("utf-8")


@pytest.mark.parametrize("shell", ["rish", "su"])
def test_mms_round_trip_through_the_phone(
    backed_up: tuple[Bed, list[tuple[Any, ...]], str], shell: str
) -> None:
    bed, original, home = backed_up
    bed.phone.enable_privileged(rish=shell == "rish", su=shell == "su")
    groups_before = [[DATE_S, DATE_S + 60, DATE_S + 120], [DATE_S + 180], [DATE_S + 240]]
    dry = bed.smsbak("restore", "--to", "phone", "--dry-run", HOME=home)
    assert dry.returncode == 0, dry.stderr
    assert "6 messages would be restored" in dry.stdout
    assert bed.phone.mms_rows == []

    result = bed.smsbak("restore", "--to", "phone", HOME=home)
    assert result.returncode == 0, result.stderr
    assert "6 messages restored" in result.stdout
    restored = phone_mms(bed)
    assert [r[:3] + r[4:] for r in restored] == [o[:3] + o[4:] for o in original]
    assert [decoded_subject(r[3]) for r in restored] == [o[3] for o in original]
    assert thread_groups(bed) == groups_before  # the group stays one conversation
    assert {m["sub_id"] for m in bed.phone.mms_rows} == {-1}
    creator = "root" if shell == "su" else "com.android.shell"
    assert {m["creator"] for m in bed.phone.mms_rows} == {creator}
    assert [s["body"] for s in bed.phone.messages] == ["an SMS too"]
    sms_thread = bed.phone.messages[0]["thread_id"]
    assert next(m for m in bed.phone.mms_rows if m["date"] == DATE_S + 240)["thread_id"] == (
        sms_thread
    )  # one address: the SMS conversation with Anna
    assert bed.phone.appop() == "default"  # the shell keeps no extra right
    assert not list((Path(home) / "storage" / "shared").iterdir())  # unstaged
    assert not bed.phone.calls("termux-sms-send")

    again = bed.smsbak("restore", "--to", "phone", HOME=home)
    assert again.returncode == 0, again.stderr
    assert "0 messages restored" in again.stdout
    assert len(bed.phone.mms_rows) == 5

    inserts = bed.emulator.insert_calls
    backup = bed.smsbak("backup", "--full")
    assert backup.returncode == 0, backup.stderr
    assert bed.emulator.insert_calls == inserts, "the backup re-uploaded restored MMS"


def test_a_part_write_failing_halfway_leaves_nothing_behind(
    backed_up: tuple[Bed, list[tuple[Any, ...]], str],
) -> None:
    bed, _, home = backed_up
    bed.phone.set(content_write_fail_after=1000)  # the photo and voice note are larger
    result = bed.smsbak("restore", "--to", "phone", HOME=home)
    assert result.returncode == ExitCode.PHONE, result.stdout + result.stderr
    assert "3  refused by the phone" in result.stdout
    assert "2 x not restored: an attachment arrived with 1000 of 3008 bytes" in result.stdout
    assert "1 x not restored: an attachment arrived with 1000 of 2006 bytes" in result.stdout
    assert "No space left on device" in result.stdout
    dates = sorted(m["date"] for m in bed.phone.mms_rows)
    assert dates == [DATE_S + 180, DATE_S + 240]  # the vCard is small, no attachment: whole
    assert len(os.listdir(bed.phone.directory / "mms-parts")) == 1  # no orphaned file
    bed.phone.set(content_write_fail_after=None)
    again = bed.smsbak("restore", "--to", "phone", HOME=home)
    assert again.returncode == 0, again.stderr
    assert "3 messages restored" in again.stdout
    assert len(bed.phone.mms_rows) == 5


def test_an_ignored_pdu_insert_is_an_error_and_writes_nothing(
    backed_up: tuple[Bed, list[tuple[Any, ...]], str],
) -> None:
    bed, _, home = backed_up
    bed.phone.set_appop("ignore")
    bed.phone.set(appops_frozen=True)  # `appops set` answers but changes nothing
    result = bed.smsbak("restore", "--to", "phone", "--contact", CARL, HOME=home)
    assert result.returncode == ExitCode.PHONE, result.stdout + result.stderr
    assert "ignored all 1 MMS" in result.stderr and "WRITE_SMS" in result.stderr
    assert "0 of 1 messages were restored" in result.stderr
    assert bed.phone.mms_rows == [] and bed.phone.data.get("threads")  # looked up only
    assert not (bed.phone.directory / "mms-parts").exists()


def test_without_content_write_the_mms_go_into_a_file(
    backed_up: tuple[Bed, list[tuple[Any, ...]], str],
) -> None:
    from smsbak.formats.smsie import read_messages_zip
    from tests.format_readers import mms_only

    bed, _, home = backed_up
    bed.phone.set(content_has_write=False)
    result = bed.smsbak("restore", "--to", "phone", HOME=home)
    assert result.returncode == ExitCode.PHONE
    assert bed.phone.mms_rows == []
    assert [s["body"] for s in bed.phone.messages] == ["an SMS too"]
    (archive,) = (Path(home) / "storage" / "downloads").glob("*.zip")
    assert len(list(mms_only(read_messages_zip(archive)))) == 5
    assert "SMS Import / Export" in result.stdout and archive.name in result.stdout
    assert "5 x MMS not written into the phone (this phone's `content` tool has no `write`" in (
        result.stdout
    )


def test_mms_still_on_the_phone_are_recognised_and_skipped(bed: Bed, tmp_path: Path) -> None:
    """No reset: the phone's own MMS (SMIL layout parts included) match the archive."""
    bed.phone.enable_privileged(rish=True)
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, call_log=False)
    mms_corpus(bed)
    assert bed.smsbak("backup").returncode == 0
    restore_login(bed)
    before = phone_mms(bed)
    result = bed.smsbak("restore", "--to", "phone", "--dry-run", HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "0 messages would be restored" in result.stdout
    assert "6  already on the phone" in result.stdout
    assert phone_mms(bed) == before


def test_a_restore_killed_halfway_is_completed_by_the_next_run_without_doubles(
    backed_up: tuple[Bed, list[tuple[Any, ...]], str],
) -> None:
    bed, original, home = backed_up
    # `content` dies after 9 rows (the SMS, pdu rows, a few parts): nothing answers
    # afterwards, not even the queries that would remove the half-written MMS.
    bed.phone.set_content(fail_after=9)
    broken = bed.smsbak("restore", "--to", "phone", HOME=home)
    assert broken.returncode == ExitCode.PHONE, broken.stdout + broken.stderr
    assert bed.phone.mms_rows  # left behind, incomplete
    assert (bed.home / "mms-restore-in-flight.json").exists()
    bed.phone.set_content(fail_after=None)
    result = bed.smsbak("restore", "--to", "phone", HOME=home)
    assert result.returncode == 0, result.stdout + result.stderr
    restored = phone_mms(bed)
    assert [r[:3] + r[4:] for r in restored] == [o[:3] + o[4:] for o in original]
    assert not (bed.home / "mms-restore-in-flight.json").exists()
    assert len(os.listdir(bed.phone.directory / "mms-parts")) == 4  # no orphaned files


def test_a_provider_refusing_the_confirming_queries_gets_a_file_not_unconfirmed_rows(
    backed_up: tuple[Bed, list[tuple[Any, ...]], str],
) -> None:
    bed, _, home = backed_up
    bed.phone.set(content_strict_projection=True)
    result = bed.smsbak("restore", "--to", "phone", HOME=home)
    assert result.returncode == ExitCode.PHONE, result.stdout + result.stderr
    assert bed.phone.mms_rows == []
    assert [s["body"] for s in bed.phone.messages] == ["an SMS too"]
    assert "refuses the queries that confirm each MMS" in result.stdout
    (archive,) = (Path(home) / "storage" / "downloads").glob("*.zip")
    assert archive.name in result.stdout
