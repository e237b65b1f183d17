"""The Maildir destination on a real filesystem: what the contract suite does not cover.

Atomic delivery (a writer killed between tmp/ and cur/, a full disk), the unique
names, flags and mtimes readers use, owner-only permissions, the Maildir++ layout as
Dovecot itself reads it, hostile label names and ids, and a no-op over a large folder
that opens no message file.
"""

from __future__ import annotations

import json
import mailbox
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smsbak.destinations.maildir import (
    INDEX_NAME,
    MESSAGE_SIZE_LIMIT,
    MaildirDestination,
    folder_dir_name,
    modified_utf7,
    unique_name,
)
from smsbak.errors import SmsbakError, UsageError
from smsbak.ports import Outgoing
from tests.contracts.destination_contract import (
    Outcome,
    call_item,
    message_id_of,
    mms_item,
    sms_item,
    upload,
)

REPO = Path(__file__).resolve().parents[1]
UNIQUE = re.compile(r"^(\d+)\.M(\d{1,6})P(\d+)R([0-9a-f]{16})\.([^/:]+)$")


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def message_files(folder: Path) -> list[Path]:
    return sorted([*(folder / "cur").iterdir(), *(folder / "new").iterdir()])


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "Maildir"


@pytest.fixture
def maildir(root: Path) -> Iterator[MaildirDestination]:
    destination = MaildirDestination(root)
    yield destination
    destination.close()


# --- layout, names, flags, times, permissions --------------------------------------------


def test_layout_is_maildir_plus_plus_with_an_empty_inbox(
    maildir: MaildirDestination, root: Path
) -> None:
    assert maildir.ensure_folder("SMS") == ".SMS"
    assert maildir.ensure_folder("Call log") == ".Call log"
    for folder in (root, root / ".SMS", root / ".Call log"):
        assert {"cur", "new", "tmp"} <= set(files(folder))
    assert (root / ".SMS" / "maildirfolder").is_file()
    assert not (root / "maildirfolder").exists()
    assert files(root / "cur") == files(root / "new") == []


def test_python_mailbox_reads_the_folders_and_messages(
    maildir: MaildirDestination, root: Path
) -> None:
    """The stdlib's Maildir++ reader (what mutt-like readers do) sees what we wrote."""
    items = [sms_item(1), sms_item(2, read=False)]
    upload(maildir, maildir.ensure_folder("SMS"), items)
    upload(maildir, maildir.ensure_folder("Call log"), [call_item(3)])
    box = mailbox.Maildir(root, create=False)
    assert sorted(box.list_folders()) == ["Call log", "SMS"]
    sms = box.get_folder("SMS")
    by_id = {str(m["Message-ID"]): m for m in sms}
    assert set(by_id) == {i.message_id for i in items}
    assert by_id[items[0].message_id].get_flags() == "S"
    assert by_id[items[1].message_id].get_flags() == ""
    assert by_id[items[0].message_id].get_subdir() == "cur"


def test_names_are_unique_and_of_the_specified_form(maildir: MaildirDestination) -> None:
    names = [unique_name() for _ in range(500)]
    assert len(set(names)) == 500
    for name in names:
        match = UNIQUE.match(name)
        assert match, name
        assert int(match.group(1)) == pytest.approx(time.time(), abs=60)
        assert int(match.group(3)) == os.getpid()
    assert unique_name(1_700_000_000.25).startswith("1700000000.M250000P")


def test_host_with_slash_or_colon_is_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "odd/host:name")
    assert unique_name().endswith(".odd\\057host\\072name")


def test_flags_and_mtime_follow_the_message(maildir: MaildirDestination, root: Path) -> None:
    read, unread = sms_item(1, read=True), sms_item(2, read=False)
    outcome = upload(maildir, maildir.ensure_folder("SMS"), [read, unread])
    cur = root / ".SMS" / "cur"
    assert files(root / ".SMS" / "new") == []
    assert files(root / ".SMS" / "tmp") == []
    by_base = {name.split(":")[0]: name for name in files(cur)}
    for item in (read, unread):
        base = outcome.remote_id(item.key).split("/", 1)[1]
        name = by_base[base]
        assert name.endswith(":2,S" if item.seen else ":2,")
        assert (cur / name).stat().st_mtime == item.date_ms / 1000
        assert (cur / name).read_bytes() == item.raw


