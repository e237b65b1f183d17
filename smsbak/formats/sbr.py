"""SMS Backup & Restore (SyncTech): its XML files for messages and for the call log,
read streaming and written so that its restore imports them.

The files
---------
Messages: ``<smses count="N" backup_set backup_date>`` holding ``<sms .../>`` (raw
``content://sms`` columns: ``date`` ms, ``type`` 1..6, ``read``, ``sub_id``...) and
``<mms date="ms" msg_box m_type address read ...>`` with ``<parts><part seq ct name
chset cd fn cid cl ctt_s ctt_t text data/></parts>`` (``data`` base64) and
``<addrs><addr address type charset/></addrs>``; ``address`` joins the participants
with ``~``. Calls: ``<calls count="N">`` of ``<call number duration date type
presentation ... readable_date contact_name/>`` (``duration`` seconds, ``date`` ms,
``type`` 1 incoming .. 6 blocked). Absent values are the literal ``null``;
``readable_date`` is for people and ignored; ``contact_name`` (``(Unknown)`` when there
is none, ``A, B`` for a group) is handed on as the name the file gives an address.
MMS dates are ms here (the provider keeps seconds).

One pull parser
---------------
Every reader runs on ``_events``: expat fed in chunks, each element handed on and
forgotten, so memory holds one element (one MMS with its attachments) whatever the
file's size. Files come from elsewhere and are hostile until read: a DOCTYPE is
refused where it starts, before expat could expand an entity or name an external one
(SMS Backup & Restore never writes one), and an undefined entity is an error. A
file that breaks partway raises :class:`DamagedFileError` with the line and column,
after everything before the damage was yielded.

Characters XML cannot carry
---------------------------
XML 1.0 forbids C0 controls other than tab, LF and CR, U+FFFE, U+FFFF and surrogates,
even as character references, yet SMS bodies do contain them (binary SMS, broken
encoders, a multipart message cut inside an emoji). So the writer puts each such
character as the private-use character U+EFFF followed by four upper-case hex digits
of its code point, and a literal U+EFFF as U+EFFF ``EFFF`` so the scheme stays
reversible; ``escaped_controls`` in the write reports counts them. Tab, LF and CR
are legal, but attribute-value normalisation would turn them into spaces, so they are
written ``&#9;`` ``&#10;`` ``&#13;``. SMS Backup & Restore writes characters outside
the BMP as two UTF-16 surrogate references (``&#55357;&#56860;``) and forbidden
characters as references or raw bytes, all of which expat rejects: before parsing,
``fix_char_refs`` rewrites the byte stream, chunk by chunk, a surrogate pair into the
real character in UTF-8 and any other forbidden character into the U+EFFF form, so the
reader hands back exactly what the phone had. The rewrite assumes an ASCII-compatible
encoding (UTF-8, what the app writes) and keeps every line break, so line numbers in
errors are those of the file.

``null``
--------
Inside a file smsbak wrote (marked by its opening comment) ``null`` in an SMS's
``address`` or ``body`` and a call's ``number`` is the text "null"; an MMS column
whose value really is "null" is named in a ``smsbak_literal`` attribute of its element
(other readers ignore the attribute). In anybody else's file ``null`` means absent.

Writing
-------
Both writers stream to an owner-only temporary file that replaces the target only
when complete; the ``count`` attribute, which must come first but is known only at
the end, is written with padding spaces after it (legal between attributes) and
filled in last. Every SMS comes before every MMS; a stream of both mixed keeps its
MMS in an unnamed file beside the target until the last SMS is written. SMIL parts
are kept: the files restore into a phone, which wants its layout. Unknown ``read``
is written as read (restored history should not look new).
"""

from __future__ import annotations

import base64
import binascii
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import partial
from itertools import chain
from pathlib import Path
from typing import IO
from xml.parsers import expat

