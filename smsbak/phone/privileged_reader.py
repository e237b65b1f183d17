"""Reading SMS with Shizuku or root: every box, exact milliseconds, the SIM.

Termux:API only shows received and sent messages, to the second. Through
`content query` as the shell user or root smsbak sees drafts, failed and queued
messages too, with ``date`` in milliseconds and ``sub_id``. Fingerprints keep
whole seconds (see smsbak.model), so switching between this reader and Termux:API
uploads nothing twice; the exact milliseconds go into the email's headers.
Contacts, the time zone and the call log still come from Termux:API.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import tzinfo

from smsbak.errors import PhoneError
from smsbak.formats.common import subject_from_provider
from smsbak.model import AddressKind, Box, Mms, MmsPart, Sms
from smsbak.phone.privileged import (
    PrivilegedShell,
    content_command,
    query_rows,
    tell_null_from_text,
)
from smsbak.phone.termux import (
    CallPage,
    Contact,
    Page,
    PhoneSms,
    SmsPage,
    TermuxPhone,
    walk_newest_first,
)

log = logging.getLogger(__name__)
Row = dict[str, str | None]

SMS_URI = "content://sms"
SMS_PROJECTION = (
    "_id", "thread_id", "date", "date_sent", "type", "read", "status", "sub_id",
    "service_center", "address", "body",
)  # fmt: skip
"""Free text last: `content` prints values unescaped, so only the last may hold anything."""


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def sms_from_row(row: dict[str, str | None]) -> Sms | None:
    """One `content query` row; None when its type or date is not usable."""
    box_value, date_ms = _int(row.get("type")), _int(row.get("date"))
    if box_value not in Box._value2member_map_ or date_ms is None:
        return None
    read = _int(row.get("read"))
    sub_id = _int(row.get("sub_id"))
    date_sent = _int(row.get("date_sent"))
    return Sms(
        address=row.get("address") or "",
        body=row.get("body") or "",
        date_ms=date_ms,
        box=Box(box_value or 0),
        read=None if read is None else bool(read),
        thread_id=_int(row.get("thread_id")),
        android_id=_int(row.get("_id")),
        sub_id=None if sub_id is None or sub_id < 0 else sub_id,
        date_sent_ms=date_sent or None,
        status=_int(row.get("status")),
        service_center=row.get("service_center"),
    )


class PrivilegedPhone:
    """The phone through rish or su for SMS; Termux:API for the rest."""

    def __init__(self, shell: PrivilegedShell, termux: TermuxPhone) -> None:
        self.shell = shell
        self.termux = termux
        self.generation = termux.generation
        self.description = f"{shell.description}: every box, exact times"

    @property
    def zone(self) -> tzinfo:
        return self.termux.zone

    def sms_page(self, offset: int, limit: int) -> SmsPage:
        """The newest ``limit`` SMS after ``offset``, newest first, every box."""
        order = f"date DESC, _id DESC LIMIT {int(limit)} OFFSET {int(offset)}"
        rows = query_rows(self.shell, SMS_URI, SMS_PROJECTION, "reading SMS", sort=order)
        tell_null_from_text(self.shell, SMS_URI, rows, ("address", "body"), "reading SMS")
        messages = []
        for row in rows:
            sms = sms_from_row(row)
            if sms is None:
                log.warning("skipped SMS row _id=%s: unusable type or date", row.get("_id"))
                continue
            messages.append(PhoneSms(sms=sms, contact_name=None))
        return Page(messages=messages, rows=len(rows), unusable=len(rows) - len(messages))

    def sms_newest_first(self, page_size: int) -> Iterator[SmsPage]:
        return walk_newest_first(self.sms_page, page_size)

    def calls_newest_first(self, page_size: int) -> Iterator[CallPage]:
        return self.termux.calls_newest_first(page_size)

    def mms_newest_first(self, page_size: int) -> Iterator[Page[PhoneMms]]:
        """Every MMS newest first: several `content` calls per message (a Java start each)."""
        return walk_newest_first(MmsReader(self.shell).page, min(page_size, 100))

    def contacts(self) -> list[Contact]:
        return self.termux.contacts()


MMS_PROJECTION = (
    "_id", "thread_id", "date", "msg_box", "m_type", "read", "sub_id", "sub_cs", "sub",
)  # fmt: skip
ADDR_PROJECTION = ("_id", "type", "charset", "address")
PART_PROJECTION = ("_id", "seq", "ct", "chset", "cid", "cl", "name", "text")
INSERT_ADDRESS_TOKEN = "insert-address-token"
"""What the provider stores in place of the user's own number in a sent MMS."""


@dataclass(frozen=True)
class PhoneMms:
    """An MMS as read, or the id of one that could not be read (reported, never dropped)."""

    mms: Mms | None
    """Without attachment bytes: a scan holds only what identity and planning need."""
    row_id: int
    date_ms: int
    problem: str | None = None
    contact_name: str | None = None
    file_parts: tuple[int | None, ...] = ()
    """Per part, the part row whose bytes `content read` fetches at upload time."""
    reader: MmsReader | None = field(default=None, compare=False, repr=False)

    @property
    def identity(self) -> str:
        return f"mms-{self.row_id}"

    def with_attachments(self) -> Mms:
        """The whole MMS, bytes included, read now: memory holds one message at a time."""
        assert self.mms is not None
        if self.reader is None or not any(self.file_parts):
            return self.mms
        parts = tuple(
            part if part_id is None else replace(
                part, data=self.reader.part_bytes(part_id, self.row_id), text=None
            )
            for part, part_id in zip(self.mms.parts, self.file_parts, strict=True)
        )  # fmt: skip
        return replace(self.mms, parts=parts)


