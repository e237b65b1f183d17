"""The in-memory twin passes the destination contract, as a merging server (Gmail) and
as one that keeps every copy (Dovecot, most IMAP servers), so engine tests over it
rest on the same promises as the real destinations."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pytest

from smsbak.destinations.memory import MemoryDestination
from smsbak.errors import DestinationError
from smsbak.ports import Confirmed, Destination, Outgoing
from tests.contracts.destination_contract import DestinationContract

OnConfirmed = Callable[[Sequence[Confirmed]], None]


class _MemoryContract(DestinationContract):
    identity_pattern = r"memory:[\w-]+"
    merges = True

    @pytest.fixture
    def destination(self) -> Iterator[Destination]:
        twin = MemoryDestination("contract", merges_message_ids=self.merges)
        yield twin
        twin.close()

    @contextmanager
    def rejecting(self, destination: Destination, item: Outgoing) -> Iterator[Outgoing]:
        assert isinstance(destination, MemoryDestination)
        destination.reject = lambda i: "400 invalidArgument" if i.key == item.key else None
        try:
            yield item
        finally:
            destination.reject = None

    @contextmanager
    def drop_after_store(
        self, destination: Destination
    ) -> Iterator[Callable[[OnConfirmed], OnConfirmed]]:
        """The twin's own fault: the connection drops once the first item is stored."""
        assert isinstance(destination, MemoryDestination)

        def drop(item: Outgoing) -> None:
            destination.after_store = None
            raise DestinationError("connection reset after the server stored the message")

        destination.after_store = drop
        try:
            yield lambda on_confirmed: on_confirmed
        finally:
            destination.after_store = None


class TestMemoryMergingContract(_MemoryContract):
    merges = True


class TestMemoryNotMergingContract(_MemoryContract):
    merges = False