from smsbak.errors import DamagedFileError, UsageError
from smsbak.formats.common import (
    MULTIPART_RELATED,
    UTF8_MIB,
    FileRecord,
    ReadStats,
    part_content_type,
    part_seqs,
    participant_addresses,
    subject_from_provider,
    subject_to_provider,
    to_int,
)
from smsbak.mime import INSERT_ADDRESS_TOKEN, mms_message_type
from smsbak.model import AddressKind, Box, Call, CallType, Mms, MmsPart, Sms
from smsbak.paths import private_file_atomically

ESCAPE_MARK = "\uefff"
"""Starts the four-hex-digit form of a character XML 1.0 cannot hold."""

SMSBAK_COMMENT = "File created by smsbak"
"""Start of the comment that tells smsbak's reader the file is its own."""

UNKNOWN_CONTACT = "(Unknown)"
CHUNK_SIZE = 256 * 1024
MAX_ELEMENT_BYTES = 256 * 1024 * 1024
"""Bytes the parser may take in without finishing a tag: expat holds a start tag whole
(an MMS part's base64 is one attribute), so this bounds memory on a hostile file."""
MESSAGES_ROOT = "smses"
CALLS_ROOT = "calls"

PRESENTATION_ALLOWED = 1
"""``CallLog.Calls.PRESENTATION_ALLOWED``: the number may be shown."""
PRESENTATION_UNKNOWN = 3
"""``CallLog.Calls.PRESENTATION_UNKNOWN``: the network gave no number."""

_COPY_CHUNK = 64 * 1024
_HOLD = 64  # bytes kept back at a chunk's end: more than two of the longest tokens
_COUNT_SLOT = 32  # characters reserved for count="N" and the padding after it
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MESSAGES_HEADER = (
    "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
    f"<!--{SMSBAK_COMMENT}. U+EFFF and four hex digits stand for a character XML 1.0"
    " cannot hold; null in address and body is literal text; in other MMS columns null"
    " means absent unless the column is named in smsbak_literal.-->\n"
)
_CALLS_HEADER = (
    "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
    f"<!--{SMSBAK_COMMENT}. U+EFFF and four hex digits stand for a character XML 1.0"
    " cannot hold; null in number is literal text.-->\n"
)


@dataclass
class XmlMessagesReport:
    """What ``write_messages_xml`` wrote, for the restore report."""

    path: Path
    sms: int
    mms: int
    escaped_controls: int


@dataclass
class CallsWriteReport:
    """What a call-log writer (of either format) wrote, for the restore report."""

    path: Path
    count: int


def _is_forbidden(code_point: int) -> bool:
    """True for what XML 1.0 cannot hold, not even as a character reference."""
    return (
        (code_point < 0x20 and code_point not in (0x09, 0x0A, 0x0D))
        or 0xD800 <= code_point <= 0xDFFF
        or code_point in (0xFFFE, 0xFFFF)
    )


def presentation(number: str) -> int:
    """Android's presentation for ``number``: unknown for an empty one, else allowed.

    Android stores a hidden or missing caller id as an empty number with a
    presentation other than "allowed"; an empty number marked "allowed" would show as
    a blank row. smsbak does not know whether it was withheld or unknown: unknown.
    """
    return PRESENTATION_ALLOWED if number else PRESENTATION_UNKNOWN


# --- writing ---------------------------------------------------------------------------

_ATTR_SPECIAL = re.compile(
    '[&<>"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff' + ESCAPE_MARK + "]"
)
_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "\t": "&#9;",
    "\n": "&#10;",
    "\r": "&#13;",
}


def escape_attribute(text: str) -> tuple[str, int]:
    """``text`` as a double-quoted attribute value, and how many U+EFFF forms it needed."""
    escaped = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal escaped
        char = match.group()
        entity = _ENTITIES.get(char)
        if entity is not None:
            return entity
        escaped += 1
        return f"{ESCAPE_MARK}{ord(char):04X}"

    return _ATTR_SPECIAL.sub(replace, text), escaped


