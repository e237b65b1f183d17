"""The fakes smsbak's background mode talks to: ``termux-job-scheduler``,
``termux-wifi-connectioninfo``, ``termux-battery-status``, ``termux-wake-lock`` and
``termux-wake-unlock``.  The scripts in ``bin`` call one ``main_*`` function here.

Behaviour follows "Background life on Android" in /work/shared/reference/termux-api.md
and, where that is silent, a reading of the sources: the ``termux-job-scheduler``
script of termux-api-package (0.59), ``JobSchedulerAPI.java``, ``WifiAPI.java`` and
``BatteryStatusAPI.java`` of the Termux:API app (new and old), and the
``termux-api.c`` front binary.  Choices beyond those are marked "silent:", readings
that were not run on a phone "inference:".  Fixture keys are documented in phone.py.

Kept apart from ``_termux_common`` (which every Termux:API fake compiles) and from
``_privileged``; it reuses the common helpers (call log, modes, JSON writer).
Writers take the same ``flock`` on ``<fixture>.lock`` as the privileged fakes and
replace the file atomically, so concurrent calls do not lose updates.  Stdlib only.
"""

from __future__ import annotations

import os
import sys

from _termux_common import (
    FixtureLock,
    Phone,
    ShowUsage,
    UsageError,
    android_json,
    fail,
    hang,
    import_getopt,
    is_new,
    is_uint,
    load_phone,
    log_invocation,
    missing_permissions,
    mode_of,
    respond,
    run_tool,
    save_phone,
    sdk_level,
    write_stdout,
)

# Imported by every fake call (a process each): typing, collections and datetime cost
# milliseconds a call, so names used only in annotations are imported for checkers.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import getopt
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

Job = dict[str, "Any"]

APP_UID = 10234  # silent: Termux's (and, shared, Termux:API's) uid, as in _privileged


# --------------------------------------------------------------------------- fixture


def update_phone(tool: str, change: Callable[[Phone], Any]) -> Any:
    """Re-read the fixture under the lock, apply ``change``, save; return its result."""
    with FixtureLock(tool):
        phone = load_phone(tool)  # afresh, under the lock
        result = change(phone)
        save_phone(phone)
    return result


def takes_effect(phone: Phone, tool: str) -> bool:
    """Whether the app gets to act: not when it hangs, throws or is denied."""
    mode = mode_of(phone, tool)
    if mode == "permission":
        return not missing_permissions(phone, tool)
    return mode in ("ok", "truncated")


# --------------------------------------------------------------------------- am extras


class BadExtra(Exception):
    """An extra the ``am`` parser rejects (text as am prints it)."""


_HEX_DELETE = str.maketrans("", "", "0123456789abcdefABCDEF")
_OCTAL_DELETE = str.maketrans("", "", "01234567")


def _java_int_parts(text: str) -> tuple[str, str] | None:
    """The groups of ``([+-]?)(0[xX][0-9a-fA-F]+|#[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\\Z``
    matched on ``text``, by str methods (no re: see _termux_common)."""
    sign = text[:1] if text[:1] in ("+", "-") else ""
    digits = text[len(sign) :]
    if digits[:2] in ("0x", "0X") and len(digits) > 2 and not digits[2:].translate(_HEX_DELETE):
        return sign, digits
    if digits[:1] == "#" and len(digits) > 1 and not digits[1:].translate(_HEX_DELETE):
        return sign, digits
    if digits[:1] == "0" and not digits.translate(_OCTAL_DELETE):
        return sign, digits
    if "1" <= digits[:1] <= "9" and is_uint(digits):
        return sign, digits
    return None


def java_decode_int(text: str) -> int:
    """``Integer.decode``: decimal, ``0x``/``#`` hex, leading-0 octal, 32-bit."""
    parts = _java_int_parts(text)
    if parts is None:
        raise BadExtra(f'java.lang.NumberFormatException: For input string: "{text}"')
    sign, digits = parts
    if digits[:2].lower() == "0x":
        value = int(digits[2:], 16)
    elif digits.startswith("#"):
        value = int(digits[1:], 16)
    elif digits.startswith("0") and len(digits) > 1:
        value = int(digits[1:], 8)
    else:
        value = int(digits)
    value = -value if sign == "-" else value
    if not -(2**31) <= value < 2**31:
        raise BadExtra(f'java.lang.NumberFormatException: For input string: "{text}"')
    return value


