"""SMS Import / Export call log: a ``calls-YYYY-MM-DD.json`` that app imports.

What SMS Import / Export (github.com/tmo1/sms-ie, ``ImportExportCallLog.kt``) does,
and what follows for us:

* Export writes one JSON *array* (not NDJSON, not zipped) with Android's
  ``JsonWriter`` indented by two spaces: one object per ``content://call_log/calls``
  row holding every column that is not null, each value a JSON string
  (``cursor.getString``), plus ``display_name`` when the contact is known. We
  write the same layout byte for byte: two-space indent, ``": "`` after names, no
  newline at the end.
* Import reads every value with ``nextString()``, so a value must be a string (or a
  number): a ``null``, boolean or nested value aborts the whole import. It copies
  each key that is a column of the phone's call log except ``_id``, ``_count`` and
  ``LAST_SEVEN_NUMBER``; other keys (``display_name``) are ignored. It inserts a
  row only when ``number`` is present and ``type`` is not ``"4"``: **voicemail
  entries are skipped on import**, so a restore through this app must tell the user
  that voicemail calls were not restored. Its optional duplicate check compares
  number, type and date.
* So we always write ``number`` (empty for an unknown caller, with presentation
  "unknown", as Android stores it), ``date``, ``duration`` and ``type``, plus
  ``new`` ``0`` and ``is_read`` ``1`` so restored missed calls raise no
  notification, and the contact's name both as ``name`` (the cached name the call
  log shows) and as ``display_name``, as the app does. Columns smsbak does not know
  (phone account, country, geocoding) are left out rather than invented; a column
  an older phone lacks is dropped by the import.

JSON carries any text exactly: controls are escaped by the encoder, the rest is
UTF-8. A lone surrogate (not valid UTF-8) makes us write that one object with
ASCII escapes, which Java's reader turns back into the same UTF-16 unit. The
reader streams the array element by element, accepts numbers as well as strings
for numeric columns, and reads a missing ``duration`` as 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path

from smsbak.errors import UsageError
from smsbak.formats.calls_xml import CallsReadStats, CallsWriteReport, presentation
from smsbak.model import Call, CallType
from smsbak.paths import private_file_atomically

__all__ = [
    "CallsReadStats",
    "CallsWriteReport",
    "call_from_row",
    "call_row",
    "read_calls_json",
    "write_calls_json",
]

CHUNK_SIZE = 256 * 1024
MAX_ELEMENT_CHARS = 16 * 1024 * 1024
"""A call-log entry is a few hundred characters; an unfinished one this long means
the file is broken, and reading on would only fill memory before saying so."""

_WHITESPACE = " \t\n\r"
_INDENT = "  "


def call_row(call: Call, display_name: str | None = None) -> dict[str, str]:
    """The JSON object SMS Import / Export would have exported for ``call``."""
    row: dict[str, str] = {
        "number": call.number,
        "presentation": str(presentation(call.number)),
        "date": str(call.date_ms),
        "duration": str(call.duration_s),
        "type": str(int(call.type)),
        "new": "0",
    }
    if call.sim_id is not None:
        row["subscription_id"] = call.sim_id
    if display_name:
        row["name"] = display_name
    row["is_read"] = "1"
    if display_name:
        row["display_name"] = display_name
    return row


def _element(row: Mapping[str, str]) -> bytes:
    """``row`` as ``JsonWriter`` with a two-space indent puts it inside the array."""
    text = json.dumps(row, ensure_ascii=False, indent=_INDENT)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only \u escapes can carry it
        data = json.dumps(row, ensure_ascii=True, indent=_INDENT).encode("ascii")
    # JSON strings hold no raw newline, so every line break here is layout.
    return b"\n" + _INDENT.encode() + data.replace(b"\n", b"\n" + _INDENT.encode())


def write_calls_json(
    path: Path,
    calls: Iterable[Call],
    *,
    contact_names: Mapping[str, str] | None = None,
) -> CallsWriteReport:
    """Write ``calls`` as a call log SMS Import / Export imports (it skips voicemail).

    Streams: one record in memory at a time, to an owner-only temporary file that
    replaces ``path`` only when complete.
    """
    names = contact_names or {}
    count = 0
    with private_file_atomically(path, "wb") as out:
        out.write(b"[")
        for call in calls:
            if count:
                out.write(b",")
            out.write(_element(call_row(call, names.get(call.number))))
            count += 1
        out.write(b"\n]" if count else b"]")
    return CallsWriteReport(path=path, count=count)


# --- reading ---------------------------------------------------------------------------


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def call_from_row(row: Mapping[str, object]) -> Call | None:
    """The record of one exported call-log object, or None when it is unusable.

    ``date`` and ``type`` must be integers (as strings or numbers) and ``type`` one
    smsbak models; ``duration`` may be missing (0) but not garbage.
    """
    date_ms = _int(row.get("date"))
    call_type = _int(row.get("type"))
    if date_ms is None or call_type is None or call_type not in CallType._value2member_map_:
        return None
    duration_s = _int(row["duration"]) if row.get("duration") is not None else 0
    if duration_s is None:
        return None
    number = row.get("number")
    sim_id = row.get("subscription_id")
    return Call(
        number=number if isinstance(number, str) else "" if number is None else str(number),
        date_ms=date_ms,
        duration_s=duration_s,
        type=CallType(call_type),
        sim_id=None if sim_id is None or sim_id in ("", "null") else str(sim_id),
    )


class _ArrayReader:
    """Hands out the elements of one top-level JSON array, reading the file in chunks.

    Python's ``json`` has no streaming parser, so each element is decoded with
    ``raw_decode`` from a window of the file. When an element fails to decode, or
    ends exactly at the window's end (a number could go on), the window grows, by
    at least its own size so a long element costs linear time, and decoding is
    tried again; only at the end of the file, or past ``MAX_ELEMENT_CHARS``, is
    the failure the file's fault.
    """

    def __init__(self, path: Path, chunk_size: int) -> None:
        self.path = path
        self.chunk_size = chunk_size
        self.decoder = json.JSONDecoder()
        self.buffer = ""
        self.pos = 0
        self.consumed = 0  # characters dropped from the front of the buffer
        self.eof = False

    def _fill(self, handle: Iterator[str]) -> bool:
        """Read more; False at the end of the file."""
        if self.eof:
            return False
        self.consumed += self.pos
        pending = self.buffer[self.pos :]
        wanted = max(self.chunk_size, len(pending))
        pieces = [pending]
        got = 0
        for piece in handle:
            pieces.append(piece)
            got += len(piece)
            if got >= wanted:
                break
        else:
            self.eof = True
        self.buffer = "".join(pieces)
        self.pos = 0
        return got > 0

    def _broken(self, what: str, at: int | None = None) -> UsageError:
        offset = self.consumed + (self.pos if at is None else at)
        return UsageError(
            f"{self.path} is not a well-formed SMS Import / Export call log:"
            f" {what} at character {offset}",
            hint="The file may be truncated; copy it again from the phone, or export it again.",
        )

    def _next_char(self, handle: Iterator[str]) -> str | None:
        """The next character that is not whitespace (not consumed), None at the end."""
        while True:
            while self.pos < len(self.buffer) and self.buffer[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buffer):
                return self.buffer[self.pos]
            if not self._fill(handle):
                return None

    def elements(self, handle: Iterator[str]) -> Iterator[object]:
        if self._next_char(handle) != "[":
            raise UsageError(
                f"{self.path} is not an SMS Import / Export call log (no JSON array)",
                hint="Pick the calls-*.json file, not the messages or contacts export.",
            )
        self.pos += 1
        if self._next_char(handle) == "]":
            return
        while True:
            yield self._decode(handle)
            separator = self._next_char(handle)
            if separator == "]":
                return
            if separator != ",":
                raise self._broken("expected ',' or ']'" if separator else "unexpected end")
            self.pos += 1
            self._next_char(handle)

    def _decode(self, handle: Iterator[str]) -> object:
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as error:
                if self._grow(handle):
                    continue
                raise self._broken(error.msg, error.pos) from error
            if end == len(self.buffer) and self._grow(handle):
                continue
            self.pos = end
            return value

    def _grow(self, handle: Iterator[str]) -> bool:
        if len(self.buffer) - self.pos > MAX_ELEMENT_CHARS:
            return False
        return self._fill(handle)


def read_calls_json(
    path: Path, *, stats: CallsReadStats | None = None, chunk_size: int = CHUNK_SIZE
) -> Iterator[Call]:
    """Yield the calls of an SMS Import / Export call log, element by element.

    Voicemail entries are yielded like any other (that app skips them only on
    import). Elements that are not objects or lack a usable ``date`` or ``type``
    are counted in ``stats``. A malformed file raises ``UsageError`` where it
    breaks, after the calls before it were yielded.
    """
    counts = stats if stats is not None else CallsReadStats()
    reader = _ArrayReader(path, chunk_size)
    try:
        # utf-8-sig: a byte-order mark that an editor added is not part of the JSON
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for element in reader.elements(iter(partial(handle.read, chunk_size), "")):
                call = call_from_row(element) if isinstance(element, dict) else None
                if call is None:
                    counts.invalid_skipped += 1
                else:
                    counts.calls += 1
                    yield call
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{path} is not UTF-8 text: {error}",
            hint="Pick the calls-*.json file SMS Import / Export wrote.",
        ) from error
