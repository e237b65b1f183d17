"""The privileged side of the fake phone: Shizuku's ``rish``, Magisk-style ``su``,
the ``appops`` tool that only works under them, and the ``id`` they put first on PATH.
The scripts in ``bin`` (and ``privileged-bin/id``) call one ``main_*`` function of this
module; ``content``, the other tool that needs them, is in ``_content``, whose size
every rish and su call would otherwise load.

Behaviour follows section 1 of /work/shared/reference/restore-formats.md; where it is
silent the choice is marked "silent:".  Fixture keys are documented in phone.py.  Kept
apart from ``_termux_api`` so the Termux:API fakes do not load this on every call.
Stdlib only; rish, su and id start in about the time of a bare interpreter.
"""

from __future__ import annotations

import os
import sys
import time

from _termux_common import (
    FixtureLock,
    Phone,
    fail,
    hang,
    load_phone,
    log_invocation,
    save_phone,
    write_stdout,
)

# Imported by every fake call (a process each): typing, collections and datetime cost
# milliseconds a call, so names used only in annotations are imported for checkers.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

UID_ENV = "FAKE_UID"  # set by rish (2000) and su (0) for the command they run
SHELL_UID, ROOT_UID = 2000, 0
APP_UID = 10234  # silent: the uid error messages give Termux
SHELL_PACKAGE = "com.android.shell"
PRIVILEGED_MODES = ("ok", "hang")
APPOP_MODES = ("allow", "ignore", "deny", "default", "foreground")
PRIVILEGED_BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "privileged-bin")
MAGISK_VERSION = ("27.0:MAGISK", "27000")


def _float_field(phone: Phone, key: str) -> float:
    try:
        return max(float(phone.get(key) or 0), 0.0)
    except (TypeError, ValueError):
        return 0.0


def pay_call_cost(phone: Phone, key: str) -> None:
    """Sleep ``phone[key]`` seconds (the start-up of a Java process on a phone)."""
    cost = _float_field(phone, key)
    if cost > 0:
        time.sleep(cost)


def privileged_flags(phone: Phone) -> dict[str, bool]:
    raw = phone.get("privileged") or {}
    if not isinstance(raw, dict):
        raw = {}
    return {"rish": bool(raw.get("rish", False)), "su": bool(raw.get("su", False))}


def caller_uid() -> int | None:
    """The uid a privileged fake runs as: $FAKE_UID (set by rish/su), else None."""
    value = os.environ.get(UID_ENV, "")
    return int(value) if value.isdigit() else None


def appop_mode(phone: Phone, package: str, op: str) -> str:
    ops = (phone.get("appops") or {}).get(package) or {}
    mode = ops.get(op, "default") if isinstance(ops, dict) else "default"
    return str(mode) if mode in APPOP_MODES else "default"


def _exec_shell(args: Sequence[str], uid: int) -> NoReturn:
    """Replace this process by ``/bin/sh ARGS`` running "as" ``uid``: FAKE_UID set,
    privileged-bin (the fake ``id``) first on PATH, everything else inherited."""
    env = dict(os.environ)
    env[UID_ENV] = str(uid)
    path = env.get("PATH") or os.defpath
    if path.split(os.pathsep)[0] != PRIVILEGED_BIN:
        env["PATH"] = os.pathsep.join([PRIVILEGED_BIN, path])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve("/bin/sh", ["sh", *args], env)


# --------------------------------------------------------------------------- rish


RISH_NOT_RUNNING = (
    'rish: Server is not running. Start Shizuku first (fake: "privileged": '
    '{"rish": true} in the fixture).\n'
)
RISH_APP_ID_MISSING = (
    "RISH_APPLICATION_ID is not set, set this environment variable to the id of "
    "current application (package name)\n"
)


def main_rish(argv: Sequence[str]) -> int:
    """``rish [-c CMD]``: ``sh`` as the shell user (uid 2000) through Shizuku.

    All arguments go to ``/bin/sh`` as they are (rish is an ``sh`` front), so the
    exit status is the command's; without ``-c`` commands come from stdin.
    ``RISH_APPLICATION_ID`` missing: real rish aborts; the fake only warns on stderr
    and goes on, unless the fixture has ``"rish_require_app_id": true``.
    """
    tool = "rish"
    log_invocation(tool, argv)
    phone = load_phone(tool, settings_only=True)  # its flags, not the messages
    mode = phone.get("rish_mode", "ok")
    if mode not in PRIVILEGED_MODES:
        fail(tool, f"fake rish: unknown rish_mode {mode!r} (one of {PRIVILEGED_MODES})", 2)
    pay_call_cost(phone, "rish_call_cost")
    if mode == "hang":  # started from the background on Android 10+
        hang()
    if not os.environ.get("RISH_APPLICATION_ID"):
        sys.stderr.write(RISH_APP_ID_MISSING)
        if phone.get("rish_require_app_id"):
            return 1
        sys.stderr.write("rish (fake): going on without it; real rish would stop here\n")
    if not privileged_flags(phone)["rish"]:
        sys.stderr.write(RISH_NOT_RUNNING)
        return 1
    _exec_shell(argv, SHELL_UID)


