"""MMS (with the SMS) in the two restore files: SMS Import / Export's ZIP and SMS Backup &
Restore's XML. Both hold raw content-provider rows; both are written and read streaming,
so memory holds one message with its attachments, never the whole archive.

SMS Import / Export (github.com/tmo1/sms-ie, ``ImportExportMessages.kt``)
---------------------------------------------------------------------------
Export writes one ``messages.ndjson`` line per message, SMS first, then MMS, every
column value a JSON string. An MMS line holds the ``content://mms`` columns (``date``
in *seconds*, ``msg_box``, ``m_type``, ...), ``__sender_address`` (the first address row
of type 137, an object), ``__recipient_addresses`` (every other address row, an array)
and ``__parts`` (the part rows, ``seq`` ascending). A part whose ``_data`` is set has its
bytes in the ZIP entry ``data/`` + the last path segment of ``_data``. Import copies the
columns its phone knows (never ``_id``, ``thread_id``, ``_data``), inserts every address
object of both keys with its own ``type``, inserts the parts, then walks the ZIP a second
time and streams each ``data/`` entry into the part whose ``_data`` named it; so the
entries may stand anywhere in the ZIP. We write the attachments while reading the
records, and ``messages.ndjson`` last from a temporary file next to the target (a ZIP
cannot take two growing entries at once): one message in memory at a time. Our part
files are named ``PART_<n>_<safe name>`` (ASCII letters, digits, ``._-``), unique and
safe for Android's ``Uri.getLastPathSegment``. A further FROM address (never seen on a
phone) goes into ``__recipient_addresses`` with its type 137, where import keeps it.

SMS Backup & Restore
--------------------
``<mms date="ms" msg_box m_type address read ...>`` holding ``<parts><part seq ct name
chset cd fn cid cl ctt_s ctt_t text data/></parts>`` (``data`` base64) and ``<addrs><addr
address type charset/></addrs>``; ``address`` lists the participants joined with ``~``.
Absent values are the literal ``null``. In a file smsbak wrote, an MMS column whose value
really is the text "null" is named in a ``smsbak_literal`` attribute of its element;
other readers ignore the attribute. The ``count`` attribute comes first but is known
only at the end: it is written with padding spaces after it (legal between attributes)
and filled in when the file is complete.

Both formats
------------
``sub`` is stored as the provider keeps it: the subject's bytes in the ``sub_cs``
character set (MIBenum, 106 = UTF-8), each byte one ISO-8859-1 character
(``PduPersister.toIsoString``). We write UTF-8 so, and undo it when reading; a subject
that is not in that form is taken as it stands. Unknown ``read`` is written as read,
unknown ``sub_id`` as -1 (and -1 reads back as unknown). SMIL parts are kept: the
files restore into a phone, which wants its layout.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import shutil
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

from smsbak.errors import UsageError
from smsbak.formats.smsie import MESSAGES_ENTRY, sms_from_row, sms_row
from smsbak.formats.xml import (
    CHUNK_SIZE,
    SMSBAK_COMMENT,
    UNKNOWN_CONTACT,
    escape_attribute,
    fix_char_refs,
    readable_date,
    sms_element,
    sms_from_attributes,
    unescape_text,
)
from smsbak.mime import INSERT_ADDRESS_TOKEN, is_smil, mms_message_type
from smsbak.model import AddressKind, Box, Mms, MmsPart, Sms
from smsbak.paths import private_file_atomically

DATA_DIR = "data/"
ANDROID_PARTS_DIR = "/data/user_de/0/com.android.providers.telephony/app_parts/"
"""Where Android keeps part files; only the last segment of ``_data`` matters on import."""

MULTIPART_RELATED = "application/vnd.wap.multipart.related"
UTF8_MIB = "106"
_MIB_CHARSETS = {
    "3": "ascii",
    "4": "latin-1",
    "17": "shift_jis",
    "18": "euc-jp",
    "36": "euc-kr",
    "39": "iso-2022-jp",
    "106": "utf-8",
    "1000": "utf-16-be",
    "1015": "utf-16",
    "2025": "gb2312",
    "2026": "big5",
}
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_COPY_CHUNK = 1024 * 1024
_COUNT_SLOT = 32  # characters reserved for count="N" and the padding after it


def subject_to_provider(subject: str) -> tuple[str, str]:
    """``(sub, sub_cs)`` as Android stores a subject: UTF-8 bytes as ISO-8859-1 characters."""
    return subject.encode("utf-8", "surrogatepass").decode("latin-1"), UTF8_MIB


def subject_from_provider(sub: str, sub_cs: str | None) -> str:
    """The subject text of a raw ``sub`` column; as it stands when it is not in that form."""
    charset = _MIB_CHARSETS.get((sub_cs or "").strip())
    if charset is None:
        return sub
    try:
        return sub.encode("latin-1").decode(charset)
    except (UnicodeEncodeError, UnicodeDecodeError):
        return sub


def _first_from(mms: Mms) -> int | None:
    return next((i for i, (_, k) in enumerate(mms.addresses) if k is AddressKind.FROM), None)


def _participant_addresses(mms: Mms) -> list[str]:
    seen: list[str] = []
    for address, _kind in mms.addresses:
        if address != INSERT_ADDRESS_TOKEN and address and address not in seen:
            seen.append(address)
    return seen


def _part_seqs(parts: Sequence[MmsPart]) -> list[int]:
    """``seq`` as Android numbers parts: a leading SMIL part -1, the others from 0."""
    seqs: list[int] = []
    following = 0
    for index, part in enumerate(parts):
        if index == 0 and is_smil(part):
            seqs.append(-1)
        else:
            seqs.append(following)
            following += 1
    return seqs


# --- SMS Import / Export ---------------------------------------------------------------


@dataclass
class MessagesZipReport:
    """What ``write_messages_zip`` wrote."""

    path: Path
    sms: int
    mms: int
    attachments: int
    attachment_bytes: int


@dataclass
class SmsieMessagesReadStats:
    """What the SMS Import / Export readers passed over; filled in while iterating.

    ``invalid_skipped`` counts lines that are not JSON objects or lack a usable date and
    type (SMS) or msg_box (MMS); ``missing_data`` parts whose ``data/`` file is absent
    (exported without binary data): they read with ``data`` None.
    """

    sms: int = 0
    mms: int = 0
    invalid_skipped: int = 0
    missing_data: int = 0


def _address_object(address: str, kind: AddressKind, names: Mapping[str, str]) -> dict[str, str]:
    row = {"address": address, "type": str(int(kind)), "charset": UTF8_MIB}
    name = names.get(address)
    if name:
        row["__display_name"] = name
    return row


def mms_ndjson_row(
    mms: Mms,
    data_names: Sequence[str | None],
    contact_names: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """The object SMS Import / Export would export for ``mms``. ``data_names[i]`` is the
    ``data/`` file name of part i, None for parts without bytes."""
    names = contact_names or {}
    row: dict[str, object] = {
        "date": str(mms.date_ms // 1000),
        "date_sent": "0",
        "msg_box": str(int(mms.box)),
        "read": "0" if mms.read is False else "1",
    }
    if mms.subject is not None:
        row["sub"], row["sub_cs"] = subject_to_provider(mms.subject)
    row["ct_t"] = MULTIPART_RELATED
    row["m_type"] = str(mms_message_type(mms))
    row["locked"] = "0"
    row["sub_id"] = "-1" if mms.sub_id is None else str(mms.sub_id)
    row["seen"] = "1"
    sender = _first_from(mms)
    if sender is not None:
        address, kind = mms.addresses[sender]
        row["__sender_address"] = _address_object(address, kind, names)
    row["__recipient_addresses"] = [
        _address_object(address, kind, names)
        for index, (address, kind) in enumerate(mms.addresses)
        if index != sender
    ]
    parts: list[dict[str, str]] = []
    for part, seq, data_name in zip(mms.parts, _part_seqs(mms.parts), data_names, strict=True):
        part_row = {"seq": str(seq), "ct": part.content_type}
        optional = (
            ("name", part.name),
            ("chset", part.charset),
            ("cid", part.content_id),
            ("cl", part.content_location),
        )
        part_row.update({key: value for key, value in optional if value is not None})
        if data_name is not None:
            part_row["_data"] = ANDROID_PARTS_DIR + data_name
        if part.text is not None:
            part_row["text"] = part.text
        parts.append(part_row)
    row["__parts"] = parts
    return row


def _json_line(row: Mapping[str, object]) -> bytes:
    text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only \u escapes can carry it
        return (json.dumps(row, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def _part_file_name(number: int, part: MmsPart) -> str:
    label = _UNSAFE_FILE_CHARS.sub("_", part.name or part.content_location or "").strip("._")
    return f"PART_{number}_{label[-40:]}" if label else f"PART_{number}"


def _zip_info(name: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size = size
    info.external_attr = 0o600 << 16
    return info


def write_messages_zip(
    path: Path,
    sms: Iterable[Sms] = (),
    mms: Iterable[Mms] = (),
    *,
    contact_names: Mapping[str, str] | None = None,
) -> MessagesZipReport:
    """Write SMS and MMS as an archive SMS Import / Export imports (Android 6+, as default
    SMS app): attachments under ``data/`` as they come, ``messages.ndjson`` (SMS, then
    MMS) last. Owner-only and atomic like ``write_smsie_zip``."""
    names = contact_names or {}
    report = MessagesZipReport(path=path, sms=0, mms=0, attachments=0, attachment_bytes=0)
    with (
        private_file_atomically(path, "wb") as handle,
        zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        tempfile.TemporaryFile(prefix=f".{path.name}.", dir=path.parent) as lines,
    ):
        for text_message in sms:
            lines.write(_json_line(sms_row(text_message, names.get(text_message.address))))
            report.sms += 1
        for record in mms:
            data_names: list[str | None] = []
            for part in record.parts:
                if part.data is None:
                    data_names.append(None)
                    continue
                report.attachments += 1
                file_name = _part_file_name(report.attachments, part)
                archive.writestr(_zip_info(DATA_DIR + file_name, len(part.data)), part.data)
                report.attachment_bytes += len(part.data)
                data_names.append(file_name)
            lines.write(_json_line(mms_ndjson_row(record, data_names, names)))
            report.mms += 1
        size = lines.tell()
        lines.seek(0)
        with archive.open(_zip_info(MESSAGES_ENTRY, size), "w") as entry:
            shutil.copyfileobj(lines, entry, _COPY_CHUNK)
    return report


def write_smsie_zip_with_mms(
    path: Path,
    sms: Iterable[Sms],
    mms: Iterable[Mms],
    *,
    contact_names: Mapping[str, str] | None = None,
) -> MessagesZipReport:
    """``write_messages_zip`` with both kinds named."""
    return write_messages_zip(path, sms, mms, contact_names=contact_names)


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _content_type(value: str | None) -> str:
    """A part's ``ct``; a part without one is taken as bytes."""
    return "application/octet-stream" if value is None else value


