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
from collections.abc import Iterator
from datetime import tzinfo

from smsbak.errors import PhoneError
from smsbak.model import Box, Sms
from smsbak.phone.privileged import PrivilegedShell, content_command, parse_content_rows
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

SMS_PROJECTION = ("_id", "thread_id", "date", "type", "read", "sub_id", "address", "body")
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
    return Sms(
        address=row.get("address") or "",
        body=row.get("body") or "",
        date_ms=date_ms,
        box=Box(box_value or 0),
        read=None if read is None else bool(read),
        thread_id=_int(row.get("thread_id")),
        android_id=_int(row.get("_id")),
        sub_id=None if sub_id is None or sub_id < 0 else sub_id,
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
        command = content_command(
            "query",
            "--uri",
            "content://sms",
            "--projection",
            ":".join(SMS_PROJECTION),
            "--sort",
            order,
        )
        result = self.shell.check(command, "reading SMS")
        rows = parse_content_rows(result.stdout, SMS_PROJECTION)
        for row in rows:
            self._tell_null_from_text(row)
        messages = []
        for row in rows:
            sms = sms_from_row(row)
            if sms is None:
                log.warning("skipped SMS row _id=%s: unusable type or date", row.get("_id"))
                continue
            messages.append(PhoneSms(sms=sms, contact_name=None))
        return Page(messages=messages, rows=len(rows), unusable=len(rows) - len(messages))

    def _tell_null_from_text(self, row: dict[str, str | None]) -> None:
        """`content` prints both a NULL value and the text "NULL" as NULL: ask again.

        Rare (an SMS whose text is the word NULL), so one extra query per such row.
        """
        row_id = _int(row.get("_id"))
        for column in ("address", "body"):
            if row.get(column) is not None or row_id is None:
                continue
            answer = self.shell.check(
                content_command(
                    "query",
                    "--uri",
                    "content://sms",
                    "--projection",
                    "_id",
                    "--where",
                    f"_id={row_id} AND {column} IS NULL",
                ),
                "reading SMS",
            )
            if not parse_content_rows(answer.stdout, ("_id",)):
                row[column] = "NULL"

    def sms_newest_first(self, page_size: int) -> Iterator[SmsPage]:
        return walk_newest_first(self.sms_page, page_size)

    def calls_newest_first(self, page_size: int) -> Iterator[CallPage]:
        return self.termux.calls_newest_first(page_size)

    def contacts(self) -> list[Contact]:
        return self.termux.contacts()


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
