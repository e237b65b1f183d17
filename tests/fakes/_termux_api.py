"""The fake Termux:API executables in ``tests/fakes/bin`` but getprop: termux-sms-list,
termux-contact-list, termux-call-log, termux-info, termux-open-url, termux-sms-send,
termux-notification and termux-notification-remove, each a thin script that calls one
``main_*`` function of this module.  Behaviour follows
``/work/shared/reference/termux-api.md`` (quirks included); choices where the reference
is silent are marked "silent:" in comments.

What every fake shares (the fixture phone, the call log, failure modes, the JSON
writer) is in ``_termux_common``; this module is apart from it so the fakes that need
only that (getprop, rish, su, id, appops, content, the background fakes) do not load
it on every call.  Stdlib only.
"""

from __future__ import annotations

import os
import sys
import time

from _termux_common import (
    LOG_ENV,
    Phone,
    Row,
    ShowUsage,
    UsageError,
    android_json,
    import_getopt,
    is_int,
    is_new,
    is_uint,
    load_phone,
    log_invocation,
    phone_props,
    respond,
    run_tool,
    sdk_level,
    write_stdout,
)

# Imported by every fake call (a process each): see _termux_common.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import random
    import re
    from collections.abc import Callable, Iterable, Sequence
    from datetime import tzinfo

BROWSER_ENV = "SMSBAK_FAKE_BROWSER"
SMS_SEND_MARKER = "sms-send-CALLED"
BROWSER_LOG = "fake-browser.log"

API_APP_VERSION = {"new": "0.53", "old": "0.50.1"}
API_PACKAGE_VERSION = {"new": "0.59.1", "old": "0.58.0"}


# --------------------------------------------------------------------------- dates


_ZONES: dict[str, tzinfo] = {}


def get_zone(name: str | None) -> tzinfo:
    """The phone's zone; "" (or an unknown name, as Android falls back to GMT) is UTC."""
    key = name or ""
    zone = _ZONES.get(key)
    if zone is None:
        from datetime import UTC

        zone = UTC
        if key:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                zone = ZoneInfo(key)
            except (ZoneInfoNotFoundError, ValueError):
                zone = UTC
        _ZONES[key] = zone
    return zone


