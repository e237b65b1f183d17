"""The restore engine: read the archive at a destination, decode, choose, skip what the
target has, write.

Reads smsbak's and SMS Backup+'s emails alike (by their ``X-smssync-*``
headers only). Emails that are not SMS records are counted by reason, never
fatal. What was read is also recorded in the state store as backed up *at the place it
was read from* (destination identity + label), so the next backup there does not
upload it again. Sees only ports: the wiring hands it a Destination and a target.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, overload

from smsbak.backup import KIND_CALL, KIND_MMS, KIND_SMS, Progress
from smsbak.errors import MissingFolder, SmsbakError
from smsbak.mime import DecodeError, datatype_of, decode_call, decode_mms, decode_sms
from smsbak.model import Box, Call, Mms, Sms
from smsbak.ports import Destination, TargetCapabilities
from smsbak.report import RestoreReport
from smsbak.store import RunCounts, Spool, SpoolRow, StateStore, Uploaded, place_key

log = logging.getLogger(__name__)

Record = Sms | Call | Mms

RESTORED_BOXES = frozenset({Box.INBOX, Box.SENT})
"""As SMS Backup+ did. Drafts, outbox, failed and queued rows are left out: a messaging
app may send what sits in the outbox or queue, and a restore must never send."""


class RestoreTarget(Protocol):
    @property
    def description(self) -> str: ...

    @property
    def capabilities(self) -> TargetCapabilities: ...

    def existing_fingerprints(self) -> set[str] | None: ...

    def prepare(self) -> None: ...

    def write(
        self,
        messages: Sequence[Any],
        *,
        on_written: Callable[[Sequence[Any]], None],
        on_rejected: Callable[[Any, str], None],
    ) -> None: ...

    def finish(self) -> None: ...

    def next_steps(self) -> list[str]: ...


@dataclass(frozen=True)
class RecordKind:
    """What a restore brings back: SMS (label SMS) or calls (label Call log)."""

    kind: str
    noun: str
    decode: Callable[[bytes], Record]

    def refusal(self, record: Record) -> str | None:
        """Why a decoded record must not be written, or None."""
        if isinstance(record, Sms | Mms) and record.box not in RESTORED_BOXES:
            return f"{record.box.name.lower()} message (only received and sent are restored)"
        return None

    @staticmethod
    def address(record: Record) -> str:
        if isinstance(record, Mms):
            return record.sender or next((a for a, _ in record.addresses), "")
        return record.address if isinstance(record, Sms) else record.number


def decode_message(raw: bytes) -> Sms | Mms:
    """The SMS label holds SMS and MMS alike (as SMS Backup+ kept them)."""
    return decode_mms(raw) if datatype_of(raw) == "MMS" else decode_sms(raw)


SMS_KIND = RecordKind(KIND_SMS, "messages", decode_message)
CALL_KIND = RecordKind(KIND_CALL, "calls", decode_call)


@dataclass(frozen=True)
class RestoreOptions:
    label: str = "SMS"
    since_ms: int | None = None
    until_ms: int | None = None
    contact: str | None = None
    limit: int | None = None
    dry_run: bool = False
    what: RecordKind = SMS_KIND
    record_as_backed_up: bool = True
    """Recorded for the place read from (destination + label): a backup into that
    place then does not upload them again; another place is not affected."""


_RECORD_BATCH = 500


class _Planned(Sequence[Record]):
    """The records to write, oldest first, decoded from the spool as the target reads
    them: a target that writes in chunks (the phone) holds one chunk at a time."""

    def __init__(self, spool: Spool, decode: Callable[[bytes], Record]) -> None:
        self._spool = spool
        self._decode = decode
        self._length = spool.planned_count

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[Record]:
        return (self._decode(row.data) for row in self._spool.planned())

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | Sequence[Record]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._length)
            if step == 1:
                return [self._decode(r.data) for r in self._spool.planned_at(start, stop)]
            return [self[i] for i in range(start, stop, step)]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(index)
        (row,) = self._spool.planned_at(index, index + 1)
        return self._decode(row.data)


def _message_id(raw: bytes) -> str:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    message = email.message_from_bytes(head + b"\r\n\r\n", policy=email.policy.compat32)
    return str(message.get("Message-ID", "")).strip()


def _more_exact(record: Record, than: Record) -> bool:
    """Two copies of one message (same fingerprint): SMS Backup+ kept the exact
    milliseconds, a copy from a reader with whole seconds did not. Keep the exact one."""
    return record.date_ms % 1000 != 0 and than.date_ms % 1000 == 0


def _explain_partial(error: SmsbakError, report: RestoreReport, landed: int | None) -> None:
    """A write that failed halfway: say how far it got and that running again is safe.

    ``landed`` is how many of the pending messages a fresh read of the target found
    (None when it could not be read either). A new run reads the phone first and
    skips what is there, so nothing is written twice.
    """
    if landed is not None:
        report.written = max(report.written, landed)
    done = f"{report.written} of {report.to_write} {report.noun} were restored before this"
    if landed is None:
        done += "; the phone could not be read again to check for more"
    error.message += f" ({done})"
    again = (
        "running `smsbak restore` again is safe: what is already on the phone is "
        "skipped, nothing is written twice"
    )
    error.hint = f"{error.hint}; then {again}" if error.hint else again
    error.completed = report


class RestoreEngine:
    def __init__(
        self,
        *,
        archive: Destination,
        target: RestoreTarget,
        store: StateStore,
        matches_contact: Callable[[str, str], bool],
        progress: Callable[[Progress], None] = lambda _: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.archive = archive
        self.target = target
        self.store = store
        self.matches_contact = matches_contact
        self.progress = progress
        self.clock = clock

    def run(self, options: RestoreOptions) -> RestoreReport:
        started = self.clock()
        report = RestoreReport(
            target=self.target.description,
            dry_run=options.dry_run,
            noun=options.what.noun,
            source=self.archive.description,
        )
        place = place_key(self.archive.identity, options.label)
        spool = self.store.spool()
        try:
            return self._run(options, report, place, spool, started)
        finally:
            spool.close()

    def _run(
        self,
        options: RestoreOptions,
        report: RestoreReport,
        place: str,
        spool: Spool,
        started: float,
    ) -> RestoreReport:
        """What was read waits in ``spool`` (the emails' bytes, decoded again as they are
        written), so a restore holds one batch of records, not the whole archive."""
        self._read_archive(options, report, spool)
        existing = self.target.existing_fingerprints()
        where = self.target.capabilities.existing_in
        if existing is None:
            report.warnings.append(
                f"could not read what is already {where}; nothing was skipped as present"
            )
            existing = set()
        report.already_on_phone = spool.mark(existing)
        report.already_where = where
        del existing
        report.to_write = spool.plan_unmarked()
        if options.dry_run:
            report.seconds = self.clock() - started
            return report
        run_id = self.store.start_run("restore", place)
        if options.record_as_backed_up:
            # At this place already: the next backup into it must not upload them again.
            self._record(spool, place)
        pending = _Planned(spool, options.what.decode)
        try:
            if report.to_write:
                try:
                    self._write(pending, report, options.what.kind)
                except SmsbakError as error:
                    _explain_partial(error, report, self._landed(spool))
                    raise
            report.next_steps = self.target.next_steps()
        except BaseException as error:
            self.store.finish_run(
                run_id, "failed", self._counts(report), str(error) or type(error).__name__
            )
            raise
        finally:
            report.seconds = self.clock() - started
        self.store.finish_run(
            run_id, "partial" if report.refused else "ok", self._counts(report), None
        )
        return report

    def _landed(self, spool: Spool) -> int | None:
        """After a failed write: how many planned records the target now holds, if it says."""
        try:
            now = self.target.existing_fingerprints()
        except SmsbakError:
            return None
        if now is None:
            return None
        return sum(1 for row in spool.planned(payload=False) if row.fingerprint in now)

    @staticmethod
    def _counts(report: RestoreReport) -> RunCounts:
        return RunCounts(
            scanned=report.sms_found,
            uploaded=report.written,
            skipped=report.already_on_phone,
            failed=len(report.refused),
        )

    def _chosen(self, sms: Record, options: RestoreOptions) -> bool:
        if options.since_ms is not None and sms.date_ms < options.since_ms:
            return False
        if options.until_ms is not None and sms.date_ms >= options.until_ms:
            return False
        return options.contact is None or self.matches_contact(
            options.what.address(sms), options.contact
        )

    def _read_archive(self, options: RestoreOptions, report: RestoreReport, spool: Spool) -> None:
        folder = self.archive.find_folder(options.label)
        if folder is None:
            raise MissingFolder(
                f"there is no label (folder) {options.label!r} in {self.archive.description}",
                "check the label name (`--label`) and that the `destination` setting names "
                "the place the backup went to (the Gmail account, IMAP server and user, or "
                "Maildir path)",
            )
        ids = list(self.archive.list_ids(folder))
        report.listed = len(ids)

        def fetched(parts: Sequence[tuple[str, bytes]]) -> None:
            for gmail_id, raw in parts:
                report.fetched += 1
                try:
                    sms = options.what.decode(raw)
                except DecodeError as error:
                    report.skipped[error.reason] += 1
                    continue
                report.sms_found += 1
                refusal = options.what.refusal(sms)
                if isinstance(sms, Mms) and not self.target.capabilities.mms:
                    refusal = (
                        "MMS (smsbak cannot write MMS into the phone; "
                        "--to smsie:FILE.zip or --to xml:FILE.xml keeps them)"
                    )
                if refusal:
                    # A queued or outbox row is what messaging apps send: never write one.
                    report.skipped[refusal] += 1
                    continue
                if not self._chosen(sms, options):
                    report.not_chosen += 1
                    continue
                fingerprint = sms.fingerprint
                earlier = spool.get(fingerprint)
                if earlier is not None:
                    report.duplicates_in_archive += 1
                    if not _more_exact(sms, options.what.decode(earlier.data)):
                        continue
                    spool.remove(fingerprint)
                kind = KIND_MMS if isinstance(sms, Mms) else options.what.kind
                origin = json.dumps([kind, gmail_id, _message_id(raw)])
                spool.put(SpoolRow(fingerprint, sms.date_ms, fingerprint, raw, origin))
            self.progress(Progress("fetch", report.fetched, report.listed))

        def rejected(gmail_id: str, reason: str) -> None:
            report.not_fetched += 1
            report.skipped[f"not fetched ({reason.split(':')[0]})"] += 1

        # Everything is read even with --limit: Gmail lists by its internal date,
        # which for old SMS Backup+ uploads need not be the message's date.
        self.archive.fetch_raw(ids, on_fetched=fetched, on_rejected=rejected)
        del ids
        if options.limit is not None:
            report.left_by_limit = spool.keep_newest(options.limit)

    def _record(self, spool: Spool, place: str) -> None:
        """Everything read, recorded at ``place`` a batch at a time (each row is true on
        its own: the email is in the archive there)."""
        batch: list[Uploaded] = []
        for row in spool.rows(payload=False):
            kind, gmail_id, message_id = json.loads(row.ref)
            batch.append(Uploaded(row.fingerprint, kind, row.date_ms, gmail_id, message_id))
            if len(batch) >= _RECORD_BATCH:
                self.store.record_uploaded(batch, place)
                batch = []
        if batch:
            self.store.record_uploaded(batch, place)

    def _write(self, pending: _Planned, report: RestoreReport, kind: str) -> None:
        total = len(pending)
        self.progress(Progress("write", 0, total))

        def written(parts: Sequence[Record]) -> None:
            report.written += len(parts)
            self.progress(Progress("write", report.written + len(report.refused), total))

        def refused(sms: Record, reason: str) -> None:
            log.warning("could not restore %s %s: %s", kind, sms.fingerprint[:12], reason)
            report.refused.append(reason)

        self.target.prepare()
        try:
            self.target.write(pending, on_written=written, on_rejected=refused)
        finally:
            self.target.finish()
