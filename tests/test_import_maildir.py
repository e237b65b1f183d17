"""The README's first command, through the real CLI process into a real Maildir.

Runs once the Maildir destination (``smsbak.destinations.maildir``, branch maildir) and
the wiring that opens it from ``SMSBAK_DESTINATION`` are in the tree; skipped before.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("smsbak.destinations.maildir")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = [str(ROOT / "examples" / "sample-sms.xml"), str(ROOT / "examples" / "sample-calls.xml")]


def smsbak(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SMSBAK_HOME": str(tmp_path / "home"),
        "SMSBAK_DESTINATION": f"maildir:{tmp_path / 'Maildir'}",
    }
    return subprocess.run(
        [sys.executable, "-m", "smsbak", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def mail_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.parent.name in ("cur", "new")]


def test_the_samples_go_into_a_maildir_once(tmp_path: Path) -> None:
    first = smsbak(tmp_path, "import", *SAMPLES)
    assert first.returncode == 0, first.stderr
    assert "4 SMS, 1 MMS, 2 calls uploaded" in first.stdout
    files = mail_files(tmp_path / "Maildir")
    assert len(files) == 7
    again = smsbak(tmp_path, "import", *SAMPLES)
    assert again.returncode == 0 and "nothing uploaded" in again.stdout
    assert mail_files(tmp_path / "Maildir") == files


def test_a_damaged_file_exits_2_through_the_process(tmp_path: Path) -> None:
    whole = (ROOT / "examples" / "sample-sms.xml").read_bytes()
    broken = tmp_path / "sms-broken.xml"
    broken.write_bytes(whole[: whole.index(b"<mms ")] + b"<sms date=")
    result = smsbak(tmp_path, "import", str(broken))
    assert result.returncode == 2, result.stderr
    assert "DAMAGED" in result.stdout and "line " in result.stdout
    assert len(mail_files(tmp_path / "Maildir")) == 4  # what preceded the damage


def test_a_phone_backup_after_an_import_adds_only_what_the_file_lacked(
    tmp_path: Path,
) -> None:
    """The identity of an imported message is the phone backup's: the same SMS on the
    phone and in an SMS Backup & Restore file is one email, whichever came first."""
    from datetime import UTC, datetime

    from smsbak.model import Box, Sms
    from tests.conftest import Bed
    from tests.fakes.archive_corpus import write_sbr_messages
    from tests.fakes.gmail_emulator import GmailEmulator
    from tests.fakes.phone import FakePhone

    phone = FakePhone(tmp_path / "phone")
    base = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    bodies = ["on both", "also on both", "only on the phone", "only on the phone too"]
    for n, body in enumerate(bodies):
        phone.add_sms(address="+4915112345678", body=body, date=base.replace(minute=n))
    on_both = [
        # SMS Backup & Restore keeps the milliseconds Termux:API drops: still one message
        Sms(
            address="+4915112345678",
            body=body,
            date_ms=int(base.replace(minute=n).timestamp() * 1000) + 417,
            box=Box.INBOX,
            read=True,
        )
        for n, body in enumerate(bodies[:2])
    ]
    archive = write_sbr_messages(tmp_path / "sms-old.xml", on_both)
    maildir = tmp_path / "Maildir"
    with GmailEmulator(account="user@example.com") as emulator:
        # identity, not the process: the CLI in this process (the tests above start one)
        bed = Bed(
            home=tmp_path / "home", phone=phone, emulator=emulator, refresh_token="",
            in_process=True,
        )  # fmt: skip
        bed.home.mkdir()
        bed.configure(destination=f"maildir:{maildir}", call_log=False, reader="termux")
        imported = bed.smsbak("import", str(archive))
        assert imported.returncode == 0, imported.stderr
        assert len(mail_files(maildir)) == 2
        backup = bed.smsbak("backup")
        assert backup.returncode == 0, backup.stderr
        assert "Backed up 2 new messages" in backup.stdout, backup.stdout
        assert len(mail_files(maildir)) == 4
    assert not phone.sms_send_called()
