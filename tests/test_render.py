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
    report = BackupReport(
        scanned=120, already=100, to_upload=20, uploaded=20, seconds=4.0, destination="Gmail"
    )
    text = backup_summary(report)
    assert "\n" not in text
    assert "Backed up 20 new messages (100 already in Gmail, 120 read)" in text
    assert "5.0 msg/s" in text
    assert duration(3725) == "1h02m"


def test_restore_phases_are_named_by_what_they_do() -> None:
    out, clock = io.StringIO(), Clock()
    printer = ProgressPrinter(out, True, clock=clock)
    printer(Progress("fetch", 0, 100))
    clock.now += 2
    printer(Progress("fetch", 40, 100))
    assert out.getvalue().split("\r")[-1].startswith("\x1b[KReading the archive [")
    printer(Progress("write", 0, 10))
    clock.now += 2
    printer(Progress("write", 4, 10))
    last = out.getvalue().split("\r")[-1]
    assert last.startswith("\x1b[KRestoring [") and "4/10" in last
    assert "Uploading" not in out.getvalue()


def test_no_rate_before_a_second_has_passed() -> None:
    out, clock = io.StringIO(), Clock()
    printer = ProgressPrinter(out, True, clock=clock)
    printer(Progress("write", 0, 4000))
    clock.now += 0.001
    printer(Progress("write", 2000, 4000))
    last = out.getvalue().split("\r")[-1]
    assert "2000/4000" in last
    assert "msg/s" not in last and "ETA" not in last
    clock.now += 1.999
    printer(Progress("write", 3000, 4000))
    last = out.getvalue().split("\r")[-1]
    assert "1500.0 msg/s" in last and "ETA 1s" in last
