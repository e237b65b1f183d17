"""`smsbak schedule` against a fake termux-job-scheduler that checks its arguments."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed
from tests.test_backup_e2e import BASE

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests


def test_install_registers_a_persisted_periodic_job_that_runs_a_backup(bed: Bed) -> None:
    result = bed.smsbak("schedule", "install", "--every", "6h")
    assert result.returncode == 0, result.stderr
    (job,) = bed.phone.jobs()
    assert int(job["job_id"]) == 7232
    assert int(job["period_ms"]) == 6 * 3600 * 1000
    assert job["persisted"] is True
    assert job["network"] == "any"
    script = job["script"]
    assert os.access(script, os.X_OK)
    assert stat.S_IMODE(os.stat(script).st_mode) == 0o700
    with open(script, encoding="utf-8") as handle:
        text = handle.read()
    assert "-m smsbak backup --notify" in text
    assert f"SMSBAK_HOME={bed.home}" in text
    # The job script really backs up.
    bed.phone.add_sms(address="+491", body="from the job", date=BASE)
    run = subprocess.run([script], env=bed.env(), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert len(bed.emulator.messages("SMS")) == 1
    shown = bed.smsbak("schedule", "show")
    assert "Job 7232:" in shown.stdout and "periodic" in shown.stdout


def test_short_periods_are_raised_to_androids_minimum(bed: Bed) -> None:
    result = bed.smsbak("schedule", "install", "--every", "5m")
    assert result.returncode == 0, result.stderr
    assert "at most every 15 minutes" in result.stdout
    (job,) = bed.phone.jobs()
    assert int(job["period_ms"]) == 900_000
    assert job["battery_not_low"] is False  # the app's default is true: smsbak says false


def test_conditions_become_job_constraints(bed: Bed) -> None:
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, wifi_only=True, min_battery=20)
    assert bed.smsbak("schedule", "install").returncode == 0
    (job,) = bed.phone.jobs()
    assert job["network"] == "unmetered"
    assert job["battery_not_low"] is True
    assert int(job["period_ms"]) == 2 * 3600 * 1000  # backup_every's default


def test_remove_cancels_the_job_and_show_says_so(bed: Bed) -> None:
    assert bed.smsbak("schedule", "install").returncode == 0
    removed = bed.smsbak("schedule", "remove")
    assert removed.returncode == 0
    assert "Removed" in removed.stdout
    assert bed.phone.jobs() == []
    assert "No scheduled backup is registered" in bed.smsbak("schedule", "show").stdout
    again = bed.smsbak("schedule", "remove")
    assert "No scheduled backup was registered" in again.stdout
