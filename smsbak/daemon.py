"""`smsbak daemon`: back up every N hours, soon after new messages, and catch up after downtime.

Built on APScheduler's BlockingScheduler with one worker thread, so backups
never overlap inside the daemon; the run lock keeps them from overlapping
with a manual `smsbak backup` too. Failures are retried with a growing delay;
a broken login keeps the daemon alive, tells the person, and resumes by itself
once `smsbak auth` has written a new token. SIGTERM and SIGINT let the batch in
flight finish and be recorded, then the daemon exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from types import FrameType
from typing import Any, Protocol

from smsbak.backup import BackupOptions, BackupReport
from smsbak.config import Settings, parse_duration
from smsbak.errors import (
    AuthError,
    BusyError,
    DailyLimitExceeded,
    ExitCode,
    PermissionDenied,
    SmsbakError,
)
from smsbak.lock import RunLock
from smsbak.paths import Paths
from smsbak.report import exit_code

log = logging.getLogger(__name__)

RETRY_FIRST = 60.0
BUSY_RETRY = 60.0
DAILY_LIMIT_RETRY = 3600.0
STALE_ALERT = 24 * 3600  # alert about transient failures only after a day without success
LOGIN_CHECK = 5.0  # at most this many seconds between looks at token.json while the login is broken


def _leave_signals_to_main() -> None:
    """Run in each job thread (and inherited by the threads a job starts): SIGTERM and
    SIGINT blocked, so the kernel delivers them to the main thread.

    A signal the kernel hands to another thread only marks Python's handler as due; the
    main thread runs it when it next wakes, and between jobs it sleeps until the next
    one, an hour or more away. A SIGTERM that landed on a job thread was seen only then:
    `smsbak daemon` did not stop (found by a test that waited 30 s, once in a dozen)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})


@dataclass(frozen=True)
class DaemonTimes:
    every: float
    watch_every: float | None
    watch_delay: float

    @property
    def login_check(self) -> float:
        """Seconds between looks at token.json while the login is broken: one stat,
        never less often than the watch looks at the phone, so a daemon told to react
        quickly to new messages also resumes quickly after `smsbak auth`."""
        if self.watch_every is None:
            return LOGIN_CHECK
        return min(LOGIN_CHECK, self.watch_every)

    @classmethod
    def from_settings(cls, settings: Settings, every: str | None = None) -> DaemonTimes:
        watch = settings.watch_every
        return cls(
            every=parse_duration(every or settings.backup_every),
            watch_every=None if watch == "off" else parse_duration(watch),
            watch_delay=parse_duration(settings.watch_delay),
        )


class Notices(Protocol):
    """How the daemon tells the person: a quiet status line and a loud alert."""

    def status(self, text: str) -> None: ...

    def remove_status(self) -> None: ...

    def alert(self, title: str, text: str) -> None: ...

    def clear_alert(self) -> None: ...


class DaemonParts(Protocol):
    """What the daemon needs from the outside, built by the wiring (smsbak.app.daemon_parts,
    handed over by the CLI): the daemon itself never touches the phone, a destination or
    a notification tool, and imports none of them."""

    @property
    def run_backup(self) -> Callable[..., BackupReport]:
        """smsbak.app.run_backup: one locked backup run."""

    @property
    def blocked(self) -> Callable[[], str | None]:
        """Why a background backup should wait now (Wi-Fi, battery), or None."""

    @property
    def newest_is_new(self) -> Callable[[], bool]:
        """One small read: is the phone's newest SMS not yet backed up at the current
        place? Raises SmsbakError when the phone cannot be asked."""

    @property
    def zone(self) -> Callable[[], tzinfo]:
        """The phone's zone, for the times the notifications show."""

    @property
    def last_success(self) -> Callable[[], datetime | None]:
        """When the last backup into the current destination succeeded."""

    @property
    def notifier(self) -> Notices: ...