def am_boolean(text: str) -> bool:
    """``--ez`` as AOSP's ``Intent.parseCommandArgs`` reads it: true/t, false/f, or
    an int (non-zero is true); anything else is an error."""
    value = text.lower()
    if value in ("true", "t"):
        return True
    if value in ("false", "f"):
        return False
    try:
        return java_decode_int(value) != 0
    except BadExtra:
        message = f"java.lang.IllegalArgumentException: Invalid boolean value: {value}"
        raise BadExtra(message) from None


def reject_extra(message: str) -> NoReturn:
    """inference: termux-api.c hands the extras to the app (then to ``am``); both
    reject them with a message on stderr, no broadcast is sent, and the front binary
    waits on its socket for an answer that never comes: it hangs."""
    sys.stderr.write(f"Error: {message}\n")
    sys.stderr.flush()
    hang()


# --------------------------------------------------------------------------- job scheduler


JOB_TOOL = "termux-job-scheduler"
JOB_SHORT = "hs:p"
JOB_LONG = [
    "script=", "job-id=", "pending", "cancel", "cancel-all", "period-ms=", "network=",
    "battery-not-low=", "storage-not-low=", "charging=", "persisted=", "help",
    "trigger-content-flag=", "trigger-content-uri=",
]  # fmt: skip

JOB_USAGE = """\
Usage: termux-job-scheduler [options]
Schedule a script to run at specified intervals.
  -p/--pending               list pending jobs and exit
  --cancel-all               cancel all pending jobs and exit
  --cancel                   cancel given job-id and exit
Options for scheduling:
  -s/--script path           path to the script to be called
  --job-id int               job id (will overwrite any previous job with the same id)
  --period-ms int            schedule job approximately every period-ms milliseconds (default 0 means once).
                             Note that since Android N, the minimum period is 900,000ms (15 minutes).
  --network text             run only when this type of network available (default any): any|unmetered|cellular|not_roaming|none
  --battery-not-low boolean  run only when battery is not low, default true (at least Android O)
  --storage-not-low boolean  run only when storage is not low, default false (at least Android O)
  --charging boolean         run only when charging, default false
  --persisted boolean        should the job survive reboots, default false
  --trigger-content-uri text (at least Android N)
  --trigger-content-flag int default 1, (at least Android N)
"""  # noqa: E501 (the script's own text)

MIN_PERIOD_MS = 900_000  # JobInfo.getMinPeriodMillis() since Android N (API 24)
SCHEDULE_SUCCESS = 1  # JobScheduler.RESULT_SUCCESS
RACES = ("first", "second")

# JobInfo.Builder.setRequiredNetworkType builds a NetworkRequest; its toString() as an
# Android 10 phone printed it (termux/termux-api#368), capabilities in bit order.
_CAPABILITIES = {
    "any": "INTERNET&NOT_RESTRICTED&TRUSTED&VALIDATED",
    "unmetered": "NOT_METERED&INTERNET&NOT_RESTRICTED&TRUSTED&VALIDATED",
    "not_roaming": "INTERNET&NOT_RESTRICTED&TRUSTED&VALIDATED&NOT_ROAMING",
    "cellular": "INTERNET&NOT_RESTRICTED&TRUSTED&VALIDATED",
}


class JavaCrash(Exception):
    """A NullPointerException in the app: its output is lost (empty stdout)."""


def getopt_message(exc: getopt.GetoptError) -> str:
    """Python's getopt wording turned into util-linux getopt's."""
    opt, msg = exc.opt, exc.msg
    long_form = f"--{opt}" in msg
    name = f"--{opt}"
    if "not recognized" in msg:
        return f"unrecognized option '{name}'" if long_form else f"invalid option -- '{opt}'"
    if "requires argument" in msg:
        if long_form:
            return f"option '{name}' requires an argument"
        return f"option requires an argument -- '{opt}'"
    if "must not have an argument" in msg:
        return f"option '{name}' doesn't allow an argument"
    if "not a unique prefix" in msg:
        return f"option '{name}' is ambiguous"
    return msg


