"""The engines in-process over the memory twins: no phone, no network, milliseconds each.

The subprocess tests prove the real boundaries (fake Termux tools, the Gmail
emulator, Dovecot); these prove the engines' own promises directly: incremental
scans, exactly-once on a server that keeps every copy, state per place, one exit
code for every stream, and restore from any destination.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from smsbak.app import open_store
from smsbak.backup import BackupEngine, BackupOptions, BackupReport, CallStream, MmsStream, Stream
from smsbak.config import Settings
from smsbak.destinations.memory import MemoryDestination
from smsbak.errors import DestinationError, ExitCode
from smsbak.model import AddressKind, Box, Call, CallType, Mms, MmsPart, Sms
from smsbak.paths import Paths
from smsbak.ports import Contact, Outgoing, PhoneMms, TargetCapabilities
from smsbak.render import backup_summary
from smsbak.report import exit_code
from smsbak.restore import RestoreEngine, RestoreOptions
from smsbak.sources.memory import MemorySource
from smsbak.store import MIGRATIONS, StateStore, place_key

DAY_MS = 86_400_000
ACCOUNT = "me@example.com"
SETTINGS = replace(Settings(), page_size=10)


def now_s_ms() -> int:
    return int(time.time()) * 1000


def sms(n: int, *, days_ago: float | None = None) -> Sms:
    """The n-th of a run of SMS a day apart, the newest a day old; whole seconds."""
    date = now_s_ms() - int((days_ago if days_ago is not None else 100 - n) * DAY_MS)
    return Sms(
        address=f"+4917000{n:04d}",
        body=f"message {n}",
        date_ms=date // 1000 * 1000,
        box=Box.INBOX if n % 2 else Box.SENT,
        read=True,
    )


def mms(n: int) -> PhoneMms:
    date = (now_s_ms() - (50 - n) * DAY_MS) // 1000 * 1000
    record = Mms(
        date_ms=date,
        box=Box.INBOX,
        addresses=(("+4917011112222", AddressKind.FROM), ("+4917033334444", AddressKind.TO)),
        parts=(MmsPart(content_type="text/plain", text=f"picture {n}", charset="utf-8"),),
        read=False,
        message_type=132,
    )
    return PhoneMms(record, row_id=n, date_ms=date)


class Book:
    def __init__(self, contacts: list[Contact]) -> None:
        self.names = {c.number: c.name for c in contacts}

    def name_for(self, address: str) -> str | None:
        return self.names.get(address)


class Run:
    """Runs one stream's engine as `smsbak backup` would, against chosen twins."""

    def __init__(self, store: StateStore, source: MemorySource) -> None:
        self.store = store
        self.source = source

    def __call__(
        self,
        destination: MemoryDestination,
        stream: Stream | None = None,
        settings: Settings = SETTINGS,
        options: BackupOptions | None = None,
    ) -> BackupReport:
        engine = BackupEngine(
            source=self.source,
            store=self.store,
            identity=destination.identity,
            open_destination=lambda: (destination, ACCOUNT),
            settings=settings,
            contact_book=Book,
            stream=stream,
            destination_name=destination.description,
        )
        return engine.run(options or BackupOptions())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state.sqlite3") as opened:
        yield opened


def copies(destination: MemoryDestination, folder: str = "SMS") -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in destination.folder_messages(folder):
        counts[message.message_id] = counts.get(message.message_id, 0) + 1
    return counts


def test_backup_is_incremental_and_a_no_op_reads_one_page(store: StateStore) -> None:
    source = MemorySource([sms(n) for n in range(30)])
    dest = MemoryDestination()
    run = Run(store, source)
    first = run(dest)
    assert (first.uploaded, first.already, first.to_upload) == (30, 0, 30)
    assert dest.stores == 30 and set(copies(dest).values()) == {1}
    source.pages_read = 0
    again = run(dest)
    assert (again.uploaded, again.already) == (0, 10)  # only the newest page was read
    assert source.pages_read == 1 and dest.stores == 30
    source.add_sms(sms(100, days_ago=0.5), sms(101, days_ago=0.25))
    newer = run(dest)
    assert newer.uploaded == 2 and dest.stores == 32
    assert exit_code(newer) == ExitCode.OK
    # What went up is what the destination was told: date and read state.
    stored = {m.date_ms for m in dest.folder_messages("SMS")}
    assert {s.sms.date_ms for s in source.sms} == stored


def test_a_drop_after_store_on_a_server_that_keeps_copies_leaves_one_copy(
    store: StateStore,
) -> None:
    source = MemorySource([sms(n) for n in range(12)])
    dropped: list[str] = []

    def drop(item: Outgoing) -> None:
        if len(dropped) == 0 and dest.stores == 5:
            dropped.append(item.key)
            raise DestinationError("connection reset after APPEND")

    dest = MemoryDestination(merges_message_ids=False, after_store=drop)
    run = Run(store, source)
    with pytest.raises(DestinationError):
        run(dest)
    assert dropped and dest.stores == 5
    second = run(dest)
    assert set(copies(dest).values()) == {1} and len(copies(dest)) == 12
    assert second.found_in_flight == 1 and second.uploaded == 8  # 1 found + 7 sent
    assert dest.lookups >= 1
    third = run(dest, options=BackupOptions(full=True))
    assert third.uploaded == 0 and dest.stores == 12


