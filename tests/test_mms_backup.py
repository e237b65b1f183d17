"""MMS through the privileged reader: one email per MMS, every recipient right, large ones
by resumable upload, unreadable ones reported by id."""

from __future__ import annotations

import email
import email.policy
import os
from pathlib import Path

import pytest

from smsbak.mime import decode_mms
from smsbak.model import AddressKind, Box
from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed
from tests.fakes.phone import INSERT_ADDRESS_TOKEN, PDU_CC, PDU_FROM, PDU_TO
from tests.format_readers import mms_only

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(20_000)
VCARD = "BEGIN:VCARD\nVERSION:3.0\nFN:Bob\nTEL:+49170\nEND:VCARD\n"
LONG_TEXT = "Grüße aus Berlin, 🐻. " * 300


def group_mms(bed: Bed, date_s: int = 1_772_362_800, image: bytes = PNG) -> None:
    bed.phone.add_mms(
        date_s=date_s,
        box=2,
        addresses=[
            (INSERT_ADDRESS_TOKEN, PDU_FROM),
            ("+4917011", PDU_TO),
            ("+4917022", PDU_TO),
            ("+4917033", PDU_CC),
        ],
        parts=[
            {"ct": "application/smil", "text": "<smil><body/></smil>"},
            {"ct": "text/plain", "text": LONG_TEXT},
            {"ct": "image/png", "name": "bär.png", "data": image},
            {"ct": "text/x-vcard", "name": "bob.vcf", "text": VCARD},
        ],
    )


def setup(bed: Bed) -> None:
    bed.phone.enable_privileged(rish=True)
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, call_log=False)


def test_a_group_mms_is_one_email_with_every_recipient_and_its_attachments(bed: Bed) -> None:
    setup(bed)
    group_mms(bed)
    bed.phone.add_contact("Anna", "+4917011")
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert "MMS: 1 new" in result.stdout
    (stored,) = bed.emulator.messages("SMS")
    message = email.message_from_bytes(stored.raw, policy=email.policy.default)
    assert message["X-smssync-datatype"] == "MMS"
    assert message["X-smssync-date"] == "1772362800"  # seconds, as SMS Backup+ wrote them
    recipients = {a.addr_spec for a in message["To"].addresses}
    assert {"+4917011@unknown.email", "+4917022@unknown.email"} <= recipients
    assert "+4917033@unknown.email" in str(message["To"]) + str(message.get("Cc", ""))
    assert message["From"].addresses[0].addr_spec == "user@example.com"
    mms = decode_mms(stored.raw)
    assert mms.box is Box.SENT
    assert [(a, k) for a, k in mms.addresses if k is not AddressKind.FROM] == [
        ("+4917011", AddressKind.TO),
        ("+4917022", AddressKind.TO),
        ("+4917033", AddressKind.CC),
    ]
    kinds = [p.content_type for p in mms.parts]
    assert "application/smil" not in kinds
    image = next(p for p in mms.parts if p.content_type == "image/png")
    assert image.data == PNG and image.name == "bär.png"
    assert next(p.text for p in mms.parts if p.content_type == "text/plain") == LONG_TEXT
    again = bed.smsbak("backup")
    assert again.returncode == 0
    assert len(bed.emulator.messages("SMS")) == 1


def test_a_20_mb_mms_goes_up_by_resumable_upload(bed: Bed) -> None:
    setup(bed)
    big = os.urandom(20 * 1024 * 1024)
    group_mms(bed, image=big)
    result = bed.smsbak("backup", timeout=300)
    assert result.returncode == 0, result.stderr
    assert bed.emulator.upload_kinds["resumable"] == 1, bed.emulator.upload_kinds
    (stored,) = bed.emulator.messages("SMS")
    image = next(p for p in decode_mms(stored.raw).parts if p.content_type == "image/png")
    assert image.data == big


def test_an_unreadable_mms_is_reported_by_id_and_skipped(bed: Bed) -> None:
    setup(bed)
    group_mms(bed, date_s=1_772_362_800)
    group_mms(bed, date_s=1_772_362_900)
    broken = bed.phone.mms_rows[-1]
    part = next(p for p in broken["parts"] if p.get("data_file"))
    (bed.phone.directory / part["data_file"]).unlink()  # absolute paths stay absolute
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert f"MMS _id {broken['_id']} could not be read" in result.stdout
    assert len(bed.emulator.messages("SMS")) == 1


def test_mms_identity_ignores_how_it_was_read(bed: Bed) -> None:
    """The fingerprint is whole seconds and content: a second read finds it known."""
    setup(bed)
    group_mms(bed)
    assert bed.smsbak("backup").returncode == 0
    inserts = bed.emulator.insert_calls
    assert bed.smsbak("backup", "--full").returncode == 0
    assert bed.emulator.insert_calls == inserts


def test_mms_come_back_into_both_archives_and_the_phone_byte_identical(
    bed: Bed, tmp_path: Path
) -> None:
    from smsbak.formats.sbr import read_messages_xml
    from smsbak.formats.smsie import read_messages_zip
    from tests.test_restore_e2e import restore_login

    setup(bed)
    group_mms(bed)
    bed.phone.add_sms(address="+491", body="and an sms", date=1_772_362_000_000)
    assert bed.smsbak("backup").returncode == 0
    restore_login(bed)
    for kind, name, reader in (
        ("smsie", "all.zip", read_messages_zip),
        ("xml", "all.xml", read_messages_xml),
    ):
        path = tmp_path / name
        result = bed.smsbak("restore", "--to", f"{kind}:{path}")
        assert result.returncode == 0, result.stderr
        (mms,) = list(mms_only(reader(path)))
        image = next(p for p in mms.parts if p.content_type == "image/png")
        assert image.data == PNG
        assert {a for a, k in mms.addresses if k is not AddressKind.FROM} == {
            "+4917011", "+4917022", "+4917033",
        }  # fmt: skip
    bed.phone.clear_messages()
    bed.phone.set(mms=[], threads=[])
    (tmp_path / "user" / "storage" / "shared").mkdir(parents=True)
    into_phone = bed.smsbak("restore", "--to", "phone", HOME=str(tmp_path / "user"))
    assert into_phone.returncode == 0, into_phone.stderr
    assert [row["body"] for row in bed.phone.messages] == ["and an sms"]
    (restored,) = bed.phone.mms_rows  # MMS go into the phone too now (tests/test_mms_restore)
    image = next(p for p in restored["parts"] if p["ct"] == "image/png")
    assert Path(image["data_file"]).read_bytes() == PNG
