"""`smsbak restore` failing: what the person is told to do."""

from __future__ import annotations

import json

from smsbak.errors import ExitCode
from smsbak.model import Box, Sms
from tests.conftest import Bed, write_token
from tests.fakes import sbp_corpus
from tests.test_restore_e2e import RESTORE_SCOPES


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
