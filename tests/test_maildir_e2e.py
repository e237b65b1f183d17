"""Issue 9 end to end for ``destination = "maildir:PATH"``: the real CLI, the fake phone
on PATH, a real Maildir on disk, and no Gmail login anywhere.

The CLI runs in the test process (``cli_in_process``) except where the process is the
point: a run killed with SIGKILL, the daemon, file modes of what a fresh process writes,
and a laptop's bare PATH, which start ``python -m smsbak`` (``bed.process``/``popen``).

The Maildir is read back here with nothing of smsbak's Maildir code (plain directory
listings and the codec), so a bug in the adapter cannot hide itself.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from smsbak.mime import decode_call, decode_sms
from smsbak.model import Box, Call, CallType, Sms
from smsbak.store import place_key
from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed
from tests.test_backup_e2e import BASE, expected, some_calls, tricky_corpus
from tests.test_restore_e2e import phone_view

QUOTA = TEST_QUOTA_PER_MINUTE

pytestmark = pytest.mark.cli_in_process  # bed.process/popen where the process is the point


# --- reading the Maildir without smsbak ------------------------------------------------


def message_files(root: Path, folder: str = ".SMS") -> list[Path]:
    """Every delivered message of a Maildir++ folder (``cur`` and ``new``; never ``tmp``)."""
    found: list[Path] = []
    for sub in ("cur", "new"):
        directory = root / folder / sub
        if directory.is_dir():
            found.extend(p for p in directory.iterdir() if not p.name.startswith("."))
    return sorted(found)


def message_id(raw: bytes) -> str:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii")
    raise AssertionError("no Message-ID")


def stored_sms(root: Path) -> list[Sms]:
    return [decode_sms(p.read_bytes()) for p in message_files(root)]


def stored_calls(root: Path, folder: str = ".Call log") -> list[Call]:
    return [decode_call(p.read_bytes()) for p in message_files(root, folder)]


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under ``root`` with its size and mtime (ns)."""
    out: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            info = path.stat()
            size = 0 if path.is_dir() else info.st_size
            out[str(path.relative_to(root))] = (size, info.st_mtime_ns)
    return out


def recorded(bed: Bed, place: str | None = None) -> set[str]:
    """Message-IDs the state records as backed up (at ``place``, or anywhere)."""
    with sqlite3.connect(bed.home / "state.sqlite3") as db:
        if place is None:
            rows = db.execute("SELECT message_id FROM messages")
        else:
            rows = db.execute("SELECT message_id FROM messages WHERE place = ?", (place,))
        return {str(row[0]) for row in rows}


def assert_exactly_once(bed: Bed, root: Path) -> None:
    """The Maildir holds each phone message once, and the state records exactly those."""
    files = message_files(root)
    ids = [message_id(p.read_bytes()) for p in files]
    assert len(set(ids)) == len(ids), "a Message-ID is in the Maildir twice"
    want = sorted((expected(row) for row in bed.phone.messages), key=repr)
    assert sorted(stored_sms(root), key=repr) == want
    assert recorded(bed, place_key(f"maildir:{root}", "SMS")) == set(ids)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return (tmp_path / "Maildir").resolve()


@pytest.fixture
def mbed(bed: Bed, root: Path) -> Bed:
    """The test bed with its destination a Maildir and no Gmail login at all."""
    (bed.home / "token.json").unlink()
    configure(bed, root)
    return bed


def configure(bed: Bed, root: Path, **settings: object) -> None:
    """The Maildir as destination; ``reader = "termux"`` unless given, as the phone here
    has no Shizuku or root (``auto`` would only try rish and su first on every run)."""
    settings.setdefault("reader", "termux")
    bed.configure(quota_units_per_minute=QUOTA, destination=f"maildir:{root}", **settings)


# --- backup ---------------------------------------------------------------------------


