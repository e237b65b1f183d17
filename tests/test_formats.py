"""Restore files for SMS Backup & Restore (XML) and SMS Import / Export (ZIP).

What matters: another app imports what we write, a strict parser accepts it, our
reader gives back exactly the text we wrote (controls, NUL, U+FFFF and all), we
read the app's own quirky files, and gigabyte files never sit in memory.
"""

from __future__ import annotations

import dataclasses
import json
import random
import tracemalloc
import uuid
import xml.dom.minidom
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Iterator
from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsbak.errors import DamagedFileError, UsageError
from smsbak.formats.common import ReadStats
from smsbak.formats.sbr import (
    fix_char_refs,
    read_messages_xml,
    readable_date,
    write_messages_xml,
)
from smsbak.formats.smsie import (
    MESSAGES_ENTRY,
    read_messages_zip,
    write_messages_zip,
)
from smsbak.model import Box, Sms
from tests.format_readers import scratch, sms_only

# Pieces a generic text strategy rarely hits but that break naive writers/readers.
SPECIALS = [
    "\x00",
    "\x01",
    "\x08",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x1f",
    "\x7f",
    "\x85",
    "\r",
    "\n",
    "\r\n",
    "\t",
    "\ufffe",
    "\uffff",
    "\uefff",
    "\uefff0000",
    "\uefffEFFF",
    "\u2028",
    " ",
    "  lead",
    "trail  ",
    "]]>",
    '"',
    "'",
    "&",
    "<",
    ">",
    "&amp;",
    "&#55357;&#56860;",
    "&#0;",
    "null",
    "\U0001f61c",
]
tricky_text = st.lists(st.one_of(st.text(), st.sampled_from(SPECIALS)), max_size=8).map("".join)
records = st.builds(
    Sms,
    address=tricky_text,
    body=tricky_text,
    date_ms=st.integers(min_value=0, max_value=4_102_444_800_000),
    box=st.sampled_from(Box),
    read=st.booleans(),
    thread_id=st.none() | st.integers(min_value=0, max_value=2**62),
    android_id=st.none() | st.integers(min_value=0, max_value=2**62),
)


def without_ids(sms: Sms) -> Sms:
    """What the formats can give back: they do not carry Android's ids."""
    return dataclasses.replace(sms, thread_id=None, android_id=None)


def sample(**changes: object) -> Sms:
    fields: dict[str, object] = {
        "address": "+15551234567",
        "body": "see you at 5",
        "date_ms": 1_700_000_000_123,
        "box": Box.INBOX,
        "read": True,
    }
    fields.update(changes)
    return Sms(**fields)  # type: ignore[arg-type]


# --- XML: round trips and strictness --------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(sms=records)
def test_xml_round_trip_is_exact(sms: Sms) -> None:
    with scratch() as tmp:
        path = Path(tmp) / "sms.xml"
        report = write_messages_xml(path, [sms], contact_names={sms.address: sms.body})
        assert report.sms == 1
        ET.parse(path)  # strict: expat rejects any forbidden character or reference
        xml.dom.minidom.parse(str(path))
        assert list(sms_only(read_messages_xml(path))) == [without_ids(sms)]


@settings(max_examples=50, deadline=None)
@given(messages=st.lists(records, max_size=20), chunk_size=st.integers(1, 64))
def test_xml_round_trip_of_many_messages_with_any_chunk_size(
    messages: list[Sms], chunk_size: int
) -> None:
    with scratch() as tmp:
        path = Path(tmp) / "sms.xml"
        write_messages_xml(path, messages)
        stats = ReadStats()
        got = list(sms_only(read_messages_xml(path, stats=stats, chunk_size=chunk_size)))
        assert got == [without_ids(sms) for sms in messages]
        assert stats.sms == len(messages) and stats.written_by_smsbak


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t\n\r")))
def test_a_strict_parser_sees_the_exact_text_when_nothing_needed_escaping(text: str) -> None:
    """Tab, LF, CR and leading/trailing spaces survive attribute normalisation everywhere."""
    if "\ufffe" in text or "\uffff" in text or "\uefff" in text:
        return
    with scratch() as tmp:
        path = Path(tmp) / "sms.xml"
        report = write_messages_xml(path, [sample(body=text, address=text)])
        assert report.escaped_controls == 0
        element = ET.parse(path).getroot().find("sms")
        assert element is not None
        assert element.get("body") == text and element.get("address") == text
        dom_sms = xml.dom.minidom.parse(str(path)).getElementsByTagName("sms")[0]
        assert dom_sms.getAttribute("body") == text