class Daemon:
    def __init__(
        self,
        paths: Paths,
        settings: Settings,
        times: DaemonTimes,
        parts: DaemonParts,
    ) -> None:
        self.paths = paths
        self.settings = settings
        self.times = times
        self.parts = parts
        self.run_backup = parts.run_backup
        self.notifier = parts.notifier
        self.stop_requested = False
        self.failures = 0
        self.auth_broken_at: int | None = None  # token.json mtime when the login failed
        self._backing_up = threading.Lock()
        self._scheduler: Any = None
        self._shutdown_lock = threading.Lock()
        self._shutting_down = False
        self._zone: tzinfo = UTC
        self.not_before = datetime.min.replace(tzinfo=UTC)
        self.last_success = parts.last_success() or datetime.now(UTC)

    # --- life cycle -------------------------------------------------------------------

    def run(self) -> int:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.base import JobLookupError
        from apscheduler.schedulers.blocking import BlockingScheduler

        with RunLock(
            self.paths.data_dir / "daemon.lock", busy_message="smsbak daemon is already running"
        ):
            self._zone = self.parts.zone()
            scheduler = BlockingScheduler(
                timezone=UTC,
                # Two workers: the watch job runs while a backup runs; _backing_up
                # keeps backups from overlapping.
                executors={
                    "default": ThreadPoolExecutor(
                        max_workers=2, pool_kwargs={"initializer": _leave_signals_to_main}
                    )
                },
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
        scheduler = self._scheduler
        if not self.stop_requested or scheduler is None or not scheduler.running:
            return
        with self._shutdown_lock:
            if self._shutting_down:
                return  # a signal and a job may both ask; one shutdown is enough
            self._shutting_down = True

        def shut_down() -> None:
            from apscheduler.schedulers import SchedulerNotRunningError

            # It may have stopped in the meantime (its main loop ended first).
            with contextlib.suppress(SchedulerNotRunningError):
                scheduler.shutdown(wait=False)

        # Not from inside a handler or a job: shutdown takes locks and joins.
        threading.Thread(target=shut_down).start()

    def _first_backup_time(self, now: datetime) -> datetime:
        """At once when the last success is older than the interval (catch-up), else later."""
        last = self.parts.last_success()
        if last is None:
            return now
        due = last + timedelta(seconds=self.times.every)
        return now if due <= now else due

    # --- jobs -------------------------------------------------------------------------

    def _watch(self) -> None:
        """One small read of the phone: back up soon when the newest SMS is not backed up."""
        if self.stop_requested or self.auth_broken_at is not None:
            return
        if datetime.now(UTC) < self.not_before:
            return  # a retry is already planned; the watch must not bypass its delay
        try:
            new = self.parts.newest_is_new()
        except SmsbakError as error:
            log.info("watch: %s", error.message)
            return
        if new:
            log.info("watch: a new message arrived; backing up in %gs", self.times.watch_delay)
            self._soon(self.times.watch_delay)

    def _check_login(self) -> None:
        """While the login is broken: resume as soon as `smsbak auth` saved a new token."""
        if self._backing_up.locked():
            # The run that found the login broken is still telling the person (a slow
            # termux-notification): the backup asked for now would find it busy and
            # be dropped, and the daemon would stay paused. Look again next time.
            return
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
        blocked = self.parts.blocked()
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
                self._check_login, "interval", seconds=self.times.login_check, id="login",
                replace_existing=True,
            )  # fmt: skip
            log.error("login problem: %s", error.message)
            self.notifier.alert("smsbak needs you", f"{error.message}. Fix: {error.hint}")
            self._show_status("Paused: log in again with smsbak auth")
            return
        except DailyLimitExceeded as error:
            log.warning("%s", error.message)
            self._retry_in(max(DAILY_LIMIT_RETRY, self.times.every / 2))
            self._show_status("The daily upload limit is reached; resuming later")
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
        if exit_code(report) != ExitCode.OK:
            # The same verdict as `smsbak backup` exiting non-zero: refused messages
            # (in any stream) are reported, not retried by incremental runs.
            log.warning(
                "%d messages refused for good by %s (see the warnings above); "
                "`smsbak backup --full` tries them again",
                report.refused,
                report.destination,
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