def last_path_segment(data_path: str) -> str:
    """What Android's ``Uri.parse(_data).getLastPathSegment()`` gives: no query or
    fragment, empty segments skipped, percent-escapes decoded."""
    segments = [s for s in urlsplit(data_path).path.split("/") if s]
    return unquote(segments[-1]) if segments else ""


def _address_from_object(value: object, default: AddressKind) -> tuple[str, AddressKind] | None:
    if not isinstance(value, dict):
        return None
    kind = _int(value.get("type"))
    chosen = default
    if kind is not None and kind in AddressKind._value2member_map_:
        chosen = AddressKind(kind)
    return _optional_str(value.get("address")) or "", chosen


def mms_from_ndjson_row(
    row: Mapping[str, object],
    read_data: Callable[[str], bytes | None],
) -> Mms | None:
    """The record of one exported MMS object, or None when ``date`` or ``msg_box`` is
    unusable. ``read_data`` gets the ``data/`` file name of a part and returns its bytes."""
    seconds = _int(row.get("date"))
    box = _int(row.get("msg_box"))
    if seconds is None or box is None or box not in Box._value2member_map_:
        return None
    addresses: list[tuple[str, AddressKind]] = []
    sender = _address_from_object(row.get("__sender_address"), AddressKind.FROM)
    if sender is not None:
        addresses.append(sender)
    recipients = row.get("__recipient_addresses")
    for value in recipients if isinstance(recipients, list) else []:
        address = _address_from_object(value, AddressKind.TO)
        if address is not None:
            addresses.append(address)
    parts: list[MmsPart] = []
    part_rows = row.get("__parts")
    for part in part_rows if isinstance(part_rows, list) else []:
        if not isinstance(part, dict):
            continue
        data_path = _optional_str(part.get("_data"))
        parts.append(
            MmsPart(
                content_type=_content_type(_optional_str(part.get("ct"))),
                name=_optional_str(part.get("name")),
                text=_optional_str(part.get("text")),
                data=None if data_path is None else read_data(last_path_segment(data_path)),
                charset=_optional_str(part.get("chset")),
                content_id=_optional_str(part.get("cid")),
                content_location=_optional_str(part.get("cl")),
            )
        )
    read = _int(row.get("read"))
    sub_id = _int(row.get("sub_id"))
    sub = _optional_str(row.get("sub"))
    return Mms(
        date_ms=seconds * 1000,
        box=Box(box),
        addresses=tuple(addresses),
        parts=tuple(parts),
        read=None if read not in (0, 1) else bool(read),
        message_type=_int(row.get("m_type")),
        subject=None
        if sub is None
        else subject_from_provider(sub, _optional_str(row.get("sub_cs"))),
        sub_id=None if sub_id is None or sub_id < 0 else sub_id,
    )


