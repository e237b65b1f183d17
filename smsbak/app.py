"""Wiring: builds the sources, destinations, targets and store the engines work with.

The only module that knows every adapter. The CLI and the daemon both start runs
through here, so they share one lock, one way of opening a destination (Gmail, IMAP,
a Maildir, chosen by the ``destination`` setting), one way of saving a refreshed
token, and one way of giving an older smsbak's state to the place it belongs to.
The engines see only what ``smsbak.ports`` declares.
"""

from __future__ import annotations

import importlib
import json
import logging
import logging.handlers
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smsbak.adopt import before_first_backup, needs_adoption
from smsbak.backup import (
    KIND_CALL,
    KIND_MMS,
    KIND_SMS,
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
from smsbak.errors import MissingFolder, PhoneError, SmsbakError, UsageError
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
from smsbak.notify import Notifier
from smsbak.paths import Paths, ensure_private_dir, make_private
from smsbak.phone.call_writer import PhoneCallLog
from smsbak.phone.contacts import ContactBook, numbers_match
from smsbak.phone.mms_writer import STAGE_FOLDER, PhoneMessages, PhoneMmsWriter
from smsbak.phone.privileged import PrivilegedShell
from smsbak.phone.privileged_reader import choose_reader
from smsbak.phone.termux import TermuxPhone, TermuxTools
from smsbak.phone.writer import PhoneSmsStore
from smsbak.ports import Destination
from smsbak.report import RestoreReport
from smsbak.restore import RestoreEngine, RestoreOptions, RestoreTarget
from smsbak.restore_targets import FileTarget, TargetChoice, default_archive_path
from smsbak.store import SUCCESS, RunCounts, StateStore, place_key
from smsbak.verify import Ledger, VerifyReport, count_repaired, forget_missing, verify_place

if TYPE_CHECKING:
    from smsbak.html_target import HtmlTarget as HtmlTargetType

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
    token: StoredToken,
    settings: Settings,
    login: str = BACKUP_LOGIN,
    *,
    readable: bool = False,
    on_close: Callable[[], None] | None = None,
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
        account=token.account,
        readable=readable,
        on_close=on_close,
    )


# --- destinations -------------------------------------------------------------------

MISSING_ADAPTER_HINT = (
    'install an smsbak that has it (pip install -U smsbak), or set destination = "gmail"'
)


def open_destination(paths: Paths, settings: Settings, *, for_restore: bool = False) -> Destination:
    """The destination the ``destination`` setting names, logged in for a backup (or,
    with ``for_restore``, for reading it back). No network is touched here."""
    kind, _, where = settings.destination.partition(":")
    if kind == "gmail":
        return _open_gmail_destination(paths, settings, for_restore)
    if kind == "imap":
        open_imap: Callable[..., Destination] = _adapter("imap", "open_imap_destination")
        return open_imap(paths, settings, for_restore=for_restore)
    if kind == "maildir":
        maildir: Callable[[Path], Destination] = _adapter("maildir", "MaildirDestination")
        return maildir(Path(where).expanduser().resolve())
    raise UsageError(  # config.py validates; this guards a Settings built by hand
        f"unknown destination {settings.destination!r}",
        'set destination = "gmail", "imap" or "maildir:PATH" in config.toml',
    )


def _adapter(module: str, name: str) -> Any:
    """A destination adapter, imported only when chosen (IMAP needs imapclient)."""
    full = f"smsbak.destinations.{module}"
    try:
        return getattr(importlib.import_module(full), name)
    except ModuleNotFoundError as error:
        if error.name != full:
            raise UsageError(
                f"the {module} destination needs the Python package {error.name!r}",
                f"pip install {error.name} (or reinstall smsbak)",
            ) from error
        raise UsageError(f"this smsbak cannot back up to {module}", MISSING_ADAPTER_HINT) from error
    except AttributeError as error:
        raise UsageError(f"this smsbak cannot back up to {module}", MISSING_ADAPTER_HINT) from error