def local_time(ms: int, zone: tzinfo) -> str:
    """``yyyy-MM-dd HH:mm:ss`` of epoch milliseconds, milliseconds dropped (floored)."""
    from datetime import datetime

    t = datetime.fromtimestamp(int(ms) // 1000, zone)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    )


def parse_int(tool: str, option: str, value: str, usage: str) -> int:
    if not is_int(value):
        raise UsageError(f"{tool}: the {option} value '{value}' is not a number", usage)
    return int(value)


# --------------------------------------------------------------------------- contacts


_DIALABLE_DELETE = str.maketrans("", "", "0123456789+-()./")


def is_dialable(text: str) -> bool:
    """``[0-9+\\-().\\s/]*[0-9][0-9+\\-().\\s/]*\\Z`` matches: nothing but ASCII digits,
    ``+-()./`` and whitespace (``\\s`` of a str pattern is what str.isspace says), and at
    least one digit."""
    rest = text.translate(_DIALABLE_DELETE)
    return (not rest or rest.isspace()) and any("0" <= ch <= "9" for ch in text)


def _digits(number: str) -> str:
    return "".join(ch for ch in number if "0" <= ch <= "9")


class ContactIndex:
    """Phone-number lookup like Android's PhoneLookup, simplified.

    Numbers compare by their digits; they also match when one digit string is a
    suffix of the other and the shorter one has at least 7 digits.  Addresses that
    are not phone numbers (e.g. ``"VODAFONE"``) match only by exact string.  The
    first contact (fixture order) that matches wins; exact digit matches beat
    suffix matches.
    """

    MIN_MATCH = 7

    def __init__(self, contacts: Iterable[Row]) -> None:
        self._exact: dict[str, str] = {}
        self._by_digits: dict[str, str] = {}
        self._by_tail: dict[str, list[tuple[str, str]]] = {}
        self._cache: dict[str, str | None] = {}
        for contact in contacts:
            name, number = contact.get("name"), contact.get("number")
            if not isinstance(name, str) or not isinstance(number, str):
                continue
            self._exact.setdefault(number, name)
            if is_dialable(number):
                digits = _digits(number)
                self._by_digits.setdefault(digits, name)
                if len(digits) >= self.MIN_MATCH:
                    tail = digits[-self.MIN_MATCH :]
                    self._by_tail.setdefault(tail, []).append((digits, name))

    def lookup(self, address: str | None) -> str | None:
        if address is None:
            return None
        if address in self._cache:
            return self._cache[address]
        result: str | None
        if not is_dialable(address):
            result = self._exact.get(address)
        else:
            digits = _digits(address)
            result = self._by_digits.get(digits)
            if result is None and len(digits) >= self.MIN_MATCH:
                for other, name in self._by_tail.get(digits[-self.MIN_MATCH :], ()):
                    if other.endswith(digits) or digits.endswith(other):
                        result = name
                        break
        self._cache[address] = result
        return result


# --------------------------------------------------------------------------- sorting


_SORT_TERM = r"\s*(date|_id)(?:\s+(asc|desc))?\s*\Z"  # re.IGNORECASE


def sort_term(part: str) -> tuple[str, bool] | None:
    """One term of a sort order by ``_SORT_TERM``: (column, descending), or None.

    An ASCII term is split on whitespace and compared in lower case, which is what the
    pattern does with ASCII; beyond ASCII ``\\s`` and IGNORECASE have their own rules
    (``_ıd``, with a dotless i, matches), so the pattern decides those."""
    if part.isascii():
        words = [word.lower() for word in part.split()]
        if not 1 <= len(words) <= 2 or words[0] not in ("date", "_id"):
            return None
        if len(words) == 2 and words[1] not in ("asc", "desc"):
            return None
        return words[0], words[1:] == ["desc"]
    import re

    match = re.match(_SORT_TERM, part, re.IGNORECASE)
    if match is None:
        return None
    return match.group(1).lower(), (match.group(2) or "asc").lower() == "desc"


def parse_sort_order(order: str) -> list[tuple[str, bool]]:
    """``date DESC, _id DESC`` -> [("date", True), ("_id", True)].

    Only ``date`` and ``_id`` terms are understood; anything else behaves as
    ``date DESC`` (the brief allows that).
    """
    terms: list[tuple[str, bool]] = []
    for part in order.split(","):
        term = sort_term(part)
        if term is None:
            return [("date", True)]
        terms.append(term)
    return terms


class LazyRandom:
    """``random.Random(seed)``, made when first asked to shuffle: most pages have no
    ties, and random's import (with bisect, math, sha512) costs milliseconds a call."""

    def __init__(self, seed: str) -> None:
        self.seed = seed
        self._rng: random.Random | None = None

    def shuffle(self, items: list[Row]) -> None:
        if self._rng is None:
            import random

            self._rng = random.Random(self.seed)
        self._rng.shuffle(items)


def order_rows(rows: Sequence[Row], sort_order: str, rng: LazyRandom) -> list[Row]:
    """Sort like SQLite would, with an unstable order among ties when the sort
    does not include ``_id``: each tie group is shuffled with ``rng``."""
    terms = parse_sort_order(sort_order)
    result = list(rows)
    for column, descending in reversed(terms):
        result.sort(key=lambda r: int(r[column]), reverse=descending)
    if any(column == "_id" for column, _ in terms):
        return result
    i, n = 0, len(result)
    while i < n:
        key = result[i]["date"]
        j = i + 1
        while j < n and result[j]["date"] == key:
            j += 1
        if j - i > 1:
            group = result[i:j]
            rng.shuffle(group)
            result[i:j] = group
        i = j
    return result


def sql_page(rows: list[Row], limit: int | None, offset: int) -> list[Row]:
    offset = max(offset, 0)  # SQLite: a negative OFFSET acts as 0
    if limit is None:
        return rows[offset:]
    return rows[offset : offset + limit]


def new_app_limit(limit: int, offset: int) -> tuple[bool, int | None]:
    """The new app appends `` LIMIT l`` only when l >= 0 and `` OFFSET o`` only when
    o >= 0.  ``OFFSET`` without ``LIMIT`` is an SQL error (empty output).
    Returns (sql_error, limit or None for no limit)."""
    if limit < 0:
        return (offset >= 0, None)
    return (False, limit)


# --------------------------------------------------------------------------- sms list


SMS_TYPES_NEW = {
    "all": 0, "inbox": 1, "sent": 2, "draft": 3, "outbox": 4, "failed": 5, "queued": 6,
}
# The old (0.58) script only knows these five.
SMS_TYPES_OLD = {"all": 0, "inbox": 1, "sent": 2, "draft": 3, "outbox": 4}
VISIBLE_SMS_TYPES = (1, 2)  # restricted view of a non-default SMS app
SMS_TYPE_NAMES = {1: "inbox", 2: "sent", 3: "draft", 4: "outbox", 5: "failed"}

SMS_LIST_LONG = [
    "help",
    "message-limit=",
    "message-offset=",
    "message-type=",
    "message-address=",
    "message-sort-order=",
    "message-selection=",
    "message-return-no-order-reverse",
    "conversation-list",
    "conversation-limit=",
    "conversation-offset=",
    "conversation-selection=",
    "conversation-sort-order=",
    "conversation-return-multiple-messages",
    "conversation-return-nested-view",
    "conversation-return-no-order-reverse",
]

SMS_LIST_USAGE_NEW = """\
Usage: termux-sms-list [command_options]
List SMS messages.

Available command_options:
[ -c | --conversation-list ]          List conversations (newest message per thread).
[ -d ] [ -n ]                         Obsolete, ignored.
[ -f address | --message-address=<address> ]
[ -l limit | --message-limit=<limit> ]       Default value: '10'.
[ -o offset | --message-offset=<offset> ]    Default value: '0'.
[ -t type | --message-type=<type> ]          Default value: 'all'.
      Supported values: 'all|inbox|sent|draft|outbox|failed|queued'.
[ --message-sort-order=<order> ]             Default value: 'date DESC'.
[ --message-return-no-order-reverse ]
[ --message-selection=<selection> ]
"""

SMS_LIST_USAGE_OLD = """\
Usage: termux-sms-list [-d] [-l limit] [-n] [-o offset] [-t type] [-c] [-f number]
List SMS messages.
  -l limit   limit in retrieved sms list (default: 10)
  -o offset  offset in sms list (default: 0)
  -t type    the type of messages to list (default: all):
             all|inbox|sent|draft|outbox
  -c         conversation list (unique item per conversation)
  -f number  the number for locate messages
  -n         (obsolete) show phone numbers
  -d         (obsolete) show dates when messages were created
"""


class SmsQuery:
    """The parsed termux-sms-list options (defaults as in the scripts/app)."""

    def __init__(self) -> None:
        self.limit = 10
        self.offset = 0
        self.type_name = "all"
        self.address: str | None = None
        self.sort_order = "date DESC"
        self.no_reverse = False
        self.conversation = False
        self.conv_limit = -1
        self.conv_offset = -1
        self.conv_sort_order = "date DESC"
        self.conv_no_reverse = False
        self.conv_multiple = False
        self.conv_nested = False


def parse_sms_list_args(argv: Sequence[str], new: bool) -> SmsQuery:
    getopt = import_getopt()
    tool = "termux-sms-list"
    usage = SMS_LIST_USAGE_NEW if new else SMS_LIST_USAGE_OLD
    try:
        if new:  # the new script parses with GNU getopt (long options, permuted)
            opts, rest = getopt.gnu_getopt(list(argv), "hdl:t:f:cno:", SMS_LIST_LONG)
        else:  # the old script uses the shell's getopts: short options only
            opts, rest = getopt.getopt(list(argv), "hdl:t:f:cno:")
    except getopt.GetoptError as exc:
        if new:
            raise UsageError(f"{tool}: {exc.msg}", usage) from None
        raise UsageError(f"{tool}: illegal option ({exc.msg})", usage) from None
    query = SmsQuery()
    types = SMS_TYPES_NEW if new else SMS_TYPES_OLD
    for opt, value in opts:
        if opt in ("-h", "--help"):
            raise ShowUsage(usage)
        if opt in ("-d", "-n", "--message-selection", "--conversation-selection"):
            continue  # accepted and ignored
        if opt in ("-l", "--message-limit"):
            query.limit = parse_int(tool, opt, value, usage)
        elif opt in ("-o", "--message-offset"):
            query.offset = parse_int(tool, opt, value, usage)
        elif opt in ("-t", "--message-type"):
            if value not in types:
                raise UsageError(
                    f"{tool}: Unsupported type '{value}'. Use one of: {'|'.join(types)}", usage
                )
            query.type_name = value
        elif opt in ("-f", "--message-address"):
            query.address = value or None
        elif opt in ("-c", "--conversation-list"):
            query.conversation = True
        elif opt == "--message-sort-order":
            query.sort_order = value or "date DESC"
        elif opt == "--message-return-no-order-reverse":
            query.no_reverse = True
        elif opt == "--conversation-limit":
            query.conv_limit = parse_int(tool, opt, value, usage)
        elif opt == "--conversation-offset":
            query.conv_offset = parse_int(tool, opt, value, usage)
        elif opt == "--conversation-sort-order":
            query.conv_sort_order = value or "date DESC"
        elif opt == "--conversation-return-no-order-reverse":
            query.conv_no_reverse = True
        elif opt == "--conversation-return-multiple-messages":
            query.conv_multiple = True
        elif opt == "--conversation-return-nested-view":
            query.conv_nested = True
    if rest:
        raise UsageError(f"{tool}: too many arguments", usage)
    return query


def _like_regex(pattern: str) -> re.Pattern[str]:
    """SQLite LIKE: % and _ wildcards, ASCII case-insensitive, no default escape."""
    import re

    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.ASCII | re.DOTALL)


