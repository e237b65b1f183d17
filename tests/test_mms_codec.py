"""MMS: the email codec (smsbak's exactly, SMS Backup+'s best-effort) and the two
restore files (SMS Import / Export ZIP, SMS Backup & Restore XML)."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.message
import email.policy
import json
import random
import re
import tracemalloc
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsbak.formats.common import ReadStats, subject_from_provider, subject_to_provider
from smsbak.formats.sbr import read_messages_xml, write_messages_xml
from smsbak.formats.smsie import (
    DATA_DIR,
    MESSAGES_ENTRY,
    last_path_segment,
    read_messages_zip,
    write_messages_zip,
)
from smsbak.mime import (
    INSERT_ADDRESS_TOKEN,
    DecodeError,
    decode_mms,
    decode_sms,
    encode_mms,
    encode_sms,
    mms_message_id,
    mms_message_type,
    qp_decode,
    qp_encode,
    references_for,
    without_smil,
)
from smsbak.model import AddressKind, Box, Mms, MmsPart, Sms
from tests.format_readers import mms_only, scratch, sms_only

BERLIN = ZoneInfo("Europe/Berlin")
BACKUP_TIME = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
ACCOUNT = "me@example.com"
OWN = "+4917000000000"
ANNA, BERT, CARLA = "+4917011111111", "+4917022222222", "+4917033333333"
NAMES = {ANNA: "Anna Müller", BERT: "Bert"}

JPEG = bytes(range(256)) * 40 + b"\xff\xd9"
VCARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Carla\r\nTEL:+4917033333333\r\nEND:VCARD\r\n"
LONG_TEXT = (
    "From the lake, a long message:\n"
    + "Grüße 👋 " * 40
    + "\r\nline ending in spaces   \n.dot line\n=?utf-8?q?not a word?=\n\n"
    + "x" * 300
)
SMIL = MmsPart(
    "application/smil",
    text='<smil><body><par dur="5000ms"><img src="image000.jpg"/></par></body></smil>',
    content_id="<smil>",
    content_location="smil.xml",
)
IMAGE = MmsPart(
    "image/jpeg",
    data=JPEG,
    content_id="<image000>",
    content_location="Seeblick Ä 1.jpg",
)
CARD = MmsPart("text/x-vCard", name="Carla.vcf", data=VCARD, content_location="Carla.vcf")
TEXT = MmsPart(
    "text/plain",
    text=LONG_TEXT,
    charset="106",
    content_id="<text_0>",
    content_location="text_0.txt",
)


def group_sent() -> Mms:
    return Mms(
        date_ms=1_764_000_000_123,
        box=Box.SENT,
        addresses=(
            (INSERT_ADDRESS_TOKEN, AddressKind.FROM),
            (ANNA, AddressKind.TO),
            (BERT, AddressKind.TO),
            (CARLA, AddressKind.CC),
        ),
        parts=(SMIL, IMAGE, CARD, TEXT),
        read=True,
        thread_id=9,
        android_id=501,
        message_type=128,
        subject="Ausflug 🏔",
        sub_id=1,
    )


def group_received() -> Mms:
    return Mms(
        date_ms=1_764_000_360_456,
        box=Box.INBOX,
        addresses=(
            (ANNA, AddressKind.FROM),
            (OWN, AddressKind.TO),
            (BERT, AddressKind.TO),
            (CARLA, AddressKind.TO),
        ),
        parts=(SMIL, TEXT, IMAGE),
        read=False,
        thread_id=9,
        android_id=502,
        message_type=132,
    )


def encode(mms: Mms, own: tuple[str, ...] = (OWN,)) -> bytes:
    return encode_mms(
        mms,
        account=ACCOUNT,
        contact_names=NAMES,
        zone=BERLIN,
        backup_time=BACKUP_TIME,
        own_numbers=own,
    ).raw


def parsed(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def leaves(message: email.message.EmailMessage) -> list[email.message.EmailMessage]:
    return [p for p in message.walk() if not p.is_multipart()]  # type: ignore[misc]


# --- the email -------------------------------------------------------------------------


def test_sent_group_email_shows_every_recipient_and_attachment() -> None:
    raw = encode(group_sent())
    assert all(byte < 128 for byte in raw)
    assert all(len(line) <= 100 for line in raw.split(b"\r\n"))
    message = parsed(raw)
    assert str(message["From"]) == ACCOUNT
    to = str(message["To"])
    assert f"Anna Müller <{ANNA}@unknown.email>" in to
    assert f"Bert <{BERT}@unknown.email>" in to
    assert f"{CARLA}@unknown.email" in to
    assert ACCOUNT not in to
    assert "insert-address-token" not in to
    assert str(message["Subject"]) == f"SMS with Anna Müller, Bert, {CARLA}"
    assert message["X-smssync-datatype"] == "MMS"
    assert message["X-smssync-address"] == ANNA
    assert message["X-smssync-type"] == "128"
    assert message["X-smssync-date"] == "1764000000"
    assert message["X-smssync-thread"] == "9"
    assert message["X-smssync-read"] == "1"
    assert message["X-smssync-id"] == "501"
    assert message["X-smsbak-date-ms"] == "1764000000123"
    assert message["X-smsbak-msg-box"] == "2"
    assert message["X-smsbak-sub-id"] == "1"
    assert message.get_content_type() == "multipart/mixed"
    parts = leaves(message)
    assert [p.get_content_type() for p in parts] == ["image/jpeg", "text/x-vcard", "text/plain"]
    assert b"smil" not in raw.lower()
    image, card, text = parts
    assert image.get_content_disposition() == "attachment"
    assert image.get_filename() == "Seeblick Ä 1.jpg"
    assert image.get_content() == JPEG
    assert image["Content-Transfer-Encoding"] == "base64"
    assert card.get_content_disposition() == "attachment"
    assert card.get_filename() == "Carla.vcf"
    assert card.get_payload(decode=True) == VCARD
    assert text.get_content_disposition() == "inline"
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    assert text.get_content_charset() == "utf-8"
    # A standard decoder reads the text: line breaks are CRLF on the wire, a CR is =0D.
    assert text.get_payload(decode=True).decode("utf-8").replace("\r\n", "\n") == LONG_TEXT
    assert b"\r\nFrom " not in raw


def test_received_group_email_is_from_the_sender_to_the_account_and_the_others() -> None:
    message = parsed(encode(group_received()))
    assert str(message["From"]) == f"Anna Müller <{ANNA}@unknown.email>"
    to = str(message["To"])
    assert to.startswith(ACCOUNT)
    assert f"Bert <{BERT}@unknown.email>" in to
    assert f"{CARLA}@unknown.email" in to
    assert OWN not in to  # the phone's own number is the account
    assert ANNA not in to
    assert message["X-smssync-address"] == ANNA
    assert message["X-smssync-type"] == "132"
    assert message["X-smssync-read"] == "0"


def test_one_gmail_thread_per_group_and_the_sms_thread_for_one_person() -> None:
    sent, received = parsed(encode(group_sent())), parsed(encode(group_received()))
    assert sent["References"] == received["References"]
    assert str(sent["Subject"]) == str(received["Subject"])
    assert sent["References"] != references_for(ANNA)
    one = dataclasses.replace(group_sent(), addresses=((INSERT_ADDRESS_TOKEN, 137), (BERT, 151)))
    sms = Sms(address=BERT, body="hi", date_ms=1, box=Box.SENT)
    sms_email = parsed(
        encode_sms(
            sms, account=ACCOUNT, contact_name="Bert", zone=BERLIN, backup_time=BACKUP_TIME
        ).raw
    )
    assert parsed(encode(one))["References"] == sms_email["References"]
    assert str(parsed(encode(one))["Subject"]) == str(sms_email["Subject"])


def test_without_own_numbers_a_received_group_still_lists_everybody() -> None:
    message = parsed(encode(group_received(), own=()))
    assert f"{OWN}@unknown.email" in str(message["To"])


@pytest.mark.parametrize("mms", [group_sent(), group_received()])
def test_decoding_gives_back_the_record_without_smil(mms: Mms) -> None:
    encoded = encode_mms(
        mms, account=ACCOUNT, contact_names=NAMES, zone=BERLIN, backup_time=BACKUP_TIME
    )
    decoded = decode_mms(encoded.raw)
    assert decoded == without_smil(mms)
    assert SMIL not in decoded.parts
    assert JPEG in [part.data for part in decoded.parts]
    assert encoded.message_id == mms_message_id(mms) == mms_message_id(decoded)
    assert encoded.message_id.endswith("@smsbak.local>")


def test_an_mms_of_only_smil_still_makes_a_valid_email() -> None:
    mms = dataclasses.replace(group_sent(), parts=(SMIL,))
    raw = encode(mms)
    assert parsed(raw).get_content_type() == "multipart/mixed"
    assert decode_mms(raw) == dataclasses.replace(mms, parts=())


def test_unknown_m_type_gets_the_default_header_and_reads_back_unknown() -> None:
    mms = dataclasses.replace(group_received(), message_type=None, read=None, thread_id=None)
    message = parsed(encode(mms))
    assert message["X-smssync-type"] == "132"
    assert message["X-smsbak-m-type"] is None
    assert message["X-smssync-read"] is None
    assert decode_mms(encode(mms)) == without_smil(mms)


@pytest.mark.parametrize(
    "text",
    ["", "\n", "\r", "\r\n", " ", "a \n", "=", "F", ".", "From x", "a\tb\t", "é" * 100, "x" * 76],
)
def test_quoted_printable_is_exact(text: str) -> None:
    encoded = qp_encode(text)
    assert all(len(line) <= 76 for line in encoded.split("\r\n"))
    assert qp_decode(encoded).decode("utf-8") == text


# --- SMS Backup+'s emails --------------------------------------------------------------

SBP_BOUNDARY = "----8N4BXKE0L1EJ2BFCA2MQLCLYTY0NSQ"


def sbp_mms_email(m_type: int, to: str, address: str) -> bytes:
    """An MMS email as SMS Backup+ 1.5.11 (k9mail's MIME writer) produced it."""
    image = base64.encodebytes(JPEG).decode().replace("\n", "\r\n")
    card = base64.encodebytes(VCARD).decode().replace("\n", "\r\n")
    return (
        "MIME-Version: 1.0\r\n"
        f"From: {'Anna <' + ANNA + '@unknown.email>' if m_type == 132 else ACCOUNT}\r\n"
        f"To: {to}\r\n"
        "Subject: SMS with Anna\r\n"
        "Date: Mon, 24 Nov 2025 17:00:00 +0100\r\n"
        "Message-ID: <0123456789abcdef0123456789abcdef@sms-backup-plus.local>\r\n"
        "References: <abcdefghijklmnopqrstuvwx.12@sms-backup-plus.local>\r\n"
        f"X-smssync-address: {address}\r\n"
        "X-smssync-datatype: MMS\r\n"
        "X-smssync-backup-time: 24 Nov 2025 16:00:05 GMT\r\n"
        "X-smssync-version: 1576\r\n"
        "X-smssync-id: 12\r\n"
        f"X-smssync-type: {m_type}\r\n"
        "X-smssync-date: 1764000000\r\n"
        "X-smssync-thread: 4\r\n"
        "X-smssync-read: 1\r\n"
        f'Content-Type: multipart/mixed; boundary="{SBP_BOUNDARY}"\r\n'
        "\r\n"
        f"--{SBP_BOUNDARY}\r\n"
        "Content-Type: text/plain;\r\n charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "Sch=C3=B6ne Gr=C3=BC=C3=9Fe vom See, das ist eine l=C3=A4ngere Nachricht =\r\n"
        "mit weichem Umbruch\r\n"
        "zweite Zeile\r\n"
        f"--{SBP_BOUNDARY}\r\n"
        "Content-Type: image/jpeg; name*=UTF-8''Foto%20%C3%A4.jpg\r\n"
        "Content-Disposition: attachment; filename*=UTF-8''Foto%20%C3%A4.jpg\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"{image}"
        f"--{SBP_BOUNDARY}\r\n"
        "Content-Type: text/x-vCard; name=contact.vcf\r\n"
        "Content-Disposition: attachment; filename=contact.vcf\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"{card}"
        f"--{SBP_BOUNDARY}--\r\n"
    ).encode()


SBP_PARTS = (
    MmsPart(
        "text/plain",
        text="Schöne Grüße vom See, das ist eine längere Nachricht mit weichem Umbruch\n"
        "zweite Zeile",
    ),
    MmsPart("image/jpeg", data=JPEG, content_location="Foto ä.jpg"),
    MmsPart("text/x-vcard", data=VCARD, content_location="contact.vcf"),
)


def test_reads_a_received_mms_email_of_sms_backup_plus() -> None:
    mms = decode_mms(sbp_mms_email(132, ACCOUNT, ANNA))
    assert mms == Mms(
        date_ms=1_764_000_000_000,
        box=Box.INBOX,
        addresses=((ANNA, AddressKind.FROM),),
        parts=SBP_PARTS,
        read=True,
        thread_id=4,
        android_id=12,
        message_type=132,
    )


def test_reads_a_sent_group_mms_email_of_sms_backup_plus() -> None:
    to = f"Anna <{ANNA}@unknown.email>, {BERT}@unknown.email, carla@example.org"
    mms = decode_mms(sbp_mms_email(128, to, ANNA))
    assert mms.box is Box.SENT
    assert mms.date_ms == 1_764_000_000_000
    assert mms.addresses == (
        (INSERT_ADDRESS_TOKEN, AddressKind.FROM),
        (ANNA, AddressKind.TO),
        (BERT, AddressKind.TO),
    )
    assert mms.parts == SBP_PARTS


def test_without_its_own_headers_an_smsbak_email_reads_like_sms_backup_plus_ones() -> None:
    raw = encode(group_sent())
    stripped = re.sub(rb"X-smsbak-[^:]*:.*\r\n( .*\r\n)*", b"", raw)
    assert b"X-smsbak" not in stripped.split(b"\r\n\r\n")[0]
    mms = decode_mms(stripped)
    assert mms.box is Box.SENT
    assert mms.date_ms == 1_764_000_000_000
    assert mms.addresses == (
        (INSERT_ADDRESS_TOKEN, AddressKind.FROM),
        (ANNA, AddressKind.TO),
        (BERT, AddressKind.TO),
        (CARLA, AddressKind.TO),
    )
    assert mms.parts == (
        MmsPart("image/jpeg", data=JPEG, content_location="Seeblick Ä 1.jpg"),
        MmsPart("text/x-vcard", data=VCARD, content_location="Carla.vcf"),
        MmsPart("text/plain", text=LONG_TEXT.replace("\r\n", "\n")),
    )


def test_decode_errors_have_reasons() -> None:
    sms = Sms(address=ANNA, body="x", date_ms=1, box=Box.INBOX)
    sms_raw = encode_sms(
        sms, account=ACCOUNT, contact_name=None, zone=BERLIN, backup_time=BACKUP_TIME
    ).raw
    with pytest.raises(DecodeError) as error:
        decode_mms(sms_raw)
    assert error.value.reason == "datatype SMS"
    with pytest.raises(DecodeError) as error:
        decode_sms(encode(group_sent()))
    assert error.value.reason == "datatype MMS"
    with pytest.raises(DecodeError) as error:
        decode_mms(b"Subject: hi\r\n\r\nbody")
    assert error.value.reason == "no datatype header"
    no_date = sbp_mms_email(132, ACCOUNT, ANNA).replace(b"X-smssync-date: 1764000000\r\n", b"")
    with pytest.raises(DecodeError) as error:
        decode_mms(no_date)
    assert error.value.reason == "bad date header"
    damaged = encode(group_sent()).replace(b"\r\nAAECAwQF", b"\r\n!!ECAwQF")
    with pytest.raises(DecodeError) as error:
        decode_mms(damaged)
    assert error.value.reason == "damaged email"
    bad_box = encode(group_sent()).replace(b"X-smsbak-msg-box: 2", b"X-smsbak-msg-box: 9")
    with pytest.raises(DecodeError) as error:
        decode_mms(bad_box)
    assert error.value.reason == "bad msg_box header"


# --- the restore files -----------------------------------------------------------------


def as_in_files(mms: Mms, *, whole_seconds: bool) -> Mms:
    """What a file keeps: no phone ids, read and m_type defaulted, the sender first."""
    first_from = next(
        (i for i, (_, kind) in enumerate(mms.addresses) if kind is AddressKind.FROM), None
    )
    addresses = mms.addresses
    if whole_seconds and first_from is not None:
        rest = mms.addresses[:first_from] + mms.addresses[first_from + 1 :]
        addresses = (mms.addresses[first_from], *rest)
    return dataclasses.replace(
        mms,
        date_ms=mms.date_ms // 1000 * 1000 if whole_seconds else mms.date_ms,
        addresses=addresses,
        read=mms.read is not False,
        thread_id=None,
        android_id=None,
        message_type=mms_message_type(mms),
        sub_id=mms.sub_id if mms.sub_id is not None and mms.sub_id >= 0 else None,
    )


SMS = Sms(address=BERT, body="see you at 5", date_ms=1_764_000_000_000, box=Box.INBOX, read=True)


def test_group_mms_through_the_sms_import_export_zip(tmp_path: Path) -> None:
    path = tmp_path / "messages.zip"
    report = write_messages_zip(path, [SMS], [group_sent(), group_received()], contact_names=NAMES)
    assert (report.sms, report.mms, report.attachments) == (1, 2, 3)
    assert report.attachment_bytes == 2 * len(JPEG) + len(VCARD)
    assert path.stat().st_mode & 0o777 == 0o600
    with zipfile.ZipFile(path) as archive:
        lines = archive.read(MESSAGES_ENTRY).decode().splitlines()
        rows = [json.loads(line) for line in lines]
        assert "m_type" not in rows[0]
        sent = rows[1]
        assert sent["date"] == "1764000000"
        assert sent["msg_box"] == "2"
        assert sent["m_type"] == "128"
        assert sent["read"] == "1"
        assert sent["sub_id"] == "1"
        assert sent["sub"] == "Ausflug 🏔".encode().decode("latin-1")
        assert sent["sub_cs"] == "106"
        assert sent["__sender_address"] == {
            "address": INSERT_ADDRESS_TOKEN,
            "type": "137",
            "charset": "106",
        }
        assert [a["address"] for a in sent["__recipient_addresses"]] == [ANNA, BERT, CARLA]
        assert [a["type"] for a in sent["__recipient_addresses"]] == ["151", "151", "130"]
        assert sent["__recipient_addresses"][0]["__display_name"] == "Anna Müller"
        parts = sent["__parts"]
        assert [p["seq"] for p in parts] == ["-1", "0", "1", "2"]
        assert [p["ct"] for p in parts] == [
            "application/smil",
            "image/jpeg",
            "text/x-vCard",
            "text/plain",
        ]
        assert "_data" not in parts[0] and parts[0]["text"] == SMIL.text
        assert parts[3]["text"] == LONG_TEXT and parts[3]["chset"] == "106"
        for part, data in ((parts[1], JPEG), (parts[2], VCARD)):
            assert "text" not in part
            name = last_path_segment(part["_data"])
            assert archive.read(DATA_DIR + name) == data
        names = [n for n in archive.namelist() if n.startswith(DATA_DIR)]
        assert len(names) == len(set(names)) == 3
    stats = ReadStats()
    records = list(read_messages_zip(path, stats=stats))
    assert records == [
        SMS,
        as_in_files(group_sent(), whole_seconds=True),
        as_in_files(group_received(), whole_seconds=True),
    ]
    assert (stats.sms, stats.mms, stats.invalid_skipped, stats.missing_data) == (1, 2, 0, 0)
    assert list(mms_only(read_messages_zip(path))) == records[1:]
    # The SMS-only reader still reads such an archive and counts the MMS it skips.
    old_stats = ReadStats()
    assert list(sms_only(read_messages_zip(path, stats=old_stats))) == [SMS]
    assert old_stats.mms == 2


PARTS_DIR = "/data/user_de/0/com.android.providers.telephony/app_parts/"


def test_reads_an_sms_import_export_export_with_mms(tmp_path: Path) -> None:
    """Shaped as the app exports: every column a string, _data a phone path."""
    row = {
        "_id": "31",
        "thread_id": "5",
        "date": "1700000000",
        "date_sent": "0",
        "msg_box": "1",
        "read": "1",
        "m_id": "mavodi-1-8b-2b1-c0-3d37e0",
        "sub": "Gr\u00c3\u00bc\u00c3\u009fe",
        "sub_cs": "106",
        "ct_t": "application/vnd.wap.multipart.related",
        "m_type": "132",
        "sub_id": "2",
        "seen": "1",
        "__sender_address": {
            "_id": "88",
            "msg_id": "31",
            "address": ANNA,
            "type": "137",
            "charset": "106",
            "__display_name": "Anna",
        },
        "__recipient_addresses": [
            {"_id": "89", "msg_id": "31", "address": OWN, "type": "151", "charset": "106"}
        ],
        "__parts": [
            {
                "_id": "70",
                "mid": "31",
                "seq": "-1",
                "ct": "application/smil",
                "cid": "<smil>",
                "cl": "smil.xml",
                "text": "<smil/>",
            },
            {
                "_id": "71",
                "mid": "31",
                "seq": "0",
                "ct": "image/jpeg",
                "cl": "image000.jpg",
                "_data": PARTS_DIR + "PART_1700_image000.jpg",
            },
            {
                "_id": "72",
                "mid": "31",
                "seq": "1",
                "ct": "text/plain",
                "chset": "106",
                "cl": "text_0.txt",
                "text": "Hallo",
            },
            {
                "_id": "73",
                "mid": "31",
                "seq": "2",
                "ct": "video/mp4",
                "cl": "v.mp4",
                "_data": PARTS_DIR + "PART_gone.mp4",
            },
        ],
    }
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(MESSAGES_ENTRY, json.dumps(row) + "\n")
        archive.writestr("data/PART_1700_image000.jpg", JPEG)
    stats = ReadStats()
    (mms,) = mms_only(read_messages_zip(path, stats=stats))
    assert stats.missing_data == 1
    assert mms == Mms(
        date_ms=1_700_000_000_000,
        box=Box.INBOX,
        addresses=((ANNA, AddressKind.FROM), (OWN, AddressKind.TO)),
        parts=(
            MmsPart(
                "application/smil", text="<smil/>", content_id="<smil>", content_location="smil.xml"
            ),
            MmsPart("image/jpeg", data=JPEG, content_location="image000.jpg"),
            MmsPart("text/plain", text="Hallo", charset="106", content_location="text_0.txt"),
            MmsPart("video/mp4", data=None, content_location="v.mp4"),
        ),
        read=True,
        message_type=132,
        subject="Grüße",
        sub_id=2,
    )


def test_group_mms_through_the_sms_backup_and_restore_xml(tmp_path: Path) -> None:
    path = tmp_path / "sms.xml"
    report = write_messages_xml(
        path,
        [SMS],
        [group_sent(), group_received()],
        contact_names=NAMES,
        backup_date_ms=5,
        zone=BERLIN,
    )
    assert (report.sms, report.mms) == (1, 2)
    assert path.stat().st_mode & 0o777 == 0o600
    root = ET.parse(path).getroot()
    assert root.get("count") == "3"
    assert root.get("backup_date") == "5"
    mms_element = root.findall("mms")[0]
    assert mms_element.get("date") == "1764000000123"
    assert mms_element.get("msg_box") == "2"
    assert mms_element.get("m_type") == "128"
    assert mms_element.get("address") == f"{ANNA}~{BERT}~{CARLA}"
    assert mms_element.get("contact_name") == "Anna Müller, Bert, (Unknown)"
    parts = mms_element.findall("parts/part")
    assert [p.get("seq") for p in parts] == ["-1", "0", "1", "2"]
    assert parts[0].get("data") is None and parts[0].get("text") == SMIL.text
    assert base64.b64decode(parts[1].get("data") or "") == JPEG
    assert parts[1].get("text") == "null" and parts[1].get("name") == "null"
    assert parts[1].get("cl") == "Seeblick Ä 1.jpg"
    assert base64.b64decode(parts[2].get("data") or "") == VCARD
    assert parts[3].get("text") == LONG_TEXT
    addrs = [(a.get("address"), a.get("type")) for a in mms_element.findall("addrs/addr")]
    assert addrs == [(INSERT_ADDRESS_TOKEN, "137"), (ANNA, "151"), (BERT, "151"), (CARLA, "130")]
    stats = ReadStats()
    records = list(read_messages_xml(path, stats=stats, chunk_size=997))
    assert records == [
        SMS,
        as_in_files(group_sent(), whole_seconds=False),
        as_in_files(group_received(), whole_seconds=False),
    ]
    assert (stats.sms, stats.mms, stats.invalid_skipped, stats.bad_data) == (1, 2, 0, 0)
    assert list(mms_only(read_messages_xml(path))) == records[1:]
    old_stats = ReadStats()
    assert list(sms_only(read_messages_xml(path, stats=old_stats))) == [SMS]
    assert old_stats.mms == 2 and old_stats.written_by_smsbak


def test_reads_an_sms_backup_and_restore_mms(tmp_path: Path) -> None:
    path = tmp_path / "sms-20250101.xml"
    data = base64.b64encode(JPEG).decode()
    path.write_text(
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
        '<smses count="1" backup_set="x" backup_date="1">\n'
        '<mms text_only="0" sub="null" retr_st="null" date="1357254178000" ct_cls="null"'
        ' sub_cs="null" read="1" ct_l="null" tr_id="T13c02d" st="null" msg_box="1"'
        f' address="{ANNA}~{BERT}" m_cls="personal" d_tm="null" read_status="null"'
        ' ct_t="application/vnd.wap.multipart.related" retr_txt_cs="null" d_rpt="128"'
        ' m_id="x" date_sent="0" seen="1" m_type="132" v="18" exp="null" pri="129" rr="129"'
        ' resp_txt="null" rpt_a="null" locked="0" retr_txt="null" resp_st="null"'
        ' m_size="null" sub_id="-1" readable_date="Jan 3, 2013" contact_name="Anna, Bert">\n'
        "<parts>\n"
        '<part seq="-1" ct="application/smil" name="null" chset="null" cd="null" fn="null"'
        ' cid="&lt;smil&gt;" cl="smil.xml" ctt_s="null" ctt_t="null" text="&lt;smil/&gt;" />\n'
        '<part seq="0" ct="image/jpeg" name="null" chset="null" cd="null" fn="null"'
        f' cid="&lt;image000&gt;" cl="image000.jpg" ctt_s="null" ctt_t="null" text="null"'
        f' data="{data}" />\n'
        '<part seq="1" ct="text/plain" name="null" chset="106" cd="null" fn="null"'
        ' cid="&lt;text000&gt;" cl="text000.txt" ctt_s="null" ctt_t="null"'
        ' text="null" />\n'
        "</parts>\n"
        "<addrs>\n"
        f'<addr address="{ANNA}" type="137" charset="106" />\n'
        f'<addr address="{BERT}" type="151" charset="106" />\n'
        f'<addr address="{OWN}" type="151" charset="106" />\n'
        "</addrs>\n"
        "</mms>\n"
        "</smses>\n",
        encoding="utf-8",
    )
    stats = ReadStats()
    (mms,) = mms_only(read_messages_xml(path, stats=stats))
    assert not stats.written_by_smsbak
    assert mms == Mms(
        date_ms=1_357_254_178_000,
        box=Box.INBOX,
        addresses=((ANNA, AddressKind.FROM), (BERT, AddressKind.TO), (OWN, AddressKind.TO)),
        parts=(
            MmsPart(
                "application/smil", text="<smil/>", content_id="<smil>", content_location="smil.xml"
            ),
            MmsPart(
                "image/jpeg", data=JPEG, content_id="<image000>", content_location="image000.jpg"
            ),
            MmsPart(
                "text/plain", charset="106", content_id="<text000>", content_location="text000.txt"
            ),
        ),
        read=True,
        message_type=132,
    )


def test_null_text_is_literal_only_where_smsbak_marked_it(tmp_path: Path) -> None:
    mms = dataclasses.replace(
        group_received(),
        parts=(MmsPart("text/plain", text="null", name="null"), MmsPart("null", data=b"")),
        subject="null",
    )
    path = tmp_path / "sms.xml"
    write_messages_xml(path, [], [mms])
    assert list(mms_only(read_messages_xml(path))) == [as_in_files(mms, whole_seconds=False)]
    foreign = tmp_path / "foreign.xml"
    foreign.write_bytes(path.read_bytes().replace(b"File created by smsbak", b"Elsewhere"))
    (read,) = mms_only(read_messages_xml(foreign))
    assert read.parts[0].text is None and read.subject is None


def test_subject_in_the_providers_form() -> None:
    assert subject_to_provider("Grüße") == ("Gr\u00c3\u00bc\u00c3\u009fe", "106")
    assert subject_from_provider("Gr\u00c3\u00bc\u00c3\u009fe", "106") == "Grüße"
    assert subject_from_provider("Grüße", "106") == "Grüße"  # already text: as it stands
    assert subject_from_provider("Grüße", None) == "Grüße"


def test_last_path_segment_is_what_android_uri_gives() -> None:
    assert last_path_segment("/data/app_parts/PART_1_a.jpg") == "PART_1_a.jpg"
    assert last_path_segment("/data/app_parts/PART_2%20b.jpg") == "PART_2 b.jpg"
    assert last_path_segment("/data/app_parts/PART_3.jpg?x#y") == "PART_3.jpg"
    assert last_path_segment("PART_4/") == "PART_4"


MEGABYTE = 1 << 20


def many_big_mms(count: int) -> Iterator[Mms]:
    for n in range(count):
        data = random.Random(n).randbytes(MEGABYTE)
        yield dataclasses.replace(
            group_sent(),
            date_ms=1_700_000_000_000 + n * 1000,
            parts=(TEXT, MmsPart("video/mp4", data=data, content_location=f"v{n}.mp4")),
        )


def peak_of(action: object) -> int:
    tracemalloc.start()
    try:
        assert callable(action)
        action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("kind", ["zip", "xml"])
def test_memory_stays_at_one_message_however_many_attachments(tmp_path: Path, kind: str) -> None:
    """Peaks for 3 and for 11 one-megabyte attachments: the same, and a few megabytes
    (eight more held would show as 8 MB, a sixteenth of each kept as half of one)."""
    writer = write_messages_zip if kind == "zip" else write_messages_xml
    reader = read_messages_zip if kind == "zip" else read_messages_xml
    peaks: dict[int, tuple[int, int]] = {}
    for count in (3, 11):
        path = tmp_path / f"big{count}.{kind}"
        write_peak = peak_of(lambda: writer(path, [], many_big_mms(count)))  # noqa: B023
        sizes: list[int] = []

        def read_all() -> None:
            for mms in mms_only(reader(path)):  # noqa: B023
                sizes.append(len(mms.parts[1].data or b""))  # noqa: B023

        peaks[count] = (write_peak, peak_of(read_all))
        assert sizes == [MEGABYTE] * count
    for small, large in zip(peaks[3], peaks[11], strict=True):
        assert large < small + MEGABYTE // 2, peaks
        assert large < 12 * MEGABYTE, peaks
    expected = [m.parts[1].data for m in many_big_mms(11)]
    assert [m.parts[1].data for m in mms_only(reader(tmp_path / f"big11.{kind}"))] == expected


# --- properties ------------------------------------------------------------------------

SPECIAL_TEXT = [
    "",
    "null",
    "\r\n",
    "\r",
    "\n",
    "\x00",
    "\x1b",
    "\x85",
    "\u2028",
    "\uefff",
    "\uefff0000",
    " lead",
    "trail ",
    "a  b",
    "=?utf-8?b?QQ==?=",
    "~",
    ",",
    ";",
    ":",
    "%",
    "=",
    "\"'<>&",
    "insert-address-token",
    "From x",
    ".",
    "👋🏽",
    "日本語",
]
texts = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=120),
)
optional_texts = st.none() | texts
addresses = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from([INSERT_ADDRESS_TOKEN, ANNA, BERT, CARLA, OWN, "+49 (170) 12-34"]),
            texts,
        ),
        st.sampled_from(list(AddressKind)),
    ),
    max_size=6,
).map(tuple)
content_types = st.one_of(
    st.sampled_from(
        [
            "text/plain",
            "image/jpeg",
            "image/png",
            "text/x-vCard",
            "video/3gpp",
            "application/smil",
            "Application/SMIL; charset=utf-8",
            "application/octet-stream",
            "audio/amr",
            "null",
            "",
            "not a type",
        ]
    ),
    texts,
)
parts = st.builds(
    MmsPart,
    content_type=content_types,
    name=optional_texts,
    text=optional_texts,
    data=st.none() | st.binary(max_size=400),
    charset=st.none() | st.sampled_from(["106", "3", "4"]) | texts,
    content_id=optional_texts,
    content_location=optional_texts,
)
mms_records = st.builds(
    Mms,
    date_ms=st.integers(min_value=0, max_value=4_102_444_800_000),
    box=st.sampled_from(list(Box)),
    addresses=addresses,
    parts=st.lists(parts, max_size=5).map(tuple),
    read=st.none() | st.booleans(),
    thread_id=st.none() | st.integers(min_value=0, max_value=2**40),
    android_id=st.none() | st.integers(min_value=0, max_value=2**40),
    message_type=st.none() | st.sampled_from([128, 130, 132]) | st.integers(0, 255),
    subject=optional_texts,
    sub_id=st.none() | st.integers(min_value=-1, max_value=8),
)
names = st.dictionaries(texts, texts, max_size=3)