def read_smsie_messages(
    path: Path, *, stats: SmsieMessagesReadStats | None = None
) -> Iterator[Sms | Mms]:
    """Yield the SMS and MMS of an SMS Import / Export archive in file order, one line
    (and one MMS's attachments) at a time. ``thread_id`` and ``android_id`` are None."""
    counts = stats if stats is not None else SmsieMessagesReadStats()
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise UsageError(
            f"{path} is not a ZIP archive: {error}",
            hint="SMS Import / Export (version 2 and later) exports a .zip file.",
        ) from error
    with archive:
        names = set(archive.namelist())

        def read_data(file_name: str) -> bytes | None:
            entry = DATA_DIR + file_name
            if not file_name or entry not in names:
                counts.missing_data += 1
                return None
            return archive.read(entry)

        try:
            raw = archive.open(MESSAGES_ENTRY)
        except KeyError as error:
            raise UsageError(
                f"{path} has no {MESSAGES_ENTRY}",
                hint="Pick the messages archive, not the call log or contacts export.",
            ) from error
        with raw, io.TextIOWrapper(raw, encoding="utf-8", newline="\n") as lines:
            try:
                for line in lines:
                    record = _parse_line(line, counts, read_data)
                    if record is not None:
                        yield record
            except (UnicodeDecodeError, zipfile.BadZipFile, EOFError, zlib.error) as error:
                raise UsageError(
                    f"{path} is damaged: {error}",
                    hint="Copy the archive again from the phone, or export it again.",
                ) from error


