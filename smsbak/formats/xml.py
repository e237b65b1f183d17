"""SMS Backup & Restore XML: write a file its restore imports; read its backups streaming.

SMS Backup & Restore (SyncTech) keeps messages in ``<smses>`` of ``<sms .../>``
elements whose attributes are raw ``content://sms`` columns, with the literal
``null`` for an absent value. Its backups can be gigabytes (base64 MMS parts), so
both directions stream: the writer holds only the small ``Sms`` records (the
``count`` attribute must come first), the reader holds one chunk and one element.

Characters XML cannot carry
---------------------------
XML 1.0 forbids C0 controls other than tab, LF and CR, U+FFFE, U+FFFF and
surrogates, even as character references, yet SMS bodies do contain them (binary
SMS, broken encoders, a multipart message cut inside an emoji). A strict parser
rejects a whole gigabyte file for one of them, and SMS Backup & Restore would
reject or strip it. So the writer puts each such character as the private-use
character U+EFFF followed by four upper-case hex digits of its code point (NUL is
U+EFFF ``0000``), and a literal U+EFFF as U+EFFF ``EFFF`` so the scheme stays
reversible. smsbak's reader undoes it, SMS Backup & Restore shows it as text:
only messages that held such characters look different there. U+EFFF lies outside
the private-use ranges Japanese carriers used for emoji, and
``XmlWriteReport.escaped_controls`` counts how many characters were written so.
Tab, LF and CR are legal, but attribute-value normalisation would turn them into
spaces, so they are written ``&#9;`` ``&#10;`` ``&#13;``.

Reading what SMS Backup & Restore writes
----------------------------------------
It writes characters outside the BMP as two UTF-16 surrogate references
(``&#55357;&#56860;``) and forbidden characters as references or raw bytes, all of
which expat rejects. Before parsing, ``fix_char_refs`` rewrites the byte stream,
chunk by chunk: a surrogate pair becomes the real character in UTF-8, any other
forbidden character (a lone surrogate, a control) becomes the U+EFFF form above,
so the reader hands back exactly what the phone had. Inside a file smsbak wrote
(marked by its opening comment) ``null`` in ``address`` or ``body`` is the text
"null"; in anybody else's file it means absent and reads as "". A literal U+EFFF
followed by four hex digits naming a forbidden character, in a foreign file,
would be misread as that character: accepted, such text does not occur in SMS.
The byte rewrite assumes an ASCII-compatible encoding (UTF-8, what the app writes).
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path

from smsbak.errors import UsageError
from smsbak.model import Box, Sms
from smsbak.paths import private_file_atomically

ESCAPE_MARK = "\uefff"
"""Starts the four-hex-digit form of a character XML 1.0 cannot hold."""

SMSBAK_COMMENT = "File created by smsbak"
"""Start of the comment that tells smsbak's reader the file is its own."""

UNKNOWN_CONTACT = "(Unknown)"
CHUNK_SIZE = 256 * 1024
_HOLD = 64  # bytes kept back at a chunk's end: more than two of the longest tokens
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_HEADER = (
    "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
    f"<!--{SMSBAK_COMMENT}. U+EFFF and four hex digits stand for a character XML 1.0"
    " cannot hold; null in address and body is literal text.-->\n"
)


@dataclass
class XmlWriteReport:
    """What ``write_sms_xml`` wrote, for the restore report."""

    path: Path
    count: int
    escaped_controls: int


@dataclass
class XmlReadStats:
    """What ``read_sms_xml`` passed over; filled in while the caller iterates.

    MMS are not read yet; ``invalid_skipped`` counts ``<sms>`` elements without a
    usable ``date`` or ``type``.
    """

    sms: int = 0
    mms_skipped: int = 0
    invalid_skipped: int = 0
    written_by_smsbak: bool = False


def _is_forbidden(code_point: int) -> bool:
    """True for what XML 1.0 cannot hold, not even as a character reference."""
    return (
        (code_point < 0x20 and code_point not in (0x09, 0x0A, 0x0D))
        or 0xD800 <= code_point <= 0xDFFF
        or code_point in (0xFFFE, 0xFFFF)
    )


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


