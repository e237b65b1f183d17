"""What a person sees: the progress line on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from smsbak.backup import BackupReport, Progress
from smsbak.render import ProgressPrinter, backup_summary, duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_terminal_progress_shows_count_rate_and_eta() -> None:
    out, clock = io.StringIO(), Clock()
    printer = ProgressPrinter(out, True, clock=clock)
    printer(Progress("upload", 0, 200))
    clock.now += 10
    printer(Progress("upload", 50, 200))
    printer.close()
    last = out.getvalue().split("\r")[-1]
    assert "50/200" in last
    assert "5.0 msg/s" in last
    assert "ETA 30s" in last
    assert out.getvalue().endswith("\n")


def test_plain_progress_is_throttled_to_occasional_lines() -> None:
    out, clock = io.StringIO(), Clock()
    printer = ProgressPrinter(out, False, clock=clock, plain_every=10)
    for done in range(0, 101, 5):
        clock.now += 1
        printer(Progress("upload", done, 100))
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert 2 <= len(lines) <= 4
    assert lines[-1].startswith("Uploading") and "100/100" in lines[-1]


def test_summary_is_one_line_with_counts() -> None:
    report = BackupReport(scanned=120, already=100, to_upload=20, uploaded=20, seconds=4.0)
    text = backup_summary(report)
    assert "\n" not in text
    assert "Backed up 20 new messages (100 already in Gmail, 120 read)" in text
    assert "5.0 msg/s" in text
    assert duration(3725) == "1h02m"
