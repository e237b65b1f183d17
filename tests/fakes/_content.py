"""The fake ``content`` tool (Android's Content.java) over the fixture phone, run
under the fake rish or su (see ``_privileged``); ``bin/content`` calls
:func:`main_content`.

Behaviour follows section 1 of /work/shared/reference/restore-formats.md and, for
MMS writes, threadID and the restricted view, /work/shared/reference/mms-provider.md;
where they are silent the choice follows a reading of AOSP (Content.java,
SmsProvider, MmsProvider) and is marked "silent:".  Fixture keys are documented in
phone.py.
Stdlib only.  SQLite (see :func:`sqlite`), json and re are imported where needed;
content parses its arguments and URIs with str methods that do exactly what the
patterns they replace did (each says which).
"""

from __future__ import annotations

import os
import sys
import time

from _privileged import (
    APP_UID,
    ROOT_UID,
    SHELL_PACKAGE,
    appop_mode,
    caller_uid,
    pay_call_cost,
)
from _termux_common import (
    PHONE_ENV,
    FixtureLock,
    Phone,
    Row,
    fail,
    is_uint,
    load_phone,
    log_invocation,
    save_phone,
    write_stdout,
)

# Imported by every fake call (a process each): see _termux_common.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType
    from typing import Any

CONTENT_ESCAPINGS = ("modern", "legacy")


CONTENT_USAGE = """\
usage: adb shell content [subcommand] [options]

usage: adb shell content insert --uri <URI> [--user <USER_ID>] --bind <BINDING> [--bind <BINDING>...] [--extra <BINDING>...]
  <URI> a content provider URI.
  <BINDING> binds a typed value to a column and is formatted:
  <COLUMN_NAME>:<TYPE>:<COLUMN_VALUE> where:
  <TYPE> specifies data type such as:
  b - boolean, s - string, i - integer, l - long, f - float, d - double, n - null
  Note: Omit the value for passing an empty string, e.g column:s:
  Example:
  # Add "new_setting" secure setting with value "new_value".
  adb shell content insert --uri content://settings/secure --bind name:s:new_setting --bind value:s:new_value

usage: adb shell content update --uri <URI> [--user <USER_ID>] [--where <WHERE>] [--extra <BINDING>...]
  <WHERE> is a SQL style where clause in quotes (You have to escape single quotes - see example below).

usage: adb shell content delete --uri <URI> [--user <USER_ID>] --bind <BINDING> [--bind <BINDING>...] [--where <WHERE>] [--extra <BINDING>...]
  Example:
  # Remove "new_setting" secure setting.
  adb shell content delete --uri content://settings/secure --where "name='new_setting'"

usage: adb shell content query --uri <URI> [--user <USER_ID>] [--projection <PROJECTION>] [--where <WHERE>] [--sort <SORT_ORDER>]  [--extra <BINDING>...]
  <PROJECTION> is a list of colon separated column names and is formatted:
  <COLUMN_NAME>[:<COLUMN_NAME>...]
  <SORT_ORDER> is the order in which rows in the result should be sorted.
  Example:
  # Select "name" and "value" columns from secure settings where "name" is equal to "new_setting" and sort the result by name in ascending order.
  adb shell content query --uri content://settings/secure --projection name:value --where "name='new_setting'" --sort "name ASC"

usage: adb shell content read --uri <URI> [--user <USER_ID>]
  Example:
  adb shell 'content read --uri content://settings/system/ringtone_cache' > host.ogg
"""  # noqa: E501

# (column, declared type, value shown for a fixture row that lacks the key)
SMS_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("_id", "INTEGER PRIMARY KEY", None),
    ("thread_id", "INTEGER", None),
    ("address", "TEXT", None),
    ("person", "INTEGER", None),
    ("date", "INTEGER", None),
    ("date_sent", "INTEGER", 0),
    ("protocol", "INTEGER", None),
    ("read", "INTEGER", 0),
    ("status", "INTEGER", -1),
    ("type", "INTEGER", None),
    ("reply_path_present", "INTEGER", None),
    ("subject", "TEXT", None),
    ("body", "TEXT", None),
    ("service_center", "TEXT", None),
    ("locked", "INTEGER", 0),
    ("sub_id", "INTEGER", -1),
    ("error_code", "INTEGER", 0),
    ("creator", "TEXT", None),
    ("seen", "INTEGER", 0),
)
CALL_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("_id", "INTEGER PRIMARY KEY", None),
    ("number", "TEXT", None),
    ("presentation", "INTEGER", 1),
    ("date", "INTEGER", None),
    ("duration", "INTEGER", None),
    ("type", "INTEGER", None),
    ("new", "INTEGER", None),
    ("name", "TEXT", None),
    ("is_read", "INTEGER", None),
    ("subscription_id", "TEXT", None),
)
# MmsProvider's tables (MmsSmsDatabaseHelper): pdu, addr, part.  Fixture rows of
# ``mms`` carry their ``addresses`` and ``parts``; see mms_table_rows.
PDU_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("_id", "INTEGER PRIMARY KEY", None),
    ("thread_id", "INTEGER", None),
    ("date", "INTEGER", None),
    ("date_sent", "INTEGER", 0),
    ("msg_box", "INTEGER", None),
    ("read", "INTEGER", 0),
    ("m_id", "TEXT", None),
    ("sub", "TEXT", None),
    ("sub_cs", "INTEGER", None),
    ("ct_t", "TEXT", None),
    ("ct_l", "TEXT", None),
    ("exp", "INTEGER", None),
    ("m_cls", "TEXT", None),
    ("m_type", "INTEGER", None),
    ("v", "INTEGER", None),
    ("m_size", "INTEGER", None),
    ("pri", "INTEGER", None),
    ("rr", "INTEGER", None),
    ("rpt_a", "INTEGER", None),
    ("resp_st", "INTEGER", None),
    ("st", "INTEGER", None),
    ("tr_id", "TEXT", None),
    ("retr_st", "INTEGER", None),
    ("retr_txt", "TEXT", None),
    ("retr_txt_cs", "INTEGER", None),
    ("read_status", "INTEGER", None),
    ("ct_cls", "INTEGER", None),
    ("resp_txt", "TEXT", None),
    ("d_tm", "INTEGER", None),
    ("d_rpt", "INTEGER", None),
    ("locked", "INTEGER", 0),
    ("sub_id", "INTEGER", -1),
    ("seen", "INTEGER", 0),
    ("creator", "TEXT", None),
    ("text_only", "INTEGER", 0),
)
ADDR_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("_id", "INTEGER PRIMARY KEY", None),
    ("msg_id", "INTEGER", None),
    ("contact_id", "INTEGER", None),
    ("address", "TEXT", None),
    ("type", "INTEGER", None),
    ("charset", "INTEGER", None),
)
PART_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("_id", "INTEGER PRIMARY KEY", None),
    ("mid", "INTEGER", None),
    ("seq", "INTEGER", 0),
    ("ct", "TEXT", None),
    ("name", "TEXT", None),
    ("chset", "INTEGER", None),
    ("cd", "TEXT", None),
    ("fn", "TEXT", None),
    ("cid", "TEXT", None),
    ("cl", "TEXT", None),
    ("ctt_s", "INTEGER", None),
    ("ctt_t", "TEXT", None),
    ("_data", "TEXT", None),
    ("text", "TEXT", None),
)
MMS_BOXES = {"inbox": 1, "sent": 2, "drafts": 3, "outbox": 4}
# Where the telephony provider keeps part files; ``_data`` of a binary part.
MMS_PART_DIR = "/data/user/0/com.android.providers.telephony/app_parts"
# Keys every stored SMS row has, in FakePhone's order (thread_id only when known).
SMS_CORE_KEYS = ("_id", "thread_id", "address", "body", "date", "type", "read")
SMS_BOXES = {"inbox": 1, "sent": 2, "draft": 3, "outbox": 4, "failed": 5, "queued": 6}
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def parse_content_uri(uri: str) -> tuple[str, str | None, str | None] | None:
    """The groups of ``content://([^/?#]*)(/[^?#]*)?(?:\\?([^#]*))?\\Z`` matched on
    ``uri``: (authority, path from its "/", query after "?"), or None.

    No group takes a "#", so any "#" fails; otherwise the match is unique: the
    authority runs to the first "/" or "?", a path from that "/" to the first "?", the
    query is all after that "?"."""
    prefix = "content://"
    if not uri.startswith(prefix) or "#" in uri:
        return None
    rest = uri[len(prefix) :]
    cut = len(rest)
    for stop in ("/", "?"):
        found = rest.find(stop)
        if 0 <= found < cut:
            cut = found
    authority, rest = rest[:cut], rest[cut:]
    path = query = None
    if rest.startswith("/"):
        cut = rest.find("?")
        path, rest = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
    if rest.startswith("?"):
        query = rest[1:]
    return authority, path, query