def sms_to_json(row: Row, new: bool, contacts: ContactIndex, zone: tzinfo) -> Row:
    type_name = SMS_TYPE_NAMES.get(int(row.get("type", 0)), "")
    address = row.get("address")
    out: Row = {
        "threadid": int(row.get("thread_id", 0)),
        "type": type_name,
        "read": bool(row.get("read", 0)),
    }
    name = contacts.lookup(address)
    if name is not None:  # upstream: the key exists only when the address is a contact
        out["sender"] = name if type_name == "inbox" else "You"
    if new:
        out["address"] = address
    out["number"] = address
    out["received"] = local_time(int(row["date"]), zone)
    out["body"] = row.get("body")
    out["_id"] = int(row["_id"])
    return out


def render_sms_list(phone: Phone, query: SmsQuery, new: bool) -> str:
    limit: int | None
    if new:
        sql_error, limit = new_app_limit(query.limit, query.offset)
        if sql_error:
            return ""  # "date DESC OFFSET 0" is invalid SQL: exception, empty stdout
    else:
        # silent: the old app put "LIMIT l OFFSET o" into the sort order; SQLite
        # reads a negative LIMIT as "no limit".
        limit = query.limit if query.limit >= 0 else None
    rng = LazyRandom(f"{query.offset}:{query.limit}")
    rows = [m for m in phone.get("messages") or () if m.get("type") in VISIBLE_SMS_TYPES]
    contacts = ContactIndex(phone.get("contacts") or ())
    zone = get_zone(phone.get("timezone", ""))

    def encode(page: Iterable[Row]) -> list[Row]:
        return [sms_to_json(m, new, contacts, zone) for m in page]

    if query.conversation:
        return render_conversations(rows, query, new, limit, rng, encode)

    # The new app queries content://sms (all types) whenever an address is given,
    # ignoring -t; otherwise the per-type URI.
    wanted = SMS_TYPES_NEW[query.type_name]
    if query.address is not None and new:
        wanted = 0
    if wanted:
        rows = [m for m in rows if m.get("type") == wanted]
    if query.address is not None:
        pattern = _like_regex(query.address if new else f"%{query.address}%")
        rows = [
            m for m in rows
            if isinstance(m.get("address"), str) and pattern.fullmatch(m["address"])
        ]
    page = sql_page(order_rows(rows, query.sort_order, rng), limit, query.offset)
    if not (new and query.no_reverse):
        page.reverse()
    return android_json(encode(page))


