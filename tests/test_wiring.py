"""The wiring: the `destination` setting, and which adapter it opens."""

from __future__ import annotations

import sys
import types
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from smsbak.app import account_address, open_destination
from smsbak.config import Settings, load_settings
from smsbak.destinations.memory import MemoryDestination
from smsbak.errors import UsageError
from smsbak.paths import Paths


def paths(tmp_path: Path) -> Paths:
    return Paths(config_dir=tmp_path, data_dir=tmp_path)


@pytest.mark.parametrize("value", ["gmail", "imap", "maildir:~/Mail/sms", "maildir:/srv/Maildir"])
def test_valid_destinations_load(tmp_path: Path, value: str) -> None:
    (tmp_path / "config.toml").write_text(f'destination = "{value}"\n')
    assert load_settings(paths(tmp_path), {}).destination == value


@pytest.mark.parametrize("value", ["dropbox", "maildir", "maildir:", "Gmail", "maildir:\x01x"])
def test_invalid_destinations_name_the_choices(tmp_path: Path, value: str) -> None:
    with pytest.raises(UsageError) as raised:
        load_settings(paths(tmp_path), {"SMSBAK_DESTINATION": value})
    assert "$SMSBAK_DESTINATION" in raised.value.message
    assert "maildir:PATH" in raised.value.message


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('destination = "imap"\n')
    settings = load_settings(paths(tmp_path), {"SMSBAK_DESTINATION": "maildir:/tmp/m"})
    assert settings.destination == "maildir:/tmp/m"
    assert settings.sources["destination"] == "$SMSBAK_DESTINATION"


def test_maildir_paths_are_expanded_and_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Path] = []

    def maildir(path: Path) -> MemoryDestination:
        opened.append(path)
        return MemoryDestination("maildir")

    fake = types.ModuleType("smsbak.destinations.maildir")
    fake.MaildirDestination = maildir  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "smsbak.destinations.maildir", fake)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for where in ("~/Mail", "relative/Mail"):
        open_destination(paths(tmp_path), replace(Settings(), destination=f"maildir:{where}"))
    assert opened == [tmp_path / "Mail", tmp_path / "relative" / "Mail"]


def test_imap_is_opened_by_its_factory_for_backup_and_restore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []

    def factory(p: Paths, s: Settings, *, for_restore: bool = False) -> MemoryDestination:
        calls.append((p, s.destination, for_restore))
        return MemoryDestination("imap")

    fake = types.ModuleType("smsbak.destinations.imap")
    fake.open_imap_destination = factory  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "smsbak.destinations.imap", fake)
    settings = replace(Settings(), destination="imap")
    open_destination(paths(tmp_path), settings)
    open_destination(paths(tmp_path), settings, for_restore=True)
    assert calls == [(paths(tmp_path), "imap", False), (paths(tmp_path), "imap", True)]


def test_a_missing_adapter_is_a_clear_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "smsbak.destinations.imap", None)
    with pytest.raises(UsageError) as raised:
        open_destination(paths(tmp_path), replace(Settings(), destination="imap"))
    assert "cannot back up to imap" in raised.value.message
    assert raised.value.hint and 'destination = "gmail"' in raised.value.hint


def test_gmail_without_a_login_says_how_to_log_in(tmp_path: Path) -> None:
    from smsbak.errors import AuthError

    with pytest.raises(AuthError):
        open_destination(paths(tmp_path), Settings())


@pytest.mark.parametrize(
    ("identity", "address"),
    [
        ("gmail:me@example.com", "me@example.com"),
        ("imap:me@example.com@imap.example.com:993", "me@example.com"),
        ("imap:me@localhost:143", ""),
        ("maildir:/home/me/Mail", ""),
    ],
)
def test_the_account_address_the_emails_name(identity: str, address: str) -> None:
    assert account_address(identity) == address
