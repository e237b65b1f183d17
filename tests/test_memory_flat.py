"""Memory flat in the size of the phone (issue 13 item 4), in-process over the twins.

A first backup spools what its scan found in the state database's TEMP tables
(smsbak.store.Spool) instead of holding every message as a Python object. These
tests guard that at a small scale with tracemalloc: the Python heap's peak for a
phone five times larger stays within a bound of the smaller one's. The batches the
engines hold (a page of the phone, rows read back from the spool, records written to
the state) are scaled down with the phones (:func:`small_batches`), so the smaller
run already holds full batches and a streaming run peaks alike at both sizes, while
holding every message costs the larger one hundreds of kB more. The 200,000-SMS
figure (peak RSS, SQLite included) is benchmarks/memory.py's.
"""

from __future__ import annotations

import sqlite3
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import pytest

import smsbak.restore
import smsbak.store
from smsbak.backup import BackupEngine, BackupOptions, BackupReport, Item, SmsStream
from smsbak.config import Settings
from smsbak.destinations.memory import MemoryDestination, _Folder
from smsbak.mime import EncodedEmail
from smsbak.model import Box, Sms
from smsbak.ports import ContactNames, Outgoing, Page, PhoneSms, SmsPage, TargetCapabilities
from smsbak.restore import RestoreEngine, RestoreOptions
from smsbak.sources.memory import MemorySource
from smsbak.store import SpoolRow, StateStore, place_key

