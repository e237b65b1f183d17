"""Settings: defaults without a file, the file, the environment, and `smsbak config show`."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed
from tests.test_backup_e2e import BASE

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests


def test_config_show_names_every_value_and_its_source(bed: Bed) -> None:
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, label="Texte", wifi_only=True)
    result = bed.smsbak("config", "show")
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" = ", 1) for line in result.stdout.splitlines()[1:])
    config_file = str(bed.home / "config.toml")
    assert lines["label"] == f'"Texte"  # {config_file}'
    assert lines["wifi_only"] == f"true  # {config_file}"
    assert lines["lookback_hours"] == "24.0  # default"
    assert lines["gmail_api"] == f'"{bed.emulator.url}"  # $SMSBAK_GMAIL_API'
    assert lines["backup_every"] == '"2h"  # default'


def test_no_config_file_is_needed(bed: Bed) -> None:
    (bed.home / "config.toml").unlink()
    result = bed.smsbak("config", "show")
    assert result.returncode == 0
    assert "(absent)" in result.stdout.splitlines()[0]
    bed.phone.add_sms(address="+491", body="defaults", date=BASE)
    assert bed.smsbak("backup").returncode == 0
    assert len(bed.emulator.messages("SMS")) == 1


def test_bad_durations_are_reported_with_the_form_to_use(bed: Bed) -> None:
    bed.configure(backup_every="often", watch_every="0m", min_battery=120)
    result = bed.smsbak("config", "show")
    assert result.returncode == 2
    assert "backup_every = 'often'" in result.stderr
    assert "watch_every" in result.stderr and "min_battery" in result.stderr
    assert "30m, 2h or 1d" in result.stderr


def test_notifications_can_be_turned_off(bed: Bed) -> None:
    bed.configure(
        quota_units_per_minute=TEST_QUOTA_PER_MINUTE, notifications=False, watch_every="off"
    )
    bed.phone.add_sms(address="+492", body="quiet", date=BASE)
    daemon: subprocess.Popen[str] = bed.popen("daemon", "--every", "1h")
    try:
        deadline = time.monotonic() + 20
        while not bed.emulator.messages("SMS") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert bed.emulator.messages("SMS")
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    assert bed.phone.calls("termux-notification") == []
