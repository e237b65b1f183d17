"""Shared machinery of the fakes in ``tests/fakes/bin``, and the fake getprop.

Every fake is a thin script that puts ``tests/fakes`` on ``sys.path`` and calls one
``main_*`` function of this module, ``_termux_api`` (the other Termux:API tools),
``_privileged``, ``_content`` or ``_background``; all of them use what is here: the
fixture phone, the call log, and the failure modes, usage errors and JSON output of
the Termux:API tools.  Behaviour follows ``/work/shared/reference/termux-api.md``
(quirks included); choices where the reference is silent are marked "silent:" in
comments.  Each module is loaded by only the fakes that use it: loading a module costs
a fake call about a tenth of a millisecond per hundred lines.

The fixture phone is a ``marshal`` file named by ``SMSBAK_FAKE_PHONE`` (FakePhone in
phone.py writes it with the interpreter the fakes run on); it is read afresh on every
call.  Every invocation appends one line, ``repr((tool, argv, time))``, to
``SMSBAK_FAKE_LOG`` (when set).  Stdlib only.
"""

from __future__ import annotations

import marshal
import os
import sys
import time

# Imported by every fake call (a process each): typing, collections and datetime cost
# milliseconds a call, so names used only in annotations are imported for checkers.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType
    from typing import Any, NoReturn
# Heavier modules (pathlib, dataclasses, zoneinfo, tempfile, http.client ...) are
# imported where needed: every fake call pays the start-up time.  So are json, re and
# signal, which each bring enum (json by way of re): a few milliseconds a call, on a
# start of about ten.  Where a pattern was on the path of every call, plain str
# methods do exactly what it did.

Phone = dict[str, "Any"]
Row = dict[str, "Any"]

PHONE_ENV = "SMSBAK_FAKE_PHONE"
LOG_ENV = "SMSBAK_FAKE_LOG"

MODES = ("ok", "permission", "hang", "garbage", "truncated", "empty", "exit1")
GENERATIONS = ("new", "old")

READ_SMS = "android.permission.READ_SMS"
READ_CONTACTS = "android.permission.READ_CONTACTS"
READ_CALL_LOG = "android.permission.READ_CALL_LOG"
SEND_SMS = "android.permission.SEND_SMS"

NEEDED_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "termux-sms-list": (READ_SMS, READ_CONTACTS),
    "termux-contact-list": (READ_CONTACTS,),
    "termux-call-log": (READ_CALL_LOG,),
    "termux-sms-send": (SEND_SMS,),
}

GARBAGE = (
    "java.lang.IllegalStateException: Couldn't read row 0, col -1 from CursorWindow.\n"
    "\tat android.database.CursorWindow.nativeGetLong(Native Method)\n"
    "\tat com.termux.api.util.ResultReturner$2.run(ResultReturner.java:123)\n"
)