def render_conversations(
    rows: list[Row],
    query: SmsQuery,
    new: bool,
    limit: int | None,
    rng: LazyRandom,
    encode: Callable[[Iterable[Row]], list[Row]],
) -> str:
    """``-c``: one entry per thread (its newest message), threads newest-first from
    the SQL, printed reversed.  Type and address filters do not apply."""
    threads: dict[int, list[Row]] = {}
    for row in rows:
        threads.setdefault(int(row.get("thread_id", 0)), []).append(row)
    ordered = sorted(
        threads.items(),
        key=lambda item: (max(int(m["date"]) for m in item[1]), item[0]),
        reverse=True,
    )
    conv_limit: int | None
    if new:
        sql_error, conv_limit = new_app_limit(query.conv_limit, query.conv_offset)
        if sql_error:
            return ""
    else:
        conv_limit = None
    ordered = ordered[max(query.conv_offset, 0) :]
    if conv_limit is not None:
        ordered = ordered[:conv_limit]
    if not (new and query.conv_no_reverse):
        ordered.reverse()
    flat: list[Row] = []
    nested: dict[str, list[Row]] = {}
    multiple = new and query.conv_multiple
    for thread_id, messages in ordered:
        page = sql_page(order_rows(messages, query.sort_order, rng), limit, query.offset)
        if multiple:
            if not query.no_reverse:
                page.reverse()
        else:
            page = page[:1]
        encoded = encode(page)
        if new and query.conv_nested:
            nested[str(thread_id)] = encoded
        else:
            flat.extend(encoded)
    if new and query.conv_nested:
        return android_json(nested)
    return android_json(flat)


