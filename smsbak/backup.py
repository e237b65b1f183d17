"""The incremental backup engine: scan a source, upload what the destination lacks, record it.

Orchestration only: the source reads, the codec encodes, the destination stores
(through the one exactly-once path, smsbak.uploader) and the store remembers, per
place (destination identity + label). Nothing here prints; progress goes through a
callback and the outcome comes back as a :class:`BackupReport`. This module sees
only ports, never an adapter: the wiring (smsbak.app) hands it a Source and a
Destination.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, tzinfo
from typing import Protocol

from smsbak.config import Settings
from smsbak.errors import DailyLimitExceeded, PhoneError, SmsbakError
from smsbak.mime import (
    INSERT_ADDRESS_TOKEN,
    EncodedEmail,
    conversation_key,
    encode_call,
    encode_mms,
    encode_sms,
    mms_message_id,
)
from smsbak.model import AddressKind, Box, Call, CallType, Mms, Sms, mms_content_digest
from smsbak.ports import (
    CallPage,
    Contact,
    ContactNames,
    Destination,
    MmsPage,
    Outgoing,
    PhoneCall,
    PhoneMms,
    PhoneSms,
    SmsPage,
    Source,
)
from smsbak.report import StreamReport
from smsbak.store import Spool, SpoolRow, StateStore, place_key
from smsbak.uploader import Pending, Refusal, upload_exactly_once

log = logging.getLogger(__name__)

KIND_SMS = "sms"
KIND_CALL = "call"
KIND_MMS = "mms"
WATERMARK = "{kind}_complete_through_ms"
"""Per place: every record of a kind dated at or before this (epoch ms) is there or was
refused."""
READ_WITH = "{kind}_read_with"
"""Per place: which reader ("termux", "privileged", ...) the last complete scan used."""
OWN_NUMBERS = "mms_own_numbers"
"""The phone's own numbers as MMS revealed them (a JSON list), kept across runs."""


class NoContacts:
    """The address book when it is not asked (nothing needs a name) or could not be read."""

    def name_for(self, address: str) -> str | None:
        return None


@dataclass(frozen=True)
class Progress:
    """``phase`` is "scan" (done = messages read) or "upload" (done of total)."""

    phase: str
    done: int
    total: int | None = None


BackupReport = StreamReport
"""A backup's report: one per stream (SMS, with the MMS and call-log runs inside)."""


@dataclass(frozen=True)
class BackupOptions:
    full: bool = False
    dry_run: bool = False
    upload_anyway: bool = False
    """Go ahead with a first backup into a folder that holds messages smsbak cannot read
    to adopt (Gmail without the read login); the wiring's ``prepare_place`` reads it."""


Item = PhoneSms | PhoneCall | PhoneMms


class Stream(Protocol):
    """One kind of record the engine backs up: where it is read, how it is encoded."""

    @property
    def kind(self) -> str: ...

    @property
    def command(self) -> str:
        """The run's name in the history."""

    @property
    def label(self) -> str: ...

    @property
    def noun(self) -> str: ...

    def walk(
        self, source: Source, page_size: int
    ) -> Iterator[SmsPage] | Iterator[CallPage] | Iterator[MmsPage]: ...

    def fingerprint(self, item: Item) -> str: ...

    def distinct(self, items: list[Item]) -> list[Item]:
        """Records a scan found under one fingerprint: the distinct ones, each with a
        fingerprint of its own (see Mms.content_digest)."""

    def prepare(self, items: Iterable[Item], store: StateStore, *, save: bool) -> None:
        """Learn from everything a scan found what encoding needs (before any upload)."""

    def address(self, item: Item) -> str: ...

    def needs_contact_book(self, item: Item) -> bool: ...

    def encode(
        self, item: Item, account: str, book: ContactNames, zone: tzinfo, when: datetime
    ) -> EncodedEmail: ...

    def problems(self) -> list[str]:
        """Records the reader could not read, by id: reported, never dropped silently."""

    def held_back(self) -> list[int]:
        """Dates (epoch ms) of the records the reader could not read: the watermark stays
        below them, so the next run reads them again (and reports them again)."""

    def source(self, source: Source) -> str:
        """Where this kind of record is read, for messages."""

    def dump(self, item: Item) -> str:
        """The record as the scan's spool keeps it (see smsbak.store.Spool)."""

    def load(self, text: str) -> Item:
        """The record :meth:`dump` kept, as it was read."""


