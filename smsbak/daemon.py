"""`smsbak daemon`: back up every N hours, soon after new messages, and catch up after downtime.

Built on APScheduler's BlockingScheduler with one worker thread, so backups
never overlap inside the daemon; the run lock keeps them from overlapping
with a manual `smsbak backup` too. Failures are retried with a growing delay;
a broken login keeps the daemon alive, tells the person, and resumes by itself
once `smsbak auth` has written a new token. SIGTERM and SIGINT let the batch in
flight finish and be recorded, then the daemon exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from types import FrameType
from typing import Any

from smsbak.backup import BackupOptions, BackupReport
from smsbak.config import Settings, parse_duration
from smsbak.errors import (
    AuthError,
    BusyError,
    DailyLimitExceeded,
    PermissionDenied,
    PhoneError,
    SmsbakError,
)
from smsbak.lock import RunLock
from smsbak.notify import Notifier
from smsbak.paths import Paths
from smsbak.phone.termux import TermuxPhone, TermuxTools
from smsbak.store import SUCCESS, StateStore

log = logging.getLogger(__name__)

RETRY_FIRST = 60.0
BUSY_RETRY = 60.0
DAILY_LIMIT_RETRY = 3600.0
CHECK_TIMEOUT = 20.0
STALE_ALERT = 24 * 3600  # alert about transient failures only after a day without success
LOGIN_CHECK = 5.0  # seconds between looks at token.json while the login is broken


@dataclass(frozen=True)
class DaemonTimes:
    every: float
    watch_every: float | None
    watch_delay: float

    @classmethod
    def from_settings(cls, settings: Settings, every: str | None = None) -> DaemonTimes:
        watch = settings.watch_every
        return cls(
            every=parse_duration(every or settings.backup_every),
            watch_every=None if watch == "off" else parse_duration(watch),
            watch_delay=parse_duration(settings.watch_delay),
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


def last_success_time(paths: Paths) -> datetime | None:
    if not paths.state_db.exists():
        return None
    with StateStore(paths.state_db) as store:
        run = store.last_run("backup", SUCCESS)
    if run is None or run.ended_at is None:
        return None
    return datetime.fromtimestamp(run.ended_at, UTC)


class Daemon:
    def __init__(
        self,
        paths: Paths,
        settings: Settings,
        times: DaemonTimes,
        *,
        run_backup: Callable[..., BackupReport],
        notifier: Notifier | None = None,
    ) -> None:
        self.paths = paths
        self.settings = settings
        self.times = times
        self.run_backup = run_backup
        self.notifier = notifier or Notifier(settings.notifications)
        self.tools = TermuxTools(min(settings.termux_timeout, CHECK_TIMEOUT))
        self.stop_requested = False
        self.failures = 0
        self.auth_broken_at: int | None = None  # token.json mtime when the login failed
        self._backing_up = threading.Lock()
        self._scheduler: Any = None
        self._zone: tzinfo = UTC
        # One phone for every watch: its time zone is looked up once, not per check.
        self._phone = TermuxPhone(self.tools)
        self.not_before = datetime.min.replace(tzinfo=UTC)
        self.last_success = last_success_time(paths) or datetime.now(UTC)

    # --- life cycle -------------------------------------------------------------------

    def run(self) -> int:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.base import JobLookupError
        from apscheduler.schedulers.blocking import BlockingScheduler

        with RunLock(
            self.paths.data_dir / "daemon.lock", busy_message="smsbak daemon is already running"
        ):
            self._zone = self._phone.zone
            scheduler = BlockingScheduler(
                timezone=UTC,
                # Two workers: the watch job runs while a backup runs; _backing_up
                # keeps backups from overlapping.
                executors={"default": ThreadPoolExecutor(max_workers=2)},
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            )
            self._scheduler = scheduler
            now = datetime.now(UTC)
            first = self._first_backup_time(now)
            scheduler.add_job(
                self._scheduled_backup,
                "interval",
                seconds=self.times.every,
                start_date=first,
                next_run_time=first,
                id="backup",
            )
            if self.times.watch_every is not None:
                scheduler.add_job(
                    self._watch, "interval", seconds=self.times.watch_every, id="watch"
                )
            # A signal that lands before the scheduler runs is seen by this first job.
            scheduler.add_job(self._stop_if_requested, "date", run_date=now, id="start")
            previous = {
                signum: signal.signal(signum, self._on_signal)
                for signum in (signal.SIGTERM, signal.SIGINT)
            }
            try:
                # Logged once signals are handled: from here on, SIGTERM stops it cleanly.
                log.info(
                    "daemon started (pid %d): every %gs, first backup at %s",
                    os.getpid(),
                    self.times.every,
                    first.isoformat(timespec="seconds"),
                )
                self._show_status(f"Started. Next backup {self._local(first)}")
                try:
                    scheduler.start()
                except JobLookupError:
                    # A stop that lands while the main loop retires a finished one-off
                    # job: APScheduler then looks for it among the jobs of a stopped
                    # scheduler. Nothing is running yet or lost; any other time it is a bug.
                    if not self.stop_requested:
                        raise
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
            # The scheduler stopped without waiting: let the backup in flight finish.
            with self._backing_up:
                pass
            self.notifier.remove_status()
            log.info("daemon stopped")
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_requested:
            raise KeyboardInterrupt
        log.info("signal %d: finishing the batch in flight, then stopping", signum)
        self.stop_requested = True
        self._stop_if_requested()

    def _stop_if_requested(self) -> None:
        if self.stop_requested and self._scheduler is not None and self._scheduler.running:
            # Not from inside a handler or a job: shutdown takes locks and joins.
            threading.Thread(target=self._scheduler.shutdown, kwargs={"wait": False}).start()

    def _first_backup_time(self, now: datetime) -> datetime:
        """At once when the last success is older than the interval (catch-up), else later."""
        last = last_success_time(self.paths)
        if last is None:
            return now
        due = last + timedelta(seconds=self.times.every)
        return now if due <= now else due

    # --- jobs -------------------------------------------------------------------------

    def _watch(self) -> None:
        """One small termux-sms-list call: back up soon when the newest SMS is not backed up."""
        if self.stop_requested or self.auth_broken_at is not None:
            return
        if datetime.now(UTC) < self.not_before:
            return  # a retry is already planned; the watch must not bypass its delay
        try:
            page = self._phone.sms_page(0, 1)
        except PhoneError as error:
            log.info("watch: %s", error.message)
            return
        if not page.messages:
            return
        newest = page.messages[0].sms
        with StateStore(self.paths.state_db) as store:
            known = store.known([newest.fingerprint]) | store.refused([newest.fingerprint])
        if not known:
            log.info("watch: a new message arrived; backing up in %gs", self.times.watch_delay)
            self._soon(self.times.watch_delay)

    def _check_login(self) -> None:
        """While the login is broken: resume as soon as `smsbak auth` saved a new token."""
        if self.auth_broken_at is not None and self._token_mtime() != self.auth_broken_at:
            log.info("a new login was saved: backing up")
            self._login_recovered()
            self._soon(0)

    def _login_recovered(self) -> None:
        self.auth_broken_at = None
        if self._scheduler is not None and self._scheduler.get_job("login") is not None:
            self._scheduler.remove_job("login")

    def _soon(self, delay: float, reason: str = "soon") -> None:
        if self._scheduler is None or self.stop_requested:
            return
        when = datetime.now(UTC) + timedelta(seconds=delay)
        existing = self._scheduler.get_job(reason)
        if existing is not None and existing.next_run_time <= when:
            return
        self._scheduler.add_job(
            self._scheduled_backup, "date", run_date=when, id=reason, replace_existing=True
        )

    def _scheduled_backup(self) -> None:
        if self.stop_requested or self.auth_broken_at is not None:
            return  # paused until `smsbak auth` writes a new token (see _check_login)
        if not self._backing_up.acquire(blocking=False):
            return
        try:
            self._backup_once()
        finally:
            self._backing_up.release()

    def _backup_once(self) -> None:
        blocked = backup_blocked_by(self.settings, self.tools)
        if blocked:
            log.info("backup postponed: %s", blocked)
            self._show_status(f"Waiting: {blocked}. Next try {self._next_text()}")
            return
        try:
            report = self.run_backup(
                self.paths, self.settings, BackupOptions(), should_stop=lambda: self.stop_requested
            )
        except BusyError:
            log.info("another smsbak run holds the lock; trying again shortly")
            self._soon(BUSY_RETRY, "retry")
            return
        except AuthError as error:
            self.auth_broken_at = self._token_mtime()
            self._scheduler.add_job(
                self._check_login, "interval", seconds=LOGIN_CHECK, id="login",
                replace_existing=True,
            )  # fmt: skip
            log.error("login problem: %s", error.message)
            self.notifier.alert("smsbak needs you", f"{error.message}. Fix: {error.hint}")
            self._show_status("Paused: log in again with smsbak auth")
            return
        except DailyLimitExceeded as error:
            log.warning("%s", error.message)
            self._retry_in(max(DAILY_LIMIT_RETRY, self.times.every / 2))
            self._show_status("Gmail's daily limit reached; resuming later")
            return
        except SmsbakError as error:
            self._failed(
                error.message, error.hint, needs_person=isinstance(error, PermissionDenied)
            )
            return
        except Exception as error:  # a bug must not end the background service
            log.exception("backup crashed")
            self._failed(f"unexpected error: {type(error).__name__}: {error}", None, False)
            return
        self.failures = 0
        self.not_before = datetime.min.replace(tzinfo=UTC)
        self.last_success = datetime.now(UTC)
        self._login_recovered()
        self.notifier.clear_alert()
        log.info(
            "backup %s: %d new, %d already, %d refused",
            report.result,
            report.uploaded,
            report.already,
            len(report.rejected),
        )
        for kind, part in (("MMS", report.mms), ("call log", report.calls)):
            if part is not None:
                log.info("%s: %d new, %d already", kind, part.uploaded, part.already)
        # Counts, ids and tool errors only: warnings never hold a body or a number.
        for report_part in (report, report.mms, report.calls):
            for warning in report_part.warnings if report_part is not None else ():
                log.warning("%s", warning)
        self._show_status(
            f"Last backup {self._local(datetime.now(UTC))} ({report.uploaded} new). "
            f"Next {self._next_text()}"
        )

    def _failed(self, message: str, hint: str | None, needs_person: bool) -> None:
        """Retry later, sooner at first; alert only when the person can do something.

        A network outage fixes itself: it alerts only once backups have failed for
        a day. A permission problem needs the person at once.
        """
        self.failures += 1
        delay = min(self.times.every, RETRY_FIRST * 2 ** (self.failures - 1))
        log.warning(
            "backup failed (%d in a row): %s; retrying in %gs", self.failures, message, delay
        )
        stale = datetime.now(UTC) - self.last_success > timedelta(seconds=STALE_ALERT)
        if needs_person or stale:
            self.notifier.alert(
                "smsbak backup failing", message + (f". Fix: {hint}" if hint else "")
            )
        self._retry_in(delay)
        self._show_status(f"Last backup failed; retrying {self._next_text()}")

    # --- helpers ----------------------------------------------------------------------

    def _retry_in(self, delay: float) -> None:
        self.not_before = datetime.now(UTC) + timedelta(seconds=delay)
        self._soon(delay, "retry")

    def _token_mtime(self) -> int:
        try:
            return self.paths.token_file.stat().st_mtime_ns
        except OSError:
            return 0

    def _local(self, moment: datetime) -> str:
        return moment.astimezone(self._zone).strftime("%H:%M")

    def _next_text(self) -> str:
        if self._scheduler is None:
            return "later"
        times = [
            job.next_run_time
            for job in self._scheduler.get_jobs()
            if job.id not in ("watch", "login", "start") and job.next_run_time is not None
        ]
        return self._local(min(times)) if times else "later"

    def _show_status(self, text: str) -> None:
        self.notifier.status(text)
