"""The fixture phone behind the fake Termux:API tools in ``tests/fakes/bin``.

A test builds a :class:`FakePhone` in a temporary directory, fills it, and runs the
code under test with ``phone.env()``, which puts the fakes first on ``PATH`` and
names the fixture file and the call log::

    phone = FakePhone(tmp_path)
    phone.add_contact("Anna", "+49 170 12345678")
    phone.add_sms(address="+4917012345678", body="hi", date=1_700_000_000_123)
    subprocess.run(["smsbak", ...], env=phone.env())
    assert len(phone.calls("termux-sms-list")) == 1
    assert not phone.sms_send_called()

Every mutating method saves the file at once (atomically) unless inside
``with phone.batch():``; the fakes read it afresh on every call.  For large corpora
use :meth:`FakePhone.add_many` (one save).

The fixture is a ``marshal`` file, ``phone.marshal`` (see ``_termux_common.py``): the
fakes run on the interpreter that runs the tests, which has marshal built in, while
``import json`` alone would double the start-up time of a fake call.  What is saved is
what a JSON round trip would give back (lists for tuples, string keys, new containers;
TypeError for other types), so the fakes see the types they always saw.  Keys:
``generation`` ("new"|"old"), ``timezone``, ``props``, ``modes`` (tool ->
ok|permission|hang|garbage|truncated|empty|exit1), ``missing_permissions`` (list for
all tools, or dict tool -> list; ``set_mode`` writes the dict form), ``messages``
(Android SMS rows, ``date`` in epoch ms), ``contacts``, ``calls``, and optionally
``api_app_installed`` (false drops the ``TERMUX_API_VERSION`` line from termux-info).

Privileged tools (``rish``, ``su``, ``content``, ``appops`` in ``bin``; a fake ``id``
in ``privileged-bin``, which rish/su put first on PATH; logic in ``_privileged.py``,
for content in ``_content.py``) read these keys, all optional:

- ``privileged``: ``{"rish": bool, "su": bool}``, default both false.  Without it
  ``rish`` says "Server is not running" and ``su`` "Permission denied" (exit 1).
- ``rish_mode`` / ``su_mode``: "ok" | "hang" (hang: block until killed, before
  anything else).  ``rish_call_cost`` / ``su_call_cost``: seconds slept first.
- ``rish_require_app_id``: true makes a missing ``RISH_APPLICATION_ID`` fatal as
  in real rish; by default the fake only warns on stderr.
- ``appops``: package -> op -> mode (allow|ignore|deny|default|foreground), e.g.
  ``{"com.android.shell": {"WRITE_SMS": "allow"}}``.  Anything but "allow" for
  com.android.shell's WRITE_SMS makes inserts/deletes on content://sms silently do
  nothing (as the shell user and, by choice, as root too).
- ``content_escaping``: "modern" (default; ``\\`` escapes the next character) |
  "legacy" (split on the first two colons, rest literal).
- ``content_fail_after``: N or null; once ``content_inserts_done`` (rows stored by
  ``content insert``, counted across calls) reaches N, every ``content`` call fails.
- ``content_call_cost``: seconds each ``content`` call sleeps first.
- ``content_error_exit``: exit status of a provider failure (default 1).

Background-mode fakes (``termux-job-scheduler``, ``termux-wifi-connectioninfo``,
``termux-battery-status``, ``termux-wake-lock`` / ``-unlock``; logic in
``_background.py``) read and write these keys, all optional:

- ``jobs``: the pending JobScheduler jobs, each ``{"job_id", "script" (absolute),
  "period_ms" (0 = once; under 900000 raised to 900000 as Android N+ does),
  "network" (any|unmetered|cellular|not_roaming|none), "battery_not_low",
  "storage_not_low", "charging", "idle", "persisted"}``.  Written by
  termux-job-scheduler under the fixture lock; :meth:`FakePhone.jobs` reads them,
  :meth:`FakePhone.reboot` drops those not persisted.
- ``job_scheduler_race``: "first" (default) | "second": which of the app's two
  answers reaches stdout when it sends two (scheduling: the "Scheduling ..." line or
  the pending list; ``--cancel-all``: the pending list or "Cancelling all jobs").
- ``wifi``: ``{"connected": bool (default true), "ssid": str (default "HomeNet"),
  "cellular": bool (mobile data up, default true)}``, optionally ``ip``, ``bssid``,
  ``rssi``, ``frequency_mhz``, ``link_speed_mbps``, ``network_id``.  Disconnected:
  ``supplicant_state`` "DISCONNECTED", ``ssid`` "<unknown ssid>"; disconnected
  without mobile data: empty stdout (the app throws).  Mode "permission" for
  termux-wifi-connectioninfo means no location permission: SSID/BSSID hidden.
- ``battery``: ``{"percentage": 80, "plugged": "UNPLUGGED"|"PLUGGED_AC"|"PLUGGED_USB"|
  "PLUGGED_WIRELESS"|"PLUGGED_DOCK", "status": "DISCHARGING"|"CHARGING"|"FULL"|
  "NOT_CHARGING"|"UNKNOWN"}`` plus optional ``health``, ``temperature`` (°C),
  ``current`` (µA).  The "new" generation prints the app's long key set, the "old"
  one ``health, percentage, plugged, status, temperature, current``.
- ``wake_lock``: bool, set by termux-wake-lock / termux-wake-unlock.

MMS (read by ``content`` only; termux-sms-list never shows them): ``mms``, a list of
pdu rows ``{"_id", "thread_id", "date" (epoch SECONDS), "date_sent" (seconds, 0),
"msg_box" (1 inbox, 2 sent, 3 drafts, 4 outbox), "m_type" (128 send request, 132
retrieved), "read", "sub_id", "sub" (subject or null), ... any other pdu column,
"addresses": [{"_id", "address", "type" (137 from, 151 to, 130 cc, 129 bcc),
"charset"}], "parts": [{"_id", "seq", "ct", "name", "chset", "cid", "cl", "text"
(text parts), "data_file" (binary parts: host file with the bytes, relative to the
fixture's folder or absolute)}]}``.  ``content`` reports a binary part's ``_data``
as ``/data/user/0/com.android.providers.telephony/app_parts/PART_<_id>`` (a part's
own ``_data`` key wins) and ``content read --uri content://mms/part/<_id>`` writes
the file's bytes.  In a sent MMS the user's own address is the placeholder
``insert-address-token`` (type 137).  Build rows with :meth:`FakePhone.add_mms`.

``content`` also writes MMS as mms-provider.md describes (all silent, as the real
tool): ``insert`` into ``content://mms[/inbox|sent]`` (``_id`` and unknown keys
dropped, ``date`` in seconds defaulting to now, non-inbox rows read, ``creator`` the
caller; refused when the values carry ``address``), ``content://mms/<id>/part``
(``text/plain`` and ``application/smil`` keep ``text``; any other type gets a
provider-made ``_data`` ``app_parts/PART_<millis>[_<basename of cl>]`` and an empty
host file ``mms-parts/PART_<_id>``; a caller's ``_data`` is refused;
``content://mms/part`` refuses inserts) and ``content://mms/<id>/addr``; ``write
--uri content://mms/part/<id>`` copies stdin into the part's file; ``delete --uri
content://mms/<id>`` removes the message with its parts, files and addresses. All of
it only while com.android.shell's WRITE_SMS app-op is "allow". ``query --uri
content://mms-sms/threadID?recipient=A&recipient=B`` prints ``Row: 0 _id=N``, the
thread of exactly that set (kept in ``threads``: ``[{"_id", "recipients"}]``; one
address: its SMS thread), made when missing. Shell and root read ``content://mms``
through the restricted view (``msg_box`` 1 and 2, no ``m_type`` 130; the word SELECT
refused). More keys: ``subscriptions`` (list of the user's sub ids; with it, on SDK
34+, a pdu insert with another ``sub_id`` than those or -1 is refused and such rows
are invisible), ``content_has_write`` (false: Android 6, ``write`` is an unsupported
operation), ``content_write_fail_after`` (bytes: ``write`` fails after that many,
the file half written), ``appops_frozen`` (true: ``appops set`` answers but changes
nothing, as when a ROM keeps the op denied), ``content_strict_projection`` (true: MMS
queries take column names only, ``hex(col)`` is an invalid column).
``content`` runs only under rish/su (they export ``FAKE_UID`` 2000 / 0); it reads
and writes ``messages`` and ``calls`` of this same file, so what it inserts is what
termux-sms-list then lists.  The fakes replace the file atomically under a lock on
``phone.marshal.lock``; this object notices such outside writes and re-reads the file
before its next access (outside ``batch()``), so ``phone.messages`` shows them.
"""