def _open_gmail_destination(paths: Paths, settings: Settings, for_restore: bool) -> GmailMailbox:
    if for_restore:
        path, hint, scopes, purpose, login = (
            paths.restore_token_file, RESTORE_AUTH_HINT, [GMAIL_READONLY],
            "reading the Gmail archive", RESTORE_LOGIN,
        )  # fmt: skip
    else:
        path, hint, scopes, purpose, login = (
            paths.token_file, REAUTH_HINT, [GMAIL_INSERT, GMAIL_LABELS],
            "uploading to Gmail", BACKUP_LOGIN,
        )  # fmt: skip
    token = load_token(path, missing_hint=hint)
    require_scopes(token, scopes, purpose, hint)
    initial_access_token = token.credentials.token

    def keep_refreshed_token() -> None:
        # The next run need not refresh again.
        if token.credentials.token != initial_access_token:
            save_token(path, token.credentials, token.account)

    return open_gmail(token, settings, login, readable=for_restore, on_close=keep_refreshed_token)


def gmail_account(paths: Paths) -> str | None:
    """The account token.json names, read without checking the login (no network)."""
    if not paths.token_file.exists():
        return None
    try:
        account = json.loads(paths.token_file.read_text(encoding="utf-8")).get("account")
    except (OSError, ValueError, AttributeError):
        return None
    return str(account) if account else None


def destination_identity(paths: Paths, settings: Settings) -> str:
    """The identity of the configured destination without logging in where that can be
    avoided: Gmail's comes from token.json (a dry run or `status` needs no login)."""
    if settings.destination == "gmail":
        return f"gmail:{gmail_account(paths) or ''}"
    destination = open_destination(paths, settings)
    try:
        return destination.identity
    finally:
        destination.close()


def account_address(identity: str) -> str:
    """The address the emails name as the phone's owner (From of sent, To of received):
    the Gmail account, an IMAP user that is an address, else none (the codec's stand-in)."""
    kind, _, rest = identity.partition(":")
    if kind == "gmail":
        return rest
    if kind == "imap":
        user = rest.rsplit(":", 1)[0].rsplit("@", 1)[0]
        return user if "@" in user else ""
    return ""


def open_store(paths: Paths, settings: Settings) -> StateStore:
    """The state store, with an older smsbak's rows given to the place they were made for.

    Every smsbak before places existed backed up to the Gmail account in token.json
    under the configured labels; that is where they belong (whatever the destination
    is now). Without a token.json nobody can tell: they stay unclaimed and count for
    no place, so the next backup uploads everything (Gmail merges what is there).
    """
    store = StateStore(paths.state_db)
    try:
        if store.has_legacy():
            account = gmail_account(paths)
            if account:
                sms = place_key(f"gmail:{account}", settings.label)
                calls = place_key(f"gmail:{account}", settings.call_label)
                store.claim_legacy({KIND_SMS: sms, KIND_MMS: sms, KIND_CALL: calls})
    except BaseException:
        store.close()
        raise
    return store


