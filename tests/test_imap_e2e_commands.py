"""Issue 9 with ``destination = "imap"`` for what tests/test_imap_e2e.py leaves out:
calls into their folder, restore into the phone, the daemon, switching destination
(Gmail -> IMAP -> Gmail), and status naming the server, all through the real CLI
against the real throwaway Dovecot (which keeps a second copy of a Message-ID, so
nothing here leans on the server to merge). The CLI runs in the test process
(``cli_in_process``) but for the daemon, a process of its own.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from smsbak.mime import decode_call, decode_sms
from smsbak.store import place_key
from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed
from tests.fakes.dovecot import Dovecot, LatencyProxy
from tests.test_backup_e2e import BASE, expected, some_calls, tricky_corpus
from tests.test_restore_e2e import phone_view

pytest_plugins = ["tests.fakes.dovecot_fixtures"]
pytestmark = pytest.mark.cli_in_process  # popen for the daemon


def use_imap(bed: Bed, dovecot: Dovecot, port: int, **extra: object) -> None:
    """Plain IMAP on loopback through the counting proxy; the password only in the
    environment. ``reader = "termux"``: the fake phone's Termux:API reader."""
    settings: dict[str, object] = {
        "destination": "imap", "imap_host": "127.0.0.1", "imap_user": dovecot.user,
        "imap_port": port, "imap_security": "plain", "reader": "termux",
        "quota_units_per_minute": TEST_QUOTA_PER_MINUTE,
    }  # fmt: skip
    settings.update(extra)
    bed.home.mkdir(parents=True, exist_ok=True)
    bed.configure(**settings)