def uri_authority(uri: str) -> str:
    """The authority Content.java names in "Error while accessing provider:"."""
    parsed = parse_content_uri(uri)
    return parsed[0] if parsed else "null"


def split_projection(text: str) -> list[str]:
    """``re.split(r"\\s*:\\s*", text)``: split on ":", dropping the whitespace next to
    each ":" (``\\s`` of a str pattern is what str.strip strips) but not at the ends."""
    parts = text.split(":")
    last = len(parts) - 1
    for i in range(len(parts)):
        if i > 0:
            parts[i] = parts[i].lstrip()
        if i < last:
            parts[i] = parts[i].rstrip()
    return parts


class ContentArgError(Exception):
    """Content.java's IllegalArgumentException while parsing: usage + [ERROR], exit 0."""


class ProviderError(Exception):
    """An exception inside Command.execute(): "Error while accessing provider:..."."""

    def __init__(self, java_line: str) -> None:
        super().__init__(java_line)
        self.java_line = java_line


class ContentCommand:
    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.uri: str | None = None
        self.values: dict[str, Any] = {}
        self.projection: list[str] | None = None
        self.where: str | None = None
        self.sort: str | None = None


def _java_int(value: str, bounds: tuple[int, int]) -> int:
    digits = value[1:] if value[:1] in ("+", "-") else value  # [+-]?[0-9]+\Z
    if not is_uint(digits) or not bounds[0] <= int(value) <= bounds[1]:
        raise ContentArgError(f'For input string: "{value}"')
    return int(value)


def _java_double(value: str) -> float:
    import re

    text = value.strip()
    if text[-1:] in ("f", "F", "d", "D"):
        text = text[:-1]
    if not re.fullmatch(r"[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)", text):
        raise ContentArgError(f'For input string: "{value}"' if value else "empty String")
    return float(text.replace("Infinity", "inf"))