def _parse_line(
    line: str, counts: SmsieMessagesReadStats, read_data: Callable[[str], bytes | None]
) -> Sms | Mms | None:
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        counts.invalid_skipped += 1
        return None
    if not isinstance(row, dict):
        counts.invalid_skipped += 1
        return None
    record: Sms | Mms | None
    if "m_type" in row:
        record = mms_from_ndjson_row(row, read_data)
        if record is not None:
            counts.mms += 1
    else:
        record = sms_from_row(row)
        if record is not None:
            counts.sms += 1
    if record is None:
        counts.invalid_skipped += 1
    return record


def read_mms_from_smsie_zip(
    path: Path, *, stats: SmsieMessagesReadStats | None = None
) -> Iterator[Mms]:
    """Only the MMS of an SMS Import / Export archive (SMS are counted in ``stats``)."""
    for record in read_smsie_messages(path, stats=stats):
        if isinstance(record, Mms):
            yield record


# --- SMS Backup & Restore --------------------------------------------------------------

_XML_HEADER = (
    "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
    f"<!--{SMSBAK_COMMENT}. U+EFFF and four hex digits stand for a character XML 1.0"
    " cannot hold; null in address and body is literal text; in other MMS columns null"
    " means absent unless the column is named in smsbak_literal.-->\n"
)


