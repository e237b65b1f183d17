"""The ``smsbak`` command: parse, call an engine, render, map errors to exit codes.

Heavy imports (Google's libraries) happen inside commands that need them, so
``smsbak --help`` and ``smsbak status`` start quickly on a phone.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from smsbak import __version__
from smsbak.errors import AuthError, ExitCode, PermissionDenied, SmsbakError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = f"""
\b
Exit codes:
  {ExitCode.OK}  success
  {ExitCode.INTERNAL}  unexpected error (a bug: please report it)
  {ExitCode.USAGE}  bad options, settings or input files
  {ExitCode.AUTH}  not logged in, login revoked or expired, missing permission
  {ExitCode.PHONE}  Termux:API missing, hanging, denied a permission, bad output
  {ExitCode.GMAIL}  destination (Gmail, IMAP server, Maildir) or network failure, incl.
     a daily limit; retry later
  {ExitCode.STATE}  the state database cannot be used
  {ExitCode.BUSY}  another smsbak run is in progress
  {ExitCode.CHECKS_FAILED}  `smsbak doctor` found something to fix, or `smsbak verify`
     found messages missing at the destination

\b
Files live under $SMSBAK_HOME when set, else ~/.config/smsbak (settings,
token) and ~/.local/share/smsbak (state, logs).
"""


def _fail(error: SmsbakError) -> None:
    click.echo(f"Error: {error.message}", err=True)
    if error.hint:
        click.echo(f"Fix: {error.hint}", err=True)
    sys.exit(error.exit_code)


def reports_errors(function: F) -> F:
    """Turn SmsbakError into its message, hint and exit code; nothing else is caught."""
    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except SmsbakError as error:
            _fail(error)

    return wrapper  # type: ignore[return-value]


class Context:
    def __init__(self, verbose: bool) -> None:
        from smsbak.paths import Paths

        self.verbose = verbose
        self.paths = Paths.from_environment()

    def settings(self) -> Any:
        from smsbak.config import load_settings

        return load_settings(self.paths)


@click.group(epilog=EXIT_CODES_HELP)
@click.version_option(__version__, prog_name="smsbak")
@click.option("-v", "--verbose", is_flag=True, help="Debug output on stderr (may show numbers).")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Back up the phone's SMS, MMS and calls as emails in the SMS Backup+ format:
    into Gmail, any IMAP mailbox, or a local Maildir; restore them after a reset.

    Start with `smsbak auth --client-secrets FILE` (Gmail) or `smsbak auth --imap`
    (IMAP), or set `destination = "maildir:PATH"`; then `smsbak backup`.
    """
    os.umask(0o077)  # every file smsbak creates is the owner's alone
    if verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(verbose)


