"""Writing SMS back into the phone's store with ``content insert``, confirmed by re-query.

Android silently drops writes to the SMS store from anyone but the default SMS
app unless the WRITE_SMS app-op is allowed for the shell, and ``content``
prints nothing either way. So nothing counts as restored until a query shows
the row, and a missing row stops the restore with an error rather than a
success that is not one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from smsbak.errors import PhoneError
from smsbak.model import Box, Sms, sms_fingerprint
from smsbak.phone.privileged import (
    PrivilegedShell,
    content_command,
    escape_bind_value,
    parse_content_rows,
)

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


@dataclass(frozen=True)
class StoredRow:
    row_id: int
    fingerprint: str
    body: str


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
        stored.append(StoredRow(row_id, sms_fingerprint(box, address, date_ms, body), body))
    return stored


class PhoneSmsStore:
    """The restore target "phone": the SMS store reached through rish or su."""

    def __init__(self, shell: PrivilegedShell, *, chunk: int = CHUNK) -> None:
        self.shell = shell
        self.chunk = chunk
        self.escaping = "modern"

    @property
    def description(self) -> str:
        return f"the phone's SMS store, through {self.shell.description}"

    def _query(self, where: str | None = None) -> list[StoredRow]:
        args = ["query", "--uri", SMS_URI, "--projection", ":".join(PROJECTION)]
        if where:
            args += ["--where", where]
        result = self.shell.check(content_command(*args), "reading the SMS store")
        return _rows_to_stored(parse_content_rows(result.stdout, PROJECTION))

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

    def _insert_command(self, sms: Sms) -> str:
        def text(value: str) -> str:
            return escape_bind_value(value) if self.escaping == "modern" else value

        return content_command(
            "insert",
            "--uri",
            SMS_URI,
            "--bind",
            f"address:s:{text(sms.address)}",
            "--bind",
            f"body:s:{text(sms.body)}",
            "--bind",
            f"date:l:{sms.date_ms}",
            "--bind",
            f"type:i:{int(sms.box)}",
            "--bind",
            f"read:i:{0 if sms.read is False else 1}",
            "--bind",
            "seen:i:1",
        )

    def write(
        self,
        messages: Sequence[Sms],
        *,
        on_written: Callable[[Sequence[Sms]], None],
        on_rejected: Callable[[Sms, str], None],
    ) -> None:
        """Insert in chunks; report each chunk once a query has confirmed it."""
        for chunk in self._chunks(messages, on_rejected):
            missing = self._write_chunk(chunk)
            written = [sms for sms in chunk if sms not in missing]
            if written:
                on_written(written)
            if missing:
                raise PhoneError(
                    f"the phone did not keep {len(missing)} of {len(chunk)} messages just "
                    f"written ({len(written)} were confirmed and are recorded)",
                    "Android drops SMS writes unless the WRITE_SMS app-op is allowed for the "
                    f"shell: check `appops get {SHELL_PACKAGE} WRITE_SMS` through "
                    f"{self.shell.kind}; running the restore again skips what is already there",
                )

    def _insert(self, messages: list[Sms]) -> None:
        """One shell start for many inserts; each `content` is a Java start on the phone."""
        seconds = PER_CALL_SECONDS * (len(messages) + 1) + 30
        try:
            self.shell.check(
                "\n".join(self._insert_command(sms) for sms in messages),
                "writing messages",
                timeout=seconds,
            )
        except PhoneError as error:
            if "did not answer" not in error.message:
                raise
            raise PhoneError(
                f"the phone took longer than {seconds:g} s to write {len(messages)} messages",
                "wait a minute (it may still be writing), then run the restore again: "
                "messages already on the phone are skipped",
            ) from None

    def _chunks(
        self, messages: Sequence[Sms], on_rejected: Callable[[Sms, str], None]
    ) -> Iterator[list[Sms]]:
        """Up to ``chunk`` messages whose commands fit in one argument to rish/su.

        Linux refuses a single argument over 128 KiB (E2BIG), and 50 long
        messages in a non-Latin script can exceed that.
        """
        chunk: list[Sms] = []
        size = 0
        for sms in messages:
            if "\x00" in sms.address or "\x00" in sms.body:
                on_rejected(sms, "contains a NUL character, which `content` cannot take")
                continue
            command = len(self._insert_command(sms).encode("utf-8")) + 1
            if command > MAX_SCRIPT_BYTES:
                on_rejected(sms, "too long for one `content` command line")
                continue
            if chunk and (len(chunk) >= self.chunk or size + command > MAX_SCRIPT_BYTES):
                yield chunk
                chunk, size = [], 0
            chunk.append(sms)
            size += command
        if chunk:
            yield chunk

    def _write_chunk(self, chunk: list[Sms]) -> list[Sms]:
        """Insert and confirm; returns the messages the phone did not keep."""
        self._insert(chunk)
        missing = self._missing(chunk)
        if missing and self.escaping == "modern" and self._stored_literally(missing):
            # An older `content` keeps "\:" as two characters: undo, write unescaped.
            log.info("this phone's content tool does not unescape; writing unescaped")
            self.escaping = "legacy"
            self._insert(missing)
            missing = self._missing(chunk)
        return missing

    def _missing(self, chunk: list[Sms]) -> list[Sms]:
        low = min(sms.date_ms for sms in chunk)
        high = max(sms.date_ms for sms in chunk)
        present = {row.fingerprint for row in self._query(f"date>={low} AND date<={high}")}
        return [sms for sms in chunk if sms.fingerprint not in present]

    def _stored_literally(self, missing: list[Sms]) -> bool:
        """Were the missing ones stored with our escapes kept? Then delete those rows."""
        low = min(sms.date_ms for sms in missing)
        high = max(sms.date_ms for sms in missing)
        rows = self._query(f"date>={low} AND date<={high}")
        wanted = {
            sms_fingerprint(
                sms.box, escape_bind_value(sms.address), sms.date_ms, escape_bind_value(sms.body)
            )
            for sms in missing
        }
        wrong = [row.row_id for row in rows if row.fingerprint in wanted]
        if not wrong:
            return False
        ids = ",".join(str(row_id) for row_id in wrong)
        self.shell.check(
            content_command("delete", "--uri", SMS_URI, "--where", f"_id IN ({ids})"),
            "removing wrongly escaped rows",
        )
        return True
