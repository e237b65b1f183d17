"""The small interfaces the engines see: where records come from, where emails go, where
restored records are written.

Nothing here imports an adapter. Adapters (``smsbak.destinations.*``, ``smsbak.phone.*``,
``smsbak.formats.*`` ...) implement these protocols; the engines and the daemon import
only this module, the codec, the store and the model, so a new destination or source is
one more adapter and one more run of the contract suite, never an engine change.

What a destination or target can do is *declared* here (``DestinationCapabilities``),
so the engines never probe an adapter with ``getattr`` or ``isinstance``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import tzinfo
from typing import Generic, Protocol, TypeVar

from smsbak.model import Call, Mms, Sms

T = TypeVar("T")

# --- what comes in -------------------------------------------------------------------


@dataclass(frozen=True)
class PhoneSms:
    """An SMS as read, with the contact name the reader gave for it (termux: inbox only)."""

    sms: Sms
    contact_name: str | None

    @property
    def identity(self) -> str:
        """What tells two rows apart across pages: the row id, else the fingerprint."""
        return str(self.sms.android_id) if self.sms.android_id is not None else self.sms.fingerprint

    @property
    def date_ms(self) -> int:
        return self.sms.date_ms


@dataclass(frozen=True)
class PhoneCall:
    """A call-log entry as read, with the cached name the reader gave for it."""

    call: Call
    contact_name: str | None

    @property
    def identity(self) -> str:
        return self.call.fingerprint  # termux-call-log has no row id

    @property
    def date_ms(self) -> int:
        return self.call.date_ms


@dataclass(frozen=True)
class PhoneMms:
    """An MMS as read, or the id of one that could not be read (reported, never dropped)."""

    mms: Mms | None
    """Without attachment bytes: a scan holds only what identity and planning need."""
    row_id: int
    date_ms: int
    problem: str | None = None
    contact_name: str | None = None
    file_parts: tuple[int | None, ...] = ()
    """Per part, the part row whose bytes ``read_part`` fetches at upload time."""
    read_part: Callable[[int, int], bytes] | None = field(default=None, compare=False, repr=False)
    """(part row id, MMS row id) -> the part's bytes, read from the source when encoding."""

    @property
    def identity(self) -> str:
        return f"mms-{self.row_id}"

    def with_attachments(self) -> Mms:
        """The whole MMS, bytes included, read now: memory holds one message at a time."""
        assert self.mms is not None
        if self.read_part is None or not any(self.file_parts):
            return self.mms
        read = self.read_part
        parts = tuple(
            part if part_id is None else replace(part, data=read(part_id, self.row_id), text=None)
            for part, part_id in zip(self.mms.parts, self.file_parts, strict=True)
        )
        return replace(self.mms, parts=parts)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One answer of a paged reader, newest first, plus rows it could not use."""

    messages: list[T]
    rows: int
    unusable: int


SmsPage = Page[PhoneSms]
CallPage = Page[PhoneCall]
MmsPage = Page[PhoneMms]


@dataclass(frozen=True)
class Contact:
    name: str
    number: str


class ContactNames(Protocol):
    """The address book as the encoder asks it: a name for an address, or None."""

    def name_for(self, address: str) -> str | None: ...


@dataclass(frozen=True)
class SourceCapabilities:
    """Which kinds of record a source can read at all (declared, never probed)."""

    sms: bool = True
    calls: bool = True
    mms: bool = False


class Source(Protocol):
    """Where records come from: Termux:API, Shizuku or root, an archive file, the memory twin.

    Pages come newest first; a kind the capabilities deny yields no pages.
    """

    @property
    def identity(self) -> str:
        """``termux``, ``shizuku``, ``root``, ``file:...``, ``memory``: which reader read
        (a switch of reader makes the engine scan everything once)."""

    @property
    def description(self) -> str:
        """For people: "Termux:API", "Shizuku (rish)", "root (su)"."""

    @property
    def capabilities(self) -> SourceCapabilities: ...

    @property
    def zone(self) -> tzinfo:
        """The zone the phone's wall-clock times are read in."""

    def sms_newest_first(self, page_size: int) -> Iterator[SmsPage]: ...

    def calls_newest_first(self, page_size: int) -> Iterator[CallPage]: ...

    def mms_newest_first(self, page_size: int) -> Iterator[MmsPage]: ...

    def contacts(self) -> list[Contact]: ...