class MmsReader:
    """MMS through `content`: the message, then its addresses, parts and part bytes."""

    def __init__(self, shell: PrivilegedShell) -> None:
        self.shell = shell

    def query(self, uri: str, projection: Sequence[str], **options: str) -> list[Row]:
        unknown = set(options) - {"where", "sort"}
        if unknown:
            raise TypeError(f"unknown query options {sorted(unknown)}")
        return query_rows(
            self.shell,
            uri,
            projection,
            "reading MMS",
            where=options.get("where"),
            sort=options.get("sort"),
        )

    def page(self, offset: int, limit: int) -> Page[PhoneMms]:
        rows = self.query(
            "content://mms",
            MMS_PROJECTION,
            sort=f"date DESC, _id DESC LIMIT {int(limit)} OFFSET {int(offset)}",
        )
        messages = []
        for row in rows:
            row_id = _int(row.get("_id")) or 0
            date_ms = (_int(row.get("date")) or 0) * 1000
            try:
                mms, file_parts = self.message(row)
                messages.append(PhoneMms(mms, row_id, date_ms, file_parts=file_parts, reader=self))
            except (PhoneError, ValueError, KeyError) as error:
                problem = error.message if isinstance(error, PhoneError) else repr(error)
                log.warning("could not read MMS _id=%s: %s", row_id, problem)
                messages.append(PhoneMms(None, row_id, date_ms, problem))
        return Page(messages=messages, rows=len(rows), unusable=0)

    def part_bytes(self, part_id: int, mms_id: int) -> bytes:
        return self.shell.read_bytes(
            content_command("read", "--uri", f"content://mms/part/{part_id}"),
            f"reading part {part_id} of MMS {mms_id}",
        )

    def message(self, row: Row) -> tuple[Mms, tuple[int | None, ...]]:
        """The MMS without attachment bytes, and which parts hold bytes in a file."""
        row_id = int(row["_id"] or "")
        box = _int(row.get("msg_box"))
        date_s = _int(row.get("date"))
        if box not in Box._value2member_map_ or date_s is None:
            raise ValueError(f"msg_box {row.get('msg_box')!r}, date {row.get('date')!r}")
        addresses = tuple(
            (address["address"] or "", AddressKind(int(address["type"] or 0)))
            for address in self.query(f"content://mms/{row_id}/addr", ADDR_PROJECTION)
            if _int(address.get("type")) in AddressKind._value2member_map_
        )
        parts = []
        file_parts: list[int | None] = []
        for part in self.query(
            "content://mms/part", PART_PROJECTION, where=f"mid={row_id}", sort="seq ASC"
        ):
            content_type = (part.get("ct") or "application/octet-stream").lower()
            text = part.get("text")
            data = None
            # Binary parts, and text parts kept in a file (vCards often are), by bytes.
            in_file = text is None and content_type != "application/smil"
            binary = not (content_type.startswith("text/") or content_type.endswith("smil"))
            file_parts.append(int(part["_id"] or "") if in_file or binary else None)
            if in_file or binary:
                text = None
            parts.append(
                MmsPart(
                    content_type=content_type,
                    name=part.get("name"),
                    text=text,
                    data=data,
                    charset=part.get("chset"),
                    content_id=part.get("cid"),
                    content_location=part.get("cl"),
                )
            )
        read = _int(row.get("read"))
        sub_id = _int(row.get("sub_id"))
        mms = Mms(
            date_ms=date_s * 1000,
            box=Box(box or 0),
            addresses=addresses,
            parts=tuple(parts),
            read=None if read is None else bool(read),
            thread_id=_int(row.get("thread_id")),
            android_id=row_id,
            message_type=_int(row.get("m_type")),
            subject=None
            if row.get("sub") is None
            else subject_from_provider(row["sub"] or "", row.get("sub_cs")),
            sub_id=None if sub_id is None or sub_id < 0 else sub_id,
        )
        return mms, tuple(file_parts)


READERS = ("auto", "termux", "shizuku", "root")


def choose_reader(name: str, termux: TermuxPhone, timeout: float) -> TermuxPhone | PrivilegedPhone:
    """``termux``, ``shizuku`` (rish), ``root`` (su), or ``auto``: the best that answers."""
    if name == "termux":
        return termux
    kinds = {"auto": ("rish", "su"), "shizuku": ("rish",), "root": ("su",)}[name]
    shell = PrivilegedShell.detect(timeout, prefer=kinds)
    if shell is not None:
        return PrivilegedPhone(shell, termux)
    if name == "auto":
        return termux
    raise PhoneError(
        f"reader = {name!r} but {'rish' if name == 'shizuku' else 'su'} does not answer",
        'start Shizuku and export rish to Termux (or grant root), or set reader = "auto"',
    )
