"""SMS Import / Export (github.com/tmo1/sms-ie): its messages ZIP and its call-log JSON,
read streaming and written so that its import takes them.

Messages: a ZIP
---------------
``messages.ndjson`` holds one JSON object per line, SMS first, then MMS, every column
value a JSON *string* (``cursor.getString``). SMS objects hold the ``content://sms``
columns that are not null plus ``__display_name``; an object is an MMS when it has
``m_type``: the ``content://mms`` columns (``date`` in *seconds*, ``msg_box``, ...),
``__sender_address`` (an address object), ``__recipient_addresses`` (an array of them)
and ``__parts`` (part rows in ``seq`` order). A part whose ``_data`` is set has its
bytes in the entry ``data/`` + the last path segment of ``_data``.

What the app's import (``ImportExportMessages.kt``) does, and what follows for the
writer: it reads the entries in order, stops at ``messages.ndjson``, imports its lines,
and only then reads the ``data/`` entries that *follow* it, so ``messages.ndjson`` is
written first and the attachments after it (spooled to a temporary file meanwhile: one
message in memory at a time). It copies the columns its phone knows (never ``_id``,
``thread_id``, ``_data``), re-maps old ``thread_id`` values (we write none, so every
message joins the thread of its address), resets ``sub_id`` to -1 and reads values with
``getString`` (a JSON null would become the text "null": we leave absent columns out).
``date_sent`` is written ``0`` as Android does for old rows, ``seen`` ``1`` so a restore
raises no notifications, unknown ``read`` as ``1``. Our part files are named
``PART_<n>_<safe name>``, unique and safe for ``Uri.getLastPathSegment``.
Org.json leaves U+2028 and U+2029 unescaped inside strings: lines are split on ``\\n``
only. A lone surrogate (not valid UTF-8) makes us write that one line with ASCII
escapes, which Java's reader turns back into the same UTF-16 unit.

A ZIP from elsewhere is hostile: before anything is read, the archive is refused when
it has more than ``MAX_MEMBERS`` entries (counted from its end record, before
``zipfile`` builds one object per entry), a name that is absolute or climbs out with
``..``, a name twice, an entry larger than its limit or one that claims to expand more
than ``MAX_RATIO`` times (a zip bomb). ``zipfile`` never hands out more bytes than an
entry declares, so the checked sizes bound memory; a line of ``messages.ndjson`` is
read with a bound too.

Call log: a JSON array
----------------------
``calls-YYYY-MM-DD.json``, written with Android's ``JsonWriter`` indented by two
spaces: one object per ``content://call_log/calls`` row (string values) plus
``display_name``. Import reads every value with ``nextString()`` (a null, boolean or
nested value aborts it), copies the call-log columns, and skips voicemail
(``type`` 4): a restore through it must say so. We write ``number`` always (empty for
an unknown caller, presentation "unknown"), ``date``, ``duration``, ``type``, ``new``
``0`` and ``is_read`` ``1`` (no notification), the name as ``name`` and
``display_name``; nothing we do not know. The reader streams the array element by
element.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import chain
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

from smsbak.errors import DamagedFileError, UsageError
from smsbak.formats.common import (
    MULTIPART_RELATED,
    UTF8_MIB,
    FileRecord,
    ReadStats,
    first_from,
    part_content_type,
    part_seqs,
    subject_from_provider,
    subject_to_provider,
    to_int,
)
from smsbak.formats.sbr import CallsWriteReport, presentation
from smsbak.mime import mms_message_type
from smsbak.model import AddressKind, Box, Call, CallType, Mms, MmsPart, Sms
from smsbak.paths import private_file_atomically

MESSAGES_ENTRY = "messages.ndjson"
DATA_DIR = "data/"
ANDROID_PARTS_DIR = "/data/user_de/0/com.android.providers.telephony/app_parts/"
"""Where Android keeps part files; only the last segment of ``_data`` matters on import."""

MAX_MEMBERS = 500_000
"""Entries in one archive: more than a phone with 300,000 pictures exports; zipfile
holds an object for each, so this bounds what opening the archive costs."""
MAX_MESSAGES_BYTES = 64 * 1024**3
"""``messages.ndjson`` uncompressed: text only (attachments are separate entries)."""
MAX_ATTACHMENT_BYTES = 256 * 1024**2
"""One ``data/`` file uncompressed; MMS carriers cap messages at a few MB."""
MAX_RATIO = 200
"""Uncompressed over compressed size of an entry larger than ``RATIO_FLOOR``: JSON text
shrinks about ten times, pictures not at all, a zip bomb a thousand times."""
RATIO_FLOOR = 1024 * 1024
MAX_LINE_BYTES = 64 * 1024 * 1024
"""One line of ``messages.ndjson``: an MMS's columns and part rows, never its bytes."""
MAX_ELEMENT_CHARS = 16 * 1024 * 1024
"""A call-log entry is a few hundred characters; an unfinished one this long means
the file is broken, and reading on would only fill memory before saying so."""
CHUNK_SIZE = 256 * 1024

