"""Bad input: each failure has a clear message, its documented exit code, and records nothing."""

from __future__ import annotations

import sqlite3
import time

import pytest

from smsbak.config import check_api_url
from smsbak.errors import ExitCode
from tests.conftest import Bed

pytestmark = pytest.mark.cli_in_process  # errors and exit codes, not the process boundary

BASE = 1_772_362_800_000  # 2026-03-01 11:00:00 UTC


def nothing_recorded(bed: Bed) -> bool:
    db_path = bed.home / "state.sqlite3"
    if bed.emulator.messages():
        return False
    if not db_path.exists():
        return True
    with sqlite3.connect(db_path) as db:
        return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]) == 0


@pytest.fixture
def phone_with_messages(bed: Bed) -> Bed:
    with bed.phone.batch():
        for i in range(5):
            bed.phone.add_sms(address="+4911", body=f"b{i}", date=BASE + i * 1000)
    return bed


def test_permission_denied_names_the_permission_and_the_fix(phone_with_messages: Bed) -> None:
    bed = phone_with_messages
    bed.phone.set_mode("termux-sms-list", "permission")
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.PHONE
    assert "android.permission.READ_SMS" in result.stderr
    assert "Settings > Apps > Termux:API > Permissions" in result.stderr
    assert nothing_recorded(bed)


def test_a_hanging_tool_times_out_with_the_install_hint(phone_with_messages: Bed) -> None:
    bed = phone_with_messages
    bed.configure(termux_timeout=1.5)
    bed.phone.set_mode("termux-sms-list", "hang")
    started = time.monotonic()
    result = bed.smsbak("backup", timeout=30)
    assert time.monotonic() - started < 20
    assert result.returncode == ExitCode.PHONE
    assert "did not answer within 1.5 s" in result.stderr
    assert "install the Termux:API app" in result.stderr
    assert nothing_recorded(bed)


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("garbage", "not complete JSON"),
        ("truncated", "not complete JSON"),
        ("empty", "printed nothing"),
        ("exit1", "failed with exit code 1"),
    ],
)
def test_bad_output_is_an_error_never_no_messages(
    phone_with_messages: Bed, mode: str, words: str
) -> None:
    bed = phone_with_messages
    bed.phone.set_mode("termux-sms-list", mode)
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.PHONE, result.stderr
    assert words in result.stderr
    assert nothing_recorded(bed)


def test_a_revoked_token_says_to_log_in_again(phone_with_messages: Bed) -> None:
    bed = phone_with_messages
    bed.emulator.revoke(bed.refresh_token)
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.AUTH
    assert "smsbak auth" in result.stderr
    assert "revoked or expired" in result.stderr
    assert nothing_recorded(bed)
    status = bed.smsbak("status", "--json")
    assert '"result": "failed"' in status.stdout


def test_no_token_says_to_log_in(phone_with_messages: Bed) -> None:
    bed = phone_with_messages
    (bed.home / "token.json").unlink()
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.AUTH
    assert "not logged in" in result.stderr
    assert "smsbak auth" in result.stderr


def test_a_token_without_insert_scope_is_refused_before_reading_the_phone(
    phone_with_messages: Bed,
) -> None:
    from tests.conftest import write_token

    bed = phone_with_messages
    write_token(bed.home, bed.emulator, scopes=["https://www.googleapis.com/auth/gmail.labels"])
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.AUTH
    assert "gmail.insert" in result.stderr
    assert bed.sms_list_calls() == 0


def test_contacts_permission_missing_only_costs_the_names(bed: Bed) -> None:
    bed.phone.add_contact("Anna", "+4912")
    bed.phone.add_sms(address="+4912", body="sent", date=BASE, type=2)
    bed.phone.set_mode("termux-contact-list", "permission")
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert "contact names left out" in result.stderr
    assert len(bed.emulator.messages("SMS")) == 1


def test_invalid_settings_are_all_listed_at_once(bed: Bed) -> None:
    (bed.home / "config.toml").write_text(
        'label = ""\nlookback_hours = -1\nbatch_size = 100\ncolour = "blue"\n'
    )
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.USAGE
    for key in ("label", "lookback_hours", "batch_size", "colour"):
        assert key in result.stderr
    assert bed.sms_list_calls() == 0


@pytest.mark.parametrize(
    "url",
    ["http://gmail.example.com", "http://127.evil.example:8080", "http://127.0.0.1.nip.io"],
)
def test_plain_http_is_refused_off_loopback(bed: Bed, url: str) -> None:
    result = bed.smsbak("backup", SMSBAK_GMAIL_API=url)
    assert result.returncode == ExitCode.USAGE
    assert "refusing plain http" in result.stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "http://127.1.2.3:1", "http://[::1]:1", "http://localhost:1"])
def test_plain_http_to_loopback_is_accepted(url: str) -> None:
    assert check_api_url(url) == url


def test_a_state_database_from_a_newer_smsbak_is_refused(phone_with_messages: Bed) -> None:
    bed = phone_with_messages
    bed.home.mkdir(exist_ok=True)
    with sqlite3.connect(bed.home / "state.sqlite3") as db:
        db.execute("PRAGMA user_version = 99")
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.STATE
    assert "newer smsbak" in result.stderr
    assert not bed.emulator.messages()


def test_a_corrupt_state_database_names_the_file_and_the_way_out(bed: Bed) -> None:
    (bed.home / "state.sqlite3").write_bytes(b"this is not a database" * 100)
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.STATE
    assert "state.sqlite3" in result.stderr
    assert "--full" in result.stderr
