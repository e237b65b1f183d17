"""Wiring: builds the real phone reader, store and mailbox for the engines.

The CLI and (later) the daemon both start runs through here, so they share
one lock, one way of opening Gmail, and one way of saving a refreshed token.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from smsbak.backup import (
    KIND_CALL,
    BackupEngine,
    BackupOptions,
    BackupReport,
    CallStream,
    MmsStream,
    Progress,
    SmsStream,
    Stream,
)
from smsbak.config import GMAIL_BATCH_LIMIT, Settings
from smsbak.errors import PhoneError, SmsbakError
from smsbak.gmail.auth import (
    GMAIL_INSERT,
    GMAIL_LABELS,
    GMAIL_READONLY,
    REAUTH_HINT,
    RESTORE_AUTH_HINT,
    StoredToken,
    load_token,
    require_scopes,
    save_token,
)
from smsbak.gmail.client import BACKUP_LOGIN, RESTORE_LOGIN, GmailMailbox
from smsbak.gmail.pacing import INSERT_COST, quota_bucket
from smsbak.lock import RunLock
from smsbak.paths import Paths, ensure_private_dir, make_private
from smsbak.phone.call_writer import PhoneCallLog
from smsbak.phone.contacts import numbers_match
from smsbak.phone.mms_writer import STAGE_FOLDER, PhoneMessages, PhoneMmsWriter
from smsbak.phone.privileged import PrivilegedShell
from smsbak.phone.privileged_reader import PrivilegedPhone, choose_reader
from smsbak.phone.termux import TermuxPhone, TermuxTools
from smsbak.phone.writer import PhoneSmsStore
from smsbak.restore import RestoreEngine, RestoreOptions, RestoreReport, RestoreTarget
from smsbak.restore_targets import FileTarget, TargetChoice, default_archive_path
from smsbak.store import StateStore

LOG_FILE = "smsbak.log"


def setup_file_logging(paths: Paths, verbose: bool = False) -> None:
    """A rotating, owner-only log at info level: no message text or numbers ever.

    With ``-v`` smsbak's debug lines (which may show numbers) go to stderr only.
    """
    ensure_private_dir(paths.log_dir)
    path = paths.log_dir / LOG_FILE
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("smsbak")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    make_private(path)


def open_gmail(
    token: StoredToken, settings: Settings, login: str = BACKUP_LOGIN
) -> GmailMailbox:
    """The mailbox for one run: Google's client (imported only now), paced at the quota.

    ``login`` is the command a refused login is made again with: restore reads
    with its own token, so its errors must not send the person to the backup one.
    """
    from smsbak.gmail.transport import connect

    connection = connect(token.credentials, settings.gmail_api)
    bucket = quota_bucket(settings.quota_units_per_minute, INSERT_COST * GMAIL_BATCH_LIMIT)
    return GmailMailbox(
        connection.service,
        connection.batch_uri,
        bucket,
        batch_size=settings.batch_size,
        login=login,
    )


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
        termux = TermuxPhone(
            TermuxTools(settings.termux_timeout),
            generation=store.get_meta("termux_generation"),
            remembered_zone=store.get_meta(PHONE_ZONE_KEY),
        )
        phone = choose_reader(settings.reader, termux, min(settings.termux_timeout, 15))

        opened: list[GmailMailbox] = []

        def open_mailbox() -> tuple[GmailMailbox, str]:
            assert token is not None
            if not opened:
                opened.append(open_gmail(token, settings))
            return opened[0], token.account

        def engine(stream: Stream) -> BackupEngine:
            return BackupEngine(
                phone=phone,
                store=store,
                open_mailbox=open_mailbox,
                settings=settings,
                progress=progress,
                should_stop=should_stop,
                stream=stream,
            )

        initial_access_token = token.credentials.token if token else None
        try:
            report = engine(SmsStream(settings.label)).run(options)
            try:
                if isinstance(phone, PrivilegedPhone) and not report.stopped:
                    report.mms = engine(MmsStream(settings.label)).run(options)
                if settings.call_log and not report.stopped:
                    report.calls = engine(CallStream(settings.call_label)).run(options)
            except SmsbakError as error:
                # The SMS are in Gmail and recorded; say so alongside the failure.
                error.completed = report
                raise
            _remember_zone(store, termux, report)
            return report
        finally:
            # Keep a refreshed access token so the next run need not refresh again.
            if token is not None and token.credentials.token != initial_access_token:
                save_token(paths.token_file, token.credentials, token.account)


PHONE_ZONE_KEY = "phone_zone"


def _remember_zone(store: StateStore, phone: TermuxPhone, report: BackupReport) -> None:
    """Keep the zone getprop named, so a later getprop failure cannot shift every date."""
    if not phone.zone_looked_up:  # nothing read: nothing depended on the zone
        return
    zone = phone.zone_info
    if zone.source == "getprop" and zone.name:
        store.set_meta(PHONE_ZONE_KEY, zone.name)
    elif zone.source == "remembered":
        report.warnings.append(
            f"getprop gave no time zone; used {zone.name}, the phone's zone at the last "
            "backup (run `smsbak doctor` if the phone's zone changed)"
        )
    else:
        report.warnings.append(
            "getprop gave no time zone; message times were read in "
            f"{zone.name or 'the system zone'} (from {zone.source}): run `smsbak doctor` to check"
        )


def run_restore(
    paths: Paths,
    settings: Settings,
    options: RestoreOptions,
    to: TargetChoice | None,
    *,
    progress: Callable[[Progress], None] = lambda _: None,
    now: datetime | None = None,
) -> RestoreReport:
    """One locked restore from the Gmail archive into the chosen target."""
    token = load_token(paths.restore_token_file, missing_hint=RESTORE_AUTH_HINT)
    require_scopes(token, [GMAIL_READONLY], "reading the Gmail archive", RESTORE_AUTH_HINT)
    with RunLock(paths.lock_file), StateStore(paths.state_db) as store:
        store.close_interrupted_runs()
        calls = options.what.kind == KIND_CALL
        target = _choose_target(paths, settings, store, to, now or datetime.now(), calls)
        archive = open_gmail(token, settings, login=RESTORE_LOGIN)
        engine = RestoreEngine(
            archive=archive,
            target=target,
            store=store,
            matches_contact=numbers_match,
            progress=progress,
        )
        report = engine.run(options)
        if isinstance(target, FileTarget) and to is None:
            report.next_steps.insert(
                0,
                "Neither Shizuku nor root answered, so the messages went into a file that an "
                "SMS app imports (smsbak cannot write the phone's SMS store without them).",
            )
        return report


MMS_JOURNAL = "mms-restore-in-flight.json"
"""The MMS a restore is writing right now: a killed run's next run removes them first."""