ACCOUNT = "me@example.com"
SETTINGS = replace(Settings(), page_size=250)
SMALL_PAGES = replace(SETTINGS, page_size=50)
BASE_MS = (int(time.time()) - 400 * 86_400) * 1000
LONG = 600
"""A long (concatenated) SMS body: what a restore that held every record would keep
grows with it, the codec's time hardly does."""
SLACK_BYTES = 128 * 1024
"""What the larger of two streaming runs may peak above the smaller (allocator noise,
the ids listed: ~100 B each; seen up to ~40 kB); holding every decoded record costs
it 200-700 kB more (the least: a restore holding what it read, beside the zip writer's
own peak). Added, not scaled: the smaller run's peak is mostly fixed buffers."""


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 50 (as the twins' fetch and upload batches): the engines' batches
    are full at the smaller size too, so the peak of a flat run does not grow."""
    monkeypatch.setattr(smsbak.store, "_SPOOL_BATCH", 50)
    monkeypatch.setattr(smsbak.restore, "_RECORD_BATCH", 50)


def generated(n: int, length: int = 150) -> Sms:
    """The n-th SMS of a generated phone, a minute apart, with a body of ``length`` + ~10 chars."""
    return Sms(
        address=f"+49170{n % 997:07d}",
        body=f"message {n} " + "x" * length,
        date_ms=BASE_MS + n * 60_000,
        box=Box.INBOX if n % 3 else Box.SENT,
        read=True,
        android_id=n + 1,
    )


class GeneratedPhone(MemorySource):
    """``count`` SMS made as each page is asked for: the phone holds no list in memory
    (as the real readers hold one page), so the engine's own memory is what is measured."""

    def __init__(self, count: int, *, again: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.count = count
        self.again = again
        """Indexes served twice (once more on the next page): a row seen again while paging."""

    def sms_newest_first(self, page_size: int) -> Iterator[SmsPage]:
        for top in range(self.count - 1, -1, -page_size):
            self.pages_read += 1
            numbers = list(range(top, max(top - page_size, -1), -1))
            numbers += [n + page_size for n in numbers if n + page_size in self.again]
            yield Page(
                [PhoneSms(generated(n), None) for n in numbers], rows=len(numbers), unusable=0
            )


class ForgetfulDestination(MemoryDestination):
    """Confirms every email and keeps nothing of it but whether they came oldest first:
    the twin's stored copies would otherwise be the largest thing in memory."""

    def __init__(self) -> None:
        super().__init__(merges_message_ids=False)
        self.newest = 0
        self.oldest_first = True

    def _store(self, folder: _Folder, item: Outgoing) -> str:
        self.stores += 1
        self.oldest_first = self.oldest_first and item.date_ms >= self.newest
        self.newest = max(self.newest, item.date_ms)
        return f"mem-{self.stores}"


@dataclass(frozen=True)
class PlainSms(SmsStream):
    """SMS with a one-line email instead of the MIME codec's: the codec's own memory
    is one email at a time and not what is guarded here, and it would make a
    20,000-message run take a minute under tracemalloc."""

    def encode(
        self, item: Item, account: str, book: ContactNames, zone: tzinfo, when: datetime
    ) -> EncodedEmail:
        assert isinstance(item, PhoneSms)
        message_id = f"<{item.sms.fingerprint}@test>"
        return EncodedEmail(f"Message-ID: {message_id}\r\n\r\n{item.sms.body}".encode(), message_id)


def backup(
    store: StateStore,
    phone: MemorySource,
    dest: MemoryDestination,
    stream: SmsStream = PlainSms(SETTINGS.label),
    settings: Settings = SETTINGS,
) -> BackupReport:
    engine = BackupEngine(
        source=phone,
        store=store,
        identity=dest.identity,
        open_destination=lambda: (dest, ACCOUNT),
        settings=settings,
        contact_book=lambda contacts: _NoNames(),
        stream=stream,
    )
    return engine.run(BackupOptions())


class _NoNames:
    def name_for(self, address: str) -> str | None:
        return None


def sms_archive(count: int, length: int = LONG) -> MemoryDestination:
    """A label of ``count`` real SMS Backup+ emails, encoded by the codec a backup uses
    (oldest stored first, as a backup stores them), made without running one."""
    archive = MemoryDestination(f"archive-{count}")
    stream, when = SmsStream(SETTINGS.label), datetime.now(UTC)
    emails = []
    for n in range(count):
        sms = generated(n, length)
        encoded = stream.encode(PhoneSms(sms, None), ACCOUNT, _NoNames(), UTC, when)
        emails.append(Outgoing(f"k{n}", encoded.raw, encoded.message_id, sms.date_ms, True))
    archive.upload(
        emails,
        archive.ensure_folder(SETTINGS.label),
        on_confirmed=lambda _: None,
        on_rejected=lambda rejected: pytest.fail(str(rejected)),
    )
    assert archive.count(archive.ensure_folder(SETTINGS.label)) == count
    return archive


def peak_of_first_backup(tmp_path: Path, count: int) -> tuple[int, BackupReport]:
    dest = ForgetfulDestination()
    with StateStore(tmp_path / f"state-{count}.sqlite3") as store:
        tracemalloc.start()
        try:
            report = backup(store, GeneratedPhone(count), dest, settings=SMALL_PAGES)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert report.uploaded == count and dest.stores == count
        assert dest.oldest_first
        assert store.count("sms", place_key(dest.identity, "SMS")) == count
    return peak, report


@pytest.mark.usefixtures("small_batches")
def test_a_first_backup_five_times_larger_peaks_within_a_bound_of_the_smaller(
    tmp_path: Path,
) -> None:
    peak_of_first_backup(tmp_path, 50)  # first-call allocations (caches) not in either
    small, _ = peak_of_first_backup(tmp_path, 300)
    large, report = peak_of_first_backup(tmp_path, 1_500)
    # Held in memory, 1,200 more messages cost ~0.6 kB each (~700 kB); spooled, the
    # peak is one page plus one upload chunk whatever the phone holds.
    assert large <= small + SLACK_BYTES, (small, large)
    assert report.pages == 30


def test_the_spool_dedupes_a_row_seen_twice_and_uploads_oldest_first(tmp_path: Path) -> None:
    dest = ForgetfulDestination()
    phone = GeneratedPhone(1_000, again=frozenset({3, 400, 999 - 250}))
    with StateStore(tmp_path / "state.sqlite3") as store:
        report = backup(store, phone, dest)
        assert (report.scanned, report.uploaded, dest.stores) == (1_000, 1_000, 1_000)
        assert dest.oldest_first
        # The watermark: everything confirmed, so it is the newest message's date.
        watermark = store.get_meta("sms_complete_through_ms", place_key(dest.identity, "SMS"))
        assert watermark == str(generated(999).date_ms)
        again = backup(store, GeneratedPhone(1_000), dest)
        assert (again.uploaded, dest.stores) == (0, 1_000)


def test_a_run_killed_mid_upload_leaves_no_spool_and_the_next_run_completes(
    tmp_path: Path,
) -> None:
    """The spool is TEMP: gone with the connection, never in the state file."""

    class Killed(BaseException):
        pass

    def kill(item: Outgoing) -> None:
        if dest.stores == 120 and not killed:
            killed.append(item.key)
            raise Killed

    killed: list[str] = []
    dest = MemoryDestination(merges_message_ids=False, after_store=kill)
    path = tmp_path / "state.sqlite3"
    with StateStore(path) as store, pytest.raises(Killed):
        backup(store, GeneratedPhone(500), dest)
    tables = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert tables and not {t for t in tables if "spool" in t}
    with StateStore(path) as store:
        place = place_key(dest.identity, "SMS")
        assert store.count("sms", place) == 119  # confirmed before the one that died
        rest = backup(store, GeneratedPhone(500), dest)
        assert rest.found_in_flight == 1  # stored, never confirmed: found, not sent again
        assert rest.uploaded == 381 and store.count("sms", place) == 500
    ids = [m.message_id for m in dest.folder_messages("SMS")]
    assert len(ids) == len(set(ids)) == 500


class ChunkedPhone:
    """A restore target that writes as the phone writer does: fifty at a time, from an
    iteration of what it is given, keeping nothing but a count and the order."""

    description = "a chunked phone"
    capabilities = TargetCapabilities(sms=True, mms=True, calls=False)

    def __init__(self) -> None:
        self.written = 0
        self.newest = 0
        self.oldest_first = True

    def existing_fingerprints(self) -> set[str] | None:
        return set()  # after a factory reset

    def prepare(self) -> None:
        pass

    def write(
        self,
        messages: Sequence[object],
        *,
        on_written: Callable[[Sequence[object]], None],
        on_rejected: Callable[[object, str], None],
    ) -> None:
        chunk: list[object] = []
        for record in messages:
            assert isinstance(record, Sms)
            self.oldest_first = self.oldest_first and record.date_ms >= self.newest
            self.newest = max(self.newest, record.date_ms)
            chunk.append(record)
            if len(chunk) == 50:
                on_written(chunk)
                self.written += len(chunk)
                chunk = []
        if chunk:
            on_written(chunk)
            self.written += len(chunk)

    def finish(self) -> None:
        pass

    def next_steps(self) -> list[str]:
        return []


def peak_of_restore(tmp_path: Path, count: int) -> int:
    archive = sms_archive(count)  # real SMS Backup+ emails, made by the codec
    target = ChunkedPhone()
    with StateStore(tmp_path / f"after-{count}.sqlite3") as after:
        tracemalloc.start()  # the archive twin's emails are allocated already: not counted
        try:
            report = RestoreEngine(
                archive=archive, target=target, store=after, matches_contact=lambda a, b: a == b
            ).run(RestoreOptions(label="SMS"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert report.written == target.written == count and target.oldest_first
        assert after.count("sms", place_key(archive.identity, "SMS")) == count
    return peak


@pytest.mark.usefixtures("small_batches")
def test_a_restore_five_times_larger_peaks_within_a_bound_of_the_smaller(tmp_path: Path) -> None:
    peak_of_restore(tmp_path, 30)  # first-call allocations (caches) not in either
    small = peak_of_restore(tmp_path, 120)
    large = peak_of_restore(tmp_path, 600)
    # Held as decoded records, 480 more cost ~1 kB each; spooled, one fetch batch and
    # one written chunk (the ids listed are the one thing that grows: ~100 B each).
    assert large <= small + SLACK_BYTES, (small, large)


def test_the_spool_counts_orders_marks_and_keeps_the_newest(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.sqlite3") as store:
        spool = store.spool()
        rows = [
            SpoolRow(f"fp{n}", 1_000 - n % 3, f"id{n}", bytes([n]) * 3, f"r{n}") for n in range(6)
        ]
        assert spool.add(rows) == []
        assert spool.add([replace(rows[2], payload=b"other")]) == [
            replace(rows[2], payload=b"other")
        ]
        assert len(spool) == 6 and spool.get("fp2") == rows[2]  # the first one found stays
        spool.remove("fp2")
        spool.remove("fp2")  # gone already: the count stays right
        assert len(spool) == 5
        assert spool.mark(["fp0", "fp9"]) == 1
        assert spool.plan_unmarked() == 4
        planned = [r.fingerprint for r in spool.planned()]
        assert planned == ["fp5", "fp1", "fp4", "fp3"]  # oldest first, ties by identity
        assert spool.planned_at(1, 3) == [rows[1], rows[4]]
        assert [r.payload for r in spool.planned(payload=False)] == ["", "", "", ""]
        assert spool.keep_newest(2) == 3 and len(spool) == 2
        assert {r.fingerprint for r in spool.rows()} == {"fp0", "fp3"}
        spool.close()
        again = store.spool()  # a new scan starts empty
        assert len(again) == 0 and list(again.rows()) == []