def _float32(value: float) -> float:
    """Narrow to a Java float (overflow gives an infinity, as in Java)."""
    import struct

    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def split_with_escaping(argument: str, split_char: str = ":") -> list[str]:
    """Content.java's splitWithEscaping: a backslash escapes whatever follows it."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(argument):
        ch = argument[i]
        if ch == "\\":
            i += 1
            if i == len(argument):
                raise ContentArgError("Invalid escaping")
            current.append(argument[i])
        elif ch == split_char:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def parse_binding(argument: str | None, escaping: str) -> tuple[str, Any]:
    if not argument:
        raise ContentArgError(f"Binding not well formed: {argument}")
    # legacy: split on the first two colons, the rest is literal
    parts = argument.split(":", 2) if escaping == "legacy" else split_with_escaping(argument)
    if len(parts) != 3:
        raise ContentArgError(f"Binding not well formed: {argument}")
    column, kind, value = parts
    kind = kind.lower()
    converted: Any
    if kind == "s":
        converted = value
    elif kind == "i":
        converted = _java_int(value, INT32)
    elif kind == "l":
        converted = _java_int(value, INT64)
    elif kind == "f":
        converted = _float32(_java_double(value))
    elif kind == "d":
        converted = _java_double(value)
    elif kind == "b":
        converted = 1 if value.lower() == "true" else 0  # Boolean.parseBoolean
    elif kind == "n":
        converted = None
    else:
        raise ContentArgError(f"Unsupported type: {parts[1]}")
    return column, converted


class _Tokens:
    def __init__(self, argv: Sequence[str]) -> None:
        self.args = list(argv)
        self.pos = 0

    def next(self) -> str | None:
        if self.pos >= len(self.args):
            return None
        self.pos += 1
        return self.args[self.pos - 1]

    def value_of(self, argument: str) -> str:
        value = self.next()
        if not value or value.startswith("--"):
            raise ContentArgError(f"No value for argument: {argument}")
        return value


def parse_content_args(argv: Sequence[str], escaping: str) -> ContentCommand:
    tokens = _Tokens(argv)
    operation = tokens.next()
    if operation not in ("insert", "delete", "query", "update", "call", "read", "write", "gettype"):
        raise ContentArgError(f"Unsupported operation: {operation or 'null'}")
    command = ContentCommand(operation)
    if operation not in ("insert", "delete", "query", "read", "write"):
        return command  # the fake does not model these
    allowed = {
        "insert": {"--uri", "--user", "--bind", "--extra"},
        "delete": {"--uri", "--user", "--bind", "--where", "--extra"},
        "query": {"--uri", "--user", "--projection", "--where", "--sort", "--extra"},
        "read": {"--uri", "--user"},
        "write": {"--uri", "--user"},
    }[operation]
    while (argument := tokens.next()) is not None:
        if argument not in allowed:
            raise ContentArgError(f"Unsupported argument: {argument}")
        if argument == "--uri":
            command.uri = tokens.value_of(argument)
        elif argument == "--user":
            _java_int(tokens.value_of(argument), INT32)
        elif argument == "--bind":
            column, value = parse_binding(tokens.next(), escaping)
            command.values[column] = value
        elif argument == "--extra":
            parse_binding(tokens.next(), escaping)  # silent: extras are ignored
        elif argument == "--projection":
            command.projection = split_projection(tokens.value_of(argument))
        elif argument == "--where":
            command.where = tokens.value_of(argument)
        elif argument == "--sort":
            command.sort = tokens.value_of(argument)
    if command.uri is None:
        raise ContentArgError("Content provider URI not specified. Did you specify --uri argument?")
    if operation == "insert" and not command.values:
        raise ContentArgError("Bindings not specified. Did you specify --bind argument(s)?")
    return command


class ContentTarget:
    """What a URI names: a table (sms, calls; MMS: pdu, addr, part), a box (0 =
    all), maybe one row id, maybe the MMS (``parent_id``) whose addr/part rows."""

    def __init__(
        self,
        authority: str,
        table: str,
        box: int = 0,
        row_id: int | None = None,
        parent_id: int | None = None,
        query: str | None = None,
    ):
        self.authority = authority
        self.table = table
        self.box = box
        self.row_id = row_id
        self.parent_id = parent_id
        self.query = query

    @property
    def columns(self) -> tuple[tuple[str, str, Any], ...]:
        return {
            "sms": SMS_COLUMNS,
            "calls": CALL_COLUMNS,
            "pdu": PDU_COLUMNS,
            "addr": ADDR_COLUMNS,
            "part": PART_COLUMNS,
        }[self.table]

    @property
    def fixture_key(self) -> str:
        return {"sms": "messages", "calls": "calls"}.get(self.table, "mms")

    @property
    def default_sort(self) -> str | None:
        """The provider's order when --sort is absent (MmsProvider: pdu by date
        DESC, parts by seq, addresses unordered)."""
        return {"addr": None, "part": "seq"}.get(self.table, "date DESC")

    def conditions(self) -> list[str]:
        conditions = []
        if self.box:
            conditions.append(f"{'msg_box' if self.table == 'pdu' else 'type'}={self.box}")
        if self.row_id is not None:
            conditions.append(f"_id={self.row_id}")
        if self.parent_id is not None:
            conditions.append(f"{'msg_id' if self.table == 'addr' else 'mid'}={self.parent_id}")
        return conditions


def resolve_uri(uri: str) -> ContentTarget:
    match = parse_content_uri(uri)
    authority = match[0] if match else "null"
    path = (match[1] or "").strip("/") if match else ""
    if authority == "mms-sms" and path == "threadID":
        return ContentTarget(authority, "threadID", query=match[2] if match else None)
    if match is None or authority not in ("sms", "call_log", "mms"):
        if authority == "mms-sms":
            raise ProviderError(
                f"java.lang.UnsupportedOperationException: fake content tool: {authority} "
                "is out of scope but for threadID"
            )
        raise ProviderError(
            f"java.lang.IllegalStateException: Could not find provider: {authority}"
        )
    parts = path.split("/") if path else []
    if authority == "sms":
        if not parts:
            return ContentTarget(authority, "sms")
        if len(parts) == 1 and parts[0].isdigit():
            return ContentTarget(authority, "sms", row_id=int(parts[0]))
        if len(parts) == 1 and parts[0] in SMS_BOXES:
            return ContentTarget(authority, "sms", box=SMS_BOXES[parts[0]])
    elif authority == "mms":
        target = _resolve_mms(parts)
        if target is not None:
            return target
    elif parts[:1] == ["calls"] and len(parts) <= 2:
        if len(parts) == 1:
            return ContentTarget(authority, "calls")
        if parts[1].isdigit():
            return ContentTarget(authority, "calls", row_id=int(parts[1]))
    raise ProviderError(f"java.lang.IllegalArgumentException: Unknown URL {uri}")


def _resolve_mms(parts: list[str]) -> ContentTarget | None:
    """MmsProvider's URIs: mms, mms/<box>, mms/<id>, mms/<id>/addr, mms/<id>/part,
    mms/part, mms/part/<id>."""
    if not parts:
        return ContentTarget("mms", "pdu")
    first = parts[0]
    if len(parts) == 1:
        if first.isdigit():
            return ContentTarget("mms", "pdu", row_id=int(first))
        if first in MMS_BOXES:
            return ContentTarget("mms", "pdu", box=MMS_BOXES[first])
        if first == "part":
            return ContentTarget("mms", "part")
    elif len(parts) == 2:
        if first.isdigit() and parts[1] in ("addr", "part"):
            return ContentTarget("mms", parts[1], parent_id=int(first))
        if first == "part" and parts[1].isdigit():
            return ContentTarget("mms", "part", row_id=int(parts[1]))
    return None


def part_data_path(part: Row) -> str | None:
    """``_data`` of a part row: the fixture's own ``_data``, else Android's path
    for a part with bytes (``data_file``), else NULL (text parts)."""
    if part.get("_data") is not None:
        return str(part["_data"])
    if part.get("data_file") is None:
        return None
    return f"{MMS_PART_DIR}/PART_{part.get('_id')}"


def part_data_file(part: Row) -> str | None:
    """The host file holding a part's bytes (relative: to the fixture's folder)."""
    name = part.get("data_file")
    if name is None:
        return None
    fixture_dir = os.path.dirname(os.path.abspath(os.environ.get(PHONE_ENV, ".")))
    return os.path.join(fixture_dir, str(name))


def mms_table_rows(phone: Phone, table: str) -> list[Row]:
    """The ``mms`` fixture flattened into provider rows: ``pdu`` (without
    ``addresses``/``parts``), ``addr`` (``msg_id`` = the MMS ``_id``) or ``part``
    (``mid`` likewise, ``_data`` as on Android, no ``data_file``).  Address and
    part rows without ``_id`` get the previous one + 1, as AUTOINCREMENT would."""
    rows: list[Row] = []
    next_id = 1
    for mms in phone.get("mms") or ():
        if table == "pdu":
            rows.append({k: v for k, v in mms.items() if k not in ("addresses", "parts")})
            continue
        children = mms.get("addresses" if table == "addr" else "parts") or ()
        for child in children:
            row_id = child.get("_id")
            row_id = int(row_id) if isinstance(row_id, int) else next_id
            next_id = max(next_id, row_id + 1)
            if table == "addr":
                row: Row = {"_id": row_id, "msg_id": mms.get("_id")}
                row.update((k, v) for k, v in child.items() if k != "_id")
            else:
                row = {"_id": row_id, "mid": mms.get("_id")}
                row.update((k, v) for k, v in child.items() if k not in ("_id", "data_file"))
                row["_data"] = part_data_path({**child, "_id": row_id})
            rows.append(row)
    return rows


def table_rows(phone: Phone, target: ContentTarget) -> list[Row]:
    if target.authority == "mms":
        return mms_table_rows(phone, target.table)
    rows: list[Row] = phone.get(target.fixture_key) or []
    return rows


def sqlite() -> ModuleType:
    """sqlite3's C module, ``_sqlite3``: ``connect`` and ``Error`` of the sqlite3 package
    are its own; the package adds DB-API names and adapters for date and datetime
    values, which the fakes never bind, and importing it costs a content call datetime
    and collections.abc on top, milliseconds."""
    try:
        import _sqlite3
    except ImportError:  # an interpreter whose sqlite3 is made otherwise
        import sqlite3 as _sqlite3
    return _sqlite3


def _sql_value(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str, bytes)):
        return value
    import json

    return json.dumps(value)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def build_table(db: Any, target: ContentTarget, rows: Sequence[Row]) -> list[str]:
    """Create ``target.table`` in the sqlite connection ``db`` with the provider's
    columns (plus any extra keys fixture rows carry) and load ``rows``."""
    names = [c for c, _, _ in target.columns]
    known = set(names)
    extras: list[str] = []
    for row in rows:
        for key in row:
            if key not in known:
                known.add(key)
                extras.append(key)
    defs = [f"{_quote_ident(c)} {t}" for c, t, _ in target.columns]
    defs += [_quote_ident(c) for c in extras]
    db.execute(f"CREATE TABLE {target.table} ({', '.join(defs)})")
    defaults = {c: d for c, _, d in target.columns}
    names += extras
    marks = ", ".join("?" * len(names))
    db.executemany(
        f"INSERT INTO {target.table} VALUES ({marks})",
        ([_sql_value(row.get(c, defaults.get(c))) for c in names] for row in rows),
    )
    return names


def _sqlite_error(exc: Exception, sql: str) -> ProviderError:
    return ProviderError(
        f"android.database.sqlite.SQLiteException: {exc} (code 1 SQLITE_ERROR): , "
        f"while compiling: {sql}"
    )


def java_float_text(value: float) -> str:
    """Java's ``String.valueOf(cursor.getFloat(i))``: the cursor narrows to float;
    shortest digits that identify it; plain in [1e-3, 1e7), else ``d.dddE<n>``."""
    import math
    import struct
    from decimal import Decimal

    narrowed = _float32(value)
    if math.isnan(narrowed):
        return "NaN"
    if math.isinf(narrowed):
        return "Infinity" if narrowed > 0 else "-Infinity"
    if narrowed == 0:
        return "-0.0" if math.copysign(1.0, narrowed) < 0 else "0.0"
    packed = struct.pack("<f", narrowed)
    text = f"{narrowed:.8e}"
    for digits in range(9):
        text = f"{narrowed:.{digits}e}"
        if struct.pack("<f", float(text)) == packed:
            break
    mantissa, exponent = text.split("e")
    if 1e-3 <= abs(narrowed) < 1e7:
        plain = format(Decimal(text), "f")
        if "." not in plain:
            return plain + ".0"
        plain = plain.rstrip("0")
        return plain + "0" if plain.endswith(".") else plain
    sign = "-" if mantissa.startswith("-") else ""
    digits_text = mantissa.lstrip("-").replace(".", "").rstrip("0") or "0"
    return f"{sign}{digits_text[0]}.{digits_text[1:] or '0'}E{int(exponent)}"


def cell_text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "BLOB"
    if isinstance(value, float):
        return java_float_text(value)
    return str(value)


def content_query(phone: Phone, target: ContentTarget, command: ContentCommand) -> str:
    sqlite3 = sqlite()
    db = sqlite3.connect(":memory:")
    try:
        build_table(db, target, table_rows(phone, target))
        columns = ", ".join(command.projection) if command.projection else "*"
        conditions = target.conditions()
        if target.table == "pdu":
            conditions += pdu_visibility(phone)
        if command.where:
            conditions.append(f"({command.where})")
        sql = f"SELECT {columns} FROM {target.table}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sort = command.sort or target.default_sort
        if sort:
            sql += " ORDER BY " + sort
        try:
            cursor = db.execute(sql)
            rows = cursor.fetchall()
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, sql) from None
        names = [d[0] for d in cursor.description]
    finally:
        db.close()
    if not rows:
        return "No result found.\n"
    lines = []
    for index, row in enumerate(rows):
        pairs = zip(names, row, strict=True)
        cells = ", ".join(f"{name}={cell_text(value)}" for name, value in pairs)
        lines.append(f"Row: {index} {cells}\n")
    return "".join(lines)


def _matching_ids(phone: Phone, target: ContentTarget, where: str | None) -> set[int]:
    sqlite3 = sqlite()
    db = sqlite3.connect(":memory:")
    try:
        build_table(db, target, phone.get(target.fixture_key) or ())
        conditions = target.conditions() + ([f"({where})"] if where else [])
        sql = f"SELECT _id FROM {target.table}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        try:
            return {int(r[0]) for r in db.execute(sql)}
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, sql.replace("SELECT _id FROM", "DELETE FROM")) from None
    finally:
        db.close()


def _typed_values(target: ContentTarget, phone: Phone, values: dict[str, Any]) -> Row | None:
    """The bound values as SQLite stores them (column affinity), or None when the
    real ``SQLiteDatabase.insert`` would fail (unknown column, bad primary key):
    it logs the error and returns -1, so the insert is silently lost."""
    sqlite3 = sqlite()
    known = {c for c, _, _ in target.columns}
    for row in phone.get(target.fixture_key) or ():
        known.update(row)
    if not set(values) <= known:
        return None
    db = sqlite3.connect(":memory:")
    try:
        defs = [f"{_quote_ident(c)} {t}" for c, t, _ in target.columns]
        defs += [_quote_ident(c) for c in sorted(known - {c for c, _, _ in target.columns})]
        db.execute(f"CREATE TABLE t ({', '.join(defs)})")
        names = list(values)
        quoted = ", ".join(_quote_ident(n) for n in names)
        try:
            db.execute(
                f"INSERT INTO t ({quoted}) VALUES ({', '.join('?' * len(names))})",
                [values[n] for n in names],
            )
        except sqlite3.Error:
            return None
        stored = db.execute(f"SELECT {quoted} FROM t").fetchone()
    finally:
        db.close()
    return dict(zip(names, stored, strict=True))


def _next_id(rows: Sequence[Row]) -> int:
    return max((int(r["_id"]) for r in rows if isinstance(r.get("_id"), int)), default=0) + 1


def thread_for_address(messages: Sequence[Row], address: str) -> int:
    """FakePhone's rule: the thread of the first row with this address, else a new
    one (the highest thread id + 1)."""
    highest = 0
    for row in messages:
        thread = row.get("thread_id")
        if not isinstance(thread, int):
            continue
        if row.get("address") == address:
            return thread
        highest = max(highest, thread)
    return highest + 1


def sms_insert(phone: Phone, target: ContentTarget, values: dict[str, Any], uid: int) -> bool:
    """SmsProvider.insert as the shell user or root.  Returns whether a row was
    stored.  Mirrors: the WRITE_SMS app-op (silent drop), the box URIs setting
    ``type``, ``date`` defaulting to now, ``thread_id`` from the address, drafts
    replacing the thread's draft, non-inbox rows marked read, ``creator``."""
    # silent: root is held to com.android.shell's app-op as well (not verified).
    if appop_mode(phone, SHELL_PACKAGE, "WRITE_SMS") != "allow":
        return False
    if target.row_id is not None:
        raise ProviderError(
            f"java.lang.UnsupportedOperationException: Invalid URI: content://sms/{target.row_id}"
        )
    typed = _typed_values(target, phone, values)
    if typed is None:
        return False
    messages: list[Row] = phone.setdefault("messages", [])
    if "_id" in typed and any(r.get("_id") == typed["_id"] for r in messages):
        return False  # UNIQUE constraint: SQLiteDatabase.insert logs and returns -1
    if target.box:
        typed["type"] = target.box  # the brief: a box URI forces its type
    elif typed.get("type") is None:
        typed["type"] = 1  # content://sms defaults to the inbox
    if typed.get("date") is None:
        typed["date"] = int(time.time() * 1000)
    address = typed.get("address")
    if not typed.get("thread_id") and isinstance(address, str) and address:
        typed["thread_id"] = thread_for_address(messages, address)
    if typed["type"] == 3 and typed.get("thread_id") is not None:
        messages[:] = [
            r
            for r in messages
            if not (r.get("type") == 3 and r.get("thread_id") == typed["thread_id"])
        ]
    if typed["type"] != 1:
        typed["read"] = 1
    typed["creator"] = "root" if uid == ROOT_UID else SHELL_PACKAGE
    typed.setdefault("_id", _next_id(messages))
    row: Row = {}
    for key in SMS_CORE_KEYS:
        if key in typed and not (key == "thread_id" and typed[key] is None):
            row[key] = typed[key]
        elif key in ("address", "body"):
            row[key] = None
        elif key == "read":
            row[key] = 0
    for key, value in typed.items():
        row.setdefault(key, value)
    messages.append(row)
    return True


