"""The import engine: records of archive files -> identity -> what the place lacks ->
the same email a phone backup writes -> uploaded exactly once.

Identity is the phone backup's (``Sms.fingerprint`` and friends: whole seconds, box,
address, body), and the email is built by the same codec, so a message that is both on
the phone and in a file is one email whichever came first, and importing a file twice
uploads nothing the second time. The exactly-once path is :func:`upload_exactly_once`:
recorded in flight before sending, looked up by Message-ID before a re-send on servers
that do not merge, recorded as backed up only once the destination confirmed it, and
only for this place (destination identity + label).

Several files may hold the same messages (backups "collected over the years"): a
message already met in this run is skipped as a duplicate. What was met is spooled in
a temporary SQLite database, not a set, so memory stays flat however many messages
the files hold. Two MMS that agree in everything the fingerprint covers but differ in
their attachment bytes are both kept: the later one gets a digest of its bytes into
its identity, as the phone backup does for such pairs.

A file that breaks partway (``DamagedFileError``) ends that file: what came before the
damage goes up and is recorded, the damage is reported with its position, and the
other files are imported all the same; the report then makes the command fail.
Nothing below prints: progress goes to a callback, the result is an
:class:`ImportReport`.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Protocol

from smsbak.errors import SmsbakError, UsageError
from smsbak.formats.common import MAX_EXAMPLES, FileRecord, ReadStats
from smsbak.mime import encode_call, encode_mms, encode_sms
from smsbak.model import Call, Mms, Sms, mms_content_digest
from smsbak.ports import Destination, Outgoing
from smsbak.store import StateStore, place_key
from smsbak.uploader import Pending, Refusal, upload_exactly_once

KIND_SMS = "sms"
KIND_MMS = "mms"
KIND_CALL = "call"
"""The store's kinds, the same strings the phone backup records."""

KINDS = (KIND_SMS, KIND_MMS, KIND_CALL)
PROGRESS_EVERY = 0.25
"""Seconds between progress updates: a terminal redraw per record would cost more
than the import."""


class ArchiveFile(Protocol):
    """One file of an archive source (``smsbak.sources.archive``)."""

    @property
    def path(self) -> Path: ...

    @property
    def size(self) -> int: ...

    @property
    def holds_calls(self) -> bool:
        """Calls go under the call label, messages under the message label."""

    @property
    def description(self) -> str:
        """What it is, for people: "SMS Backup & Restore messages"."""

    def read(
        self, stats: ReadStats, on_bytes: Callable[[int], None] | None = None
    ) -> Iterator[FileRecord]:
        """The records in file order (``on_bytes`` hears the bytes read so far); damage
        raises a UsageError after what preceded it was yielded."""


class ArchiveSource(Protocol):
    """Files of records: the engine sees this, never an adapter."""

    @property
    def files(self) -> Sequence[ArchiveFile]: ...

    @property
    def total_bytes(self) -> int: ...


@dataclass(frozen=True)
class ImportProgress:
    """``done`` records read so far of an estimated ``total`` (from the bytes read)."""

    phase: str
    done: int
    total: int | None = None


@dataclass
class FileReport:
    """What happened to one file. Counters are per kind (``sms``, ``mms``, ``call``)."""

    path: Path
    kind: str
    read: Counter[str] = field(default_factory=Counter)
    uploaded: Counter[str] = field(default_factory=Counter)
    """Confirmed by the destination and recorded (in a dry run: would be uploaded)."""
    known: Counter[str] = field(default_factory=Counter)
    """Skipped: the state already records them at this place (backed up or imported)."""
    duplicates: Counter[str] = field(default_factory=Counter)
    """Skipped: met earlier in this run (overlapping files, or twice in one file)."""
    refused: list[str] = field(default_factory=list)
    """What the destination refused for good, with its reason."""
    incomplete: int = 0
    """Skipped: MMS whose attachments the file lacks. Recorded as backed up they could
    never be completed from a better copy, so they wait for one."""
    incomplete_examples: list[str] = field(default_factory=list)
    unusable: int = 0
    unusable_examples: list[str] = field(default_factory=list)
    damage: SmsbakError | None = None
    """Why reading stopped early (a damaged file), if it did."""
    stopped: bool = False

    @property
    def skipped(self) -> int:
        return (
            sum(self.known.values())
            + sum(self.duplicates.values())
            + self.unusable
            + self.incomplete
        )