# --- what goes up --------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """One encoded email to store.

    ``key`` lets the caller match answers to its records (the fingerprint).
    ``message_id`` is the email's Message-ID (with angle brackets), by which a
    destination that does not merge duplicates looks up an upload whose outcome is
    unknown before sending it again. ``date_ms`` is the message's own date (IMAP's
    INTERNALDATE, the Maildir file's time) and ``seen`` its read state (IMAP ``\\Seen``,
    Maildir flag ``S``).
    """

    key: str
    raw: bytes
    message_id: str = ""
    date_ms: int = 0
    seen: bool = True


@dataclass(frozen=True)
class Confirmed:
    """The destination stored ``key``; ``remote_id`` is its name for it there
    (a Gmail id, an IMAP UID as ``UIDVALIDITY:UID``, a Maildir file's unique name)."""

    key: str
    remote_id: str

    @property
    def gmail_id(self) -> str:  # the state store's historic column name
        return self.remote_id


@dataclass(frozen=True)
class Rejected:
    """The destination refused ``key`` for good (retrying will not help)."""

    key: str
    reason: str


@dataclass(frozen=True)
class DestinationCapabilities:
    readable: bool
    """Can this login list and fetch what a folder holds (restore, adoption, verify)?
    False for Gmail's insert-only backup login."""
    merges_message_ids: bool
    """Does the server itself keep one copy when the same Message-ID is stored twice
    (Gmail does; Dovecot, Maildir and most IMAP servers do not)? When False, the engine
    looks up every upload whose outcome is unknown before sending it again."""
    counts_folder: bool = False
    """Can it tell how many messages a folder holds even when not ``readable``
    (Gmail's labels scope can)?"""


class Destination(Protocol):
    """Where emails go: Gmail, an IMAP mailbox, a Maildir, or the in-memory twin.

    Folders are named by their label (``SMS``, ``Call log``); ``ensure_folder``
    returns the destination's handle for one (a Gmail label id, an IMAP mailbox name),
    which the other calls take.
    """

    @property
    def identity(self) -> str:
        """Stable name of the place: ``gmail:ACCOUNT``, ``imap:USER@HOST:PORT``,
        ``maildir:/absolute/path``, ``memory:NAME``. The state store keys on it."""

    @property
    def capabilities(self) -> DestinationCapabilities: ...

    @property
    def description(self) -> str:
        """For people: "Gmail (me@example.com)", "IMAP me@example.com on imap.example.com"."""

    def ensure_folder(self, name: str) -> str:
        """The folder for ``name``, created when missing."""

    def find_folder(self, name: str) -> str | None:
        """The folder for ``name`` if it exists, without creating it."""

    def upload(
        self,
        items: Iterable[Outgoing],
        folder: str,
        *,
        on_confirmed: Callable[[Sequence[Confirmed]], None],
        on_rejected: Callable[[Rejected], None],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Store every item, calling ``on_confirmed`` as soon as the server confirmed
        some (the caller records them at once) and ``on_rejected`` for each refused for
        good. Items are consumed lazily (a first backup streams). An item whose outcome
        a dropped connection left unknown is looked up by Message-ID before it is sent
        again. Raises an :class:`smsbak.errors.SmsbakError` when it cannot go on; what
        was confirmed before stays confirmed."""

    def find_message_ids(self, folder: str, message_ids: Sequence[str]) -> dict[str, str]:
        """Which of these Message-IDs the folder already holds: {message_id: remote_id}.
        Used before re-sending what an earlier, interrupted run may have stored."""

    def count(self, folder: str) -> int:
        """How many messages the folder holds (``capabilities.counts_folder``)."""

    def list_ids(self, folder: str, query: str = "") -> Iterator[str]:
        """Every message in the folder, as remote ids (``capabilities.readable``)."""

    def fetch_raw(
        self,
        ids: Iterable[str],
        *,
        on_fetched: Callable[[Sequence[tuple[str, bytes]]], None],
        on_rejected: Callable[[str, str], None],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """The raw RFC 5322 bytes of these messages, in batches."""

    def close(self) -> None: ...


# --- where restored records go ---------------------------------------------------------


@dataclass(frozen=True)
class TargetCapabilities:
    sms: bool = True
    mms: bool = True
    calls: bool = False
    existing_in: str = "on the phone"
    """Where what ``existing_fingerprints`` names already is, for the summary: a phone
    target and a file for the phone skip what the phone holds, the archive site what it
    already shows."""


class RestoreTarget(Protocol):
    """Where a restore writes: the phone, an XML or SMS Import/Export file, an HTML site."""

    @property
    def description(self) -> str: ...

    @property
    def capabilities(self) -> TargetCapabilities: ...

    def existing_fingerprints(self) -> set[str] | None:
        """What the target already holds (None when it cannot tell: a new file)."""

    def prepare(self) -> None: ...

    def write(
        self,
        messages: Sequence[object],
        *,
        on_written: Callable[[Sequence[object]], None],
        on_rejected: Callable[[object, str], None],
    ) -> None: ...

    def finish(self) -> None: ...

    def next_steps(self) -> list[str]: ...