def test_everything_is_owner_only(maildir: MaildirDestination, root: Path) -> None:
    upload(maildir, maildir.ensure_folder("SMS"), [sms_item(1)])
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def test_identity_names_the_resolved_path(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert MaildirDestination(tmp_path / "link" / "M").identity == (
        f"maildir:{(tmp_path / 'real' / 'M').resolve()}"
    )
    relative = MaildirDestination(Path("some/where"))
    assert relative.identity == f"maildir:{Path.cwd().resolve() / 'some' / 'where'}"


# --- folder names -------------------------------------------------------------------------


def test_folder_names_are_dovecots_modified_utf7() -> None:
    # As Dovecot 2.3 itself wrote them for `doveadm mailbox create` (checked by hand).
    assert folder_dir_name("Журнал звонков") == ".&BBYEQwRABD0EMAQ7- &BDcEMgQ+BD0EOgQ+BDI-"
    assert folder_dir_name("A&B") == ".A&-B"
    assert folder_dir_name("Anrufliste") == ".Anrufliste"
    assert folder_dir_name("Backups/SMS") == ".Backups.SMS"
    assert folder_dir_name("inbox") == "INBOX"
    assert modified_utf7("😀") == "&2D3eAA-"


@pytest.mark.parametrize(
    "label", ["../x", "..", ".", "/", "", "a//b", "a/../b", "/etc", "x\n", "x\x00y", "a" * 300]
)
def test_hostile_labels_are_refused_and_create_nothing(tmp_path: Path, label: str) -> None:
    maildir = MaildirDestination(tmp_path / "M")
    with pytest.raises(UsageError) as caught:
        maildir.ensure_folder(label)
    assert caught.value.hint
    with pytest.raises(UsageError):
        maildir.find_folder(label)
    assert files(tmp_path) == []


def test_hostile_handles_and_ids_cannot_leave_the_maildir(
    maildir: MaildirDestination, root: Path, tmp_path: Path
) -> None:
    folder = maildir.ensure_folder("SMS")
    secret = tmp_path / "secret"
    secret.write_bytes(b"Message-ID: <secret@x>\r\n\r\nsecret")
    for handle in ("../secret", "..", "/tmp", ".SMS/../..", "x"):
        with pytest.raises(UsageError):
            maildir.list_ids(handle)
        with pytest.raises(UsageError):
            upload(maildir, handle, [sms_item(1)])
    rejected: list[str] = []
    fetched: list[tuple[str, bytes]] = []
    hostile = ["../secret", f"{folder}/../../secret", "INBOX/../../secret", "/etc/passwd", ""]
    maildir.fetch_raw(
        hostile, on_fetched=fetched.extend, on_rejected=lambda i, r: rejected.append(i)
    )
    assert fetched == []
    assert rejected == hostile


def test_a_symlink_planted_in_cur_is_neither_listed_nor_read(
    maildir: MaildirDestination, root: Path, tmp_path: Path
) -> None:
    folder = maildir.ensure_folder("SMS")
    secret = tmp_path / "secret"
    secret.write_bytes(b"Message-ID: <secret@x>\r\n\r\nsecret")
    (root / ".SMS" / "cur" / "1.M1P1R1.evil:2,S").symlink_to(secret)
    assert list(maildir.list_ids(folder)) == []
    assert maildir.find_message_ids(folder, ["<secret@x>"]) == {}


def test_a_huge_planted_file_is_refused_not_read_into_memory(
    maildir: MaildirDestination, root: Path
) -> None:
    folder = maildir.ensure_folder("SMS")
    huge = root / ".SMS" / "cur" / "1.M1P1R1.huge:2,S"
    with huge.open("wb") as stream:
        stream.write(b"Message-ID: <huge@x>\r\n\r\n")
        stream.truncate(MESSAGE_SIZE_LIMIT + 1)  # sparse: no disk used
    (remote,) = maildir.list_ids(folder)
    rejected: list[tuple[str, str]] = []
    maildir.fetch_raw(
        [remote],
        on_fetched=lambda b: pytest.fail("fetched"),
        on_rejected=lambda i, r: rejected.append((i, r)),
    )
    assert rejected and rejected[0][0] == remote
    assert "larger than" in rejected[0][1]


# --- exactly once: the header cache --------------------------------------------------------


def test_a_deleted_cache_is_rebuilt_from_the_headers(
    maildir: MaildirDestination, root: Path
) -> None:
    folder = maildir.ensure_folder("SMS")
    items = [sms_item(n) for n in range(5)]
    outcome = upload(maildir, folder, items)
    (root / ".SMS" / INDEX_NAME).unlink()
    again = MaildirDestination(root)
    found = again.find_message_ids(folder, [i.message_id for i in items])
    assert found == {i.message_id: outcome.remote_id(i.key) for i in items}
    assert (root / ".SMS" / INDEX_NAME).stat().st_mode & 0o777 == 0o600
    second = upload(again, folder, items)
    assert sorted(second.confirmed_keys) == sorted(i.key for i in items)
    assert len(message_files(root / ".SMS")) == 5


def test_messages_another_tool_put_there_are_not_doubled(
    maildir: MaildirDestination, root: Path
) -> None:
    """mbsync, Dovecot or an import wrote LF files into new/ and cur/: smsbak finds their
    Message-IDs (folded header, any case) and confirms them instead of writing copies."""
    folder = maildir.ensure_folder("SMS")
    first, second = sms_item(1), sms_item(2)
    lf = first.raw.replace(b"\r\n", b"\n")
    (root / ".SMS" / "new" / "1600000000.M1P1.other").write_bytes(lf)
    folded = second.raw.replace(b"Message-ID: ", b"message-id:\r\n  ")
    assert folded != second.raw
    (root / ".SMS" / "cur" / "1600000001.M2P1.other:2,RS").write_bytes(folded)
    outcome = upload(maildir, folder, [first, second, sms_item(3)])
    assert outcome.remote_id(first.key) == f"{folder}/1600000000.M1P1.other"
    assert outcome.remote_id(second.key) == f"{folder}/1600000001.M2P1.other"
    assert len(message_files(root / ".SMS")) == 3


def test_a_message_renamed_by_a_reader_stays_fetchable(
    maildir: MaildirDestination, root: Path
) -> None:
    folder = maildir.ensure_folder("SMS")
    item = sms_item(1, read=False)
    remote = upload(maildir, folder, [item]).remote_id(item.key)
    (path,) = message_files(root / ".SMS")
    path.rename(path.with_name(path.name + "RS"))  # mutt marks it replied and seen
    fetched: list[tuple[str, bytes]] = []
    maildir.fetch_raw([remote], on_fetched=fetched.extend, on_rejected=lambda i, r: pytest.fail(r))
    assert fetched == [(remote, item.raw)]
    assert MaildirDestination(root).find_message_ids(folder, [item.message_id]) == {
        item.message_id: remote
    }


def test_an_email_without_message_id_is_rejected_for_good(
    maildir: MaildirDestination, root: Path
) -> None:
    folder = maildir.ensure_folder("SMS")
    bad = Outgoing("k", b"Subject: x\r\n\r\nbody\r\n")
    mismatched = Outgoing("m", sms_item(1).raw, message_id="<other@x>")
    empty = Outgoing("e", b"")
    outcome = upload(maildir, folder, [bad, mismatched, empty])
    assert [r.key for r in outcome.rejected] == ["k", "m", "e"]
    assert "Message-ID" in outcome.rejected[0].reason
    assert message_files(root / ".SMS") == []


def test_a_no_op_over_a_large_folder_opens_no_message_file(
    maildir: MaildirDestination, root: Path
) -> None:
    """1,000 messages another tool put there: the first look reads their headers once;
    after that a lookup lists the folder only. Proven by emptying every file: a run that
    read them would no longer find their Message-IDs. (How long it takes is measured by
    benchmarks/noop_destinations.py, not asserted here.)"""
    folder = maildir.ensure_folder("SMS")
    template = sms_item(0).raw
    old_id = message_id_of(template).encode()
    ids = [f"<bulk{n}@smsbak.local>" for n in range(1_000)]
    cur = root / ".SMS" / "cur"
    for n, message_id in enumerate(ids):
        (cur / f"1600000000.M{n}P1.bulk:2,S").write_bytes(
            template.replace(old_id, message_id.encode())
        )
    assert len(maildir.find_message_ids(folder, ids)) == 1_000
    for path in cur.iterdir():
        path.write_bytes(b"")
    again = MaildirDestination(root)
    found = again.find_message_ids(folder, ids)
    outcome = Outcome()
    items = [Outgoing(f"k{n}", template.replace(old_id, i.encode()), i) for n, i in enumerate(ids)]
    again.upload(items, folder, on_confirmed=outcome.on_confirmed, on_rejected=outcome.on_rejected)
    assert len(found) == 1_000
    assert len(outcome.confirmed) == 1_000
    assert len(list(cur.iterdir())) == 1_000


# --- atomicity: a killed writer, a full disk, an unwritable folder ---------------------------

CHILD = """
import json, resource, signal, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from smsbak.destinations.maildir import MaildirDestination
from smsbak.errors import SmsbakError
from tests.contracts.destination_contract import sms_item, mms_item

die = {die!r}
signal.signal(signal.SIGXFSZ, signal.SIG_DFL if die else signal.SIG_IGN)
maildir = MaildirDestination(Path({root!r}))
folder = maildir.ensure_folder("SMS")
resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
confirmed = []
try:
    maildir.upload(
        [sms_item(1), mms_item(3_000_000)],
        folder,
        on_confirmed=lambda batch: confirmed.extend(c.key for c in batch),
        on_rejected=lambda r: None,
    )
except SmsbakError as error:
    print(json.dumps({{"error": type(error).__name__, "message": error.message,
                      "hint": error.hint, "exit_code": error.exit_code,
                      "confirmed": confirmed}}))
"""


def run_child(root: Path, *, die: bool) -> subprocess.CompletedProcess[str]:
    code = CHILD.format(repo=str(REPO), root=str(root), die=die)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_writer_killed_mid_write_leaves_nothing_in_cur_or_new(root: Path) -> None:
    """The kernel kills the writer (SIGXFSZ) while the MMS is half in tmp/: only tmp/
    holds a trace, no reader sees it, and the next run stores the MMS once."""
    result = run_child(root, die=True)
    assert result.returncode == -signal.SIGXFSZ, result.stderr
    folder = root / ".SMS"
    assert len(message_files(folder)) == 1  # the SMS before it was delivered whole
    (partial,) = (folder / "tmp").iterdir()
    assert 0 < partial.stat().st_size <= 1_000_000
    again = MaildirDestination(root)
    handle = again.ensure_folder("SMS")
    assert again.count(handle) == 1
    item = mms_item(3_000_000)
    upload(again, handle, [sms_item(1), item])
    assert len(message_files(folder)) == 2
    assert partial.exists(), "a tmp file younger than 36 hours may be another writer's"


def test_a_full_disk_is_a_clear_error_and_leaves_no_half_message(root: Path) -> None:
    result = run_child(root, die=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["error"] == "MaildirError"
    assert report["exit_code"] == 5
    assert "full" in report["message"]
    assert "Free some space" in report["hint"]
    assert len(report["confirmed"]) == 1  # the SMS before it stays confirmed
    folder = root / ".SMS"
    assert len(message_files(folder)) == 1
    assert files(folder / "tmp") == []


KILLED_AFTER_STORE = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from smsbak.destinations.maildir import MaildirDestination
from tests.contracts.destination_contract import sms_item

maildir = MaildirDestination(Path({root!r}))
folder = maildir.ensure_folder("SMS")

def confirmed(batch):
    os.kill(os.getpid(), signal.SIGKILL)  # before anyone could record it

maildir.upload([sms_item(1), sms_item(2)], folder, on_confirmed=confirmed, on_rejected=print)
"""


def test_a_run_killed_before_recording_a_store_leaves_one_copy(root: Path) -> None:
    """SIGKILL right after the first message is in cur/: the next run finds it by its
    Message-ID and writes only the second."""
    code = KILLED_AFTER_STORE.format(repo=str(REPO), root=str(root))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert len(message_files(root / ".SMS")) == 1
    again = MaildirDestination(root)
    folder = again.ensure_folder("SMS")
    first, second = sms_item(1), sms_item(2)
    assert list(again.find_message_ids(folder, [first.message_id, second.message_id])) == [
        first.message_id
    ]
    outcome = upload(again, folder, [first, second])
    assert sorted(outcome.confirmed_keys) == sorted([first.key, second.key])
    stored = [message_id_of(p.read_bytes()) for p in message_files(root / ".SMS")]
    assert sorted(stored) == sorted([first.message_id, second.message_id])


def test_stale_tmp_files_are_removed_and_fresh_ones_kept(
    maildir: MaildirDestination, root: Path
) -> None:
    maildir.ensure_folder("SMS")
    tmp = root / ".SMS" / "tmp"
    stale, fresh = tmp / "1.M1P1R1.crashed", tmp / "2.M2P2R2.writing"
    stale.write_bytes(b"half a mess")
    fresh.write_bytes(b"being written")
    two_days_ago = time.time() - 48 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))
    MaildirDestination(root).ensure_folder("SMS")
    assert files(tmp) == [fresh.name]


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write in: chmod, or for root (who ignores modes)
    the immutable attribute."""
    place = tmp_path / "locked"
    place.mkdir()
    if os.geteuid() != 0:
        place.chmod(0o500)
        yield place
        place.chmod(0o700)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(place)], check=False).returncode:
        pytest.skip("running as root without chattr +i: no way to make a folder unwritable")
    try:
        yield place
    finally:
        subprocess.run([chattr, "-i", str(place)], check=True)


