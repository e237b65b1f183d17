"""`smsbak daemon` as a real background process against the emulator and the fake phone.

Each daemon is a process of its own (signals, the lock, its log); the one-off commands
around it (`smsbak backup`, `status`) run in the test process (``cli_in_process``), and
still meet the daemon only through the lock file, the state database and the emulator.
The tests give the daemon short intervals (its durations take fractions of a second)
and wait for what it logged or stored, never a fixed time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smsbak.errors import ExitCode
from smsbak.lock import RunLock
from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed, write_token
from tests.test_backup_e2e import BASE, assert_exactly_once

pytestmark = pytest.mark.cli_in_process


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def daemon_log(bed: Bed) -> str:
    """The daemon's log file: the tests wait for what it decided, never a fixed time."""
    path = bed.home / "logs" / "smsbak.log"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def holds_the_lock(bed: Bed) -> bool:
    return RunLock(bed.home / "daemon.lock").holder_pid() is not None


@pytest.fixture
def daemons(bed: Bed) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def start(bed: Bed, daemons: list[subprocess.Popen[str]], *args: str) -> subprocess.Popen[str]:
    process = bed.popen("daemon", *args)
    daemons.append(process)
    return process


def configure(bed: Bed, **settings: object) -> None:
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, **settings)


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


def age_last_backup(bed: Bed, seconds: int) -> None:
    with sqlite3.connect(bed.home / "state.sqlite3") as db:
        db.execute("UPDATE runs SET ended_at = ended_at - ?, started_at = started_at - ?",
                   (seconds, seconds))  # fmt: skip


def count(bed: Bed) -> int:
    return len(bed.emulator.messages("SMS"))


def test_backs_up_at_start_when_never_backed_up_and_then_on_schedule(
    bed: Bed, daemons: list[subprocess.Popen[str]]
) -> None:
    configure(bed, watch_every="off")
    for i in range(3):
        bed.phone.add_sms(address="+491", body=f"first {i}", date=BASE + i * 1000)
    process = start(bed, daemons, "--every", "1s")
    assert wait_for(lambda: count(bed) == 3)
    with bed.phone.batch():
        for i in range(2):
            bed.phone.add_sms(address="+491", body=f"later {i}", date=BASE + 10_000 + i)
    assert wait_for(lambda: count(bed) == 5, timeout=15)
    code, err = stop(process)
    assert code == 0, err
    assert_exactly_once(bed)
    notifications = bed.phone.calls("termux-notification")
    assert notifications and all("-c" in call["argv"] for call in notifications)


def test_catches_up_at_start_when_the_last_backup_is_old(
    bed: Bed, daemons: list[subprocess.Popen[str]]
) -> None:
    configure(bed, watch_every="off")
    bed.phone.add_sms(address="+492", body="old", date=BASE)
    assert bed.smsbak("backup").returncode == 0
    age_last_backup(bed, 2 * 3600)
    bed.phone.add_sms(address="+492", body="new while down", date=BASE + 5000)
    process = start(bed, daemons, "--every", "1h")
    assert wait_for(lambda: count(bed) == 2)
    assert stop(process)[0] == 0


def test_waits_when_the_last_backup_is_recent(
    bed: Bed, daemons: list[subprocess.Popen[str]]
) -> None:
    configure(bed, watch_every="off")
    bed.phone.add_sms(address="+493", body="old", date=BASE)
    assert bed.smsbak("backup").returncode == 0
    calls = bed.sms_list_calls()
    bed.phone.add_sms(address="+493", body="not yet", date=BASE + 5000)
    process = start(bed, daemons, "--every", "1h")
    assert wait_for(lambda: "daemon started" in daemon_log(bed))
    first = re.search(r"first backup at (\S+)", daemon_log(bed))
    assert first is not None
    assert datetime.fromisoformat(first.group(1)) > datetime.now(UTC) + timedelta(minutes=50)
    assert count(bed) == 1
    assert bed.sms_list_calls() == calls  # it did not even read the phone
    code, err = stop(process)
    assert code == 0, err