def test_xml_layout_is_what_sms_backup_and_restore_writes(tmp_path: Path) -> None:
    path = tmp_path / "sms.xml"
    messages = [
        sample(body="a\tb\nc\r", read=None),
        sample(address="+15550000000", box=Box.SENT, read=False),
    ]
    report = write_messages_xml(
        path,
        messages,
        contact_names={"+15550000000": "Bob & Co"},
        backup_date_ms=1_700_000_999_000,
        zone=UTC,
    )
    assert report == type(report)(path=path, sms=2, mms=0, escaped_controls=0)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n")
    root = ET.parse(path).getroot()
    assert root.tag == "smses"
    assert root.get("count") == "2" and root.get("backup_date") == "1700000999000"
    assert uuid.UUID(root.get("backup_set") or "").version == 4
    first, second = root.findall("sms")
    assert first.attrib == {
        "protocol": "0",
        "address": "+15551234567",
        "date": "1700000000123",
        "type": "1",
        "subject": "null",
        "body": "a\tb\nc\r",
        "toa": "null",
        "sc_toa": "null",
        "service_center": "null",
        "read": "1",  # unknown read is written as read
        "status": "-1",
        "locked": "0",
        "date_sent": "0",
        "sub_id": "-1",
        "readable_date": "Nov 14, 2023 10:13:20 PM",
        "contact_name": "(Unknown)",
    }
    assert 'body="a&#9;b&#10;c&#13;"' in text
    assert second.get("read") == "0" and second.get("type") == "2"
    assert second.get("contact_name") == "Bob & Co"


