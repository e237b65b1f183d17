"""What the readers of both exchange formats share: the record they hand out with the
name the file gave it, the counts of what they passed over, and one lenient integer.

The files come from other apps and other people, so nothing in them is trusted: a
value that is not a number is "unusable", never an exception, and every reason a
record was left out is counted (and a few examples kept with their position) so an
import can say what it skipped and why without holding the whole list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from smsbak.mime import INSERT_ADDRESS_TOKEN, is_smil
from smsbak.model import AddressKind, Call, Mms, MmsPart, Sms

Record = Sms | Mms | Call

MAX_EXAMPLES = 20
"""Skipped records whose reason is kept word for word; the rest are only counted."""


def to_int(value: object) -> int | None:
    """An integer column as these apps write it (a string, sometimes a number);
    None for anything else, booleans included (JSON ``true`` is not a count)."""
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


@dataclass(frozen=True)
class FileRecord:
    """One record read from a file, with the names the file gave its addresses
    (``contact_name``, ``__display_name``): a phone backup names people from the
    contact book, an import from the file, so both emails read alike. ``position``
    says where it stood (``line 12``), for messages about it. ``incomplete`` says why
    the record lacks something the file should have held (an MMS attachment missing
    or not decodable); the record is still handed on, with that part's ``data`` None."""

    record: Record
    names: dict[str, str] = field(default_factory=dict)
    position: str = ""
    incomplete: str | None = None


@dataclass
class ReadStats:
    """What a reader passed over; filled in while the caller iterates.

    ``invalid_skipped`` counts records without a usable date or type (or an MMS
    without a usable ``msg_box``), ``bad_data`` MMS parts whose base64 did not decode
    and ``missing_data`` parts whose ``data/`` file is absent (both read with
    ``data`` None). ``examples`` holds the first few reasons with their position.
    """

    sms: int = 0
    mms: int = 0
    calls: int = 0
    invalid_skipped: int = 0
    bad_data: int = 0
    missing_data: int = 0
    written_by_smsbak: bool = False
    examples: list[str] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.invalid_skipped += 1
        self.note(reason)

    def note(self, reason: str) -> None:
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(reason)

    def count(self, record: Record) -> None:
        if isinstance(record, Sms):
            self.sms += 1
        elif isinstance(record, Mms):
            self.mms += 1
        else:
            self.calls += 1


# --- MMS as the content provider keeps it (both formats hold raw provider rows) ---------

MULTIPART_RELATED = "application/vnd.wap.multipart.related"
UTF8_MIB = "106"
_MIB_CHARSETS = {
    "3": "ascii",
    "4": "latin-1",
    "17": "shift_jis",
    "18": "euc-jp",
    "36": "euc-kr",
    "39": "iso-2022-jp",
    "106": "utf-8",
    "1000": "utf-16-be",
    "1015": "utf-16",
    "2025": "gb2312",
    "2026": "big5",
}


def subject_to_provider(subject: str) -> tuple[str, str]:
    """``(sub, sub_cs)`` as Android stores a subject: UTF-8 bytes as ISO-8859-1 characters
    (``PduPersister.toIsoString``)."""
    return subject.encode("utf-8", "surrogatepass").decode("latin-1"), UTF8_MIB


def subject_from_provider(sub: str, sub_cs: str | None) -> str:
    """The subject text of a raw ``sub`` column; as it stands when it is not in that form."""
    charset = _MIB_CHARSETS.get((sub_cs or "").strip())
    if charset is None:
        return sub
    try:
        return sub.encode("latin-1").decode(charset)
    except (UnicodeEncodeError, UnicodeDecodeError):
        return sub


def part_content_type(value: str | None) -> str:
    """A part's ``ct``; a part without one is taken as bytes."""
    return "application/octet-stream" if value is None else value


def part_seqs(parts: Sequence[MmsPart]) -> list[int]:
    """``seq`` as Android numbers parts: a leading SMIL part -1, the others from 0."""
    seqs: list[int] = []
    following = 0
    for index, part in enumerate(parts):
        if index == 0 and is_smil(part):
            seqs.append(-1)
        else:
            seqs.append(following)
            following += 1
    return seqs


def participant_addresses(mms: Mms) -> list[str]:
    """Every distinct address of ``mms`` but the insert-address placeholder, in order."""
    seen: list[str] = []
    for address, _kind in mms.addresses:
        if address != INSERT_ADDRESS_TOKEN and address and address not in seen:
            seen.append(address)
    return seen


def first_from(mms: Mms) -> int | None:
    """Index of the first FROM address of ``mms``."""
    return next((i for i, (_, k) in enumerate(mms.addresses) if k is AddressKind.FROM), None)
