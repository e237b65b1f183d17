"""Writing SMS back into the phone's store with ``content insert``, confirmed by re-query.

Android silently drops writes to the SMS store from anyone but the default SMS
app unless the WRITE_SMS app-op is allowed for the shell, and ``content``
prints nothing either way. So nothing counts as restored until a query shows
the row, and a missing row stops the restore with an error rather than a
success that is not one.

:class:`ConfirmedInserts` holds what every such writer shares (chunks that fit
one shell start, timeouts, confirmation, the legacy-escaping fallback); the call
log writer in :mod:`smsbak.phone.call_writer` builds on it too.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from smsbak.errors import PhoneError
from smsbak.model import Box, Sms, sms_fingerprint
from smsbak.phone.privileged import (
    PrivilegedShell,
    content_command,
    escape_bind_value,
    query_rows,
    tell_null_from_text,
)
from smsbak.ports import TargetCapabilities

log = logging.getLogger(__name__)

SMS_URI = "content://sms"
PROJECTION = ("_id", "date", "type", "address", "body")
SHELL_PACKAGE = "com.android.shell"
CHUNK = 50
"""Inserts per shell start: one rish/su process and one confirming query per chunk."""
MAX_SCRIPT_BYTES = 100_000
"""Under Linux's 128 KiB limit for one argument (the script given to rish -c / su -c)."""
PER_CALL_SECONDS = 3.0
"""Generous time for one `content` call (a Java start, hundreds of ms on a phone)."""

Item = TypeVar("Item")


@dataclass(frozen=True)
class StoredRow:
    row_id: int
    fingerprint: str


