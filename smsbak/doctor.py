"""`smsbak doctor`: check everything a backup depends on and say how to fix what is not right.

Each check is independent and never raises: one broken part must not hide the
state of the others. Results are "ok", "warn" (works, but worth a look) or
"fail" (backups do not work until fixed). Every result that is not "ok" says what
is wrong and how to fix it, also when a check meets a failure nobody foresaw
(:meth:`Doctor.run` turns it into such a line; the traceback goes to the debug log).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smsbak.config import Settings, parse_duration
from smsbak.errors import PermissionDenied, PhoneError, SmsbakError
from smsbak.gmail.auth import (
    BACKUP_SCOPES,
    GMAIL_INSERT,
    GMAIL_LABELS,
    REAUTH_HINT,
    StoredToken,
    load_token,
)
from smsbak.lock import RunLock
from smsbak.paths import Paths
from smsbak.phone.termux import INSTALL_HINT, TermuxPhone, TermuxTools
from smsbak.store import SUCCESS, place_key

_FIX_TERMUX = "fix the Termux:API line (above) first"
_REPORT_HINT = (
    "run `smsbak --verbose doctor` to see where it failed, and report it with that output"
)

log = logging.getLogger(__name__)

OK, WARN, FAIL = "ok", "warn", "fail"
REQUIRED_MODULES = {
    "googleapiclient": "google-api-python-client",
    "google_auth_oauthlib": "google-auth-oauthlib",
    "google_auth_httplib2": "google-auth-httplib2",
    "apscheduler": "apscheduler",
    "click": "click",
    "phonenumbers": "phonenumbers",
    "imapclient": "imapclient",
    "cryptography": "python-cryptography (pkg install python-cryptography)",
}


@dataclass(frozen=True)
class Check:
    name: str
    result: str
    detail: str
    fix: str | None = None


class Doctor:
    def __init__(self, paths: Paths, settings: Settings, tools: TermuxTools) -> None:
        self.paths = paths
        self.settings = settings
        self.tools = tools
        self._token: StoredToken | None = None
        self._termux_silent = False  # after one timeout, do not wait again per check

    def checks(self) -> list[tuple[str, Callable[[], Check | list[Check]]]]:
        """Every check with the name its line carries when it cannot report for itself;
        the destination's own checks only for the destination configured."""
        checks: list[tuple[str, Callable[[], Check | list[Check]]]] = [
            ("Termux:API", self.termux_api),
            ("SMS reader", self.reader),
            ("Contacts permission", self.contacts),
            ("Call log", self.call_log),
            ("Python packages", self.dependencies),
            ("Phone time zone", self.timezone),
            ("Destination", self.destination),
        ]
        if self.settings.destination == "gmail":
            checks += [("Gmail login", self.token), ("Gmail label", self.gmail)]
        if self.settings.destination == "imap":
            checks.append(("IMAP login", self.imap))
        if self.settings.destination.startswith("maildir:"):
            checks.append(("Maildir", self.maildir))
        checks += [("Background backups", self.background), ("Last backup", self.last_backup)]
        return checks

    def run(self) -> list[Check]:
        results: list[Check] = []
        for name, check in self.checks():
            try:
                outcome = check()
                found = outcome if isinstance(outcome, list) else [outcome]
            except Exception as error:  # a check must never hide the others
                log.debug("the %s check failed", name, exc_info=True)
                found = [self._unforeseen(name, error)]
            for result in found:
                if result.result != OK and not result.fix:  # an error without a hint
                    result = replace(result, fix=_REPORT_HINT)
                results.append(result)
        return results

    def imap(self) -> list[Check]:
        """Login, folders and capabilities of the IMAP destination."""
        from smsbak.destinations.imap_setup import doctor_checks

        return [
            Check(c.name, c.result, c.detail, c.fix)
            for c in doctor_checks(self.paths, self.settings)
        ]
    def _unforeseen(self, name: str, error: Exception) -> Check:
        """A failure the check did not handle itself, still as a line with a fix."""
        if isinstance(error, SmsbakError):
            return Check(name, FAIL, error.message, error.hint or _REPORT_HINT)
        if isinstance(error, OSError):
            where = f" ({error.filename})" if error.filename else ""
            return Check(
                name,
                FAIL,
                f"could not be checked: {error.strerror or error}{where}",
                f"make sure smsbak's files ({self.paths.config_dir}, {self.paths.data_dir}) "
                "belong to you and the storage is not full; if that is not it, " + _REPORT_HINT,
            )
        return Check(
            name, FAIL, f"could not be checked: {type(error).__name__}: {error}", _REPORT_HINT
        )

    def termux_api(self) -> Check:
        try:
            TermuxPhone(self.tools).sms_page(0, 1)
        except PermissionDenied as error:
            return Check("SMS permission", FAIL, error.message, error.hint)
        except PhoneError as error:
            self._termux_silent = "did not answer" in error.message
            return Check("Termux:API", FAIL, error.message, error.hint or INSTALL_HINT)
        return Check("Termux:API and SMS permission", OK, "termux-sms-list answers")

    def reader(self) -> Check:
        """Which reader `reader = ...` picks now, and what it can see."""
        from smsbak.phone.privileged_reader import PrivilegedPhone, choose_reader

        try:
            phone = choose_reader(self.settings.reader, TermuxPhone(self.tools), 15)
        except PhoneError as error:
            return Check("SMS reader", FAIL, error.message, error.hint)
        if isinstance(phone, PrivilegedPhone):
            return Check("SMS reader", OK, f"{phone.description}: every box, exact times")
        detail = "Termux:API: received and sent SMS only, whole seconds, no MMS"
        if self.settings.reader == "auto":
            return Check(
                "SMS reader", OK, detail + " (neither Shizuku nor root answered)",
            )  # fmt: skip
        return Check("SMS reader", OK, detail)

    def contacts(self) -> Check:
        if self._termux_silent:
            return Check(
                "Contacts permission", WARN, "not checked: Termux:API does not answer", _FIX_TERMUX
            )
        try:
            count = len(TermuxPhone(self.tools).contacts())
        except PhoneError as error:
            return Check(
                "Contacts permission",
                WARN,
                f"{error.message} (backups work, but emails show numbers instead of names)",
                error.hint,
            )
        return Check("Contacts permission", OK, f"{count} contacts with a number")

    def call_log(self) -> Check:
        """The call log is on by default; a missing permission would fail every backup."""
        if not self.settings.call_log:
            return Check("Call log", OK, "off (call_log = false): not backed up")
        if self._termux_silent:
            return Check("Call log", WARN, "not checked: Termux:API does not answer", _FIX_TERMUX)
        try:
            TermuxPhone(self.tools).call_page(0, 1)
        except PhoneError as error:
            return Check(
                "Call log",
                FAIL,
                f"{error.message} (every backup stops after the SMS until this is fixed)",
                (error.hint + "; or " if error.hint else "")
                + "set call_log = false in the config to back up SMS only",
            )
        return Check("Call log", OK, "termux-call-log answers")

    def dependencies(self) -> Check:
        missing = [
            package for module, package in REQUIRED_MODULES.items()
            if importlib.util.find_spec(module) is None
        ]  # fmt: skip
        if missing:
            return Check(
                "Python packages",
                FAIL,
                f"missing: {', '.join(missing)}",
                "run termux-setup.sh again, or pip install the missing packages",
            )
        return Check("Python packages", OK, "all present")

    def timezone(self) -> Check:
        fallback = (
            "backups use the zone remembered from the last backup, else TZ, else the system's"
        )
        try:
            result = self.tools.run("getprop", ["persist.sys.timezone"])
        except PhoneError as error:
            return Check(
                "Phone time zone",
                WARN,
                f"{error.message}; {fallback}",
                "getprop comes with Android (/system/bin/getprop): make sure /system/bin is "
                "on Termux's PATH (a fresh Termux session has it)",
            )
        zone = result.stdout.decode("utf-8", "replace").strip()
        if not zone:
            return Check(
                "Phone time zone",
                WARN,
                f"getprop persist.sys.timezone is empty; {fallback}",
                "set the time zone in Android's date settings",
            )
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            return Check(
                "Phone time zone",
                WARN,
                f"the phone's zone {zone!r} is not in Python's time zone data; {fallback}",
                "update tzdata (pip install -U tzdata) or pick a listed zone in Android's "
                "date settings",
            )
        return Check("Phone time zone", OK, zone)

    def _identity(self) -> str:
        from smsbak.app import destination_identity

        return destination_identity(self.paths, self.settings)

    def destination(self) -> Check:
        """Which destination backups go to, and what the state holds for it."""
        from smsbak.app import open_store

        try:
            identity = self._identity()
        except SmsbakError as error:
            return Check("Destination", FAIL, error.message, error.hint)
        if identity == "gmail:":
            return Check("Destination", FAIL, "Gmail, but no login yet", REAUTH_HINT)
        counts = {"sms": 0, "call": 0}
        if self.paths.state_db.exists():
            with open_store(self.paths, self.settings) as store:
                for kind, label in (
                    ("sms", self.settings.label),
                    ("call", self.settings.call_label),
                ):
                    counts[kind] = store.count(kind, place_key(identity, label))
        detail = (
            f"{identity}: {counts['sms']} SMS under {self.settings.label!r}, "
            f"{counts['call']} calls under {self.settings.call_label!r} backed up there"
        )
        return Check("Destination", OK, detail)

    def maildir(self) -> Check:
        """Can backups write the Maildir? Checked without writing anything: the first
        backup creates what is missing, so a missing folder only needs a writable parent."""
        from smsbak.destinations.maildir import INBOX, folder_dir_name

        root = Path(self.settings.destination.partition(":")[2]).expanduser().resolve()
        fix = (
            'point destination = "maildir:PATH" at a folder you own, such as ~/Maildir, '
            "or make it writable: chmod u+rwx PATH"
        )
        existing = root
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            return Check("Maildir", FAIL, f"{existing} is a file, in the way of {root}", fix)
        writable = [existing]
        if existing == root:
            for label in (self.settings.label, self.settings.call_label):
                name = folder_dir_name(label)
                folder = root if name == INBOX else root / name
                writable += [folder / sub for sub in ("cur", "new", "tmp") if folder.exists()]
        for directory in writable:
            if directory.exists() and not os.access(directory, os.W_OK | os.X_OK):
                return Check("Maildir", FAIL, f"{directory} cannot be written", fix)
        if existing != root:
            return Check("Maildir", OK, f"{root} does not exist yet; the first backup creates it")
        return Check("Maildir", OK, f"{root} can be written")

    def token(self) -> Check:
        try:
            token = load_token(self.paths.token_file)
        except SmsbakError as error:
            return Check("Gmail login", FAIL, error.message, error.hint)
        missing = [s for s in (GMAIL_INSERT, GMAIL_LABELS) if s not in token.scopes]
        if missing:
            return Check(
                "Gmail login", FAIL, f"missing permissions: {', '.join(missing)}", REAUTH_HINT
            )
        extra = sorted(token.scopes - set(BACKUP_SCOPES))
        try:
            import google_auth_httplib2
            import httplib2
            from google.auth.exceptions import RefreshError
        except ImportError as error:
            return Check(
                "Gmail login",
                FAIL,
                f"cannot check the login: {error}",
                "run termux-setup.sh again, or pip install the missing packages",
            )

        try:
            token.credentials.refresh(google_auth_httplib2.Request(httplib2.Http(timeout=30)))
        except RefreshError as error:
            return Check(
                "Gmail login", FAIL, f"Google refused the saved login: {error}", REAUTH_HINT
            )
        except Exception as error:  # network trouble: the login may still be fine
            return Check(
                "Gmail login", WARN, f"could not reach Google to check the login: {error}",
                "check the network",
            )  # fmt: skip
        self._token = token
        detail = f"{token.account or 'account unknown'}, valid"
        if extra:
            detail += f" (also holds {', '.join(extra)}: more than a backup needs)"
        return Check("Gmail login", OK if not extra else WARN, detail,
                     None if not extra else REAUTH_HINT)  # fmt: skip

    def gmail(self) -> Check:
        if self._token is None:
            return Check(
                "Gmail label",
                WARN,
                "not checked: the login does not work",
                "fix the Gmail login (above) first",
            )
        from smsbak.gmail.client import GmailMailbox
        from smsbak.gmail.pacing import quota_bucket
        from smsbak.gmail.transport import connect

        try:
            connection = connect(self._token.credentials, self.settings.gmail_api, timeout=20)
            mailbox = GmailMailbox(
                connection.service, connection.batch_uri, quota_bucket(15000, 100), max_attempts=2
            )
            label = mailbox.find_folder(self.settings.label)
        except SmsbakError as error:
            return Check("Gmail label", FAIL, error.message, error.hint)
        except (OSError, ValueError) as error:  # network trouble the client did not name
            return Check(
                "Gmail label",
                WARN,
                f"could not reach Gmail to check the label: {error}",
                "check the network (and the gmail_api setting, if you changed it)",
            )
        if label is None:
            return Check(
                "Gmail label", WARN, f"label {self.settings.label!r} does not exist yet",
                "the first `smsbak backup` creates it",
            )  # fmt: skip
        return Check("Gmail label", OK, f"{self.settings.label!r} exists")

    def background(self) -> Check:
        daemon_pid = RunLock(self.paths.data_dir / "daemon.lock").holder_pid()
        if daemon_pid is not None:
            return Check("Background backups", OK, f"smsbak daemon is running (pid {daemon_pid})")
        job = None
        if not self._termux_silent:
            from smsbak.schedule import show

            try:
                job = show(self.tools)
            except PhoneError:
                job = None
        if job:
            return Check("Background backups", OK, f"scheduled job registered: {job.strip()}")
        return Check(
            "Background backups",
            WARN,
            "neither `smsbak daemon` nor a scheduled job is active",
            "start `smsbak daemon` (termux-setup.sh sets it up at boot) or run "
            "`smsbak schedule install`",
        )

    def last_backup(self) -> Check:
        every = parse_duration(self.settings.backup_every)
        run = None
        if self.paths.state_db.exists():
            from smsbak.app import open_store

            try:
                place: str | None = place_key(self._identity(), self.settings.label)
            except SmsbakError:
                place = None
            with open_store(self.paths, self.settings) as store:
                run = store.last_run("backup", SUCCESS, place=place)
        if run is None or run.ended_at is None:
            return Check("Last backup", WARN, "never succeeded", "run `smsbak backup`")
        age = datetime.now(UTC).timestamp() - run.ended_at
        detail = f"{age / 3600:.1f} hours ago"
        if age > 2 * every + 3600:
            return Check(
                "Last backup", FAIL, detail + f" (expected every {self.settings.backup_every})",
                "see `smsbak status` for the last error; check the background checks above",
            )  # fmt: skip
        return Check("Last backup", OK, detail)