def parse_job_args(argv: Sequence[str]) -> dict[str, str]:
    """The shell front: GNU getopt, then only non-empty values become extras."""
    getopt = import_getopt()
    try:
        opts, rest = getopt.gnu_getopt(list(argv), JOB_SHORT, JOB_LONG)
    except getopt.GetoptError as exc:
        # getopt's message on stderr, then `set -e` ends the script with status 1.
        raise UsageError(f"{JOB_TOOL}: {getopt_message(exc)}") from None
    values: dict[str, str] = {}
    names = {
        "-s": "script", "--script": "script", "--job-id": "job_id", "-p": "pending",
        "--pending": "pending", "--cancel": "cancel", "--cancel-all": "cancel_all",
        "--period-ms": "period_ms", "--network": "network",
        "--battery-not-low": "battery_not_low", "--storage-not-low": "storage_not_low",
        "--charging": "charging", "--persisted": "persisted",
        "--trigger-content-flag": "trigger_content_flag",
        "--trigger-content-uri": "trigger_content_uri",
    }  # fmt: skip
    for opt, value in opts:
        if opt in ("-h", "--help"):
            raise ShowUsage(JOB_USAGE)
        values[names[opt]] = "1" if names[opt] in ("pending", "cancel", "cancel_all") else value
    if rest:
        raise TooManyArguments
    return {key: value for key, value in values.items() if value != ""}


class TooManyArguments(Exception):
    """Arguments left after the options: the script says so on stdout, exit 1."""


class JobRequest:
    """The intent extras as the app reads them, with its defaults."""

    def __init__(self, raw: dict[str, str]) -> None:
        self.script = raw.get("script")
        self.job_id = java_decode_int(raw["job_id"]) if "job_id" in raw else 0
        self.period_ms = java_decode_int(raw["period_ms"]) if "period_ms" in raw else 0
        self.network = raw.get("network")
        flags = {
            key: am_boolean(raw[key])
            for key in (
                "pending", "cancel", "cancel_all", "battery_not_low", "storage_not_low",
                "charging", "persisted", "trigger_content_flag",
            )
            if key in raw
        }  # fmt: skip
        self.pending = flags.get("pending", False)
        self.cancel = flags.get("cancel", False)
        self.cancel_all = flags.get("cancel_all", False)
        self.battery_not_low = flags.get("battery_not_low", True)  # the app's default
        self.storage_not_low = flags.get("storage_not_low", False)
        self.charging = flags.get("charging", False)
        self.persisted = flags.get("persisted", False)


def network_type(requested: str | None, sdk: int) -> str:
    """The app's switch: missing means any; unknown text falls to ``none``;
    cellular needs Android P, else unmetered."""
    if requested is None:
        return "any"
    if requested in ("any", "unmetered", "not_roaming"):
        return requested
    if requested == "cellular":
        return "cellular" if sdk >= 28 else "unmetered"
    return "none"


def network_description(network: str) -> str:
    """``JobInfo.getRequiredNetwork().toString()``; null for ``none``: the app's
    ``formatJobInfo`` then throws a NullPointerException (inference from the source)."""
    if network not in _CAPABILITIES:
        raise JavaCrash("getRequiredNetwork() is null")
    transports = "Transports: CELLULAR " if network == "cellular" else ""
    capabilities = _CAPABILITIES[network]
    caps = f"{transports}Capabilities: {capabilities} Uid: {APP_UID}"
    return f"NetworkRequest [ NONE id=0, [ {caps}] ]"


def format_job(job: Job, sdk: int) -> str:
    """``JobSchedulerAPI.formatJobInfo``: ``Job N: PATH<TAB>(...) (...)``."""
    description: list[str] = []
    if int(job.get("period_ms", 0)) > 0:
        description.append(f"(periodic: {int(job['period_ms'])}ms)")
    if job.get("charging"):
        description.append("(while charging)")
    if job.get("idle"):
        description.append("(while idle)")
    if job.get("persisted"):
        description.append("(persisted)")
    if sdk >= 26:
        if job.get("battery_not_low"):
            description.append("(battery not low)")
        if job.get("storage_not_low"):
            description.append("(storage not low)")
    if sdk >= 28:
        description.append(f"(network: {network_description(str(job.get('network')))})")
    return f"Job {int(job['job_id'])}: {job['script']}\t{' '.join(description)}"