def test_forbidden_characters_are_written_in_the_reversible_private_use_form(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sms.xml"
    body = "nul\x00 esc\x1b ffff\uffff mark\uefff lone\ud83d end"
    report = write_messages_xml(path, [sample(body=body)], contact_names={"+15551234567": "A\x01"})
    assert report.escaped_controls == 6  # five in the body, one in the contact name
    # What SMS Backup & Restore (or any strict parser) sees: printable text.
    seen = ET.parse(path).getroot().find("sms")
    assert seen is not None
    assert seen.get("body") == (
        "nul\uefff0000 esc\uefff001B ffff\uefffFFFF mark\uefffEFFF lone\uefffD83D end"
    )
    assert seen.get("contact_name") == "A\uefff0001"
    assert [sms.body for sms in sms_only(read_messages_xml(path))] == [body]


def test_readable_date_looks_like_the_apps() -> None:
    assert readable_date(1_581_092_316_254, UTC) == "Feb 7, 2020 4:18:36 PM"
    assert readable_date(0, UTC) == "Jan 1, 1970 12:00:00 AM"
    assert readable_date(10**20, UTC) == "null"


def test_xml_write_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "sms.xml"
    write_messages_xml(path, [sample()])
    before = path.read_bytes()

    def broken() -> Iterator[Sms]:
        yield sample()
        raise RuntimeError("archive went away")

    with pytest.raises(RuntimeError):
        write_messages_xml(path, broken())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sms.xml"]


# --- XML: what SMS Backup & Restore itself writes ---------------------------------------

SBR_SAMPLE = (
    b"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
    b"<!--File Created By SMS Backup & Restore v10.20.002 on 14/11/2023 22:13:20-->\n"
    b'<?xml-stylesheet type="text/xsl" href="sms.xsl"?>\n'
    b'<smses count="7" backup_set="8c9d2c4e-3b7a-4a35-9d53-4a1e6f1f0c21"'
    b' backup_date="1700000999000" type="full">\n'
    b'  <sms protocol="0" address="+15551234567" date="1700000000123" type="1"'
    b' subject="null" body="Hi &#55357;&#56860; see you&#10;at 5" toa="null"'
    b' sc_toa="null" service_center="+15550000000" read="1" status="-1" locked="0"'
    b' date_sent="1699999999000" sub_id="1" readable_date="Nov 14, 2023 10:13:20 PM"'
    b' contact_name="Alice" />\n'
    b'  <sms protocol="0" address="null" date="1700000100000" type="3" subject="null"'
    b' body="null" toa="null" sc_toa="null" service_center="null" read="1" status="-1"'
    b' locked="0" date_sent="0" readable_date="Nov 14, 2023 10:15:00 PM"'
    b' contact_name="(Unknown)" />\n'
    b'  <sms protocol="0" address="+15551234567" date="1700000200000" type="2"'
    b' subject="null" body="WHAT&apos;S &#xD83D;&#xDE00; cut &#55357;" toa="null"'
    b' sc_toa="null" service_center="null" read="0" status="-1" locked="0"'
    b' date_sent="0" readable_date="Nov 14, 2023 10:16:40 PM" contact_name="Alice" />\n'
    b'  <mms date="1700000300000" ct_t="application/vnd.wap.multipart.related"'
    b' msg_box="1" address="+15551234567~+15557654321" m_type="132" read="1">\n'
    b"    <parts>\n"
    b'      <part seq="0" ct="text/plain" name="null" chset="106" cd="null" fn="null"'
    b' cid="&lt;text&gt;" cl="text_0.txt" ctt_s="null" ctt_t="null"'
    b' text="group &#55357;&#56860;" />\n'
    b'      <part seq="1" ct="image/png" name="null" chset="null" cd="null" fn="null"'
    b' cid="&lt;0&gt;" cl="a.png" ctt_s="null" ctt_t="null" text="null"'
    b' data="iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6'
    b'kgAAAABJRU5ErkJggg==" />\n'
    b"    </parts>\n"
    b"    <addrs>\n"
    b'      <addr address="+15551234567" type="137" charset="106" />\n'
    b"    </addrs>\n"
    b"  </mms>\n"
    b'  <sms protocol="0" address="12345" date="1700000400000" type="1" subject="null"'
    b' body="esc&#27;[0m nul&#0; raw\x1bbyte ok" toa="null" sc_toa="null"'
    b' service_center="null" read="null" status="-1" locked="0" date_sent="0"'
    b' contact_name="(Unknown)" />\n'
    b'  <sms protocol="0" address="+1" date="null" type="1" body="no date" read="1" />\n'
    b'  <sms protocol="0" address="+1" date="1700000500000" type="0" body="bad type" />\n'
    b"</smses>\n"
)
SBR_EXPECTED = [
    Sms(
        "+15551234567", "Hi \U0001f61c see you\nat 5", 1_700_000_000_123, Box.INBOX, True, sub_id=1
    ),
    Sms("", "", 1_700_000_100_000, Box.DRAFT, True),
    Sms("+15551234567", "WHAT'S \U0001f600 cut \ud83d", 1_700_000_200_000, Box.SENT, False),
    Sms("12345", "esc\x1b[0m nul\x00 raw\x1bbyte ok", 1_700_000_400_000, Box.INBOX, None),
]


def test_strict_parsers_reject_what_the_app_writes(tmp_path: Path) -> None:
    """Why the reader pre-processes the bytes at all."""
    path = tmp_path / "sms-20231114221320.xml"
    path.write_bytes(SBR_SAMPLE)
    with pytest.raises(ET.ParseError):
        ET.parse(path)


def test_reads_an_sms_backup_and_restore_file(tmp_path: Path) -> None:
    path = tmp_path / "sms-20231114221320.xml"
    path.write_bytes(SBR_SAMPLE)
    stats = ReadStats()
    assert list(sms_only(read_messages_xml(path, stats=stats))) == SBR_EXPECTED
    assert (stats.sms, stats.mms, stats.invalid_skipped) == (4, 1, 2)
    assert not stats.written_by_smsbak


@pytest.mark.parametrize("chunk_size", [*range(1, 40), 97, 4096])
def test_chunk_boundaries_anywhere_give_the_same_messages(tmp_path: Path, chunk_size: int) -> None:
    path = tmp_path / "sms.xml"
    path.write_bytes(SBR_SAMPLE)
    assert list(sms_only(read_messages_xml(path, chunk_size=chunk_size))) == SBR_EXPECTED


def test_fix_char_refs_splits_inside_a_surrogate_reference() -> None:
    data = b'<a b="x&#55357;&#56860;y&#xD83D;&#xDE00;&#55357;z&#10;&#0;\xef\xbf\xbf" />'
    whole = b"".join(fix_char_refs([data]))
    assert whole == (
        '<a b="x\U0001f61cy\U0001f600\uefffD83Dz&#10;\uefff0000\uefffFFFF" />'.encode()
    )
    for first in range(len(data)):
        for second in range(first, len(data)):
            pieces = [data[:first], data[first:second], data[second:]]
            assert b"".join(fix_char_refs(pieces)) == whole, (first, second)


def test_null_is_literal_only_in_files_smsbak_wrote(tmp_path: Path) -> None:
    ours = tmp_path / "ours.xml"
    write_messages_xml(ours, [sample(address="null", body="null")])
    assert [(s.address, s.body) for s in sms_only(read_messages_xml(ours))] == [("null", "null")]
    theirs = tmp_path / "theirs.xml"
    theirs.write_bytes(ours.read_bytes().replace(b"File created by smsbak", b"Somebody"))
    assert [(s.address, s.body) for s in sms_only(read_messages_xml(theirs))] == [("", "")]


def test_xml_reader_rejects_other_files(tmp_path: Path) -> None:
    calls = tmp_path / "calls.xml"
    calls.write_text('<?xml version="1.0"?><calls count="0"></calls>')
    with pytest.raises(UsageError, match="not an SMS Backup"):
        list(sms_only(read_messages_xml(calls)))
    broken = tmp_path / "broken.xml"
    broken.write_bytes(SBR_SAMPLE[: len(SBR_SAMPLE) // 2])
    stats = ReadStats()
    got: list[Sms] = []
    with pytest.raises(DamagedFileError, match="damaged at line"):
        got.extend(sms_only(read_messages_xml(broken, stats=stats)))
    assert got == SBR_EXPECTED[:2]  # what came before the break was delivered


# --- SMS Import / Export ----------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(sms=records)
def test_smsie_round_trip_is_exact(sms: Sms) -> None:
    with scratch() as tmp:
        path = Path(tmp) / "messages.zip"
        assert write_messages_zip(path, [sms]).sms == 1
        assert list(sms_only(read_messages_zip(path))) == [without_ids(sms)]


@settings(max_examples=50, deadline=None)
@given(messages=st.lists(records, max_size=20))
def test_smsie_round_trip_of_many_messages(messages: list[Sms]) -> None:
    with scratch() as tmp:
        path = Path(tmp) / "messages.zip"
        write_messages_zip(path, messages)
        assert list(sms_only(read_messages_zip(path))) == [without_ids(sms) for sms in messages]


def test_smsie_round_trip_of_a_lone_surrogate(tmp_path: Path) -> None:
    """Not valid UTF-8, so that line is written with ASCII escapes."""
    sms = sample(body="cut \ud83d", address="\ude00")
    write_messages_zip(tmp_path / "m.zip", [sms])
    assert list(sms_only(read_messages_zip(tmp_path / "m.zip"))) == [sms]


def test_smsie_archive_is_what_sms_import_export_writes(tmp_path: Path) -> None:
    path = tmp_path / "messages-2023-11-14.zip"
    messages = [
        sample(thread_id=7, android_id=42),
        sample(address="+15550000000", box=Box.SENT, read=None, body="x\ny"),
    ]
    write_messages_zip(path, messages, contact_names={"+15551234567": "Alice"})
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        [info] = archive.infolist()
        assert info.filename == MESSAGES_ENTRY
        assert info.compress_type == zipfile.ZIP_DEFLATED
        lines = archive.read(MESSAGES_ENTRY).decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == 3
    first, second = (json.loads(line) for line in lines[:2])
    assert first == {
        "address": "+15551234567",
        "date": "1700000000123",
        "date_sent": "0",
        "protocol": "0",
        "read": "1",
        "status": "-1",
        "type": "1",
        "reply_path_present": "0",
        "body": "see you at 5",
        "locked": "0",
        "sub_id": "-1",
        "error_code": "0",
        "seen": "1",
        "__display_name": "Alice",
    }
    assert all(isinstance(value, str) for value in [*first.values(), *second.values()])
    assert "_id" not in second and "thread_id" not in second and "__display_name" not in second
    assert second["read"] == "1" and second["type"] == "2" and "protocol" not in second


def test_reads_an_sms_import_export_archive(tmp_path: Path) -> None:
    """Lines as sms-ie exports them (all strings), plus numbers a hand-made file might use."""
    rows: list[dict[str, object]] = [
        {
            "_id": "81",
            "thread_id": "3",
            "address": "+15551234567",
            "date": "1700000000123",
            "date_sent": "1699999999000",
            "protocol": "0",
            "read": "1",
            "status": "-1",
            "type": "1",
            "reply_path_present": "0",
            "body": "Hi \U0001f61c",
            "service_center": "+15550000000",
            "locked": "0",
            "sub_id": "1",
            "error_code": "0",
            "creator": "com.google.android.apps.messaging",
            "seen": "1",
            "__display_name": "Alice",
        },
        {"address": "+1", "date": 1700000100000, "type": 2, "read": 0},
        {"date": "1700000200000", "type": "3"},  # a draft without address and body
        {"date": "1700000300", "msg_box": "1", "m_type": "132", "__parts": []},
        {"address": "+1", "date": "soon", "type": "1"},
        {"address": "+1", "date": "1", "type": "9"},
    ]
    text = "".join(json.dumps(row) + "\n" for row in rows) + "not json\n[1]\n\n"
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(MESSAGES_ENTRY, text)
        archive.writestr("data/PART_1700000300_image.jpg", b"\xff\xd8")
    stats = ReadStats()
    assert list(sms_only(read_messages_zip(path, stats=stats))) == [
        Sms("+15551234567", "Hi \U0001f61c", 1_700_000_000_123, Box.INBOX, True),
        Sms("+1", "", 1_700_000_100_000, Box.SENT, False),
        Sms("", "", 1_700_000_200_000, Box.DRAFT, None),
    ]
    assert (stats.sms, stats.mms, stats.invalid_skipped) == (3, 1, 4)


def test_smsie_reader_rejects_other_files(tmp_path: Path) -> None:
    not_zip = tmp_path / "calls-2023-11-14.json"
    not_zip.write_text("[]")
    with pytest.raises(UsageError, match="not a ZIP"):
        list(sms_only(read_messages_zip(not_zip)))
    no_entry = tmp_path / "other.zip"
    with zipfile.ZipFile(no_entry, "w") as archive:
        archive.writestr("contacts.vcf", "")
    with pytest.raises(UsageError, match=MESSAGES_ENTRY):
        list(sms_only(read_messages_zip(no_entry)))


def test_smsie_write_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "m.zip"
    write_messages_zip(path, [sample()])
    before = path.read_bytes()

    def broken() -> Iterator[Sms]:
        yield sample()
        raise RuntimeError("archive went away")

    with pytest.raises(RuntimeError):
        write_messages_zip(path, broken())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zip"]


# --- large files stream --------------------------------------------------------------

# Enough messages that holding them would show many times over: the peaks measured
# below are a fixed cost of the reader (its read size, the parser's buffers, one batch
# of events), whatever the size of the file.
LARGE = 5_000
_LETTERS = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ\n"
_AS_LETTERS = bytes(_LETTERS[byte % len(_LETTERS)] for byte in range(256))


def _random_body(rng: random.Random) -> str:
    """300-700 random letters, spaces and newlines (hard to compress: the archive test
    bounds the peak by the compressed size too). Drawn as bytes, not letter by letter,
    which took most of these tests' time."""
    return rng.randbytes(rng.randrange(300, 700)).translate(_AS_LETTERS).decode("ascii")


def _peak_while_reading(iterator: Iterable[Sms]) -> tuple[int, int]:
    tracemalloc.start()
    try:
        count = sum(1 for _ in iterator)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return count, peak


def test_large_xml_is_read_streaming(tmp_path: Path) -> None:
    """An app-style file (surrogate references in every message) of about 3.4 MB.

    Read 16 KB at a time rather than the default 256 KB: the reader's peak follows its
    read size (about seven reads' worth: the parser's buffer and one batch of events),
    not the file, so with a smaller read a file a fifth the size shows the same
    margin. A reader that kept the messages, or the file, would need all 3.4 MB."""
    rng = random.Random(1)
    path = tmp_path / "sms-large.xml"
    with path.open("wb") as out:
        out.write(b"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n")
        out.write(f'<smses count="{LARGE}">\n'.encode())
        for n in range(LARGE):
            body = _random_body(rng).replace("\n", "&#10;")
            out.write(
                f'  <sms protocol="0" address="+1555{n:07d}" date="{1_600_000_000_000 + n}"'
                f' type="1" subject="null" body="{body} &#55357;&#56860;" read="1" />\n'.encode()
            )
        out.write(b"</smses>\n")
    size = path.stat().st_size
    count, peak = _peak_while_reading(sms_only(read_messages_xml(path, chunk_size=16 * 1024)))
    assert count == LARGE
    assert peak < size / 5, (peak, size)


def test_large_smsie_archive_is_read_streaming(tmp_path: Path) -> None:
    """About 3.6 MB of messages (1.8 MB compressed); the reader's peak is a fixed
    ~75 KB (one inflated piece of the entry and the message being decoded)."""
    rng = random.Random(2)
    path = tmp_path / "messages-large.zip"
    messages = (
        sample(address=f"+1555{n:07d}", body=_random_body(rng), date_ms=1_600_000_000_000 + n)
        for n in range(LARGE)
    )
    assert write_messages_zip(path, messages).sms == LARGE
    with zipfile.ZipFile(path) as archive:
        uncompressed = archive.getinfo(MESSAGES_ENTRY).file_size
    count, peak = _peak_while_reading(sms_only(read_messages_zip(path)))
    assert count == LARGE
    assert peak < min(uncompressed / 10, path.stat().st_size / 3), (peak, uncompressed)


def test_every_code_point_survives_both_formats(tmp_path: Path) -> None:
    """All of the BMP but surrogates (so every control, U+FFFE, U+FFFF) and a stride of
    the astral planes, in one body and one address."""
    code_points = [*range(0xD800), *range(0xE000, 0x10000), *range(0x10000, 0x110000, 97)]
    text = "".join(map(chr, code_points))
    sms = sample(body=text, address=text[::-1])
    write_messages_xml(tmp_path / "all.xml", [sms])
    ET.parse(tmp_path / "all.xml")
    assert list(sms_only(read_messages_xml(tmp_path / "all.xml", chunk_size=1000))) == [sms]
    write_messages_zip(tmp_path / "all.zip", [sms])
    assert list(sms_only(read_messages_zip(tmp_path / "all.zip"))) == [sms]
