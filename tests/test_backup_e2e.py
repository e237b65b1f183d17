"""`smsbak backup` end to end: the CLI, fake Termux tools, Gmail emulator.

The CLI runs in this process (``cli_in_process``) except where the process is what a
test is about: killed or stopped by a signal mid-run, two runs racing for the lock,
a run changed from outside while it waits (``bed.popen`` / ``bed.process``)."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from smsbak.errors import ExitCode
from smsbak.mime import decode_sms
from smsbak.model import Box, Call, CallType, Sms
from tests.conftest import Bed
from tests.fakes.phone import FakePhone

pytestmark = pytest.mark.cli_in_process

BERLIN = ZoneInfo("Europe/Berlin")
BASE = int(datetime(2026, 3, 1, 12, 0, 0, tzinfo=BERLIN).timestamp() * 1000)


def expected(row: dict[str, object]) -> Sms:
    """What the phone row must come back as: Termux:API gives whole seconds only."""
    date = int(row["date"])  # type: ignore[call-overload]
    return Sms(
        address=row["address"] or "",  # type: ignore[arg-type]
        body=row["body"] or "",  # type: ignore[arg-type]
        date_ms=date // 1000 * 1000,
        box=Box(row["type"]),
        read=bool(row["read"]),
        thread_id=row["thread_id"],  # type: ignore[arg-type]
        android_id=row["_id"],  # type: ignore[arg-type]
    )


def some_calls(bed: Bed) -> list[Call]:
    """Three calls on the phone (one without a number), shared by the IMAP and Maildir
    end-to-end tests so both destinations are checked against the same calls."""
    calls = [
        Call("+4917012345", BASE, 267, CallType.INCOMING),
        Call("+4930123", BASE + 120_000, 0, CallType.MISSED),
        Call("", BASE + 180_000, 0, CallType.REJECTED),
    ]
    with bed.phone.batch():
        for call in calls:
            bed.phone.add_call(
                number=call.number, date=call.date_ms + 123, type=call.type,
                duration=call.duration_s, sim_id=None,
            )  # fmt: skip
    return calls


def tricky_corpus(phone: FakePhone) -> None:
    phone.add_contact('O\'Brien, "Bob"', "+49 170 1111111")
    phone.add_contact("عائشة", "+971 50 123 4567")
    rows = [
        ("+491701111111", "Emoji outside the BMP: 🧑‍🚀 𝄞 🫠", 1),
        ("+971501234567", "مرحبا، كيف حالك؟ שלום", 1),
        ("+971501234567", "reply in RTL ‏עברית‎", 2),
        ("+8613800138000", "你好，世界。日本語のテキスト", 1),
        ("+441234567890", "long " + "ä€𝔸" * 800, 1),
        ("+441234567890", "windows\r\nline\r\nendings\r\n", 2),
        ("+441234567890", "From the beginning\nFrom here too\n>From quoted", 1),
        ("+441234567890", "Content-Type: text/html\r\nSubject: fake\r\n\r\n<b>hi</b>", 1),
        ("+441234567890", "", 1),
        ("+441234567890", None, 2),
        ("12345", "Your code is 123456", 1),
        ("DHL-Info", "Ihr Paket kommt heute", 1),
        ("+491701111111", "same second, first", 1),
        ("+491701111111", "same second, second", 1),
        ("+491701111111", "sent to Bob", 2),
    ]
    with phone.batch():
        for index, (address, body, box) in enumerate(rows):
            second = index if index != 13 else 12  # two messages in one second
            phone.add_sms(address=address, body=body, date=BASE + second * 1000 + 437, type=box)


def decoded(bed: Bed) -> list[Sms]:
    return [decode_sms(message.raw) for message in bed.emulator.messages("SMS")]


def recorded_count(bed: Bed) -> int:
    with sqlite3.connect(bed.home / "state.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


def assert_exactly_once(bed: Bed) -> None:
    got = decoded(bed)
    want = [expected(row) for row in bed.phone.messages]
    assert sorted(got, key=repr) == sorted(want, key=repr)
    assert len({m.fingerprint for m in got}) == len(got)
    assert recorded_count(bed) == len(want)


def test_tricky_corpus_is_stored_exactly_once_with_correct_headers(bed: Bed) -> None:
    tricky_corpus(bed.phone)
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert "Backed up 15 new messages" in result.stdout
    assert_exactly_once(bed)
    subjects = {m.raw.split(b"Subject: ")[1].split(b"\r\n")[0] for m in bed.emulator.messages()}
    assert b"SMS with +441234567890" in subjects
    by_body = {decode_sms(m.raw).body: m.raw for m in bed.emulator.messages("SMS")}
    import email
    import email.policy

    bob = email.message_from_bytes(by_body["sent to Bob"], policy=email.policy.default)
    assert bob["Subject"] == 'SMS with O\'Brien, "Bob"'
    assert bob["To"].addresses[0].display_name == 'O\'Brien, "Bob"'
    assert bob["From"].addresses[0].addr_spec == "user@example.com"
    rtl = email.message_from_bytes(by_body["مرحبا، كيف حالك؟ שלום"], policy=email.policy.default)
    assert rtl["Subject"] == "SMS with عائشة"
    assert rtl["From"].addresses[0].addr_spec == "+971501234567@unknown.email"
    # Gmail sorts by the Date header: internalDate is the message's second.
    dates = {m.internal_date for m in bed.emulator.messages("SMS")}
    assert BASE // 1000 * 1000 in dates


def test_second_run_uploads_nothing_and_reads_one_page(bed: Bed) -> None:
    tricky_corpus(bed.phone)
    assert bed.smsbak("backup").returncode == 0
    inserts, calls = bed.emulator.insert_calls, bed.sms_list_calls()
    requests = bed.emulator.http_requests
    again = bed.smsbak("backup")
    assert again.returncode == 0, again.stderr
    assert bed.emulator.insert_calls == inserts
    # Nothing to upload, so no request at all: no token refresh, no labels.list.
    assert bed.emulator.http_requests == requests, "a no-op run talked to Gmail"
    assert bed.sms_list_calls() == calls + 1
    assert "Backed up 0 new messages" in again.stdout


def test_incremental_run_inserts_exactly_the_new_messages(bed: Bed) -> None:
    bed.configure(quota_units_per_minute=15_000_000, page_size=10)
    with bed.phone.batch():
        for i in range(40):
            bed.phone.add_sms(address=f"+4915{i % 3}", body=f"old {i}", date=BASE + i * 60_000)
    assert bed.smsbak("backup").returncode == 0
    before = bed.emulator.insert_calls
    with bed.phone.batch():
        for i in range(7):
            bed.phone.add_sms(address="+4915999", body=f"new {i}", date=BASE + 3_600_000 + i)
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert bed.emulator.insert_calls - before == 7
    assert_exactly_once(bed)


def test_late_delivery_inside_the_look_back_window_is_picked_up(bed: Bed) -> None:
    bed.configure(quota_units_per_minute=15_000_000, page_size=5)
    with bed.phone.batch():
        for i in range(30):
            bed.phone.add_sms(address="+4916", body=f"m{i}", date=BASE + i * 600_000)
    assert bed.smsbak("backup").returncode == 0
    newest = BASE + 29 * 600_000
    bed.phone.add_sms(address="+4917", body="delayed", date=newest - 6 * 3_600_000)
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert "delayed" in [m.body for m in decoded(bed)]
    assert_exactly_once(bed)


@pytest.mark.parametrize("generation", ["old", "new"])
def test_small_pages_with_ties_on_both_generations_lose_nothing(bed: Bed, generation: str) -> None:
    # The old app cannot read the call log on Android 11+ (an error, tested elsewhere).
    bed.configure(quota_units_per_minute=15_000_000, page_size=4, call_log=generation == "new")
    bed.phone.set(generation=generation)
    with bed.phone.batch():
        for i in range(23):
            # groups of three messages share each second, straddling page ends
            bed.phone.add_sms(address=f"+49{i}", body=f"tie {i}", date=BASE + (i // 3) * 1000)
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert_exactly_once(bed)


def test_dry_run_uploads_and_records_nothing(bed: Bed) -> None:
    tricky_corpus(bed.phone)
    result = bed.smsbak("backup", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "15 messages would be uploaded" in result.stdout
    assert bed.emulator.insert_calls == 0
    assert bed.emulator.messages() == []
    assert not (bed.home / "state.sqlite3").exists() or recorded_count(bed) == 0


def test_server_errors_and_429_storm_are_retried_without_resending_confirmed_parts(
    bed: Bed,
) -> None:
    with bed.phone.batch():
        for i in range(120):
            bed.phone.add_sms(address=f"+4930{i % 7}", body=f"fault {i}", date=BASE + i * 1000)
    bed.emulator.fail_next(10, status=500)
    bed.emulator.fail_next(30, status=429, method="insert", retry_after=0.2)
    bed.emulator.fail_next(3, status=503)
    bed.emulator.fail_next(2, status=403, reason="userRateLimitExceeded")
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert_exactly_once(bed)
    assert bed.emulator.resent_after_confirmed() == []


def test_connections_dropped_after_commit_leave_no_duplicates(bed: Bed) -> None:
    with bed.phone.batch():
        for i in range(130):
            bed.phone.add_sms(address=f"+4940{i % 5}", body=f"drop {i}", date=BASE + i * 1000)
    bed.emulator.drop_after_commit(2)
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert_exactly_once(bed)
    assert bed.emulator.resent_after_confirmed() == []


def test_sigkill_mid_run_then_rerun_stores_everything_once(bed: Bed) -> None:
    bed.configure(quota_units_per_minute=15_000_000, batch_size=5)
    with bed.phone.batch():
        for i in range(100):
            bed.phone.add_sms(address=f"+4950{i % 4}", body=f"kill {i}", date=BASE + i * 1000)
    bed.emulator.latency = 0.05
    process = bed.popen("backup")
    deadline = time.monotonic() + 30
    while len(bed.emulator.messages()) < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()
    process.wait()
    assert 0 < len(bed.emulator.messages()) < 100
    with sqlite3.connect(bed.home / "state.sqlite3") as db:
        confirmed = {row[0] for row in db.execute("SELECT message_id FROM messages")}
    sent_before = len(bed.emulator.insert_log)
    bed.emulator.latency = 0.0
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert_exactly_once(bed)
    resent = set(bed.emulator.insert_log[sent_before:]) & confirmed
    assert resent == set(), "parts recorded as confirmed were sent again"
    status = json.loads(bed.smsbak("status", "--json").stdout)
    assert status["last_run"]["result"] == "ok"


def test_daily_limit_stops_cleanly_and_keeps_what_was_confirmed(bed: Bed) -> None:
    with bed.phone.batch():
        for i in range(10):
            bed.phone.add_sms(address="+4960", body=f"day {i}", date=BASE + i * 1000)
    bed.emulator.daily_limit_exceeded = True
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.GMAIL
    assert "daily limit" in result.stderr
    assert "again" in result.stderr
    bed.emulator.daily_limit_exceeded = False
    status = json.loads(bed.smsbak("status", "--json").stdout)
    assert status["last_run"]["result"] == "daily-limit"
    assert bed.smsbak("backup").returncode == 0
    assert_exactly_once(bed)


def test_a_second_backup_while_one_runs_is_refused(bed: Bed) -> None:
    bed.configure(quota_units_per_minute=15_000_000, batch_size=2)
    with bed.phone.batch():
        for i in range(40):
            bed.phone.add_sms(address="+4970", body=f"lock {i}", date=BASE + i * 1000)
    bed.emulator.latency = 0.1
    first = bed.popen("backup")
    deadline = time.monotonic() + 30
    while not bed.emulator.messages() and time.monotonic() < deadline:
        time.sleep(0.01)
    second = bed.process("backup")  # a second process, racing the first for the lock
    first.wait(timeout=60)
    assert second.returncode == ExitCode.BUSY
    assert "another smsbak run is in progress" in second.stderr
    assert first.returncode == 0
    assert_exactly_once(bed)


def test_status_reports_account_counts_and_last_run(bed: Bed) -> None:
    before = bed.smsbak("status")
    assert before.returncode == 0
    assert "Last run:           never" in before.stdout
    tricky_corpus(bed.phone)
    assert bed.smsbak("backup").returncode == 0
    text = bed.smsbak("status").stdout
    assert "user@example.com" in text
    assert "Messages backed up: 15" in text
    data = json.loads(bed.smsbak("status", "--json").stdout)
    assert data["account"] == "user@example.com"
    assert data["label"] == "SMS"
    assert data["messages_backed_up"] == 15
    assert data["last_run"]["uploaded"] == 15
    assert data["last_run"]["result"] == "ok"
    assert data["newest_backed_up"].startswith("2026-03-01T11:00:14")


def test_the_label_is_configurable_and_created_once(bed: Bed) -> None:
    bed.configure(quota_units_per_minute=15_000_000, label="Texts/Phone")
    bed.phone.add_sms(address="+4980", body="labelled", date=BASE)
    assert bed.smsbak("backup").returncode == 0
    bed.phone.add_sms(address="+4980", body="labelled 2", date=BASE + 1000)
    assert bed.smsbak("backup").returncode == 0
    names = [label["name"] for label in bed.emulator.labels()]
    assert names.count("Texts/Phone") == 1
    assert len(bed.emulator.messages("Texts/Phone")) == 2


def test_full_scan_finds_an_old_message_the_incremental_scan_skips(bed: Bed) -> None:
    bed.configure(quota_units_per_minute=15_000_000, page_size=5)
    with bed.phone.batch():
        for i in range(20):
            bed.phone.add_sms(address="+4990", body=f"f{i}", date=BASE + i * 5 * 3_600_000)
    assert bed.smsbak("backup").returncode == 0
    # Imported from another app with a date far older than the look-back window.
    bed.phone.add_sms(address="+4991", body="imported", date=BASE - 30 * 86_400_000)
    assert bed.smsbak("backup").returncode == 0
    assert "imported" not in [m.body for m in decoded(bed)]
    before = bed.emulator.insert_calls
    result = bed.smsbak("backup", "--full")
    assert result.returncode == 0, result.stderr
    assert bed.emulator.insert_calls - before == 1
    assert_exactly_once(bed)


def test_sigterm_finishes_the_batch_in_flight_and_the_next_run_completes(bed: Bed) -> None:
    import signal

    bed.configure(quota_units_per_minute=15_000_000, batch_size=5)
    with bed.phone.batch():
        for i in range(60):
            bed.phone.add_sms(address="+4992", body=f"term {i}", date=BASE + i * 1000)
    bed.emulator.latency = 0.05
    process = bed.popen("backup")
    deadline = time.monotonic() + 30
    while len(bed.emulator.messages()) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Stopped early" in out
    stored = len(bed.emulator.messages())
    assert 0 < stored < 60
    assert recorded_count(bed) == stored  # the batch in flight was recorded, not lost
    status = json.loads(bed.smsbak("status", "--json").stdout)
    assert status["last_run"]["result"] == "stopped"
    bed.emulator.latency = 0.0
    assert bed.smsbak("backup").returncode == 0
    assert_exactly_once(bed)
    assert bed.emulator.resent_after_confirmed() == []


def test_a_message_left_unconfirmed_behind_newer_ones_is_not_lost(bed: Bed) -> None:
    """The oldest part fails, newer ones go through, then the run ends (daily limit)."""
    bed.configure(quota_units_per_minute=15_000_000, page_size=5, batch_size=10, lookback_hours=1)
    with bed.phone.batch():
        for i in range(10):
            bed.phone.add_sms(address="+4993", body=f"hourly {i}", date=BASE + i * 3_600_000)
    bed.emulator.fail_next(1, status=503, retry_after=3)
    process = bed.popen("backup")
    deadline = time.monotonic() + 20
    while len(bed.emulator.messages()) < 9 and time.monotonic() < deadline:
        time.sleep(0.01)
    bed.emulator.daily_limit_exceeded = True  # while the client waits to retry part one
    process.communicate(timeout=30)
    assert process.returncode == ExitCode.GMAIL
    assert "hourly 0" not in [m.body for m in decoded(bed)]
    bed.emulator.daily_limit_exceeded = False
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert_exactly_once(bed)


def test_a_failing_getprop_does_not_move_every_message_to_another_instant(bed: Bed) -> None:
    """Times come as zone-less wall clock: a wrong zone would change every fingerprint."""
    bed.phone.set(timezone="Asia/Tokyo")
    with bed.phone.batch():
        for i in range(5):
            bed.phone.add_sms(address="+4915111", body=f"zone {i}", date=BASE + i * 60_000)
    assert bed.smsbak("backup").returncode == 0
    assert len(bed.emulator.messages()) == 5
    bed.phone.set_mode("getprop", "garbage")
    again = bed.smsbak("backup", TZ="UTC")
    assert again.returncode == 0, again.stderr
    assert len(bed.emulator.messages()) == 5
    assert "Backed up 0 new messages" in again.stdout
    assert "Asia/Tokyo" in again.stdout + again.stderr


def test_uploads_go_oldest_first(bed: Bed) -> None:
    """Oldest first, so an interrupted first backup leaves a gap-free past in Gmail."""
    dates = [BASE + i * 1_000 for i in range(60)]
    random.Random(7).shuffle(dates)
    with bed.phone.batch():
        for i, date in enumerate(dates):
            bed.phone.add_sms(address=f"+4916{i % 4}", body=f"order {i}", date=date)
    assert bed.smsbak("backup").returncode == 0
    uploaded = [m.internal_date for m in bed.emulator.messages()]
    assert len(uploaded) == 60
    assert uploaded == sorted(uploaded)


@pytest.mark.parametrize(
    "page_size, seconds",
    [(1, [0, 1, 2, 3, 4]), (3, [0, 5, 5, 9, 9, 9, 12])],
    ids=["pages of one", "a second's messages fill a page"],
)
def test_pages_filled_by_one_second_are_walked_to_the_end(
    bed: Bed, page_size: int, seconds: list[int]
) -> None:
    """A page holding only one tie group cannot overlap the next: that is no deletion."""
    bed.configure(quota_units_per_minute=15_000_000, page_size=page_size, call_log=False)
    with bed.phone.batch():
        for i, second in enumerate(seconds):
            bed.phone.add_sms(address="+4915", body=f"tie {i}", date=BASE + second * 1000)
    result = bed.smsbak("backup", timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(bed.emulator.messages()) == len(seconds)
    assert bed.sms_list_calls() <= 2 * len(seconds)