def pending_text(jobs: Sequence[Job], sdk: int) -> str:
    """``displayPendingJobs``: one ``Pending Job ...`` line each, then ``println`` adds
    a newline after the last one (so the text ends in an empty line)."""
    if not jobs:
        return "No pending jobs\n"
    return "".join(f"Pending {format_job(job, sdk)}\n" for job in jobs) + "\n"


def stored_jobs(phone: Phone) -> list[Job]:
    """silent: ``getAllPendingJobs`` order is unspecified; the fake sorts by job id."""
    jobs = phone.get("jobs") or []
    return sorted((dict(j) for j in jobs if isinstance(j, dict)), key=lambda j: int(j["job_id"]))


def check_script(path: str) -> tuple[str, str]:
    """The app's file checks: ``(absolute path, "")`` or ``("", message)``.  A relative
    path is resolved against the app's working directory, ``/`` (inference)."""
    absolute = path if path.startswith("/") else "/" + path
    if not os.path.isfile(absolute):
        return "", f"No such file: {path}"
    if not os.access(absolute, os.R_OK):
        return "", f"Cannot read file: {path}"
    if not os.access(absolute, os.X_OK):
        return "", f"Cannot execute file: {path}"
    return absolute, ""


def race_pick(phone: Phone, first: str, second: str) -> str:
    """The app answers twice (two ``returnData`` calls) but termux-api.c accepts one
    connection: only one text comes out, on a phone whichever connects first
    (termux/termux-api#368).  Fixture ``job_scheduler_race`` picks: "first" (default)
    or "second"."""
    race = phone.get("job_scheduler_race", "first")
    if race not in RACES:
        fail(JOB_TOOL, f"fake tool: job_scheduler_race must be one of {RACES}: {race!r}", 2)
    return first if race == "first" else second


def job_scheduler(phone: Phone, request: JobRequest) -> str:
    """Act on the fixture (call under the lock) and return the text the tool prints."""
    sdk = sdk_level(phone)
    jobs = stored_jobs(phone)

    def listing() -> str:
        try:
            return pending_text(jobs, sdk)
        except JavaCrash:
            return ""

    if request.pending:
        return listing()
    if request.cancel_all:
        try:
            shown = pending_text(jobs, sdk)
        except JavaCrash:
            return ""  # the crash comes before cancelAll(): nothing is cancelled
        phone["jobs"] = []
        return race_pick(phone, shown, "Cancelling all jobs\n")
    if request.cancel:
        found = [job for job in jobs if int(job["job_id"]) == request.job_id]
        if not found:
            return f"No job {request.job_id} found\n"
        phone["jobs"] = [job for job in jobs if int(job["job_id"]) != request.job_id]
        try:
            return f"Cancelling {format_job(found[0], sdk)}\n"
        except JavaCrash:
            return ""  # thrown in the writer thread; cancel() still ran
    if request.script is None:
        return "No script path given\n"
    absolute, problem = check_script(request.script)
    if problem:
        return problem + "\n"
    period = request.period_ms
    if period > 0 and sdk >= 24 and period < MIN_PERIOD_MS:
        period = MIN_PERIOD_MS  # JobInfo.Builder.setPeriodic raises it (logcat warning only)
    job: Job = {
        "job_id": request.job_id,
        "script": absolute,
        "period_ms": max(period, 0),
        "network": network_type(request.network, sdk),
        "battery_not_low": request.battery_not_low if sdk >= 26 else False,
        "storage_not_low": request.storage_not_low if sdk >= 26 else False,
        "charging": request.charging,
        "idle": False,
        "persisted": request.persisted,
    }
    jobs = [j for j in jobs if int(j["job_id"]) != request.job_id] + [job]  # same id: replaced
    jobs.sort(key=lambda j: int(j["job_id"]))
    phone["jobs"] = jobs
    try:
        scheduled = f"Scheduling {format_job(job, sdk)} - response {SCHEDULE_SUCCESS}\n"
    except JavaCrash:
        return ""  # formatted after schedule(): the job is registered, the output lost
    return race_pick(phone, scheduled, listing())