def call_insert(phone: Phone, target: ContentTarget, values: dict[str, Any]) -> bool:
    """CallLogProvider.insert: no app-op; ``date`` defaults to now (silent)."""
    if target.row_id is not None:
        raise ProviderError(
            "java.lang.IllegalArgumentException: Cannot insert into URL: "
            f"content://call_log/calls/{target.row_id}"
        )
    typed = _typed_values(target, phone, values)
    if typed is None:
        return False
    calls: list[Row] = phone.setdefault("calls", [])
    if "_id" in typed and any(r.get("_id") == typed["_id"] for r in calls):
        return False
    if typed.get("date") is None:
        typed["date"] = int(time.time() * 1000)
    row: Row = {"_id": typed.pop("_id", None) or _next_id(calls)}
    row.update(typed)
    calls.append(row)
    return True


def content_error_exit(phone: Phone) -> int:
    value = phone.get("content_error_exit", 1)
    return int(value) if isinstance(value, int) else 1


def provider_failure(phone: Phone, authority: str, java_line: str) -> int:
    sys.stderr.write(
        f"Error while accessing provider:{authority}\n{java_line}\n"
        "\tat com.android.commands.content.Content$Command.execute(Content.java:524)\n"
        "\tat com.android.commands.content.Content.main(Content.java:735)\n"
        "\tat com.android.internal.os.RuntimeInit.nativeFinishInit(Native Method)\n"
    )
    sys.stderr.flush()
    return content_error_exit(phone)


