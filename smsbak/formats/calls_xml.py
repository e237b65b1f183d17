"""SMS Backup & Restore call log: write a file its restore imports; read its backups streaming.

The app keeps the call log in a file of its own, ``calls-<timestamp>.xml``: a
``<calls count="N">`` root of ``<call .../>`` elements whose attributes are raw
``content://call_log/calls`` columns (``duration`` in seconds, ``date`` in epoch
ms, ``type`` 1 incoming .. 6 blocked), the literal ``null`` for an absent value,
and ``readable_date`` and ``contact_name`` (``(Unknown)``) for people. Its own
backups put them in this order: ``number duration date type presentation
subscription_id post_dial_digits subscription_component_name readable_date
contact_name``; we write the same, with ``null`` for the phone account because
an account id from another phone (or none at all) means nothing on the phone the
file is restored to.

Everything about characters is shared with the message file, by importing
``smsbak.formats.xml``: numbers are short, but they come from the network and a
caller id can hold anything, so the writer uses the same escaping (forbidden
characters in the reversible U+EFFF form, tab, LF and CR as references) and the
reader the same byte cleaner (``fix_char_refs``) for the app's surrogate-pair
references. Inside a file smsbak wrote (its opening comment) ``null`` in
``number`` is the text "null"; in anybody else's it means absent and reads as "".
Call logs are small next to message backups, but the reader streams all the same:
it costs nothing and a file of unknown size never has to fit in memory.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path

from smsbak.errors import UsageError
from smsbak.formats.xml import (
    CHUNK_SIZE,
    SMSBAK_COMMENT,
    UNKNOWN_CONTACT,
    escape_attribute,
    fix_char_refs,
    readable_date,
    unescape_text,
)
from smsbak.model import Call, CallType
from smsbak.paths import private_file_atomically

PRESENTATION_ALLOWED = 1
"""``CallLog.Calls.PRESENTATION_ALLOWED``: the number may be shown."""

PRESENTATION_UNKNOWN = 3
"""``CallLog.Calls.PRESENTATION_UNKNOWN``: the network gave no number."""

_HEADER = (
    "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
    f"<!--{SMSBAK_COMMENT}. U+EFFF and four hex digits stand for a character XML 1.0"
    " cannot hold; null in number is literal text.-->\n"
)


@dataclass
class CallsWriteReport:
    """What a call-log writer wrote, for the restore report."""

    path: Path
    count: int


@dataclass
class CallsReadStats:
    """What a call-log reader passed over; filled in while the caller iterates.

    ``invalid_skipped`` counts entries without a usable ``date`` or ``type``
    (including types smsbak does not model, such as 7, answered on another device).
    """

    calls: int = 0
    invalid_skipped: int = 0


def presentation(number: str) -> int:
    """Android's presentation for ``number``: unknown for an empty one, else allowed.

    Android stores a hidden or missing caller id as an empty number with a
    presentation other than "allowed", and dialers show such a row as "Unknown";
    an empty number marked "allowed" would show as a blank row instead. smsbak does
    not know whether an empty number was withheld or unknown, so it says unknown.
    """
    return PRESENTATION_ALLOWED if number else PRESENTATION_UNKNOWN


# --- writing ---------------------------------------------------------------------------


def write_calls_xml(
    path: Path,
    calls: Iterable[Call],
    *,
    contact_names: Mapping[str, str] | None = None,
    backup_date_ms: int | None = None,
    zone: tzinfo | None = None,
) -> CallsWriteReport:
    """Write ``calls`` as an SMS Backup & Restore call-log backup that its restore imports.

    ``readable_date`` uses ``zone`` (default: the system's) and is for people only.
    Records are buffered because ``count`` comes first; the XML itself is streamed
    to an owner-only temporary file that replaces ``path`` only when complete.
    """
    records = list(calls)
    names = contact_names or {}
    backup_date = backup_date_ms
    if backup_date is None:
        backup_date = int(datetime.now().timestamp() * 1000)
    with private_file_atomically(path, "w") as out:
        out.write(_HEADER)
        out.write(
            f'<calls count="{len(records)}" backup_set="{uuid.uuid4()}"'
            f' backup_date="{backup_date}">\n'
        )
        for call in records:
            number, _ = escape_attribute(call.number)
            sim_id, _ = escape_attribute(call.sim_id or "null")
            name, _ = escape_attribute(names.get(call.number) or UNKNOWN_CONTACT)
            out.write(
                f'  <call number="{number}" duration="{call.duration_s}"'
                f' date="{call.date_ms}" type="{int(call.type)}"'
                f' presentation="{presentation(call.number)}" subscription_id="{sim_id}"'
                f' post_dial_digits="" subscription_component_name="null"'
                f' readable_date="{readable_date(call.date_ms, zone)}"'
                f' contact_name="{name}" />\n'
            )
        out.write("</calls>\n")
    return CallsWriteReport(path=path, count=len(records))


# --- reading ---------------------------------------------------------------------------


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


class _CallsReader:
    """Turns pull-parser events into ``Call`` records, dropping each element when done."""

    def __init__(self, path: Path, stats: CallsReadStats) -> None:
        self.path = path
        self.stats = stats
        self.depth = 0
        self.root: ET.Element | None = None
        self.written_by_smsbak = False

    def _call(self, attrib: Mapping[str, str]) -> Call | None:
        date_ms = _int(attrib.get("date"))
        call_type = _int(attrib.get("type"))
        if date_ms is None or call_type is None or call_type not in CallType._value2member_map_:
            return None
        raw_duration = attrib.get("duration")
        if raw_duration is None or raw_duration.strip() in ("", "null"):
            duration_s: int | None = 0  # absent: nothing was said, as for a missed call
        else:
            duration_s = _int(raw_duration)
        if duration_s is None:
            return None
        number = attrib.get("number")
        if number is None or (number == "null" and not self.written_by_smsbak):
            number = ""
        sim_id = attrib.get("subscription_id")
        return Call(
            number=unescape_text(number),
            date_ms=date_ms,
            duration_s=duration_s,
            type=CallType(call_type),
            sim_id=None if sim_id in (None, "", "null") else unescape_text(sim_id),
        )

    def handle(self, events: Iterable[tuple[object, ...]]) -> Iterator[Call]:
        for entry in events:
            event, item = entry[0], entry[-1]
            if not isinstance(item, ET.Element):
                continue
            if event == "start":
                if self.depth == 0:
                    if item.tag != "calls":
                        raise UsageError(
                            f"{self.path} is not an SMS Backup & Restore call-log file"
                            f" (its root element is <{item.tag}>, not <calls>)",
                            hint="Pick the calls-*.xml file, not the sms-*.xml one.",
                        )
                    self.root = item
                self.depth += 1
            elif event == "end":
                self.depth -= 1
                if self.depth == 1 and self.root is not None:
                    if item.tag == "call":
                        call = self._call(item.attrib)
                        if call is None:
                            self.stats.invalid_skipped += 1
                        else:
                            self.stats.calls += 1
                            yield call
                    self.root.clear()
            elif (
                event == "comment"
                and self.root is None
                and (item.text or "").strip().startswith(SMSBAK_COMMENT)
            ):
                self.written_by_smsbak = True


def read_calls_xml(
    path: Path, *, stats: CallsReadStats | None = None, chunk_size: int = CHUNK_SIZE
) -> Iterator[Call]:
    """Yield the calls of an SMS Backup & Restore call-log file (or one smsbak wrote).

    Streams like ``read_sms_xml``. Pass ``stats`` to learn afterwards how many
    unusable ``<call>`` elements were skipped; a missing ``duration`` reads as 0.
    Names (``contact_name``) are not read: the phone looks them up again. A
    malformed file raises ``UsageError`` at the point where it breaks, after the
    calls before it were yielded.
    """
    counts = stats if stats is not None else CallsReadStats()
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end", "comment"))
    reader = _CallsReader(path, counts)
    try:
        with path.open("rb") as handle:
            for data in fix_char_refs(iter(partial(handle.read, chunk_size), b"")):
                parser.feed(data)
                yield from reader.handle(parser.read_events())
            parser.close()
            yield from reader.handle(parser.read_events())
    except ET.ParseError as error:
        raise UsageError(
            f"{path} is not a well-formed SMS Backup & Restore call-log file: {error}",
            hint="The file may be truncated; copy it again from the phone.",
        ) from error
    if reader.root is None:
        raise UsageError(f"{path} holds no <calls> element", hint="Is it an empty file?")