def main_job_scheduler(argv: Sequence[str]) -> int:
    def body(phone: Phone) -> int:
        try:
            raw = parse_job_args(argv)
        except TooManyArguments:
            write_stdout(f"{JOB_TOOL}: too many arguments\n")
            return 1
        try:
            request = JobRequest(raw)
        except BadExtra as exc:
            reject_extra(str(exc))
        if not takes_effect(phone, JOB_TOOL):
            return respond(JOB_TOOL, phone, lambda: "")
        if request.pending:  # a read: no lock needed (the file is replaced atomically)
            text = job_scheduler(phone, request)
        else:
            text = update_phone(JOB_TOOL, lambda fresh: job_scheduler(fresh, request))
        return respond(JOB_TOOL, phone, lambda: text)

    return run_tool(JOB_TOOL, argv, body)


# --------------------------------------------------------------------------- wifi


WIFI_TOOL = "termux-wifi-connectioninfo"
WIFI_USAGE = (
    "Usage: termux-wifi-connectioninfo\nGet information about the current wifi connection.\n"
)
NO_MAC = "02:00:00:00:00:00"  # what Android 6+ gives apps instead of MAC addresses
UNKNOWN_SSID = "<unknown ssid>"


def wifi_info(phone: Phone) -> dict[str, Any] | None:
    """``WifiAPI.onReceiveWifiConnectionInfo``; None when there is no active network at
    all (``getLinkProperties(null)`` is null: the app throws, stdout stays empty).

    Fixture ``wifi``: ``connected`` (default true), ``ssid`` (default "HomeNet"),
    ``cellular`` (mobile data up, default true), optional ``ip``, ``bssid``, ``rssi``,
    ``frequency_mhz``, ``link_speed_mbps``.  Mode "permission" stands for Termux:API
    lacking ACCESS_FINE_LOCATION: the app does not ask (no error JSON), Android hides
    the SSID and BSSID.
    """
    wifi = phone.get("wifi") or {}
    connected = bool(wifi.get("connected", True))
    cellular = bool(wifi.get("cellular", True))
    located = mode_of(phone, WIFI_TOOL) != "permission"
    out: dict[str, Any] = {}
    if connected:
        out["ip"] = str(wifi.get("ip", "192.168.178.23"))
    elif cellular:
        out["ip"] = "10.151.38.207"  # the active network is mobile data: its address
    else:
        return None
    if connected:
        out.update(
            bssid=str(wifi.get("bssid", "a4:91:b1:0c:3e:52")) if located else NO_MAC,
            frequency_mhz=int(wifi.get("frequency_mhz", 5180)),
            link_speed_mbps=int(wifi.get("link_speed_mbps", 433)),
            mac_address=NO_MAC,
            network_id=int(wifi.get("network_id", 3)) if located else -1,
            rssi=int(wifi.get("rssi", -58)),
            ssid=str(wifi.get("ssid", "HomeNet")).replace('"', "") if located else UNKNOWN_SSID,
            ssid_hidden=bool(wifi.get("ssid_hidden", False)),
            supplicant_state="COMPLETED",
        )
    else:
        out.update(
            bssid=None,
            frequency_mhz=-1,
            link_speed_mbps=-1,
            mac_address=NO_MAC,
            network_id=-1,
            rssi=-127,
            ssid=UNKNOWN_SSID,
            ssid_hidden=False,
            supplicant_state="DISCONNECTED",
        )
    return out


def main_wifi_connectioninfo(argv: Sequence[str]) -> int:
    def body(phone: Phone) -> int:
        if argv and argv[0] in ("-h", "--help"):
            raise ShowUsage(WIFI_USAGE)
        if argv:
            raise UsageError(f"{WIFI_TOOL}: too many arguments", WIFI_USAGE)

        def produce() -> str:
            info = wifi_info(phone)
            return "" if info is None else android_json(info)

        if mode_of(phone, WIFI_TOOL) == "permission":
            write_stdout(produce())  # redacted, never the permission-error JSON
            return 0
        return respond(WIFI_TOOL, phone, produce)

    return run_tool(WIFI_TOOL, argv, body)


# --------------------------------------------------------------------------- battery


