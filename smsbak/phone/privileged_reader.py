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
from datetime import tzinfo

from smsbak.errors import PhoneError
from smsbak.formats.common import subject_from_provider
from smsbak.model import AddressKind, Box, Mms, MmsPart, Sms
from smsbak.phone.privileged import (
    ExactQuery,
    PrivilegedShell,
    content_command,
    hex_of,
    length_of,
    query_exact,
    query_rows,
    tell_null_from_text,
)
from smsbak.phone.termux import TermuxPhone, walk_newest_first
from smsbak.ports import (
    CallPage,
    Contact,
    Page,
    PhoneMms,
    PhoneSms,
    SmsPage,
    SourceCapabilities,
)

__all__ = ["PhoneMms", "PrivilegedPhone", "choose_reader"]

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

    capabilities = SourceCapabilities(sms=True, calls=True, mms=True)

    def __init__(self, shell: PrivilegedShell, termux: TermuxPhone) -> None:
        self.shell = shell
        self.termux = termux
        self.description = shell.description
        """ "Shizuku (rish)" or "root (su)"."""
        self.identity = "shizuku" if shell.kind == "rish" else "root"

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


PDU_EXACT = (
    "_id", "thread_id", "date", "msg_box", "m_type", "read", "sub_id", "sub_cs",
    length_of("sub"), hex_of("sub"),
)  # fmt: skip
ADDR_EXACT = ("_id", "type", "charset", hex_of("address"))
PART_EXACT = (
    "_id", "mid", "seq", hex_of("ct"), "chset", hex_of("name"), hex_of("cid"), hex_of("cl"),
    length_of("text"), hex_of("text"),
)  # fmt: skip
"""Free text only as hex(): one query per table and page, and no row can be forged."""


class MmsReader:
    """MMS through `content`, a page at a time at the provider's floor of Java starts.

    Per page: the pdu rows in one query (one shell start), then the parts of the whole
    page in one ``mid IN (...)`` query and one address query per MMS (the provider has
    no bulk address URI), all in a second shell start; part bytes are read at upload.
    Where the provider refuses ``hex()`` in a projection, the reader falls back to
    :func:`query_rows` and per-message queries (five Java starts per MMS).
    """

    def __init__(self, shell: PrivilegedShell) -> None:
        self.shell = shell
        self.exact = True
        self._previous_details: dict[int, tuple[list[Row], list[Row]]] = {}
        """The last page's addresses and parts, by MMS row id (one page, no bytes)."""

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
        if not self.exact:
            return self._page_by_message(offset, limit)
        try:
            return self._exact_page(offset, limit)
        except PhoneError as error:
            # A provider that takes column names only (a strict projection map) refuses
            # hex(): the same page read per message tells that from a phone that fails.
            page = self._page_by_message(offset, limit)
            log.info("MMS read per message from now on: %s", error.message)
            self.exact = False
            return page

    def _exact_page(self, offset: int, limit: int) -> Page[PhoneMms]:
        (rows,) = query_exact(
            self.shell,
            [
                ExactQuery(
                    "content://mms",
                    PDU_EXACT,
                    sort=f"date DESC, _id DESC LIMIT {int(limit)} OFFSET {int(offset)}",
                )
            ],
            "reading MMS",
        )
        ids = [int(row["_id"] or 0) for row in rows]
        # A page starts again at the second that ended the previous one, so its first
        # MMS were read a moment ago: their rows and parts do not change, so they are
        # not asked for again (one address query per MMS is the provider's floor).
        known = self._previous_details
        details = self.details([i for i in ids if i not in known])
        details.update({i: known[i] for i in ids if i in known})
        self._previous_details = details
        messages = [
            self._phone_mms(row, row_id, *details.get(row_id, ([], [])))
            for row, row_id in zip(rows, ids, strict=True)
        ]
        return Page(messages=messages, rows=len(rows), unusable=0)

    def details(self, ids: Sequence[int]) -> dict[int, tuple[list[Row], list[Row]]]:
        """Addresses and parts of these MMS: one shell start, 1 + len(ids) queries."""
        if not ids:
            return {}
        listed = ",".join(str(row_id) for row_id in ids)
        queries = [
            ExactQuery("content://mms/part", PART_EXACT, where=f"mid IN ({listed})",
                       sort="mid ASC, seq ASC, _id ASC"),
            *(ExactQuery(f"content://mms/{row_id}/addr", ADDR_EXACT, sort="_id ASC")
              for row_id in ids),
        ]  # fmt: skip
        part_rows, *address_rows = query_exact(self.shell, queries, "reading MMS")
        found: dict[int, tuple[list[Row], list[Row]]] = {
            row_id: (addresses, []) for row_id, addresses in zip(ids, address_rows, strict=True)
        }
        for part in part_rows:
            mid = _int(part.get("mid"))
            if mid in found:
                found[mid][1].append(part)
        return found

    def _page_by_message(self, offset: int, limit: int) -> Page[PhoneMms]:
        rows = self.query(
            "content://mms",
            MMS_PROJECTION,
            sort=f"date DESC, _id DESC LIMIT {int(limit)} OFFSET {int(offset)}",
        )
        messages = [self._phone_mms(row, _int(row.get("_id")) or 0) for row in rows]
        return Page(messages=messages, rows=len(rows), unusable=0)

    def _phone_mms(
        self,
        row: Row,
        row_id: int,
        address_rows: Sequence[Row] | None = None,
        part_rows: Sequence[Row] | None = None,
    ) -> PhoneMms:
        """One MMS of a page; one that cannot be read is kept with its problem, so a
        page goes on and the MMS is reported rather than silently left out."""
        date_ms = (_int(row.get("date")) or 0) * 1000
        try:
            mms, file_parts = self.message(row, address_rows, part_rows)
            return PhoneMms(mms, row_id, date_ms, file_parts=file_parts, read_part=self.part_bytes)
        except (PhoneError, ValueError, KeyError) as error:
            problem = error.message if isinstance(error, PhoneError) else repr(error)
            log.warning("could not read MMS _id=%s: %s", row_id, problem)
            return PhoneMms(None, row_id, date_ms, problem)

    def part_bytes(self, part_id: int, mms_id: int) -> bytes:
        return self.shell.read_bytes(
            content_command("read", "--uri", f"content://mms/part/{part_id}"),
            f"reading part {part_id} of MMS {mms_id}",
        )

    def message(
        self,
        row: Row,
        address_rows: Sequence[Row] | None = None,
        part_rows: Sequence[Row] | None = None,
    ) -> tuple[Mms, tuple[int | None, ...]]:
        """The MMS without attachment bytes, and which parts hold bytes in a file.

        Addresses and parts are queried now unless given (read for a whole page)."""
        row_id = int(row["_id"] or "")
        box = _int(row.get("msg_box"))
        date_s = _int(row.get("date"))
        if box not in Box._value2member_map_ or date_s is None:
            raise ValueError(f"msg_box {row.get('msg_box')!r}, date {row.get('date')!r}")
        if address_rows is None:
            address_rows = self.query(f"content://mms/{row_id}/addr", ADDR_PROJECTION)
        if part_rows is None:
            part_rows = self.query(
                "content://mms/part", PART_PROJECTION, where=f"mid={row_id}", sort="seq ASC"
            )
        addresses = tuple(
            (address["address"] or "", AddressKind(int(address["type"] or 0)))
            for address in address_rows
            if _int(address.get("type")) in AddressKind._value2member_map_
        )
        parts = []
        file_parts: list[int | None] = []
        for part in part_rows:
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
