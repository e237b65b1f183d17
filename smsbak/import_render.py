"""The summary of ``smsbak import`` for a person (the CLI's side of the import engine).

Kept apart from ``smsbak.render`` only so the branches that grew both could meet
without stepping on each other; the progress bar is ``render.ProgressPrinter``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smsbak.importer import ImportReport

_KIND_NOUNS = (("sms", "SMS"), ("mms", "MMS"), ("call", "calls"))


def _kinds(counts: Any) -> str:
    """``12 SMS, 1 MMS, 3 calls`` of a per-kind counter; ``nothing`` when all are 0."""
    parts = [f"{counts[kind]} {noun}" for kind, noun in _KIND_NOUNS if counts[kind]]
    return ", ".join(parts) or "nothing"


def import_summary(report: ImportReport) -> list[str]:
    """Per file what was read, uploaded and skipped (and why), then the totals."""
    verb = "would be uploaded" if report.dry_run else "uploaded"
    lines: list[str] = [f"{note}." for note in report.notes]
    for file in report.files:
        lines.append(f"{file.path} ({file.kind}): read {_kinds(file.read)}")
        lines.append(f"  {verb}: {_kinds(file.uploaded)}")
        details = [
            (sum(file.known.values()), "skipped: already at the destination"),
            (sum(file.duplicates.values()), "skipped: met earlier in these files"),
            (file.unusable, "skipped: unusable (no usable date or type)"),
            (file.incomplete, "skipped: MMS whose attachments the file lacks"),
            (len(file.refused), "refused by the destination"),
        ]
        lines += [f"  {n:>6}  {what}" for n, what in details if n]
        lines += [f"          {example}" for example in file.unusable_examples]
        lines += [f"          incomplete: {why}" for why in file.incomplete_examples]
        lines += [f"          refused: {reason}" for reason in file.refused[:20]]
        if file.damage is not None:
            lines.append(f"  DAMAGED: {file.damage.message}")
            if file.damage.hint:
                lines.append(f"  Fix: {file.damage.hint}")
    total = report.total("uploaded")
    skipped = sum(f.skipped for f in report.files)
    lines.append(
        f"{'Dry run: ' if report.dry_run else ''}{_kinds(total)} {verb} to {report.destination}"
        f"; {skipped} skipped."
    )
    if any(f.incomplete for f in report.files):
        lines.append(
            "MMS with missing attachments were left out so that a complete copy can still"
            " bring them: export again with attachments (SMS Import / Export: include"
            " binary data) and import that file."
        )
    if report.found:
        lines.append(
            f"{report.found} of them were already there (an interrupted run or a lost state"
            " database): found by Message-ID and recorded, not sent again."
        )
    if report.stopped:
        lines.append("Stopped early: run the same command again to import the rest.")
    if report.damaged:
        lines.append(
            f"{len(report.damaged)} file(s) damaged: what came before the damage was imported."
        )
    return lines