@dataclass
class ImportReport:
    destination: str
    dry_run: bool
    files: list[FileReport] = field(default_factory=list)
    stopped: bool = False
    notes: list[str] = field(default_factory=list)
    """What happened before the upload (adoption of what a folder already held)."""
    found: int = 0
    """Of the uploaded, how many the destination already held (an interrupted run, a lost
    state database): found there by Message-ID and recorded, not sent again."""

    def total(self, counter: str) -> Counter[str]:
        result: Counter[str] = Counter()
        for report in self.files:
            result.update(getattr(report, counter))
        return result

    @property
    def damaged(self) -> list[FileReport]:
        return [f for f in self.files if f.damage is not None]

    @property
    def refused(self) -> int:
        return sum(len(f.refused) for f in self.files)


@dataclass(frozen=True)
class Labels:
    messages: str = "SMS"
    calls: str = "Call log"


class _RunSeen:
    """Fingerprints met in this run, spooled on disk (SQLite's temporary database), with
    the attachment digest of each MMS so look-alike MMS are told apart."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # a private temporary file, gone on close
        self._db.execute("CREATE TABLE seen (fingerprint TEXT PRIMARY KEY, digest TEXT)")

    def add(self, fingerprint: str, digest: str | None = None) -> str | None:
        """Record ``fingerprint``; None when it is new, else the digest it was met with
        (``""`` for a record without one)."""
        row = self._db.execute(
            "SELECT digest FROM seen WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        if row is not None:
            return str(row[0] or "")
        self._db.execute("INSERT INTO seen VALUES (?, ?)", (fingerprint, digest))
        return None

    def has(self, fingerprint: str) -> bool:
        row = self._db.execute("SELECT 1 FROM seen WHERE fingerprint = ?", (fingerprint,))
        return row.fetchone() is not None

    def close(self) -> None:
        self._db.close()


def _kind(record: Sms | Mms | Call) -> str:
    if isinstance(record, Sms):
        return KIND_SMS
    if isinstance(record, Mms):
        return KIND_MMS
    return KIND_CALL


class ImportEngine:
    """Imports the files of an :class:`ArchiveSource` into one destination."""

    def __init__(
        self,
        destination: Destination,
        store: StateStore,
        *,
        account: str = "",
        zone: tzinfo = UTC,
        labels: Labels | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] | None = None,
        prepare_place: Callable[[str, str], list[str]] | None = None,
    ) -> None:
        """``prepare_place(label, place)`` runs before the first upload into a place
        (the wiring adopts what its folder already holds there, as a first backup
        does) and returns notes for the person."""
        self.prepare_place = prepare_place
        self.destination = destination
        self.store = store
        self.account = account
        self.zone = zone
        self.labels = labels or Labels()
        self.clock = clock
        self.now = now or (lambda: datetime.now(UTC))

    def run(
        self,
        source: ArchiveSource,
        *,
        dry_run: bool = False,
        progress: Callable[[ImportProgress], None] = lambda _: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> ImportReport:
        """Import every file; the files of one label go up in one pass of the uploader,
        so whether the place held anything before (a first import there looks every
        chunk up on a server that keeps copies) is decided once for the whole run."""
        report = ImportReport(destination=self.destination.description, dry_run=dry_run)
        files = [(file, FileReport(path=file.path, kind=file.description)) for file in source.files]
        report.files = [file_report for _, file_report in files]
        by_label: dict[str, list[tuple[ArchiveFile, FileReport]]] = {}
        for file, file_report in files:
            label = self.labels.calls if file.holds_calls else self.labels.messages
            by_label.setdefault(label, []).append((file, file_report))
        meter = _Meter(source.total_bytes, progress, self.clock)
        seen = _RunSeen()
        try:
            for label, group in by_label.items():
                if report.stopped or should_stop():
                    report.stopped = True
                    break
                try:
                    self._import_label(label, group, report, seen, meter, dry_run, should_stop)
                except SmsbakError as error:  # the destination gave up: say what was done
                    error.completed = report
                    raise
        finally:
            seen.close()
            meter.finish()
        return report

    def _import_label(
        self,
        label: str,
        group: list[tuple[ArchiveFile, FileReport]],
        report: ImportReport,
        seen: _RunSeen,
        meter: _Meter,
        dry_run: bool,
        should_stop: Callable[[], bool],
    ) -> None:
        place = place_key(self.destination.identity, label)
        if not dry_run and self.prepare_place is not None:
            report.notes += self.prepare_place(label, place)
        when = self.now()
        # fingerprint -> (kind, its file's report), from the uploader until settled
        sending: dict[str, tuple[str, FileReport]] = {}

        def pending() -> Iterator[Pending]:
            for file, file_report in group:
                if should_stop():
                    report.stopped = True
                    return
                stats = ReadStats()
                try:
                    for found in file.read(stats, meter.bytes_read):
                        meter.record()
                        item = self._plan(found, file_report, seen, place, dry_run, when)
                        if item is not None:
                            sending[item.fingerprint] = (item.kind, file_report)
                            yield item
                except UsageError as error:  # damage: what came before it still goes up
                    file_report.damage = error
                finally:
                    file_report.unusable = stats.invalid_skipped
                    file_report.unusable_examples = list(stats.examples)
                meter.file_done(file.size)

        def recorded(fingerprints: Sequence[str]) -> None:
            for fingerprint in fingerprints:
                kind, file_report = sending.pop(fingerprint)
                file_report.uploaded[kind] += 1

        def refused(refusal: Refusal) -> None:
            _, file_report = sending.pop(refusal.fingerprint)
            file_report.refused.append(
                f"{refusal.kind} of {_date(refusal.date_ms)}: {refusal.reason}"
            )

        if dry_run:
            for _ in pending():
                pass
            return
        folder = self.destination.ensure_folder(label)
        outcome = upload_exactly_once(
            self.destination,
            folder,
            self.store,
            place,
            pending(),
            should_stop=should_stop,
            on_recorded=recorded,
            on_refused=refused,
        )
        report.found += outcome.found
        report.stopped = report.stopped or outcome.stopped

    def _plan(
        self,
        found: FileRecord,
        report: FileReport,
        seen: _RunSeen,
        place: str,
        dry_run: bool,
        when: datetime,
    ) -> Pending | None:
        """The upload of one record, or None after counting why it is skipped."""
        record = found.record
        kind = _kind(record)
        report.read[kind] += 1
        if found.incomplete is not None:
            if seen.has(record.fingerprint):
                report.duplicates[kind] += 1  # a complete copy was met already
            elif self.store.known([record.fingerprint], place):
                report.known[kind] += 1
            else:  # left for a complete copy, and not marked as met, so one can follow
                report.incomplete += 1
                if len(report.incomplete_examples) < MAX_EXAMPLES:
                    report.incomplete_examples.append(f"{found.position}: {found.incomplete}")
            return None
        digest = mms_content_digest(record.parts) if isinstance(record, Mms) else None
        earlier = seen.add(record.fingerprint, digest)
        if earlier is not None and isinstance(record, Mms) and earlier != digest:
            # a look-alike MMS with other attachment bytes: another message
            record = replace(record, content_digest=digest)
            earlier = seen.add(record.fingerprint, digest)
        if earlier is not None:
            report.duplicates[kind] += 1
            return None
        fingerprint = record.fingerprint
        if self.store.known([fingerprint], place):
            report.known[kind] += 1
            return None
        if dry_run:
            report.uploaded[kind] += 1  # would be uploaded
            return None
        encoded = self._encode(record, found.names, when)
        return Pending(
            fingerprint,
            kind,
            record.date_ms,
            Outgoing(
                key=fingerprint,
                raw=encoded.raw,
                message_id=encoded.message_id,
                date_ms=record.date_ms,
                seen=not (isinstance(record, Sms | Mms) and record.read is False),
            ),
        )

    def _encode(self, record: Sms | Mms | Call, names: dict[str, str], when: datetime) -> _Encoded:
        if isinstance(record, Sms):
            return encode_sms(
                record,
                account=self.account,
                contact_name=names.get(record.address),
                zone=self.zone,
                backup_time=when,
            )
        if isinstance(record, Mms):
            return encode_mms(
                record, account=self.account, contact_names=names, zone=self.zone, backup_time=when
            )
        return encode_call(
            record,
            account=self.account,
            contact_name=names.get(record.number),
            zone=self.zone,
            backup_time=when,
        )


class _Encoded(Protocol):
    """What the codec returns (an ``EncodedEmail``)."""

    @property
    def raw(self) -> bytes: ...

    @property
    def message_id(self) -> str: ...


def _date(date_ms: int) -> str:
    try:
        return datetime.fromtimestamp(date_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{date_ms} ms"


class _Meter:
    """Turns records read and bytes read into progress with an estimated total."""

    def __init__(
        self,
        total_bytes: int,
        progress: Callable[[ImportProgress], None],
        clock: Callable[[], float],
    ) -> None:
        self.total_bytes = max(total_bytes, 1)
        self.progress = progress
        self.clock = clock
        self.records = 0
        self.before = 0  # bytes of the files already done
        self.current = 0
        self.last = clock()

    def bytes_read(self, position: int) -> None:
        self.current = position

    def file_done(self, size: int) -> None:
        self.before += size
        self.current = 0

    def record(self) -> None:
        self.records += 1
        now = self.clock()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.progress(ImportProgress("importing", self.records, self._estimate()))

    def _estimate(self) -> int:
        done = min(self.before + self.current, self.total_bytes)
        if done <= 0:
            return self.records
        return max(self.records, round(self.records * self.total_bytes / done))

    def finish(self) -> None:
        self.progress(ImportProgress("importing", self.records, self.records))