def check_fail_after(phone: Phone, authority: str) -> None:
    fail_after = phone.get("content_fail_after")
    done = int(phone.get("content_inserts_done") or 0)
    if isinstance(fail_after, int) and done >= fail_after:
        raise ProviderError(
            f"java.lang.IllegalStateException: Could not find provider: {authority} "
            f"(fake: content_fail_after={fail_after} reached)"
        )


def content_read(phone: Phone, target: ContentTarget, uri: str) -> None:
    """``content read``: the provider's ``openFile(uri, "r")`` copied to stdout.
    Only MmsProvider's ``mms/part/<id>`` opens files (openFileHelper over
    ``_data``); SmsProvider and CallLogProvider keep ContentProvider's default."""
    import shutil

    if target.authority != "mms":
        raise ProviderError(
            f"java.io.FileNotFoundException: No files supported by provider at {uri}"
        )
    if target.table != "part" or target.row_id is None:
        raise ProviderError(  # MmsProvider.openFile returns null; Content.java uses it
            "java.lang.NullPointerException: Attempt to invoke virtual method "
            "'java.io.FileDescriptor android.os.ParcelFileDescriptor.getFileDescriptor()' "
            "on a null object reference"
        )
    rows = [r for r in mms_table_rows(phone, "part") if r.get("_id") == target.row_id]
    if not rows:
        raise ProviderError(f"java.io.FileNotFoundException: No entry for {uri}")
    if rows[0].get("_data") is None:
        raise ProviderError("java.io.FileNotFoundException: Column _data not found.")
    parts = [p for m in phone.get("mms") or () for p in m.get("parts") or ()]
    source = next((part_data_file(p) for p in parts if p.get("_id") == target.row_id), None)
    try:
        handle = open(source or "", "rb")  # noqa: SIM115 - closed below
    except OSError:
        raise ProviderError(
            f"java.io.FileNotFoundException: {rows[0]['_data']}: open failed: ENOENT "
            "(No such file or directory)"
        ) from None
    with handle:
        sys.stdout.flush()
        shutil.copyfileobj(handle, sys.stdout.buffer, 1 << 20)
        sys.stdout.buffer.flush()