class _WholeRecordStream:
    """What SMS and calls share: the fingerprint covers the whole record, the Termux
    reader drops what it cannot parse into ``unusable`` (counted, never by id), and
    encoding needs nothing learned from the scan."""

    def distinct(self, items: list[Item]) -> list[Item]:
        return items[:1]  # same fingerprint, same record

    def prepare(self, items: Iterable[Item], store: StateStore, *, save: bool) -> None:
        pass

    def needs_contact_book(self, item: Item) -> bool:
        """termux-sms-list names the sender of received messages, never the recipient;
        the privileged reader names nobody."""
        return item.contact_name is None

    def problems(self) -> list[str]:
        return []

    def held_back(self) -> list[int]:
        return []


_SMS_FIELDS = tuple(f.name for f in fields(Sms))
_CALL_FIELDS = tuple(f.name for f in fields(Call))


def _record_json(record: Sms | Call, names: tuple[str, ...], contact_name: str | None) -> str:
    """The record's fields in order, as ASCII JSON (lone surrogates from a reader stay
    escaped, so SQLite takes any of it); the enums go as their numbers."""
    return json.dumps(
        [[getattr(record, name) for name in names], contact_name], separators=(",", ":")
    )


@dataclass(frozen=True)
class SmsStream(_WholeRecordStream):
    label: str
    kind: str = KIND_SMS
    command: str = "backup"
    noun: str = "messages"

    def walk(self, source: Source, page_size: int) -> Iterator[SmsPage]:
        return source.sms_newest_first(page_size)

    def fingerprint(self, item: Item) -> str:
        assert isinstance(item, PhoneSms)
        return item.sms.fingerprint

    def address(self, item: Item) -> str:
        assert isinstance(item, PhoneSms)
        return item.sms.address

    def encode(
        self, item: Item, account: str, book: ContactNames, zone: tzinfo, when: datetime
    ) -> EncodedEmail:
        assert isinstance(item, PhoneSms)
        name = item.contact_name or book.name_for(item.sms.address)
        return encode_sms(item.sms, account=account, contact_name=name, zone=zone, backup_time=when)

    def dump(self, item: Item) -> str:
        assert isinstance(item, PhoneSms)
        return _record_json(item.sms, _SMS_FIELDS, item.contact_name)

    def load(self, text: str) -> Item:
        values, name = json.loads(text)
        record = dict(zip(_SMS_FIELDS, values, strict=True))
        record["box"] = Box(record["box"])
        return PhoneSms(Sms(**record), name)

    def source(self, source: Source) -> str:
        return source.description


@dataclass(frozen=True)
class CallStream(_WholeRecordStream):
    label: str
    kind: str = KIND_CALL
    command: str = "backup-calls"
    noun: str = "calls"

    def walk(self, source: Source, page_size: int) -> Iterator[CallPage]:
        return source.calls_newest_first(page_size)

    def fingerprint(self, item: Item) -> str:
        assert isinstance(item, PhoneCall)
        return item.call.fingerprint

    def address(self, item: Item) -> str:
        assert isinstance(item, PhoneCall)
        return item.call.number

    def encode(
        self, item: Item, account: str, book: ContactNames, zone: tzinfo, when: datetime
    ) -> EncodedEmail:
        assert isinstance(item, PhoneCall)
        name = item.contact_name or book.name_for(item.call.number)
        return encode_call(
            item.call, account=account, contact_name=name, zone=zone, backup_time=when
        )

    def source(self, source: Source) -> str:
        # The privileged readers, too, read the call log through Termux:API.
        return "Termux:API" if source.identity in PHONE_READERS else source.description

    def dump(self, item: Item) -> str:
        assert isinstance(item, PhoneCall)
        return _record_json(item.call, _CALL_FIELDS, item.contact_name)

    def load(self, text: str) -> Item:
        values, name = json.loads(text)
        record = dict(zip(_CALL_FIELDS, values, strict=True))
        record["type"] = CallType(record["type"])
        return PhoneCall(Call(**record), name)


