"""A real Destination that keeps its folders in memory: the twin the engine tests use.

Modelled on vdirsyncer's MemoryStorage: not a mock that records calls but a small,
complete implementation of the port, so an engine test exercises the same
promises the contract suite checks on Gmail, IMAP and Maildir. It can be told to
behave like a server that does not merge a second copy of a Message-ID (most IMAP
servers, a Maildir), and to fail *after* it stored a message but before it
confirmed it (a connection dropped at the worst moment), so exactly-once can be
tested without a network.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from smsbak.errors import DestinationError
from smsbak.ports import Confirmed, DestinationCapabilities, Outgoing, Rejected

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(.*?)\r?$", re.IGNORECASE | re.MULTILINE)


def message_id_of(raw: bytes) -> str:
    """The Message-ID header of an email (as written, with angle brackets), or ""."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    match = _MESSAGE_ID.search(head)
    return match.group(1).strip().decode("ascii", "replace") if match else ""


@dataclass
class StoredMessage:
    remote_id: str
    folder: str
    raw: bytes
    message_id: str
    date_ms: int
    seen: bool


@dataclass
class _Folder:
    name: str
    handle: str
    messages: list[str] = field(default_factory=list)
    """Remote ids, oldest stored first."""


class MemoryDestination:
    """An in-memory mailbox: folders of raw emails, ids ``mem-N``.

    ``reject`` decides per item whether the "server" refuses it for good (a reason)
    or stores it (None). ``after_store`` is called with each item right after it
    was stored and before it is confirmed: raise from it to simulate a connection
    that dropped once the server had the message. ``stores`` counts every message
    actually stored (an APPEND), so a test can see that a no-op run stored nothing.
    """

    def __init__(
        self,
        name: str = "default",
        *,
        merges_message_ids: bool = True,
        readable: bool = True,
        counts_folder: bool = True,
        batch_size: int = 50,
        reject: Callable[[Outgoing], str | None] | None = None,
        after_store: Callable[[Outgoing], None] | None = None,
    ) -> None:
        self.name = name
        self._capabilities = DestinationCapabilities(
            readable=readable, merges_message_ids=merges_message_ids, counts_folder=counts_folder
        )
        self.batch_size = batch_size
        self.reject = reject
        self.after_store = after_store
        self.messages: dict[str, StoredMessage] = {}
        self.stores = 0
        self.lookups = 0
        self.closed = False
        self._folders: dict[str, _Folder] = {}
        self._ids = itertools.count(1)

    # --- the port -----------------------------------------------------------------

    @property
    def identity(self) -> str:
        return f"memory:{self.name}"

    @property
    def capabilities(self) -> DestinationCapabilities:
        return self._capabilities

    @property
    def description(self) -> str:
        return f"the memory destination {self.name!r}"

    def ensure_folder(self, name: str) -> str:
        if name not in self._folders:
            self._folders[name] = _Folder(name, f"folder-{len(self._folders) + 1}")
        return self._folders[name].handle

    def find_folder(self, name: str) -> str | None:
        folder = self._folders.get(name)
        return folder.handle if folder else None

    def upload(
        self,
        items: Iterable[Outgoing],
        folder: str,
        *,
        on_confirmed: Callable[[Sequence[Confirmed]], None],
        on_rejected: Callable[[Rejected], None],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        target = self._folder(folder)
        batch: list[Confirmed] = []
        for item in items:  # lazily, like the real ones
            if should_stop():
                break
            reason = self.reject(item) if self.reject else None
            if reason is not None:
                on_rejected(Rejected(item.key, reason))
                continue
            remote_id = self._store(target, item)
            if self.after_store is not None:
                if batch:  # what was confirmed before the drop stays confirmed
                    on_confirmed(batch)
                    batch = []
                self.after_store(item)
            batch.append(Confirmed(item.key, remote_id))
            if len(batch) >= self.batch_size:
                on_confirmed(batch)
                batch = []
        if batch:
            on_confirmed(batch)

    def find_message_ids(self, folder: str, message_ids: Sequence[str]) -> dict[str, str]:
        self.lookups += 1
        wanted = set(message_ids)
        found: dict[str, str] = {}
        for remote_id in self._folder(folder).messages:
            stored = self.messages[remote_id]
            if stored.message_id in wanted:
                found.setdefault(stored.message_id, remote_id)
        return found

    def count(self, folder: str) -> int:
        return len(self._folder(folder).messages)

    def list_ids(self, folder: str, query: str = "") -> Iterator[str]:
        """Newest stored first, like Gmail's listing; ``query`` is not supported."""
        self._require_readable()
        return iter(list(reversed(self._folder(folder).messages)))

    def fetch_raw(
        self,
        ids: Iterable[str],
        *,
        on_fetched: Callable[[Sequence[tuple[str, bytes]]], None],
        on_rejected: Callable[[str, str], None],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self._require_readable()
        batch: list[tuple[str, bytes]] = []
        for remote_id in ids:
            if should_stop():
                break
            stored = self.messages.get(remote_id)
            if stored is None:
                on_rejected(remote_id, "404 notFound: no such message")
                continue
            batch.append((remote_id, stored.raw))
            if len(batch) >= self.batch_size:
                on_fetched(batch)
                batch = []
        if batch:
            on_fetched(batch)

    def close(self) -> None:
        self.closed = True

    # --- for tests ------------------------------------------------------------------

    def folder_messages(self, name: str) -> list[StoredMessage]:
        """What folder ``name`` holds, oldest stored first (empty when it does not exist)."""
        folder = self._folders.get(name)
        return [self.messages[i] for i in folder.messages] if folder else []

    def copies_of(self, message_id: str) -> int:
        return sum(1 for m in self.messages.values() if m.message_id == message_id)

    # --- inside -----------------------------------------------------------------------

    def _folder(self, handle: str) -> _Folder:
        for folder in self._folders.values():
            if folder.handle == handle:
                return folder
        raise DestinationError(f"{self.description} has no folder {handle!r}")

    def _require_readable(self) -> None:
        if not self._capabilities.readable:
            raise DestinationError(f"{self.description} cannot be read with this login")

    def _store(self, folder: _Folder, item: Outgoing) -> str:
        message_id = item.message_id or message_id_of(item.raw)
        if self._capabilities.merges_message_ids and message_id:
            for remote_id in folder.messages:
                if self.messages[remote_id].message_id == message_id:
                    return remote_id  # Gmail answers with the copy it already has
        remote_id = f"mem-{next(self._ids)}"
        self.messages[remote_id] = StoredMessage(
            remote_id, folder.name, item.raw, message_id, item.date_ms, item.seen
        )
        folder.messages.append(remote_id)
        self.stores += 1
        return remote_id