def run_backup(
    paths: Paths,
    settings: Settings,
    options: BackupOptions,
    *,
    progress: Callable[[Progress], None] = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> BackupReport:
    """One locked backup run from the phone into the configured destination."""
    destination = None if options.dry_run else open_destination(paths, settings)
    readers: list[Destination] = []
    try:
        identity = (
            destination.identity
            if destination is not None
            else destination_identity(paths, settings)
        )
        with RunLock(paths.lock_file), open_store(paths, settings) as store:
            termux = TermuxPhone(
                TermuxTools(settings.termux_timeout),
                generation=store.get_meta("termux_generation"),
                remembered_zone=store.get_meta(PHONE_ZONE_KEY),
            )
            source = choose_reader(settings.reader, termux, min(settings.termux_timeout, 15))

            def open_destination_once() -> tuple[Destination, str]:
                assert destination is not None, "a dry run uploads nothing"
                return destination, account_address(identity)

            def prepare(stream: Stream) -> Callable[[BackupReport], object] | None:
                """Adoption before the first backup into a place. The first stream (SMS)
                checks the call log's label too, so an insert-only login stops the run
                before anything at all is uploaded."""
                if destination is None:
                    return None  # a dry run records nothing, so it adopts nothing
                labels = [stream.label]
                if stream.kind == KIND_SMS and settings.call_log:
                    labels.append(settings.call_label)

                def run(report: BackupReport) -> None:
                    for label in dict.fromkeys(labels):
                        before_first_backup(
                            store,
                            place_key(identity, label),
                            label,
                            report,
                            destination=destination,
                            reader=lambda: adoption_reader(paths, settings, destination, readers),
                            upload_anyway=options.upload_anyway,
                            progress=progress,
                            should_stop=should_stop,
                        )
                        if report.stopped:
                            return

                return run

            def engine(stream: Stream) -> BackupEngine:
                return BackupEngine(
                    source=source,
                    store=store,
                    identity=identity,
                    open_destination=open_destination_once,
                    settings=settings,
                    contact_book=ContactBook,
                    progress=progress,
                    should_stop=should_stop,
                    stream=stream,
                    destination_name=(
                        destination.description if destination else "the destination"
                    ),
                    prepare_place=prepare(stream),
                )

            report = engine(SmsStream(settings.label)).run(options)
            if options.dry_run and needs_adoption(store, place_key(identity, settings.label)):
                report.warnings.append(
                    f"this would be the first backup into {settings.label!r}: the real one "
                    "first reads what the label already holds and uploads only what is "
                    "missing, which these counts cannot know yet"
                )
            try:
                if source.capabilities.mms and not report.stopped:
                    report.mms = engine(MmsStream(settings.label)).run(options)
                if settings.call_log and not report.stopped:
                    report.calls = engine(CallStream(settings.call_label)).run(options)
            except SmsbakError as error:
                # The SMS are stored and recorded; say so alongside the failure.
                error.completed = report
                raise
            if termux.generation and not options.dry_run:
                store.set_meta("termux_generation", termux.generation)
            _remember_zone(store, termux, report)
            return report
    finally:
        for reader in readers:
            reader.close()
        if destination is not None:
            destination.close()


def adoption_reader(
    paths: Paths, settings: Settings, destination: Destination, opened: list[Destination]
) -> Destination | None:
    """The login that can read what ``destination``'s folders hold, for adoption.

    IMAP and Maildir read with the login they write with. Gmail's backup login only
    inserts: its read login (`smsbak auth --restore`) is used when it exists and is for
    the same account; otherwise None (the folder is then only counted). Opened
    readers go into ``opened`` for the caller to close.
    """
    if destination.capabilities.readable:
        return destination
    if settings.destination != "gmail" or not paths.restore_token_file.exists():
        return None
    reading = opened[0] if opened else open_destination(paths, settings, for_restore=True)
    if not opened:
        opened.append(reading)
    # A read login for another account (restoring an old one) says nothing about this one.
    return reading if reading.identity == destination.identity else None


PHONE_ZONE_KEY = "phone_zone"
CHECK_TIMEOUT = 20.0
"""Seconds the daemon's small phone checks (watch, Wi-Fi, battery) may take."""


@dataclass(frozen=True)
class DaemonWiring:
    """The parts `smsbak daemon` runs with (smsbak.daemon.DaemonParts declares them)."""

    run_backup: Callable[..., BackupReport]
    blocked: Callable[[], str | None]
    newest_is_new: Callable[[], bool]
    zone: Callable[[], tzinfo]
    last_success: Callable[[], datetime | None]
    notifier: Notifier


def daemon_parts(paths: Paths, settings: Settings) -> DaemonWiring:
    """What `smsbak daemon` needs: the backup run and its small checks, built once."""
    tools = TermuxTools(min(settings.termux_timeout, CHECK_TIMEOUT))
    # One phone for every watch: its time zone is looked up once, not per check.
    phone = TermuxPhone(tools)
    identities: dict[str, str] = {}

    def identity() -> str:
        """Gmail's follows token.json (a new `smsbak auth` switches account); the
        others are fixed by the settings and asked once."""
        if settings.destination == "gmail":
            return destination_identity(paths, settings)
        if "identity" not in identities:
            identities["identity"] = destination_identity(paths, settings)
        return identities["identity"]

    def newest_is_new() -> bool:
        page = phone.sms_page(0, 1)
        if not page.messages:
            return False
        newest = page.messages[0].sms.fingerprint
        place = place_key(identity(), settings.label)
        with open_store(paths, settings) as store:
            return not (store.known([newest], place) or store.refused([newest], place))

    def last_success() -> datetime | None:
        if not paths.state_db.exists():
            return None
        place = place_key(identity(), settings.label)
        with open_store(paths, settings) as store:
            run = store.last_run("backup", SUCCESS, place=place)
        if run is None or run.ended_at is None:
            return None
        return datetime.fromtimestamp(run.ended_at, UTC)

    def zone() -> tzinfo:
        return phone.zone

    return DaemonWiring(
        run_backup=run_backup,
        blocked=lambda: backup_blocked_by(settings, tools),
        newest_is_new=newest_is_new,
        zone=zone,
        last_success=last_success,
        notifier=Notifier(settings.notifications),
    )


def backup_blocked_by(settings: Settings, tools: TermuxTools) -> str | None:
    """Why a background backup should wait now (Wi-Fi, battery), or None."""
    try:
        if settings.wifi_only:
            wifi = tools.json("termux-wifi-connectioninfo")
            if not isinstance(wifi, dict) or wifi.get("supplicant_state") != "COMPLETED":
                return "not connected to Wi-Fi"
        if settings.min_battery:
            battery = tools.json("termux-battery-status")
            if not isinstance(battery, dict):
                return "battery state unknown"
            level = int(battery.get("percentage", 0))
            charging = battery.get("status") in ("CHARGING", "FULL") or battery.get(
                "plugged", "UNPLUGGED"
            ) not in ("UNPLUGGED", None)
            if level < settings.min_battery and not charging:
                return f"battery at {level}% (below {settings.min_battery}%)"
    except (PhoneError, ValueError, TypeError) as error:
        return f"could not check the conditions: {error}"
    return None


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
    shared_phone: SharedPhone | None = None,
) -> RestoreReport:
    """One locked restore from the configured destination into the chosen target
    (``shared_phone``: the phone an HTML archive asks for zone and names, kept across
    the runs of one command)."""
    archive = open_destination(paths, settings, for_restore=True)
    try:
        with RunLock(paths.lock_file), open_store(paths, settings) as store:
            store.close_interrupted_runs()
            calls = options.what.kind == KIND_CALL
            target = _choose_target(
                paths, settings, store, to, now or datetime.now(), calls, shared_phone
            )
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
                    "Neither Shizuku nor root answered, so the messages went into a file that "
                    "an SMS app imports (smsbak cannot write the phone's SMS store without "
                    "them).",
                )
            return report
    finally:
        archive.close()


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
    shared: SharedPhone | None = None,
) -> RestoreTarget:
    tools = TermuxTools(settings.termux_timeout)
    if to is not None and to.kind == "html":
        assert to.path is not None
        return html_target(to.path, settings, store, calls, shared)
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