@settings(max_examples=300, deadline=None)
@given(mms=mms_records, contact_names=names, own=st.lists(texts, max_size=2))
def test_email_round_trip_is_exact_without_smil(
    mms: Mms, contact_names: dict[str, str], own: list[str]
) -> None:
    encoded = encode_mms(
        mms,
        account=ACCOUNT,
        contact_names=contact_names,
        zone=BERLIN,
        backup_time=BACKUP_TIME,
        own_numbers=own,
    )
    assert all(byte < 128 for byte in encoded.raw)
    assert all(len(line) <= 998 for line in encoded.raw.split(b"\r\n"))
    decoded = decode_mms(encoded.raw)
    assert decoded == without_smil(mms)
    assert mms_message_id(decoded) == encoded.message_id
    # Standard parsers see a well-formed email with one MIME part per non-SMIL part.
    message = parsed(encoded.raw)
    assert message["X-smssync-datatype"] == "MMS"
    assert len(leaves(message)) == max(1, len(without_smil(mms).parts))


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=("Cs",))))
def test_quoted_printable_round_trip(text: str) -> None:
    encoded = qp_encode(text)
    assert all(len(line) <= 76 for line in encoded.split("\r\n"))
    assert qp_decode(encoded).decode("utf-8") == text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(mms_records, max_size=4))
def test_file_round_trips_keep_every_part_and_attachment(records: list[Mms]) -> None:
    with scratch() as folder:
        zip_path, xml_path = Path(folder) / "m.zip", Path(folder) / "m.xml"
        write_messages_zip(zip_path, [], records)
        assert list(mms_only(read_messages_zip(zip_path))) == [
            as_in_files(m, whole_seconds=True) for m in records
        ]
        write_messages_xml(xml_path, [], records)
        assert list(mms_only(read_messages_xml(xml_path, chunk_size=511))) == [
            as_in_files(m, whole_seconds=False) for m in records
        ]