def test_an_unwritable_place_is_a_usage_error_with_a_fix(unwritable: Path) -> None:
    maildir = MaildirDestination(unwritable / "Maildir")
    with pytest.raises(UsageError) as caught:
        maildir.ensure_folder("SMS")
    assert "cannot be written" in caught.value.message
    assert caught.value.hint and "chmod" in caught.value.hint
    assert caught.value.exit_code == 2


def test_a_file_in_the_way_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    for path in (tmp_path / "file", tmp_path / "file" / "Maildir"):
        with pytest.raises(UsageError) as caught:
            MaildirDestination(path).ensure_folder("SMS")
        assert "cannot be used" in caught.value.message
        assert caught.value.hint


def test_errors_are_smsbak_errors() -> None:
    from smsbak.destinations.maildir import MaildirError

    assert issubclass(MaildirError, SmsbakError)
    assert MaildirError.exit_code == 5


# --- Dovecot reads it ---------------------------------------------------------------------


def _doveadm(root: Path, work: Path, *args: str) -> str:
    """Run doveadm on our Maildir with a throwaway config; as root, as nobody (Dovecot
    refuses mail access as root), on a copy that nobody owns."""
    config = work / "dovecot.conf"
    config.write_text(
        f"base_dir = {work}/run\nstate_dir = {work}/state\nlog_path = /dev/stderr\n"
        f"mail_location = maildir:{root}\nssl = no\n"
    )
    config.chmod(0o644)  # read by `nobody`, whatever umask the test process has
    command = ["doveadm", "-c", str(config), *args]
    env = {"USER": "smsbak", "HOME": str(work), "PATH": os.environ.get("PATH", ""), "TZ": "UTC"}
    if os.geteuid() == 0:
        command = ["runuser", "-u", "nobody", "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def dovecot_work() -> Iterator[Path]:
    """A directory outside pytest's root-only tmp tree, so `nobody` can reach it."""
    work = Path(tempfile.mkdtemp(prefix="smsbak-dovecot-"))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.skipif(shutil.which("doveadm") is None, reason="Dovecot (doveadm) is not installed")
def test_dovecot_reads_folders_flags_dates_and_bytes(dovecot_work: Path) -> None:
    work = dovecot_work
    root = work / "Maildir"
    maildir = MaildirDestination(root)
    sms = [sms_item(1), sms_item(2, read=False)]
    upload(maildir, maildir.ensure_folder("SMS"), sms)
    upload(maildir, maildir.ensure_folder("Журнал звонков"), [call_item(3)])
    if os.geteuid() == 0:
        shutil.chown(work, "nobody")
        for path in work.rglob("*"):
            shutil.chown(path, "nobody")
    boxes = _doveadm(root, work, "mailbox", "list").split("\n")
    assert {"INBOX", "SMS", "Журнал звонков"} <= set(boxes)
    listing = _doveadm(
        root,
        work,
        "-f",
        "json",
        "fetch",
        "hdr.message-id flags date.received text",
        "mailbox",
        "SMS",
    )
    rows = {row["hdr.message-id"].strip(): row for row in json.loads(listing)}
    assert set(rows) == {i.message_id for i in sms}
    for item in sms:
        row = rows[item.message_id]
        assert ("\\Seen" in row["flags"]) == item.seen
        moment = datetime.fromtimestamp(item.date_ms // 1000, UTC)
        assert row["date.received"] == moment.strftime("%Y-%m-%d %H:%M:%S")
        assert row["text"].replace("\r\n", "\n") == item.raw.decode().replace("\r\n", "\n")
    calls = _doveadm(
        root, work, "-f", "json", "fetch", "hdr.message-id", "mailbox", "Журнал звонков"
    )
    assert [r["hdr.message-id"].strip() for r in json.loads(calls)] == [call_item(3).message_id]