@dataclass
class XmlMessagesReport:
    """What ``write_messages_xml`` wrote."""

    path: Path
    sms: int
    mms: int
    escaped_controls: int


@dataclass
class XmlMessagesReadStats:
    """What the SMS Backup & Restore readers passed over; filled in while iterating.

    ``invalid_skipped`` counts ``<sms>`` without a usable date or type and ``<mms>``
    without a usable date or msg_box; ``bad_data`` parts whose base64 did not decode
    (read with ``data`` None).
    """

    sms: int = 0
    mms: int = 0
    invalid_skipped: int = 0
    bad_data: int = 0
    written_by_smsbak: bool = False


class _Attributes:
    """Builds one element's attributes, escaping and counting, ``null`` for None."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.literal: list[str] = []
        self.escaped = 0

    def add(self, name: str, value: str | None, *, nullable: bool = True) -> None:
        if value is None:
            self.items.append(f'{name}="null"')
            return
        if value == "null" and nullable:
            self.literal.append(name)
        text, escaped = escape_attribute(value)
        self.escaped += escaped
        self.items.append(f'{name}="{text}"')

    def render(self) -> str:
        if self.literal:
            self.items.append(f'smsbak_literal="{" ".join(self.literal)}"')
        return " ".join(self.items)


def _write_mms_element(
    out: IO[bytes], mms: Mms, names: Mapping[str, str], zone: tzinfo | None
) -> int:
    """Write one ``<mms>`` element, part by part; return the count of U+EFFF forms."""
    participants = _participant_addresses(mms)
    head = _Attributes()
    head.add("date", str(mms.date_ms))
    head.add("msg_box", str(int(mms.box)))
    head.add("m_type", str(mms_message_type(mms)))
    head.add("address", "~".join(participants), nullable=False)
    head.add("read", "0" if mms.read is False else "1")
    sub, sub_cs = subject_to_provider(mms.subject) if mms.subject is not None else (None, None)
    head.add("sub", sub)
    head.add("sub_cs", sub_cs)
    head.add("ct_t", MULTIPART_RELATED)
    head.add("seen", "1")
    head.add("locked", "0")
    head.add("date_sent", "0")
    head.add("sub_id", "-1" if mms.sub_id is None else str(mms.sub_id))
    head.add("readable_date", readable_date(mms.date_ms, zone))
    contact = ", ".join(names.get(a) or UNKNOWN_CONTACT for a in participants)
    head.add("contact_name", contact or UNKNOWN_CONTACT, nullable=False)
    out.write(f"  <mms {head.render()}>\n    <parts>\n".encode())
    escaped = head.escaped
    for part, seq in zip(mms.parts, _part_seqs(mms.parts), strict=True):
        attributes = _Attributes()
        attributes.add("seq", str(seq))
        attributes.add("ct", part.content_type)
        attributes.add("name", part.name)
        attributes.add("chset", part.charset)
        attributes.add("cd", None)
        attributes.add("fn", None)
        attributes.add("cid", part.content_id)
        attributes.add("cl", part.content_location)
        attributes.add("ctt_s", None)
        attributes.add("ctt_t", None)
        attributes.add("text", part.text)
        escaped += attributes.escaped
        out.write(f"      <part {attributes.render()}".encode())
        if part.data is not None:
            out.write(b' data="')
            out.write(base64.b64encode(part.data))
            out.write(b'"')
        out.write(b" />\n")
    out.write(b"    </parts>\n    <addrs>\n")
    for address, kind in mms.addresses:
        attributes = _Attributes()
        attributes.add("address", address, nullable=False)
        attributes.add("type", str(int(kind)))
        attributes.add("charset", UTF8_MIB)
        escaped += attributes.escaped
        out.write(f"      <addr {attributes.render()} />\n".encode())
    out.write(b"    </addrs>\n  </mms>\n")
    return escaped


def write_messages_xml(
    path: Path,
    sms: Iterable[Sms] = (),
    mms: Iterable[Mms] = (),
    *,
    contact_names: Mapping[str, str] | None = None,
    backup_date_ms: int | None = None,
    zone: tzinfo | None = None,
) -> XmlMessagesReport:
    """Write SMS and MMS as an SMS Backup & Restore backup its restore imports.

    ``<sms>`` elements are those of ``write_sms_xml``. Streams both kinds: nothing is
    buffered, the ``count`` attribute is filled in at the end. Owner-only and atomic.
    """
    names = contact_names or {}
    backup_date = backup_date_ms
    if backup_date is None:
        backup_date = int(datetime.now().timestamp() * 1000)
    report = XmlMessagesReport(path=path, sms=0, mms=0, escaped_controls=0)
    with private_file_atomically(path, "wb") as out:
        out.write(_XML_HEADER.encode())
        out.write(b"<smses ")
        slot = out.tell()
        out.write(b"count=" + b" " * (_COUNT_SLOT - 6))
        out.write(f' backup_set="{uuid.uuid4()}" backup_date="{backup_date}">\n'.encode())
        for message in sms:
            line, escaped = sms_element(message, names, zone)
            out.write(line.encode("utf-8"))
            report.escaped_controls += escaped
            report.sms += 1
        for record in mms:
            report.escaped_controls += _write_mms_element(out, record, names, zone)
            report.mms += 1
        out.write(b"</smses>\n")
        out.seek(slot)
        out.write(f'count="{report.sms + report.mms}"'.ljust(_COUNT_SLOT).encode())
        out.seek(0, 2)
    return report


def write_sms_xml_with_mms(
    path: Path,
    sms: Iterable[Sms],
    mms: Iterable[Mms],
    *,
    contact_names: Mapping[str, str] | None = None,
    backup_date_ms: int | None = None,
    zone: tzinfo | None = None,
) -> XmlMessagesReport:
    """``write_messages_xml`` with both kinds named."""
    return write_messages_xml(
        path, sms, mms, contact_names=contact_names, backup_date_ms=backup_date_ms, zone=zone
    )


class _MessagesReader:
    """Pull-parser events into ``Sms`` and ``Mms``, each element dropped when done."""

    def __init__(self, path: Path, stats: XmlMessagesReadStats) -> None:
        self.path = path
        self.stats = stats
        self.depth = 0
        self.root: ET.Element | None = None

    def _text(self, value: str | None) -> str:
        """``address`` and ``body``: "null" is literal in smsbak's files, absent elsewhere."""
        if value is None or (value == "null" and not self.stats.written_by_smsbak):
            return ""
        return unescape_text(value)

    def _optional(self, element: ET.Element, name: str) -> str | None:
        value = element.get(name)
        if value is None:
            return None
        if value == "null":
            literal = (element.get("smsbak_literal") or "").split()
            if not (self.stats.written_by_smsbak and name in literal):
                return None
        return unescape_text(value)

    def _sms(self, attrib: Mapping[str, str]) -> Sms | None:
        return sms_from_attributes(attrib, self._text)

    def _mms(self, element: ET.Element) -> Mms | None:
        date_ms = _int(element.get("date"))
        box = _int(element.get("msg_box"))
        if date_ms is None or box is None or box not in Box._value2member_map_:
            return None
        addresses: list[tuple[str, AddressKind]] = []
        addrs = element.find("addrs")
        for addr in addrs.iter("addr") if addrs is not None else ():
            kind = _int(addr.get("type"))
            if kind in AddressKind._value2member_map_:
                addresses.append((self._text(addr.get("address")), AddressKind(kind or 0)))
        if addrs is None:  # only the joined address attribute: who sent it is a guess
            joined = [a for a in self._text(element.get("address")).split("~") if a]
            if box == Box.INBOX and joined:
                addresses = [(joined[0], AddressKind.FROM)]
                addresses += [(a, AddressKind.TO) for a in joined[1:]]
            else:
                addresses = [(INSERT_ADDRESS_TOKEN, AddressKind.FROM)]
                addresses += [(a, AddressKind.TO) for a in joined]
        parts: list[MmsPart] = []
        for part in element.iter("part"):
            data: bytes | None = None
            encoded = part.get("data")
            if encoded is not None and encoded != "null":
                try:
                    data = base64.b64decode(encoded)
                except (binascii.Error, ValueError):
                    self.stats.bad_data += 1
            parts.append(
                MmsPart(
                    content_type=_content_type(self._optional(part, "ct")),
                    name=self._optional(part, "name"),
                    text=self._optional(part, "text"),
                    data=data,
                    charset=self._optional(part, "chset"),
                    content_id=self._optional(part, "cid"),
                    content_location=self._optional(part, "cl"),
                )
            )
        read = (element.get("read") or "").strip()
        sub = self._optional(element, "sub")
        sub_id = _int(element.get("sub_id"))
        return Mms(
            date_ms=date_ms,
            box=Box(box),
            addresses=tuple(addresses),
            parts=tuple(parts),
            read=True if read == "1" else False if read == "0" else None,
            message_type=_int(element.get("m_type")),
            subject=None if sub is None else subject_from_provider(sub, element.get("sub_cs")),
            sub_id=None if sub_id is None or sub_id < 0 else sub_id,
        )

    def handle(self, events: Iterable[tuple[object, ...]]) -> Iterator[Sms | Mms]:
        for entry in events:
            event, item = entry[0], entry[-1]
            if not isinstance(item, ET.Element):
                continue
            if event == "start":
                if self.depth == 0:
                    if item.tag != "smses":
                        raise UsageError(
                            f"{self.path} is not an SMS Backup & Restore message file"
                            f" (its root element is <{item.tag}>, not <smses>)",
                            hint="Pick the sms-*.xml file, not the calls-*.xml one.",
                        )
                    self.root = item
                self.depth += 1
            elif event == "end":
                self.depth -= 1
                if self.depth == 1 and self.root is not None:
                    yield from self._finished(item)
                    self.root.clear()
            elif (
                event == "comment"
                and self.root is None
                and (item.text or "").strip().startswith(SMSBAK_COMMENT)
            ):
                self.stats.written_by_smsbak = True

    def _finished(self, item: ET.Element) -> Iterator[Sms | Mms]:
        record: Sms | Mms | None
        if item.tag == "sms":
            record = self._sms(item.attrib)
            if record is not None:
                self.stats.sms += 1
        elif item.tag == "mms":
            record = self._mms(item)
            if record is not None:
                self.stats.mms += 1
        else:
            return
        if record is None:
            self.stats.invalid_skipped += 1
        else:
            yield record