def sms_from_attributes(attrib: Mapping[str, str], text: Callable[[str | None], str]) -> Sms | None:
    """An ``<sms>`` element's record; None when its date or type is unusable."""
    date_ms = _int(attrib.get("date"))
    box = _int(attrib.get("type"))
    if date_ms is None or box is None or box not in Box._value2member_map_:
        return None
    read = (attrib.get("read") or "").strip()
    sub_id = _int(attrib.get("sub_id"))
    return Sms(
        address=text(attrib.get("address")),
        body=text(attrib.get("body")),
        date_ms=date_ms,
        box=Box(box),
        read=True if read == "1" else False if read == "0" else None,
        sub_id=None if sub_id is None or sub_id < 0 else sub_id,
    )


def write_sms_xml(
    path: Path,
    messages: Iterable[Sms],
    *,
    contact_names: Mapping[str, str] | None = None,
    backup_date_ms: int | None = None,
    zone: tzinfo | None = None,
) -> XmlWriteReport:
    """Write ``messages`` as an SMS Backup & Restore backup that its restore imports.

    ``read`` unknown (SMS Backup+ emails may lack it) is written as read: restored
    history should not light up as new. ``date_sent`` is unknown to smsbak and
    written ``0`` as the app does for old messages; ``readable_date`` uses ``zone``
    (default: the system's) and is for people only. Records are buffered because
    ``count`` comes first; the XML itself is streamed to a temporary file that
    replaces ``path`` only when complete.
    """
    records = list(messages)
    names = contact_names or {}
    backup_date = backup_date_ms
    if backup_date is None:
        backup_date = int(datetime.now().timestamp() * 1000)
    escaped_total = 0
    with private_file_atomically(path, "w") as out:
        out.write(_HEADER)
        out.write(
            f'<smses count="{len(records)}" backup_set="{uuid.uuid4()}"'
            f' backup_date="{backup_date}">\n'
        )
        for sms in records:
            line, escaped = sms_element(sms, names, zone)
            escaped_total += escaped
            out.write(line)
        out.write("</smses>\n")
    return XmlWriteReport(path=path, count=len(records), escaped_controls=escaped_total)


# --- reading ---------------------------------------------------------------------------

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
    while True:
        match = _TOKEN.search(data, pos)
        if match is None or match.start() >= limit:
            break
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
        pos = end
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


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


class _SmsesReader:
    """Turns pull-parser events into ``Sms`` records, dropping each element when done."""

    def __init__(self, path: Path, stats: XmlReadStats) -> None:
        self.path = path
        self.stats = stats
        self.depth = 0
        self.root: ET.Element | None = None

    def _text(self, value: str | None) -> str:
        if value is None or (value == "null" and not self.stats.written_by_smsbak):
            return ""
        return unescape_text(value)

    def _sms(self, attrib: Mapping[str, str]) -> Sms | None:
        return sms_from_attributes(attrib, self._text)

    def handle(self, events: Iterable[tuple[object, ...]]) -> Iterator[Sms]:
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
                    if item.tag == "sms":
                        sms = self._sms(item.attrib)
                        if sms is None:
                            self.stats.invalid_skipped += 1
                        else:
                            self.stats.sms += 1
                            yield sms
                    elif item.tag == "mms":
                        self.stats.mms_skipped += 1
                    self.root.clear()
            elif (
                event == "comment"
                and self.root is None
                and (item.text or "").strip().startswith(SMSBAK_COMMENT)
            ):
                self.stats.written_by_smsbak = True


def read_sms_xml(
    path: Path, *, stats: XmlReadStats | None = None, chunk_size: int = CHUNK_SIZE
) -> Iterator[Sms]:
    """Yield the SMS of an SMS Backup & Restore file (or one smsbak wrote), streaming.

    Pass ``stats`` to learn afterwards how many ``<mms>`` and unusable ``<sms>`` were
    skipped. ``thread_id`` and ``android_id`` are always None: the format has no
    ``_id`` and its thread ids are not those of any phone the file is restored to.
    A malformed file raises ``UsageError`` at the point where it breaks, after the
    messages before it were yielded.
    """
    counts = stats if stats is not None else XmlReadStats()
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end", "comment"))
    reader = _SmsesReader(path, counts)
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
