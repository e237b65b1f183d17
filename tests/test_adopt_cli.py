"""Adoption and verify end to end: the real CLI (in the test process), the fake phone,
the Gmail emulator driven by the real Google client, and a Maildir."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsbak.errors import ExitCode
from smsbak.model import Box, Sms
from tests.conftest import Bed, with_termux_reader
from tests.fakes import sbp_corpus
from tests.test_backup_e2e import BASE
from tests.test_restore_e2e import restore_login

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests


@pytest.fixture
def bed(bed: Bed) -> Bed:
    return with_termux_reader(bed)  # the reader is not what this file tests


def fill_phone(bed: Bed, n: int, first: int = 0) -> list[Sms]:
    """``n`` SMS on the phone; returned as SMS Backup+ saw them (exact milliseconds)."""
    with bed.phone.batch():
        rows = [
            bed.phone.add_sms(
                address=f"+49170{i:05d}",
                body=f"Hallo {i} – grüß dich",
                date=BASE + i * 60_000 + 417,
                type=1 if i % 2 else 2,
            )
            for i in range(first, first + n)
        ]
    return [
        Sms(
            address=str(r["address"]),
            body=str(r["body"]),
            date_ms=int(r["date"]),
            box=Box(int(r["type"])),
            read=True,
            android_id=int(r["_id"]),
        )
        for r in rows
    ]


def sms_backup_plus_label(bed: Bed, messages: list[Sms]) -> None:
    for i, sms in enumerate(messages):
        encoding = "base64" if i % 2 else "quoted-printable"
        bed.emulator.add_message(sbp_corpus.sms_email(sms, encoding=encoding), ["SMS"])
    bed.emulator.add_message(sbp_corpus.plain_email(), ["SMS"])


def test_first_backup_with_the_read_login_uploads_only_what_sms_backup_plus_lacks(
    bed: Bed,
) -> None:
    messages = fill_phone(bed, 10)
    sms_backup_plus_label(bed, messages[:6])
    restore_login(bed)

    result = bed.smsbak("backup")

    assert result.returncode == 0, result.stderr
    assert "Adopted 6 messages already under 'SMS' in Gmail (6 SMS)" in result.stdout
    assert "1 other emails there left alone" in result.stdout
    assert "Backed up 4 new messages (6 already in Gmail" in result.stdout
    assert len(bed.stored("SMS")) == 7 + 4
    again = bed.smsbak("backup", "--full")
    assert again.returncode == 0, again.stderr
    assert "Adopted" not in again.stdout and len(bed.stored("SMS")) == 11


def test_insert_only_login_stops_before_uploading_and_upload_anyway_goes_ahead(
    bed: Bed,
) -> None:
    messages = fill_phone(bed, 5)
    sms_backup_plus_label(bed, messages[:3])

    stopped = bed.smsbak("backup")

    assert stopped.returncode == ExitCode.USAGE, stopped.stderr
    assert "already holds 4 messages smsbak has no record of" in stopped.stderr
    assert "Fix:" in stopped.stderr and "smsbak auth --restore" in stopped.stderr
    assert "smsbak backup --upload-anyway" in stopped.stderr
    assert len(bed.stored("SMS")) == 4  # nothing went up

    anyway = bed.smsbak("backup", "--upload-anyway")
    assert anyway.returncode == 0, anyway.stderr
    assert "uploading anyway (--upload-anyway)" in anyway.stdout
    assert len(bed.stored("SMS")) == 4 + 5  # SMS Backup+'s copies stay beside smsbak's
    assert bed.smsbak("backup").returncode == 0  # not a first backup any more


def remove_label(bed: Bed, count: int, label: str = "SMS") -> None:
    """The person removes the label from some messages in Gmail (they stay in All Mail)."""
    emulator = bed.emulator
    with emulator._lock:  # the fake's own state: what Gmail's web page would change
        label_id = next(lb.id for lb in emulator._labels.values() if lb.name == label)
        held = [m for m in emulator._messages.values() if label_id in m.label_ids]
        for message in held[:count]:
            message.label_ids.remove(label_id)


def test_verify_finds_what_was_removed_and_repair_puts_it_back_once(bed: Bed) -> None:
    fill_phone(bed, 8)
    assert bed.smsbak("backup").returncode == 0
    restore_login(bed)
    whole = bed.smsbak("verify")
    assert whole.returncode == 0, whole.stderr + whole.stdout
    assert "The backup is whole." in whole.stdout
    remove_label(bed, 3)

    found = bed.smsbak("verify")

    assert found.returncode == ExitCode.CHECKS_FAILED, found.stderr
    assert "MISSING: 3 SMS" in found.stdout
    assert "+49170" not in found.stdout and "Hallo" not in found.stdout
    assert len(bed.stored("SMS")) == 5

    repaired = bed.smsbak("verify", "--repair")

    assert repaired.returncode == 0, repaired.stderr + repaired.stdout
    assert "repaired: 3 uploaded again" in repaired.stdout
    assert "The backup is whole." in repaired.stdout
    stored = bed.stored("SMS")
    assert len(stored) == 8
    assert len({m.message_id for m in stored}) == 8
    assert len(bed.emulator.messages()) == 8  # Gmail kept one copy of each
    final = bed.smsbak("verify")
    assert final.returncode == 0 and "MISSING" not in final.stdout


def test_verify_without_the_read_login_says_how_to_get_it(bed: Bed) -> None:
    fill_phone(bed, 2)
    assert bed.smsbak("backup").returncode == 0
    result = bed.smsbak("verify")
    assert result.returncode == ExitCode.AUTH
    assert "smsbak auth --restore" in result.stderr


def test_maildir_state_deleted_then_the_next_backup_doubles_nothing(
    bed: Bed, tmp_path: Path
) -> None:
    mail = tmp_path / "Mail"
    bed.configure(destination=f"maildir:{mail}", quota_units_per_minute=15_000_000, reader="termux")
    fill_phone(bed, 6)
    assert bed.smsbak("backup").returncode == 0
    state = list(bed.home.rglob("state.sqlite3*"))
    assert state
    for path in state:  # Termux reinstalled: the state database is gone
        path.unlink()
    fill_phone(bed, 2, first=6)  # two more arrived meanwhile

    result = bed.smsbak("backup")

    assert result.returncode == 0, result.stderr
    assert "Adopted 6 messages" in result.stdout
    assert "Backed up 2 new messages (6 already" in result.stdout
    cur = mail / ".SMS" / "cur"
    assert len(list(cur.iterdir())) == 8
    verify = bed.smsbak("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_insert_only_login_and_a_foreign_call_log_label_upload_no_sms_either(bed: Bed) -> None:
    """Every label of the run is checked before the first upload, not stream by stream."""
    fill_phone(bed, 3)
    bed.emulator.add_message(sbp_corpus.call_email(BASE, "+4930123456"), ["Call log"])

    stopped = bed.smsbak("backup")

    assert stopped.returncode == ExitCode.USAGE, stopped.stderr
    assert "'Call log'" in stopped.stderr
    assert bed.stored("SMS") == []


def test_a_dry_run_of_a_first_backup_says_the_counts_do_not_know_the_label_yet(
    bed: Bed,
) -> None:
    fill_phone(bed, 2)
    result = bed.smsbak("backup", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would be the first backup into 'SMS'" in result.stderr
    assert bed.stored("SMS") == []