def test_tricky_corpus_is_delivered_exactly_once_with_flags_and_dates(
    mbed: Bed, root: Path
) -> None:
    tricky_corpus(mbed.phone)
    mbed.phone.add_sms(address="+4917", body="still unread", date=BASE + 60_000, read=False)
    result = mbed.process("backup")  # a fresh process: the modes below are its umask's
    assert result.returncode == 0, result.stderr
    assert "Backed up 16 new messages" in result.stdout
    assert f"the Maildir {root}" in result.stdout
    assert_exactly_once(mbed, root)
    assert not mbed.emulator.messages() and mbed.emulator.insert_calls == 0
    files = message_files(root)
    assert {p.parent.name for p in files} == {"cur"}
    by_body = {decode_sms(p.read_bytes()).body: p for p in files}
    assert by_body["still unread"].name.endswith(":2,")
    assert by_body["sent to Bob"].name.endswith(":2,S")
    # readers show the file's mtime as the received date: the message's own second
    assert int(by_body["same second, first"].stat().st_mtime) == (BASE + 12_000) // 1000
    assert list((root / ".SMS" / "tmp").iterdir()) == []
    for path in files:
        assert path.stat().st_mode & 0o077 == 0, "message files are owner-only"
    assert (root / ".SMS" / "maildirfolder").is_file()


def test_a_no_op_run_writes_nothing_and_reads_one_page(mbed: Bed, root: Path) -> None:
    tricky_corpus(mbed.phone)
    mbed.phone.add_call(number="+4930", date=BASE, type=CallType.INCOMING, duration=5)
    assert mbed.smsbak("backup").returncode == 0
    before, calls = tree(root), mbed.sms_list_calls()
    time.sleep(0.01)  # a rewrite in the same tick would keep the mtime
    again = mbed.smsbak("backup")
    assert again.returncode == 0, again.stderr
    assert "Backed up 0 new messages (15 already in the Maildir" in again.stdout
    assert "Call log: 0 new calls (1 already" in again.stdout
    assert tree(root) == before, "a run with nothing new changed the Maildir"
    assert mbed.sms_list_calls() == calls + 1


def test_incremental_runs_deliver_exactly_the_new_messages(mbed: Bed, root: Path) -> None:
    configure(mbed, root, page_size=10)
    with mbed.phone.batch():
        for i in range(40):
            mbed.phone.add_sms(address=f"+4915{i % 3}", body=f"old {i}", date=BASE + i * 60_000)
    assert mbed.smsbak("backup").returncode == 0
    first = set(message_files(root))
    assert len(first) == 40
    with mbed.phone.batch():
        for i in range(7):
            mbed.phone.add_sms(address="+4915999", body=f"new {i}", date=BASE + 3_600_000 + i)
    result = mbed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert "Backed up 7 new messages" in result.stdout
    after = set(message_files(root))
    assert first <= after, "an earlier delivery was rewritten or renamed"
    assert sorted(decode_sms(p.read_bytes()).body for p in after - first) == [
        f"new {i}" for i in range(7)
    ]
    assert_exactly_once(mbed, root)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_at_a_random_point_then_a_run_completes_exactly_once(
    mbed: Bed, root: Path, seed: int
) -> None:
    # Enough messages that the kill lands well before the end: a Maildir writes hundreds a
    # second, and the poll below sees the count a little late on a busy machine.
    total = 240
    configure(mbed, root, batch_size=3, page_size=80)
    with mbed.phone.batch():
        for i in range(total):
            mbed.phone.add_sms(address=f"+4950{i % 4}", body=f"kill {i}", date=BASE + i * 1000)
    # seed 0: while the phone is read, before the folder exists; else after some files,
    # plus a random fraction of a delivery (between tmp/, fsync, rename, index line)
    rng = random.Random(seed)
    point = 0 if seed == 0 else rng.randrange(1, 40)
    jitter = rng.uniform(0, 0.004)
    process = mbed.popen("backup")
    try:
        if point == 0:
            wait_for(lambda: mbed.sms_list_calls() > 0, timeout=30)
        else:
            wait_for(lambda: len(message_files(root)) >= point, timeout=30)
            time.sleep(jitter)
        process.kill()
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    left = set(message_files(root))
    confirmed = recorded(mbed) if (mbed.home / "state.sqlite3").exists() else set()
    assert len(left) < total
    assert confirmed <= {message_id(p.read_bytes()) for p in left}, "recorded but not on disk"

    result = mbed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert_exactly_once(mbed, root)
    assert left <= set(message_files(root)), "a delivered file was written again"
    status = json.loads(mbed.smsbak("status", "--json").stdout)
    assert status["last_run"]["result"] == "ok"
    assert status["messages_backed_up"] == total