# ----------------------------------------------------------------- MMS writes
# mms-provider.md: MmsProvider is gated by the WRITE_SMS app-op only (no default-app
# check); shell and root read through the restricted view; Android 14+ checks sub_id.

RESTRICTED_PDU = "msg_box IN (1, 2) AND (m_type IS NULL OR m_type != 130)"
"""The view ``pdu_restricted`` that shell and root read: inbox and sent, no notifications."""
TEXT_IN_COLUMN = ("text/plain", "application/smil")
"""Part types whose content stays in ``text``; every other type gets a provider-made file."""
ADDR_KEYS = ("address", "type", "charset", "contact_id")
PART_KEYS = ("seq", "ct", "name", "chset", "cd", "fn", "cid", "cl", "ctt_s", "ctt_t", "text")


def sdk_level(phone: Phone) -> int:
    props = phone.get("props") or {}
    value = str(props.get("ro.build.version.sdk", "34")) if isinstance(props, dict) else "34"
    return int(value) if value.isdigit() else 34


def user_subscriptions(phone: Phone) -> list[int] | None:
    """The user's subscription ids (fixture ``subscriptions``) on Android 14+, else None.
    silent: without the key every ``sub_id`` counts as the user's (no filtering)."""
    subs = phone.get("subscriptions")
    if sdk_level(phone) < 34 or not isinstance(subs, list):
        return None
    return [int(s) for s in subs if isinstance(s, int)]


def pdu_visibility(phone: Phone) -> list[str]:
    """What a shell/root query of ``content://mms`` sees: the restricted view, and on
    Android 14+ only rows whose ``sub_id`` is -1 or one of the user's."""
    conditions = [RESTRICTED_PDU]
    subs = user_subscriptions(phone)
    if subs is not None:
        conditions.append(f"sub_id IN ({', '.join(str(s) for s in [*subs, -1])})")
    return conditions


def has_select(text: str) -> bool:
    """``re.search(r"\\bselect\\b", text, re.I)`` finds something.  For ASCII text that
    is "select" in any case with no word character (ASCII letter, digit, "_") either
    side; beyond ASCII \\w and IGNORECASE have their own rules (the long s matches
    "s"), so the pattern decides."""
    if not text.isascii():
        import re

        return re.search(r"\bselect\b", text, re.I) is not None
    lower = text.lower()
    start = lower.find("select")
    while start >= 0:
        before = lower[start - 1 : start]
        after = lower[start + 6 : start + 7]
        if not _word_char(before) and not _word_char(after):
            return True
        start = lower.find("select", start + 1)
    return False


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"  # "" (an end of the text) is not


def refuse_subqueries(command: ContentCommand) -> None:
    """Restricted callers may not use the word SELECT (no subqueries past the view)."""
    texts = [*(command.projection or []), command.where or "", command.sort or ""]
    if any(has_select(text) for text in texts):
        raise ProviderError(
            "java.lang.IllegalArgumentException: Restricted caller: SELECT is not allowed "
            "in projection, selection or sort order"
        )


def strict_projection(phone: Phone, command: ContentCommand) -> None:
    """Fixture ``content_strict_projection``: a provider with a strict projection map
    (a vendor's, say) takes column names only, no expressions such as hex(col).
    silent: AOSP's MmsProvider sets no projection map, so by default expressions pass."""
    if not phone.get("content_strict_projection"):
        return
    import re

    for column in command.projection or ():
        if not re.fullmatch(r"\w+", column):
            raise ProviderError(f"java.lang.IllegalArgumentException: Invalid column {column}")


def _visible_mms(phone: Phone, mms_id: int) -> Row | None:
    """The pdu row ``mms_id`` if a part write or insert under it may touch it."""
    for mms in phone.get("mms") or ():
        if mms.get("_id") == mms_id:
            subs = user_subscriptions(phone)
            sub_id = mms.get("sub_id", -1)
            if subs is not None and sub_id not in (*subs, -1):
                return None
            return mms
    return None


def _next_child_id(phone: Phone, key: str) -> int:
    rows = mms_table_rows(phone, "addr" if key == "addresses" else "part")
    return max((int(r["_id"]) for r in rows), default=0) + 1


