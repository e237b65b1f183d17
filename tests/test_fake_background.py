"""Tests of the background-mode fakes (tests/fakes/bin, logic in _background.py), run
as subprocesses: termux-job-scheduler, termux-wifi-connectioninfo,
termux-battery-status, termux-wake-lock and termux-wake-unlock.

They pin what the Termux:API sources say these tools print ("Background life on
Android" in /work/shared/reference/termux-api.md, JobSchedulerAPI.java, WifiAPI.java,
BatteryStatusAPI.java, termux-api.c), so smsbak's tests meet the real quirks: text
output with a tab, exit 0 on app-side errors, the 15-minute clamp, one of two answers.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.phone import BIN_DIR, FakePhone

BACKGROUND_TOOLS = (
    "termux-job-scheduler",
    "termux-wifi-connectioninfo",
    "termux-battery-status",
    "termux-wake-lock",
    "termux-wake-unlock",
)
ANY_NETWORK = (
    "(network: NetworkRequest [ NONE id=0, [ Capabilities: "
    "INTERNET&NOT_RESTRICTED&TRUSTED&VALIDATED Uid: 10234] ])"
)
UNMETERED = (
    "(network: NetworkRequest [ NONE id=0, [ Capabilities: "
    "NOT_METERED&INTERNET&NOT_RESTRICTED&TRUSTED&VALIDATED Uid: 10234] ])"
)


@pytest.fixture
def phone(tmp_path: Path) -> FakePhone:
    return FakePhone(tmp_path / "phone")


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "home" / "job.sh"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\necho job ran\n")
    path.chmod(0o755)
    return path


def out(phone: FakePhone, tool: str, *args: str) -> str:
    result = phone.run(tool, *args)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    return result.stdout.decode()


def jobs(phone: FakePhone, *args: str) -> str:
    return out(phone, "termux-job-scheduler", *args)


def as_json(phone: FakePhone, tool: str) -> dict[str, Any]:
    data = json.loads(out(phone, tool))
    assert isinstance(data, dict)
    return data


# --------------------------------------------------------------------------- scripts


@pytest.mark.parametrize("tool", BACKGROUND_TOOLS)
def test_scripts_are_executable_python_and_log_every_call(phone: FakePhone, tool: str) -> None:
    path = BIN_DIR / tool
    assert path.read_text().startswith("#!/usr/bin/env python3\n")
    assert os.stat(path).st_mode & 0o777 == 0o755
    phone.run(tool)
    assert [call["argv"] for call in phone.calls(tool)] == [[]]


# --------------------------------------------------------------------------- job scheduler


def test_schedule_and_pending_text_as_the_app_formats_it(phone: FakePhone, script: Path) -> None:
    assert jobs(phone, "-p") == "No pending jobs\n"
    text = jobs(
        phone, "-s", str(script), "--job-id", "4242", "--period-ms", "1800000",
        "--persisted", "true",
    )  # fmt: skip
    line = f"Job 4242: {script}\t(periodic: 1800000ms) (persisted) (battery not low) {ANY_NETWORK}"
    assert text == f"Scheduling {line} - response 1\n"
    jobs(phone, "--script", str(script), "--job-id=7", "--period-ms=3600000",
         "--network", "unmetered", "--battery-not-low", "false")  # fmt: skip
    pending = jobs(phone, "--pending")
    seven = f"Pending Job 7: {script}\t(periodic: 3600000ms) {UNMETERED}"
    # One line per job (by id), then println's own newline: an empty last line.
    assert pending == f"{seven}\nPending {line}\n\n"
    assert jobs(phone, "-p") == pending
    assert phone.jobs() == [
        {
            "job_id": 7, "script": str(script), "period_ms": 3600000, "network": "unmetered",
            "battery_not_low": False, "storage_not_low": False, "charging": False,
            "idle": False, "persisted": False,
        },
        {
            "job_id": 4242, "script": str(script), "period_ms": 1800000, "network": "any",
            "battery_not_low": True, "storage_not_low": False, "charging": False,
            "idle": False, "persisted": True,
        },
    ]  # fmt: skip
    assert [c["argv"][:2] for c in phone.calls("termux-job-scheduler")] == [
        ["-p"], ["-s", str(script)], ["--script", str(script)], ["--pending"], ["-p"]
    ]


def test_all_flags_in_the_apps_order(phone: FakePhone, script: Path) -> None:
    text = jobs(
        phone, "-s", str(script), "--job-id", "1", "--period-ms", "900000", "--charging", "t",
        "--persisted", "1", "--storage-not-low", "TRUE", "--network", "not_roaming",
    )  # fmt: skip
    assert "\t(periodic: 900000ms) (while charging) (persisted) (battery not low) " in text
    assert "(storage not low) (network: NetworkRequest [ NONE id=0, [ Capabilities: " in text
    assert "VALIDATED&NOT_ROAMING Uid: 10234] ]) - response 1\n" in text


def test_period_under_15_minutes_is_raised_to_15_minutes(phone: FakePhone, script: Path) -> None:
    text = jobs(phone, "-s", str(script), "--job-id", "1", "--period-ms", "60000")
    assert "(periodic: 900000ms)" in text
    assert phone.jobs()[0]["period_ms"] == 900_000
    jobs(phone, "-s", str(script), "--job-id", "2")  # no period: a one-shot job
    assert phone.job(2) is not None and phone.job(2)["period_ms"] == 0  # type: ignore[index]
    assert "(periodic" not in jobs(phone, "-p").splitlines()[1]


def test_old_android_has_no_clamp_and_fewer_details(phone: FakePhone, script: Path) -> None:
    phone.set(props={"ro.build.version.sdk": "23"})
    text = jobs(phone, "-s", str(script), "--job-id", "1", "--period-ms", "60000")
    assert text == f"Scheduling Job 1: {script}\t(periodic: 60000ms) - response 1\n"


def test_same_job_id_replaces_the_job(phone: FakePhone, script: Path) -> None:
    jobs(phone, "-s", str(script), "--job-id", "5", "--period-ms", "1800000")
    jobs(phone, "-s", str(script), "--job-id", "5", "--period-ms", "3600000")
    assert [(j["job_id"], j["period_ms"]) for j in phone.jobs()] == [(5, 3600000)]


def test_script_checks_print_on_stdout_with_exit_0(phone: FakePhone, script: Path) -> None:
    assert jobs(phone, "--job-id", "1") == "No script path given\n"
    assert jobs(phone, "-s", "", "--job-id", "1") == "No script path given\n"  # "" is unset
    missing = script.parent / "nope.sh"
    assert jobs(phone, "-s", str(missing)) == f"No such file: {missing}\n"
    assert jobs(phone, "-s", str(script.parent)) == f"No such file: {script.parent}\n"
    script.chmod(0o644)
    assert jobs(phone, "-s", str(script)) == f"Cannot execute file: {script}\n"
    assert phone.jobs() == []


def test_relative_script_path_is_resolved_from_the_apps_root(
    phone: FakePhone, script: Path
) -> None:
    relative = os.path.relpath(script, script.parent)  # "job.sh": the app looks in /
    result = phone.run("termux-job-scheduler", "-s", relative)
    assert result.stdout.decode() == f"No such file: {relative}\n"
    from_root = str(script).lstrip("/")
    jobs(phone, "-s", from_root, "--job-id", "3")
    assert phone.jobs()[0]["script"] == str(script)


def test_default_job_id_is_0_and_cancel_without_id_cancels_job_0(
    phone: FakePhone, script: Path
) -> None:
    assert jobs(phone, "-s", str(script)).startswith(f"Scheduling Job 0: {script}\t")
    assert jobs(phone, "--cancel").startswith(f"Cancelling Job 0: {script}\t")
    assert phone.jobs() == []


def test_cancel_and_cancel_all(phone: FakePhone, script: Path) -> None:
    for job_id in ("1", "2", "3"):
        jobs(phone, "-s", str(script), "--job-id", job_id, "--period-ms", "900000")
    assert jobs(phone, "--cancel", "--job-id", "9") == "No job 9 found\n"
    text = jobs(phone, "--cancel", "--job-id", "2")
    assert text.startswith(f"Cancelling Job 2: {script}\t(periodic: 900000ms)")
    assert text.endswith("\n") and text.count("\n") == 1
    assert [j["job_id"] for j in phone.jobs()] == [1, 3]
    listing = jobs(phone, "-p")
    # --cancel-all prints the pending list (its first answer), then cancels.
    assert jobs(phone, "--cancel-all") == listing
    assert phone.jobs() == []
    assert jobs(phone, "--cancel-all") == "No pending jobs\n"


def test_pending_wins_over_cancel_and_cancel_over_scheduling(
    phone: FakePhone, script: Path
) -> None:
    jobs(phone, "-s", str(script), "--job-id", "1")
    assert jobs(phone, "-p", "--cancel-all").startswith("Pending Job 1:")
    assert len(phone.jobs()) == 1
    assert jobs(phone, "-s", str(script), "--job-id", "1", "--cancel").startswith("Cancelling")
    assert phone.jobs() == []


def test_race_second_gives_the_other_answer(phone: FakePhone, script: Path) -> None:
    phone.set(job_scheduler_race="second")
    text = jobs(phone, "-s", str(script), "--job-id", "1", "--period-ms", "900000")
    assert text.startswith(f"Pending Job 1: {script}\t(periodic: 900000ms)")
    assert text.endswith("\n\n")
    assert jobs(phone, "--cancel-all") == "Cancelling all jobs\n"
    assert phone.jobs() == []


def test_network_none_registers_the_job_but_the_app_crashes_on_output(
    phone: FakePhone, script: Path
) -> None:
    assert jobs(phone, "-s", str(script), "--job-id", "1", "--network", "none") == ""
    assert phone.jobs()[0]["network"] == "none"
    assert jobs(phone, "-p") == ""  # formatting any such job throws
    assert jobs(phone, "--cancel-all") == ""  # ... before cancelAll(): nothing cancelled
    assert len(phone.jobs()) == 1
    assert jobs(phone, "--cancel", "--job-id", "1") == ""  # cancel() still runs
    assert phone.jobs() == []
    # Unknown network names fall to "none" in the app's switch.
    assert jobs(phone, "-s", str(script), "--job-id", "2", "--network", "wifi") == ""
    assert phone.jobs()[0]["network"] == "none"


def test_script_level_errors_exit_1(phone: FakePhone) -> None:
    for args, message in (
        (["--foo"], "termux-job-scheduler: unrecognized option '--foo'\n"),
        (["-x"], "termux-job-scheduler: invalid option -- 'x'\n"),
        (["--job-id"], "termux-job-scheduler: option '--job-id' requires an argument\n"),
        (["-s"], "termux-job-scheduler: option requires an argument -- 's'\n"),
        (["--pending=1"], "termux-job-scheduler: option '--pending' doesn't allow an argument\n"),
    ):
        result = phone.run("termux-job-scheduler", *args)
        assert (result.returncode, result.stderr.decode(), result.stdout) == (1, message, b"")
    result = phone.run("termux-job-scheduler", "-p", "extra")
    assert result.returncode == 1
    assert result.stdout == b"termux-job-scheduler: too many arguments\n"
    usage = phone.run("termux-job-scheduler", "-h")
    assert usage.returncode == 0
    assert b"the minimum period is 900,000ms (15 minutes)" in usage.stdout


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--persisted", "yes"], "Invalid boolean value: yes"),
        (["--job-id", "abc"], 'NumberFormatException: For input string: "abc"'),
        (["--period-ms", "99999999999"], 'For input string: "99999999999"'),
    ],
)
def test_values_the_app_cannot_parse_hang_after_an_error(
    phone: FakePhone, script: Path, args: list[str], error: str
) -> None:
    with subprocess.Popen(
        [str(BIN_DIR / "termux-job-scheduler"), "-s", str(script), *args],
        env=phone.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
        proc.kill()
        stdout, stderr = proc.communicate()
    assert stdout == b""
    assert error in stderr.decode()
    assert phone.jobs() == []


def test_java_integer_forms_are_accepted(phone: FakePhone, script: Path) -> None:
    jobs(phone, "-s", str(script), "--job-id", "0x10", "--period-ms", "#FFFFF")
    assert (phone.jobs()[0]["job_id"], phone.jobs()[0]["period_ms"]) == (16, 0xFFFFF)


def test_reboot_keeps_only_persisted_jobs(phone: FakePhone, script: Path) -> None:
    jobs(phone, "-s", str(script), "--job-id", "1", "--persisted", "true")
    jobs(phone, "-s", str(script), "--job-id", "2")
    phone.run("termux-wake-lock")
    phone.reboot()
    assert [j["job_id"] for j in phone.jobs()] == [1]
    assert not phone.wake_lock


def test_run_job_runs_the_script(phone: FakePhone, script: Path) -> None:
    jobs(phone, "-s", str(script), "--job-id", "1")
    assert phone.run_job(1).stdout == "job ran\n"
    with pytest.raises(KeyError):
        phone.run_job(2)


def test_failure_modes_change_nothing(phone: FakePhone, script: Path) -> None:
    phone.set_mode("termux-job-scheduler", "hang")
    with pytest.raises(subprocess.TimeoutExpired):
        phone.run("termux-job-scheduler", "-s", str(script), timeout=0.5)
    phone.set_mode("termux-job-scheduler", "garbage")
    garbage = phone.run("termux-job-scheduler", "-s", str(script))
    assert garbage.returncode == 0 and b"Exception" in garbage.stdout
    phone.set_mode("termux-job-scheduler", "exit1")
    assert phone.run("termux-job-scheduler", "-s", str(script)).returncode == 1
    assert phone.jobs() == []
    phone.set_mode("termux-job-scheduler", "truncated")
    text = jobs(phone, "-s", str(script), "--job-id", "1")
    assert text and "response 1" not in text
    assert len(phone.jobs()) == 1


def test_concurrent_calls_lose_no_update(phone: FakePhone, script: Path) -> None:
    def schedule(job_id: int) -> int:
        return phone.run(
            "termux-job-scheduler", "-s", str(script), "--job-id", str(job_id)
        ).returncode

    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(schedule, range(24)))
        pool.map(lambda _: phone.run("termux-wake-lock"), range(4))
    assert codes == [0] * 24
    assert [j["job_id"] for j in phone.jobs()] == list(range(24))
    assert phone.wake_lock
    assert len(phone.calls("termux-job-scheduler")) == 24


def test_writes_keep_the_rest_of_the_fixture(phone: FakePhone, script: Path) -> None:
    phone.add_sms(address="+4917012345678", body="hi", date=1_700_000_000_000)
    phone.set_battery(55)
    jobs(phone, "-s", str(script), "--job-id", "1")
    assert len(phone.messages) == 1
    assert phone.data["battery"]["percentage"] == 55
    settings = phone.on_disk(settings=True)
    assert settings["jobs"][0]["job_id"] == 1 and "messages" not in settings


# --------------------------------------------------------------------------- wifi


def test_wifi_connected(phone: FakePhone) -> None:
    phone.set_wifi(True, ssid='Home "5G"')
    text = out(phone, "termux-wifi-connectioninfo")
    assert text.startswith('{\n  "ip": "192.168.178.23",\n  "bssid": ')  # the app's order
    data = json.loads(text)
    assert list(data) == [
        "ip", "bssid", "frequency_mhz", "link_speed_mbps", "mac_address", "network_id",
        "rssi", "ssid", "ssid_hidden", "supplicant_state",
    ]  # fmt: skip
    assert data["ssid"] == "Home 5G"  # the app strips every double quote
    assert data["supplicant_state"] == "COMPLETED"
    assert data["mac_address"] == "02:00:00:00:00:00"


def test_wifi_disconnected_and_without_any_network(phone: FakePhone) -> None:
    phone.set_wifi(False)
    data = as_json(phone, "termux-wifi-connectioninfo")
    assert data["supplicant_state"] == "DISCONNECTED"
    assert data["ssid"] == "<unknown ssid>"
    assert data["bssid"] is None and data["network_id"] == -1 and data["rssi"] == -127
    assert data["ip"]  # the mobile data address
    phone.set_wifi(False, cellular=False)
    assert out(phone, "termux-wifi-connectioninfo") == ""


def test_wifi_without_location_permission_hides_the_ssid(phone: FakePhone) -> None:
    phone.set_wifi(True, ssid="HomeNet")
    phone.set_mode("termux-wifi-connectioninfo", "permission")
    data = as_json(phone, "termux-wifi-connectioninfo")
    assert data["ssid"] == "<unknown ssid>"
    assert data["bssid"] == "02:00:00:00:00:00"
    assert data["supplicant_state"] == "COMPLETED"
    assert "error" not in data


def test_wifi_failure_modes(phone: FakePhone) -> None:
    phone.set_mode("termux-wifi-connectioninfo", "hang")
    with pytest.raises(subprocess.TimeoutExpired):
        phone.run("termux-wifi-connectioninfo", timeout=0.5)
    phone.set_mode("termux-wifi-connectioninfo", "garbage")
    with pytest.raises(ValueError):
        json.loads(out(phone, "termux-wifi-connectioninfo"))
    phone.set_mode("termux-wifi-connectioninfo", "empty")
    assert out(phone, "termux-wifi-connectioninfo") == ""
    result = phone.run("termux-wifi-connectioninfo", "extra")
    assert result.returncode == 1


# --------------------------------------------------------------------------- battery


def test_battery_new_app(phone: FakePhone) -> None:
    phone.set_battery(42, plugged="PLUGGED_AC")
    data = as_json(phone, "termux-battery-status")
    assert list(data)[:6] == ["present", "technology", "health", "plugged", "status", "temperature"]
    assert (data["percentage"], data["plugged"], data["status"]) == (42, "PLUGGED_AC", "CHARGING")
    assert data["temperature"] == 27.4 and data["current"] > 0
    phone.set_battery(100, plugged="PLUGGED_USB")
    assert as_json(phone, "termux-battery-status")["status"] == "FULL"
    phone.set_battery(15)
    data = as_json(phone, "termux-battery-status")
    assert (data["status"], data["plugged"]) == ("DISCHARGING", "UNPLUGGED")
    assert data["current"] < 0
    phone.set_battery(15, status="NOT_CHARGING", temperature=31.0)
    assert as_json(phone, "termux-battery-status")["status"] == "NOT_CHARGING"


def test_battery_old_app_has_six_keys_and_float_temperature(phone: FakePhone) -> None:
    phone.set(generation="old")
    phone.set_battery(80, plugged="PLUGGED_DOCK", status="CHARGING")
    text = out(phone, "termux-battery-status")
    data = json.loads(text)
    assert list(data) == ["health", "percentage", "plugged", "status", "temperature", "current"]
    assert data["plugged"] == "PLUGGED_8"  # the old app knew no dock
    assert '"temperature": 27.399999618530273' in text


def test_battery_defaults_and_modes(phone: FakePhone) -> None:
    data = as_json(phone, "termux-battery-status")
    assert (data["percentage"], data["plugged"], data["status"]) == (80, "UNPLUGGED", "DISCHARGING")
    phone.set_mode("termux-battery-status", "hang")
    with pytest.raises(subprocess.TimeoutExpired):
        phone.run("termux-battery-status", timeout=0.5)
    with pytest.raises(ValueError):
        phone.set_battery(101)
    with pytest.raises(ValueError):
        phone.set_battery(50, plugged="USB")


# --------------------------------------------------------------------------- wake lock


def test_wake_lock_and_unlock(phone: FakePhone) -> None:
    assert not phone.wake_lock
    assert out(phone, "termux-wake-lock") == ""
    assert phone.wake_lock
    assert out(phone, "termux-wake-unlock") == ""
    assert not phone.wake_lock
    assert [c["tool"] for c in phone.calls()] == ["termux-wake-lock", "termux-wake-unlock"]
    assert phone.run("termux-wake-lock", "now").returncode == 1
