"""Wiring: builds the real phone reader, store and mailbox for the engines.

The CLI and (later) the daemon both start runs through here, so they share
one lock, one way of opening Gmail, and one way of saving a refreshed token.
"""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Callable
from dataclasses import dataclass

from smsbak.backup import BackupEngine, BackupOptions, BackupReport, Progress
from smsbak.config import GMAIL_BATCH_LIMIT, Settings
from smsbak.gmail.auth import (
    GMAIL_INSERT,
    GMAIL_LABELS,
    REAUTH_HINT,
    load_token,
    require_scopes,
    save_token,
)
from smsbak.gmail.client import GmailMailbox
from smsbak.gmail.pacing import INSERT_COST, TokenBucket
from smsbak.lock import RunLock
from smsbak.paths import Paths, ensure_private_dir, make_private
from smsbak.phone.termux import TermuxPhone, TermuxTools
from smsbak.store import Run, StateStore

LOG_FILE = "smsbak.log"


def setup_file_logging(paths: Paths, level: int = logging.INFO) -> None:
    """A rotating, owner-only log; message bodies and numbers only ever at debug level."""
    ensure_private_dir(paths.log_dir)
    path = paths.log_dir / LOG_FILE
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("smsbak")
    root.addHandler(handler)
    root.setLevel(min(level, root.level) if root.level else level)
    make_private(path)


def run_backup(
    paths: Paths,
    settings: Settings,
    options: BackupOptions,
    *,
    progress: Callable[[Progress], None] = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> BackupReport:
    """One locked backup run with the real phone and Gmail."""
    token = None if options.dry_run else load_token(paths.token_file)
    if token is not None:
        require_scopes(token, [GMAIL_INSERT, GMAIL_LABELS], "uploading to Gmail", REAUTH_HINT)
    with RunLock(paths.lock_file), StateStore(paths.state_db) as store:
        phone = TermuxPhone(
            TermuxTools(settings.termux_timeout), generation=store.get_meta("termux_generation")
        )

        def open_mailbox() -> tuple[GmailMailbox, str]:
            from smsbak.gmail.transport import connect

            assert token is not None
            connection = connect(token.credentials, settings.gmail_api)
            bucket = TokenBucket(
                settings.quota_units_per_minute, capacity=INSERT_COST * GMAIL_BATCH_LIMIT
            )
            mailbox = GmailMailbox(
                connection.service, connection.batch_uri, bucket, batch_size=settings.batch_size
            )
            return mailbox, token.account

        engine = BackupEngine(
            phone=phone,
            store=store,
            open_mailbox=open_mailbox,
            settings=settings,
            progress=progress,
            should_stop=should_stop,
        )
        initial_access_token = token.credentials.token if token else None
        try:
            return engine.run(options)
        finally:
            # Keep a refreshed access token so the next run need not refresh again.
            if token is not None and token.credentials.token != initial_access_token:
                save_token(paths.token_file, token.credentials, token.account)


@dataclass(frozen=True)
class Status:
    account: str | None
    label: str
    backed_up: int
    newest_ms: int | None
    last_run: Run | None
    last_success: Run | None
    running: bool


def read_status(paths: Paths, settings: Settings) -> Status:
    """Everything ``smsbak status`` shows; reads files only, never the network."""
    account = None
    if paths.token_file.exists():
        import json

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
            last_success=store.last_run("backup", "ok"),
            running=running,
        )