def main_sms_list(argv: Sequence[str]) -> int:
    tool = "termux-sms-list"

    def body(phone: Phone) -> int:
        new = is_new(phone)
        query = parse_sms_list_args(argv, new)
        return respond(tool, phone, lambda: render_sms_list(phone, query, new))

    return run_tool(tool, argv, body)


# --------------------------------------------------------------------------- contacts


CONTACT_LIST_USAGE = "Usage: termux-contact-list\nList all contacts.\n"


def render_contact_list(phone: Phone) -> str:
    contacts = [
        {"name": c.get("name"), "number": c.get("number")}
        for c in phone.get("contacts") or ()
        if c.get("number") is not None
    ]
    # silent: sorted by display name, case-insensitively, NULL names first.
    contacts.sort(key=lambda c: (c["name"] is not None, str(c["name"] or "").casefold()))
    return android_json(contacts)


def main_contact_list(argv: Sequence[str]) -> int:
    tool = "termux-contact-list"

    def body(phone: Phone) -> int:
        getopt = import_getopt()
        try:
            opts, rest = getopt.getopt(list(argv), "h")
        except getopt.GetoptError as exc:
            raise UsageError(f"{tool}: illegal option ({exc.msg})") from None
        if opts:
            raise ShowUsage(CONTACT_LIST_USAGE)
        if rest:
            raise UsageError(f"{tool}: too many arguments")
        return respond(tool, phone, lambda: render_contact_list(phone))

    return run_tool(tool, argv, body)


# --------------------------------------------------------------------------- call log


CALL_TYPES = {
    1: "INCOMING",
    2: "OUTGOING",
    3: "MISSED",
    4: "VOICEMAIL",
    5: "REJECTED",
    6: "BLOCKED",
}

CALL_LOG_USAGE = """\
Usage: termux-call-log [-l <limit>] [-o <offset>]
List call log history
  -l <limit>   limit in call log list (default: 10)
  -o <offset>  offset in call log list (default: 0)
"""


def call_duration(seconds: int) -> str:
    hours, minutes, secs = seconds // 3600, (seconds % 3600) // 60, seconds % 60
    prefix = f"{hours:02d}:" if hours > 0 else ""
    return f"{prefix}{minutes:02d}:{secs:02d}"


def render_call_log(phone: Phone, limit_text: str, offset_text: str, new: bool) -> str:
    if not new and sdk_level(phone) >= 30:
        return ""  # old app on Android 11+: "LIMIT" in the sort order throws
    try:
        limit, offset = int(limit_text), int(offset_text)
    except ValueError:
        return ""  # silent: old script passes junk on, the app fails: empty stdout
    zone = get_zone(phone.get("timezone", ""))
    calls = sorted(
        phone.get("calls") or (),
        key=lambda c: (int(c["date"]), int(c.get("_id", 0))),
        reverse=True,
    )
    page = sql_page(calls, limit if limit >= 0 else None, offset)
    page.reverse()
    out: list[Row] = []
    for call in page:
        name = call.get("name")
        entry: Row = {
            "name": name if name is not None else "UNKNOWN_CALLER",
            "phone_number": call.get("number"),
            "type": CALL_TYPES.get(int(call.get("type", 0)), "UNKNOWN_TYPE"),
            "date": local_time(int(call["date"]), zone),
            "duration": call_duration(int(call.get("duration", 0))),
        }
        if new:
            entry["sim_id"] = call.get("sim_id")
        out.append(entry)
    return android_json(out)


