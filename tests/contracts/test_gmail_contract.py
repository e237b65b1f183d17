"""Gmail (through the real googleapiclient, against the loopback emulator) passes the
destination contract: with the restore login that can read, and with the backup login
that can only insert and count (its copies are counted through the emulator)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from smsbak.gmail.auth import BACKUP_SCOPES, GMAIL_INSERT, GMAIL_LABELS, GMAIL_READONLY, load_token
from smsbak.gmail.client import GmailMailbox
from smsbak.gmail.pacing import TokenBucket
from smsbak.gmail.transport import connect
from smsbak.ports import Confirmed, Destination, Outgoing
from tests.conftest import ACCOUNT, write_token
from tests.contracts.destination_contract import DestinationContract
from tests.fakes.gmail_emulator import GmailEmulator

OnConfirmed = Callable[[Sequence[Confirmed]], None]


class _GmailContract(DestinationContract):
    identity_pattern = r"gmail:[^@\s]+@[^@\s]+"
    readable = True
    scopes: tuple[str, ...] = (GMAIL_INSERT, GMAIL_LABELS, GMAIL_READONLY)

    @pytest.fixture
    def destination(self, tmp_path: Path, emulator: GmailEmulator) -> Iterator[Destination]:
        self.emulator = emulator
        self.home = tmp_path
        write_token(tmp_path, emulator, list(self.scopes))
        mailbox = self._open()
        yield mailbox
        mailbox.close()

    def _open(self) -> GmailMailbox:
        token = load_token(self.home / "token.json")
        connection = connect(token.credentials, self.emulator.url)
        return GmailMailbox(
            connection.service,
            connection.batch_uri,
            TokenBucket(15_000_000, capacity=1_250_000),
            sleep=lambda _: None,
            rng=random.Random(1),
            account=token.account,
            readable=self.readable,
        )

    def reopen(self, destination: Destination) -> Destination:
        return self._open()  # as the next run builds it: a new client, the same account

    @contextmanager
    def rejecting(self, destination: Destination, item: Outgoing) -> Iterator[Outgoing]:
        """An email Gmail refuses for good: an empty one (400 invalidArgument)."""
        yield replace(item, raw=b"\r\n")

    @contextmanager
    def drop_after_store(
        self, destination: Destination
    ) -> Iterator[Callable[[OnConfirmed], OnConfirmed]]:
        """The connection resets after Gmail stored the batch: the client sends it again
        and Gmail keeps one copy of each Message-ID."""
        self.emulator.drop_after_commit(1)
        try:
            yield lambda on_confirmed: on_confirmed
        finally:
            self.emulator.clear_faults()

    def stored_copies(self, destination: Destination, folder: str, message_id: str) -> int:
        return sum(
            1
            for m in self.emulator.messages()
            if folder in m.label_ids and m.message_id == message_id
        )

    def test_identity_names_the_account(self, destination: Destination) -> None:
        assert destination.identity == f"gmail:{ACCOUNT}"
        assert destination.capabilities.merges_message_ids
        assert destination.capabilities.readable is self.readable


class TestGmailReadLoginContract(_GmailContract):
    readable = True


class TestGmailBackupLoginContract(_GmailContract):
    """The token on the phone: insert and labels only. It cannot read back, but Gmail
    merges copies and counts a label, which is all a backup needs."""

    readable = False
    scopes = tuple(BACKUP_SCOPES)