def readable_date(date_ms: int, zone: tzinfo | None = None) -> str:
    """``Feb 7, 2020 10:18:36 AM`` as SMS Backup & Restore shows dates; only for people.

    Month names are fixed English so the output does not depend on the locale.
    """
    try:
        if zone is None:
            moment = datetime.fromtimestamp(date_ms // 1000)
        else:
            moment = datetime.fromtimestamp(date_ms // 1000, tz=zone)
    except (OverflowError, OSError, ValueError):
        return "null"
    hour = moment.hour % 12 or 12
    noon = "AM" if moment.hour < 12 else "PM"
    return (
        f"{_MONTHS[moment.month - 1]} {moment.day}, {moment.year} "
        f"{hour}:{moment.minute:02d}:{moment.second:02d} {noon}"
    )


def sms_element(sms: Sms, names: Mapping[str, str], zone: tzinfo | None) -> tuple[str, int]:
    """One ``<sms>`` line as SMS Backup & Restore writes it, and how many characters
    needed smsbak's private escape (see the module docstring)."""
    address, escaped_address = escape_attribute(sms.address)
    body, escaped_body = escape_attribute(sms.body)
    name, escaped_name = escape_attribute(names.get(sms.address) or UNKNOWN_CONTACT)
    read = "0" if sms.read is False else "1"
    line = (
        f'  <sms protocol="0" address="{address}" date="{sms.date_ms}"'
        f' type="{int(sms.box)}" subject="null" body="{body}" toa="null"'
        f' sc_toa="null" service_center="null" read="{read}" status="-1"'
        f' locked="0" date_sent="0" sub_id="{-1 if sms.sub_id is None else sms.sub_id}"'
        f' readable_date="{readable_date(sms.date_ms, zone)}"'
        f' contact_name="{name}" />\n'
    )
    return line, escaped_address + escaped_body + escaped_name


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
    participants = participant_addresses(mms)
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
    for part, seq in zip(mms.parts, part_seqs(mms.parts), strict=True):
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


def _backup_date(backup_date_ms: int | None) -> int:
    return int(datetime.now().timestamp() * 1000) if backup_date_ms is None else backup_date_ms


def _open_root(out: IO[bytes], header: str, root: str, backup_date: int) -> int:
    """Write the header and the root's start with room for ``count``; its offset."""
    out.write(header.encode())
    out.write(f"<{root} ".encode())
    slot = out.tell()
    out.write(b"count=" + b" " * (_COUNT_SLOT - 6))
    out.write(f' backup_set="{uuid.uuid4()}" backup_date="{backup_date}">\n'.encode())
    return slot


def _close_root(out: IO[bytes], root: str, slot: int, count: int) -> None:
    out.write(f"</{root}>\n".encode())
    out.seek(slot)
    out.write(f'count="{count}"'.ljust(_COUNT_SLOT).encode())
    out.seek(0, 2)


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

    ``date_sent`` is unknown to smsbak and written ``0`` as the app does for old
    messages; ``readable_date`` uses ``zone`` (default: the system's). Streams both
    kinds: nothing is buffered. Owner-only and atomic.
    """
    return write_message_stream_xml(
        path,
        chain(sms, mms),
        contact_names=contact_names,
        backup_date_ms=backup_date_ms,
        zone=zone,
    )


def write_message_stream_xml(
    path: Path,
    messages: Iterable[Sms | Mms],
    *,
    contact_names: Mapping[str, str] | None = None,
    backup_date_ms: int | None = None,
    zone: tzinfo | None = None,
) -> XmlMessagesReport:
    """``write_messages_xml`` for one stream of SMS and MMS mixed, read once.

    The file holds every SMS before every MMS (as ``write_messages_xml`` writes it, byte
    for byte), so the MMS elements go to an unnamed owner-only file beside the target as
    they come and are copied in after the last SMS: memory holds one message whatever
    the stream's length, and the stream is decoded once.
    """
    names = contact_names or {}
    report = XmlMessagesReport(path=path, sms=0, mms=0, escaped_controls=0)
    with (
        private_file_atomically(path, "wb") as out,
        tempfile.TemporaryFile(prefix=f".{path.name}.", dir=path.parent) as later,
    ):
        slot = _open_root(out, _MESSAGES_HEADER, MESSAGES_ROOT, _backup_date(backup_date_ms))
        for message in messages:
            if isinstance(message, Mms):
                report.escaped_controls += _write_mms_element(later, message, names, zone)
                report.mms += 1
                continue
            line, escaped = sms_element(message, names, zone)
            out.write(line.encode("utf-8"))
            report.escaped_controls += escaped
            report.sms += 1
        later.seek(0)
        shutil.copyfileobj(later, out, _COPY_CHUNK)
        _close_root(out, MESSAGES_ROOT, slot, report.sms + report.mms)
    return report


def write_calls_xml(
    path: Path,
    calls: Iterable[Call],
    *,
    contact_names: Mapping[str, str] | None = None,
    backup_date_ms: int | None = None,
    zone: tzinfo | None = None,
) -> CallsWriteReport:
    """Write ``calls`` as an SMS Backup & Restore call-log backup that its restore imports.

    Attributes in the app's own order (``number duration date type presentation
    subscription_id post_dial_digits subscription_component_name readable_date
    contact_name``), ``null`` for the phone account: an account id from another phone
    means nothing on the phone the file is restored to. Streams; owner-only, atomic.
    """
    names = contact_names or {}
    count = 0
    with private_file_atomically(path, "wb") as out:
        slot = _open_root(out, _CALLS_HEADER, CALLS_ROOT, _backup_date(backup_date_ms))
        for call in calls:
            number, _ = escape_attribute(call.number)
            sim_id, _ = escape_attribute(call.sim_id or "null")
            name, _ = escape_attribute(names.get(call.number) or UNKNOWN_CONTACT)
            out.write(
                (
                    f'  <call number="{number}" duration="{call.duration_s}"'
                    f' date="{call.date_ms}" type="{int(call.type)}"'
                    f' presentation="{presentation(call.number)}" subscription_id="{sim_id}"'
                    f' post_dial_digits="" subscription_component_name="null"'
                    f' readable_date="{readable_date(call.date_ms, zone)}"'
                    f' contact_name="{name}" />\n'
                ).encode()
            )
            count += 1
        _close_root(out, CALLS_ROOT, slot, count)
    return CallsWriteReport(path=path, count=count)


# --- the byte cleaner ------------------------------------------------------------------

# Only references a strict parser rejects are worth a Python-level look: decimal and hex
# forms of forbidden controls, surrogates and U+FFFE/U+FFFF (55000-55295 slip through the
# decimal pattern and are passed on unchanged). Tab, LF and CR references are left
# alone. Raw bytes: forbidden C0 controls, U+FFFE/U+FFFF and surrogates as Java's
# modified UTF-8 would write them.
_DECIMAL = rb"0{0,6}(?:[0-8]|1[124-9]|2[0-9]|3[01]|5[5-7][0-9]{3}|6553[45])"
_HEX = rb"0{0,4}(?:[0-8bBcCeEfF]|1[0-9a-fA-F]|[dD][89a-fA-F][0-9a-fA-F]{2}|[fF]{3}[eEfF])"
_TOKEN = re.compile(
    rb"&#(?:x(" + _HEX + rb")|(" + _DECIMAL + rb"));"
    rb"|([\x00-\x08\x0b\x0c\x0e-\x1f])"
    rb"|(\xef\xbf[\xbe\xbf]|\xed[\xa0-\xbf][\x80-\xbf])"
)


_CANDIDATE = re.compile(rb"[&\x00-\x08\x0b\x0c\x0e-\x1f\xed\xef]")
"""The first byte of every ``_TOKEN``."""


def _code_point(match: re.Match[bytes]) -> int:
    hex_ref, decimal_ref, control, utf8 = match.groups()
    if hex_ref is not None:
        return int(hex_ref, 16)
    if decimal_ref is not None:
        return int(decimal_ref)
    if control is not None:
        return control[0]
    return ord(utf8.decode("utf-8", "surrogatepass"))


def _fix_block(data: bytes, final: bool) -> tuple[bytes, bytes]:
    """Rewrite ``data`` up to a safe point; return (rewritten, bytes to carry over).

    A token starting at least ``_HOLD`` bytes before the end is complete in ``data``
    together with a possible second half of its surrogate pair, so it is decided
    here; anything later waits for the next chunk.
    """
    limit = len(data) if final else len(data) - _HOLD
    pieces: list[bytes] = []
    pos = 0
    scan = 0
    while True:
        # A one-class scan finds where a token could start ten times faster than the
        # token pattern itself would over base64; the pattern then only checks there.
        candidate = _CANDIDATE.search(data, scan)
        if candidate is None or candidate.start() >= limit:
            break
        match = _TOKEN.match(data, candidate.start())
        if match is None:
            scan = candidate.start() + 1
            continue
        code_point = _code_point(match)
        end = match.end()
        replacement: bytes | None = None
        if 0xD800 <= code_point <= 0xDBFF:
            low = _TOKEN.match(data, end)
            if low is not None:
                low_point = _code_point(low)
                if 0xDC00 <= low_point <= 0xDFFF:
                    joined = 0x10000 + ((code_point - 0xD800) << 10) + (low_point - 0xDC00)
                    replacement = chr(joined).encode("utf-8")
                    end = low.end()
        if replacement is None:
            if _is_forbidden(code_point):
                replacement = f"{ESCAPE_MARK}{code_point:04X}".encode()
            else:
                replacement = match.group()
        pieces.append(data[pos : match.start()])
        pieces.append(replacement)
        pos = scan = end
    cut = len(data) if final else max(pos, limit)
    pieces.append(data[pos:cut])
    return b"".join(pieces), data[cut:]


def fix_char_refs(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Turn SMS Backup & Restore bytes into bytes a strict XML parser accepts.

    Surrogate-pair references become the real character; every other character XML
    1.0 forbids (as a reference or raw) becomes its U+EFFF form. Works across any
    chunk boundaries, including inside a reference or between the two halves of a
    pair.
    """
    carry = b""
    for chunk in chunks:
        if not chunk:
            continue
        done, carry = _fix_block(carry + chunk, final=False)
        if done:
            yield done
    done, _ = _fix_block(carry, final=True)
    if done:
        yield done


_ESCAPED = re.compile(ESCAPE_MARK + "([0-9A-F]{4})")


def unescape_text(text: str) -> str:
    """Undo the U+EFFF forms, for forbidden characters and U+EFFF itself only."""
    if ESCAPE_MARK not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        code_point = int(match.group(1), 16)
        if _is_forbidden(code_point) or code_point == ord(ESCAPE_MARK):
            return chr(code_point)
        return match.group()

    return _ESCAPED.sub(replace, text)


# --- the one pull parser ---------------------------------------------------------------

START, END, COMMENT = "start", "end", "comment"
Event = tuple[str, str, dict[str, str], int]
"""(kind, element name or comment text, attributes, line)."""


class _Refused(Exception):
    """A construct a hostile file could use against the reader (a DOCTYPE, an entity)."""


def _refuse_doctype(*_: object) -> None:
    raise _Refused("a DOCTYPE declaration (entities are refused: none is expanded)")


def _refuse_entity(*_: object) -> None:
    raise _Refused("an entity declaration (entities are refused: none is expanded)")


def _events(
    path: Path, chunk_size: int, what: str, on_bytes: Callable[[int], None] | None = None
) -> Iterator[Event]:
    """The start, end and comment events of ``path``, streaming, hostile constructs
    refused. ``what`` names the file kind in errors; ``on_bytes`` hears how many bytes
    of the file were read so far (for progress)."""
    parser = expat.ParserCreate()
    pending: list[Event] = []
    parser.StartElementHandler = lambda name, attrs: pending.append(
        (START, name, attrs, parser.CurrentLineNumber)
    )
    parser.EndElementHandler = lambda name: pending.append(
        (END, name, {}, parser.CurrentLineNumber)
    )
    parser.CommentHandler = lambda text: pending.append(
        (COMMENT, text, {}, parser.CurrentLineNumber)
    )
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    fed = False
    unfinished = 0  # bytes fed since the parser last finished a tag
    try:
        with path.open("rb") as handle:
            for data in fix_char_refs(iter(partial(handle.read, chunk_size), b"")):
                fed = True
                parser.Parse(data, False)
                if on_bytes is not None:
                    on_bytes(handle.tell())
                unfinished = 0 if pending else unfinished + len(data)
                if unfinished > MAX_ELEMENT_BYTES:
                    where = f"line {parser.CurrentLineNumber}"
                    raise DamagedFileError(
                        f"{path} is refused: a tag near {where} goes on for more than"
                        f" {MAX_ELEMENT_BYTES // (1024 * 1024)} MB",
                        hint="No message of SMS Backup & Restore is that large; the file is"
                        " damaged or was made to exhaust memory. Export it again.",
                        position=where,
                    )
                yield from pending
                pending.clear()
            if not fed:
                raise UsageError(f"{path} is empty", hint=f"Pick an {what} that holds messages.")
            parser.Parse(b"", True)
            yield from pending
            pending.clear()
    except _Refused as error:
        where = f"line {parser.CurrentLineNumber}, column {parser.CurrentColumnNumber + 1}"
        raise DamagedFileError(
            f"{path} is refused: it holds {error} at {where}",
            hint=f"An {what} never holds one; this file was made or changed by something"
            " else. Export it again from the app.",
            position=where,
        ) from None
    except expat.ExpatError as error:
        yield from pending  # what the parser finished before the damage
        where = f"line {error.lineno}, column {error.offset + 1}"
        problem = expat.ErrorString(error.code) if error.code is not None else str(error)
        raise DamagedFileError(
            f"{path} is damaged at {where} ({problem}); what came before it was read",
            hint="The file may be truncated or changed; copy it again from the phone.",
            position=where,
        ) from None
    finally:
        # The handlers close over the parser: a cycle that would keep its buffers (about
        # a chunk) alive until the garbage collector ran.
        parser.StartElementHandler = None
        parser.EndElementHandler = None
        parser.CommentHandler = None
        pending.clear()


# --- reading ---------------------------------------------------------------------------


def _names_for(contact_name: str | None, addresses: list[str]) -> dict[str, str]:
    """The file's ``contact_name`` for each address it can be matched to: one name per
    address, or one per ``~``-joined participant when ``, ``-joined in the same count."""
    if not contact_name or contact_name in (UNKNOWN_CONTACT, "null") or not addresses:
        return {}
    if len(addresses) == 1:
        return {addresses[0]: contact_name}
    names = contact_name.split(", ")
    if len(names) != len(addresses):
        return {}
    return {a: n for a, n in zip(addresses, names, strict=True) if n != UNKNOWN_CONTACT}


@dataclass
class _PendingMms:
    attrs: dict[str, str]
    line: int
    parts: list[dict[str, str]] = field(default_factory=list)
    addrs: list[dict[str, str]] | None = None


class _Reader:
    """Pull-parser events into records, one element at a time."""

    def __init__(self, path: Path, stats: ReadStats, roots: tuple[str, ...]) -> None:
        self.path = path
        self.stats = stats
        self.roots = roots
        self.root: str | None = None
        self.depth = 0
        self.mms: _PendingMms | None = None

    # values ----------------------------------------------------------------------------

    def _text(self, value: str | None) -> str:
        """``address``, ``body``, ``number``: "null" is literal in smsbak's files only."""
        if value is None or (value == "null" and not self.stats.written_by_smsbak):
            return ""
        return unescape_text(value)

    def _optional(self, attrs: Mapping[str, str], name: str) -> str | None:
        value = attrs.get(name)
        if value is None:
            return None
        if value == "null":
            literal = (attrs.get("smsbak_literal") or "").split()
            if not (self.stats.written_by_smsbak and name in literal):
                return None
        return unescape_text(value)

    # records ---------------------------------------------------------------------------

    def _sms(self, attrs: Mapping[str, str], line: int) -> FileRecord | None:
        date_ms = to_int(attrs.get("date"))
        box = to_int(attrs.get("type"))
        if date_ms is None or box is None or box not in Box._value2member_map_:
            self.stats.skip(f"line {line}: an <sms> without a usable date or type")
            return None
        read = (attrs.get("read") or "").strip()
        sub_id = to_int(attrs.get("sub_id"))
        sms = Sms(
            address=self._text(attrs.get("address")),
            body=self._text(attrs.get("body")),
            date_ms=date_ms,
            box=Box(box),
            read=True if read == "1" else False if read == "0" else None,
            sub_id=None if sub_id is None or sub_id < 0 else sub_id,
        )
        names = _names_for(self._optional(attrs, "contact_name"), [sms.address])
        return FileRecord(sms, names, f"line {line}")

    def _call(self, attrs: Mapping[str, str], line: int) -> FileRecord | None:
        date_ms = to_int(attrs.get("date"))
        call_type = to_int(attrs.get("type"))
        raw_duration = attrs.get("duration")
        duration_s: int | None = 0  # absent: nothing was said, as for a missed call
        if raw_duration is not None and raw_duration.strip() not in ("", "null"):
            duration_s = to_int(raw_duration)
        if (
            date_ms is None
            or call_type is None
            or call_type not in CallType._value2member_map_
            or duration_s is None
        ):
            self.stats.skip(f"line {line}: a <call> without a usable date, type or duration")
            return None
        sim_id = attrs.get("subscription_id")
        call = Call(
            number=self._text(attrs.get("number")),
            date_ms=date_ms,
            duration_s=duration_s,
            type=CallType(call_type),
            sim_id=None if sim_id in (None, "", "null") else unescape_text(sim_id),
        )
        names = _names_for(self._optional(attrs, "contact_name"), [call.number])
        return FileRecord(call, names, f"line {line}")

    def _finish_mms(self, pending: _PendingMms) -> FileRecord | None:
        attrs = pending.attrs
        date_ms = to_int(attrs.get("date"))
        box = to_int(attrs.get("msg_box"))
        if date_ms is None or box is None or box not in Box._value2member_map_:
            self.stats.skip(f"line {pending.line}: an <mms> without a usable date or msg_box")
            return None
        joined = [a for a in self._text(attrs.get("address")).split("~") if a]
        addresses: list[tuple[str, AddressKind]] = []
        for addr in pending.addrs or ():
            kind = to_int(addr.get("type"))
            if kind is not None and kind in AddressKind._value2member_map_:
                addresses.append((self._text(addr.get("address")), AddressKind(kind)))
        if pending.addrs is None:  # only the joined address attribute: the sender is a guess
            if box == Box.INBOX and joined:
                addresses = [(joined[0], AddressKind.FROM)]
                addresses += [(a, AddressKind.TO) for a in joined[1:]]
            else:
                addresses = [(INSERT_ADDRESS_TOKEN, AddressKind.FROM)]
                addresses += [(a, AddressKind.TO) for a in joined]
        parts: list[MmsPart] = []
        bad = 0
        for part in pending.parts:
            data: bytes | None = None
            encoded = part.get("data")
            if encoded is not None and encoded != "null":
                try:
                    data = base64.b64decode(encoded)
                except (binascii.Error, ValueError):
                    bad += 1
                    self.stats.bad_data += 1
                    self.stats.note(f"line {pending.line}: an MMS part whose data is not base64")
            parts.append(
                MmsPart(
                    content_type=part_content_type(self._optional(part, "ct")),
                    name=self._optional(part, "name"),
                    text=self._optional(part, "text"),
                    data=data,
                    charset=self._optional(part, "chset"),
                    content_id=self._optional(part, "cid"),
                    content_location=self._optional(part, "cl"),
                )
            )
        read = (attrs.get("read") or "").strip()
        sub = self._optional(attrs, "sub")
        sub_id = to_int(attrs.get("sub_id"))
        mms = Mms(
            date_ms=date_ms,
            box=Box(box),
            addresses=tuple(addresses),
            parts=tuple(parts),
            read=True if read == "1" else False if read == "0" else None,
            message_type=to_int(attrs.get("m_type")),
            subject=None if sub is None else subject_from_provider(sub, attrs.get("sub_cs")),
            sub_id=None if sub_id is None or sub_id < 0 else sub_id,
        )
        names = _names_for(self._optional(attrs, "contact_name"), joined)
        problem = f"{bad} attachment(s) whose base64 does not decode" if bad else None
        return FileRecord(mms, names, f"line {pending.line}", problem)

    # events ----------------------------------------------------------------------------

    def handle(self, event: Event) -> FileRecord | None:
        kind, name, attrs, line = event
        if kind == COMMENT:
            if self.root is None and name.strip().startswith(SMSBAK_COMMENT):
                self.stats.written_by_smsbak = True
            return None
        if kind == END:
            self.depth -= 1
            if self.depth == 1 and name == "mms" and self.mms is not None:
                pending, self.mms = self.mms, None
                return self._finish_mms(pending)
            return None
        self.depth += 1
        if self.depth == 1:
            if name not in self.roots:
                wanted = " or ".join(f"<{root}>" for root in self.roots)
                kinds = {MESSAGES_ROOT: " message", CALLS_ROOT: " call-log"}
                what = kinds.get(self.roots[0], "") if len(self.roots) == 1 else ""
                raise UsageError(
                    f"{self.path} is not an SMS Backup & Restore{what} file"
                    f" (its root element is <{name}>, not {wanted})",
                    hint="Messages are in the sms-*.xml file, calls in the calls-*.xml one.",
                )
            self.root = name
        elif self.depth == 2:
            if name == "sms" and self.root == MESSAGES_ROOT:
                return self._sms(attrs, line)
            if name == "call" and self.root == CALLS_ROOT:
                return self._call(attrs, line)
            if name == "mms" and self.root == MESSAGES_ROOT:
                self.mms = _PendingMms(attrs, line)
        elif self.mms is not None:
            if name == "part":
                self.mms.parts.append(attrs)
            elif name == "addrs" and self.mms.addrs is None:
                self.mms.addrs = []
            elif name == "addr" and self.mms.addrs is not None:
                self.mms.addrs.append(attrs)
        return None


def read_sbr(
    path: Path,
    *,
    stats: ReadStats | None = None,
    chunk_size: int = CHUNK_SIZE,
    roots: tuple[str, ...] = (MESSAGES_ROOT, CALLS_ROOT),
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[FileRecord]:
    """Every record of an SMS Backup & Restore file (messages or call log, as its root
    says) in file order, with the names the file gives, streaming: one element (one
    MMS with its attachments) in memory at a time. ``thread_id`` and ``android_id`` are
    None: the format has no ``_id`` and its thread ids belong to the phone that wrote
    it. A file that breaks raises :class:`DamagedFileError` where it breaks, after the
    records before it were yielded."""
    counts = stats if stats is not None else ReadStats()
    reader = _Reader(path, counts, roots)
    for event in _events(path, chunk_size, "SMS Backup & Restore file", on_bytes):
        found = reader.handle(event)
        if found is not None:
            counts.count(found.record)
            yield found
    if reader.root is None:
        raise UsageError(f"{path} holds no <smses> or <calls> element", hint="Is it an empty file?")


def read_messages_xml(
    path: Path, *, stats: ReadStats | None = None, chunk_size: int = CHUNK_SIZE
) -> Iterator[Sms | Mms]:
    """The SMS and MMS of an SMS Backup & Restore message file, in file order."""
    for found in read_sbr(path, stats=stats, chunk_size=chunk_size, roots=(MESSAGES_ROOT,)):
        assert isinstance(found.record, Sms | Mms)
        yield found.record


def read_calls_xml(
    path: Path, *, stats: ReadStats | None = None, chunk_size: int = CHUNK_SIZE
) -> Iterator[Call]:
    """The calls of an SMS Backup & Restore call-log file; a missing duration reads 0."""
    for found in read_sbr(path, stats=stats, chunk_size=chunk_size, roots=(CALLS_ROOT,)):
        assert isinstance(found.record, Call)
        yield found.record