def main_call_log(argv: Sequence[str]) -> int:
    tool = "termux-call-log"

    def body(phone: Phone) -> int:
        getopt = import_getopt()
        new = is_new(phone)
        try:
            opts, rest = getopt.getopt(list(argv), "hl:o:")
        except getopt.GetoptError as exc:
            raise UsageError(f"{tool}: illegal option ({exc.msg})") from None
        values = {"-l": "10", "-o": "0"}
        for opt, value in opts:
            if opt == "-h":
                raise ShowUsage(CALL_LOG_USAGE)
            values[opt] = value
        if new:
            for opt, value in values.items():
                if not is_uint(value):
                    write_stdout(CALL_LOG_USAGE)  # the script prints its usage on stdout
                    raise UsageError(f"ERROR: The {opt} value '{value}' is not a positive number.")
        if rest:
            raise UsageError(f"{tool}: too many arguments")
        return respond(
            tool, phone, lambda: render_call_log(phone, values["-l"], values["-o"], new)
        )

    return run_tool(tool, argv, body)


# --------------------------------------------------------------------------- termux-info


def render_termux_info(phone: Phone) -> str:
    generation = "new" if is_new(phone) else "old"
    props = phone_props(phone)
    lines = ["Termux Variables:"]
    if phone.get("api_app_installed", True):
        lines.append(f"TERMUX_API_VERSION={API_APP_VERSION[generation]}")
    lines += [
        "TERMUX_APK_RELEASE=F_DROID",
        "TERMUX_APP_PACKAGE_MANAGER=apt",
        "TERMUX_APP_PID=12345",
        "TERMUX_IS_DEBUGGABLE_BUILD=0",
        "TERMUX_MAIN_PACKAGE_FORMAT=debian",
        "TERMUX_VERSION=0.118.1",
        "TERMUX__USER_ID=0",
        "Packages CPU architecture:",
        "aarch64",
        "Subscribed repositories:",
        "# sources.list",
        "deb https://packages-cf.termux.dev/apt/termux-main/ stable main",
        "Updatable packages:",
        "All packages up to date",
        "termux-tools version:",
        "1.44.6",
        "termux-api package version:",
        API_PACKAGE_VERSION[generation],
        "Android version:",
        props.get("ro.build.version.release") or "14",
        "Kernel build information:",
        "Linux localhost 5.10.198-android13-4 #1 SMP PREEMPT aarch64 Android",
        "Device manufacturer:",
        props.get("ro.product.manufacturer") or "Google",
        "Device model:",
        props.get("ro.product.model") or "Pixel 7",
        "Supported ABIs:",
        "SUPPORTED_ABIS: arm64-v8a",
        "LD Variables:",
        "LD_LIBRARY_PATH=",
        "LD_PRELOAD=/data/data/com.termux/files/usr/lib/libtermux-exec.so",
    ]
    return "\n".join(lines) + "\n"


def main_termux_info(argv: Sequence[str]) -> int:
    tool = "termux-info"
    return run_tool(
        tool, argv, lambda phone: respond(tool, phone, lambda: render_termux_info(phone))
    )


# --------------------------------------------------------------------------- open-url


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_REDIRECTS = 10


def is_loopback_url(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


def browse(url: str) -> int:
    """GET ``url`` following redirects (at most 10), loopback http only.  Reports
    each step as a JSON line on stdout (the browser log in the child)."""
    import http.client
    import json
    from urllib.parse import urljoin, urlsplit

    current = url
    for hop in range(MAX_REDIRECTS + 1):
        if not is_loopback_url(current):
            print(json.dumps({"refused": current}), flush=True)
            return 1
        parts = urlsplit(current)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=15)
        try:
            conn.request("GET", path, headers={"User-Agent": "smsbak-fake-browser/1.0"})
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        print(json.dumps({"url": current, "status": response.status}), flush=True)
        location = response.getheader("Location")
        if response.status in (301, 302, 303, 307, 308) and location:
            if hop == MAX_REDIRECTS:
                print(json.dumps({"error": "too many redirects"}), flush=True)
                return 1
            current = urljoin(current, location)
            continue
        return 0
    return 1


def browser_log_path() -> str | None:
    log = os.environ.get(LOG_ENV)
    return os.path.join(os.path.dirname(log), BROWSER_LOG) if log else None


