"""verify: the state against what the destination holds, in-process over the memory
twin and a real Maildir (the CLI and Gmail are in test_adopt_cli.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from smsbak.backup import BackupOptions
from smsbak.destinations.maildir import MaildirDestination
from smsbak.destinations.memory import MemoryDestination
from smsbak.errors import ExitCode
from smsbak.ports import Destination
from smsbak.render import verify_lines
from smsbak.sources.memory import MemorySource
from smsbak.store import StateStore, place_key
from smsbak.verify import (
    Ledger,
    VerifyReport,
    count_repaired,
    forget_missing,
    verify_exit_code,
    verify_place,
)
from tests.fakes.sbp_corpus import plain_email, sms_email
from tests.test_adopt import engine, phone_sms, preload


def check(destination: Destination, store: StateStore, ledger: Ledger) -> VerifyReport:
    return verify_place(destination, "SMS", store, place_key(destination.identity, "SMS"), ledger)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state.db")


def test_a_whole_backup_is_whole(store: StateStore) -> None:
    destination = MemoryDestination("whole", merges_message_ids=False)
    messages = phone_sms(10)
    engine(MemorySource(messages), store, destination).run(BackupOptions())
    ledger = Ledger()
    report = check(destination, store, ledger)
    assert (report.fetched, report.present, report.missing_total) == (10, 10, 0)
    assert report.whole and verify_exit_code([report]) == ExitCode.OK
    assert verify_lines([report], None)[-1] == "The backup is whole."


@pytest.mark.parametrize("kind", ["memory", "maildir"])
def test_missing_messages_are_found_and_repaired_once(
    store: StateStore, tmp_path: Path, kind: str
) -> None:
    destination: Destination
    if kind == "memory":
        destination = MemoryDestination("gone", merges_message_ids=False)
    else:
        destination = MaildirDestination(tmp_path / "Mail")
    messages = phone_sms(12)
    source = MemorySource(messages)
    engine(source, store, destination).run(BackupOptions())
    removed = remove(destination, 3)

    ledger = Ledger()
    report = check(destination, store, ledger)
    assert report.missing == {"sms": 3}
    assert {m.short_id for m in report.listed_missing} == {fp[:12] for fp in removed}
    assert not report.whole and verify_exit_code([report]) == ExitCode.CHECKS_FAILED
    lines = "\n".join(verify_lines([report], None))
    assert "MISSING: 3 SMS" in lines and "verify --repair" in lines
    assert "Nachricht" not in lines and "+4917" not in lines  # never a text or a number

    # --repair: forget them at the place, a full backup reads the phone and uploads them.
    place = place_key(destination.identity, "SMS")
    assert forget_missing(store, place, ledger) == 3
    source.sms = [s for s in source.sms if s.sms.fingerprint != sorted(removed)[0]]
    backup = engine(source, store, destination).run(BackupOptions(full=True))
    count_repaired(store, place, ledger, report)
    assert backup.uploaded == 2
    assert report.repaired == 2 and report.unrepaired == {"sms": 1}
    assert "not repaired: 1 SMS (the phone no longer has them)" in "\n".join(
        verify_lines([report], backup)
    )
    assert verify_exit_code([report]) == ExitCode.CHECKS_FAILED
    assert count_held(destination) == 11  # one copy each, nothing doubled

    again = check(destination, store, Ledger())
    assert (again.missing_total, again.present) == (0, 11)
    assert verify_exit_code([again]) == ExitCode.OK


def test_messages_unknown_to_the_state_are_recorded(store: StateStore) -> None:
    destination = MemoryDestination("foreign", merges_message_ids=False)
    messages = phone_sms(6)
    engine(MemorySource(messages[:3]), store, destination).run(BackupOptions())
    preload(destination, "SMS", [sms_email(m) for m in messages[3:]] + [plain_email()])

    report = check(destination, store, Ledger())
    assert report.recorded_now == {"sms": 3}
    assert report.skipped == {"no datatype header": 1}
    assert (report.present, report.missing_total) == (3, 0)
    later = engine(MemorySource(messages), store, destination).run(BackupOptions(full=True))
    assert later.uploaded == 0


def test_a_deleted_label_makes_everything_missing(store: StateStore, tmp_path: Path) -> None:
    maildir = MaildirDestination(tmp_path / "Mail")
    engine(MemorySource(phone_sms(4)), store, maildir).run(BackupOptions())
    maildir.close()
    shutil.rmtree(tmp_path / "Mail" / ".SMS")
    fresh = MaildirDestination(tmp_path / "Mail")
    report = check(fresh, store, Ledger())
    assert report.folder_absent and report.missing == {"sms": 4}
    assert "the label does not exist" in verify_lines([report], None)[0]


def test_a_folder_not_read_whole_calls_nothing_missing(store: StateStore) -> None:
    destination = MemoryDestination("flaky", merges_message_ids=False)
    engine(MemorySource(phone_sms(5)), store, destination).run(BackupOptions())
    destination.messages.pop(destination.folder_messages("SMS")[0].remote_id)
    report = check(destination, store, Ledger())
    assert report.not_fetched == 1 and report.missing_total == 0
    assert verify_exit_code([report]) == ExitCode.CHECKS_FAILED


def test_the_state_is_walked_in_chunks_against_the_folder(store: StateStore) -> None:
    """More records than one chunk of the state walk and of the listing."""
    destination = MemoryDestination("many", merges_message_ids=True, batch_size=50)
    messages = phone_sms(600)
    engine(MemorySource(messages), store, destination).run(BackupOptions())
    remove(destination, 7)
    report = check(destination, store, Ledger())
    assert (report.fetched, report.present, report.missing_total) == (593, 593, 7)


def remove(destination: Destination, n: int) -> list[str]:
    """Delete ``n`` messages at the destination (a mail client, a cleanup rule):
    returns their fingerprints as the state knows them."""
    from smsbak.mime import decode_sms

    removed: list[str] = []
    if isinstance(destination, MemoryDestination):
        folder = destination._folders["SMS"]  # the twin's own state: what a user deletes
        for remote_id in folder.messages[:n]:
            removed.append(decode_sms(destination.messages.pop(remote_id).raw).fingerprint)
        folder.messages = folder.messages[n:]
        return removed
    assert isinstance(destination, MaildirDestination)
    cur = destination.root / ".SMS" / "cur"
    for path in sorted(cur.iterdir())[:n]:
        removed.append(decode_sms(path.read_bytes()).fingerprint)
        path.unlink()
    destination.close()  # forget the cached listing, as a new run would
    return removed


def count_held(destination: Destination) -> int:
    folder = destination.find_folder("SMS")
    assert folder is not None
    return sum(1 for _ in destination.list_ids(folder))
