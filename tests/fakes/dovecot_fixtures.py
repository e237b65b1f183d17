"""pytest fixtures for the throwaway Dovecot; a test module asks for them with
``pytest_plugins = ["tests.fakes.dovecot_fixtures"]``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.dovecot import DOVECOT, Dovecot, LatencyProxy, stranger_ip
from tests.system_tools import require


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot]:
    """One Dovecot per test session (so one per pytest-xdist worker); skipped without it,
    unless ``SMSBAK_REQUIRE_DOVECOT`` is set (CI), where a missing Dovecot fails."""
    require(DOVECOT, "SMSBAK_REQUIRE_DOVECOT", "apt-get install dovecot-imapd")
    with Dovecot(reuse_processes=True) as server:
        yield server


@pytest.fixture
def dovecot(dovecot_server: Dovecot) -> Dovecot:
    """The session's Dovecot with empty mailboxes."""
    dovecot_server.reset()
    return dovecot_server


@pytest.fixture
def proxy(dovecot: Dovecot) -> Iterator[LatencyProxy]:
    """A proxy to the plain listener: latency, connection counts, cuts after APPEND."""
    with LatencyProxy(dovecot.port) as running:
        yield running


@pytest.fixture
def stranger(dovecot: Dovecot) -> Iterator[LatencyProxy]:
    """A proxy to the plain listener from a loopback address of its own, for tests
    that fail a login on purpose (Dovecot then slows down that address's next logins)."""
    with LatencyProxy(dovecot.port, source_ip=stranger_ip()) as running:
        yield running


@pytest.fixture
def tls_stranger(dovecot: Dovecot) -> Iterator[LatencyProxy]:
    """The same, to the implicit-TLS listener."""
    with LatencyProxy(dovecot.tls_port, source_ip=stranger_ip()) as running:
        yield running