def launch_browser(url: str) -> None:
    """Fork a detached child that browses; the parent returns at once.  The child
    lets go of the caller's stdout/stderr pipes (writes to fake-browser.log next to
    the call log, or /dev/null)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() != 0:
        return
    code = 1
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        log = browser_log_path()
        out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if log else devnull
        os.dup2(out, 1)
        os.dup2(out, 2)
        code = browse(url)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main_open_url(argv: Sequence[str]) -> int:
    tool = "termux-open-url"

    def body(phone: Phone) -> int:
        if len(argv) != 1 or argv[0].startswith("-"):
            raise UsageError(f"Usage: {tool} url")
        url = argv[0]
        browser = os.environ.get(BROWSER_ENV) == "1"
        if browser and not is_loopback_url(url):
            raise UsageError(
                f"{tool}: fake browser only visits http://127.0.0.1, http://localhost "
                f"or http://[::1]; refused {url}"
            )

        def produce() -> str:
            if browser:
                launch_browser(url)
            return ""

        return respond(tool, phone, produce)

    return run_tool(tool, argv, body)


# --------------------------------------------------------------------------- sms-send


def main_sms_send(argv: Sequence[str]) -> int:
    """smsbak must never call this.  Leave a marker and say so, then exit 0 like the
    real tool (which would have transmitted an SMS)."""
    tool = "termux-sms-send"
    log_invocation(tool, argv)
    log = os.environ.get(LOG_ENV)
    if log:
        directory = os.path.dirname(os.path.abspath(log))
    else:
        import tempfile

        directory = tempfile.gettempdir()
    import json

    line = json.dumps({"argv": list(argv), "t": time.time()}) + "\n"
    with open(os.path.join(directory, SMS_SEND_MARKER), "a", encoding="utf-8") as marker:
        marker.write(line)
    sys.stderr.write("SMS SENT (fake) — smsbak must never call this\n")
    sys.stderr.flush()
    load_phone(tool)
    return 0


# --------------------------------------------------------------------------- notifications


NOTIFICATION_SHORT = "hc:i:t:"
NOTIFICATION_LONG = [
    "action=", "alert-once", "button1=", "button1-action=", "button2=", "button2-action=",
    "button3=", "button3-action=", "content=", "group=", "help", "help-actions", "id=",
    "icon=", "image-path=", "led-color=", "led-on=", "led-off=", "media-previous=",
    "media-next=", "media-play=", "media-pause=", "on-delete=", "ongoing", "priority=",
    "sound", "title=", "type=", "vibrate=",
]


def read_stdin_with_timeout(seconds: float) -> str:
    """``read -t 3 -r -d ''``: read stdin until EOF or the timeout."""
    import select

    deadline = time.monotonic() + seconds
    chunks: list[bytes] = []
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return ""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def main_notification(argv: Sequence[str]) -> int:
    tool = "termux-notification"

    def body(phone: Phone) -> int:
        getopt = import_getopt()
        try:
            opts, rest = getopt.gnu_getopt(list(argv), NOTIFICATION_SHORT, NOTIFICATION_LONG)
        except getopt.GetoptError as exc:
            raise UsageError(f"{tool}: {exc.msg}") from None
        names = [opt for opt, _ in opts]
        if "-h" in names or "--help" in names:
            raise ShowUsage("Usage: termux-notification [options]\n")
        if "--help-actions" in names:
            raise ShowUsage("This help refers to the arguments to options like --action.\n")
        if rest:
            raise UsageError(f"{tool}: too many arguments")
        if "--ongoing" in names and not ({"-i", "--id"} & set(names)):
            write_stdout(
                "Ongoing notifications without an ID are not removable.\n"
                'Please set an id with --id "string".\n'
            )
            return 1
        if not ({"-c", "--content"} & set(names)):
            # Without -c the script reads stdin for up to 3 s (a tty: the full 3 s).
            read_stdin_with_timeout(3.0)
        return respond(tool, phone, lambda: "")

    return run_tool(tool, argv, body)


def main_notification_remove(argv: Sequence[str]) -> int:
    tool = "termux-notification-remove"

    def body(phone: Phone) -> int:
        if len(argv) != 1:
            raise UsageError(
                f"Usage: {tool} notification-id\n"
                "Remove a notification previously shown with termux-notification --id."
            )
        return respond(tool, phone, lambda: "")

    return run_tool(tool, argv, body)
