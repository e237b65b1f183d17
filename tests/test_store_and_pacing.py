"""The state store and the quota bucket, on their own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from smsbak.errors import BusyError, StateError
from smsbak.gmail.pacing import TokenBucket
from smsbak.lock import RunLock
from smsbak.store import MIGRATIONS, SCHEMA_VERSION, RunCounts, StateStore, Uploaded


def uploaded(n: int, date_ms: int = 1000) -> Uploaded:
    return Uploaded(f"fp{n}", "sms", date_ms, f"gid{n}", f"<mid{n}>")


def test_records_are_found_by_fingerprint_and_give_the_watermark(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        assert store.newest_date_ms("sms") is None
        store.record_uploaded([uploaded(i, 1000 * i) for i in range(1200)])
        assert store.known([f"fp{i}" for i in range(1195, 1205)]) == {
            f"fp{i}" for i in range(1195, 1200)
        }
        assert store.newest_date_ms("sms") == 1_199_000
        assert store.count("sms") == 1200
        store.record_uploaded([uploaded(5)])  # a repeat is ignored, not an error
        assert store.count("sms") == 1200


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
    """An older smsbak's state survives the upgrade: records, watermark, and the new table."""
    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0])
        db.execute(
            "INSERT INTO messages VALUES ('fp-old', 'sms', 1000, 'gid-1', '<m1@smsbak>', 5)"
        )
        db.execute("INSERT INTO meta VALUES ('sms_complete_through_ms', '1000')")
        db.execute("PRAGMA user_version = 1")
    with StateStore(path) as store:
        assert store.known(["fp-old", "fp-new"]) == {"fp-old"}
        assert store.get_meta("sms_complete_through_ms") == "1000"
        store.record_refused("fp-bad", "sms", 2000, "too large")
        assert store.refused(["fp-bad", "fp-old"]) == {"fp-bad"}
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
