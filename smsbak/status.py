"""What `smsbak status` shows: read from files only, never the network or the phone.

Kept apart from the engines so the command starts fast on a phone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from smsbak.config import Settings
from smsbak.lock import RunLock
from smsbak.paths import Paths
from smsbak.store import SUCCESS, Run, StateStore


@dataclass(frozen=True)
class Status:
    account: str | None
    label: str
    backed_up: int
    newest_ms: int | None
    last_run: Run | None
    last_success: Run | None
    running: bool
    last_restore: Run | None = None


def read_status(paths: Paths, settings: Settings) -> Status:
    """Everything ``smsbak status`` shows; reads files only, never the network."""
    account = None
    if paths.token_file.exists():
        try:
            account = json.loads(paths.token_file.read_text(encoding="utf-8")).get("account")
        except (OSError, ValueError, AttributeError):
            account = None
    running = RunLock(paths.lock_file).is_held_elsewhere()
    if not paths.state_db.exists():
        return Status(account, settings.label, 0, None, None, None, running)
    with StateStore(paths.state_db) as store:
        return Status(
            account=account,
            label=settings.label,
            backed_up=store.count("sms"),
            newest_ms=store.newest_date_ms("sms"),
            last_run=store.last_run("backup"),
            last_success=store.last_run("backup", SUCCESS),
            running=running,
            last_restore=store.last_run("restore"),
        )