class ConfirmedInserts(ABC, Generic[Item]):
    """Chunked ``content insert`` through one shell start per chunk, each chunk
    confirmed by a re-query of its date range before it is reported written.

    A subclass says how one item becomes an insert, how rows read back become
    fingerprints, and what a lost row means for its kind of data.
    """

    uri: str
    noun: str
    """Plural for messages to a person: "messages", "calls"."""

    def __init__(self, shell: PrivilegedShell, *, chunk: int = CHUNK) -> None:
        self.shell = shell
        self.chunk = chunk
        self.escaping = "modern"

    # ------------------------------------------------------------ per kind

    @abstractmethod
    def _insert_command(self, item: Item) -> str:
        """The ``content insert`` line; free text goes through :meth:`_text`."""

    @abstractmethod
    def _free_texts(self, item: Item) -> tuple[str, ...]:
        """The text values bound with ``:s:`` (checked for NUL characters)."""

    @abstractmethod
    def _fingerprint(self, item: Item) -> str: ...

    @abstractmethod
    def _escaped_fingerprint(self, item: Item) -> str:
        """The fingerprint of the row a legacy ``content`` stores from our escaped text."""

    @abstractmethod
    def _date_ms(self, item: Item) -> int: ...

    @abstractmethod
    def _query(self, where: str | None = None) -> list[StoredRow]: ...

    @abstractmethod
    def _lost(self, missing: int, chunk: int, written: int) -> PhoneError:
        """The error for rows a confirming query did not find."""

    # ------------------------------------------------------------ shared

    def _text(self, value: str) -> str:
        return escape_bind_value(value) if self.escaping == "modern" else value

    def _write(
        self,
        items: Sequence[Item],
        on_written: Callable[[Sequence[Item]], None],
        on_rejected: Callable[[Item, str], None],
    ) -> None:
        """Insert in chunks; report each chunk once a query has confirmed it."""
        for chunk in self._chunks(items, on_rejected):
            try:
                missing = self._write_chunk(chunk)
            except PhoneError:
                self._report_landed(chunk, on_written)
                raise
            lost = {self._fingerprint(item) for item in missing}
            written = [item for item in chunk if self._fingerprint(item) not in lost]
            if written:
                on_written(written)
            if missing:
                raise self._lost(len(missing), len(chunk), len(written))

    def _report_landed(
        self, chunk: list[Item], on_written: Callable[[Sequence[Item]], None]
    ) -> None:
        """After a failure inside a chunk: report the inserts that made it anyway."""
        try:
            lost = {self._fingerprint(item) for item in self._missing(chunk)}
        except PhoneError:
            return  # queries fail too: a re-run skips whatever is on the phone
        landed = [item for item in chunk if self._fingerprint(item) not in lost]
        if landed:
            on_written(landed)

    def _insert(self, items: list[Item]) -> None:
        """One shell start for many inserts; each `content` is a Java start on the phone."""
        seconds = PER_CALL_SECONDS * (len(items) + 1) + 30
        try:
            self.shell.check(
                "\n".join(self._insert_command(item) for item in items),
                f"writing {self.noun}",
                timeout=seconds,
            )
        except PhoneError as error:
            if "did not answer" not in error.message:
                raise
            raise PhoneError(
                f"the phone took longer than {seconds:g} s to write {len(items)} {self.noun}",
                f"wait a minute (it may still be writing), then run the restore again: "
                f"{self.noun} already on the phone are skipped",
            ) from None

    def _chunks(
        self, items: Sequence[Item], on_rejected: Callable[[Item, str], None]
    ) -> Iterator[list[Item]]:
        """Up to ``chunk`` items whose commands fit in one argument to rish/su.

        Linux refuses a single argument over 128 KiB (E2BIG), and 50 long
        messages in a non-Latin script can exceed that.
        """
        chunk: list[Item] = []
        size = 0
        for item in items:
            if any("\x00" in text for text in self._free_texts(item)):
                on_rejected(item, "contains a NUL character, which `content` cannot take")
                continue
            command = len(self._insert_command(item).encode("utf-8")) + 1
            if command > MAX_SCRIPT_BYTES:
                on_rejected(item, "too long for one `content` command line")
                continue
            if chunk and (len(chunk) >= self.chunk or size + command > MAX_SCRIPT_BYTES):
                yield chunk
                chunk, size = [], 0
            chunk.append(item)
            size += command
        if chunk:
            yield chunk

    def _write_chunk(self, chunk: list[Item]) -> list[Item]:
        """Insert and confirm; returns the items the phone did not keep."""
        self._insert(chunk)
        missing = self._missing(chunk)
        if missing and self.escaping == "modern" and self._stored_literally(missing):
            # An older `content` keeps "\:" as two characters: undo, write unescaped.
            log.info("this phone's content tool does not unescape; writing unescaped")
            self.escaping = "legacy"
            self._insert(missing)
            missing = self._missing(chunk)
        return missing

    def _in_dates(self, items: list[Item]) -> list[StoredRow]:
        low = min(self._date_ms(item) for item in items)
        high = max(self._date_ms(item) for item in items)
        return self._query(f"date>={low} AND date<={high}")

    def _missing(self, chunk: list[Item]) -> list[Item]:
        present = {row.fingerprint for row in self._in_dates(chunk)}
        return [item for item in chunk if self._fingerprint(item) not in present]

    def _stored_literally(self, missing: list[Item]) -> bool:
        """Were the missing ones stored with our escapes kept? Then delete those rows."""
        wanted = {self._escaped_fingerprint(item) for item in missing}
        wrong = [row.row_id for row in self._in_dates(missing) if row.fingerprint in wanted]
        if not wrong:
            return False
        ids = ",".join(str(row_id) for row_id in wrong)
        self.shell.check(
            content_command("delete", "--uri", self.uri, "--where", f"_id IN ({ids})"),
            "removing wrongly escaped rows",
        )
        return True


def _rows_to_stored(rows: Iterable[dict[str, str | None]]) -> list[StoredRow]:
    stored = []
    for row in rows:
        try:
            box = Box(int(row["type"] or 0))
            date_ms = int(row["date"] or 0)
            row_id = int(row["_id"] or 0)
        except ValueError:
            continue  # types the restore never writes (0, unknown)
        address, body = row["address"] or "", row["body"] or ""
        stored.append(StoredRow(row_id, sms_fingerprint(box, address, date_ms, body)))
    return stored


