"""What `smsbak status` shows: read from files only, never the network or the phone.

Kept apart from the engines so the command starts fast on a phone (the wiring is
imported for the destination's identity only; Google's client is not loaded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from smsbak.app import account_address, destination_identity, gmail_account, open_store
from smsbak.config import Settings
from smsbak.errors import SmsbakError
from smsbak.lock import RunLock
from smsbak.paths import Paths
from smsbak.store import SUCCESS, Run, place_key


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
    destination: str = ""
    """The identity of the configured destination (gmail:ACCOUNT, imap:..., maildir:...);
    every count here is for it and the label."""
    other_places: dict[str, int] = field(default_factory=dict)
    """Other places with backed-up messages (another account, server or label)."""
    calls_backed_up: int = 0
    """Calls backed up under ``call_label`` of the same destination: part of the
    configured destination, so never listed among the other places."""


def read_status(paths: Paths, settings: Settings) -> Status:
    """Everything ``smsbak status`` shows, for the configured destination and label;
    reads files only, never the network."""
    account = gmail_account(paths)
    try:
        identity = destination_identity(paths, settings)
    except SmsbakError:
        identity = f"{settings.destination} (not set up)"
    if settings.destination != "gmail":
        account = account_address(identity) or None
    running = RunLock(paths.lock_file).is_held_elsewhere()
    if not paths.state_db.exists():
        return Status(account, settings.label, 0, None, None, None, running, destination=identity)
    place = place_key(identity, settings.label)
    calls_place = place_key(identity, settings.call_label)
    with open_store(paths, settings) as store:
        return Status(
            account=account,
            label=settings.label,
            backed_up=store.count("sms", place),
            newest_ms=store.newest_date_ms("sms", place),
            last_run=store.last_run("backup", place=place),
            last_success=store.last_run("backup", SUCCESS, place=place),
            running=running,
            last_restore=store.last_run("restore", place=place),
            destination=identity,
            other_places={p: n for p, n in store.places().items() if p not in (place, calls_place)},
            calls_backed_up=store.count("call", calls_place),
        )