@dataclass
class SharedPhone:
    """The phone of the first HTML archive target, for the next ones of one command: the
    zone (getprop) and the address book (termux-contact-list) are then asked once, not
    per kind restored and again for the final render."""

    phone: TermuxPhone | None = None


def html_target(
    root: Path,
    settings: Settings,
    store: StateStore,
    calls: bool,
    shared: SharedPhone | None = None,
) -> HtmlTargetType:
    """The archive target: times in the phone's zone, names from its contacts."""
    import json

    from smsbak.backup import OWN_NUMBERS
    from smsbak.html_target import HtmlTarget
    from smsbak.phone.contacts import ContactBook

    phone = shared.phone if shared is not None else None
    if phone is None:
        phone = TermuxPhone(
            TermuxTools(settings.termux_timeout),
            generation=store.get_meta("termux_generation"),
            remembered_zone=store.get_meta(PHONE_ZONE_KEY),
        )
        if shared is not None:
            shared.phone = phone

    def zone() -> tuple[tzinfo, str]:
        info = phone.zone_info
        return info.zone, info.name or str(info.zone)

    def name_for() -> Callable[[str], str | None]:
        try:
            return ContactBook(phone.contacts()).name_for
        except PhoneError:
            return lambda _: None

    stored = store.get_meta(OWN_NUMBERS)
    return HtmlTarget(
        root,
        zone=zone,
        name_for=name_for,
        own_numbers=json.loads(stored) if stored else (),
        calls=calls,
    )


VIEW_FOLDER = "archive"


def build_view(
    paths: Paths,
    settings: Settings,
    options: list[RestoreOptions],
    *,
    progress: Callable[[Progress], None] = lambda _: None,
) -> tuple[Path, list[RestoreReport], list[str]]:
    """`smsbak view`: restore every kind into the archive in the data directory, then
    render it (also when nothing was new, so a changed contact name shows).

    A missing call-log label is a warning, not an error: many backups have no calls."""
    root = ensure_private_dir(paths.data_dir) / VIEW_FOLDER
    choice = TargetChoice("html", root)
    reports: list[RestoreReport] = []
    warnings: list[str] = []
    shared = SharedPhone()
    for option in options:
        try:
            reports.append(
                run_restore(paths, settings, option, choice, progress=progress, shared_phone=shared)
            )
        except MissingFolder as error:
            if option.what.kind != KIND_CALL:
                raise
            warnings.append(f"{error.message}: the archive shows no call log")
    with RunLock(paths.lock_file), StateStore(paths.state_db) as store:
        html_target(root, settings, store, False, shared).builder().build()
    return root / "index.html", reports, warnings