@main.command()
@click.option(
    "--client-secrets",
    "client_secrets",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The OAuth client JSON of your own Google Cloud 'Desktop app' client.",
)
@click.option(
    "--timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds to wait for the browser.",
)
@click.option(
    "--restore",
    "for_restore",
    is_flag=True,
    help="Log in for `smsbak restore` (read access), kept apart from the backup login.",
)
@click.option("--imap", is_flag=True, help="Set up an IMAP mailbox with an app password instead.")
@click.option("--host", help="IMAP server (asked for when missing), e.g. imap.gmail.com.")
@click.option("--user", help="IMAP login, usually your email address (asked for when missing).")
@click.option(
    "--security",
    type=click.Choice(["tls", "starttls", "plain"]),
    default="tls",
    show_default=True,
    help="IMAP transport; plain only to 127.0.0.1/localhost.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="IMAP port (0: 993/143).")
@click.option("--ca-file", "ca_file", default="", help="PEM file of a private CA (self-hosted).")
@click.pass_obj
@reports_errors
def auth(
    obj: Context,
    client_secrets: Path | None,
    timeout: float,
    for_restore: bool,
    imap: bool,
    host: str | None,
    user: str | None,
    security: str,
    port: int,
    ca_file: str,
) -> None:
    """Log in to Gmail and save the token (owner-only) for backups.

    Asks only for permission to add messages and manage labels (gmail.insert,
    gmail.labels) and to learn your address: the saved token cannot read your
    mail. `--restore` asks for read access instead (gmail.readonly), saved in a
    separate token-restore.json, so the backup token stays insert-only. The
    consent page opens in the phone's browser via termux-open-url;
    the address is printed as well. Using a browser on another device? Log in
    there and paste the address it ends on (http://localhost:...) here.

    `--imap` sets up any IMAP mailbox instead (Gmail, iCloud, Fastmail, Yahoo,
    GMX, your own server): it asks for the app password (hidden; or reads one
    line from stdin when that is not a terminal), logs in to check it, stores it
    owner-only and writes destination = "imap" and the imap_* settings into
    config.toml. An app password opens the whole mailbox.

    \b
    Examples:
      smsbak auth --client-secrets ~/storage/downloads/client_secret.json
      smsbak auth --restore --client-secrets ~/storage/downloads/client_secret.json
      smsbak auth --imap --host imap.gmail.com --user me@gmail.com
    """
    if imap:
        _auth_imap(obj, host, user, security, port, ca_file)
        return
    if client_secrets is None:
        raise UsageError(
            "missing --client-secrets FILE",
            "pass your Google Cloud OAuth client JSON, or use `smsbak auth --imap`",
        )
    from smsbak.gmail.auth import BACKUP_SCOPES, RESTORE_SCOPES, run_login

    token_file = obj.paths.restore_token_file if for_restore else obj.paths.token_file
    stored = run_login(
        client_secrets,
        token_file,
        RESTORE_SCOPES if for_restore else BACKUP_SCOPES,
        say=click.echo,
        stdin=sys.stdin if not sys.stdin.closed else None,
        timeout=timeout,
    )
    click.echo(f"Logged in as {stored.account}. Token saved to {token_file}.")


def _auth_imap(
    obj: Context, host: str | None, user: str | None, security: str, port: int, ca_file: str
) -> None:
    from smsbak.destinations.imap import PASSWORD_ENV
    from smsbak.destinations.imap_setup import (
        WHOLE_MAILBOX_WARNING,
        set_up_imap,
        suggested_host,
    )

    interactive = sys.stdin.isatty()
    if not user:
        if not interactive:
            raise UsageError("missing --user", "pass --user you@example.com")
        user = click.prompt("IMAP user (email address)")
    if not host:
        guess = suggested_host(user)
        if not interactive:
            if guess is None:
                raise UsageError("missing --host", "pass --host imap.example.com")
            host = guess
        else:
            host = click.prompt("IMAP server", default=guess)
    assert host is not None and user is not None
    path = obj.paths.config_dir / "imap-password"
    click.echo(WHOLE_MAILBOX_WARNING.format(path=path))
    if os.environ.get(PASSWORD_ENV):
        password = os.environ[PASSWORD_ENV]
    elif interactive:
        password = click.prompt(f"App password for {user}", hide_input=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    setup = set_up_imap(
        obj.paths, host=host, user=user, password=password,
        security=security, port=port, ca_file=ca_file,
    )  # fmt: skip
    click.echo(f"Logged in to {setup.identity}. Password saved to {setup.password_file}.")
    click.echo(f'Settings written to {setup.config_file} (destination = "imap").')


class _StopFlag:
    """SIGTERM/SIGINT finish the batch in flight, record it, then stop.

    A second signal stops at once. The previous handlers come back afterwards,
    so the command can run inside another program (tests, the daemon).
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopFlag:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


@main.command()
@click.option("--full", is_flag=True, help="Read every message on the phone, not just recent ones.")
@click.option("--dry-run", is_flag=True, help="Show what would be uploaded; upload nothing.")
@click.option(
    "--notify",
    is_flag=True,
    help="Show an Android notification when a problem needs you (for scheduled jobs).",
)
@click.option(
    "--upload-anyway",
    is_flag=True,
    help="First backup into a label that holds messages this login cannot read to adopt "
    "(Gmail without `smsbak auth --restore`): upload anyway.",
)
@click.pass_obj
@reports_errors
def backup(obj: Context, full: bool, dry_run: bool, notify: bool, upload_anyway: bool) -> None:
    """Upload the SMS that are not in Gmail yet, oldest first.

    Reads the newest messages until it reaches those older than the newest one
    already backed up minus the look-back window (24 hours by default, for late
    deliveries), and uploads what Gmail has not confirmed yet, under the label
    `SMS`. Running it again uploads nothing twice.

    \b
    Examples:
      smsbak backup            # the usual incremental run
      smsbak backup --full     # re-check every message on the phone
      smsbak backup --dry-run  # count what would go up
      smsbak backup --notify   # as scheduled jobs run it: problems become notifications
    """
    from smsbak.app import run_backup, setup_file_logging
    from smsbak.backup import BackupOptions, BackupReport
    from smsbak.render import ProgressPrinter, backup_summary, planned_lines
    from smsbak.report import exit_code

    settings = obj.settings()
    setup_file_logging(obj.paths, obj.verbose)
    printer = ProgressPrinter(sys.stderr, sys.stderr.isatty())
    try:
        with _StopFlag() as stop:
            report = run_backup(
                obj.paths,
                settings,
                BackupOptions(full=full, dry_run=dry_run, upload_anyway=upload_anyway),
                progress=printer,
                should_stop=stop,
            )
    except SmsbakError as error:
        printer.close()
        if isinstance(error.completed, BackupReport):
            click.echo(backup_summary(error.completed))
        if notify and isinstance(error, (AuthError, PermissionDenied)):
            from smsbak.notify import Notifier

            Notifier(settings.notifications).alert(
                "smsbak needs you", f"{error.message}. Fix: {error.hint}"
            )
        raise
    finally:
        printer.close()
    if notify:
        from smsbak.notify import Notifier

        Notifier(settings.notifications).clear_alert()
    for part in report.streams:
        for note in part.notes:
            click.echo(f"{note}.")
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    for warning in report.calls.warnings if report.calls is not None else []:
        click.echo(f"Warning (call log): {warning}", err=True)
    if dry_run:
        for line in planned_lines(report):
            click.echo(line)
    click.echo(backup_summary(report))
    code = exit_code(report)  # a refusal in any stream (SMS, MMS, calls) counts
    if code:
        sys.exit(code)


@main.command("import")
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
)
@click.option("--dry-run", is_flag=True, help="Count what would be uploaded; upload nothing.")
@click.option(
    "--upload-anyway",
    is_flag=True,
    help="Gmail with only the backup login: import into a label that holds emails smsbak "
    "cannot read to adopt (they may be doubled).",
)
@click.pass_obj
@reports_errors
def import_(obj: Context, files: tuple[Path, ...], dry_run: bool, upload_anyway: bool) -> None:
    """Upload the messages and calls of old backup files, each exactly once.

    Reads SMS Backup & Restore files (sms-*.xml with SMS and MMS, calls-*.xml)
    and SMS Import / Export exports (the messages .zip, calls-*.json), told
    apart by their content, any number at once, overlapping or not. Each message
    goes to the configured destination as the phone backup would put it, under
    the same label: one that is also on the phone, or in two files, is uploaded
    once; importing a file again uploads nothing. Needs no phone: runs anywhere.
    A damaged file keeps what came before the damage and exits 2.

    \b
    Examples:
      smsbak import ~/storage/downloads/sms-20240101.xml calls-20240101.xml
      smsbak import --dry-run old/*.xml export.zip
    """
    from smsbak.backup import Progress
    from smsbak.import_render import import_summary
    from smsbak.import_wiring import run_import
    from smsbak.importer import ImportReport
    from smsbak.render import ProgressPrinter

    settings = obj.settings()
    printer = ProgressPrinter(sys.stderr, sys.stderr.isatty())
    try:
        with _StopFlag() as stop:
            report = run_import(
                obj.paths,
                settings,
                list(files),
                dry_run=dry_run,
                upload_anyway=upload_anyway,
                progress=lambda p: printer(Progress(p.phase, p.done, p.total)),
                should_stop=stop,
            )
    except SmsbakError as error:
        printer.close()
        if isinstance(error.completed, ImportReport):  # what went up before it failed
            for line in import_summary(error.completed):
                click.echo(line)
        raise
    finally:
        printer.close()
    for line in import_summary(report):
        click.echo(line)
    if report.damaged:
        sys.exit(ExitCode.USAGE)
    if report.refused:
        sys.exit(ExitCode.GMAIL)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
@reports_errors
def status(obj: Context, as_json: bool) -> None:
    """Show the account, label, how much is backed up, and the last run.

    \b
    Examples:
      smsbak status
      smsbak status --json
    """
    from smsbak.render import status_json, status_text
    from smsbak.status import read_status

    current = read_status(obj.paths, obj.settings())
    click.echo(status_json(current) if as_json else status_text(current))


@main.command()
@click.option(
    "--repair",
    is_flag=True,
    help="Upload again what is missing (reads the phone; a full backup).",
)
@click.pass_obj
@reports_errors
def verify(obj: Context, repair: bool) -> None:
    """Check that the destination still holds everything the state says is backed up.

    Reads the labels (Gmail: needs the read login of `smsbak auth --restore`; IMAP
    and Maildir read with their own) and lists what is missing by kind, date and
    a short id. Messages there that the state does not know are recorded. With
    --repair the missing ones are uploaded again from the phone, exactly once;
    those the phone no longer has are named. Exit 0 when the backup is whole,
    8 when something is missing and was not repaired.

    \b
    Examples:
      smsbak verify            # compare, change nothing at the destination
      smsbak verify --repair   # and upload again what is missing
    """
    from smsbak.app import run_verify, setup_file_logging
    from smsbak.render import ProgressPrinter, verify_lines
    from smsbak.verify import verify_exit_code

    settings = obj.settings()
    setup_file_logging(obj.paths, obj.verbose)
    printer = ProgressPrinter(sys.stderr, sys.stderr.isatty())
    try:
        with _StopFlag() as stop:
            result = run_verify(
                obj.paths, settings, repair=repair, progress=printer, should_stop=stop
            )
    finally:
        printer.close()
    for line in verify_lines(result.reports, result.repair):
        click.echo(line)
    code = verify_exit_code(result.reports)
    if code:
        sys.exit(code)


def _date_ms(value: str | None, option: str) -> int | None:
    """YYYY-MM-DD (local midnight) or a full ISO date-time."""
    if value is None:
        return None
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date; write it like 2024-05-31 or 2024-05-31T18:00",
            param_hint=option,
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return int(moment.timestamp() * 1000)


@main.command()
@click.option(
    "--to",
    "target",
    metavar="TARGET",
    help="phone, smsie:FILE.zip, xml:FILE.xml or html:FOLDER (an offline archive to "
    "read in a browser) (default: phone with Shizuku/root, else an SMS Import/Export "
    "archive in Downloads).",
)
@click.option(
    "--label",
    help="Label (folder, with IMAP or a Maildir) to restore from (default: the `label` "
    "setting, SMS).",
)
@click.option("--since", metavar="DATE", help="Only messages from this date on (2024-01-31).")
@click.option("--until", metavar="DATE", help="Only messages before this date.")
@click.option(
    "--contact", metavar="NUMBER", help="Only messages with this number, however written."
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N messages.")
@click.option("--dry-run", is_flag=True, help="Count what would be restored; write nothing.")
@click.option(
    "--calls",
    is_flag=True,
    help="Restore the call log (label `Call log`) instead of SMS; smsie files are .json.",
)
@click.pass_obj
@reports_errors
def restore(
    obj: Context,
    target: str | None,
    label: str | None,
    since: str | None,
    until: str | None,
    contact: str | None,
    limit: int | None,
    dry_run: bool,
    calls: bool,
) -> None:
    """Bring SMS, or with --calls the call log, back from Gmail (smsbak's or SMS Backup+'s).

    Never sends an SMS. Into the phone it writes through Shizuku (rish) or root
    (su) with `content insert`, confirming every message by reading it back;
    without either it writes a file that SMS Import / Export (or SMS Backup &
    Restore) imports, and says how. Messages already on the phone are skipped,
    so an interrupted restore can simply be run again. Needs the read-access
    login from `smsbak auth --restore`.

    \b
    Examples:
      smsbak restore                          # into the phone, or a file in Downloads
      smsbak restore --to smsie:~/storage/downloads/sms.zip
      smsbak restore --to xml:sms.xml --since 2024-01-01
      smsbak restore --contact "+49 170 1234567" --limit 100 --dry-run
      smsbak restore --calls --to xml:~/storage/downloads/calls.xml
      smsbak restore --to html:~/storage/downloads/sms-archive
    """
    from smsbak.app import run_restore, setup_file_logging
    from smsbak.render import ProgressPrinter, restore_summary
    from smsbak.report import RestoreReport, exit_code
    from smsbak.restore import CALL_KIND, SMS_KIND, RestoreOptions
    from smsbak.restore_targets import parse_target

    settings = obj.settings()
    choice = parse_target(target, calls)
    backup_label = settings.call_label if calls else settings.label
    options = RestoreOptions(
        label=label or backup_label,
        since_ms=_date_ms(since, "--since"),
        until_ms=_date_ms(until, "--until"),
        contact=contact,
        limit=limit,
        dry_run=dry_run,
        what=CALL_KIND if calls else SMS_KIND,
        record_as_backed_up=(label or backup_label).casefold() == backup_label.casefold(),
    )
    setup_file_logging(obj.paths, obj.verbose)
    printer = ProgressPrinter(sys.stderr, sys.stderr.isatty())
    try:
        report = run_restore(obj.paths, settings, options, choice, progress=printer)
    except SmsbakError as error:
        if isinstance(error.completed, RestoreReport):  # failed halfway: what got done
            printer.close()
            for line in restore_summary(error.completed):
                click.echo(line)
        raise
    finally:
        printer.close()
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    for line in restore_summary(report):
        click.echo(line)
    code = exit_code(report)
    if report.not_fetched and not report.refused:
        # Not an error of the phone's: those emails are still there for the next run.
        click.echo(
            f"Error: {report.source} did not return {report.not_fetched} of the listed "
            "emails.\nFix: run `smsbak restore` again later; what is restored now is not "
            "doubled",
            err=True,
        )
    if code:
        sys.exit(code)


@main.command()
@click.option("--no-open", is_flag=True, help="Build or update the archive, but open nothing.")
@click.pass_obj
@reports_errors
def view(obj: Context, no_open: bool) -> None:
    """Build (or update) the offline HTML archive of your backup and open it.

    Reads the Gmail archive (the login of `smsbak auth --restore`), adds what is
    new to the archive in smsbak's data folder, re-renders only the conversations
    that changed, and opens its index in the phone's browser (termux-open) or,
    off the phone, the desktop's. Nothing is uploaded and the pages use no network.

    \b
    Examples:
      smsbak view
      smsbak view --no-open
    """
    from smsbak.app import build_view, open_in_browser, setup_file_logging
    from smsbak.render import ProgressPrinter, restore_summary
    from smsbak.restore import CALL_KIND, SMS_KIND, RestoreOptions

    settings = obj.settings()
    kinds = [RestoreOptions(label=settings.label, what=SMS_KIND)]
    if settings.call_log:
        kinds.append(RestoreOptions(label=settings.call_label, what=CALL_KIND))
    setup_file_logging(obj.paths, obj.verbose)
    printer = ProgressPrinter(sys.stderr, sys.stderr.isatty())
    try:
        index, reports, warnings = build_view(obj.paths, settings, kinds, progress=printer)
    finally:
        printer.close()
    for warning in warnings + [w for r in reports for w in r.warnings]:
        click.echo(f"Warning: {warning}", err=True)
    for report in reports:
        click.echo(restore_summary(report)[0])
    click.echo(f"The archive: {index}")
    if no_open:
        return
    how = open_in_browser(index, settings.termux_timeout)
    click.echo(f"Opened with {how}." if how == "termux-open" else "Opened in the browser.")


@main.command()
@click.option(
    "--every",
    metavar="DURATION",
    help="Back up this often (30m, 2h, 1d); default: the `backup_every` setting, 2h.",
)
@click.pass_obj
@reports_errors
def daemon(obj: Context, every: str | None) -> None:
    """Keep backing up in the background, every N hours and soon after new SMS.

    Runs in the foreground; the Termux:Boot script from termux-setup.sh starts
    it at boot and again when Android kills it. At start it backs up at once
    when the last successful backup is older than the interval (catch-up after
    a reboot), otherwise it waits. Every `watch_every` (5m) it asks for the
    newest SMS and backs up `watch_delay` (1m) after it sees something new. It
    never runs two backups at once, retries failures with a growing delay, and
    when the login stops working it stays alive, notifies you, and resumes once
    `smsbak auth` has run. Ctrl-C or SIGTERM finishes the batch in flight and
    exits 0. Logs go to the smsbak log folder.

    \b
    Examples:
      smsbak daemon
      smsbak daemon --every 30m
    """
    from smsbak.app import daemon_parts, setup_file_logging
    from smsbak.config import parse_duration
    from smsbak.daemon import Daemon, DaemonTimes

    settings = obj.settings()
    if every is not None:
        try:
            parse_duration(every)
        except SmsbakError as error:
            raise click.BadParameter(error.message, param_hint="--every") from None
    setup_file_logging(obj.paths, obj.verbose)
    times = DaemonTimes.from_settings(settings, every)
    click.echo(
        f"smsbak daemon: backing up every {every or settings.backup_every}"
        + (
            ""
            if times.watch_every is None
            else f", checking for new SMS every {settings.watch_every}"
        )
        + f". Log: {obj.paths.log_dir / 'smsbak.log'}",
        err=True,
    )
    sys.exit(Daemon(obj.paths, settings, times, daemon_parts(obj.paths, settings)).run())


@main.group()
def schedule() -> None:
    """Let Android's job scheduler run `smsbak backup` (for phones that kill daemons).

    \b
    Examples:
      smsbak schedule install --every 6h
      smsbak schedule show
      smsbak schedule remove
    """


@schedule.command("install")
@click.option("--every", metavar="DURATION", help="Period (at least 15m); default `backup_every`.")
@click.pass_obj
@reports_errors
def schedule_install(obj: Context, every: str | None) -> None:
    """Register a periodic, reboot-proof backup job with termux-job-scheduler.

    Uses Wi-Fi only when `wifi_only` is set and waits for a battery that is not
    low when `min_battery` is set. Android runs such jobs at most every 15
    minutes and may delay them while the phone sleeps.

    \b
    Example:
      smsbak schedule install --every 6h
    """
    from smsbak.phone.termux import TermuxTools
    from smsbak.schedule import install

    settings = obj.settings()
    done = install(
        obj.paths,
        settings,
        TermuxTools(settings.termux_timeout),
        every,
        os.environ.get("SMSBAK_HOME"),
    )
    if done.clamped:
        click.echo("Note: Android runs periodic jobs at most every 15 minutes; using 15m.")
    click.echo(
        f"Scheduled `smsbak backup` every {done.period_s // 60} minutes "
        f"(job script {done.script}). Remove it with `smsbak schedule remove`."
    )


@schedule.command("remove")
@click.pass_obj
@reports_errors
def schedule_remove(obj: Context) -> None:
    """Cancel the scheduled backup job.

    \b
    Example:
      smsbak schedule remove
    """
    from smsbak.phone.termux import TermuxTools
    from smsbak.schedule import remove

    settings = obj.settings()
    was_there = remove(obj.paths, TermuxTools(settings.termux_timeout))
    click.echo(
        "Removed the scheduled backup." if was_there else "No scheduled backup was registered."
    )


@schedule.command("show")
@click.pass_obj
@reports_errors
def schedule_show(obj: Context) -> None:
    """Show whether the backup job is registered with Android.

    \b
    Example:
      smsbak schedule show
    """
    from smsbak.phone.termux import TermuxTools
    from smsbak.schedule import show

    settings = obj.settings()
    job = show(TermuxTools(settings.termux_timeout))
    click.echo(job if job else "No scheduled backup is registered (`smsbak schedule install`).")


@main.command()
@click.pass_obj
@reports_errors
def doctor(obj: Context) -> None:
    """Check everything backups depend on, and say how to fix what is wrong.

    Termux:API and its SMS, Contacts and Call logs permissions, which SMS reader is
    used, Python packages, the phone's time zone, the Gmail login and its
    permissions, the label, whether the daemon or a scheduled job is active, and
    how old the last successful backup is.
    Exits non-zero when something needs fixing.

    \b
    Example:
      smsbak doctor
    """
    from smsbak.doctor import FAIL, Doctor
    from smsbak.phone.termux import TermuxTools

    settings = obj.settings()
    results = Doctor(obj.paths, settings, TermuxTools(min(settings.termux_timeout, 20))).run()
    marks = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL"}
    for check in results:
        click.echo(f"[{marks[check.result]}] {check.name}: {check.detail}")
        if check.fix and check.result != "ok":
            click.echo(f"       Fix: {check.fix}")
    failed = sum(1 for check in results if check.result == FAIL)
    click.echo(f"{failed} problem(s) need fixing." if failed else "Nothing needs fixing.")
    if failed:
        sys.exit(ExitCode.CHECKS_FAILED)


@main.group()
def config() -> None:
    """Show smsbak's settings (config.toml in the config directory).

    \b
    Example:
      smsbak config show
    """


@config.command("show")
@click.pass_obj
@reports_errors
def config_show(obj: Context) -> None:
    """Print every effective setting and where it came from.

    \b
    Example:
      smsbak config show
    """
    import dataclasses
    import json

    settings = obj.settings()
    click.echo(
        f"# {obj.paths.config_file}" + ("" if obj.paths.config_file.exists() else " (absent)")
    )
    for field in dataclasses.fields(settings):
        if field.name == "sources":
            continue
        value = getattr(settings, field.name)
        source = settings.sources.get(field.name, "default")
        click.echo(f"{field.name} = {json.dumps(value)}  # {source}")