def test_a_new_message_triggers_a_backup_soon(
    bed: Bed, daemons: list[subprocess.Popen[str]]
) -> None:
    configure(bed, watch_every="0.5s", watch_delay="0.2s")
    bed.phone.add_sms(address="+494", body="old", date=BASE)
    assert bed.smsbak("backup").returncode == 0
    process = start(bed, daemons, "--every", "1h")
    # The first watch looked at the newest message, which is backed up: nothing to do.
    assert wait_for(
        lambda: any(c["argv"][:2] == ["-l", "1"] for c in bed.phone.calls("termux-sms-list"))
    )
    assert count(bed) == 1
    bed.phone.add_sms(address="+494", body="just arrived", date=BASE + 60_000)
    assert wait_for(lambda: count(bed) == 2, timeout=15)
    watch_calls = [c for c in bed.phone.calls("termux-sms-list") if c["argv"][:2] == ["-l", "1"]]
    assert watch_calls, "the watch job asks for the newest message only"
    assert stop(process)[0] == 0


def test_sigterm_mid_backup_records_the_batch_and_the_next_run_completes(
    bed: Bed, daemons: list[subprocess.Popen[str]]
) -> None:
    configure(bed, watch_every="off", batch_size=5)
    with bed.phone.batch():
        for i in range(60):
            bed.phone.add_sms(address="+495", body=f"term {i}", date=BASE + i * 1000)
    bed.emulator.latency = 0.05
    process = start(bed, daemons, "--every", "1h")
    assert wait_for(lambda: count(bed) >= 10)
    code, err = stop(process)
    assert code == 0, err
    stored = count(bed)
    assert 0 < stored < 60
    with sqlite3.connect(bed.home / "state.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == stored
    bed.emulator.latency = 0
    assert bed.smsbak("backup").returncode == 0
    assert_exactly_once(bed)
    assert bed.emulator.resent_after_confirmed() == []


def test_a_revoked_login_pauses_the_daemon_until_smsbak_auth_runs(
    bed: Bed, daemons: list[subprocess.Popen[str]]
) -> None:
    # The daemon looks at token.json as often as it watches the phone (at most every 5 s).
    configure(bed, watch_every="0.3s", watch_delay="0.2s")
    bed.emulator.revoke(bed.refresh_token)
    bed.phone.add_sms(address="+496", body="waiting", date=BASE)
    process = start(bed, daemons, "--every", "1h")
    assert wait_for(
        lambda: any("smsbak-alert" in c["argv"] for c in bed.phone.calls("termux-notification"))
    )
    assert process.poll() is None, "the daemon must stay alive"
    assert count(bed) == 0
    token = bed.home / "token.json"
    before = token.stat().st_mtime_ns
    write_token(bed.home, bed.emulator)  # what `smsbak auth` leaves behind
    if token.stat().st_mtime_ns == before:  # a coarse file clock: the daemon looks at mtime
        os.utime(token, ns=(before + 1_000_000, before + 1_000_000))
    assert wait_for(lambda: count(bed) == 1, timeout=15)
    assert "a new login was saved" in daemon_log(bed)
    assert process.poll() is None
    assert stop(process)[0] == 0


def test_manual_backup_while_the_daemon_backs_up_is_refused(
    bed: Bed, daemons: list[subprocess.Popen[str]]
) -> None:
    configure(bed, watch_every="off", batch_size=2)
    with bed.phone.batch():
        for i in range(40):
            bed.phone.add_sms(address="+497", body=f"busy {i}", date=BASE + i * 1000)
    bed.emulator.latency = 0.1
    process = start(bed, daemons, "--every", "1h")
    assert wait_for(lambda: count(bed) >= 2)
    manual = bed.smsbak("backup")
    assert manual.returncode == ExitCode.BUSY
    assert "in progress" in manual.stderr
    bed.emulator.latency = 0
    assert wait_for(lambda: count(bed) == 40, timeout=30)
    assert stop(process)[0] == 0
    assert_exactly_once(bed)


def test_a_second_daemon_is_refused(bed: Bed, daemons: list[subprocess.Popen[str]]) -> None:
    configure(bed, watch_every="off")
    start(bed, daemons, "--every", "1h")
    assert wait_for(lambda: holds_the_lock(bed))
    second = bed.process("daemon", "--every", "1h", timeout=30)  # two processes race
    assert second.returncode == ExitCode.BUSY
    assert "already running" in second.stderr


def test_conditions_postpone_a_backup(bed: Bed, daemons: list[subprocess.Popen[str]]) -> None:
    configure(bed, watch_every="off", wifi_only=True)
    bed.phone.set_wifi(connected=False)
    bed.phone.add_sms(address="+498", body="on wifi only", date=BASE)
    process = start(bed, daemons, "--every", "1s")
    assert wait_for(lambda: "backup postponed" in daemon_log(bed))
    assert count(bed) == 0
    bed.phone.set_wifi(connected=True, ssid="home")
    assert wait_for(lambda: count(bed) == 1, timeout=15)
    assert stop(process)[0] == 0
    log = (bed.home / "logs" / "smsbak.log").read_text()
    assert "not connected to Wi-Fi" in log
    assert "on wifi only" not in log and "+498" not in log
    assert json.loads(bed.smsbak("status", "--json").stdout)["messages_backed_up"] == 1


def test_a_sigterm_right_after_start_stops_cleanly(
    bed: Bed, daemons: list[subprocess.Popen[str]]
) -> None:
    """Once it logged "daemon started" a SIGTERM is a clean stop, also when it lands while
    the scheduler retires its first one-off job (that race once ended in a traceback)."""
    configure(bed, watch_every="off")
    bed.phone.add_sms(address="+499", body="old", date=BASE)
    assert bed.smsbak("backup").returncode == 0
    for attempt in range(2):
        process = start(bed, daemons, "--every", "1h")
        started = attempt + 1
        assert wait_for(lambda n=started: daemon_log(bed).count("daemon started") == n)
        code, err = stop(process)
        assert code == 0, err
        assert "Traceback" not in err
    assert daemon_log(bed).count("daemon stopped") == 2


def blocked_signals(pid: int) -> dict[int, int]:
    """Each thread of a process (Linux: /proc/PID/task) and its mask of blocked signals."""
    masks = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        status = (task / "status").read_text(encoding="utf-8")
        masks[int(task.name)] = int(re.search(r"^SigBlk:\s*(\w+)", status, re.M)[1], 16)  # type: ignore[index]
    return masks


def test_only_the_main_thread_takes_sigterm_so_the_daemon_stops_between_jobs(
    bed: Bed, daemons: list[subprocess.Popen[str]]
) -> None:
    """A SIGTERM the kernel gave a job thread was run by the sleeping main thread only when
    it next woke: an hour later with `--every 1h` (seen once in a dozen runs). Job
    threads now block SIGTERM and SIGINT, so only the main thread can take them."""
    configure(bed, watch_every="off", notifications=False)
    bed.phone.add_sms(address="+497", body="one", date=BASE)
    process = start(bed, daemons, "--every", "1h")
    assert wait_for(lambda: "backup ok" in daemon_log(bed))  # its job thread exists now
    masks = blocked_signals(process.pid)
    term_and_int = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1))
    job_threads = {tid: mask for tid, mask in masks.items() if tid != process.pid}
    assert job_threads, masks
    assert all(mask & term_and_int == term_and_int for mask in job_threads.values()), masks
    assert masks[process.pid] & term_and_int == 0
    code, err = stop(process)
    assert code == 0, err
    assert "daemon stopped" in daemon_log(bed)