# --------------------------------------------------------------------------- su


SU_USAGE = """\
MagiskSU (fake)

Usage: su [options] [-] [user [argument...]]

Options:
  -c, --command COMMAND         Pass COMMAND to the invoked shell
  -h, --help                    Display this help message and exit
  -, -l, --login                Pretend the shell to be a login shell
  -m, -p,
  --preserve-environment        Preserve the entire environment
  -s, --shell SHELL             Use SHELL instead of the default /system/bin/sh
  -v, --version                 Display version number and exit
  -V                            Display version code and exit
  -mm, -M,
  --mount-master                Force run in the global mount namespace
"""
_SU_USERS = {"root": ROOT_UID, "shell": SHELL_UID}


def main_su(argv: Sequence[str]) -> int:
    """``su [-c CMD] [user]``: ``sh`` as root when the fixture grants root.

    As with MagiskSU, ``-c`` takes every remaining argument (joined by spaces);
    without ``-c`` commands come from stdin.  A user argument (``root``, ``shell``
    or a number) sets the uid.  Not granted: ``Permission denied``, exit 1.
    """
    tool = "su"
    log_invocation(tool, argv)
    phone = load_phone(tool, settings_only=True)  # its flags, not the messages
    mode = phone.get("su_mode", "ok")
    if mode not in PRIVILEGED_MODES:
        fail(tool, f"fake su: unknown su_mode {mode!r} (one of {PRIVILEGED_MODES})", 2)
    args = list(argv)
    uid = ROOT_UID
    command: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in ("-c", "--command"):
            command = " ".join(args[i:])
            break
        if arg in ("-h", "--help"):
            write_stdout(SU_USAGE)
            return 0
        if arg in ("-v", "--version"):
            write_stdout(MAGISK_VERSION[0] + "\n")
            return 0
        if arg == "-V":
            write_stdout(MAGISK_VERSION[1] + "\n")
            return 0
        if arg in (
            "-",
            "-l",
            "--login",
            "-m",
            "-p",
            "--preserve-environment",
            "-mm",
            "-M",
            "--mount-master",
        ):
            continue
        if arg in ("-s", "--shell"):
            i += 1  # silent: the shell is always /bin/sh here
            continue
        if arg.startswith("-"):
            sys.stderr.write(f"su: invalid option -- '{arg.lstrip('-')}'\n" + SU_USAGE)
            return 1
        if arg.isdigit():
            uid = int(arg)
        elif arg in _SU_USERS:
            uid = _SU_USERS[arg]
        else:
            sys.stderr.write(f"su: unknown user: {arg}\n")
            return 1
    pay_call_cost(phone, "su_call_cost")
    if mode == "hang":
        hang()
    if not privileged_flags(phone)["su"]:
        sys.stderr.write("Permission denied\n")
        return 1
    _exec_shell(["-c", command] if command is not None else [], uid)


# --------------------------------------------------------------------------- id


_ID_NAMES = {ROOT_UID: "root", SHELL_UID: "shell"}
_ID_GROUPS = {
    ROOT_UID: [(0, "root")],
    SHELL_UID: [
        (2000, "shell"),
        (1004, "input"),
        (1007, "log"),
        (1011, "adb"),
        (1015, "sdcard_rw"),
        (1028, "sdcard_r"),
        (3001, "net_bt_admin"),
        (3002, "net_bt"),
        (3003, "inet"),
        (3006, "net_bw_stats"),
    ],
}
_ID_CONTEXT = {ROOT_UID: "u:r:magisk:s0", SHELL_UID: "u:r:shell:s0"}


def _exec_real_id(argv: Sequence[str]) -> NoReturn:
    mine = os.path.realpath(PRIVILEGED_BIN)
    for directory in (os.environ.get("PATH") or os.defpath).split(os.pathsep):
        if not directory or os.path.realpath(directory) == mine:
            continue
        candidate = os.path.join(directory, "id")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            os.execv(candidate, ["id", *argv])
    os.execv("/usr/bin/id", ["id", *argv])


def main_id(argv: Sequence[str]) -> int:
    """``id`` as seen under rish/su: $FAKE_UID decides.  Handles ``-u -g -G -n``
    (combined or not) and no arguments; anything else, or no $FAKE_UID, runs the
    real ``id``.  Not logged (a helper, not a phone tool)."""
    uid = caller_uid()
    if uid is None:
        _exec_real_id(argv)
    flags: set[str] = set()
    for arg in argv:
        if not arg.startswith("-") or arg.startswith("--") or len(arg) < 2:
            _exec_real_id(argv)
        flags.update(arg[1:])
    if not flags <= set("ugGnr"):
        _exec_real_id(argv)
    name = _ID_NAMES.get(uid, str(uid))
    groups = _ID_GROUPS.get(uid, [(uid, name)])
    names = "n" in flags
    if "u" in flags or "g" in flags:
        write_stdout((name if names else str(uid)) + "\n")
    elif "G" in flags:
        write_stdout(" ".join(g[1] if names else str(g[0]) for g in groups) + "\n")
    else:
        group_text = ",".join(f"{gid}({gname})" for gid, gname in groups)
        context = _ID_CONTEXT.get(uid, "u:r:shell:s0")
        write_stdout(f"uid={uid}({name}) gid={uid}({name}) groups={group_text} context={context}\n")
    return 0