class PhoneSmsStore(ConfirmedInserts[Sms]):
    """The restore target "phone": the SMS store reached through rish or su."""

    uri = SMS_URI
    noun = "messages"
    capabilities = TargetCapabilities(sms=True, mms=False, calls=False)
    """smsbak cannot write MMS into the phone (yet)."""

    @property
    def description(self) -> str:
        return f"the phone's SMS store, through {self.shell.description}"

    def _query(self, where: str | None = None) -> list[StoredRow]:
        """Rows as fingerprints: read so that hostile text and the text "NULL" come back whole.

        Both matter for every check against the phone (what is already there, and
        the confirmation after inserting): a row read wrongly is never found, so the
        restore fails and each re-run would insert it again.
        """
        what = "reading the SMS store"
        rows = query_rows(self.shell, SMS_URI, PROJECTION, what, where=where)
        tell_null_from_text(self.shell, SMS_URI, rows, ("address", "body"), what)
        return _rows_to_stored(rows)

    def existing_fingerprints(self) -> set[str]:
        """Everything already on the phone, every box included."""
        return {row.fingerprint for row in self._query()}

    def prepare(self) -> None:
        self.shell.check(
            f"appops set {SHELL_PACKAGE} WRITE_SMS allow", "allowing the shell to write SMS"
        )

    def finish(self) -> None:
        """Put the app-op back to Android's default: the shell keeps no extra right."""
        try:
            self.shell.check(
                f"appops set {SHELL_PACKAGE} WRITE_SMS default", "resetting the WRITE_SMS app-op"
            )
        except PhoneError as error:
            log.warning("could not reset the WRITE_SMS app-op: %s", error.message)

    def next_steps(self) -> list[str]:
        return [
            "Open your messaging app: the messages are in their conversations "
            "(restart it if it was open)."
        ]

    def write(
        self,
        messages: Sequence[Sms],
        *,
        on_written: Callable[[Sequence[Sms]], None],
        on_rejected: Callable[[Sms, str], None],
    ) -> None:
        """Insert in chunks; report each chunk once a query has confirmed it."""
        self._write(messages, on_written, on_rejected)

    def _insert_command(self, sms: Sms) -> str:
        return content_command(
            "insert",
            "--uri",
            SMS_URI,
            "--bind",
            f"address:s:{self._text(sms.address)}",
            "--bind",
            f"body:s:{self._text(sms.body)}",
            "--bind",
            f"date:l:{sms.date_ms}",
            "--bind",
            f"type:i:{int(sms.box)}",
            "--bind",
            f"read:i:{0 if sms.read is False else 1}",
            "--bind",
            "seen:i:1",
            # Which SIM, when the backup knew it (the privileged reader does).
            *(["--bind", f"sub_id:i:{sms.sub_id}"] if sms.sub_id is not None else []),
            # When it was sent, as the sender's phone said (a backup may not know it).
            *(["--bind", f"date_sent:l:{sms.date_sent_ms}"] if sms.date_sent_ms else []),
        )

    def _free_texts(self, sms: Sms) -> tuple[str, ...]:
        return (sms.address, sms.body)

    def _fingerprint(self, sms: Sms) -> str:
        return sms.fingerprint

    def _escaped_fingerprint(self, sms: Sms) -> str:
        return sms_fingerprint(
            sms.box, escape_bind_value(sms.address), sms.date_ms, escape_bind_value(sms.body)
        )

    def _date_ms(self, sms: Sms) -> int:
        return sms.date_ms

    def _lost(self, missing: int, chunk: int, written: int) -> PhoneError:
        return PhoneError(
            f"the phone did not keep {missing} of {chunk} messages just "
            f"written ({written} were confirmed and are recorded)",
            "Android drops SMS writes unless the WRITE_SMS app-op is allowed for the "
            f"shell: check `appops get {SHELL_PACKAGE} WRITE_SMS` through "
            f"{self.shell.kind}; running the restore again skips what is already there",
        )