@pytest.mark.parametrize("index_too", [False, True], ids=["state lost", "state and index lost"])
def test_a_lost_state_database_doubles_nothing(mbed: Bed, root: Path, index_too: bool) -> None:
    """The Maildir is found by Message-ID again (from its index, or from the files' own
    headers when the index is gone too), so a new state database records, not rewrites."""
    tricky_corpus(mbed.phone)
    assert mbed.smsbak("backup").returncode == 0
    files = set(message_files(root))
    (mbed.home / "state.sqlite3").unlink()
    if index_too:
        (root / ".SMS" / "smsbak-index").unlink()
    result = mbed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert set(message_files(root)) == files, "a message was written a second time"
    assert_exactly_once(mbed, root)


def test_calls_go_into_the_call_log_folder_incrementally(mbed: Bed, root: Path) -> None:
    calls = some_calls(mbed)
    result = mbed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert "Call log: 3 new calls" in result.stdout
    assert sorted(stored_calls(root), key=repr) == sorted(calls, key=repr)
    assert message_files(root) == [], "calls went into the SMS folder"
    mbed.phone.add_call(number="+4955", date=BASE + 3_600_000, type=CallType.OUTGOING, duration=5)
    again = mbed.smsbak("backup")
    assert again.returncode == 0, again.stderr
    assert "Call log: 1 new calls" in again.stdout
    assert len(stored_calls(root)) == 4


def test_a_call_label_outside_ascii_is_a_folder_dovecot_names_right(mbed: Bed, root: Path) -> None:
    configure(mbed, root, call_label="Журнал звонков")
    mbed.phone.add_call(number="+4930", date=BASE, type=CallType.INCOMING, duration=5)
    assert mbed.smsbak("backup").returncode == 0
    folder = ".&BBYEQwRABD0EMAQ7- &BDcEMgQ+BD0EOgQ+BDI-"  # modified UTF-7, as Dovecot writes
    assert [c.number for c in stored_calls(root, folder)] == ["+4930"]


# --- status, doctor, daemon -------------------------------------------------------------