class UsageError(Exception):
    """A command-line error detected by the (shell) front script: exit 1."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


class ShowUsage(Exception):
    """``-h``: print the usage text on stdout and exit 0."""

    def __init__(self, usage: str) -> None:
        super().__init__(usage)
        self.usage = usage


# --------------------------------------------------------------------------- basics


def log_invocation(tool: str, args: Sequence[str]) -> None:
    """Append ``repr((tool, argv, t))`` and a newline to $SMSBAK_FAKE_LOG (one write,
    O_APPEND); FakePhone.calls reads it back with ``ast.literal_eval``.  Not JSON, whose
    import costs about as much as the rest of a light call: repr is built in, escapes
    line breaks and unpaired surrogates, and gives the float of ``t`` as JSON did."""
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    line = repr((tool, list(args), time.time())) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def fail(tool: str, message: str, code: int = 1) -> NoReturn:
    sys.stderr.write(f"{tool}: {message}\n")
    sys.stderr.flush()
    sys.exit(code)


SETTINGS_SUFFIX = ".settings"
"""Beside the fixture, FakePhone writes its small part (no messages, contacts, calls) so
tools that need no data (getprop) answer at once, as the real ones do on a phone."""
BULK_FIELDS = frozenset({"messages", "contacts", "calls", "mms", "threads"})
"""What the small part leaves out (FakePhone's save uses these too)."""


def load_phone(tool: str, *, settings_only: bool = False) -> Phone:
    """Read the fixture phone afresh; exit 1 when it is not configured or unreadable."""
    name = os.environ.get(PHONE_ENV)
    if not name:
        fail(tool, f"fake Termux:API tool: ${PHONE_ENV} is not set (test set-up error)")
    if settings_only and os.path.exists(name + SETTINGS_SUFFIX):
        name += SETTINGS_SUFFIX
    try:
        with open(name, "rb") as handle:
            data = marshal.loads(handle.read())
    except (OSError, EOFError, ValueError, TypeError) as exc:
        fail(tool, f"fake Termux:API tool: cannot read fixture phone {name}: {exc}")
    if not isinstance(data, dict):
        fail(tool, f"fake Termux:API tool: fixture phone {name} is not a dict")
    generation = data.get("generation", "new")
    if generation not in GENERATIONS:
        fail(tool, f"fake Termux:API tool: bad generation {generation!r} in {name}")
    return data


class FixtureLock:
    """An exclusive ``flock`` on ``<fixture>.lock`` around a read-modify-write, for every
    fake that changes the phone."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.fd = -1

    def __enter__(self) -> FixtureLock:
        import fcntl

        name = os.environ.get(PHONE_ENV)
        if not name:
            fail(self.tool, f"fake tool: ${PHONE_ENV} is not set (test set-up error)")
        self.fd = os.open(name + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing releases the lock


def _replace(path: str, data: bytes) -> None:
    directory, base = os.path.split(path)
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def save_phone(phone: Phone) -> None:
    """Write the fixture back atomically in FakePhone's format, and its small settings
    copy too, which rish, su and getprop read, so a setting a fake changed (appops, a
    job) is never stale there (hold :class:`FixtureLock`).  What the fakes store is
    JSON-shaped already (they make no tuples, and no object twice), so unlike
    FakePhone's save this one dumps the dict as it is."""
    name = os.environ[PHONE_ENV]
    _replace(name, marshal.dumps(phone))
    settings = {k: v for k, v in phone.items() if k not in BULK_FIELDS}
    _replace(name + SETTINGS_SUFFIX, marshal.dumps(settings))


def is_new(phone: Phone) -> bool:
    return bool(phone.get("generation", "new") == "new")


def write_stdout(text: str) -> None:
    # Raw UTF-8 whatever the locale; unpaired surrogates become "?" as with Java's
    # UTF-8 writer.
    sys.stdout.buffer.write(text.encode("utf-8", errors="replace"))
    sys.stdout.buffer.flush()


def android_json(value: Any) -> str:
    """Serialise like ``android.util.JsonWriter`` with ``setIndent("  ")``.

    Two-space indent, ``": "`` after keys, non-ASCII raw; JsonWriter additionally
    escapes U+2028/U+2029 (Python does not), empty arrays are ``[]``.  A newline
    ends the output.  The text is ``json.dumps(value, indent=2, ensure_ascii=False)``'s,
    written by :func:`json_text`: importing json (with re and enum) would cost these
    fakes as much as all else they do, or more.
    """
    try:
        from _json import encode_basestring  # what json.dumps uses for ensure_ascii=False
    except ImportError:  # an interpreter without json's C part
        from json.encoder import py_encode_basestring as encode_basestring
    out: list[str] = []
    json_text(value, "\n", out, encode_basestring)
    text = "".join(out)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"


def json_text(value: Any, newline: str, out: list[str], encode: Callable[[str], str]) -> None:
    """Append what ``json.dumps(value, indent=2, ensure_ascii=False)`` writes to ``out``
    (``newline``: a newline and the current indent), piece by piece as json.encoder's
    ``_make_iterencode`` lays it out, strings escaped by ``encode`` (json's own);
    types checked in its order, TypeError where it raises one."""
    if isinstance(value, str):
        out.append(encode(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_json_float(value))
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        out.append("[" + inner)
        for index, item in enumerate(value):
            if index:
                out.append("," + inner)
            json_text(item, inner, out, encode)
        out.append(newline + "]")
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        out.append("{" + inner)
        first = True
        for key, item in value.items():
            if first:
                first = False
            else:
                out.append("," + inner)
            out.append(encode(json_key(key)) + ": ")
            json_text(item, inner, out, encode)
        out.append(newline + "}")
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _json_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == float("-inf"):
        return "-Infinity"
    return float.__repr__(value)


def json_key(key: Any) -> str:
    """A dict key as JSON writes it (in the order its encoder checks); FakePhone's save
    turns keys into these too, as a JSON round trip would."""
    if isinstance(key, str):
        return str.__str__(key)
    if isinstance(key, float):
        return _json_float(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def permission_error_json(missing: Sequence[str]) -> str:
    word = "permission" if len(missing) == 1 else "permissions"
    message = f"Please grant the following {word} to use this command: " + " ,".join(missing)
    return android_json({"error": message})


def missing_permissions(phone: Phone, tool: str) -> list[str]:
    """``missing_permissions`` may be a list (all tools) or a dict tool -> list."""
    raw = phone.get("missing_permissions")
    if isinstance(raw, dict):
        raw = raw.get(tool)
    if raw is None:
        return list(NEEDED_PERMISSIONS.get(tool, ()))
    return [str(p) for p in raw]


def mode_of(phone: Phone, tool: str) -> str:
    modes = phone.get("modes") or {}
    mode = modes.get(tool, "ok") if isinstance(modes, dict) else "ok"
    if mode not in MODES:
        fail(tool, f"fake Termux:API tool: unknown mode {mode!r} (one of {', '.join(MODES)})", 2)
    return str(mode)


def hang() -> NoReturn:
    """Block forever like termux-api waiting on its socket; default signal dispositions."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        time.sleep(3600)


def respond(tool: str, phone: Phone, produce: Callable[[], str]) -> int:
    """Apply the tool's failure mode, or print what ``produce`` returns."""
    mode = mode_of(phone, tool)
    if mode == "permission":
        missing = missing_permissions(phone, tool)
        if missing:
            write_stdout(permission_error_json(missing))
            return 0
        mode = "ok"
    if mode == "hang":
        hang()
    if mode == "garbage":
        write_stdout(GARBAGE)
        return 0
    if mode == "empty":
        return 0
    if mode == "exit1":
        sys.stderr.write(f"{tool}: fake failure (mode exit1): termux-api returned an error\n")
        return 1
    text = produce()
    if mode == "truncated":
        text = text[: len(text) // 2]
    write_stdout(text)
    return 0


def sdk_level(phone: Phone) -> int:
    props = phone.get("props") or {}
    try:
        return int(str(props.get("ro.build.version.sdk", "34")))
    except ValueError:
        return 34


def is_uint(text: str) -> bool:
    """``[0-9]+\\Z`` matches: ASCII digits only, at least one."""
    return text.isascii() and text.isdigit()


def is_int(text: str) -> bool:
    """``-?[0-9]+\\Z`` matches."""
    return is_uint(text[1:] if text[:1] == "-" else text)


def import_getopt() -> ModuleType:
    """The getopt module, imported without gettext's: getopt passes its messages
    through ``gettext.gettext``, which gives them back unchanged as long as there is no
    catalog for its default domain (Python ships none), and importing gettext brings re
    and enum, a few milliseconds of every call that parses options.  A stand-in that
    gives the messages back is in ``sys.modules`` only while getopt is imported."""
    if "getopt" not in sys.modules and "gettext" not in sys.modules:
        stand_in = type(sys)("gettext")
        stand_in.gettext = lambda message: message  # type: ignore[attr-defined]
        sys.modules["gettext"] = stand_in
        try:
            import getopt
        finally:
            del sys.modules["gettext"]
    import getopt

    return getopt


def run_tool(
    tool: str,
    argv: Sequence[str],
    body: Callable[[Phone], int],
    *,
    settings_only: bool = False,
) -> int:
    """Log the call, load the phone, run ``body`` turning script errors into exit 1."""
    log_invocation(tool, argv)
    phone = load_phone(tool, settings_only=settings_only)
    try:
        return body(phone)
    except ShowUsage as usage:
        write_stdout(usage.usage)
        return 0
    except UsageError as exc:
        sys.stderr.write(exc.message.rstrip("\n") + "\n")
        if exc.usage:
            sys.stderr.write(exc.usage)
        return 1


# --------------------------------------------------------------------------- getprop


def phone_props(phone: Phone) -> dict[str, str]:
    props = {str(k): "" if v is None else str(v) for k, v in (phone.get("props") or {}).items()}
    props["persist.sys.timezone"] = str(phone.get("timezone") or "")
    return props


def main_getprop(argv: Sequence[str]) -> int:
    tool = "getprop"

    def body(phone: Phone) -> int:
        props = phone_props(phone)

        def produce() -> str:
            if not argv:
                return "".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items()))
            value = props.get(argv[0], "")
            if not value and len(argv) > 1:
                value = argv[1]
            return value + "\n"

        return respond(tool, phone, produce)

    return run_tool(tool, argv, body, settings_only=True)