@dataclass(frozen=True)
class MmsStream:
    """MMS, under the SMS label as SMS Backup+ kept them; only the privileged reader sees them."""

    label: str
    kind: str = KIND_MMS
    command: str = "backup-mms"
    noun: str = "MMS"
    unreadable: list[str] = field(default_factory=list, compare=False)
    unread_dates: list[int] = field(default_factory=list, compare=False)
    own_numbers: set[str] = field(default_factory=set, compare=False)
    """The phone's own numbers (see own_numbers_in): left out of To, Subject and
    References, so the sent and received MMS of one group share one Gmail thread."""
    held: dict[str, PhoneMms] = field(default_factory=dict, compare=False)
    """The scan's MMS, by the token the spool keeps: a PhoneMms reads its attachments
    through the source (``read_part``), which no text can carry. Without their bytes
    they are small, and phones hold far fewer MMS than SMS."""

    def walk(self, source: Source, page_size: int) -> Iterator[MmsPage]:
        self.unreadable.clear()
        self.unread_dates.clear()
        self.held.clear()
        if not source.capabilities.mms:
            return
        # The MMS of one second stay on one page: a scan that stops at a page then
        # never sees only some of them (see distinct()); the rest go on the next page.
        carry: list[PhoneMms] = []
        for page in source.mms_newest_first(page_size):
            readable = carry + [m for m in page.messages if m.mms is not None]
            for bad in page.messages:
                if bad.mms is None:
                    self._unread(bad, bad.problem or "unknown problem")
            last_second = readable[-1].date_ms // 1000 if readable else None
            carry = [m for m in readable if m.date_ms // 1000 == last_second]
            readable = readable[: len(readable) - len(carry)]
            yield MmsPage(messages=readable, rows=page.rows, unusable=page.unusable)
        if carry:
            yield MmsPage(messages=carry, rows=0, unusable=0)

    def fingerprint(self, item: Item) -> str:
        assert isinstance(item, PhoneMms) and item.mms is not None
        return item.mms.fingerprint

    def distinct(self, items: list[Item]) -> list[Item]:
        """Different MMS whose fingerprints agree (two pictures without file names sent
        in one second, say) each get a digest of their bytes into their identity: read
        now, one message at a time. A row found twice (paging while the phone changes)
        and MMS alike to the last byte count once, like identical SMS."""
        rows = list({m.row_id: m for m in items if isinstance(m, PhoneMms)}.values())
        if len(rows) < 2:
            return list(rows)
        result: dict[str, Item] = {}
        for item in rows:
            assert item.mms is not None
            try:
                whole = item.with_attachments()
            except PhoneError as error:
                self._unread(item, error.message)
                continue
            mms = replace(item.mms, content_digest=mms_content_digest(whole.parts))
            result.setdefault(mms.fingerprint, replace(item, mms=mms))
        return list(result.values())

    def prepare(self, items: Iterable[Item], store: StateStore, *, save: bool) -> None:
        """The own numbers this scan reveals, added to those earlier runs found: a run
        reading only the newest MMS still threads a group as the first full scan did."""
        stored = store.get_meta(OWN_NUMBERS)
        known = set(json.loads(stored)) if stored else set()
        learned = own_numbers_in(
            m.mms for m in items if isinstance(m, PhoneMms) and m.mms is not None
        )
        if save and not learned <= known:
            store.set_meta(OWN_NUMBERS, json.dumps(sorted(known | learned)))
        self.own_numbers.clear()
        self.own_numbers.update(known | learned)

    def address(self, item: Item) -> str:
        assert isinstance(item, PhoneMms) and item.mms is not None
        return item.mms.sender

    def needs_contact_book(self, item: Item) -> bool:
        return True

    def encode(
        self, item: Item, account: str, book: ContactNames, zone: tzinfo, when: datetime
    ) -> EncodedEmail:
        assert isinstance(item, PhoneMms) and item.mms is not None
        names = {
            address: name
            for address, _ in item.mms.addresses
            if (name := book.name_for(address)) is not None
        }
        return encode_mms(
            item.with_attachments(), account=account, contact_names=names, zone=zone,
            backup_time=when, own_numbers=sorted(self.own_numbers),
        )  # fmt: skip

    def dump(self, item: Item) -> str:
        assert isinstance(item, PhoneMms)
        token = str(len(self.held))
        self.held[token] = item
        return token

    def load(self, text: str) -> Item:
        return self.held[text]

    def _unread(self, item: PhoneMms, problem: str) -> None:
        self.unreadable.append(
            f"MMS _id {item.row_id} could not be read and was left out: {problem}"
        )
        if item.date_ms > 0:  # a row without a usable date cannot hold the watermark
            self.unread_dates.append(item.date_ms)

    def problems(self) -> list[str]:
        return list(self.unreadable)

    def held_back(self) -> list[int]:
        return list(self.unread_dates)

    def source(self, source: Source) -> str:
        return source.description


PHONE_READERS = {"termux": "termux", "shizuku": "privileged", "root": "privileged"}
"""Source identities as the READ_WITH fact names them (Shizuku and root see the same rows)."""


def sbp_mms_message_id(mms: Mms) -> str:
    """The Message-ID SMS Backup+ 1.5.11 gave this MMS: the MD5 of the date in seconds
    times 1000, the first address that is not insert-address-token, and m_type
    (shared/reference/sms-backup-plus-format.md), so an adopted SMS Backup+ MMS is
    known without its fingerprint."""
    address = next((a for a, _ in mms.addresses if a != INSERT_ADDRESS_TOKEN), "")
    m_type = "" if mms.message_type is None else str(mms.message_type)
    text = f"{mms.date_ms // 1000 * 1000}{address}{m_type}"
    return (
        f"<{hashlib.md5(text.encode('utf-8', 'surrogatepass')).hexdigest()}@sms-backup-plus.local>"
    )


_REAL_NUMBER = re.compile(r"\+?\d{3,}")


def own_numbers_in(messages: Iterable[Mms]) -> set[str]:
    """The phone's own numbers, as far as these MMS prove them; conservative on purpose.

    Android knows no reliable own number (the SIM often lacks it), and a received
    group MMS lists the user among its recipients (type 151), a sent one does not.
    An address counts as the user's own only when

    - it is the FROM (137) of an MMS the user sent (any box but the inbox) and a real
      number, not ``insert-address-token``; or
    - in one thread that holds received and sent MMS, it is the one address that is a
      recipient of every received MMS, never their sender, and never addressed by a
      sent one: the user's messages go to every other member of the group.

    Anything less certain is left alone: a member wrongly taken for the user would
    vanish from the conversation's To, Subject and References, which is worse than a
    group split into two Gmail threads.
    """
    own: set[str] = set()
    threads: dict[int, list[Mms]] = {}
    for mms in messages:
        if not mms.box.is_incoming:
            own.update(
                address
                for address, kind in mms.addresses
                if kind is AddressKind.FROM
                and address != INSERT_ADDRESS_TOKEN
                and _REAL_NUMBER.fullmatch(conversation_key(address))
            )
        if mms.thread_id is not None:
            threads.setdefault(mms.thread_id, []).append(mms)
    for thread in threads.values():
        received = [m for m in thread if m.box.is_incoming]
        sent = [m for m in thread if not m.box.is_incoming]
        if not received or not sent:
            continue
        addressed = {
            conversation_key(a) for m in sent for a, k in m.addresses if k is not AddressKind.FROM
        }
        senders = {
            conversation_key(a) for m in received for a, k in m.addresses if k is AddressKind.FROM
        }
        spelled: dict[str, str] = {}
        common: set[str] | None = None
        for mms in received:
            keys = set()
            for address, kind in mms.addresses:
                if kind is not AddressKind.FROM and address != INSERT_ADDRESS_TOKEN:
                    keys.add(conversation_key(address))
                    spelled.setdefault(conversation_key(address), address)
            common = keys if common is None else common & keys
        candidates = (common or set()) - addressed - senders - {""}
        if len(candidates) == 1:
            own.add(spelled[candidates.pop()])
    return own


class BackupEngine:
    """One stream's backup from ``source`` into the destination named ``identity``.

    ``identity`` is known before anything is opened (a dry run needs no login), and
    with the stream's label it names the place whose state this run reads and writes.
    ``open_destination`` is called only when something is to be uploaded and returns the
    destination and the account address the emails name (From/To).
    ``contact_book`` builds the name lookup from the source's contacts.
    """

    def __init__(
        self,
        *,
        source: Source,
        store: StateStore,
        identity: str,
        open_destination: Callable[[], tuple[Destination, str]],
        settings: Settings,
        contact_book: Callable[[list[Contact]], ContactNames],
        progress: Callable[[Progress], None] = lambda _: None,
        should_stop: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
        stream: Stream | None = None,
        destination_name: str = "the destination",
        prepare_place: Callable[[BackupReport], object] | None = None,
    ) -> None:
        self.stream: Stream = stream or SmsStream(settings.label)
        self.source = source
        self.store = store
        self.identity = identity
        self.place = place_key(identity, self.stream.label)
        self.open_destination = open_destination
        self.settings = settings
        self.contact_book = contact_book
        self.progress = progress
        self.should_stop = should_stop
        self.clock = clock
        self.destination_name = destination_name
        self.prepare_place = prepare_place
        """Called before the scan of every real run (smsbak.adopt: before the first
        backup into a place, adopt what it already holds); it may set ``stopped``."""
        self._uploaded = 0
        self._newest_scanned: int | None = None
        self._scan_complete = False

    def run(self, options: BackupOptions) -> BackupReport:
        """One backup. Errors are recorded in the run history and re-raised."""
        report = BackupReport(
            dry_run=options.dry_run, destination=self.destination_name, place=self.place
        )
        started = self.clock()
        spool = self.store.spool()
        try:
            if options.dry_run:
                self._scan_and_plan(options, report, spool)
                report.seconds = self.clock() - started
                return report
            return self._run(options, report, spool, started)
        finally:
            spool.close()

    def _run(
        self, options: BackupOptions, report: BackupReport, spool: Spool, started: float
    ) -> BackupReport:
        self.store.close_interrupted_runs()
        run_id = self.store.start_run(self.stream.command, self.place)
        planned = False
        try:
            if self.prepare_place is not None:
                self.prepare_place(report)
            # An adoption cut short must not be followed by uploads it would have spared.
            planned = not report.stopped and self._scan_and_plan(options, report, spool)
            if planned and report.to_upload:
                self._upload(spool, report)
            report.result = (
                "stopped" if report.stopped else ("partial" if report.rejected else "ok")
            )
        except SmsbakError as error:
            report.result = "daily-limit" if isinstance(error, DailyLimitExceeded) else "failed"
            report.error = error
            self.store.finish_run(run_id, report.result, report.counts, error.message)
            raise
        except BaseException as error:
            self.store.finish_run(run_id, "interrupted", report.counts, type(error).__name__)
            raise
        finally:
            report.seconds = self.clock() - started
            if planned:
                self._advance_watermark(spool)
        self.store.finish_run(
            run_id,
            report.result,
            report.counts,
            f"{len(report.rejected)} {self.stream.noun} refused by {report.destination}"
            if report.rejected
            else None,
        )
        return report

    # --- scanning -------------------------------------------------------------------

    def _cutoff(self, options: BackupOptions) -> int | None:
        """How far back this scan must read: the watermark minus the look-back window.

        The watermark is the date up to which every message is known to be at this
        place (see _advance_watermark). Capped at now, so one message with a
        date in the future (a wrong clock) cannot make later scans stop early.
        """
        if options.full:
            return None
        read_with = self.store.get_meta(READ_WITH.format(kind=self.stream.kind), self.place)
        if read_with != self._reader():
            # Another reader sees other rows (the privileged one drafts, failed and
            # queued SMS of any age): the watermark says nothing about those. One full
            # scan, then incremental again. Also once after an upgrade (nothing stored),
            # and once for a new place (another account, server or label).
            return None
        stored = self.store.get_meta(WATERMARK.format(kind=self.stream.kind), self.place)
        if not stored:
            # No backup has completed a scan yet (a restore may have recorded what it
            # brought back, but the phone can hold more): read everything once.
            return None
        watermark = min(int(stored), int(time.time() * 1000))
        return watermark - int(self.settings.lookback_hours * 3_600_000)

    def _reader(self) -> str:
        return PHONE_READERS.get(self.source.identity, self.source.identity)

    def _advance_watermark(self, spool: Spool) -> None:
        """Move the watermark only as far as nothing is left behind.

        Uploads go oldest first, but a part that failed is retried after newer
        ones went through, and a run can end (error, daily limit, stop) with it
        still unconfirmed. The watermark then stays just below the oldest such
        message, so the next incremental scan reads back to it. Messages the
        destination refused for good do not hold it back; they are reported, and
        `--full` tries them again. Records the reader could not read at all hold it
        back too: the next run reads them again, and reports them again while they fail.
        """
        if not self._scan_complete:
            return  # the unread older pages may hold unrecorded messages
        kind = self.stream.kind
        self.store.set_meta(READ_WITH.format(kind=kind), self._reader(), self.place)
        left = self.stream.held_back()
        oldest = spool.oldest_unsettled()
        if oldest is not None:
            left.append(oldest)
        if left:
            watermark = min(left) - 1
        elif self._newest_scanned is not None:
            watermark = self._newest_scanned
        else:
            return
        self.store.set_meta(
            WATERMARK.format(kind=kind), str(min(watermark, int(time.time() * 1000))), self.place
        )

    def _row(self, item: Item) -> SpoolRow:
        stream = self.stream
        return SpoolRow(stream.fingerprint(item), item.date_ms, item.identity, stream.dump(item))

    def _scan_and_plan(self, options: BackupOptions, report: BackupReport, spool: Spool) -> bool:
        """Read newest first until a page reaches below the cutoff; plan what is unrecorded.

        Once a page's oldest message is older than (newest backed up - look-back),
        every later page is wholly older, so reading stops there. A run with
        nothing new costs one page read.

        What the scan finds goes into ``spool``, not into memory: a first backup of a
        phone with 200,000 SMS holds one page at a time. Returns False when the scan
        was stopped (nothing planned).
        """
        cutoff = self._cutoff(options)
        stream = self.stream
        alike: dict[str, list[Item]] = {}
        self._uploaded, self._newest_scanned = 0, None
        self._scan_complete = False
        for page in stream.walk(self.source, self.settings.page_size):
            if self.should_stop():
                report.stopped = True
                return False
            report.pages += 1
            report.unusable_rows += page.unusable
            for row in spool.add([self._row(m) for m in page.messages]):
                if row.fingerprint not in alike:
                    first = spool.get(row.fingerprint)
                    assert first is not None
                    alike[row.fingerprint] = [stream.load(first.text)]
                alike[row.fingerprint].append(stream.load(row.text))
            for message in page.messages:
                if self._newest_scanned is None or message.date_ms > self._newest_scanned:
                    self._newest_scanned = message.date_ms
            report.scanned = len(spool)
            self.progress(Progress("scan", report.scanned))
            if cutoff is not None and page.messages and page.messages[-1].date_ms < cutoff:
                break
        self._scan_complete = True
        for key, items in alike.items():
            spool.remove(key)
            for item in stream.distinct(items):
                spool.put(self._row(item))
        del alike
        report.scanned = len(spool)
        stream.prepare(
            (stream.load(row.text) for row in spool.rows()),
            self.store,
            save=not options.dry_run,
        )
        report.warnings += stream.problems()
        if report.unusable_rows:
            report.warnings.append(
                f"{report.unusable_rows} rows from {stream.source(self.source)} "
                f"were not {stream.noun} "
                "smsbak can read (unknown type or date) and were left out"
            )
        marked = self._mark_known_by_message_id(spool) if stream.kind == KIND_MMS else 0
        report.already = spool.count_at("messages", self.place) + marked
        report.refused_before = 0 if options.full else spool.count_at("refused", self.place)
        report.to_upload = spool.plan(self.place, skip_refused=not options.full)
        if options.dry_run:
            report.planned = [
                item.sms
                for row in spool.planned()
                if isinstance(item := stream.load(row.text), PhoneSms)
            ]
        return True

    def _mark_known_by_message_id(self, spool: Spool) -> int:
        """MMS recorded from their email (adoption, verify, restore) are keyed by the
        email's fingerprint, which is not the phone's: smsbak's email lacks the SMIL
        part, SMS Backup+'s the part names. Their Message-IDs can be derived from the
        phone's record (smsbak's without SMIL, SMS Backup+'s from date, address and
        m_type), so they tell the MMS is there: such rows are marked, and the plan
        leaves them out."""
        rows = list(spool.rows())  # MMS: held in memory by the stream anyway
        by_fingerprint = self.store.known([row.fingerprint for row in rows], self.place)
        ids: dict[str, str] = {}
        for row in rows:
            if row.fingerprint in by_fingerprint:
                continue
            item = self.stream.load(row.text)
            if isinstance(item, PhoneMms) and item.mms is not None:
                ids[mms_message_id(item.mms)] = row.fingerprint
                ids.setdefault(sbp_mms_message_id(item.mms), row.fingerprint)
        known = self.store.known_message_ids(ids, self.place)
        return spool.mark({ids[mid] for mid in known})

    # --- uploading ------------------------------------------------------------------

    def _contact_names(self, pending: Iterable[Item], report: BackupReport) -> ContactNames:
        """Ask the address book once, and only when a record lacks a name."""
        if not any(self.stream.needs_contact_book(m) for m in pending):
            return NoContacts()
        try:
            return self.contact_book(self.source.contacts())
        except PhoneError as error:
            report.warnings.append(
                f"contact names left out: {error.message}"
                + (f" ({error.hint})" if error.hint else "")
            )
            return NoContacts()

    def _upload(self, spool: Spool, report: BackupReport) -> None:
        if self.should_stop():
            report.stopped = True
            return
        destination, account = self.open_destination()
        folder = destination.ensure_folder(self.stream.label)
        stream = self.stream

        def pending() -> Iterator[Item]:
            """The plan, oldest first, read back from the spool as it is consumed."""
            return (stream.load(row.text) for row in spool.planned())

        book = self._contact_names(pending(), report)
        zone = self.source.zone
        total = report.to_upload
        self.progress(Progress("upload", 0, total))

        def items() -> Iterator[Pending]:
            """Encoded one at a time, as the uploader asks for them."""
            backup_time = datetime.now(UTC)
            for message in pending():
                try:
                    encoded = stream.encode(message, account, book, zone, backup_time)
                except PhoneError as error:
                    # An attachment that cannot be read now: reported by id, left for the
                    # next run (it holds the watermark back), the rest goes on.
                    which = (
                        f"_id {message.row_id}"
                        if isinstance(message, PhoneMms)
                        else message.identity
                    )
                    report.warnings.append(
                        f"{stream.noun} {which} could not be read and was left out: {error.message}"
                    )
                    continue
                key = stream.fingerprint(message)
                yield Pending(
                    key,
                    stream.kind,
                    message.date_ms,
                    Outgoing(
                        key=key,
                        raw=encoded.raw,
                        message_id=encoded.message_id,
                        date_ms=message.date_ms,
                        seen=_seen(message),
                    ),
                )

        def recorded(keys: Sequence[str]) -> None:
            spool.settle(keys)
            self._uploaded += len(keys)

        def refused(refusal: Refusal) -> None:
            spool.settle([refusal.fingerprint])
            row = spool.get(refusal.fingerprint)
            identity = row.identity if row is not None else refusal.fingerprint
            what = f"{stream.kind} {identity[:12]}"  # a row id or a hash, never text
            log.warning("%s refused %s: %s", report.destination, what, refusal.reason)
            report.rejected.append(f"{what}: {refusal.reason}")

        def done(settled: int) -> None:
            report.uploaded = self._uploaded
            self.progress(Progress("upload", settled, total))

        outcome = upload_exactly_once(
            destination,
            folder,
            self.store,
            self.place,
            items(),
            progress=done,
            should_stop=self.should_stop,
            on_recorded=recorded,
            on_refused=refused,
        )
        report.uploaded = outcome.recorded
        report.found_in_flight = outcome.found
        report.stopped = report.stopped or outcome.stopped


def _seen(item: Item) -> bool:
    """The read state for IMAP's \\Seen and Maildir's S flag (calls count as seen)."""
    if isinstance(item, PhoneSms):
        return item.sms.read is not False  # unknown: seen, as SMS Backup+ did
    if isinstance(item, PhoneMms) and item.mms is not None:
        return item.mms.read is not False
    return True