_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_COPY_CHUNK = 64 * 1024
_WHITESPACE = " \t\n\r"
_INDENT = "  "


@dataclass
class MessagesZipReport:
    """What ``write_messages_zip`` wrote."""

    path: Path
    sms: int
    mms: int
    attachments: int
    attachment_bytes: int


# --- rows --------------------------------------------------------------------------------


def sms_row(sms: Sms, display_name: str | None = None) -> dict[str, str]:
    """The JSON object SMS Import / Export would have exported for ``sms``."""
    row: dict[str, str] = {
        "address": sms.address,
        "date": str(sms.date_ms),
        "date_sent": "0",
    }
    if sms.box is Box.INBOX:
        row["protocol"] = "0"
    row["read"] = "0" if sms.read is False else "1"
    row["status"] = "-1"
    row["type"] = str(int(sms.box))
    if sms.box is Box.INBOX:
        row["reply_path_present"] = "0"
    row["body"] = sms.body
    row["locked"] = "0"
    row["sub_id"] = "-1"
    row["error_code"] = "0"
    row["seen"] = "1"
    if display_name:
        row["__display_name"] = display_name
    return row


def _str(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return str(value)


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def sms_from_row(row: Mapping[str, object]) -> Sms | None:
    """The record of one exported SMS object, or None when date or type is unusable."""
    date_ms = to_int(row.get("date"))
    box = to_int(row.get("type"))
    if date_ms is None or box is None or box not in Box._value2member_map_:
        return None
    read = to_int(row.get("read"))
    return Sms(
        address=_str(row.get("address")),
        body=_str(row.get("body")),
        date_ms=date_ms,
        box=Box(box),
        read=None if read not in (0, 1) else bool(read),
    )


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
    ``data/`` file name of part i, None for parts without bytes. A further FROM address
    (never seen on a phone) goes into ``__recipient_addresses`` with its type 137."""
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
    sender = first_from(mms)
    if sender is not None:
        address, kind = mms.addresses[sender]
        row["__sender_address"] = _address_object(address, kind, names)
    row["__recipient_addresses"] = [
        _address_object(address, kind, names)
        for index, (address, kind) in enumerate(mms.addresses)
        if index != sender
    ]
    parts: list[dict[str, str]] = []
    for part, seq, data_name in zip(mms.parts, part_seqs(mms.parts), data_names, strict=True):
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


def last_path_segment(data_path: str) -> str:
    """What Android's ``Uri.parse(_data).getLastPathSegment()`` gives: no query or
    fragment, empty segments skipped, percent-escapes decoded."""
    segments = [s for s in urlsplit(data_path).path.split("/") if s]
    return unquote(segments[-1]) if segments else ""


def _address_from_object(value: object, default: AddressKind) -> tuple[str, AddressKind] | None:
    if not isinstance(value, dict):
        return None
    kind = to_int(value.get("type"))
    chosen = default
    if kind is not None and kind in AddressKind._value2member_map_:
        chosen = AddressKind(kind)
    return _optional_str(value.get("address")) or "", chosen


def _display_names(row: Mapping[str, object]) -> dict[str, str]:
    """``__display_name`` of each address object of an MMS row."""
    names: dict[str, str] = {}
    recipients = row.get("__recipient_addresses")
    objects = [row.get("__sender_address"), *(recipients if isinstance(recipients, list) else [])]
    for value in objects:
        if isinstance(value, dict):
            address, name = value.get("address"), value.get("__display_name")
            if isinstance(address, str) and isinstance(name, str) and name:
                names[address] = name
    return names


def mms_from_ndjson_row(
    row: Mapping[str, object],
    read_data: Callable[[str], bytes | None],
) -> Mms | None:
    """The record of one exported MMS object, or None when ``date`` or ``msg_box`` is
    unusable. ``read_data`` gets the ``data/`` file name of a part and returns its bytes."""
    seconds = to_int(row.get("date"))
    box = to_int(row.get("msg_box"))
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
                content_type=part_content_type(_optional_str(part.get("ct"))),
                name=_optional_str(part.get("name")),
                text=_optional_str(part.get("text")),
                data=None if data_path is None else read_data(last_path_segment(data_path)),
                charset=_optional_str(part.get("chset")),
                content_id=_optional_str(part.get("cid")),
                content_location=_optional_str(part.get("cl")),
            )
        )
    read = to_int(row.get("read"))
    sub_id = to_int(row.get("sub_id"))
    sub = _optional_str(row.get("sub"))
    return Mms(
        date_ms=seconds * 1000,
        box=Box(box),
        addresses=tuple(addresses),
        parts=tuple(parts),
        read=None if read not in (0, 1) else bool(read),
        message_type=to_int(row.get("m_type")),
        subject=None
        if sub is None
        else subject_from_provider(sub, _optional_str(row.get("sub_cs"))),
        sub_id=None if sub_id is None or sub_id < 0 else sub_id,
    )


# --- writing messages ------------------------------------------------------------------


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


def _copy_entry(archive: zipfile.ZipFile, name: str, source: IO[bytes], size: int) -> None:
    with archive.open(_zip_info(name, size), "w") as entry:
        left = size
        while left:
            data = source.read(min(_COPY_CHUNK, left))
            if not data:
                raise OSError(f"spool file ended early while writing {name}")
            entry.write(data)
            left -= len(data)


def write_messages_zip(
    path: Path,
    sms: Iterable[Sms] = (),
    mms: Iterable[Mms] = (),
    *,
    contact_names: Mapping[str, str] | None = None,
) -> MessagesZipReport:
    """Write SMS and MMS as an archive SMS Import / Export imports (Android 6+, as default
    SMS app): ``messages.ndjson`` (SMS, then MMS) first, the attachments under ``data/``
    after it, as that app's import needs them. Owner-only and atomic; lines and
    attachment bytes are spooled to temporary files beside the target, so memory holds
    one message at a time."""
    return write_message_stream_zip(path, chain(sms, mms), contact_names=contact_names)


def write_message_stream_zip(
    path: Path,
    messages: Iterable[Sms | Mms],
    *,
    contact_names: Mapping[str, str] | None = None,
) -> MessagesZipReport:
    """``write_messages_zip`` for one stream of SMS and MMS mixed, read once: the MMS
    lines wait in a file of their own and follow the SMS lines, so the archive is byte
    for byte what ``write_messages_zip`` writes for the same messages."""
    names = contact_names or {}
    report = MessagesZipReport(path=path, sms=0, mms=0, attachments=0, attachment_bytes=0)
    files: list[tuple[str, int]] = []
    with (
        private_file_atomically(path, "wb") as handle,
        zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        tempfile.TemporaryFile(prefix=f".{path.name}.", dir=path.parent) as lines,
        tempfile.TemporaryFile(prefix=f".{path.name}.", dir=path.parent) as mms_lines,
        tempfile.TemporaryFile(prefix=f".{path.name}.", dir=path.parent) as attachments,
    ):
        for message in messages:
            if isinstance(message, Sms):
                lines.write(_json_line(sms_row(message, names.get(message.address))))
                report.sms += 1
                continue
            data_names: list[str | None] = []
            for part in message.parts:
                if part.data is None:
                    data_names.append(None)
                    continue
                report.attachments += 1
                file_name = _part_file_name(report.attachments, part)
                attachments.write(part.data)
                files.append((file_name, len(part.data)))
                report.attachment_bytes += len(part.data)
                data_names.append(file_name)
            mms_lines.write(_json_line(mms_ndjson_row(message, data_names, names)))
            report.mms += 1
        mms_lines.seek(0)
        shutil.copyfileobj(mms_lines, lines, _COPY_CHUNK)
        size = lines.tell()
        lines.seek(0)
        _copy_entry(archive, MESSAGES_ENTRY, lines, size)
        attachments.seek(0)
        for file_name, length in files:
            _copy_entry(archive, DATA_DIR + file_name, attachments, length)
    return report


# --- reading messages ------------------------------------------------------------------


def _hostile(path: Path, problem: str) -> UsageError:
    return UsageError(
        f"{path} is refused: {problem}",
        hint="SMS Import / Export never writes such an archive; export it again from the"
        " app, or unpack and check it yourself.",
    )


def _end_record_count(path: Path) -> int | None:
    """How many entries the ZIP's end record declares (ZIP64 too); None without one."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        back = min(size, 22 + 65535 + 20 + 56)
        handle.seek(size - back)
        tail = handle.read(back)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    count: int = struct.unpack_from("<H", tail, at + 10)[0]
    if count == 0xFFFF:
        at64 = tail.rfind(b"PK\x06\x06", 0, at)
        if at64 >= 0 and at64 + 40 <= len(tail):
            count = struct.unpack_from("<Q", tail, at64 + 32)[0]
    return count


def _unsafe_name(name: str) -> bool:
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    return any(segment == ".." for segment in re.split(r"[/\\]", name))


def open_messages_zip(path: Path) -> zipfile.ZipFile:
    """The archive, once its member count, names and sizes passed the checks above."""
    try:
        count = _end_record_count(path)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from error
    if count is not None and count > MAX_MEMBERS:
        raise _hostile(path, f"it declares {count} entries (at most {MAX_MEMBERS} are read)")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
        raise DamagedFileError(
            f"{path} is not a ZIP archive, or a damaged one ({error})",
            hint="It may be truncated (a ZIP is read from its end); copy it again, or export"
            " it again with SMS Import / Export.",
            position="the end of the archive",
        ) from error
    try:
        _check_members(path, archive.infolist())
    except UsageError:
        archive.close()
        raise
    return archive


def _check_members(path: Path, members: list[zipfile.ZipInfo]) -> None:
    if len(members) > MAX_MEMBERS:
        raise _hostile(path, f"it holds {len(members)} entries (at most {MAX_MEMBERS})")
    seen: set[str] = set()
    for info in members:
        if _unsafe_name(info.filename):
            raise _hostile(path, f"the entry name {info.filename!r} points outside the archive")
        if info.filename in seen:
            raise _hostile(path, f"the entry {info.filename!r} is in it twice")
        seen.add(info.filename)
        limit = MAX_MESSAGES_BYTES if info.filename == MESSAGES_ENTRY else MAX_ATTACHMENT_BYTES
        if info.file_size > limit:
            raise _hostile(
                path, f"the entry {info.filename!r} claims {info.file_size} bytes (limit {limit})"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and ratio > MAX_RATIO:
            raise _hostile(
                path,
                f"the entry {info.filename!r} expands {ratio:.0f} times (a zip bomb; at most"
                f" {MAX_RATIO})",
            )


def _lines(raw: IO[bytes]) -> Iterator[bytes]:
    """The lines of ``raw`` split on LF only, each bounded by ``MAX_LINE_BYTES``."""
    while True:
        line = raw.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES:
            raise ValueError(f"a line longer than {MAX_LINE_BYTES} bytes")
        yield line


def read_smsie_messages(
    path: Path,
    *,
    stats: ReadStats | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[FileRecord]:
    """The SMS and MMS of an SMS Import / Export archive in file order, one line (and one
    MMS's attachments) at a time, with the names the archive gives. ``thread_id`` and
    ``android_id`` are None. A line that is not a usable record is counted and skipped;
    an archive that breaks while reading raises :class:`DamagedFileError` with the line,
    after the records before it were yielded."""
    counts = stats if stats is not None else ReadStats()
    with open_messages_zip(path) as archive:
        names = {info.filename for info in archive.infolist()}

        def read_data(file_name: str) -> bytes | None:
            entry = DATA_DIR + file_name
            if not file_name or entry not in names:
                counts.missing_data += 1
                counts.note(f"line {number}: an MMS part whose {entry} is not in the archive")
                return None
            return archive.read(entry)

        if MESSAGES_ENTRY not in names:
            raise UsageError(
                f"{path} has no {MESSAGES_ENTRY}",
                hint="Pick the messages archive, not the call log or contacts export.",
            )
        number = 0
        # progress in file bytes: the part of messages.ndjson read, scaled to the archive
        scale = path.stat().st_size / max(archive.getinfo(MESSAGES_ENTRY).file_size, 1)
        try:
            with archive.open(MESSAGES_ENTRY) as raw:
                for number, line in enumerate(_lines(raw), start=1):
                    if on_bytes is not None and number % 64 == 0:
                        on_bytes(int(raw.tell() * scale))
                    found = _parse_line(line, number, counts, read_data)
                    if found is not None:
                        counts.count(found.record)
                        yield found
        except (
            UnicodeDecodeError,
            zipfile.BadZipFile,
            EOFError,
            zlib.error,
            ValueError,
            OSError,
        ) as error:
            where = f"{MESSAGES_ENTRY} line {number + 1}"
            raise DamagedFileError(
                f"{path} is damaged at {where} ({error}); what came before it was read",
                hint="Copy the archive again from the phone, or export it again.",
                position=where,
            ) from error


def _parse_line(
    line: bytes,
    number: int,
    counts: ReadStats,
    read_data: Callable[[str], bytes | None],
) -> FileRecord | None:
    if not line.strip():
        return None
    try:
        row = json.loads(line.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        counts.skip(f"{MESSAGES_ENTRY} line {number}: not a JSON object")
        return None
    if not isinstance(row, dict):
        counts.skip(f"{MESSAGES_ENTRY} line {number}: not a JSON object")
        return None
    position = f"{MESSAGES_ENTRY} line {number}"
    if "m_type" in row:
        missing_before = counts.missing_data
        mms = mms_from_ndjson_row(row, read_data)
        if mms is None:
            counts.skip(f"{position}: an MMS without a usable date or msg_box")
            return None
        missing = counts.missing_data - missing_before
        problem = f"{missing} attachment(s) not in the archive" if missing else None
        return FileRecord(mms, _display_names(row), position, problem)
    sms = sms_from_row(row)
    if sms is None:
        counts.skip(f"{position}: an SMS without a usable date or type")
        return None
    name = row.get("__display_name")
    names = {sms.address: name} if isinstance(name, str) and name else {}
    return FileRecord(sms, names, position)


# --- the call log ------------------------------------------------------------------------


def call_row(call: Call, display_name: str | None = None) -> dict[str, str]:
    """The JSON object SMS Import / Export would have exported for ``call``."""
    row: dict[str, str] = {
        "number": call.number,
        "presentation": str(presentation(call.number)),
        "date": str(call.date_ms),
        "duration": str(call.duration_s),
        "type": str(int(call.type)),
        "new": "0",
    }
    if call.sim_id is not None:
        row["subscription_id"] = call.sim_id
    if display_name:
        row["name"] = display_name
    row["is_read"] = "1"
    if display_name:
        row["display_name"] = display_name
    return row


def _element(row: Mapping[str, str]) -> bytes:
    """``row`` as ``JsonWriter`` with a two-space indent puts it inside the array."""
    text = json.dumps(row, ensure_ascii=False, indent=_INDENT)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only \u escapes can carry it
        data = json.dumps(row, ensure_ascii=True, indent=_INDENT).encode("ascii")
    # JSON strings hold no raw newline, so every line break here is layout.
    return b"\n" + _INDENT.encode() + data.replace(b"\n", b"\n" + _INDENT.encode())


def write_calls_json(
    path: Path,
    calls: Iterable[Call],
    *,
    contact_names: Mapping[str, str] | None = None,
) -> CallsWriteReport:
    """Write ``calls`` as a call log SMS Import / Export imports (it skips voicemail),
    laid out byte for byte as that app writes it. Streams; owner-only and atomic."""
    names = contact_names or {}
    count = 0
    with private_file_atomically(path, "wb") as out:
        out.write(b"[")
        for call in calls:
            if count:
                out.write(b",")
            out.write(_element(call_row(call, names.get(call.number))))
            count += 1
        out.write(b"\n]" if count else b"]")
    return CallsWriteReport(path=path, count=count)


def call_from_row(row: Mapping[str, object]) -> Call | None:
    """The record of one exported call-log object, or None when it is unusable.

    ``date`` and ``type`` must be integers (as strings or numbers) and ``type`` one
    smsbak models; ``duration`` may be missing (0) but not garbage.
    """
    date_ms = to_int(row.get("date"))
    call_type = to_int(row.get("type"))
    if date_ms is None or call_type is None or call_type not in CallType._value2member_map_:
        return None
    duration_s = to_int(row["duration"]) if row.get("duration") is not None else 0
    if duration_s is None:
        return None
    number = row.get("number")
    sim_id = row.get("subscription_id")
    return Call(
        number=number if isinstance(number, str) else "" if number is None else str(number),
        date_ms=date_ms,
        duration_s=duration_s,
        type=CallType(call_type),
        sim_id=None if sim_id is None or sim_id in ("", "null") else str(sim_id),
    )


class _ArrayReader:
    """Hands out the elements of one top-level JSON array, reading the file in chunks.

    Python's ``json`` has no streaming parser, so each element is decoded with
    ``raw_decode`` from a window of the file. When an element fails to decode, or
    ends exactly at the window's end (a number could go on), the window grows, by
    at least its own size so a long element costs linear time, and decoding is
    tried again; only at the end of the file, or past ``MAX_ELEMENT_CHARS``, is
    the failure the file's fault.
    """

    def __init__(self, path: Path, chunk_size: int) -> None:
        self.path = path
        self.chunk_size = chunk_size
        self.decoder = json.JSONDecoder()
        self.buffer = ""
        self.pos = 0
        self.consumed = 0  # characters dropped from the front of the buffer
        self.eof = False

    @property
    def offset(self) -> int:
        return self.consumed + self.pos

    def _fill(self, handle: Iterator[str]) -> bool:
        """Read more; False at the end of the file."""
        if self.eof:
            return False
        self.consumed += self.pos
        pending = self.buffer[self.pos :]
        wanted = max(self.chunk_size, len(pending))
        pieces = [pending]
        got = 0
        for piece in handle:
            pieces.append(piece)
            got += len(piece)
            if got >= wanted:
                break
        else:
            self.eof = True
        self.buffer = "".join(pieces)
        self.pos = 0
        return got > 0

    def _broken(self, what: str, at: int | None = None) -> DamagedFileError:
        offset = self.consumed + (self.pos if at is None else at)
        where = f"character {offset}"
        return DamagedFileError(
            f"{self.path} is not a well-formed SMS Import / Export call log:"
            f" {what} at {where}; what came before it was read",
            hint="The file may be truncated; copy it again from the phone, or export it again.",
            position=where,
        )

    def _next_char(self, handle: Iterator[str]) -> str | None:
        """The next character that is not whitespace (not consumed), None at the end."""
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self._fill(handle):
                return None

    def elements(self, handle: Iterator[str]) -> Iterator[object]:
        first = self._next_char(handle)
        if first is None:
            raise UsageError(
                f"{self.path} is empty (no JSON array)",
                hint="Pick the calls-*.json file SMS Import / Export wrote.",
            )
        if first != "[":
            raise UsageError(
                f"{self.path} is not an SMS Import / Export call log (no JSON array)",
                hint="Pick the calls-*.json file, not the messages or contacts export.",
            )
        self.pos += 1
        if self._next_char(handle) == "]":
            return
        while True:
            yield self._decode(handle)
            separator = self._next_char(handle)
            if separator == "]":
                return
            if separator != ",":
                raise self._broken("expected ',' or ']'" if separator else "unexpected end")
            self.pos += 1
            self._next_char(handle)

    def _decode(self, handle: Iterator[str]) -> object:
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as error:
                if self._grow(handle):
                    continue
                raise self._broken(error.msg, error.pos) from error
            if end == len(self.buffer) and self._grow(handle):
                continue
            self.pos = end
            return value

    def _grow(self, handle: Iterator[str]) -> bool:
        if len(self.buffer) - self.pos > MAX_ELEMENT_CHARS:
            return False
        return self._fill(handle)


def read_smsie_calls(
    path: Path,
    *,
    stats: ReadStats | None = None,
    chunk_size: int = CHUNK_SIZE,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[FileRecord]:
    """The calls of an SMS Import / Export call log, element by element, with the
    ``display_name`` (or cached ``name``) it gives. Voicemail entries are yielded like
    any other (that app skips them only on import). Elements that are not objects or
    lack a usable ``date`` or ``type`` are counted and skipped. A file that breaks
    raises :class:`DamagedFileError` where it breaks, after the calls before it."""
    counts = stats if stats is not None else ReadStats()
    reader = _ArrayReader(path, chunk_size)
    index = 0
    try:
        # utf-8-sig: a byte-order mark that an editor added is not part of the JSON
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for index, element in enumerate(
                reader.elements(iter(partial(handle.read, chunk_size), "")), start=1
            ):
                if on_bytes is not None:
                    on_bytes(reader.offset)  # characters: near enough to bytes for progress
                call = call_from_row(element) if isinstance(element, dict) else None
                if call is None:
                    counts.skip(f"entry {index}: not a call with a usable date, type, duration")
                    continue
                assert isinstance(element, dict)
                name = element.get("display_name") or element.get("name")
                names = {call.number: name} if isinstance(name, str) and name else {}
                counts.count(call)
                yield FileRecord(call, names, f"entry {index}")
    except UnicodeDecodeError as error:
        where = f"entry {index + 1}"
        raise DamagedFileError(
            f"{path} is not UTF-8 text at {where}: {error}",
            hint="Pick the calls-*.json file SMS Import / Export wrote.",
            position=where,
        ) from error


def read_messages_zip(path: Path, *, stats: ReadStats | None = None) -> Iterator[Sms | Mms]:
    """The SMS and MMS of an SMS Import / Export archive, without the names."""
    for found in read_smsie_messages(path, stats=stats):
        assert isinstance(found.record, Sms | Mms)
        yield found.record


def read_calls_json(
    path: Path, *, stats: ReadStats | None = None, chunk_size: int = CHUNK_SIZE
) -> Iterator[Call]:
    """The calls of an SMS Import / Export call log, without the names."""
    for found in read_smsie_calls(path, stats=stats, chunk_size=chunk_size):
        assert isinstance(found.record, Call)
        yield found.record