def test_the_watch_and_the_first_backup_may_open_a_new_state_database_at_once(
    tmp_path: Path,
) -> None:
    """The daemon's watch and its first backup (or a manual backup) open a state database
    that does not exist yet at the same moment: each must find it migrated once."""
    from smsbak.store import StateStore

    for attempt in range(15):
        path = tmp_path / f"state-{attempt}.sqlite3"
        errors: list[BaseException] = []
        ready = threading.Barrier(4)

        def open_it(
            target: Path = path,
            failed: list[BaseException] = errors,
            together: threading.Barrier = ready,
        ) -> None:
            together.wait()
            try:
                StateStore(target).close()
            except BaseException as error:
                failed.append(error)

        workers = [threading.Thread(target=open_it) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert errors == []
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_a_broken_login_is_looked_at_every_5_s_or_as_often_as_the_watch() -> None:
    from smsbak.daemon import LOGIN_CHECK, DaemonTimes

    assert LOGIN_CHECK == 5.0
    assert DaemonTimes(every=7200, watch_every=300, watch_delay=60).login_check == 5.0
    assert DaemonTimes(every=7200, watch_every=None, watch_delay=60).login_check == 5.0
    assert DaemonTimes(every=3600, watch_every=0.3, watch_delay=0.2).login_check == 0.3