def test_status_and_doctor_name_the_maildir_and_ask_for_no_login(mbed: Bed, root: Path) -> None:
    tricky_corpus(mbed.phone)
    mbed.phone.add_call(number="+4930", date=BASE, type=CallType.INCOMING, duration=5)
    assert mbed.smsbak("backup").returncode == 0
    # the SMS and the call streams share one look-up of the address book
    assert len(mbed.phone.calls("termux-contact-list")) == 1
    text = mbed.smsbak("status")
    assert text.returncode == 0, text.stderr
    assert f"Destination:        maildir:{root}" in text.stdout
    assert "Messages backed up: 15" in text.stdout
    assert "smsbak auth" not in text.stdout, "a Maildir needs no login"
    assert "not the configured destination" not in text.stdout, text.stdout
    data = json.loads(mbed.smsbak("status", "--json").stdout)
    assert data["destination"] == f"maildir:{root}"
    assert data["messages_backed_up"] == 15
    assert data["other_places"] == []
    assert data["calls_backed_up"] == 1

    doctor = mbed.smsbak("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    line = next(x for x in doctor.stdout.splitlines() if "Destination:" in x)
    assert line.startswith("[OK  ]") and f"maildir:{root}" in line
    assert "15 SMS" in line and "1 calls" in line
    assert "token" not in doctor.stdout.lower() and "gmail" not in doctor.stdout.lower()


def test_doctor_names_a_maildir_it_cannot_write(mbed: Bed, root: Path, tmp_path: Path) -> None:
    mbed.phone.add_sms(address="+491", body="x", date=BASE)
    fresh = mbed.smsbak("doctor")
    assert "[OK  ] Maildir: " in fresh.stdout and "the first backup creates it" in fresh.stdout
    if os.geteuid() == 0:  # root writes anywhere: only a file in the way stops it
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        configure(mbed, blocker / "Maildir")
    else:
        root.mkdir()
        root.chmod(0o500)
    doctor = mbed.smsbak("doctor")
    assert doctor.returncode != 0, doctor.stdout
    line = next(x for x in doctor.stdout.splitlines() if x.startswith("[FAIL] Maildir:"))
    assert "a-file" in line or "cannot be written" in line
    assert "maildir:PATH" in doctor.stdout  # the fix names the setting
    backup = mbed.smsbak("backup")
    assert backup.returncode != 0
    assert "Maildir" in backup.stderr and "Fix:" in backup.stderr
    assert not (tmp_path / "a-file").is_dir()


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_daemon_backs_up_into_the_maildir(
    mbed: Bed, root: Path, daemons: list[subprocess.Popen[str]]
) -> None:
    configure(mbed, root, watch_every="1s", watch_delay="0.1s")  # no burst to wait out
    for i in range(3):
        mbed.phone.add_sms(address="+491", body=f"first {i}", date=BASE + i * 1000)
    process = mbed.popen("daemon", "--every", "1h")
    daemons.append(process)
    assert wait_for(lambda: len(message_files(root)) == 3)
    mbed.phone.add_sms(address="+491", body="just arrived", date=BASE + 60_000)
    assert wait_for(lambda: len(message_files(root)) == 4, timeout=15)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert_exactly_once(mbed, root)
    log = (mbed.home / "logs" / "smsbak.log").read_text()
    assert "just arrived" not in log and "+491" not in log
    status = json.loads(mbed.smsbak("status", "--json").stdout)
    assert status["destination"] == f"maildir:{root}" and status["messages_backed_up"] == 4


# --- restore without Gmail --------------------------------------------------------------


@pytest.fixture
def reset(mbed: Bed, root: Path) -> tuple[Bed, list[tuple[object, ...]]]:
    """Backed up into the Maildir, then the phone and smsbak's home are wiped: only the
    Maildir (say, carried off by Syncthing) is left, and there never was a Gmail token."""
    tricky_corpus(mbed.phone)
    with mbed.phone.batch():
        mbed.phone.add_sms(address="+4917", body="unread one", date=BASE + 60_000, read=False)
        mbed.phone.add_call(number="+4930", date=BASE + 437, type=CallType.MISSED, duration=0)
    assert mbed.smsbak("backup").returncode == 0
    original = phone_view(mbed.phone.messages)
    mbed.phone.clear_messages()
    mbed.phone.set(calls=[])
    shutil.rmtree(mbed.home)
    mbed.home.mkdir()
    # the default reader: a phone with Shizuku then reads back what was restored through it
    configure(mbed, root, reader="auto")
    return mbed, original


def test_restore_into_the_phone_and_the_next_backup_writes_nothing(
    reset: tuple[Bed, list[tuple[object, ...]]], root: Path
) -> None:
    bed, original = reset
    bed.phone.enable_privileged(rish=True)
    result = bed.smsbak("restore", "--to", "phone")
    assert result.returncode == 0, result.stderr
    assert "16 messages restored" in result.stdout
    assert phone_view(bed.phone.messages) == original
    calls = bed.smsbak("restore", "--calls", "--to", "phone")
    assert calls.returncode == 0, calls.stderr
    assert [int(row["type"]) for row in bed.phone.call_rows] == [CallType.MISSED]
    again = bed.smsbak("restore", "--to", "phone")
    assert again.returncode == 0, again.stderr
    assert "0 messages restored" in again.stdout
    assert phone_view(bed.phone.messages) == original
    before = tree(root)
    backup = bed.smsbak("backup")
    assert backup.returncode == 0, backup.stderr
    assert "Backed up 0 new messages" in backup.stdout
    assert {k for k in tree(root) if "/cur/" in k} == {k for k in before if "/cur/" in k}
    assert not bed.phone.sms_send_called()


def machine_without_a_phone(tmp_path: Path) -> str:
    """A laptop's PATH: no Termux tools, only this Python and a shell."""
    bare = tmp_path / "bare-bin"
    bare.mkdir(exist_ok=True)
    for tool in ("sh", "env"):
        found = shutil.which(tool)
        if found:
            (bare / tool).symlink_to(found)
    return f"{Path(sys.executable).parent}:{bare}"


@pytest.mark.parametrize("kind", ["xml", "smsie"])
def test_restore_into_files_on_a_machine_without_a_phone(
    reset: tuple[Bed, list[tuple[object, ...]]], root: Path, tmp_path: Path, kind: str
) -> None:
    from smsbak.formats.sbr import read_messages_xml
    from smsbak.formats.smsie import read_messages_zip
    from tests.format_readers import sms_only

    bed, original = reset
    path = tmp_path / ("out.zip" if kind == "smsie" else "out.xml")
    bare_path = machine_without_a_phone(tmp_path)
    calls_before = len(bed.phone.calls())
    # a process of its own: its start-up, too, must need no phone tool on the bare PATH
    result = bed.process("restore", "--to", f"{kind}:{path}", PATH=bare_path)
    assert result.returncode == 0, result.stderr
    assert "16 messages restored" in result.stdout
    assert len(bed.phone.calls()) == calls_before, "the laptop has no phone to ask"
    reader = read_messages_zip if kind == "smsie" else read_messages_xml
    restored = [
        (s.address, s.body, s.date_ms // 1000, int(s.box), s.box is not Box.INBOX or s.read)
        for s in sms_only(reader(path))
    ]
    assert sorted(restored) == original
    assert path.stat().st_mode & 0o077 == 0


def test_restore_from_a_maildir_that_is_not_there_names_the_path(
    mbed: Bed, root: Path, tmp_path: Path
) -> None:
    result = mbed.smsbak("restore", "--to", f"xml:{tmp_path / 'out.xml'}")
    assert result.returncode == 2, result.stderr
    assert f"no label (folder) 'SMS' in the Maildir {root}" in result.stderr
    assert "Maildir path" in result.stderr and "logged in" not in result.stderr
    assert not root.exists(), "a restore created the Maildir it reads"
    assert not (tmp_path / "out.xml").exists()


# --- switching destination --------------------------------------------------------------


def test_gmail_then_maildir_then_gmail_each_gets_everything_once(bed: Bed, root: Path) -> None:
    bed.configure(quota_units_per_minute=QUOTA, call_log=False)
    with bed.phone.batch():
        for i in range(12):
            bed.phone.add_sms(address=f"+4917{i:04d}", body=f"move {i}", date=BASE + i * 60_000)
    gmail = bed.smsbak("backup")
    assert gmail.returncode == 0, gmail.stderr
    assert len(bed.stored()) == 12

    moved = bed.smsbak("backup", SMSBAK_DESTINATION=f"maildir:{root}")
    assert moved.returncode == 0, moved.stderr
    assert "Backed up 12 new messages (0 already in the Maildir" in moved.stdout
    assert len(message_files(root)) == 12
    assert_exactly_once(bed, root)
    data = json.loads(bed.smsbak("status", "--json", SMSBAK_DESTINATION=f"maildir:{root}").stdout)
    assert data["destination"] == f"maildir:{root}" and data["messages_backed_up"] == 12
    assert [p["destination"] for p in data["other_places"]] == ["gmail:user@example.com"]

    inserts = bed.emulator.insert_calls
    back = bed.smsbak("backup")
    assert back.returncode == 0, back.stderr
    assert "Backed up 0 new messages (12 already in Gmail" in back.stdout
    assert bed.emulator.insert_calls == inserts
    before = tree(root)
    bed.configure(quota_units_per_minute=QUOTA, call_log=False, destination=f"maildir:{root}")
    again = bed.smsbak("backup")
    assert again.returncode == 0, again.stderr
    assert "Backed up 0 new messages (12 already in the Maildir" in again.stdout
    assert tree(root) == before


def test_another_maildir_path_is_another_place(mbed: Bed, root: Path, tmp_path: Path) -> None:
    mbed.phone.add_sms(address="+491", body="twice", date=BASE)
    assert mbed.smsbak("backup").returncode == 0
    other = (tmp_path / "elsewhere").resolve()
    result = mbed.smsbak("backup", SMSBAK_DESTINATION=f"maildir:{other}")
    assert result.returncode == 0, result.stderr
    assert "Backed up 1 new messages" in result.stdout
    assert len(message_files(other)) == 1 and len(message_files(root)) == 1
