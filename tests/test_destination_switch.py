"""State belongs to a place (destination identity + label), end to end through the CLI.

Issue 9's bug, as a new user met it: back up, log in with another Gmail account, back
up again: smsbak said "0 new (60 already in Gmail)" and the new account held nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from smsbak.errors import ExitCode
from tests.conftest import ACCOUNT, BACKUP_SCOPES, TEST_QUOTA_PER_MINUTE, Bed, scaled_emulator
from tests.fakes.gmail_emulator import GmailEmulator
from tests.test_mms_backup import group_mms, setup

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests

SECOND = "second@example.com"


@pytest.fixture
def second() -> Iterator[GmailEmulator]:
    with scaled_emulator(SECOND) as emu:
        yield emu


def log_in(bed: Bed, emulator: GmailEmulator, account: str) -> None:
    """What `smsbak auth` leaves behind for ``account``."""
    secrets = emulator.client_secrets()["installed"]
    token = {
        "token": None,
        "refresh_token": emulator.grant(BACKUP_SCOPES),
        "token_uri": emulator.token_uri,
        "client_id": secrets["client_id"],
        "client_secret": secrets["client_secret"],
        "scopes": BACKUP_SCOPES,
        "account": account,
    }
    path = bed.home / "token.json"
    path.write_text(json.dumps(token))
    path.chmod(0o600)


def phone_with(bed: Bed, count: int) -> None:
    for n in range(count):
        bed.phone.add_sms(
            address=f"+49170{n:05d}", body=f"hello {n}", date=1_772_362_800_000 + n * 60_000
        )


def status(bed: Bed, emulator: GmailEmulator) -> dict[str, object]:
    result = bed.smsbak("status", "--json", SMSBAK_GMAIL_API=emulator.url)
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_another_gmail_account_gets_everything_and_switching_back_uploads_nothing(
    bed: Bed, second: GmailEmulator
) -> None:
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, call_log=False)
    phone_with(bed, 12)
    first = bed.smsbak("backup")
    assert first.returncode == 0, first.stderr
    assert len(bed.stored()) == 12

    log_in(bed, second, SECOND)
    moved = bed.smsbak("backup", SMSBAK_GMAIL_API=second.url)
    assert moved.returncode == 0, moved.stderr
    assert "Backed up 12 new messages (0 already in Gmail" in moved.stdout
    assert len(second.messages("SMS")) == 12
    data = status(bed, second)
    assert data["destination"] == f"gmail:{SECOND}" and data["messages_backed_up"] == 12
    assert data["other_places"] == [
        {"destination": f"gmail:{ACCOUNT}", "label": "SMS", "messages_backed_up": 12}
    ]

    log_in(bed, bed.emulator, ACCOUNT)
    inserts = bed.emulator.insert_calls
    back = bed.smsbak("backup")
    assert back.returncode == 0, back.stderr
    assert "Backed up 0 new messages (12 already in Gmail" in back.stdout
    assert bed.emulator.insert_calls == inserts
    assert status(bed, bed.emulator)["destination"] == f"gmail:{ACCOUNT}"


def test_a_new_label_is_a_new_place(bed: Bed) -> None:
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, call_log=False)
    phone_with(bed, 5)
    assert bed.smsbak("backup").returncode == 0
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, call_log=False, label="Texte")
    relabelled = bed.smsbak("backup")
    assert relabelled.returncode == 0, relabelled.stderr
    assert "Backed up 5 new messages" in relabelled.stdout
    assert len(bed.stored("Texte")) == 5 and len(bed.stored("SMS")) == 5


def test_status_text_names_the_destination(bed: Bed) -> None:
    result = bed.smsbak("status")
    assert result.returncode == 0, result.stderr
    assert f"Destination:        gmail:{ACCOUNT}" in result.stdout


def test_an_unknown_destination_is_a_usage_error_that_says_the_choices(bed: Bed) -> None:
    result = bed.smsbak("backup", SMSBAK_DESTINATION="dropbox")
    assert result.returncode == ExitCode.USAGE
    assert "destination = 'dropbox' ($SMSBAK_DESTINATION)" in result.stderr
    assert '"gmail", "imap" or "maildir:PATH"' in result.stderr
    assert not bed.stored()


def test_refused_mms_exit_5_like_refused_sms(bed: Bed) -> None:
    """Before issue 9 a backup in which Gmail refused MMS exited 0."""
    setup(bed)
    group_mms(bed)
    bed.emulator.fail_next(1, status=400, reason="invalidArgument")
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.GMAIL, result.stdout + result.stderr
    assert "Gmail refused 1 MMS" in result.stdout
    assert not bed.stored()
    again = bed.smsbak("backup")  # refused for good: reported once, not retried
    assert again.returncode == 0, again.stderr
