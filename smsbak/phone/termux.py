"""Reading the phone through the Termux:API command-line tools.

Every fact this module relies on is in ``shared/reference/termux-api.md``: the
tools block forever when the Termux:API app is missing, exit 0 when the app
failed, report missing permissions as JSON with exit 0, and print each page of
``termux-sms-list`` oldest first. So: a timeout on every call, success decided
by "stdout parses as the JSON we expect", and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smsbak.errors import PermissionDenied, PhoneError
from smsbak.model import Box, Call, CallType, Sms
from smsbak.ports import (
    CallPage,
    Contact,
    Page,
    PhoneCall,
    PhoneSms,
    SmsPage,
    SourceCapabilities,
)

__all__ = ["CallPage", "Contact", "Page", "PhoneCall", "PhoneSms", "SmsPage", "TermuxPhone"]

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install the Termux:API app from the same store as Termux (F-Droid or GitHub), "
    "open it once, and run `pkg install termux-api`"
)
PERMISSION_PREFIX = "Please grant the following permission"
PERMISSION_NAMES = {
    "android.permission.READ_SMS": "SMS",
    "android.permission.READ_CONTACTS": "Contacts",
    "android.permission.READ_CALL_LOG": "Call logs",
}
STABLE_SORT = "--message-sort-order=date DESC, _id DESC"
RECEIVED_FORMAT = "%Y-%m-%d %H:%M:%S"
TYPE_NAMES = {
    "inbox": Box.INBOX,
    "sent": Box.SENT,
    "draft": Box.DRAFT,
    "outbox": Box.OUTBOX,
    "failed": Box.FAILED,
    "queued": Box.QUEUED,
}


class TermuxTools:
    """Runs Termux tools with a timeout and turns their quirks into errors."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.calls: list[str] = []

    def run(self, tool: str, args: Sequence[str] = ()) -> subprocess.CompletedProcess[bytes]:
        self.calls.append(tool)
        log.debug("running %s %s", tool, " ".join(args))
        try:
            process = subprocess.Popen(
                [tool, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError as error:
            raise PhoneError(f"{tool} is not installed", INSTALL_HINT) from error
        except OSError as error:
            raise PhoneError(f"cannot run {tool}: {error}", INSTALL_HINT) from error
        try:
            stdout, stderr = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            # termux-api leaves a child blocked on its socket: end the whole group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise PhoneError(
                f"{tool} did not answer within {self.timeout:g} s",
                f"the Termux:API app is missing or not running: {INSTALL_HINT}",
            ) from None
        return subprocess.CompletedProcess([tool, *args], process.returncode, stdout, stderr)

    def json(self, tool: str, args: Sequence[str] = ()) -> Any:
        """Run a tool whose answer must be JSON; anything else is an error, never "empty"."""
        result = self.run(tool, args)
        if result.returncode != 0:
            detail = result.stderr.decode("utf-8", "replace").strip().splitlines()
            raise PhoneError(
                f"{tool} failed with exit code {result.returncode}"
                + (f": {detail[-1]}" if detail else ""),
                "update Termux:API (`pkg upgrade termux-api`) and check the Termux:API app",
            )
        text = result.stdout.decode("utf-8", "replace").strip()
        if not text:
            raise PhoneError(
                f"{tool} printed nothing",
                "the Termux:API app failed; open it once, then try again "
                "(an empty answer is never taken as 'no messages')",
            )
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise PhoneError(
                f"{tool} printed something that is not complete JSON ({error.msg} at "
                f"character {error.pos} of {len(text)})",
                "the Termux:API app failed or was cut off; try again, and update Termux:API "
                "if it keeps happening",
            ) from None
        if isinstance(data, dict) and "error" in data:
            raise _error_from_answer(tool, str(data["error"]))
        return data


def _error_from_answer(tool: str, text: str) -> PhoneError:
    if text.startswith(PERMISSION_PREFIX):
        listed = text.split(":", 1)[1] if ":" in text else ""
        permissions = [p.strip() for p in listed.split(",") if p.strip()]
        names = ", ".join(PERMISSION_NAMES.get(p, p) for p in permissions) or "the asked"
        return PermissionDenied(
            f"Android denied {tool} the permission to read {names}: {', '.join(permissions)}",
            permissions,
            f"allow {names} for Termux:API in Android Settings > Apps > Termux:API > "
            "Permissions (or accept the prompt the phone shows now), then run again",
        )
    return PhoneError(f"{tool} reported an error: {text}", "check the Termux:API app")


@dataclass(frozen=True)
class PhoneZone:
    """The zone termux-sms-list's wall-clock times are read in, and where it came from.

    ``source`` is "getprop" (the phone said so), "remembered" (getprop gave no
    usable answer and the zone of an earlier run was taken), "TZ" or "system".
    """

    zone: tzinfo
    name: str | None
    source: str


def phone_timezone(
    tools: TermuxTools,
    environ: Mapping[str, str] | None = None,
    remembered: str | None = None,
) -> PhoneZone:
    """The phone's zone: getprop, else the one remembered, else ``TZ``, else the system's.

    termux-sms-list prints local wall-clock times without a zone marker, so
    this decides what instant each message has, and with it every message's
    fingerprint. A getprop that fails once must not silently move every message
    to another instant (the next backup would upload them all again under new
    Message-IDs), so the zone of an earlier run comes before ``TZ`` and the
    system's. TZ is often unset in Termux.
    """
    env = os.environ if environ is None else environ
    try:
        result = tools.run("getprop", ["persist.sys.timezone"])
        name = result.stdout.decode("utf-8", "replace").strip()
    except PhoneError:
        name = ""
    sources = (
        ("getprop", name),
        ("remembered", remembered or ""),
        ("TZ", env.get("TZ", "").lstrip(":")),
    )
    for source, candidate in sources:
        if candidate:
            try:
                return PhoneZone(ZoneInfo(candidate), candidate, source)
            except (ZoneInfoNotFoundError, ValueError):
                log.warning("unknown time zone %r from %s, trying the next", candidate, source)
    localtime = Path("/etc/localtime")
    if localtime.is_symlink() and "zoneinfo/" in str(localtime.resolve()):
        system_name = str(localtime.resolve()).split("zoneinfo/", 1)[1]
        try:
            return PhoneZone(ZoneInfo(system_name), system_name, "system")
        except (ZoneInfoNotFoundError, ValueError):
            pass
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return PhoneZone(zone, None, "system")


def parse_received(text: str, zone: tzinfo) -> int:
    """Local ``yyyy-MM-dd HH:mm:ss`` to epoch ms.

    In the repeated hour when clocks go back the wall time is ambiguous; the
    first occurrence (fold=0) is taken, consistently, so fingerprints are stable.
    """
    local = datetime.strptime(text, RECEIVED_FORMAT).replace(tzinfo=zone, fold=0)
    return int(local.timestamp()) * 1000


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_sms_row(row: Any, zone: tzinfo) -> PhoneSms | None:
    """One termux-sms-list object; None for rows that are not a usable SMS."""
    if not isinstance(row, dict):
        return None
    box = TYPE_NAMES.get(str(row.get("type", "")))
    received = row.get("received")
    if box is None or not isinstance(received, str):
        return None
    try:
        date_ms = parse_received(received, zone)
    except ValueError:
        return None
    # The new generation has "address"; both have "number" (the same value).
    address = row["address"] if "address" in row else row.get("number")
    body = row.get("body")
    read = row.get("read")
    sender = row.get("sender")
    sms = Sms(
        address=address if isinstance(address, str) else "",
        body=body if isinstance(body, str) else "",
        date_ms=date_ms,
        box=box,
        read=read if isinstance(read, bool) else None,
        thread_id=_optional_int(row.get("threadid")),
        android_id=_optional_int(row.get("_id")),
    )
    name = sender if box is Box.INBOX and isinstance(sender, str) and sender else None
    return PhoneSms(sms=sms, contact_name=name)


MAX_STEP_BACKS = 20
SEEN_PAGES = MAX_STEP_BACKS // 2 + 2
"""Pages whose identities a walk remembers: every page a step-back can reach again."""
CALL_TYPES = {
    "INCOMING": CallType.INCOMING,
    "OUTGOING": CallType.OUTGOING,
    "MISSED": CallType.MISSED,
    "VOICEMAIL": CallType.VOICEMAIL,
    "REJECTED": CallType.REJECTED,
    "BLOCKED": CallType.BLOCKED,
}


def parse_duration_text(text: str) -> int:
    """termux-call-log's "MM:SS", or "HH:MM:SS" past an hour, to seconds."""
    parts = [int(part) for part in text.split(":")]
    if not 2 <= len(parts) <= 3 or any(part < 0 for part in parts):
        raise ValueError(text)
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def parse_call_row(row: Any, zone: tzinfo) -> PhoneCall | None:
    """One termux-call-log object; None for rows that are not a usable call."""
    if not isinstance(row, dict):
        return None
    call_type = CALL_TYPES.get(str(row.get("type", "")))
    date, duration = row.get("date"), row.get("duration")
    if call_type is None or not isinstance(date, str) or not isinstance(duration, str):
        return None
    sim_id = row.get("sim_id")
    try:
        call = Call(
            number=str(row.get("phone_number") or ""),
            date_ms=parse_received(date, zone),
            duration_s=parse_duration_text(duration),
            type=call_type,
            sim_id=None if sim_id is None or sim_id == "" else str(sim_id),
        )
    except ValueError:
        return None
    name = row.get("name")
    known = isinstance(name, str) and name and name != "UNKNOWN_CALLER"
    return PhoneCall(call=call, contact_name=name if known else None)


class _Paged(Protocol):
    @property
    def identity(self) -> str: ...

    @property
    def date_ms(self) -> int: ...


P = TypeVar("P", bound=_Paged)


def _slid_past(page: Page[P], date_ms: int, ids: set[str]) -> bool:
    """Did this page start below the last page's end (rows deleted in between)?"""
    if not page.messages or not ids:
        return False
    if any(m.identity in ids for m in page.messages):
        return False
    return page.messages[0].date_ms < date_ms


def walk_newest_first(fetch: Callable[[int, int], Page[P]], page_size: int) -> Iterator[Page[P]]:
    """Walk a paged Termux tool's whole answer newest first; the caller stops when done.

    Rows with equal dates have no stable order across pages on the old app,
    so each next page starts again at the tie group that ended the previous
    one, and rows are de-duplicated by identity. If rows were deleted between
    two calls, they slide up and that tie group is no longer where it was: the
    page is read again from further up, so nothing is skipped. Rows arriving
    meanwhile only cause re-reads.
    """
    offset = 0
    # Identities of the last pages only: a re-read reaches back at most MAX_STEP_BACKS
    # half pages, so older pages cannot come round again, and a walk over 200,000 rows
    # holds a dozen pages of identities instead of all of them (the engine's spool
    # dedupes by fingerprint as well).
    recent: deque[set[str]] = deque(maxlen=SEEN_PAGES)
    boundary: tuple[int, set[str]] | None = None  # (date, identities) ending the last page
    while True:
        page = fetch(offset, page_size)
        for _ in range(MAX_STEP_BACKS):
            if boundary is None or offset == 0 or not _slid_past(page, *boundary):
                break
            offset = max(0, offset - max(1, page_size // 2))
            page = fetch(offset, page_size)
        fresh = [m for m in page.messages if not any(m.identity in s for s in recent)]
        recent.append({m.identity for m in fresh})
        yield Page(messages=fresh, rows=page.rows, unusable=page.unusable)
        if page.rows < page_size or not page.messages:
            return
        oldest = page.messages[-1].date_ms
        tie_group = [m for m in page.messages if m.date_ms == oldest]
        ties = len(tie_group)
        if ties >= page_size:
            # One tie group fills the page: the next page cannot overlap it, so its
            # absence there says nothing about deletions (checking it made a page
            # of 1, or a page-full of one second's messages, step back forever).
            boundary = None
            offset += page_size
        else:
            boundary = (oldest, {m.identity for m in tie_group})
            offset += page_size - ties


class TermuxPhone:
    """The phone as Termux:API shows it: inbox and sent SMS, contacts, time zone.

    A :class:`smsbak.ports.Source` that cannot read MMS (Termux:API has no tool for them).
    """

    identity = "termux"
    description = "Termux:API"
    capabilities = SourceCapabilities(sms=True, calls=True, mms=False)

    def __init__(
        self,
        tools: TermuxTools,
        generation: str | None = None,
        remembered_zone: str | None = None,
    ) -> None:
        self.tools = tools
        self.generation = generation
        self.remembered_zone = remembered_zone
        self._zone: PhoneZone | None = None
        self._contacts: list[Contact] | None = None

    @property
    def zone_info(self) -> PhoneZone:
        """Looked up once per phone object: getprop is a process start."""
        if self._zone is None:
            self._zone = phone_timezone(self.tools, remembered=self.remembered_zone)
        return self._zone

    @property
    def zone(self) -> tzinfo:
        return self.zone_info.zone

    @property
    def zone_looked_up(self) -> bool:
        """Whether anything needed the zone yet (a run that read nothing did not)."""
        return self._zone is not None

    def sms_page(self, offset: int, limit: int) -> SmsPage:
        """The newest ``limit`` messages after ``offset``, newest first."""
        args = ["-l", str(limit), "-o", str(offset)]
        if self.generation == "new":
            try:
                data = self.tools.json("termux-sms-list", [*args, STABLE_SORT])
            except PhoneError as error:
                if "exit code" not in error.message:
                    raise
                # An older script rejects the long option: remember and go without.
                self.generation = "old"
                data = self.tools.json("termux-sms-list", args)
        else:
            data = self.tools.json("termux-sms-list", args)
        if not isinstance(data, list):
            raise PhoneError(
                "termux-sms-list answered with something that is not a list of messages",
                "update Termux:API (`pkg upgrade termux-api`)",
            )
        if data and isinstance(data[0], dict):
            self.generation = "new" if "address" in data[0] else "old"
        parsed = [parse_sms_row(row, self.zone) for row in data]
        messages = [m for m in parsed if m is not None]
        # Pages come oldest first; ties keep their printed order reversed too.
        messages.reverse()
        return Page(messages=messages, rows=len(data), unusable=len(data) - len(messages))

    def sms_newest_first(self, page_size: int) -> Iterator[SmsPage]:
        """Every SMS newest first, in pages (see walk_newest_first)."""
        return walk_newest_first(self.sms_page, page_size)

    def call_page(self, offset: int, limit: int) -> CallPage:
        """The newest ``limit`` calls after ``offset``, newest first."""
        try:
            data = self.tools.json("termux-call-log", ["-l", str(limit), "-o", str(offset)])
        except PhoneError as error:
            if "printed nothing" not in error.message:
                raise
            raise PhoneError(
                "termux-call-log printed nothing",
                "Termux:API apps before 0.51 cannot read the call log on Android 11 and later: "
                "update the Termux:API app, or set call_log = false in config.toml",
            ) from None
        if not isinstance(data, list):
            raise PhoneError(
                "termux-call-log answered with something that is not a list of calls",
                "update Termux:API (`pkg upgrade termux-api`)",
            )
        parsed = [parse_call_row(row, self.zone) for row in data]
        calls = [c for c in parsed if c is not None]
        calls.reverse()  # printed oldest first
        return Page(messages=calls, rows=len(data), unusable=len(data) - len(calls))

    def calls_newest_first(self, page_size: int) -> Iterator[CallPage]:
        return walk_newest_first(self.call_page, page_size)

    def mms_newest_first(self, page_size: int) -> Iterator[Page[Any]]:
        """Termux:API cannot read MMS: no pages (``capabilities.mms`` is False)."""
        return iter(())

    def contacts(self) -> list[Contact]:
        """Looked up once per phone object (one run): termux-contact-list is a round trip
        through the Termux:API app that grows with the address book, and the SMS, MMS
        and call streams of one backup each ask. A failure is not kept: asked again."""
        if self._contacts is None:
            data = self.tools.json("termux-contact-list")
            if not isinstance(data, list):
                raise PhoneError("termux-contact-list did not answer with a list", INSTALL_HINT)
            self._contacts = [
                Contact(name=str(row["name"]), number=str(row["number"]))
                for row in data
                if isinstance(row, dict) and row.get("name") and row.get("number")
            ]
        return list(self._contacts)