def test_switching_destination_or_label_backs_up_everything_there_and_back_nothing(
    store: StateStore,
) -> None:
    source = MemorySource([sms(n) for n in range(15)])
    first_account, second_account = MemoryDestination("first"), MemoryDestination("second")
    run = Run(store, source)
    assert run(first_account).uploaded == 15
    moved = run(second_account)
    assert (moved.uploaded, moved.already) == (15, 0)  # never "already backed up" there
    assert len(copies(second_account)) == 15
    back = run(first_account)
    assert back.uploaded == 0 and first_account.stores == 15
    relabelled = run(first_account, settings=replace(SETTINGS, label="Texts"))
    assert relabelled.uploaded == 15 and len(copies(first_account, "Texts")) == 15
    assert run(first_account).uploaded == 0  # the SMS label's state is untouched
    for dest in (first_account, second_account):
        assert store.count("sms", place_key(dest.identity, "SMS")) == 15


def test_refused_mms_make_the_run_exit_like_refused_sms(store: StateStore) -> None:
    source = MemorySource([sms(n) for n in range(4)], mms=[mms(n) for n in range(3)])
    refuse = {mms(1).mms.fingerprint}  # type: ignore[union-attr]
    dest = MemoryDestination(reject=lambda item: "400 too large" if item.key in refuse else None)
    run = Run(store, source)
    report = run(dest)
    report.mms = run(dest, stream=MmsStream(SETTINGS.label))
    report.calls = run(dest, stream=CallStream(SETTINGS.call_label))
    assert (report.uploaded, report.mms.uploaded) == (4, 2)
    assert len(report.mms.rejected) == 1 and not report.rejected
    assert exit_code(report) == ExitCode.GMAIL  # 0 before issue 9
    assert "refused 1 MMS" in backup_summary(report)
    assert store.refused(refuse, place_key(dest.identity, "SMS")) == refuse
    # The next incremental run does not try it again, and exits 0.
    again = run(dest, stream=MmsStream(SETTINGS.label))
    assert again.refused_before == 1 and exit_code(again) == ExitCode.OK


def test_a_source_without_mms_declares_it_and_is_not_probed(store: StateStore) -> None:
    from smsbak.ports import SourceCapabilities

    source = MemorySource(mms=[mms(1)], capabilities=SourceCapabilities(mms=False))
    report = Run(store, source)(MemoryDestination(), stream=MmsStream(SETTINGS.label))
    assert report.scanned == 0 and report.pages == 0


def test_calls_go_under_their_own_label(store: StateStore) -> None:
    calls = [
        Call(number=f"+49301234{n:03d}", date_ms=(now_s_ms() - n * DAY_MS), duration_s=n,
             type=CallType.INCOMING)
        for n in range(1, 6)
    ]  # fmt: skip
    dest = MemoryDestination()
    report = Run(store, MemorySource(calls=calls))(dest, stream=CallStream("Anrufliste"))
    assert report.uploaded == 5 and len(copies(dest, "Anrufliste")) == 5


class ListTarget:
    description = "a list"
    capabilities = TargetCapabilities(sms=True, mms=True, calls=False)

    def __init__(self) -> None:
        self.written: list[object] = []

    def existing_fingerprints(self) -> set[str] | None:
        return {r.fingerprint for r in self.written}  # type: ignore[attr-defined]

    def prepare(self) -> None:
        pass

    def write(
        self,
        messages: Sequence[object],
        *,
        on_written: Callable[[Sequence[object]], None],
        on_rejected: Callable[[object, str], None],
    ) -> None:
        self.written.extend(messages)
        on_written(messages)

    def finish(self) -> None:
        pass

    def next_steps(self) -> list[str]:
        return []


def test_restore_reads_any_destination_and_records_for_the_place_read(tmp_path: Path) -> None:
    originals = [sms(n) for n in range(6)]
    dest = MemoryDestination("archive")
    with StateStore(tmp_path / "phone-before.sqlite3") as old:
        Run(old, MemorySource(originals))(dest)
    target = ListTarget()
    with StateStore(tmp_path / "after-reset.sqlite3") as fresh:  # a factory reset
        report = RestoreEngine(
            archive=dest, target=target, store=fresh, matches_contact=lambda a, b: a == b
        ).run(RestoreOptions(label="SMS"))
        assert report.written == 6 and report.source == dest.description
        assert sorted(r.fingerprint for r in target.written) == sorted(  # type: ignore[attr-defined]
            s.fingerprint for s in originals
        )
        fingerprints = [s.fingerprint for s in originals]
        assert fresh.known(fingerprints, place_key(dest.identity, "SMS")) == set(fingerprints)
        assert fresh.known(fingerprints, place_key("memory:other", "SMS")) == set()
        # The next backup into that place uploads nothing again.
        assert Run(fresh, MemorySource(originals))(dest).uploaded == 0
        assert dest.stores == 6


def test_an_older_state_is_claimed_for_the_gmail_account_in_token_json(tmp_path: Path) -> None:
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    paths.token_file.write_text(json.dumps({"account": ACCOUNT}))
    paths.state_db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(paths.state_db) as db:
        db.executescript(MIGRATIONS[0] + MIGRATIONS[1])
        db.execute("INSERT INTO messages VALUES ('fp1', 'sms', 1000, 'g1', '<m1@x>', 5)")
        db.execute("INSERT INTO messages VALUES ('fp2', 'call', 1000, 'g2', '<m2@x>', 5)")
        db.execute("PRAGMA user_version = 2")
    with open_store(paths, Settings()) as store:
        assert store.known(["fp1"], place_key(f"gmail:{ACCOUNT}", "SMS")) == {"fp1"}
        assert store.known(["fp2"], place_key(f"gmail:{ACCOUNT}", "Call log")) == {"fp2"}
        assert store.known(["fp1"], place_key("gmail:other@example.com", "SMS")) == set()
        assert not store.has_legacy()
