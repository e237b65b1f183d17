"""SMS Import / Export archives: a ZIP whose ``messages.ndjson`` that app imports.

What SMS Import / Export (github.com/tmo1/sms-ie, ``ImportExportMessages.kt``) does,
and what follows for us:

* Export writes one JSON object per line, SMS first, then MMS. Each object holds the
  ``content://sms`` columns that are not null, every value as a JSON *string*
  (``cursor.getString``), plus ``__display_name`` when the contact is known. We
  write the same: string values, the provider's column order, no spaces.
* Import finds the ``messages.ndjson`` entry by name, reads it line by line, treats an
  object with ``m_type`` as MMS, and copies every key that is a column of the phone's
  SMS table except ``_id``, ``thread_id``, ``deleted``, ``sync_state`` and
  ``need_download``; other keys (``__display_name``) are ignored, ``sub_id`` is reset
  to -1 unless the user asks otherwise. No key is required, but threads are made
  from ``address`` and its optional duplicate check compares address, type, date and
  body. We leave out ``_id`` and ``thread_id``: import drops ``_id``, and an old
  ``thread_id`` would only be used to group messages, which goes wrong when records
  from two phones share a number; without it each message joins the thread of its
  address.
* Columns we do not know are left out (null) rather than invented: ``date_sent``
  is written ``0`` as Android does for old rows, ``seen`` ``1`` so the restore
  does not raise notifications, ``protocol`` and ``reply_path_present`` only on
  received messages, as Android stores them. ``read`` unknown is written ``1``:
  restored history should not look new.

JSON carries any text exactly: controls are escaped by the encoder, the rest is
UTF-8. A lone surrogate (not valid UTF-8) makes us write that one line with
ASCII escapes, which JSON readers, Java's included, turn back into the same
UTF-16 unit. The reader accepts numbers as well as strings for numeric columns.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from smsbak.errors import UsageError
from smsbak.model import Box, Sms
from smsbak.paths import private_file_atomically

MESSAGES_ENTRY = "messages.ndjson"


@dataclass
class SmsieWriteReport:
    """What ``write_smsie_zip`` wrote, for the restore report."""

    path: Path
    count: int


@dataclass
class SmsieReadStats:
    """What ``read_smsie_zip`` passed over; filled in while the caller iterates.

    MMS are not read yet; ``invalid_skipped`` counts lines that are not JSON objects
    or lack a usable ``date`` or ``type``.
    """

    sms: int = 0
    mms_skipped: int = 0
    invalid_skipped: int = 0


def sms_row(sms: Sms, display_name: str | None = None) -> dict[str, str]:
    """The JSON object SMS Import / Export would have exported for ``sms``."""
    row: dict[str, str] = {
        "address": sms.address,
        "date": str(sms.date_ms),
        "date_sent": "0",
    }
    if sms.box is Box.INBOX:
        row["protocol"] = "0"
    row["read"] = "0" if sms.read is False else "1"
    row["status"] = "-1"
    row["type"] = str(int(sms.box))
    if sms.box is Box.INBOX:
        row["reply_path_present"] = "0"
    row["body"] = sms.body
    row["locked"] = "0"
    row["sub_id"] = "-1"
    row["error_code"] = "0"
    row["seen"] = "1"
    if display_name:
        row["__display_name"] = display_name
    return row


def _line(row: Mapping[str, str]) -> bytes:
    text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only \u escapes can carry it
        return (json.dumps(row, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def write_smsie_zip(
    path: Path,
    messages: Iterable[Sms],
    *,
    contact_names: Mapping[str, str] | None = None,
) -> SmsieWriteReport:
    """Write ``messages`` as an archive SMS Import / Export imports (Android 6+, as
    default SMS app). Streams: one record in memory at a time."""
    names = contact_names or {}
    count = 0
    with (
        private_file_atomically(path, "wb") as handle,
        zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open(MESSAGES_ENTRY, "w") as entry,
    ):
        for sms in messages:
            entry.write(_line(sms_row(sms, names.get(sms.address))))
            count += 1
    return SmsieWriteReport(path=path, count=count)


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


def _str(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return str(value)


def sms_from_row(row: Mapping[str, object]) -> Sms | None:
    """The record of one exported SMS object, or None when date or type is unusable."""
    date_ms = _int(row.get("date"))
    box = _int(row.get("type"))
    if date_ms is None or box is None or box not in Box._value2member_map_:
        return None
    read = _int(row.get("read"))
    return Sms(
        address=_str(row.get("address")),
        body=_str(row.get("body")),
        date_ms=date_ms,
        box=Box(box),
        read=None if read not in (0, 1) else bool(read),
    )


def read_smsie_zip(path: Path, *, stats: SmsieReadStats | None = None) -> Iterator[Sms]:
    """Yield the SMS of an SMS Import / Export archive, line by line from the ZIP.

    Objects with ``m_type`` are MMS and only counted in ``stats`` for now.
    ``thread_id`` and ``android_id`` are always None: they belong to the phone that
    exported and mean nothing to the one restored to.
    """
    counts = stats if stats is not None else SmsieReadStats()
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise UsageError(
            f"{path} is not a ZIP archive: {error}",
            hint="SMS Import / Export (version 2 and later) exports a .zip file.",
        ) from error
    with archive:
        try:
            raw = archive.open(MESSAGES_ENTRY)
        except KeyError as error:
            raise UsageError(
                f"{path} has no {MESSAGES_ENTRY}",
                hint="Pick the messages archive, not the call log or contacts export.",
            ) from error
        # newline="\n": JSON escapes CR and LF inside strings, and U+2028 must not split
        with raw, io.TextIOWrapper(raw, encoding="utf-8", newline="\n") as lines:
            try:
                for line in lines:
                    sms = _parse_line(line, counts)
                    if sms is not None:
                        yield sms
            except (UnicodeDecodeError, zipfile.BadZipFile, EOFError, zlib.error) as error:
                raise UsageError(
                    f"{path}: {MESSAGES_ENTRY} is damaged: {error}",
                    hint="Copy the archive again from the phone, or export it again.",
                ) from error


def _parse_line(line: str, counts: SmsieReadStats) -> Sms | None:
    """One line of messages.ndjson: an SMS, or None after counting why not."""
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        counts.invalid_skipped += 1
        return None
    if not isinstance(row, dict):
        counts.invalid_skipped += 1
        return None
    if "m_type" in row:
        counts.mms_skipped += 1
        return None
    sms = sms_from_row(row)
    if sms is None:
        counts.invalid_skipped += 1
        return None
    counts.sms += 1
    return sms