from __future__ import annotations

import ast
import functools
import marshal
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import EllipsisType
from typing import Any

from tests.fakes._termux_common import BULK_FIELDS, SETTINGS_SUFFIX, json_key

BIN_DIR = Path(__file__).resolve().parent / "bin"
PHONE_FILE = "phone.marshal"
LOG_FILE = "termux-calls.log"
SMS_SEND_MARKER = "sms-send-CALLED"
BROWSER_LOG = "fake-browser.log"


MODES = ("ok", "permission", "hang", "garbage", "truncated", "empty", "exit1")
GENERATIONS = ("new", "old")
FIELDS = frozenset(
    {
        "generation",
        "timezone",
        "props",
        "modes",
        "missing_permissions",
        "messages",
        "contacts",
        "calls",
        "mms",
        "api_app_installed",
        "privileged",
        "rish_mode",
        "su_mode",
        "rish_call_cost",
        "su_call_cost",
        "rish_require_app_id",
        "appops",
        "appops_frozen",
        "content_escaping",
        "content_fail_after",
        "content_inserts_done",
        "content_call_cost",
        "content_error_exit",
        "content_has_write",
        "content_strict_projection",
        "content_write_fail_after",
        "subscriptions",
        "threads",
        "jobs",
        "job_scheduler_race",
        "wifi",
        "battery",
        "wake_lock",
    }
)
PRIVILEGED_MODES = ("ok", "hang")
BATTERY_PLUGGED = ("UNPLUGGED", "PLUGGED_AC", "PLUGGED_USB", "PLUGGED_WIRELESS", "PLUGGED_DOCK")
BATTERY_STATUSES = ("CHARGING", "DISCHARGING", "FULL", "NOT_CHARGING", "UNKNOWN")
JOB_RACES = ("first", "second")
APPOP_MODES = ("allow", "ignore", "deny", "default", "foreground")
CONTENT_ESCAPINGS = ("modern", "legacy")
SHELL_PACKAGE = "com.android.shell"
PRIVILEGED_BIN = Path(__file__).resolve().parent / "privileged-bin"

