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
from dataclasses import dataclass
from typing import Protocol

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