BATTERY_TOOL = "termux-battery-status"
BATTERY_USAGE = "Usage: termux-battery-status\nGet the status of the device battery.\n"
PLUGGED = ("UNPLUGGED", "PLUGGED_AC", "PLUGGED_USB", "PLUGGED_WIRELESS", "PLUGGED_DOCK")
STATUSES = ("CHARGING", "DISCHARGING", "FULL", "NOT_CHARGING", "UNKNOWN")
HEALTHS = ("GOOD", "COLD", "DEAD", "OVERHEAT", "OVER_VOLTAGE", "UNKNOWN", "UNSPECIFIED_FAILURE")


def float32(value: float) -> float:
    import struct

    return float(struct.unpack("f", struct.pack("f", value))[0])


def battery_state(phone: Phone) -> dict[str, Any]:
    """Fixture ``battery``: ``percentage`` (default 80), ``plugged`` (default
    "UNPLUGGED"), ``status`` (default: CHARGING when plugged, FULL at 100 when
    plugged, else DISCHARGING), optional ``health`` ("GOOD"), ``temperature`` (°C,
    default 27.4), ``current`` (µA; default +1200000 charging, -420000 otherwise)."""
    battery = phone.get("battery") or {}
    percentage = int(battery.get("percentage", 80))
    plugged = str(battery.get("plugged", "UNPLUGGED"))
    status = battery.get("status")
    if status is None:
        if plugged == "UNPLUGGED":
            status = "DISCHARGING"
        else:
            status = "FULL" if percentage >= 100 else "CHARGING"
    charging = status in ("CHARGING", "FULL")
    return {
        "percentage": percentage,
        "plugged": plugged,
        "status": str(status),
        "health": str(battery.get("health", "GOOD")),
        "temperature": float(battery.get("temperature", 27.4)),
        "current": int(battery.get("current", 1_200_000 if charging else -420_000)),
    }


def render_battery(phone: Phone) -> str:
    state = battery_state(phone)
    tenths = round(state["temperature"] * 10)  # EXTRA_TEMPERATURE: tenths of °C
    if not is_new(phone):
        # Old app: six keys; `int / 10.f` is a float widened to double, so 27.4 comes
        # out as 27.399999618530273; PLUGGED_DOCK was unknown to it: "PLUGGED_8".
        plugged = "PLUGGED_8" if state["plugged"] == "PLUGGED_DOCK" else state["plugged"]
        return android_json(
            {
                "health": state["health"],
                "percentage": state["percentage"],
                "plugged": plugged,
                "status": state["status"],
                "temperature": float32(tenths / 10),
                "current": state["current"],
            }
        )
    out: dict[str, Any] = {
        "present": True,
        "technology": "Li-ion",
        "health": state["health"],
        "plugged": state["plugged"],
        "status": state["status"],
        "temperature": round(tenths / 10, 1),
        "voltage": 3650 + 6 * state["percentage"],
        "current": state["current"],
        "current_average": state["current"],
        "percentage": state["percentage"],
        "level": state["percentage"],
        "scale": 100,
        "charge_counter": 42_000 * state["percentage"],
    }
    if sdk_level(phone) >= 34:
        out["cycle"] = 212
    return android_json(out)


def main_battery_status(argv: Sequence[str]) -> int:
    def body(phone: Phone) -> int:
        if argv and argv[0] in ("-h", "--help"):
            raise ShowUsage(BATTERY_USAGE)
        if argv:
            raise UsageError(f"{BATTERY_TOOL}: too many arguments", BATTERY_USAGE)
        return respond(BATTERY_TOOL, phone, lambda: render_battery(phone))

    return run_tool(BATTERY_TOOL, argv, body)


# --------------------------------------------------------------------------- wake lock


def _wake(tool: str, state: bool, argv: Sequence[str]) -> int:
    """termux-tools' scripts: ``am startservice`` to Termux itself (no Termux:API app
    involved, so no failure modes); no output.  silent: arguments print a usage on
    stdout, exit 1."""
    log_invocation(tool, argv)
    if argv:
        verb = "Acquire" if state else "Release"
        write_stdout(f"usage: {tool}\n{verb} the Termux wake lock.\n")
        return 1

    def change(phone: Phone) -> None:
        phone["wake_lock"] = state

    update_phone(tool, change)
    return 0


def main_wake_lock(argv: Sequence[str]) -> int:
    return _wake("termux-wake-lock", True, argv)


def main_wake_unlock(argv: Sequence[str]) -> int:
    return _wake("termux-wake-unlock", False, argv)
