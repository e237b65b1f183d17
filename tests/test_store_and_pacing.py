"""The state store and the quota bucket, on their own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from smsbak.errors import BusyError, StateError
from smsbak.gmail.pacing import TokenBucket
from smsbak.lock import RunLock
from smsbak.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    InFlight,
    RunCounts,
    StateStore,
    Uploaded,
    place_key,
    place_parts,
)

HERE = place_key("gmail:me@example.com", "SMS")
THERE = place_key("imap:me@example.com@imap.example.com:993", "SMS")


def uploaded(n: int, date_ms: int = 1000) -> Uploaded:
    return Uploaded(f"fp{n}", "sms", date_ms, f"gid{n}", f"<mid{n}>")


def test_records_are_found_by_fingerprint_and_give_the_watermark(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        assert store.newest_date_ms("sms", HERE) is None
        store.record_uploaded([uploaded(i, 1000 * i) for i in range(1200)], HERE)
        assert store.known([f"fp{i}" for i in range(1195, 1205)], HERE) == {
            f"fp{i}" for i in range(1195, 1200)
        }
        assert store.newest_date_ms("sms", HERE) == 1_199_000
        assert store.count("sms", HERE) == 1200
        store.record_uploaded([uploaded(5)], HERE)  # a repeat is ignored, not an error
        assert store.count("sms", HERE) == 1200


def test_every_record_belongs_to_one_place(tmp_path: Path) -> None:
    """What is backed up at one place says nothing about another (issue 9: a second
    Gmail account, a changed label, an IMAP server)."""
    other_label = place_key("gmail:me@example.com", "Texts")
    with StateStore(tmp_path / "s.db") as store:
        store.record_uploaded([uploaded(1), uploaded(2)], HERE)
        store.record_refused("fp3", "sms", 3000, "too large", HERE)
        store.set_meta("sms_complete_through_ms", "3000", HERE)
        for elsewhere in (THERE, other_label):
            assert store.known(["fp1", "fp2"], elsewhere) == set()
            assert store.refused(["fp3"], elsewhere) == set()
            assert store.count("sms", elsewhere) == 0
            assert store.get_meta("sms_complete_through_ms", elsewhere) is None
        assert store.known(["fp1", "fp2", "fp3"], HERE) == {"fp1", "fp2"}
        assert store.refused(["fp3"], HERE) == {"fp3"}
        assert store.get_meta("sms_complete_through_ms", HERE) == "3000"
        assert store.get_meta("sms_complete_through_ms") is None  # not a phone fact
        store.record_uploaded([uploaded(1)], THERE)
        assert store.places() == {HERE: 2, THERE: 1}
        run = store.start_run("backup", THERE)
        store.finish_run(run, "ok", RunCounts(uploaded=1), None)
        assert store.last_run("backup", place=HERE) is None
        last = store.last_run("backup", place=THERE)
        assert last is not None and last.place == THERE


def test_place_keys_are_unambiguous() -> None:
    assert place_key("maildir:/a#b", "c") != place_key("maildir:/a", "b#c")
    assert place_key("a", '"b",') != place_key('a","b', ",")
    assert place_parts(place_key("maildir:/x/Журнал", "Anrufliste")) == (
        "maildir:/x/Журнал",
        "Anrufliste",
    )


def test_in_flight_until_confirmed_or_refused(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        store.record_in_flight(
            [InFlight(f"fp{n}", "sms", n, f"<mid{n}>") for n in range(1, 4)], HERE
        )
        assert store.in_flight(["fp1", "fp2", "fp3", "fp4"], HERE) == {
            "fp1": "<mid1>", "fp2": "<mid2>", "fp3": "<mid3>",
        }  # fmt: skip
        assert store.in_flight(["fp1"], THERE) == {}
        store.record_uploaded([uploaded(1)], HERE)
        store.record_refused("fp2", "sms", 2, "too large", HERE)
        assert store.in_flight(["fp1", "fp2", "fp3"], HERE) == {"fp3": "<mid3>"}


def test_schema_is_versioned_and_wal(tmp_path: Path) -> None:
    StateStore(tmp_path / "s.db").close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "s.db") as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateError, match="newer smsbak"):
        StateStore(tmp_path / "s.db")


def test_runs_record_results_and_unfinished_runs_become_interrupted(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        killed = store.start_run("backup")
        assert store.close_interrupted_runs() == 1
        run_id = store.start_run("backup")
        store.finish_run(run_id, "ok", RunCounts(scanned=3, uploaded=2, skipped=1), None)
        last = store.last_run("backup")
        assert last is not None and last.id == run_id and last.result == "ok"
        assert last.counts == RunCounts(scanned=3, uploaded=2, skipped=1, failed=0)
        assert last.ended_at is not None
        assert killed != run_id


def test_meta_values_are_upserted(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        store.set_meta("termux_generation", "old")
        store.set_meta("termux_generation", "new")
        assert store.get_meta("termux_generation") == "new"
        assert store.get_meta("missing") is None


def test_the_run_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    path = tmp_path / "backup.lock"
    with RunLock(path):
        assert RunLock(path).is_held_elsewhere()
        with pytest.raises(BusyError, match=r"pid \d+"):
            RunLock(path).acquire()
    assert not RunLock(path).is_held_elsewhere()
    RunLock(path).acquire().release()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_bucket_allows_one_burst_then_paces_to_the_quota() -> None:
    clock = FakeClock()
    bucket = TokenBucket(15_000, capacity=1250, clock=clock, sleep=clock.sleep)
    assert bucket.acquire(1250) == 0.0  # the first full batch goes at once
    waited = bucket.acquire(1250)  # the next one waits for 1250 / 250 per second
    assert waited == pytest.approx(5.0)
    clock.now += 2.0
    assert bucket.acquire(1250) == pytest.approx(3.0)
    # 40 batches of 50 inserts: 2,000 messages take (2000*25 - 1250) / 250 s.
    clock2 = FakeClock()
    paced = TokenBucket(15_000, capacity=1250, clock=clock2, sleep=clock2.sleep)
    for _ in range(40):
        paced.acquire(1250)
    assert clock2.now == pytest.approx((2000 * 25 - 1250) / 250)


def test_drain_makes_the_next_acquire_wait() -> None:
    clock = FakeClock()
    bucket = TokenBucket(15_000, capacity=1250, clock=clock, sleep=clock.sleep)
    bucket.drain()
    assert bucket.acquire(250) == pytest.approx(1.0)


def test_a_version_1_database_is_migrated_and_keeps_its_records(tmp_path: Path) -> None:
    """An older smsbak's state survives the upgrade: records, watermarks, runs and refusals
    belong to the Gmail account and labels they were made for, once claimed; nothing of it
    counts for any other place."""
    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0])
        db.executescript(MIGRATIONS[1])
        db.execute("INSERT INTO messages VALUES ('fp-old', 'sms', 1000, 'gid-1', '<m1@smsbak>', 5)")
        db.execute(
            "INSERT INTO messages VALUES ('fp-call', 'call', 900, 'gid-2', '<m2@smsbak>', 5)"
        )
        db.execute("INSERT INTO refused VALUES ('fp-bad', 'mms', 2000, 'too large', 5)")
        db.execute("INSERT INTO meta VALUES ('sms_complete_through_ms', '1000')")
        db.execute("INSERT INTO meta VALUES ('call_read_with', 'termux')")
        db.execute("INSERT INTO meta VALUES ('termux_generation', 'new')")
        db.execute(
            "INSERT INTO runs (command, pid, started_at, ended_at, result) "
            "VALUES ('backup', 1, 5, 6, 'ok')"
        )
        db.execute("PRAGMA user_version = 2")
    calls = place_key("gmail:me@example.com", "Call log")
    with StateStore(path) as store:
        assert store.has_legacy()
        assert store.known(["fp-old"], HERE) == set()  # not yet claimed: not anywhere
        store.claim_legacy({"sms": HERE, "mms": HERE, "call": calls})
        assert not store.has_legacy()
        assert store.known(["fp-old", "fp-new", "fp-call"], HERE) == {"fp-old"}
        assert store.known(["fp-call"], calls) == {"fp-call"}
        assert store.refused(["fp-bad"], HERE) == {"fp-bad"}
        assert store.get_meta("sms_complete_through_ms", HERE) == "1000"
        assert store.get_meta("call_read_with", calls) == "termux"
        assert store.get_meta("termux_generation") == "new"  # the phone's, not a place's
        last = store.last_run("backup", "ok", place=HERE)
        assert last is not None and last.ended_at == 6
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