# Android's Telephony.TextBasedSmsColumns.MESSAGE_TYPE_*
INBOX, SENT, DRAFT, OUTBOX, FAILED, QUEUED = 1, 2, 3, 4, 5, 6
# MMS: Telephony.BaseMmsColumns.MESSAGE_BOX_* are 1-4 as INBOX..OUTBOX above;
# PduHeaders message types and address types (content://mms/<id>/addr ``type``).
M_SEND_REQ, M_RETRIEVE_CONF = 128, 132
PDU_FROM, PDU_TO, PDU_CC, PDU_BCC = 137, 151, 130, 129
INSERT_ADDRESS_TOKEN = "insert-address-token"  # the user's own address in sent MMS
CHARSET_UTF8 = 106
MMS_PARTS_DIR = "mms-parts"  # under the phone directory: files of binary parts
# CallLog.Calls.*_TYPE
INCOMING, OUTGOING, MISSED, VOICEMAIL, REJECTED, BLOCKED = 1, 2, 3, 4, 5, 6

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_millis(value: int | datetime) -> int:
    """Epoch milliseconds of an int (taken as ms already) or an aware datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: give an aware one (or epoch milliseconds)")
        return (value - _EPOCH) // timedelta(milliseconds=1)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"date must be epoch milliseconds (int) or aware datetime: {value!r}")
    return value


def _as_json_would(value: Any) -> Any:
    """``value`` as ``json.loads(json.dumps(value))`` gives it back, without the text:
    new dicts and lists throughout (marshal would keep tuples, and share an object met
    twice), keys made strings as JSON writes them, TypeError where JSON would raise."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    # Containers, then subclasses of the scalars, in the order json's encoder checks.
    if isinstance(value, dict):
        return {json_key(k): _as_json_would(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_json_would(v) for v in value]
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(int.__repr__(value))
    if isinstance(value, float):
        return float(float.__repr__(value))
    raise TypeError(f"Object of type {kind.__name__} is not JSON serializable")


def _mms_thread_key(mms: Mapping[str, Any]) -> str | None:
    """The thread an MMS belongs to, as FakePhone keys threads: its addresses other
    than the user's placeholder; one address is that address's SMS thread."""
    others = sorted(
        {
            str(a.get("address"))
            for a in mms.get("addresses") or ()
            if a.get("address") not in (None, INSERT_ADDRESS_TOKEN)
        }
    )
    if not others:
        return None
    return others[0] if len(others) == 1 else "~".join(others)


FAKES_PYTHON_DIR = Path(__file__).resolve().parent / "python-for-fakes"
"""Holds only a checked-in ``python3`` for the fakes' ``#!/usr/bin/env python3``.

Every fake call is a process start, thousands per suite run: that ``python3`` starts
the interpreter running the tests without ``site`` (-S), since the venv's .pth files
and the editable install's finder cost ~16 ms of a start, and the fakes use the
standard library only. It is a file in the repository, not one written per test: a
file written while another thread forks can be held open for writing by the child,
and exec'ing it then fails with ETXTBSY (exit 126), as a threaded test once showed.
"""


@functools.cache
def _fakes_tzpath() -> str:
    """zoneinfo's path for the fakes: the system's zones first, then the tzdata
    package's (for machines without /usr/share/zoneinfo), as smsbak itself finds them
    with site, which -S leaves out."""
    import zoneinfo

    import tzdata

    return os.pathsep.join([*zoneinfo.TZPATH, str(Path(tzdata.__file__).parent / "zoneinfo")])


class FakePhone:
    """Builds the fixture file and the environment for a test."""

    def __init__(
        self, directory: Path, *, generation: str = "new", timezone: str = "Europe/Berlin"
    ) -> None:
        if generation not in GENERATIONS:
            raise ValueError(f"generation must be one of {GENERATIONS}: {generation!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path: Path = self.directory / PHONE_FILE
        self.log_path: Path = self.directory / LOG_FILE
        self.data = {
            "generation": generation,
            "timezone": timezone,
            "props": {"ro.build.version.sdk": "34"},
            "modes": {},
            "messages": [],
            "contacts": [],
            "calls": [],
        }
        self._batch_depth = 0
        self._stamp: tuple[int, int, int] | None = None
        self._reindex()
        self.save()

    # ------------------------------------------------------------------ storage

    def save(self) -> None:
        """Write the fixture atomically (temporary file + ``os.replace``), as JSON
        would have stored it (see the module docstring), and its settings copy."""
        data = _as_json_would(self.data)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(marshal.dumps(data))
        os.replace(tmp, self.path)
        self._stamp = self._disk_stamp()
        settings = {k: v for k, v in data.items() if k not in BULK_FIELDS}
        small = self.path.with_name(f".{self.path.name}.{os.getpid()}.settings.tmp")
        small.write_bytes(marshal.dumps(settings))
        os.replace(small, Path(str(self.path) + SETTINGS_SUFFIX))

    def reload(self) -> None:
        """Re-read the fixture file (after writing it other than through this object)."""
        stamp = self._disk_stamp()
        self.data = self.on_disk()
        self._stamp = stamp
        self._reindex()

    def on_disk(self, *, settings: bool = False) -> dict[str, Any]:
        """The fixture as the fakes read it from the file (``settings``: the small
        copy rish, su and getprop read), leaving this object as it is."""
        path = Path(str(self.path) + SETTINGS_SUFFIX) if settings else self.path
        data: dict[str, Any] = marshal.loads(path.read_bytes())
        return data

    @property
    def data(self) -> dict[str, Any]:
        """The fixture; re-read first when a fake (content, appops) rewrote the file."""
        if self._batch_depth == 0 and self._stamp is not None:
            stamp = self._disk_stamp()
            if stamp is not None and stamp != self._stamp:
                self.reload()
        return self._data

    @data.setter
    def data(self, value: dict[str, Any]) -> None:
        self._data = value

    def _sync(self) -> None:
        """Re-read the file if a fake rewrote it (the ``data`` getter does that)."""
        _ = self.data

    def _disk_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    @contextmanager
    def batch(self) -> Iterator[FakePhone]:
        """Defer saving until the block ends (for many small edits)."""
        self._sync()
        self._batch_depth += 1
        try:
            yield self
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                self.save()

    def _changed(self) -> None:
        if self._batch_depth == 0:
            self.save()

    def _reindex(self) -> None:
        messages = self.data.get("messages") or []
        self._next_id = max((int(m["_id"]) for m in messages), default=0) + 1
        self._threads: dict[str | None, int] = {}
        for m in messages:
            self._threads.setdefault(m.get("address"), int(m.get("thread_id", 0)))
        self._next_thread = max((int(m.get("thread_id", 0)) for m in messages), default=0) + 1
        calls = self.data.get("calls") or []
        self._next_call_id = max((int(c["_id"]) for c in calls), default=0) + 1
        for mms in self.data.get("mms") or []:  # MMS threads share the numbering
            if isinstance(mms.get("thread_id"), int):
                self._threads.setdefault(_mms_thread_key(mms), mms["thread_id"])
                self._next_thread = max(self._next_thread, mms["thread_id"] + 1)
        for thread in self.data.get("threads") or []:  # made by content's threadID lookup
            self._next_thread = max(self._next_thread, int(thread["_id"]) + 1)

    # ------------------------------------------------------------------ content

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The SMS rows (live list; call :meth:`save` after editing rows in place)."""
        rows: list[dict[str, Any]] = self.data["messages"]
        return rows

    @property
    def contacts(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.data["contacts"]
        return rows

    @property
    def call_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.data["calls"]
        return rows

    def _thread_for(self, address: str | None) -> int:
        thread = self._threads.get(address)
        if thread is None:
            thread = self._next_thread
            self._threads[address] = thread
        self._next_thread = max(self._next_thread, thread + 1)
        return thread

    def _make_sms(
        self,
        *,
        address: str | None,
        body: str | None,
        date: int | datetime,
        type: int = INBOX,
        read: bool = True,
        thread_id: int | None = None,
        _id: int | None = None,
    ) -> dict[str, Any]:
        if thread_id is None:
            thread_id = self._thread_for(address)
        else:
            self._threads.setdefault(address, thread_id)
            self._next_thread = max(self._next_thread, thread_id + 1)
        if _id is None:
            _id = self._next_id
        self._next_id = max(self._next_id, _id + 1)
        return {
            "_id": _id,
            "thread_id": thread_id,
            "address": address,
            "body": body,
            "date": to_millis(date),
            "type": int(type),
            "read": 1 if read else 0,
        }

    def add_sms(
        self,
        *,
        address: str | None,
        body: str | None,
        date: int | datetime,
        type: int = INBOX,
        read: bool = True,
        thread_id: int | None = None,
    ) -> dict[str, Any]:
        """Add one SMS row (next ``_id``; one thread per address unless given); save."""
        self._sync()
        row = self._make_sms(
            address=address, body=body, date=date, type=type, read=read, thread_id=thread_id
        )
        self.messages.append(row)
        self._changed()
        return row

    def add_many(self, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Bulk :meth:`add_sms`: each mapping has its keyword arguments (``_id``
        optional too); one save at the end."""
        self._sync()
        made = [self._make_sms(**dict(row)) for row in rows]
        self.messages.extend(made)
        self._changed()
        return made

    def clear_messages(self) -> None:
        self.messages.clear()
        self._reindex()
        self._changed()

    @property
    def mms_rows(self) -> list[dict[str, Any]]:
        """The MMS rows with their ``addresses`` and ``parts`` (live list; call
        :meth:`save` after editing in place)."""
        rows: list[dict[str, Any]] = self.data.setdefault("mms", [])
        return rows

    def add_mms(
        self,
        *,
        date_s: int,
        box: int,
        m_type: int | None = None,
        addresses: Sequence[tuple[str, int]],
        parts: Sequence[Mapping[str, Any]],
        read: bool = True,
        sub_id: int | None = None,
        thread_id: int | None = None,
        subject: str | None = None,
        date_sent_s: int = 0,
    ) -> dict[str, Any]:
        """Add one MMS (``date_s`` in epoch SECONDS; ``box`` 1-4; ``m_type``
        defaults to 132 retrieved in the inbox, else 128 send request); save.

        ``addresses``: ``(address, type)`` pairs (types PDU_FROM/TO/CC/BCC; for a
        sent MMS give ``(INSERT_ADDRESS_TOKEN, PDU_FROM)`` yourself), charset 106.
        ``parts``: dicts of part columns (``ct`` required; ``seq`` defaults to the
        position, ``chset`` to 106 for ``text``), with the content as ``text``
        (str) or ``data`` (bytes: written to ``mms-parts/PART_<id>`` under the phone
        directory, referenced by ``data_file``).  Ids continue after the highest
        in use; ``thread_id`` defaults to the thread of the same set of other
        addresses (one address: that address's SMS thread), else a new one."""
        self._sync()
        mms_rows = self.mms_rows
        mms_id = max((int(m["_id"]) for m in mms_rows), default=0) + 1
        addr_id = 1 + max(
            (int(a["_id"]) for m in mms_rows for a in m.get("addresses") or () if "_id" in a),
            default=0,
        )
        part_id = 1 + max(
            (int(p["_id"]) for m in mms_rows for p in m.get("parts") or () if "_id" in p),
            default=0,
        )
        if m_type is None:
            m_type = M_RETRIEVE_CONF if box == INBOX else M_SEND_REQ
        row: dict[str, Any] = {
            "_id": mms_id,
            "thread_id": None,
            "date": int(date_s),
            "date_sent": int(date_sent_s),
            "msg_box": int(box),
            "m_type": int(m_type),
            "read": 1 if read else 0,
            "sub_id": -1 if sub_id is None else int(sub_id),
            "sub": subject,
            "addresses": [],
            "parts": [],
        }
        for offset, (address, kind) in enumerate(addresses):
            row["addresses"].append(
                {
                    "_id": addr_id + offset,
                    "address": address,
                    "type": int(kind),
                    "charset": CHARSET_UTF8,
                }
            )
        for offset, given in enumerate(parts):
            spec = dict(given)
            if "ct" not in spec:
                raise ValueError(f"MMS part without 'ct': {given!r}")
            data = spec.pop("data", None)
            part: dict[str, Any] = {"_id": part_id + offset, "seq": offset}
            for key in ("name", "chset", "cid", "cl"):
                part[key] = None
            if isinstance(spec.get("text"), str) and spec.get("chset") is None:
                part["chset"] = CHARSET_UTF8
            part.update(spec)
            if data is not None:
                if not isinstance(data, (bytes, bytearray, memoryview)):
                    raise TypeError(f"MMS part 'data' must be bytes: {type(data).__name__}")
                folder = self.directory / MMS_PARTS_DIR
                folder.mkdir(exist_ok=True)
                target = folder / f"PART_{part['_id']}"
                target.write_bytes(bytes(data))
                part["data_file"] = str(target)
            row["parts"].append(part)
        if thread_id is None:
            thread_id = self._thread_for(_mms_thread_key(row))
        else:
            self._threads.setdefault(_mms_thread_key(row), thread_id)
            self._next_thread = max(self._next_thread, thread_id + 1)
        row["thread_id"] = thread_id
        mms_rows.append(row)
        self._changed()
        return row

    def add_contact(self, name: str, number: str) -> None:
        self.contacts.append({"name": name, "number": number})
        self._changed()

    def add_call(
        self,
        *,
        number: str | None,
        date: int | datetime,
        type: int = INCOMING,
        duration: int = 0,
        name: str | None = None,
        sim_id: str | None = "1",
    ) -> dict[str, Any]:
        """Add a call-log row (``duration`` in seconds); save; return it."""
        self._sync()
        row = {
            "_id": self._next_call_id,
            "number": number,
            "name": name,
            "type": int(type),
            "date": to_millis(date),
            "duration": int(duration),
            "sim_id": sim_id,
        }
        self._next_call_id += 1
        self.call_rows.append(row)
        self._changed()
        return row

    # ------------------------------------------------------------------ behaviour

    def set_mode(
        self, tool: str, mode: str, missing_permissions: Sequence[str] | None = None
    ) -> None:
        """Make ``tool`` fail: ok | permission | hang | garbage | truncated | empty |
        exit1.  ``missing_permissions`` (mode "permission") defaults to what the tool
        needs."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}: {mode!r}")
        self.data.setdefault("modes", {})[tool] = mode
        missing = self.data.get("missing_permissions")
        if not isinstance(missing, dict):
            missing = {}
            self.data["missing_permissions"] = missing
        if missing_permissions is None:
            missing.pop(tool, None)
        else:
            missing[tool] = list(missing_permissions)
        self._changed()

    def set(self, **fields: Any) -> None:
        """Set top-level fields: generation, timezone, props, api_app_installed, ..."""
        unknown = set(fields) - FIELDS
        if unknown:
            raise ValueError(f"unknown fixture fields: {sorted(unknown)}")
        if "generation" in fields and fields["generation"] not in GENERATIONS:
            raise ValueError(f"generation must be one of {GENERATIONS}")
        for key in ("rish_mode", "su_mode"):
            if key in fields and fields[key] not in PRIVILEGED_MODES:
                raise ValueError(f"{key} must be one of {PRIVILEGED_MODES}")
        if "content_escaping" in fields and fields["content_escaping"] not in CONTENT_ESCAPINGS:
            raise ValueError(f"content_escaping must be one of {CONTENT_ESCAPINGS}")
        if "job_scheduler_race" in fields and fields["job_scheduler_race"] not in JOB_RACES:
            raise ValueError(f"job_scheduler_race must be one of {JOB_RACES}")
        self.data.update(fields)
        if {"messages", "calls", "mms", "threads"} & set(fields):
            self._reindex()
        self._changed()

    # ------------------------------------------------------------------ privileged

    def enable_privileged(self, rish: bool = True, su: bool = False) -> None:
        """Make Shizuku's ``rish`` (shell user, uid 2000) and/or root ``su`` work."""
        self.data["privileged"] = {"rish": bool(rish), "su": bool(su)}
        self._changed()

    def set_appop(self, mode: str, *, package: str = SHELL_PACKAGE, op: str = "WRITE_SMS") -> None:
        """Set an app-op mode as ``appops set`` would (default: the shell's WRITE_SMS)."""
        if mode not in APPOP_MODES:
            raise ValueError(f"mode must be one of {APPOP_MODES}: {mode!r}")
        self.data.setdefault("appops", {}).setdefault(package, {})[op] = mode
        self._changed()

    def appop(self, *, package: str = SHELL_PACKAGE, op: str = "WRITE_SMS") -> str:
        """The current mode ("default" when never set), as the fakes left it."""
        ops = (self.data.get("appops") or {}).get(package) or {}
        return str(ops.get(op, "default"))

    def set_content(
        self,
        *,
        escaping: str | None = None,
        fail_after: int | EllipsisType | None = ...,
        call_cost: float | None = None,
    ) -> None:
        """Configure the fake ``content`` tool; omitted arguments stay as they are.
        Setting ``fail_after`` (an int, or None for never) restarts the insert count."""
        if escaping is not None:
            if escaping not in CONTENT_ESCAPINGS:
                raise ValueError(f"escaping must be one of {CONTENT_ESCAPINGS}: {escaping!r}")
            self.data["content_escaping"] = escaping
        if not isinstance(fail_after, EllipsisType):
            self.data["content_fail_after"] = fail_after
            self.data["content_inserts_done"] = 0
        if call_cost is not None:
            self.data["content_call_cost"] = float(call_cost)
        self._changed()

    @property
    def content_inserts_done(self) -> int:
        """Rows stored by ``content insert`` since the count was last reset."""
        return int(self.data.get("content_inserts_done") or 0)

    # ------------------------------------------------------------------ background

    def set_wifi(
        self, connected: bool, ssid: str = "HomeNet", *, cellular: bool = True, **extra: Any
    ) -> None:
        """What termux-wifi-connectioninfo reports: connected to ``ssid`` or not;
        ``cellular`` says whether mobile data is up (matters when disconnected);
        ``extra``: ip, bssid, rssi, frequency_mhz, link_speed_mbps, network_id."""
        allowed = {"ip", "bssid", "rssi", "frequency_mhz", "link_speed_mbps", "network_id"}
        unknown = set(extra) - allowed
        if unknown:
            raise ValueError(f"unknown wifi fields: {sorted(unknown)}")
        self.data["wifi"] = {
            "connected": bool(connected), "ssid": ssid, "cellular": bool(cellular), **extra
        }
        self._changed()

    def set_battery(
        self,
        percentage: int,
        plugged: str = "UNPLUGGED",
        status: str | None = None,
        **extra: Any,
    ) -> None:
        """What termux-battery-status reports.  ``status`` defaults to DISCHARGING
        unplugged, CHARGING plugged (FULL at 100); ``extra``: health, temperature
        (°C), current (µA)."""
        if not 0 <= int(percentage) <= 100:
            raise ValueError(f"percentage must be 0..100: {percentage!r}")
        if plugged not in BATTERY_PLUGGED:
            raise ValueError(f"plugged must be one of {BATTERY_PLUGGED}: {plugged!r}")
        if status is not None and status not in BATTERY_STATUSES:
            raise ValueError(f"status must be one of {BATTERY_STATUSES}: {status!r}")
        unknown = set(extra) - {"health", "temperature", "current"}
        if unknown:
            raise ValueError(f"unknown battery fields: {sorted(unknown)}")
        battery: dict[str, Any] = {"percentage": int(percentage), "plugged": plugged, **extra}
        if status is not None:
            battery["status"] = status
        self.data["battery"] = battery
        self._changed()

    def jobs(self) -> list[dict[str, Any]]:
        """The pending termux-job-scheduler jobs (copies), by job id."""
        rows = [dict(job) for job in self.data.get("jobs") or ()]
        return sorted(rows, key=lambda job: int(job["job_id"]))

    def job(self, job_id: int) -> dict[str, Any] | None:
        return next((job for job in self.jobs() if int(job["job_id"]) == job_id), None)

    @property
    def wake_lock(self) -> bool:
        """Whether Termux holds its wake lock (termux-wake-lock / -unlock)."""
        return bool(self.data.get("wake_lock", False))

    def reboot(self) -> None:
        """What a reboot does to the fixture: jobs not persisted are gone, and the
        wake lock is released (Termux:Boot scripts are not run)."""
        self.data["jobs"] = [job for job in self.data.get("jobs") or () if job.get("persisted")]
        self.data["wake_lock"] = False
        self._changed()

    def run_job(
        self,
        job_id: int,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a pending job's script as JobScheduler would, with this phone's
        environment (or ``env``); KeyError when no such job is pending."""
        job = self.job(job_id)
        if job is None:
            raise KeyError(f"no pending job {job_id}")
        return subprocess.run(
            [str(job["script"])],
            env=dict(env) if env is not None else self.env(),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # ------------------------------------------------------------------ running

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """A copy of ``os.environ`` (or ``base``) with the fakes first on PATH and
        SMSBAK_FAKE_PHONE / SMSBAK_FAKE_LOG set.

        Second on PATH comes a directory holding only a ``python3`` for the fakes'
        ``#!/usr/bin/env python3``: see :data:`FAKES_PYTHON_DIR`.
        """
        env = dict(os.environ if base is None else base)
        path = env.get("PATH") or os.defpath
        env["PATH"] = os.pathsep.join([str(BIN_DIR), str(FAKES_PYTHON_DIR), path])
        env["SMSBAK_FAKES_PYTHON"] = sys.executable
        env["SMSBAK_FAKES_TZPATH"] = _fakes_tzpath()
        env["SMSBAK_FAKE_PHONE"] = str(self.path)
        env["SMSBAK_FAKE_LOG"] = str(self.log_path)
        return env

    def run(
        self,
        tool: str,
        *args: str,
        timeout: float = 10,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run one fake (stdout/stderr captured as bytes)."""
        return subprocess.run(
            [str(BIN_DIR / tool), *args],
            env=dict(env) if env is not None else self.env(),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        """The logged invocations ``{"tool", "argv", "t"}``, optionally of one tool.

        The fakes log a line ``repr((tool, argv, t))`` each (see log_invocation in
        _termux_common.py); repr escapes every line break, so lines split on "\\n"."""
        try:
            text = self.log_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        entries = []
        for line in text.split("\n"):
            if line.strip():
                name, argv, t = ast.literal_eval(line)
                if tool is None or name == tool:
                    entries.append({"tool": name, "argv": argv, "t": t})
        return entries

    def sms_send_called(self) -> bool:
        return (self.log_path.parent / SMS_SEND_MARKER).exists()

    @property
    def browser_log_path(self) -> Path:
        """Where the fake browser of termux-open-url reports its requests."""
        return self.log_path.parent / BROWSER_LOG
