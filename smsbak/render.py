"""Turning progress and reports into text for a person (the CLI's side of the engines)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from smsbak.model import Box
from smsbak.status import Status
from smsbak.store import Run, place_parts

if TYPE_CHECKING:
    from smsbak.backup import BackupReport, Progress
    from smsbak.report import RestoreReport
    from smsbak.verify import VerifyReport

PHASES = {
    "upload": "Uploading",
    "fetch": "Reading the archive",
    "write": "Restoring",
    "adopt": "Reading what the label holds",
    "verify": "Checking the label",
}
MIN_RATE_SECONDS = 1.0
"""A rate (and an ETA) is shown only once a phase has run this long."""


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class ProgressPrinter:
    """A one-line bar with count, rate and ETA on a terminal; plain lines elsewhere.

    Plain lines go out at most every ``plain_every`` seconds (and at the end of a
    phase) so logs of the daemon or a cron job stay short.
    """

    def __init__(
        self,
        stream: IO[str],
        is_terminal: bool,
        *,
        clock: Callable[[], float] = time.monotonic,
        plain_every: float = 10.0,
    ) -> None:
        self.stream = stream
        self.is_terminal = is_terminal
        self.clock = clock
        self.plain_every = plain_every
        self._phase_started: dict[str, float] = {}
        self._last_plain = 0.0
        self._open_line = False

    def __call__(self, update: Progress) -> None:
        now = self.clock()
        started = self._phase_started.setdefault(update.phase, now)
        elapsed = max(now - started, 1e-6)
        if update.phase == "scan":
            text = f"Reading the phone: {update.done} messages"
        else:
            total = update.total or 0
            # Before about a second has passed the rate is noise (2000000 msg/s).
            measured = elapsed >= MIN_RATE_SECONDS and update.done > 0
            rate = update.done / elapsed if measured else 0.0
            eta = (total - update.done) / rate if rate > 0 else None
            width = 24
            filled = int(width * update.done / total) if total else width
            bar = "#" * filled + "-" * (width - filled)
            label = PHASES.get(update.phase, update.phase.capitalize())
            text = (
                f"{label} [{bar}] {update.done}/{total}"
                + (f" {rate:5.1f} msg/s" if measured else "")
                + (f" ETA {duration(eta)}" if eta is not None and update.done < total else "")
            )
        if self.is_terminal:
            self.stream.write("\r\x1b[K" + text)
            self.stream.flush()
            self._open_line = True
            return
        finished = update.total is not None and update.done >= update.total
        if finished or now - self._last_plain >= self.plain_every:
            self._last_plain = now
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False


def backup_summary(report: BackupReport) -> str:
    if report.dry_run:
        return (
            f"Dry run: {report.to_upload} messages would be uploaded, "
            f"{report.already} are already backed up ({report.scanned} read). Nothing was sent."
        )
    rate = report.uploaded / report.seconds if report.seconds > 0 else 0.0
    where = report.destination
    text = (
        f"Backed up {report.uploaded} new messages"
        f" ({report.already} already in {where}, {report.scanned} read) in "
        f"{duration(report.seconds)}" + (f", {rate:.1f} msg/s" if report.uploaded else "") + "."
    )
    if report.refused_before:
        text += (
            f" {report.refused_before} that {where} refused before were skipped"
            " (`smsbak backup --full` tries them again)."
        )
    if report.mms is not None:
        mms = report.mms
        text += f" MMS: {mms.uploaded} new ({mms.already} already in {where})." + (
            f" {where} refused {len(mms.rejected)} MMS." if mms.rejected else ""
        )
        for warning in mms.warnings:
            text += f" {warning}."
    if report.calls is not None:
        calls = report.calls
        text += f" Call log: {calls.uploaded} new calls ({calls.already} already in {where})." + (
            f" {where} refused {len(calls.rejected)} calls." if calls.rejected else ""
        )
    if report.stopped:
        text += f" Stopped early; {report.to_upload - report.uploaded} left for the next run."
    if report.rejected:
        text += f" {where} refused {len(report.rejected)}: see the log."
    return text


def planned_lines(report: BackupReport, limit: int = 20) -> list[str]:
    """What a dry run would upload: dates, direction and sizes, never the text."""
    lines = []
    for sms in report.planned[:limit]:
        when = datetime.fromtimestamp(sms.date_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        direction = "from" if sms.box is Box.INBOX else "to"
        lines.append(f"  {when}  {direction} {sms.address}  ({len(sms.body)} characters)")
    if len(report.planned) > limit:
        lines.append(f"  ... and {len(report.planned) - limit} more")
    return lines


def _when(epoch_seconds: float | None) -> str | None:
    if epoch_seconds is None:
        return None
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="seconds")


def _run_data(run: Run | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "started": _when(run.started_at),
        "ended": _when(run.ended_at),
        "result": run.result,
        "read": run.counts.scanned,
        "uploaded": run.counts.uploaded,
        "already_backed_up": run.counts.skipped,
        "refused": run.counts.failed,
        "error": run.error,
    }


def status_data(status: Status) -> dict[str, Any]:
    return {
        "account": status.account,
        "destination": status.destination,
        "label": status.label,
        "messages_backed_up": status.backed_up,
        "calls_backed_up": status.calls_backed_up,
        "newest_backed_up": _when(status.newest_ms / 1000) if status.newest_ms else None,
        "running": status.running,
        "last_run": _run_data(status.last_run),
        "last_success": _when(status.last_success.ended_at) if status.last_success else None,
        "last_restore": _run_data(status.last_restore),
        "other_places": [
            {"destination": identity, "label": label, "messages_backed_up": count}
            for place, count in status.other_places.items()
            for identity, label in [place_parts(place)]
        ],
    }


def _account_text(data: dict[str, Any]) -> str:
    """Only Gmail needs `smsbak auth`: a Maildir (or an IMAP user that is no address)
    has no account to log in to, and sending its user there would mislead."""
    if data["account"]:
        return str(data["account"])
    if str(data["destination"]).startswith("gmail:"):
        return "not logged in (run `smsbak auth`)"
    return "-"


def status_text(status: Status) -> str:
    data = status_data(status)
    lines = [
        f"Destination:        {data['destination'] or '-'}",
        f"Account:            {_account_text(data)}",
        f"Label:              {data['label']}",
        f"Messages backed up: {data['messages_backed_up']}",
        f"Calls backed up:    {data['calls_backed_up']}",
        f"Newest backed up:   {data['newest_backed_up'] or '-'}",
    ]
    run = data["last_run"]
    if run is None:
        lines.append("Last run:           never")
    else:
        lines.append(
            f"Last run:           {run['started']}  {run['result']}"
            f"  (read {run['read']}, uploaded {run['uploaded']}, refused {run['refused']})"
        )
        if run["error"]:
            lines.append(f"Last error:         {run['error']}")
    lines.append(f"Last success:       {data['last_success'] or 'never'}")
    restore = data["last_restore"]
    if restore is not None:
        lines.append(
            f"Last restore:       {restore['started']}  {restore['result']}"
            f"  (restored {restore['uploaded']}, already there {restore['already_backed_up']})"
        )
    for other in data["other_places"]:
        lines.append(
            f"Also backed up:     {other['messages_backed_up']} to {other['destination']}"
            f" (label {other['label']}), not the configured destination"
        )
    if data["running"]:
        lines.append("A backup is running now.")
    return "\n".join(lines)


def status_json(status: Status) -> str:
    return json.dumps(status_data(status), indent=2)


def restore_summary(report: RestoreReport) -> list[str]:
    """What was restored, what was skipped and why, and what the person must do next."""
    verb = "would be restored" if report.dry_run else "restored"
    count = report.to_write if report.dry_run else report.written
    lines = [
        f"{count} {report.noun} {verb} to {report.target}"
        + (f" in {duration(report.seconds)}" if not report.dry_run else "")
        + "."
    ]
    details = [
        (report.already_on_phone, f"already {report.already_where}"),
        (report.duplicates_in_archive, "duplicates in the archive"),
        (report.not_chosen, "not chosen by --since/--until/--contact"),
        (report.left_by_limit, "left out by --limit (older than the newest chosen)"),
        (len(report.refused), "refused by the phone"),
    ]
    details += [(n, f"skipped: {reason}") for reason, n in sorted(report.skipped.items())]
    lines += [f"  {n:>6}  {what}" for n, what in details if n]
    refusals = Counter(report.refused)  # why, so the person knows what to fix
    lines += [f"          {n} x {reason}" for reason, n in sorted(refusals.items())]
    kind = "SMS or MMS" if report.noun == "messages" else report.noun
    lines.append(f"  {report.listed:>6}  emails under the label, {report.sms_found} of them {kind}")
    if report.dry_run:
        lines.append("Dry run: nothing was written.")
    if report.next_steps:
        lines.append("Next:")
        lines += [f"  {index}. {step}" for index, step in enumerate(report.next_steps, 1)]
    return lines


_KIND_NAMES = {"sms": "SMS", "mms": "MMS", "call": "call"}


def _kinds(counts: Counter[str]) -> str:
    return ", ".join(
        f"{n} {_KIND_NAMES.get(kind, kind)}" for kind, n in sorted(counts.items()) if n
    )


def verify_lines(reports: Sequence[VerifyReport], repair: BackupReport | None) -> list[str]:
    """Per label: what is there, what is missing (kind, date, short id: never a text or
    a number), what was recorded or repaired, and whether the backup is whole."""
    lines: list[str] = []
    for report in reports:
        head = f"{report.label!r} in {report.where}:"
        if report.folder_absent:
            head += " the label does not exist."
        else:
            head += f" {report.fetched} emails read, {report.present} of {report.recorded} "
            head += "recorded messages there."
        lines.append(head)
        if report.recorded_now:
            lines.append(
                f"  recorded now (there, but unknown to the state): {_kinds(report.recorded_now)}"
            )
        lines += [f"  skipped {n}: {reason}" for reason, n in sorted(report.skipped.items())]
        if report.stopped:
            lines.append("  stopped before the whole label was read: nothing was compared")
        if report.not_fetched:
            lines.append(
                f"  {report.not_fetched} emails could not be read: nothing was compared "
                "(run `smsbak verify` again later)"
            )
        if report.missing_total:
            lines.append(f"  MISSING: {_kinds(report.missing)}")
            for item in report.listed_missing:
                when = datetime.fromtimestamp(item.date_ms / 1000, UTC).strftime(
                    "%Y-%m-%d %H:%M UTC"
                )
                lines.append(
                    f"    {_KIND_NAMES.get(item.kind, item.kind):4} {when}  {item.short_id}"
                )
            more = report.missing_total - len(report.listed_missing)
            if more > 0:
                lines.append(f"    ... and {more} more")
        if report.repair_ran:
            lines.append(f"  repaired: {report.repaired} uploaded again")
            if report.unrepaired:
                lines.append(
                    f"  not repaired: {_kinds(report.unrepaired)} (the phone no longer has them)"
                )
    if repair is not None:
        lines.append(
            f"The repair ran a full backup: {sum(s.uploaded for s in repair.streams)} "
            "uploaded in all."
        )
    if all(report.whole for report in reports):
        lines.append("The backup is whole.")
    elif any(r.missing_total and not r.repair_ran for r in reports):
        lines.append("The backup is NOT whole: `smsbak verify --repair` uploads what is missing.")
    else:
        lines.append("The backup is NOT whole.")
    return lines
