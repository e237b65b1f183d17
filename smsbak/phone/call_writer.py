"""Writing calls back into the phone's call log with ``content insert``, confirmed by re-query.

Works like the SMS writer (:mod:`smsbak.phone.writer`, whose chunking, timeouts,
confirmation and escaping fallback it shares), with two differences:

- There is no app-op to grant: the call log is not behind WRITE_SMS, and the
  shell user or root may write it as it is. ``prepare`` and ``finish`` do nothing.
- ``new`` is bound to 0, so restored missed calls raise no "missed call"
  notification; an empty number (a withheld or unknown caller) gets
  ``presentation`` 3 (unknown), as Android's own ``CallLog.addCall`` does, so the
  call log shows "Unknown" instead of a blank line with a call-back button.

All six call types are restored as they were. Blocked (6) and rejected (5) rows
are only history lines: inserting one makes no phone ring and blocks no number.
Voicemail (4) rows are the doubtful ones: the reference says nothing, but
Android's call log provider may refuse them to anyone but a voicemail app (they
belong to a voicemail source, and the recording itself is not in any backup).
Not device-tested; so voicemail rows are written last, where such a refusal
costs nothing else: every other call is then already written and confirmed,
and the error says which rows are left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from smsbak.errors import PhoneError
from smsbak.model import Call, CallType, call_fingerprint
from smsbak.phone.privileged import (
    content_command,
    escape_bind_value,
    query_rows,
    tell_null_from_text,
)
from smsbak.phone.writer import ConfirmedInserts, StoredRow
from smsbak.ports import TargetCapabilities

CALLS_URI = "content://call_log/calls"
PROJECTION = ("_id", "date", "type", "duration", "number")
"""The number is free text (any characters): it must be the last column."""
PRESENTATION_UNKNOWN = 3
"""``CallLog.Calls.PRESENTATION_UNKNOWN``: what Android gives a call without a number."""


def _rows_to_stored(rows: Iterable[dict[str, str | None]]) -> list[StoredRow]:
    stored = []
    for row in rows:
        try:
            call_type = CallType(int(row["type"] or 0))
            date_ms = int(row["date"] or 0)
            duration_s = int(row["duration"] or 0)
            row_id = int(row["_id"] or 0)
        except ValueError:
            continue  # types a backup never holds (7 answered elsewhere, vendor types)
        number = row["number"] or ""
        stored.append(StoredRow(row_id, call_fingerprint(call_type, number, date_ms, duration_s)))
    return stored


class PhoneCallLog(ConfirmedInserts[Call]):
    """The restore target "phone" for calls: the call log reached through rish or su."""

    uri = CALLS_URI
    noun = "calls"
    capabilities = TargetCapabilities(sms=False, mms=False, calls=True)

    @property
    def description(self) -> str:
        return f"the phone's call log, through {self.shell.description}"

    def _query(self, where: str | None = None) -> list[StoredRow]:
        """Rows as fingerprints, read as the SMS store is: forged rows and "NULL" stay text.

        A number is free text too (a SIP address, a caller id someone chose), so
        the call log is read with :func:`query_rows`, which asks for the ``_id``
        column first in the same shell start: still one rish/su start per
        confirmation, but two ``content`` queries where the old parser used one.
        A row read wrongly would never be found, so the restore would fail and
        every re-run would insert the call again.
        """
        what = "reading the call log"
        rows = query_rows(self.shell, CALLS_URI, PROJECTION, what, where=where)
        tell_null_from_text(self.shell, CALLS_URI, rows, ("number",), what)
        return _rows_to_stored(rows)

    def existing_fingerprints(self) -> set[str]:
        """Every call already in the phone's call log."""
        return {row.fingerprint for row in self._query()}

    def prepare(self) -> None:
        """Nothing to grant: the shell user and root may write the call log as it is.

        Reading it (``existing_fingerprints``, which a restore runs first) has
        already shown that the shell works; one more check would cost a Java start.
        """

    def finish(self) -> None:
        """Nothing to reset: ``prepare`` changed nothing on the phone."""

    def next_steps(self) -> list[str]:
        return [
            "Open your phone app's call history: the calls are there "
            "(restart the app if it was open)."
        ]

    def write(
        self,
        calls: Sequence[Call],
        *,
        on_written: Callable[[Sequence[Call]], None],
        on_rejected: Callable[[Call, str], None],
    ) -> None:
        """Insert in chunks, voicemail rows last; report each chunk once confirmed."""
        ordered = sorted(calls, key=lambda call: call.type is CallType.VOICEMAIL)
        settled: set[str] = set()

        def written(part: Sequence[Call]) -> None:
            settled.update(call.fingerprint for call in part)
            on_written(part)

        def rejected(call: Call, reason: str) -> None:
            settled.add(call.fingerprint)
            on_rejected(call, reason)

        try:
            self._write(ordered, written, rejected)
        except PhoneError as error:
            left = [call for call in ordered if call.fingerprint not in settled]
            if not left or any(call.type is not CallType.VOICEMAIL for call in left):
                raise
            raise PhoneError(
                f"could not write {len(left)} voicemail entries; every other call is "
                f"restored ({error.message})",
                "Android may let only a voicemail app add voicemail entries to the call log: "
                "if the error says so, nothing else is missing (an entry holds no recording "
                "anyway). Otherwise fix the error and run the restore again: calls already "
                "there are skipped",
            ) from error

    def _insert_command(self, call: Call) -> str:
        binds = [
            f"number:s:{self._text(call.number)}",
            f"date:l:{call.date_ms}",
            f"duration:l:{call.duration_s}",
            f"type:i:{int(call.type)}",
            "new:i:0",
        ]
        if not call.number:
            binds.append(f"presentation:i:{PRESENTATION_UNKNOWN}")
        args = ["insert", "--uri", CALLS_URI]
        for bind in binds:
            args += ["--bind", bind]
        return content_command(*args)

    def _free_texts(self, call: Call) -> tuple[str, ...]:
        return (call.number,)

    def _fingerprint(self, call: Call) -> str:
        return call.fingerprint

    def _escaped_fingerprint(self, call: Call) -> str:
        return call_fingerprint(
            call.type, escape_bind_value(call.number), call.date_ms, call.duration_s
        )

    def _date_ms(self, call: Call) -> int:
        return call.date_ms

    def _lost(self, missing: int, chunk: int, written: int) -> PhoneError:
        other = "root (su)" if self.shell.kind == "rish" else "Shizuku (rish)"
        return PhoneError(
            f"the phone did not keep {missing} of {chunk} calls just written "
            f"({written} were confirmed and are recorded)",
            "the call log took the inserts without an error but has no such rows (a "
            "provider that drops an unknown column, or the call log of another user or "
            "work profile): run the restore again, which skips the calls already there; "
            f"if rows still go missing, try {other} instead",
        )
