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
from smsbak.errors import ExitCode, SmsbakError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = f"""
\b
Exit codes:
  {ExitCode.OK}  success
  {ExitCode.INTERNAL}  unexpected error (a bug: please report it)
  {ExitCode.USAGE}  bad options, settings or input files
  {ExitCode.AUTH}  not logged in, login revoked or expired, missing permission
  {ExitCode.PHONE}  Termux:API missing, hanging, denied a permission, bad output
  {ExitCode.GMAIL}  Gmail or network failure (incl. the daily limit); retry later
  {ExitCode.STATE}  the state database cannot be used
  {ExitCode.BUSY}  another smsbak run is in progress

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
    """Back up the phone's SMS into Gmail, in the SMS Backup+ format.

    Start with `smsbak auth --client-secrets FILE`, then `smsbak backup`.
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
    required=True,
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
@click.pass_obj
@reports_errors
def auth(obj: Context, client_secrets: Path, timeout: float, for_restore: bool) -> None:
    """Log in to Gmail and save the token (owner-only) for backups.

    Asks only for permission to add messages and manage labels (gmail.insert,
    gmail.labels) and to learn your address: the saved token cannot read your
    mail. `--restore` asks for read access instead (gmail.readonly), saved in a
    separate token-restore.json, so the backup token stays insert-only. The
    consent page opens in the phone's browser via termux-open-url;
    the address is printed as well. Using a browser on another device? Log in
    there and paste the address it ends on (http://localhost:...) here.

    \b
    Examples:
      smsbak auth --client-secrets ~/storage/downloads/client_secret.json
      smsbak auth --restore --client-secrets ~/storage/downloads/client_secret.json
    """
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
@click.pass_obj
@reports_errors
def backup(obj: Context, full: bool, dry_run: bool) -> None:
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
    """
    from smsbak.app import run_backup, setup_file_logging
    from smsbak.backup import BackupOptions
    from smsbak.render import ProgressPrinter, backup_summary, planned_lines

    settings = obj.settings()
    setup_file_logging(obj.paths)
    printer = ProgressPrinter(sys.stderr, sys.stderr.isatty())
    try:
        with _StopFlag() as stop:
            report = run_backup(
                obj.paths,
                settings,
                BackupOptions(full=full, dry_run=dry_run),
                progress=printer,
                should_stop=stop,
            )
    finally:
        printer.close()
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if dry_run:
        for line in planned_lines(report):
            click.echo(line)
    click.echo(backup_summary(report))
    if report.rejected:
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
    help="phone, smsie:FILE.zip or xml:FILE.xml (default: phone with Shizuku/root, "
    "else an SMS Import/Export archive in Downloads).",
)
@click.option("--label", help="Gmail label to restore from (default: the `label` setting, SMS).")
@click.option("--since", metavar="DATE", help="Only messages from this date on (2024-01-31).")
@click.option("--until", metavar="DATE", help="Only messages before this date.")
@click.option(
    "--contact", metavar="NUMBER", help="Only messages with this number, however written."
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest N messages.")
@click.option("--dry-run", is_flag=True, help="Count what would be restored; write nothing.")
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
) -> None:
    """Bring SMS back from Gmail (smsbak's and SMS Backup+'s archives).

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
    """
    from smsbak.app import run_restore, setup_file_logging
    from smsbak.render import ProgressPrinter, restore_summary
    from smsbak.restore import RestoreOptions
    from smsbak.restore_targets import parse_target

    settings = obj.settings()
    choice = parse_target(target)
    options = RestoreOptions(
        label=label or settings.label,
        since_ms=_date_ms(since, "--since"),
        until_ms=_date_ms(until, "--until"),
        contact=contact,
        limit=limit,
        dry_run=dry_run,
    )
    setup_file_logging(obj.paths)
    printer = ProgressPrinter(sys.stderr, sys.stderr.isatty())
    try:
        report = run_restore(obj.paths, settings, options, choice, progress=printer)
    finally:
        printer.close()
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    for line in restore_summary(report):
        click.echo(line)
    if report.refused:
        sys.exit(ExitCode.PHONE)
