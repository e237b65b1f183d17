"""`smsbak auth` through a real loopback flow, and where smsbak keeps its files."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from smsbak.errors import ExitCode
from tests.conftest import ACCOUNT, Bed

# The CLI runs in this process, except where a fresh process is what is tested: the
# modes of the files it makes (umask), and a login typed into a running process.
pytestmark = pytest.mark.cli_in_process


def secrets_file(bed: Bed, tmp_path: Path) -> Path:
    path = tmp_path / "client_secret.json"
    path.write_text(json.dumps(bed.emulator.client_secrets()))
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_auth_through_the_phones_browser_saves_a_private_token(bed: Bed, tmp_path: Path) -> None:
    (bed.home / "token.json").unlink()
    result = bed.smsbak(
        "auth",
        "--client-secrets",
        str(secrets_file(bed, tmp_path)),
        "--timeout",
        "30",
        SMSBAK_FAKE_BROWSER="1",
        input="",
    )
    assert result.returncode == 0, result.stderr
    assert bed.emulator.auth_uri in result.stdout  # the URL is always printed
    assert f"Logged in as {ACCOUNT}" in result.stdout
    token = json.loads((bed.home / "token.json").read_text())
    assert token["account"] == ACCOUNT
    assert token["token_uri"] == bed.emulator.token_uri
    assert token["refresh_token"]
    assert "https://www.googleapis.com/auth/gmail.insert" in token["scopes"]
    assert "https://www.googleapis.com/auth/gmail.readonly" not in token["scopes"]
    assert mode(bed.home / "token.json") == 0o600
    assert len(bed.phone.calls("termux-open-url")) == 1
    # The new token works for a backup.
    bed.phone.add_sms(address="+491", body="after login", date=1_772_362_800_000)
    assert bed.smsbak("backup").returncode == 0
    assert len(bed.emulator.messages("SMS")) == 1


def test_auth_accepts_the_redirect_address_pasted_from_another_device(
    bed: Bed, tmp_path: Path
) -> None:
    (bed.home / "token.json").unlink()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smsbak",
            "auth",
            "--client-secrets",
            str(secrets_file(bed, tmp_path)),
        ],
        env=bed.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    url = ""
    deadline = time.monotonic() + 30
    while not url and time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(bed.emulator.auth_uri):
            url = line.strip()
    assert url, "the consent URL was not printed"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(url, timeout=10)
        raise AssertionError("expected a redirect")
    except urllib.error.HTTPError as answer:
        redirect = answer.headers["Location"]
    assert redirect.startswith("http://localhost:")
    out, err = process.communicate(redirect + "\n", timeout=30)
    assert process.returncode == 0, err
    assert f"Logged in as {ACCOUNT}" in out
    assert json.loads((bed.home / "token.json").read_text())["account"] == ACCOUNT


def test_auth_with_an_unusable_secrets_file_is_a_usage_error(bed: Bed, tmp_path: Path) -> None:
    bad = tmp_path / "secret.json"
    bad.write_text('{"web": 1}')
    result = bed.smsbak("auth", "--client-secrets", str(bad), input="")
    assert result.returncode == ExitCode.USAGE
    assert "Desktop app" in result.stderr


def test_everything_lives_under_smsbak_home_and_is_private(bed: Bed) -> None:
    bed.phone.add_sms(address="+492", body="perm", date=1_772_362_800_000)
    assert bed.process("backup").returncode == 0
    assert mode(bed.home) == 0o700
    for name in ("state.sqlite3", "token.json", "backup.lock", "logs/smsbak.log"):
        assert mode(bed.home / name) == 0o600, name
    assert mode(bed.home / "logs") == 0o700


def test_without_smsbak_home_files_follow_xdg(bed: Bed, tmp_path: Path) -> None:
    user_home = tmp_path / "user"
    config = user_home / ".config" / "smsbak"
    config.mkdir(parents=True)
    (bed.home / "token.json").rename(config / "token.json")
    bed.phone.add_sms(address="+493", body="xdg", date=1_772_362_800_000)
    env = bed.env(HOME=str(user_home))
    env.pop("SMSBAK_HOME")
    env.pop("XDG_CONFIG_HOME", None)
    env.pop("XDG_DATA_HOME", None)
    result = subprocess.run(
        [sys.executable, "-m", "smsbak", "backup"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    data = user_home / ".local" / "share" / "smsbak"
    assert (data / "state.sqlite3").exists()
    assert mode(data) == 0o700


def test_logs_hold_no_bodies_or_numbers(bed: Bed) -> None:
    bed.phone.add_sms(address="+4915112345678", body="secret body text", date=1_772_362_800_000)
    bed.emulator.fail_next(1, status=400, reason="invalidArgument")
    bed.smsbak("backup")
    log = (bed.home / "logs" / "smsbak.log").read_text()
    assert "refused" in log  # the rejection was logged...
    assert "secret body text" not in log  # ...without the text
    assert "4915112345678" not in log


def test_refused_messages_are_reported_and_not_recorded(bed: Bed) -> None:
    bed.phone.add_sms(address="+494", body="refused", date=1_772_362_800_000)
    bed.phone.add_sms(address="+494", body="accepted", date=1_772_362_801_000)
    bed.emulator.fail_next(1, status=400, reason="invalidArgument")
    result = bed.smsbak("backup")
    assert result.returncode == ExitCode.GMAIL
    assert "Gmail refused 1" in result.stdout
    inserts = bed.emulator.insert_calls
    again = bed.smsbak("backup")  # refused for good: not retried on every run
    assert again.returncode == 0
    assert bed.emulator.insert_calls == inserts
    assert "1 that Gmail refused before were skipped" in again.stdout
    full = bed.smsbak("backup", "--full")  # ...but --full tries again
    assert full.returncode == 0, full.stderr
    assert len(bed.emulator.messages("SMS")) == 2
    status = json.loads(bed.smsbak("status", "--json").stdout)
    assert status["last_success"] is not None


def test_files_stay_private_even_with_a_permissive_umask(bed: Bed) -> None:
    bed.phone.add_sms(address="+495", body="umask", date=1_772_362_800_000)
    result = subprocess.run(
        ["sh", "-c", 'umask 000; exec "$0" -m smsbak backup', sys.executable],
        env=bed.env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    created_by_smsbak = [p for p in bed.home.rglob("*") if p.name != "config.toml"]
    assert len(created_by_smsbak) >= 5
    for path in created_by_smsbak:
        assert mode(path) & 0o077 == 0, path