# --------------------------------------------------------------------------- appops


APPOPS_USAGE = """\
AppOps service (appops) commands:
  help
    Print this help text.
  set [--user <USER_ID>] [--uid] <PACKAGE | UID> <OP> <MODE>
    Set the mode for a particular application and operation.
  get [--user <USER_ID>] [--uid] <PACKAGE | UID> [<OP>]
    Return the mode for a particular application and optional operation.
  reset [--user <USER_ID>] [<PACKAGE>]
    Reset the given application or all applications to default modes.
  <MODE> is one of allow, ignore, deny, or default
"""
_OP_NUMBERS = {"14": "READ_SMS", "15": "WRITE_SMS", "16": "RECEIVE_SMS", "20": "SEND_SMS"}
_OP_NAME_DELETE = str.maketrans("", "", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _op_name(raw: str) -> str | None:
    if raw in _OP_NUMBERS:
        return _OP_NUMBERS[raw]
    name = raw[len("android:") :].upper() if raw.startswith("android:") else raw
    # [A-Z][A-Z0-9_]*\Z
    return name if "A" <= name[:1] <= "Z" and not name.translate(_OP_NAME_DELETE) else None


def main_appops(argv: Sequence[str]) -> int:
    """``appops set|get|reset`` over the fixture's ``appops`` (package -> op -> mode).

    Only under rish/su ($FAKE_UID); otherwise a ``Security exception`` on stderr.
    Usage errors: ``Error: ...`` plus the usage on stderr, exit 1 (silent: the real
    ``cmd appops`` exits 255 on errors)."""
    tool = "appops"
    log_invocation(tool, argv)
    load_phone(tool)

    def usage_error(message: str) -> int:
        sys.stderr.write(f"Error: {message}\n{APPOPS_USAGE}")
        return 1

    args = list(argv)
    if not args or args[0] in ("help", "-h", "--help"):
        if args:
            write_stdout(APPOPS_USAGE)
            return 0
        return usage_error("no command given")
    command, rest = args[0], []
    skip = False
    for i, arg in enumerate(args[1:], start=1):
        if skip:
            skip = False
            continue
        if arg == "--user":
            if i + 1 >= len(args):
                return usage_error("--user needs a value")
            skip = True
            continue
        if arg == "--uid":
            continue
        rest.append(arg)
    if command not in ("set", "get", "reset"):
        return usage_error(f"unknown command '{command}'")
    uid = caller_uid()
    if uid is None:
        sys.stderr.write(
            f"Security exception: uid {APP_UID} does not have "
            "android.permission.MANAGE_APP_OPS_MODES.\n\n"
            "java.lang.SecurityException: uid 10234 does not have "
            "android.permission.MANAGE_APP_OPS_MODES.\n"
            "\tat com.android.server.appop.AppOpsService.enforceManageAppOpsModes"
            "(AppOpsService.java:2210)\n"
        )
        return 1
    if command in ("set", "reset") and load_phone(tool).get("appops_frozen"):
        return 0  # fake: the ROM answers but keeps the mode (the app-op is not granted)
    if command == "set":
        if len(rest) != 3:
            return usage_error("set needs <PACKAGE> <OP> <MODE>")
        package, raw_op, mode = rest
        op = _op_name(raw_op)
        if op is None:
            return usage_error(f"Unknown operation string: {raw_op}")
        if mode not in APPOP_MODES:
            return usage_error(f"Mode {mode} is not valid")
        with FixtureLock(tool):
            phone = load_phone(tool)
            appops = phone.setdefault("appops", {})
            appops.setdefault(package, {})[op] = mode
            save_phone(phone)
        return 0
    if command == "reset":
        if len(rest) > 1:
            return usage_error("reset takes at most one <PACKAGE>")
        with FixtureLock(tool):
            phone = load_phone(tool)
            appops = phone.setdefault("appops", {})
            for package in [rest[0]] if rest else list(appops):
                appops[package] = {op: "default" for op in appops.get(package) or {}}
            save_phone(phone)
        return 0
    if not 1 <= len(rest) <= 2:
        return usage_error("get needs <PACKAGE> [<OP>]")
    phone = load_phone(tool)
    package = rest[0]
    ops = (phone.get("appops") or {}).get(package) or {}
    if len(rest) == 2:
        op = _op_name(rest[1])
        if op is None:
            return usage_error(f"Unknown operation string: {rest[1]}")
        names = [op]
    else:
        names = list(ops)
    lines = [f"{op}: {appop_mode(phone, package, op)}" for op in names]
    lines = [line for line in lines if not line.endswith(": default")]
    write_stdout("\n".join(lines) + "\n" if lines else "No operations.\n")
    return 0
