"""`smsbak doctor` names each failure with its fix, and exits non-zero when one needs fixing."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from smsbak.errors import ExitCode
from smsbak.lock import RunLock
from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed
from tests.test_backup_e2e import BASE

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests


def doctor(bed: Bed) -> tuple[int, dict[str, str], str]:
    result = bed.smsbak("doctor", timeout=60)
    lines = {}
    output = result.stdout.splitlines()
    for index, line in enumerate(output):
        if line.startswith("["):
            mark, rest = line[1:5], line[7:]
            lines[rest.split(": ", 1)[0]] = mark.strip()
            if mark.strip() != "OK":  # every problem comes with its fix
                assert output[index + 1].lstrip().startswith("Fix: "), result.stdout
    assert "crashed" not in result.stdout
    return result.returncode, lines, result.stdout


def backed_up(bed: Bed) -> None:
    bed.phone.add_sms(address="+491", body="hi", date=BASE)
    assert bed.smsbak("backup").returncode == 0


def test_a_healthy_setup_passes_with_a_note_about_background(bed: Bed) -> None:
    backed_up(bed)
    code, marks, out = doctor(bed)
    assert code == 0, out
    assert marks["Termux:API and SMS permission"] == "OK"
    assert marks["Gmail login"] == "OK"
    assert marks["Gmail label"] == "OK"
    assert marks["Python packages"] == "OK"
    assert marks["Phone time zone"] == "OK" and "Europe/Berlin" in out
    assert marks["Last backup"] == "OK"
    assert marks["Background backups"] == "WARN"
    assert "smsbak schedule install" in out
    assert "Nothing needs fixing." in out


def test_permission_denied_is_named_with_its_fix(bed: Bed) -> None:
    backed_up(bed)
    bed.phone.set_mode("termux-sms-list", "permission")
    bed.phone.set_mode("termux-contact-list", "permission")
    code, marks, out = doctor(bed)
    assert code == ExitCode.CHECKS_FAILED
    assert marks["SMS permission"] == "FAIL"
    assert marks["Contacts permission"] == "WARN"
    assert "Fix: allow SMS" in out


def test_a_hanging_termux_api_is_named_with_its_fix(bed: Bed) -> None:
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, termux_timeout=0.5)
    bed.phone.set_mode("termux-sms-list", "hang")
    code, marks, out = doctor(bed)
    assert code == ExitCode.CHECKS_FAILED
    assert marks["Termux:API"] == "FAIL"
    assert "install the Termux:API app" in out


def test_a_revoked_login_is_named_with_its_fix(bed: Bed) -> None:
    backed_up(bed)
    bed.emulator.revoke(bed.refresh_token)
    code, marks, out = doctor(bed)
    assert code == ExitCode.CHECKS_FAILED
    assert marks["Gmail login"] == "FAIL"
    assert "smsbak auth" in out
    assert marks["Gmail label"] == "WARN"


def test_no_login_and_no_backup_yet(bed: Bed) -> None:
    (bed.home / "token.json").unlink()
    code, marks, out = doctor(bed)
    assert code == ExitCode.CHECKS_FAILED
    assert marks["Gmail login"] == "FAIL"
    assert marks["Last backup"] == "WARN"
    assert "never succeeded" in out


def test_an_old_last_backup_fails(bed: Bed) -> None:
    backed_up(bed)
    with sqlite3.connect(bed.home / "state.sqlite3") as db:
        db.execute("UPDATE runs SET ended_at = ended_at - 86400")
    code, marks, out = doctor(bed)
    assert code == ExitCode.CHECKS_FAILED
    assert marks["Last backup"] == "FAIL"
    assert "24.0 hours ago" in out


def test_an_unknown_time_zone_is_a_warning(bed: Bed) -> None:
    backed_up(bed)
    bed.phone.set(timezone="")
    code, marks, _ = doctor(bed)
    assert marks["Phone time zone"] == "WARN"
    assert code == 0


def test_a_running_daemon_is_seen(bed: Bed) -> None:
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, watch_every="off")
    backed_up(bed)
    daemon = bed.popen("daemon", "--every", "1h")
    try:
        lock = RunLock(bed.home / "daemon.lock")
        deadline = time.monotonic() + 20
        while lock.holder_pid() != daemon.pid and time.monotonic() < deadline:
            time.sleep(0.05)
        _, marks, out = doctor(bed)
        assert marks["Background backups"] == "OK"
        assert f"pid {daemon.pid}" in out
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


def test_doctor_says_which_reader_is_used(bed: Bed) -> None:
    backed_up(bed)
    _, marks, out = doctor(bed)
    assert marks["SMS reader"] == "OK"
    assert "Termux:API: received and sent SMS only" in out
    bed.phone.enable_privileged(rish=True)
    _, marks, out = doctor(bed)
    assert "Shizuku (rish): every box, exact times" in out
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, reader="root")
    code, marks, out = doctor(bed)
    assert marks["SMS reader"] == "FAIL"
    assert code == ExitCode.CHECKS_FAILED


def test_a_missing_call_log_permission_fails_with_its_fix(bed: Bed) -> None:
    backed_up(bed)
    bed.phone.set_mode(
        "termux-call-log", "permission", missing_permissions=["android.permission.READ_CALL_LOG"]
    )
    code, marks, out = doctor(bed)
    assert code == ExitCode.CHECKS_FAILED
    assert marks["Call log"] == "FAIL"
    assert "call_log = false" in out
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, call_log=False)
    code, marks, _ = doctor(bed)
    assert marks["Call log"] == "OK"


def test_a_login_without_the_backup_scopes_fails(bed: Bed) -> None:
    token_file = bed.home / "token.json"
    token = json.loads(token_file.read_text())
    token["scopes"] = [s for s in token["scopes"] if not s.endswith("gmail.labels")]
    token_file.write_text(json.dumps(token))
    code, marks, out = doctor(bed)
    assert code == ExitCode.CHECKS_FAILED
    assert marks["Gmail login"] == "FAIL"
    assert "missing permissions" in out and "gmail.labels" in out


def test_a_label_not_created_yet_is_a_warning_with_its_fix(bed: Bed) -> None:
    _, marks, out = doctor(bed)
    assert marks["Gmail label"] == "WARN"
    assert "the first `smsbak backup` creates it" in out


def test_a_registered_scheduled_job_counts_as_background_backups(bed: Bed) -> None:
    backed_up(bed)
    assert bed.smsbak("schedule", "install").returncode == 0
    _, marks, out = doctor(bed)
    assert marks["Background backups"] == "OK"
    assert "scheduled job registered" in out


def test_a_missing_python_package_fails_with_its_fix(bed: Bed, tmp_path: Path) -> None:
    hide = tmp_path / "hide"
    hide.mkdir()
    # A module set to None in sys.modules is one Python cannot find or import.
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['apscheduler'] = None\n")
    pythonpath = os.pathsep.join(p for p in (str(hide), bed.env().get("PYTHONPATH", "")) if p)
    result = bed.process("doctor", timeout=60, PYTHONPATH=pythonpath)  # a fresh interpreter
    assert result.returncode == ExitCode.CHECKS_FAILED
    assert "[FAIL] Python packages: missing: apscheduler" in result.stdout
    assert "run termux-setup.sh again" in result.stdout


def path_without(bed: Bed, tool: str, tmp_path: Path) -> str:
    """The test PATH with the fake ``tool`` gone (the other fakes linked in its place)."""
    from tests.fakes.phone import BIN_DIR

    shown = tmp_path / f"bin-without-{tool}"
    shown.mkdir()
    for fake in BIN_DIR.iterdir():
        if fake.name != tool:
            (shown / fake.name).symlink_to(fake)
    parts = bed.env()["PATH"].split(os.pathsep)
    return os.pathsep.join(str(shown) if part == str(BIN_DIR) else part for part in parts)


def test_a_missing_getprop_is_an_explained_warning_not_a_crash(bed: Bed, tmp_path: Path) -> None:
    backed_up(bed)
    result = bed.smsbak("doctor", timeout=60, PATH=path_without(bed, "getprop", tmp_path))
    assert "crashed" not in result.stdout and "PhoneError" not in result.stdout
    assert "[WARN] Phone time zone: getprop is not installed; backups use the zone" in result.stdout
    assert "Fix: getprop comes with Android" in result.stdout
    assert result.returncode == 0, result.stdout  # a warning: backups still have a zone


def test_a_zone_python_does_not_know_is_a_warning(bed: Bed) -> None:
    backed_up(bed)
    bed.phone.set(timezone="Mars/Olympus_Mons")
    code, marks, out = doctor(bed)
    assert marks["Phone time zone"] == "WARN"
    assert "'Mars/Olympus_Mons' is not in Python's time zone data" in out
    assert code == 0


def test_every_unforeseen_failure_of_a_check_is_a_line_with_a_fix(tmp_path: Path) -> None:
    """Whatever a check raises becomes a named FAIL line with a fix, never "check crashed"."""
    from smsbak.config import Settings
    from smsbak.doctor import FAIL, Check, Doctor
    from smsbak.errors import PhoneError
    from smsbak.paths import Paths
    from smsbak.phone.termux import TermuxTools

    failures: list[Exception] = [
        PhoneError("getprop is not installed", "install it"),
        PhoneError("no hint given"),
        PermissionError(13, "Permission denied", str(tmp_path / "state.sqlite3")),
        RuntimeError("something nobody foresaw"),
    ]

    def raising(error: Exception) -> Callable[[], Check]:
        def check() -> Check:
            raise error

        return check

    class Broken(Doctor):
        """Every check meets one of the failures above."""

        def checks(self) -> list[tuple[str, Callable[[], Check]]]:
            return [
                (name, raising(failures[index % len(failures)]))
                for index, (name, _) in enumerate(super().checks())
            ]

    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    broken = Broken(paths, Settings(), TermuxTools(timeout=5))
    results = broken.run()
    assert [check.name for check in results] == [name for name, _ in Doctor.checks(broken)]
    assert len(results) >= 10
    for check in results:
        assert check.result == FAIL
        assert check.fix, check
        assert "crashed" not in check.detail and "Error(" not in check.detail, check
    by_name = {check.name: check for check in results}
    assert by_name["Termux:API"].detail == "getprop is not installed"
    assert by_name["Termux:API"].fix == "install it"
    assert "smsbak --verbose doctor" in (by_name["SMS reader"].fix or "")
    assert "Permission denied" in by_name["Contacts permission"].detail
    assert "state.sqlite3" in by_name["Contacts permission"].detail
    assert "belong to you" in (by_name["Contacts permission"].fix or "")
    assert (
        by_name["Call log"].detail == "could not be checked: RuntimeError: something nobody foresaw"
    )