def mms_insert(phone: Phone, target: ContentTarget, values: dict[str, Any], uid: int) -> bool:
    """MmsProvider.insert of a pdu row, a part or an address; whether a row was stored.

    Every refusal is silent, as ``content insert`` prints nothing either way."""
    if appop_mode(phone, SHELL_PACKAGE, "WRITE_SMS") != "allow":
        return False  # the app-op: a dummy uri/0, nothing stored
    if target.table == "pdu":
        return _pdu_insert(phone, target, values, uid)
    if target.parent_id is None:
        return False  # content://mms/part and content://mms/addr refuse inserts
    mms = _visible_mms(phone, target.parent_id)
    if mms is None:
        return False  # silent: no such message (or a foreign sub_id): null
    if target.table == "addr":
        row: Row = {"_id": _next_child_id(phone, "addresses")}
        row.update((k, values[k]) for k in ADDR_KEYS if k in values)
        mms.setdefault("addresses", []).append(row)
        return True
    if "_data" in values:
        return False  # the provider refuses a caller-supplied _data
    part: Row = {"_id": _next_child_id(phone, "parts")}
    part.update((k, values[k]) for k in PART_KEYS if k in values)
    part.setdefault("seq", 0)
    if str(part.get("ct") or "") not in TEXT_IN_COLUMN:
        location = str(part.get("cl") or "")
        suffix = "_" + os.path.basename(location) if location else ""
        millis = int(time.time() * 1000)
        part["_data"] = f"{MMS_PART_DIR}/PART_{millis}{suffix}"
        fixture_dir = os.path.dirname(os.path.abspath(os.environ[PHONE_ENV]))
        folder = os.path.join(fixture_dir, "mms-parts")
        os.makedirs(folder, exist_ok=True)
        host = os.path.join(folder, f"PART_{part['_id']}")
        open(host, "wb").close()  # the provider creates the (empty) file at once
        part["data_file"] = host
    mms.setdefault("parts", []).append(part)
    return True


def _pdu_insert(phone: Phone, target: ContentTarget, values: dict[str, Any], uid: int) -> bool:
    if target.row_id is not None or target.parent_id is not None:
        return False
    if "address" in values:
        return False  # [I] thread_id from an address: no such pdu column, the insert fails
    known = {c for c, _, _ in PDU_COLUMNS} - {"_id"}
    row: Row = {k: v for k, v in values.items() if k in known}  # _id, unknown keys dropped
    subs = user_subscriptions(phone)
    if subs is not None:
        sub_id = row.get("sub_id", -1)
        if sub_id not in (*subs, -1):
            return False  # Android 14+: a foreign sub_id makes the insert return null
    row["msg_box"] = target.box or row.get("msg_box") or 1
    if row.get("date") is None:
        row["date"] = int(time.time())  # seconds
    if row["msg_box"] != 1:
        row["read"] = 1
    row["creator"] = "root" if uid == ROOT_UID else SHELL_PACKAGE
    rows: list[Row] = phone.setdefault("mms", [])
    row = {"_id": _next_id(rows), **row, "addresses": [], "parts": []}
    rows.append(row)
    return True


def mms_delete(phone: Phone, target: ContentTarget, where: str | None) -> bool:
    """Delete pdu rows (as the view shows them) with their parts, addresses and files."""
    if appop_mode(phone, SHELL_PACKAGE, "WRITE_SMS") != "allow":
        return False
    if target.table != "pdu" or target.parent_id is not None:
        raise ProviderError(
            "java.lang.UnsupportedOperationException: fake content tool: only pdu rows are deleted"
        )
    doomed = _matching_pdu_ids(phone, target, where)
    kept = []
    for mms in phone.get("mms") or ():
        if mms.get("_id") not in doomed:
            kept.append(mms)
            continue
        for part in mms.get("parts") or ():
            source = part_data_file(part)
            if source:
                import contextlib

                with contextlib.suppress(OSError):
                    os.remove(source)
    phone["mms"] = kept
    return bool(doomed)


def _matching_pdu_ids(phone: Phone, target: ContentTarget, where: str | None) -> set[int]:
    sqlite3 = sqlite()
    db = sqlite3.connect(":memory:")
    try:
        build_table(db, target, mms_table_rows(phone, "pdu"))
        conditions = target.conditions() + pdu_visibility(phone)
        conditions += [f"({where})"] if where else []
        sql = "SELECT _id FROM pdu WHERE " + " AND ".join(conditions)
        try:
            return {int(r[0]) for r in db.execute(sql)}
        except sqlite3.Error as exc:
            raise _sqlite_error(exc, sql.replace("SELECT _id FROM", "DELETE FROM")) from None
    finally:
        db.close()


def content_write(phone: Phone, target: ContentTarget, uri: str) -> None:
    """``content write``: ``openFile(uri, "w")``, stdin copied in until EOF.

    Needs the WRITE_SMS app-op like every MMS write; only ``mms/part/<id>`` with a
    provider-made ``_data`` opens.  ``content_write_fail_after`` (bytes) makes the
    copy fail after that many bytes, the file left half written."""
    if target.authority != "mms":
        raise ProviderError(
            f"java.io.FileNotFoundException: No files supported by provider at {uri}"
        )
    if appop_mode(phone, SHELL_PACKAGE, "WRITE_SMS") != "allow":
        raise ProviderError("java.io.FileNotFoundException: App op not allowed")
    if target.table != "part" or target.row_id is None:
        raise ProviderError(
            "java.lang.NullPointerException: Attempt to invoke virtual method "
            "'java.io.FileDescriptor android.os.ParcelFileDescriptor.getFileDescriptor()' "
            "on a null object reference"
        )
    found = None
    for mms in phone.get("mms") or ():
        for part in mms.get("parts") or ():
            if part.get("_id") == target.row_id and _visible_mms(phone, mms["_id"]):
                found = part
    if found is None:
        raise ProviderError(f"java.io.FileNotFoundException: No entry for {uri}")
    source = part_data_file(found)
    if part_data_path(found) is None or source is None:
        raise ProviderError("java.io.FileNotFoundException: Column _data not found.")
    limit = phone.get("content_write_fail_after")
    written = 0
    with open(source, "wb") as handle:
        while chunk := sys.stdin.buffer.read(1 << 16):
            if isinstance(limit, int) and written + len(chunk) > limit:
                handle.write(chunk[: max(limit - written, 0)])
                raise ProviderError(
                    "java.io.IOException: write failed: ENOSPC (No space left on device)"
                )
            handle.write(chunk)
            written += len(chunk)


