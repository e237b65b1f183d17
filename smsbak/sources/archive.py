"""Archive files as a source: SMS Backup & Restore XML and SMS Import / Export exports,
any number of them, told apart by their content (a renamed ``backup.txt`` still reads).

Every file is checked before the first record goes anywhere: it exists, it is one of
the known formats, and it is not hostile where that shows up front (a DOCTYPE in an
XML file, a ZIP over its bounds, see ``smsbak.formats.smsie``). A command naming five
files then either imports them or stops with a clear error naming the file, never half.
Damage further in (a truncated file) shows only while reading; the readers then raise
:class:`smsbak.errors.DamagedFileError` after everything before it was handed on.

Records come in file order, not newest first like the phone's pages: sorting would
mean holding a file of gigabytes. The import engine needs no order (identity decides).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from smsbak.errors import UsageError
from smsbak.formats.common import FileRecord, ReadStats
from smsbak.formats.sbr import CALLS_ROOT, MESSAGES_ROOT, read_sbr
from smsbak.formats.smsie import (
    MESSAGES_ENTRY,
    open_messages_zip,
    read_smsie_calls,
    read_smsie_messages,
)

HEAD_BYTES = 64 * 1024
"""How much of a file is looked at to tell its format: the root element of an XML file
comes after at most a declaration and a comment or two."""

_ROOT = re.compile(rb"<(?!\?|!)([A-Za-z_][\w.-]*)")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


class FileKind(enum.Enum):
    """What a file holds, and so which label its records go under."""

    SBR_MESSAGES = "SMS Backup & Restore messages"
    SBR_CALLS = "SMS Backup & Restore call log"
    SMSIE_MESSAGES = "SMS Import / Export messages"
    SMSIE_CALLS = "SMS Import / Export call log"

    @property
    def holds_calls(self) -> bool:
        return self in (FileKind.SBR_CALLS, FileKind.SMSIE_CALLS)


@dataclass(frozen=True)
class ArchiveFile:
    path: Path
    kind: FileKind
    size: int

    @property
    def holds_calls(self) -> bool:
        return self.kind.holds_calls

    @property
    def description(self) -> str:
        return self.kind.value

    def read(
        self, stats: ReadStats, on_bytes: Callable[[int], None] | None = None
    ) -> Iterator[FileRecord]:
        """The records in file order; damage raises after what preceded it."""
        if self.kind is FileKind.SMSIE_MESSAGES:
            return read_smsie_messages(self.path, stats=stats, on_bytes=on_bytes)
        if self.kind is FileKind.SMSIE_CALLS:
            return read_smsie_calls(self.path, stats=stats, on_bytes=on_bytes)
        root = CALLS_ROOT if self.kind is FileKind.SBR_CALLS else MESSAGES_ROOT
        return read_sbr(self.path, stats=stats, roots=(root,), on_bytes=on_bytes)


SUPPORTED = (
    "SMS Backup & Restore's sms-*.xml and calls-*.xml, or SMS Import / Export's"
    " messages .zip and calls-*.json"
)


def _not_importable(path: Path, why: str) -> UsageError:
    return UsageError(f"{path} cannot be imported: {why}", hint=f"smsbak imports {SUPPORTED}.")


def detect(path: Path) -> ArchiveFile:
    """The kind of ``path`` by its content; a UsageError naming the file otherwise."""
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
        size = path.stat().st_size
    except IsADirectoryError:
        raise _not_importable(path, "it is a folder") from None
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist", hint="Check the file name.") from None
    except OSError as error:
        raise UsageError(
            f"cannot read {path}: {error.strerror or error}",
            hint="Check that the file is readable (termux-setup-storage for Downloads).",
        ) from error
    if not head.strip():
        raise UsageError(f"{path} is empty", hint=f"Copy it again; smsbak imports {SUPPORTED}.")
    if head.startswith(_ZIP_MAGIC):
        with open_messages_zip(path) as archive:  # refuses hostile archives up front
            if MESSAGES_ENTRY not in archive.namelist():
                raise _not_importable(
                    path, f"it is a ZIP archive without {MESSAGES_ENTRY} (not a messages export)"
                )
        return ArchiveFile(path, FileKind.SMSIE_MESSAGES, size)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        return ArchiveFile(path, FileKind.SMSIE_CALLS, size)
    if text.startswith(b"<"):
        if re.search(rb"<!DOCTYPE", head, re.IGNORECASE):
            raise UsageError(
                f"{path} is refused: it holds a DOCTYPE declaration (entities are never expanded)",
                hint="SMS Backup & Restore never writes one; export the file again from the app.",
            )
        root = _ROOT.search(text)
        name = root.group(1).decode("ascii", "replace") if root else ""
        if name == MESSAGES_ROOT:
            return ArchiveFile(path, FileKind.SBR_MESSAGES, size)
        if name == CALLS_ROOT:
            return ArchiveFile(path, FileKind.SBR_CALLS, size)
        shown = f"<{name}>" if name else "no element"
        raise _not_importable(path, f"it is XML whose root is {shown}, not <smses> or <calls>")
    raise _not_importable(path, "it is neither XML, JSON nor a ZIP archive")


class ArchiveSource:
    """The records of several archive files, one file after the other, streaming."""

    def __init__(self, paths: Sequence[Path]) -> None:
        if not paths:
            raise UsageError("no file to import", hint=f"Name one or more files: {SUPPORTED}.")
        self.files = [detect(path) for path in paths]

    @property
    def identity(self) -> str:
        return "file:" + ",".join(str(f.path) for f in self.files)

    @property
    def description(self) -> str:
        return f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}"

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)