def read_messages_xml(
    path: Path, *, stats: XmlMessagesReadStats | None = None, chunk_size: int = CHUNK_SIZE
) -> Iterator[Sms | Mms]:
    """Yield the SMS and MMS of an SMS Backup & Restore file (or one smsbak wrote) in
    file order, streaming: one element in memory at a time. ``thread_id`` and
    ``android_id`` are None. A malformed file raises ``UsageError`` where it breaks."""
    counts = stats if stats is not None else XmlMessagesReadStats()
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end", "comment"))
    reader = _MessagesReader(path, counts)
    try:
        with path.open("rb") as handle:
            for data in fix_char_refs(iter(partial(handle.read, chunk_size), b"")):
                parser.feed(data)
                yield from reader.handle(parser.read_events())
            parser.close()
            yield from reader.handle(parser.read_events())
    except ET.ParseError as error:
        raise UsageError(
            f"{path} is not a well-formed SMS Backup & Restore file: {error}",
            hint="The file may be truncated; copy it again from the phone.",
        ) from error
    if reader.root is None:
        raise UsageError(f"{path} holds no <smses> element", hint="Is it an empty file?")


def read_mms_xml(
    path: Path, *, stats: XmlMessagesReadStats | None = None, chunk_size: int = CHUNK_SIZE
) -> Iterator[Mms]:
    """Only the MMS of an SMS Backup & Restore file (SMS are counted in ``stats``)."""
    for record in read_messages_xml(path, stats=stats, chunk_size=chunk_size):
        if isinstance(record, Mms):
            yield record