def thread_id_query(phone: Phone, target: ContentTarget) -> str:
    """``content://mms-sms/threadID?recipient=A&recipient=B``: the thread of exactly that
    set of addresses, created when missing (MmsSmsProvider.getThreadId).

    silent: addresses compare as strings (Android compares phone numbers loosely)."""
    from urllib.parse import unquote

    recipients = []
    for pair in (target.query or "").split("&"):
        key, _, value = pair.partition("=")
        if unquote(key) == "recipient" and value:
            recipients.append(unquote(value))  # Uri decodes %XX; '+' stays '+'
    if not recipients:
        raise ProviderError(
            "java.lang.IllegalArgumentException: Unable to find or allocate a thread ID."
        )
    wanted = sorted(set(recipients))
    threads: list[Row] = phone.setdefault("threads", [])
    for thread in threads:
        if sorted(set(thread.get("recipients") or ())) == wanted:
            return f"Row: 0 _id={thread['_id']}\n"
    found = _thread_of_messages(phone, wanted)
    if found is None:
        found = 1 + max(
            [int(t["_id"]) for t in threads]
            + [int(m["thread_id"]) for m in phone.get("messages") or () if m.get("thread_id")]
            + [int(m["thread_id"]) for m in phone.get("mms") or () if m.get("thread_id")],
            default=0,
        )
    threads.append({"_id": found, "recipients": wanted})
    save_phone(phone)
    return f"Row: 0 _id={found}\n"


def _thread_of_messages(phone: Phone, wanted: list[str]) -> int | None:
    """A thread the fixture's messages already hold for this set (FakePhone's rule)."""
    if len(wanted) == 1:
        for sms in phone.get("messages") or ():
            if sms.get("address") == wanted[0] and isinstance(sms.get("thread_id"), int):
                return int(sms["thread_id"])
    for mms in phone.get("mms") or ():
        others = sorted(
            {
                str(a.get("address"))
                for a in mms.get("addresses") or ()
                if a.get("address") not in (None, "insert-address-token")
            }
        )
        if others == wanted and isinstance(mms.get("thread_id"), int):
            return int(mms["thread_id"])
    return None


def main_content(argv: Sequence[str]) -> int:
    """Android's ``content`` tool over the fixture (``messages``, ``calls``, and
    ``mms``: query of pdu/addr/part rows, ``read``/``write`` of part bytes, inserts
    of pdu, part and address rows, delete by a message's URI, the threadID lookup).

    Order as in Content.java: parse (errors: usage + ``[ERROR] ...`` on stdout,
    exit 0), then reach the provider: refused without rish/su, failing once
    ``content_fail_after`` inserts are done, else run.  Provider failures print
    ``Error while accessing provider:<authority>`` and a Java exception on stderr and
    exit ``content_error_exit`` (default 1; silent: by AOSP's code it would be 0).
    """
    tool = "content"
    log_invocation(tool, argv)
    phone = load_phone(tool)
    pay_call_cost(phone, "content_call_cost")
    escaping = phone.get("content_escaping", "modern")
    if escaping not in CONTENT_ESCAPINGS:
        fail(tool, f"fake content: content_escaping must be one of {CONTENT_ESCAPINGS}", 2)
    try:
        if argv[:1] == ["write"] and phone.get("content_has_write") is False:
            raise ContentArgError("Unsupported operation: write")  # Android 6 and older
        command = parse_content_args(argv, escaping)
    except ContentArgError as exc:
        write_stdout(f"{CONTENT_USAGE}\n[ERROR] {exc}\n")
        return 0
    if command.uri is None:
        fail(tool, f"fake content: '{command.operation}' is not modelled by the fake", 2)
    authority = uri_authority(command.uri)
    uid = caller_uid()
    if uid is None:
        return provider_failure(
            phone,
            authority,
            "java.lang.SecurityException: Permission Denial: getContentProviderExternal() "
            f"from pid={os.getpid()}, uid={APP_UID} requires "
            "android.permission.ACCESS_CONTENT_PROVIDERS_EXTERNALLY",
        )
    try:
        check_fail_after(phone, authority)
        target = resolve_uri(command.uri)
        if command.operation == "query" and target.table == "threadID":
            with FixtureLock(tool):
                phone = load_phone(tool)
                write_stdout(thread_id_query(phone, target))
            return 0
        if command.operation == "query":
            if target.authority == "mms":
                refuse_subqueries(command)
                strict_projection(phone, command)
            write_stdout(content_query(phone, target, command))
            return 0
        if command.operation == "read":
            content_read(phone, target, command.uri)
            return 0
        if command.operation == "write":
            content_write(phone, target, command.uri)
            return 0
        with FixtureLock(tool):
            phone = load_phone(tool)  # afresh, under the lock
            check_fail_after(phone, authority)  # parallel callers may have got there
            if command.operation == "delete" and target.authority == "mms":
                if mms_delete(phone, target, command.where):
                    save_phone(phone)
                return 0
            if command.operation == "delete":
                if (
                    target.table == "sms"
                    and appop_mode(phone, SHELL_PACKAGE, "WRITE_SMS") != "allow"
                ):
                    return 0  # silently rejected like inserts
                doomed = _matching_ids(phone, target, command.where)
                rows = phone.get(target.fixture_key) or []
                phone[target.fixture_key] = [r for r in rows if r.get("_id") not in doomed]
                if doomed:
                    save_phone(phone)
                return 0
            if target.authority == "mms":
                stored = mms_insert(phone, target, command.values, uid)
            elif target.table == "sms":
                stored = sms_insert(phone, target, command.values, uid)
            else:
                stored = call_insert(phone, target, command.values)
            if stored:
                phone["content_inserts_done"] = int(phone.get("content_inserts_done") or 0) + 1
                save_phone(phone)
            return 0
    except ProviderError as exc:
        return provider_failure(phone, authority, exc.java_line)
