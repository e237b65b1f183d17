"""`smsbak restore` with failing logins and awkward archives: what the person gets."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from smsbak.errors import ExitCode
from smsbak.model import Box, Sms
from tests.conftest import Bed, write_token
from tests.fakes import sbp_corpus
from tests.format_readers import sms_only
from tests.test_restore_e2e import RESTORE_SCOPES

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests


def restore_login(bed: Bed, scopes: list[str] = RESTORE_SCOPES) -> str:
    """Like `smsbak auth --restore`; returns the restore grant's refresh token."""
    backup = (bed.home / "token.json").read_text()
    refresh = write_token(bed.home, bed.emulator, scopes=scopes)
    (bed.home / "token.json").rename(bed.home / "token-restore.json")
    (bed.home / "token.json").write_text(backup)
    sms = Sms("+4915", "fine", 1_600_000_000_000, Box.INBOX)
    bed.emulator.add_message(sbp_corpus.sms_email(sms), ["SMS"])
    return refresh


def test_a_revoked_restore_login_says_to_log_in_again_for_restore(bed: Bed) -> None:
    bed.emulator.revoke(restore_login(bed))
    result = bed.smsbak("restore", "--to", "xml:out.xml")
    assert result.returncode == ExitCode.AUTH, result.stderr
    assert "revoked or expired" in result.stderr
    assert "smsbak auth --restore --client-secrets FILE" in result.stderr
    assert "smsbak auth --client-secrets" not in result.stderr


def test_a_restore_login_without_read_access_says_to_log_in_again_for_restore(
    bed: Bed,
) -> None:
    """The token file claims gmail.readonly, but Google granted only the backup's scopes."""
    restore_login(bed, scopes=["https://www.googleapis.com/auth/gmail.insert"])
    path = bed.home / "token-restore.json"
    token = json.loads(path.read_text())
    path.write_text(json.dumps(token | {"scopes": RESTORE_SCOPES}))
    result = bed.smsbak("restore", "--to", "xml:out.xml")
    assert result.returncode == ExitCode.AUTH, result.stderr
    assert "smsbak auth --restore --client-secrets FILE" in result.stderr
    assert "smsbak auth --client-secrets" not in result.stderr


def test_the_backup_login_keeps_its_own_hint(bed: Bed) -> None:
    bed.emulator.revoke(bed.refresh_token)
    bed.phone.add_sms(address="+4917", body="hi", date=1_600_000_000_000)
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.AUTH
    assert "smsbak auth --client-secrets FILE" in result.stderr
    assert "--restore" not in result.stderr


def test_of_two_copies_of_one_message_the_one_with_milliseconds_is_restored(
    bed: Bed, tmp_path: Path
) -> None:
    """SMS Backup+ kept exact milliseconds; smsbak's copy of the same message, read with
    whole seconds, has the same fingerprint. Whichever Gmail lists first, the exact one wins."""
    from datetime import UTC, datetime

    from smsbak.formats.sbr import read_messages_xml
    from smsbak.mime import encode_sms

    restore_login(bed)
    exact = [
        Sms("+4917", "smsbak copy first", 1_600_000_010_123, Box.INBOX, True),
        Sms("+4917", "SMS Backup+ copy first", 1_600_000_020_456, Box.INBOX, True),
    ]

    def smsbak_copy(sms: Sms) -> bytes:
        whole = replace(sms, date_ms=sms.date_ms // 1000 * 1000)
        encoded = encode_sms(
            whole,
            account="user@example.com",
            contact_name=None,
            zone=UTC,
            backup_time=datetime(2026, 1, 1, tzinfo=UTC),
        )
        return encoded.raw

    bed.emulator.add_message(smsbak_copy(exact[0]), ["SMS"])
    bed.emulator.add_message(sbp_corpus.sms_email(exact[0]), ["SMS"])
    bed.emulator.add_message(sbp_corpus.sms_email(exact[1]), ["SMS"])
    bed.emulator.add_message(smsbak_copy(exact[1]), ["SMS"])
    path = tmp_path / "out.xml"
    result = bed.smsbak("restore", "--to", f"xml:{path}")
    assert result.returncode == 0, result.stderr
    restored = {(s.body, s.date_ms) for s in sms_only(read_messages_xml(path))}
    assert {(body, ms) for body, ms in restored if body != "fine"} == {
        (s.body, s.date_ms) for s in exact
    }
    assert "2  duplicates in the archive" in result.stdout


def test_emails_gmail_will_not_return_fail_the_run_and_the_next_run_fetches_them(
    bed: Bed, tmp_path: Path
) -> None:
    restore_login(bed)
    second = Sms("+4916", "second", 1_600_000_100_000, Box.SENT)
    bed.emulator.add_message(sbp_corpus.sms_email(second), ["SMS"])
    bed.emulator.fail_next(1, status=404, method="get", reason="notFound")
    out = tmp_path / "out.xml"
    result = bed.smsbak("restore", "--to", f"xml:{out}")
    assert result.returncode == ExitCode.GMAIL, result.stdout + result.stderr
    assert "Gmail did not return 1 of the listed emails" in result.stderr
    assert "run `smsbak restore` again" in result.stderr
    again = bed.smsbak("restore", "--to", f"xml:{tmp_path / 'again.xml'}")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.xml").read_text().count("<sms ") == 2