def _phone_messages(
    shell: PrivilegedShell, store: StateStore, now: datetime, journal: Path
) -> PhoneMessages:
    """SMS and MMS into the phone; MMS attachments pass through shared storage, and
    where ``content write`` is missing the MMS go into an archive in Downloads."""
    from smsbak.backup import OWN_NUMBERS, own_numbers_in

    stored = store.get_meta(OWN_NUMBERS)
    known = set(json.loads(stored)) if stored else set()

    def fallback() -> FileTarget:
        path, note = default_archive_path(Path.home(), now)
        return FileTarget("smsie", path, read_phone=lambda: None, note=note)

    writer = PhoneMmsWriter(
        shell,
        stage_dir=Path.home() / "storage" / "shared" / STAGE_FOLDER,
        own_numbers=lambda messages: known | own_numbers_in(messages),
        journal=journal,
    )
    return PhoneMessages(PhoneSmsStore(shell), writer, fallback=fallback)


def _choose_target(
    paths: Paths,
    settings: Settings,
    store: StateStore,
    to: TargetChoice | None,
    now: datetime,
    calls: bool,
) -> RestoreTarget:
    tools = TermuxTools(settings.termux_timeout)
    if to is None or to.kind == "phone":
        shell = PrivilegedShell.detect(settings.termux_timeout)
        if shell is not None:
            if calls:
                return PhoneCallLog(shell)
            return _phone_messages(shell, store, now, paths.state_db.with_name(MMS_JOURNAL))
        if to is not None:
            raise PhoneError(
                "restoring into the phone needs Shizuku (rish) or root (su), and neither answered",
                "set up Shizuku and export rish to Termux, or use --to smsie:FILE "
                "and import the file with SMS Import / Export",
            )
    phone = TermuxPhone(
        tools,
        generation=store.get_meta("termux_generation"),
        remembered_zone=store.get_meta(PHONE_ZONE_KEY),
    )

    def read_phone() -> set[str] | None:
        walk = phone.calls_newest_first if calls else phone.sms_newest_first
        try:
            return {
                message.identity if calls else message.sms.fingerprint  # type: ignore[union-attr]
                for page in walk(settings.page_size)
                for message in page.messages
            }
        except PhoneError:
            return None

    def contact_names() -> dict[str, str]:
        try:
            return {c.number: c.name for c in phone.contacts()}
        except PhoneError:
            return {}

    if to is None:
        path, note = default_archive_path(Path.home(), now, calls)
        return FileTarget(
            "smsie",
            path,
            read_phone=read_phone,
            contact_names=contact_names,
            note=note,
            calls=calls,
        )
    assert to.path is not None
    return FileTarget(
        to.kind, to.path, read_phone=read_phone, contact_names=contact_names, calls=calls
    )