def run(bed: Bed, dovecot: Dovecot, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return bed.smsbak(*args, SMSBAK_IMAP_PASSWORD=dovecot.password, **env)


def identity(dovecot: Dovecot, port: int) -> str:
    return f"imap:{dovecot.user}@127.0.0.1:{port}"


def sms_on_server(dovecot: Dovecot) -> list[object]:
    return sorted((decode_sms(raw) for raw in dovecot.messages("SMS")), key=repr)


def assert_exactly_once(bed: Bed, dovecot: Dovecot, port: int) -> None:
    """Dovecot holds each phone message once and the state records exactly those."""
    raws = dovecot.messages("SMS")
    want = sorted((expected(row) for row in bed.phone.messages), key=repr)
    assert sorted((decode_sms(raw) for raw in raws), key=repr) == want
    assert len({decode_sms(raw).fingerprint for raw in raws}) == len(raws), "stored twice"
    with sqlite3.connect(bed.home / "state.sqlite3") as db:
        (n,) = db.execute(
            "SELECT COUNT(*) FROM messages WHERE place = ?",
            (place_key(identity(dovecot, port), "SMS"),),
        ).fetchone()
    assert n == len(want)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def gone_token(bed: Bed) -> Bed:
    """No Gmail login on this machine: IMAP must need none."""
    (bed.home / "token.json").unlink()
    return bed


def test_calls_go_into_the_call_log_folder_and_a_second_run_appends_nothing(
    gone_token: Bed, dovecot: Dovecot, proxy: LatencyProxy
) -> None:
    bed = gone_token
    use_imap(bed, dovecot, proxy.port, call_label="Журнал звонков")
    calls = some_calls(bed)
    bed.phone.add_sms(address="+4911", body="one SMS", date=BASE)
    result = run(bed, dovecot, "backup")
    assert result.returncode == 0, result.stderr
    assert "Call log: 3 new calls" in result.stdout
    stored = sorted((decode_call(raw) for raw in dovecot.messages("Журнал звонков")), key=repr)
    assert stored == sorted(calls, key=repr)
    assert [decode_sms(raw).body for raw in dovecot.messages("SMS")] == ["one SMS"]
    appends = proxy.appends_answered
    again = run(bed, dovecot, "backup")
    assert again.returncode == 0, again.stderr
    assert "Call log: 0 new calls (3 already" in again.stdout
    assert proxy.appends_answered == appends, "a no-op run sent an APPEND"


def test_status_and_doctor_name_the_server_and_no_gmail_login(
    gone_token: Bed, dovecot: Dovecot, proxy: LatencyProxy
) -> None:
    bed = gone_token
    use_imap(bed, dovecot, proxy.port)
    tricky_corpus(bed.phone)
    some_calls(bed)
    assert run(bed, dovecot, "backup").returncode == 0
    text = run(bed, dovecot, "status")
    assert text.returncode == 0, text.stderr
    assert f"Destination:        {identity(dovecot, proxy.port)}" in text.stdout
    assert f"Account:            {dovecot.user}" in text.stdout
    assert "Messages backed up: 15" in text.stdout
    assert "Calls backed up:    3" in text.stdout
    assert "not the configured destination" not in text.stdout
    assert "smsbak auth" not in text.stdout
    doctor = run(bed, dovecot, "doctor")
    line = next(x for x in doctor.stdout.splitlines() if "Destination:" in x)
    assert line.startswith("[OK  ]") and "15 SMS" in line and "3 calls" in line, line
    assert "[OK  ] IMAP login" in doctor.stdout
    assert "Gmail" not in doctor.stdout


def test_restore_into_the_phone_from_the_imap_folder_and_back_up_nothing_again(
    gone_token: Bed, dovecot: Dovecot, proxy: LatencyProxy
) -> None:
    bed = gone_token
    use_imap(bed, dovecot, proxy.port)
    tricky_corpus(bed.phone)
    bed.phone.add_sms(address="+4917", body="unread one", date=BASE + 60_000, read=False)
    calls = some_calls(bed)
    assert run(bed, dovecot, "backup").returncode == 0
    original = phone_view(bed.phone.messages)
    # factory reset: the phone and smsbak's files are gone; Dovecot keeps the archive
    bed.phone.clear_messages()
    bed.phone.set(calls=[])
    shutil.rmtree(bed.home)
    use_imap(bed, dovecot, proxy.port)
    bed.phone.enable_privileged(rish=True)
    result = run(bed, dovecot, "restore", "--to", "phone")
    assert result.returncode == 0, result.stderr
    assert "16 messages restored" in result.stdout
    assert phone_view(bed.phone.messages) == original
    restored_calls = run(bed, dovecot, "restore", "--calls", "--to", "phone")
    assert restored_calls.returncode == 0, restored_calls.stderr
    assert len(bed.phone.call_rows) == len(calls)
    again = run(bed, dovecot, "restore", "--to", "phone")
    assert again.returncode == 0 and "0 messages restored" in again.stdout
    appends = proxy.appends_answered
    backup = run(bed, dovecot, "backup")
    assert backup.returncode == 0, backup.stderr
    assert proxy.appends_answered == appends, "restored messages were uploaded again"
    assert len(dovecot.messages("SMS")) == 16
    assert not bed.phone.sms_send_called()


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_daemon_backs_up_into_dovecot(
    gone_token: Bed, dovecot: Dovecot, proxy: LatencyProxy, daemons: list[subprocess.Popen[str]]
) -> None:
    bed = gone_token
    use_imap(bed, dovecot, proxy.port, watch_every="1s", watch_delay="0.1s", call_log=False)
    for i in range(3):
        bed.phone.add_sms(address="+491", body=f"first {i}", date=BASE + i * 1000)
    process = bed.popen("daemon", "--every", "1h", SMSBAK_IMAP_PASSWORD=dovecot.password)
    daemons.append(process)
    assert wait_for(lambda: len(dovecot.messages("SMS")) == 3)
    bed.phone.add_sms(address="+491", body="just arrived", date=BASE + 60_000)
    assert wait_for(lambda: len(dovecot.messages("SMS")) == 4, timeout=20)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert_exactly_once(bed, dovecot, proxy.port)
    log = (bed.home / "logs" / "smsbak.log").read_text()
    assert "just arrived" not in log and "+491" not in log
    assert dovecot.password not in log


def test_gmail_then_imap_then_gmail_each_gets_everything_once(
    bed: Bed, dovecot: Dovecot, proxy: LatencyProxy
) -> None:
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, call_log=False)
    with bed.phone.batch():
        for i in range(12):
            bed.phone.add_sms(address=f"+4917{i:04d}", body=f"move {i}", date=BASE + i * 60_000)
    assert bed.smsbak("backup").returncode == 0
    assert len(bed.stored()) == 12

    use_imap(bed, dovecot, proxy.port, call_log=False)
    moved = run(bed, dovecot, "backup")
    assert moved.returncode == 0, moved.stderr
    assert "Backed up 12 new messages (0 already" in moved.stdout
    assert proxy.appends_answered == 12
    assert_exactly_once(bed, dovecot, proxy.port)
    data = json.loads(run(bed, dovecot, "status", "--json").stdout)
    assert data["destination"] == identity(dovecot, proxy.port)
    assert [p["destination"] for p in data["other_places"]] == ["gmail:user@example.com"]

    inserts = bed.emulator.insert_calls
    back = run(bed, dovecot, "backup", SMSBAK_DESTINATION="gmail")
    assert back.returncode == 0, back.stderr
    assert "Backed up 0 new messages (12 already in Gmail" in back.stdout
    assert bed.emulator.insert_calls == inserts
    again = run(bed, dovecot, "backup")
    assert again.returncode == 0, again.stderr
    assert proxy.appends_answered == 12, "switching back to IMAP sent an APPEND"
    assert len(dovecot.messages("SMS")) == 12
