"""One exception hierarchy for everything smsbak reports to a person.

Each error carries its exit code and a hint that names the fix, so the CLI and
the daemon can render any failure the same way without knowing where it came
from. Exit codes are part of the documented interface (README, ``--help``).
"""

from __future__ import annotations


class ExitCode:
    """Process exit codes; scripts and the daemon branch on these."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    AUTH = 3
    PHONE = 4
    GMAIL = 5
    STATE = 6
    BUSY = 7
    CHECKS_FAILED = 8


class SmsbakError(Exception):
    """A failure with a message for a person and a hint that says what to do."""

    exit_code = ExitCode.INTERNAL
    #: What a run had finished and recorded before this failure (a BackupReport of
    #: the SMS when the call log or MMS failed), so the person still learns it.
    completed: object | None = None

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(SmsbakError):
    """Bad options, bad configuration values, a file that cannot be used."""

    exit_code = ExitCode.USAGE


class MissingFolder(UsageError):
    """The label or folder a restore reads does not exist at the destination: a caller
    that can do without it (the archive view without calls) tells it from other usage
    errors by type, not by wording."""


class AuthError(SmsbakError):
    """No token, a revoked or expired grant, or a token without the needed scopes."""

    exit_code = ExitCode.AUTH


class PhoneError(SmsbakError):
    """Termux:API missing, hanging, denied a permission, or printed nonsense."""

    exit_code = ExitCode.PHONE


class PermissionDenied(PhoneError):
    """Android refused a permission; the hint says how to grant it."""

    def __init__(self, message: str, permissions: list[str], hint: str) -> None:
        super().__init__(message, hint)
        self.permissions = permissions


class DestinationError(SmsbakError):
    """The destination (Gmail, an IMAP server, a Maildir) or the network to it failed
    in a way retries could not fix this run; what it confirmed stays recorded."""

    exit_code = ExitCode.GMAIL


class GmailError(DestinationError):
    """Gmail or the network failed in a way retries could not fix this run."""


class DailyLimitExceeded(GmailError):
    """Gmail's daily quota is spent: nothing is wrong, the run resumes tomorrow."""


class StateError(SmsbakError):
    """The state database is unreadable, unwritable or from a newer smsbak."""

    exit_code = ExitCode.STATE


class BusyError(SmsbakError):
    """Another smsbak run holds the lock."""

    exit_code = ExitCode.BUSY


class AdoptionNeeded(UsageError):
    """The first backup into a folder that already holds messages smsbak did not put
    there, with a login that cannot read them (Gmail's insert-only one): uploading now
    could show each of them twice, so the person chooses (exit 2, like a usage error)."""