def open_in_browser(page: Path, timeout: float) -> str:
    """On the phone ``termux-open`` (Android picks the browser); elsewhere the
    desktop's browser. Returns how it was opened, for the CLI to say."""
    import shutil
    import subprocess

    opener = shutil.which("termux-open")
    if opener:
        try:
            done = subprocess.run(
                [opener, str(page)], capture_output=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise PhoneError(
                f"termux-open did not open {page}: {error}",
                f"open {page} in a browser yourself",
            ) from error
        if done.returncode != 0:
            raise PhoneError(
                f"termux-open failed (exit {done.returncode}) for {page}",
                f"open {page} in a browser yourself",
            )
        return "termux-open"
    import webbrowser

    if not webbrowser.open(page.as_uri()):
        raise PhoneError(
            "no browser could be started here", f"open {page.as_uri()} in a browser yourself"
        )
    return "browser"


@dataclass
class VerifyRun:
    """What `smsbak verify` found per folder, and the backup a repair ran."""

    reports: list[VerifyReport]
    repair: BackupReport | None = None


def verify_labels(settings: Settings) -> list[str]:
    labels = [settings.label]
    if settings.call_log and settings.call_label.casefold() != settings.label.casefold():
        labels.append(settings.call_label)
    return labels


def run_verify(
    paths: Paths,
    settings: Settings,
    *,
    repair: bool = False,
    progress: Callable[[Progress], None] = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> VerifyRun:
    """Compare the state with the destination; with ``repair`` upload what is missing.

    Reads with the login that can read (Gmail: the restore login; IMAP and Maildir:
    their own). A repair forgets the missing ones at their place and runs a full
    backup, which reads the phone and uploads them exactly once; what the phone no
    longer has stays missing and is reported.
    """
    reader = open_destination(paths, settings, for_restore=True)
    ledgers: list[Ledger] = []
    try:
        identity = reader.identity
        if settings.destination == "gmail":
            backed_up_to = destination_identity(paths, settings)
            if backed_up_to != identity:
                raise UsageError(
                    f"the read login (token-restore.json) is for {identity.partition(':')[2]}, "
                    f"but backups go to {backed_up_to.partition(':')[2] or 'no account yet'}",
                    "log in for reading with the backup's account: "
                    "`smsbak auth --restore --client-secrets FILE`",
                )
        run = VerifyRun(reports=[])
        with RunLock(paths.lock_file), open_store(paths, settings) as store:
            store.close_interrupted_runs()
            for label in verify_labels(settings):
                place = place_key(identity, label)
                ledger = Ledger()
                ledgers.append(ledger)
                run_id = store.start_run("verify", place)
                try:
                    report = verify_place(
                        reader, label, store, place, ledger,
                        progress=progress, should_stop=should_stop,
                    )  # fmt: skip
                except BaseException as error:
                    store.finish_run(run_id, "failed", RunCounts(), str(error)[:500])
                    raise
                store.finish_run(
                    run_id,
                    "ok" if report.whole else "partial",
                    RunCounts(scanned=report.fetched, failed=report.missing_total),
                    None if report.whole else f"{report.missing_total} missing",
                )
                run.reports.append(report)
            to_repair = [
                (report, ledger)
                for report, ledger in zip(run.reports, ledgers, strict=True)
                if report.missing_total and report.complete
            ]
            if not repair or not to_repair:
                return run
            for report, ledger in to_repair:
                forget_missing(store, report.place, ledger)
        run.repair = run_backup(
            paths, settings, BackupOptions(full=True), progress=progress, should_stop=should_stop
        )
        with RunLock(paths.lock_file), open_store(paths, settings) as store:
            for report, ledger in to_repair:
                count_repaired(store, report.place, ledger, report)
        return run
    finally:
        for ledger in ledgers:
            ledger.close()
        reader.close()
