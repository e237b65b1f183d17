"""The IMAP destination passes the destination contract against a real Dovecot, which
(unlike Gmail) keeps a second copy of a Message-ID: over TLS with the test CA passed as
imap_ca_file, and in plain text on loopback through a proxy that can cut a connection
right after the server stored a message."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from smsbak.destinations.imap import ImapAccount, ImapDestination
from smsbak.ports import Destination, Outgoing
from tests.contracts.destination_contract import DestinationContract, OnConfirmed
from tests.fakes.dovecot import Dovecot, LatencyProxy

pytest_plugins = ["tests.fakes.dovecot_fixtures"]

TOO_BIG = 25 * 1024 * 1024  # the test Dovecot refuses mails over 24 MiB, for good


def too_big(item: Outgoing) -> Outgoing:
    line = b"x" * 76 + b"\r\n"
    return Outgoing(
        item.key, item.raw + line * (TOO_BIG // len(line)), item.message_id, item.date_ms
    )


class ImapContract(DestinationContract):
    identity_pattern = r"imap:[^\s:]+@127\.0\.0\.1:\d+"
    missing_remote_id = "1:999999"

    def account(self, dovecot: Dovecot, proxy: LatencyProxy) -> ImapAccount:
        raise NotImplementedError

    @pytest.fixture
    def destination(self, dovecot: Dovecot, proxy: LatencyProxy) -> Iterator[Destination]:
        self._proxy = proxy
        self._dovecot = dovecot
        imap = ImapDestination(self.account(dovecot, proxy), retry_delays=(0.0, 0.0))
        yield imap
        imap.close()

    def stored_copies(self, destination: Destination, folder: str, message_id: str) -> int:
        """Asked of Dovecot itself, by a client of its own: headers only."""
        return self._dovecot.message_ids(folder).count(message_id)

    def reopen(self, destination: Destination) -> Destination:
        assert isinstance(destination, ImapDestination)
        return ImapDestination(destination.account)

    @contextmanager
    def rejecting(self, destination: Destination, item: Outgoing) -> Iterator[Outgoing]:
        yield too_big(item)


class TestImapTlsContract(ImapContract):
    """Implicit TLS, the certificate checked against the test CA (imap_ca_file). The
    lost confirmation is the default one: the process dies in the callback."""

    def account(self, dovecot: Dovecot, proxy: LatencyProxy) -> ImapAccount:
        return ImapAccount(
            host="127.0.0.1", port=dovecot.tls_port, user=dovecot.user,
            password=dovecot.password, security="tls", ca_file=str(dovecot.ca_file),
        )  # fmt: skip


class TestImapPlainContract(ImapContract):
    """Plain text on loopback through the proxy, which loses the confirmation the
    network way: the connection is cut after the server stored the message."""

    def account(self, dovecot: Dovecot, proxy: LatencyProxy) -> ImapAccount:
        return ImapAccount(
            host="127.0.0.1", port=proxy.port, user=dovecot.user,
            password=dovecot.password, security="plain", connections=2,
        )  # fmt: skip

    @contextmanager
    def drop_after_store(
        self, destination: Destination
    ) -> Iterator[Callable[[OnConfirmed], OnConfirmed]]:
        proxy = self._proxy
        proxy.drop_after_appends = proxy.appends_answered + 1
        yield lambda on_confirmed: on_confirmed
        assert proxy.drops == 1, "the proxy never cut a connection after an APPEND"
