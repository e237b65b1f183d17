"""What runs report, and the one place that turns reports into an exit code.

The CLI and the daemon both decide "did this run fully succeed?" here, so a refusal
in any stream (SMS, MMS, the call log) counts the same everywhere: before, a backup
in which Gmail refused some MMS exited 0 while refused SMS or calls exited 5.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from smsbak.errors import ExitCode, SmsbakError
from smsbak.model import Sms
from smsbak.store import RunCounts


@dataclass
class StreamReport:
    """One stream's backup run (SMS, MMS or the call log); the SMS run carries the others."""

    scanned: int = 0
    already: int = 0
    refused_before: int = 0
    to_upload: int = 0
    uploaded: int = 0
    found_in_flight: int = 0
    """Of ``uploaded``: left in flight by an interrupted run, found at the destination by
    Message-ID and recorded without sending them again."""
    rejected: list[str] = field(default_factory=list)
    unusable_rows: int = 0
    pages: int = 0
    dry_run: bool = False
    planned: list[Sms] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the run did besides uploading, for people (adopting a folder's messages)."""
    stopped: bool = False
    seconds: float = 0.0
    result: str = "ok"
    error: SmsbakError | None = None
    destination: str = "the destination"
    """The destination's description, for people ("Gmail", "IMAP me@host")."""
    place: str = ""
    """Where this stream's state is kept (smsbak.store.place_key)."""
    calls: StreamReport | None = None
    mms: StreamReport | None = None
    """The call log's and the MMS runs, when they are backed up too."""

    @property
    def counts(self) -> RunCounts:
        return RunCounts(
            scanned=self.scanned,
            uploaded=self.uploaded,
            skipped=self.already,
            failed=len(self.rejected),
        )

    @property
    def streams(self) -> Iterator[StreamReport]:
        """This run and the runs it carries (MMS, call log)."""
        yield self
        for part in (self.mms, self.calls):
            if part is not None:
                yield from part.streams

    @property
    def refused(self) -> int:
        """Messages refused for good in this run, in every stream."""
        return sum(len(part.rejected) for part in self.streams)


@dataclass
class RestoreReport:
    target: str = ""
    listed: int = 0
    fetched: int = 0
    sms_found: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    not_chosen: int = 0
    not_fetched: int = 0
    """Listed, but the destination would not return them even after retries: not restored."""
    left_by_limit: int = 0
    """Chosen, but older than the newest ``--limit`` N: not restored this time."""
    duplicates_in_archive: int = 0
    already_on_phone: int = 0
    already_where: str = "on the phone"
    """Where the target found them (``TargetCapabilities.existing_in``)."""
    to_write: int = 0
    written: int = 0
    refused: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0
    noun: str = "messages"
    source: str = "the destination"
    """The destination read from, for people ("Gmail", "IMAP me@host")."""


def exit_code(report: StreamReport | RestoreReport) -> int:
    """The exit code of a run that ended with this report (errors carry their own).

    Backup: any message refused for good, in any stream, is exit 5 (the destination's),
    like the failures of that destination. Restore: a record the target refused is
    exit 4 (the phone's); emails the destination would not return are exit 5.
    """
    if isinstance(report, RestoreReport):
        if report.refused:
            return ExitCode.PHONE
        if report.not_fetched:
            return ExitCode.GMAIL
        return ExitCode.OK
    return ExitCode.GMAIL if report.refused else ExitCode.OK
