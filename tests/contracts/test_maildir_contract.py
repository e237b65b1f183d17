"""The Maildir destination passes the destination contract, on a real filesystem."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from smsbak.destinations.maildir import MaildirDestination
from smsbak.ports import Destination, Outgoing
from tests.contracts.destination_contract import DestinationContract


def without_message_id(item: Outgoing) -> Outgoing:
    """The same email with its Message-ID line removed: a Maildir cannot tell a second
    copy of it apart, so it refuses it for good."""
    lines = item.raw.split(b"\r\n")
    kept = [line for line in lines if not line.lower().startswith(b"message-id:")]
    assert len(kept) == len(lines) - 1
    return Outgoing(item.key, b"\r\n".join(kept), "", item.date_ms, item.seen)


class TestMaildirContract(DestinationContract):
    identity_pattern = r"maildir:/.+"
    missing_remote_id = ".SMS/1700000000.M1P1R0.nohost"

    @pytest.fixture
    def destination(self, tmp_path: Path) -> Iterator[Destination]:
        maildir = MaildirDestination(tmp_path / "Maildir")
        yield maildir
        maildir.close()

    def reopen(self, destination: Destination) -> Destination:
        assert isinstance(destination, MaildirDestination)
        return MaildirDestination(destination.root)

    @contextmanager
    def rejecting(self, destination: Destination, item: Outgoing) -> Iterator[Outgoing]:
        yield without_message_id(item)
