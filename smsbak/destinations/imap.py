"""The IMAP destination: any mailbox that takes an app password (Gmail, iCloud, Fastmail,
Yahoo, GMX, a self-hosted Dovecot), through IMAPClient (pure Python).

Why it is shaped like this (facts in the shared IMAP reference):

* **Exactly once without the server's help.** Only Gmail merges a second copy of a
  Message-ID; Dovecot and most servers store it twice. So whenever a connection drops
  while an APPEND's outcome is unknown, the message is looked up with
  ``UID SEARCH HEADER Message-ID`` on a fresh connection before it is sent again.
* **Round trips decide the speed.** A synchronizing APPEND costs two round trips, so on
  a phone's link one connection manages a handful of messages a second; up to
  ``imap_connections`` connections APPEND in parallel (never more: the account's other
  clients share the provider's allowance). Where the server advertises it (RFC 7888:
  LITERAL+ on Dovecot, LITERAL- up to 4,096 bytes on Gmail) an SMS goes with a
  non-synchronizing literal: one round trip instead of two. Still one APPEND at a time
  per connection, never pipelined: after a cut, a server still storing buffered APPENDs
  would make the lookup miss them and the re-send double them. Big messages and servers
  without either capability get the synchronizing literal, so a 20 MB MMS goes through
  anywhere and a server can refuse it before it is sent.
* **Stop, don't hammer.** Over-quota and throttling answers (``BYE``, ``[OVERQUOTA]``,
  ``[LIMIT]``, Gmail's "Session expired") end the run with an error; every message the
  server confirmed before was already handed to ``on_confirmed``.
* **TLS is never optional.** A certificate problem is an error naming it; plain text
  only to this machine.

Callbacks run on the caller's thread (the state store's SQLite connection belongs to
it); worker threads only talk IMAP.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import queue
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsbak.config import Settings, is_loopback_host
from smsbak.errors import (
    AuthError,
    DailyLimitExceeded,
    DestinationError,
    SmsbakError,
    UsageError,
)
from smsbak.paths import Paths
from smsbak.ports import Confirmed, Destination, DestinationCapabilities, Outgoing, Rejected

log = logging.getLogger(__name__)

PASSWORD_ENV = "SMSBAK_IMAP_PASSWORD"
PASSWORD_FILE = "imap-password"
DEFAULT_PORTS = {"tls": 993, "starttls": 143, "plain": 143}
FETCH_CHUNK = 50
FETCH_BYTES = 25 * 1024 * 1024  # bounded memory when a restore meets big MMS
LOOKUP_ALL_THRESHOLD = 50  # above this many Message-IDs, read the folder's headers instead
TIMEOUT = 60.0
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)

APP_PASSWORD_HINT = (
    "use an app password, not the account password: Gmail needs 2-Step Verification "
    "first (myaccount.google.com/apppasswords); iCloud, Yahoo, Fastmail and GMX make "
    "them in their security settings; Outlook.com and Microsoft 365 no longer accept "
    "app passwords over IMAP. Then run `smsbak auth --imap` again"
)
SETUP_HINT = "run `smsbak auth --imap --host HOST --user USER` (see README, IMAP)"

APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.I)
LIMIT_WORDS = re.compile(r"\[(OVERQUOTA|LIMIT|THROTTLED)\]|session expired|quota|too many", re.I)
BUSY_LOGIN_WORDS = re.compile(
    r"too many|simultaneous|\[(LIMIT|UNAVAILABLE|INUSE|THROTTLED)\]|try again later", re.I
)
TOO_BIG_WORDS = re.compile(r"\[TOOBIG\]|too (big|large)|larger than|size exceeds", re.I)
APPENDLIMIT = re.compile(rb"^APPENDLIMIT=(\d+)$", re.I)
TRANSIENT_WORDS = re.compile(r"\[(UNAVAILABLE|INUSE|SERVERBUG)\]|try again|temporar", re.I)
LITERAL_MINUS_MAX = 4096  # RFC 7888: LITERAL- allows non-synchronizing literals this long
# Above this even LITERAL+ gets a synchronizing literal: the upload then takes longer than
# the round trip it would save, and the server can refuse (quota, size) before the bytes go.
NONSYNC_MAX = 256 * 1024
LINE_ENDS = re.compile(rb"\r\n|\r|\n")  # imaplib's MapCRLF: every line end becomes CRLF


class ImapError(DestinationError):
    """The IMAP server or the network failed (exit 5, like every destination failure)."""


class ImapUnreachable(ImapError):
    """No connection could be made (DNS, refused, timed out)."""


class ImapThrottled(ImapError):
    """The server ended the session or said to slow down; run again later."""


class ImapLimitReached(DailyLimitExceeded):
    """Over quota (Gmail: 500 MB of IMAP uploads a day): resumes on a later run."""


_Result = tuple[str, "Confirmed | Rejected | BaseException | None"]
UPLOAD_CHUNK = 25


class _Dropped(Exception):
    """The connection broke; whatever was in flight has an unknown outcome."""


# --- settings ----------------------------------------------------------------------


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    user: str
    password: str
    security: str = "tls"
    ca_file: str = ""
    connections: int = 4
    timeout: float = TIMEOUT


def password_file(paths: Paths) -> Path:
    """Owner-only, beside the Gmail token: the app password opens the whole mailbox."""
    return paths.config_dir / PASSWORD_FILE


def effective_port(security: str, port: int) -> int:
    return port or DEFAULT_PORTS.get(security, 993)


def check_security(host: str, security: str) -> None:
    """Plain IMAP sends the password readable to anyone on the path: loopback only."""
    if security == "plain" and not is_loopback_host(host.lower()):
        raise UsageError(
            f"refusing plain IMAP to {host!r}: the password and every message would travel "
            "unencrypted",
            'use imap_security = "tls" (or "starttls"); "plain" only to 127.0.0.1/localhost',
        )


def read_password(paths: Paths, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get(PASSWORD_ENV):
        return env[PASSWORD_ENV]
    path = password_file(paths)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AuthError(
            f"no IMAP password: {path} is missing and ${PASSWORD_ENV} is not set", SETUP_HINT
        ) from None
    except OSError as error:
        raise AuthError(f"cannot read the IMAP password {path}: {error}", SETUP_HINT) from error
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # an app password readable by others is a leak waiting to happen
    password = text.strip("\r\n")
    if not password:
        raise AuthError(f"the IMAP password file {path} is empty", SETUP_HINT)
    return password


def account_from_settings(
    paths: Paths, settings: Settings, environ: dict[str, str] | None = None
) -> ImapAccount:
    if not settings.imap_host or not settings.imap_user:
        raise UsageError("IMAP is not set up: imap_host and imap_user are empty", SETUP_HINT)
    check_security(settings.imap_host, settings.imap_security)
    return ImapAccount(
        host=settings.imap_host,
        port=effective_port(settings.imap_security, settings.imap_port),
        user=settings.imap_user,
        password=read_password(paths, environ),
        security=settings.imap_security,
        ca_file=settings.imap_ca_file,
        connections=settings.imap_connections,
    )


def open_imap_destination(
    paths: Paths, settings: Settings, *, for_restore: bool = False
) -> Destination:
    """The wiring's factory. IMAP has one login for backup and restore (an app password
    reads as well as writes), so ``for_restore`` changes nothing. Connects lazily."""
    del for_restore
    return ImapDestination(account_from_settings(paths, settings))


# --- one connection ---------------------------------------------------------------------


def _ssl_context(account: ImapAccount) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=account.ca_file or None)
    except (OSError, ssl.SSLError) as error:
        raise UsageError(
            f"cannot use imap_ca_file {account.ca_file!r}: {error}",
            "point imap_ca_file at the PEM file of the CA that signed the server's "
            "certificate, or leave it empty for a public server",
        ) from error


def _certificate_error(account: ImapAccount, error: ssl.SSLError) -> ImapError:
    reason = getattr(error, "verify_message", None) or getattr(error, "reason", None) or error
    if not isinstance(error, ssl.SSLCertVerificationError):
        return ImapError(
            f"the TLS handshake with {account.host}:{account.port} failed: {reason}; "
            "nothing was sent (smsbak never falls back to plain text)",
            'check imap_port and imap_security: port 993 is "tls", 143 is "starttls"',
        )
    return ImapError(
        f"TLS certificate problem with {account.host}:{account.port}: {reason}; "
        "nothing was sent (smsbak never falls back to plain text)",
        "check imap_host (the name must match the certificate); for a self-hosted server "
        "with a private CA set imap_ca_file to that CA's PEM file; on public Wi-Fi a "
        "portal may be intercepting: try another network",
    )


def connect(account: ImapAccount) -> Any:
    """A logged-in IMAPClient, or a SmsbakError that says what went wrong."""
    from imapclient import IMAPClient
    from imapclient.exceptions import LoginError

    check_security(account.host, account.security)
    context = None if account.security == "plain" else _ssl_context(account)
    where = f"{account.host}:{account.port}"
    try:
        client = IMAPClient(
            account.host, port=account.port, ssl=account.security == "tls",
            ssl_context=context, timeout=account.timeout,
        )  # fmt: skip
    except ssl.SSLError as error:
        raise _certificate_error(account, error) from error
    except (OSError, socket.gaierror) as error:
        raise ImapUnreachable(
            f"cannot reach the IMAP server {where}: {error}",
            "check imap_host, imap_port and the network, then run again",
        ) from error
    with contextlib.suppress(OSError, AttributeError):
        # imaplib writes a literal and its closing CRLF separately: without this, Nagle's
        # algorithm holds the CRLF until the server's delayed ACK, 40 ms per APPEND
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not log.isEnabledFor(logging.DEBUG):
        client._imap.debug = 0  # imaplib formats every line it logs; skip that work
    try:
        if account.security == "starttls":
            if b"STARTTLS" not in client.capabilities():
                raise ImapError(
                    f"{where} does not offer STARTTLS; smsbak will not log in in plain text",
                    'use imap_security = "tls" with port 993',
                )
            client.starttls(context)
        client.login(account.user, account.password)
    except LoginError as error:
        _quietly_close(client)
        if BUSY_LOGIN_WORDS.search(_text(error)):
            raise ImapThrottled(
                f"the IMAP server {account.host} refused another connection: {_text(error)}",
                "lower imap_connections (the provider counts your other mail apps too: "
                "Gmail allows about 15 per account), or run again later",
            ) from error
        raise AuthError(
            f"the IMAP server {account.host} refused the login of {account.user}: {_text(error)}",
            APP_PASSWORD_HINT,
        ) from error
    except ssl.SSLError as error:
        _quietly_close(client)
        raise _certificate_error(account, error) from error
    except SmsbakError:
        _quietly_close(client)
        raise
    except Exception as error:
        _quietly_close(client)
        problem = _classify(error, f"logging in to {where}")
        if isinstance(problem, _Dropped):
            raise ImapUnreachable(
                f"the connection to {where} broke while logging in: {problem}",
                "check the network, then run again",
            ) from error
        raise problem from error
    return client


def _quietly_close(client: Any) -> None:
    with contextlib.suppress(Exception):
        client.shutdown()


def _text(error: BaseException) -> str:
    text = str(error)
    with contextlib.suppress(Exception):
        if text.startswith("b'") or text.startswith('b"'):
            text = text[2:-1]
    return text


def _classify(error: BaseException, doing: str) -> Exception:
    """What an exception from imaplib/IMAPClient means for the run."""
    from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

    text = _text(error)
    if isinstance(error, OSError):
        return _Dropped(f"{doing}: {text}")
    if isinstance(error, IMAPClientAbortError):
        if text.startswith("socket error") or "EOF" in text:
            return _Dropped(f"{doing}: {text}")
        if LIMIT_WORDS.search(text):
            return ImapLimitReached(
                f"the IMAP server ended the session while {doing}: {text}",
                "a provider's daily limit (Gmail: 500 MB of IMAP uploads a day) or "
                "throttling: run again later (tomorrow for a daily limit); what was "
                "uploaded is kept",
            )
        return ImapThrottled(
            f"the IMAP server ended the session (BYE) while {doing}: {text}",
            "run again later; what was uploaded is kept",
        )
    if isinstance(error, IMAPClientError):
        if TOO_BIG_WORDS.search(text):  # that one message, for good ([LIMIT] in Dovecot too)
            return error if isinstance(error, Exception) else ImapError(text)
        if LIMIT_WORDS.search(text):
            return ImapLimitReached(
                f"the IMAP server refused more while {doing}: {text}",
                "the mailbox is full or a provider limit is reached (Gmail: 500 MB of "
                "IMAP uploads a day): free space or run again later; what was uploaded "
                "is kept",
            )
        return error if isinstance(error, Exception) else ImapError(text)
    return error if isinstance(error, Exception) else ImapError(text)


# --- one APPEND ----------------------------------------------------------------------------


def nonsync_literal_allowed(capabilities: frozenset[bytes], size: int) -> bool:
    """May a literal of ``size`` bytes be sent without waiting for the server's ``+``?
    Only when advertised: LITERAL+ for any size, LITERAL- up to 4,096 bytes (RFC 7888; a
    longer one is a protocol error there); never above ``NONSYNC_MAX``."""
    if size > NONSYNC_MAX:
        return False
    upper = {capability.upper() for capability in capabilities}
    return b"LITERAL+" in upper or (b"LITERAL-" in upper and size <= LITERAL_MINUS_MAX)


def append(
    client: Any,
    folder: str,
    raw: bytes,
    flags: Sequence[bytes],
    when: datetime.datetime | None,
    capabilities: frozenset[bytes],
) -> bytes:
    """APPEND one message and wait for its tagged answer; the answer's text (APPENDUID).

    IMAPClient's ``append`` always waits for the server's ``+`` before the literal: two
    round trips. Where the server allows it, the command line with ``{n+}`` and the
    literal go in one send instead, and imaplib's own machinery reads the tagged answer
    (BYE, NO and BAD handled as for any command), so errors look exactly like
    IMAPClient's and the callers' classification holds."""
    imap = getattr(client, "_imap", None)
    literal = LINE_ENDS.sub(b"\r\n", raw)  # what imaplib's append would send
    usable = (
        imap is not None
        and not getattr(imap, "utf8_enabled", False)
        and all(hasattr(imap, name) for name in ("_new_tag", "_command_complete", "send"))
    )  # an imaplib that changed its insides gets the ordinary path
    if not usable or not nonsync_literal_allowed(capabilities, len(literal)):
        answer: bytes = client.append(folder, raw, flags, when)
        return answer
    return _append_nonsync(client, imap, folder, literal, flags, when)


def _append_nonsync(
    client: Any,
    imap: Any,
    folder: str,
    literal: bytes,
    flags: Sequence[bytes],
    when: datetime.datetime | None,
) -> bytes:
    from imapclient.datetime_util import datetime_to_INTERNALDATE
    from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

    parts = [b"APPEND", client._normalise_folder(folder), b"(" + b" ".join(flags) + b")"]
    if when is not None:
        parts.append(b'"' + datetime_to_INTERNALDATE(when).encode("ascii") + b'"')
    for kind in ("OK", "NO", "BAD"):  # as imaplib does before every command
        imap.untagged_responses.pop(kind, None)
    tag = imap._new_tag()
    line = b" ".join([tag, *parts]) + b" {%d+}\r\n" % len(literal)
    log.debug("APPEND of %d bytes with a non-synchronizing literal", len(literal))
    try:
        imap.send(line + literal + b"\r\n")
    except OSError as error:
        raise IMAPClientAbortError(f"socket error: {error}") from error
    kind, data = imap._command_complete("APPEND", tag)
    text = data[0] if data and isinstance(data[0], bytes) else b""
    if kind != "OK":
        raise IMAPClientError(f"append failed: {text.decode('utf-8', 'replace')}")
    return text


class _Pool:
    """At most ``size`` logged-in connections, ever, for every caller together."""

    def __init__(self, account: ImapAccount, size: int) -> None:
        self.account = account
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self.capabilities: frozenset[bytes] = frozenset()

    @contextlib.contextmanager
    def connection(self) -> Iterator[_Lease]:
        self._slots.acquire()
        lease = _Lease(self)
        try:
            yield lease
        finally:
            lease.give_back()
            self._slots.release()

    def take_idle(self) -> Any | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def put_idle(self, client: Any) -> None:
        with self._lock:
            self._idle.append(client)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(Exception):
                client.logout()
            _quietly_close(client)


class _Lease:
    """One slot of the pool: a connection made on demand, replaced after a drop."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self._client: Any | None = None
        self.selected: tuple[str, int] | None = None  # (folder, uidvalidity)

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.pool.take_idle() or connect(self.pool.account)
            if not self.pool.capabilities:
                self.pool.capabilities = frozenset(self._client.capabilities())
            self.selected = None
        return self._client

    def drop(self) -> None:
        if self._client is not None:
            _quietly_close(self._client)
        self._client = None
        self.selected = None

    def give_back(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                if self.selected is not None:
                    self._client.unselect_folder()
                self.pool.put_idle(self._client)
        self._client = None

    def select(self, folder: str) -> int:
        """Select ``folder`` read-only (searches and fetches); its UIDVALIDITY."""
        if self.selected is None or self.selected[0] != folder:
            answer = self.client.select_folder(folder, readonly=True)
            self.selected = (folder, int(answer[b"UIDVALIDITY"]))
        return self.selected[1]


# --- the destination ----------------------------------------------------------------------


class ImapDestination:
    """A :class:`smsbak.ports.Destination` over IMAP. Remote ids are ``UIDVALIDITY:UID``."""

    def __init__(
        self,
        account: ImapAccount,
        *,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if account.connections < 1:
            raise UsageError("imap_connections must be at least 1", "set imap_connections = 4")
        self.account = account
        self._pool = _Pool(account, account.connections)
        self._retry_delays = tuple(retry_delays)
        self._sleep = sleep
        self._folders_by_validity: dict[int, str] = {}

    # --- who and what -------------------------------------------------------------------

    @property
    def identity(self) -> str:
        return f"imap:{self.account.user}@{self.account.host.lower()}:{self.account.port}"

    @property
    def description(self) -> str:
        return f"IMAP {self.account.user} on {self.account.host}"

    @property
    def capabilities(self) -> DestinationCapabilities:
        return DestinationCapabilities(
            readable=True, merges_message_ids=self.is_gmail, counts_folder=True
        )

    @property
    def is_gmail(self) -> bool:
        """Gmail's IMAP merges a second copy of a Message-ID; known by its host or by
        X-GM-EXT-1 once connected. Unsure means no: a needless lookup costs a round
        trip, a wrong yes would cost a duplicate."""
        host = self.account.host.lower().rstrip(".")
        return host in ("imap.gmail.com", "imap.googlemail.com") or (
            b"X-GM-EXT-1" in self._pool.capabilities
        )

    def server_capabilities(self) -> frozenset[bytes]:
        with self._pool.connection() as lease:
            self._run(lease, "reading capabilities", lambda: lease.client)
        return self._pool.capabilities

    # --- folders -------------------------------------------------------------------------

    def find_folder(self, name: str) -> str | None:
        with self._pool.connection() as lease:
            exists = self._run(
                lease, f"looking for {name!r}", lambda: lease.client.folder_exists(name)
            )
        return name if exists else None

    def ensure_folder(self, name: str) -> str:
        from imapclient.exceptions import IMAPClientError

        if self.find_folder(name) is not None:
            return name

        def create(lease: _Lease) -> None:
            try:
                lease.client.create_folder(name)
            except IMAPClientError as error:
                if not lease.client.folder_exists(name):  # not a race with another client
                    hidden = "[ALREADYEXISTS]" in _text(error).upper() and self.is_gmail
                    raise ImapError(
                        f"cannot create the IMAP folder {name!r}: {_text(error)}",
                        "in Gmail, Settings > Labels: tick \"Show in IMAP\" for the label"
                        if hidden else "create the folder in your mail app, or check the name",
                    ) from error  # fmt: skip
            with contextlib.suppress(IMAPClientError):
                lease.client.subscribe_folder(name)  # so mail apps show it

        with self._pool.connection() as lease:
            # a drop after CREATE is harmless to repeat: the second finds the folder
            self._run(lease, f"creating {name!r}", lambda: create(lease))
        return name

    def count(self, folder: str) -> int:
        if self.find_folder(folder) is None:
            return 0
        with self._pool.connection() as lease:
            status = self._run(
                lease, f"counting {folder!r}",
                lambda: lease.client.folder_status(folder, [b"MESSAGES"]),
            )  # fmt: skip
        return int(status[b"MESSAGES"])

    # --- upload ------------------------------------------------------------------------------

    def upload(
        self,
        items: Iterable[Outgoing],
        folder: str,
        *,
        on_confirmed: Callable[[Sequence[Confirmed]], None],
        on_rejected: Callable[[Rejected], None],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Read ahead a window of items and deal it out to the connections in chunks.

        What an *earlier* run may have stored is the engine's to look up first
        (``find_message_ids``, as the port says): it knows which items were in flight,
        so an incremental run into a folder of 50,000 does not search it per chunk.
        Within this call, a dropped connection's unknown APPEND is looked up here
        before it is sent again, and a Message-ID given twice is stored once."""
        workers = self.account.connections
        window = UPLOAD_CHUNK * workers
        work: queue.Queue[list[Outgoing] | None] = queue.Queue()
        results: queue.Queue[_Result] = queue.Queue()
        cancel = threading.Event()
        stopping = threading.Event()
        threads = [
            threading.Thread(
                target=self._worker, args=(folder, work, results, cancel, stopping),
                name=f"imap-upload-{n}", daemon=True,
            )
            for n in range(workers)
        ]  # fmt: skip
        for thread in threads:
            thread.start()
        source = iter(items)
        in_flight: dict[str, str] = {}  # key -> Message-ID of what the workers hold
        first_of: dict[str, str] = {}  # Message-ID -> key of its first item in this call
        outcome: dict[str, Confirmed | Rejected] = {}  # Message-ID -> what became of it
        waiting: dict[str, list[Outgoing]] = {}  # later items with a Message-ID in flight
        exhausted = False
        failure: BaseException | None = None

        def settle(item: Outgoing, result: Confirmed | Rejected) -> None:
            if isinstance(result, Confirmed):
                on_confirmed([Confirmed(item.key, result.remote_id)])
            else:
                on_rejected(Rejected(item.key, result.reason))

        try:
            while True:
                if not exhausted and failure is None and len(in_flight) <= window // 2:
                    batch: list[Outgoing] = []
                    while len(in_flight) + len(batch) < window:
                        if should_stop():
                            exhausted = True
                            break
                        item = next(source, None)
                        if item is None:
                            exhausted = True
                            break
                        mid = item.message_id
                        if mid and mid in outcome:
                            settle(item, outcome[mid])  # the same message twice in one call
                        elif mid and mid in first_of:
                            waiting.setdefault(mid, []).append(item)
                        else:
                            if mid:
                                first_of[mid] = item.key
                            in_flight[item.key] = mid
                            batch.append(item)
                    size = max(1, min(UPLOAD_CHUNK, -(-len(batch) // workers)))
                    for start in range(0, len(batch), size):
                        work.put(batch[start : start + size])
                if not in_flight:
                    break
                if not stopping.is_set() and should_stop():
                    stopping.set()  # the workers finish the message at hand, send no more
                    exhausted = True
                key, result = results.get()
                mid = in_flight.pop(key, "")
                if isinstance(result, Confirmed | Rejected):
                    settle(Outgoing(key=key, raw=b""), result)
                    if mid:
                        outcome[mid] = result
                        for later in waiting.pop(mid, []):
                            settle(later, result)
                elif isinstance(result, BaseException) and failure is None:
                    failure = result
                    cancel.set()
                # None means: skipped after the failure, not sent
        finally:
            cancel.set()  # normally nothing is left; after an error, skip what is queued
            for _ in threads:
                work.put(None)
            for thread in threads:
                thread.join(timeout=self.account.timeout * 2)
        if failure is not None:
            raise failure

    def _worker(
        self,
        folder: str,
        work: queue.Queue[list[Outgoing] | None],
        results: queue.Queue[_Result],
        cancel: threading.Event,
        stopping: threading.Event,
    ) -> None:
        """One connection: takes chunks, answers every item of each exactly once
        (``None``: not sent, after a failure or a request to stop)."""
        while True:
            chunk = work.get()
            if chunk is None:
                return
            pending = list(chunk)
            # a slot of the pool only while there is work: the caller's items may look
            # messages up on this destination (the engine does), and must get one then
            with self._pool.connection() as lease:
                try:
                    while pending:
                        item = pending[0]
                        if cancel.is_set() or stopping.is_set():
                            break
                        results.put((item.key, self._store(lease, item, folder)))
                        pending.pop(0)
                except BaseException as error:  # handed to the caller's thread
                    results.put((pending.pop(0).key, error))
            for item in pending:
                results.put((item.key, None))

    def _store(self, lease: _Lease, item: Outgoing, folder: str) -> Confirmed | Rejected:
        """APPEND one message; after a drop, look it up before sending it again."""
        from imapclient.exceptions import IMAPClientError

        unknown = False
        flags = [b"\\Seen"] if item.seen else []
        when = (
            datetime.datetime.fromtimestamp(item.date_ms / 1000, datetime.UTC)
            if item.date_ms > 0 else None
        )  # fmt: skip
        if not item.message_id.strip():
            return Rejected(
                item.key, "no Message-ID: it could not be found again after a dropped "
                "connection, so it cannot be uploaded exactly once",
            )  # fmt: skip
        limit = self._append_limit()
        if limit is not None and len(item.raw) > limit:
            return Rejected(
                item.key, f"{len(item.raw)} bytes: larger than the server's APPENDLIMIT {limit}"
            )
        for attempt in range(len(self._retry_delays) + 1):
            try:
                if unknown:
                    found = self._lookup(lease, folder, [item.message_id])
                    if item.message_id in found:
                        return Confirmed(item.key, found[item.message_id])
                client = lease.client  # connects first: the pool then knows the capabilities
                answer = append(client, folder, item.raw, flags, when, self._pool.capabilities)
                uid = APPENDUID.search(answer if isinstance(answer, bytes) else b"")
                if uid:
                    validity = int(uid.group(1))
                    self._folders_by_validity[validity] = folder
                    return Confirmed(item.key, f"{validity}:{int(uid.group(2))}")
                found = self._lookup(lease, folder, [item.message_id])
                return Confirmed(item.key, found.get(item.message_id, ""))
            except ImapUnreachable:
                if not unknown or attempt == len(self._retry_delays):
                    raise  # the first connection failed: the server is not there at all
                self._backoff(attempt)
                continue
            except SmsbakError:
                raise
            except Exception as raw_error:
                error = _classify(raw_error, f"uploading to {folder!r}")
                if isinstance(error, SmsbakError):
                    raise error from raw_error
                if isinstance(error, _Dropped):
                    unknown = True  # the server may have stored it: look before resending
                    lease.drop()
                elif isinstance(error, IMAPClientError):
                    text = _text(error)
                    if "TRYCREATE" in text.upper():
                        raise ImapError(
                            f"the IMAP folder {folder!r} vanished during the upload", "run again"
                        ) from raw_error
                    if not TRANSIENT_WORDS.search(text):
                        return Rejected(item.key, f"the IMAP server refused it: {text}")
                if attempt == len(self._retry_delays):
                    raise ImapError(
                        f"IMAP upload failed {attempt + 1} times: {error}",
                        "check the network and run again; what was uploaded is kept",
                    ) from raw_error
                self._backoff(attempt)
        raise AssertionError("unreachable")

    def _append_limit(self) -> int | None:
        """The largest message the server takes, when it says so (Gmail: 35651584)."""
        for capability in self._pool.capabilities:
            match = APPENDLIMIT.match(capability)
            if match:
                return int(match.group(1))
        return None

    def _backoff(self, attempt: int) -> None:
        delay = self._retry_delays[attempt]
        self._sleep(delay * (0.5 + random.random()))

    def _run(self, lease: _Lease, doing: str, call: Callable[[], Any]) -> Any:
        """``call`` with reconnects and backoff for a dropped connection (reads only:
        they are safe to repeat)."""
        for attempt in range(len(self._retry_delays) + 1):
            try:
                return call()
            except ImapUnreachable:
                if attempt == 0 or attempt == len(self._retry_delays):
                    raise  # reconnecting after a drop may fail a few times; a first try not
                self._backoff(attempt)
                continue
            except SmsbakError:
                raise
            except Exception as raw_error:
                error = _classify(raw_error, doing)
                if not isinstance(error, _Dropped):
                    if isinstance(error, SmsbakError):
                        raise error from raw_error
                    raise ImapError(f"IMAP server refused {doing}: {_text(error)}") from raw_error
                lease.drop()
                if attempt == len(self._retry_delays):
                    raise ImapError(
                        f"IMAP connection kept failing while {doing}: {error}",
                        "check the network and run again",
                    ) from raw_error
                self._backoff(attempt)
        raise AssertionError("unreachable")

    # --- looking up and reading back -----------------------------------------------------------

    def _lookup(self, lease: _Lease, folder: str, message_ids: Sequence[str]) -> dict[str, str]:
        """{message_id: "UIDVALIDITY:UID"} for those the folder holds (exact matches:
        SEARCH HEADER matches substrings, so the header is read back to compare)."""
        wanted = {mid.strip() for mid in message_ids if mid.strip()}
        if not wanted:
            return {}
        validity = lease.select(folder)
        self._folders_by_validity[validity] = folder
        client = lease.client
        if len(wanted) > LOOKUP_ALL_THRESHOLD:
            uids = client.search("ALL")
        else:
            uids = []
            ordered = sorted(wanted)
            for start in range(0, len(ordered), UPLOAD_CHUNK):
                chunk = ordered[start : start + UPLOAD_CHUNK]
                criteria: list[Any] = []
                for mid in chunk[:-1]:
                    criteria += ["OR", "HEADER", "Message-ID", mid]
                criteria += ["HEADER", "Message-ID", chunk[-1]]
                uids += client.search(criteria)
        found: dict[str, str] = {}
        for start in range(0, len(uids), 500):
            part = uids[start : start + 500]
            data = client.fetch(part, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            for uid, fields in data.items():
                header = next((v for k, v in fields.items() if k.startswith(b"BODY")), b"")
                mid = _message_id_of(header)
                if mid in wanted and mid not in found:
                    found[mid] = f"{validity}:{uid}"
        return found

    def find_message_ids(self, folder: str, message_ids: Sequence[str]) -> dict[str, str]:
        if not message_ids or self.find_folder(folder) is None:
            return {}
        with self._pool.connection() as lease:
            result: dict[str, str] = self._run(
                lease, f"looking up messages in {folder!r}",
                lambda: self._lookup(lease, folder, message_ids),
            )  # fmt: skip
        return result

    def list_ids(self, folder: str, query: str = "") -> Iterator[str]:
        """Every message in ``folder`` (``query``: IMAP SEARCH criteria, default ALL),
        deleted-flagged ones left out as SMS Backup+ did."""
        if self.find_folder(folder) is None:
            return iter(())
        criteria = query or "UNDELETED"
        with self._pool.connection() as lease:

            def search() -> tuple[int, list[int]]:
                validity = lease.select(folder)
                return validity, sorted(lease.client.search(criteria))

            validity, uids = self._run(lease, f"listing {folder!r}", search)
        self._folders_by_validity[validity] = folder
        return iter([f"{validity}:{uid}" for uid in uids])

    def fetch_raw(
        self,
        ids: Iterable[str],
        *,
        on_fetched: Callable[[Sequence[tuple[str, bytes]]], None],
        on_rejected: Callable[[str, str], None],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """In chunks of 50 UIDs, split further so no batch holds more than 25 MB."""
        with self._pool.connection() as lease:
            chunk: list[tuple[str, int, int]] = []
            for remote_id in ids:
                parsed = _parse_remote_id(remote_id)
                if parsed is None or parsed[0] not in self._folders_by_validity:
                    on_rejected(remote_id, "not an id of a listed IMAP folder")
                    continue
                chunk.append((remote_id, *parsed))
                if len(chunk) >= FETCH_CHUNK:
                    if should_stop():
                        return
                    self._fetch_chunk(lease, chunk, on_fetched, on_rejected)
                    chunk = []
            if chunk and not should_stop():
                self._fetch_chunk(lease, chunk, on_fetched, on_rejected)

    def _fetch_chunk(
        self,
        lease: _Lease,
        chunk: list[tuple[str, int, int]],
        on_fetched: Callable[[Sequence[tuple[str, bytes]]], None],
        on_rejected: Callable[[str, str], None],
    ) -> None:
        by_folder: dict[str, list[tuple[str, int, int]]] = {}
        for entry in chunk:
            by_folder.setdefault(self._folders_by_validity[entry[1]], []).append(entry)
        for folder, entries in by_folder.items():
            uids = [uid for _, _, uid in entries]

            def sizes(folder: str = folder, uids: list[int] = uids) -> tuple[int, dict[int, Any]]:
                validity = lease.select(folder)
                return validity, lease.client.fetch(uids, ["RFC822.SIZE"])

            validity, size_data = self._run(lease, f"reading {folder!r}", sizes)
            batch: list[tuple[str, int]] = []
            batch_bytes = 0
            for remote_id, id_validity, uid in entries:
                if id_validity != validity or uid not in size_data:
                    on_rejected(remote_id, "no longer in the IMAP folder")
                    continue
                size = int(size_data[uid].get(b"RFC822.SIZE", 0))
                if batch and batch_bytes + size > FETCH_BYTES:
                    self._fetch_bodies(lease, folder, batch, on_fetched, on_rejected)
                    batch, batch_bytes = [], 0
                batch.append((remote_id, uid))
                batch_bytes += size
            if batch:
                self._fetch_bodies(lease, folder, batch, on_fetched, on_rejected)

    def _fetch_bodies(
        self,
        lease: _Lease,
        folder: str,
        batch: list[tuple[str, int]],
        on_fetched: Callable[[Sequence[tuple[str, bytes]]], None],
        on_rejected: Callable[[str, str], None],
    ) -> None:
        def fetch() -> dict[int, Any]:
            lease.select(folder)
            result: dict[int, Any] = lease.client.fetch([uid for _, uid in batch], ["BODY.PEEK[]"])
            return result

        data = self._run(lease, f"reading {folder!r}", fetch)
        fetched = []
        for remote_id, uid in batch:
            body = data.get(uid, {}).get(b"BODY[]")
            if body is None:
                on_rejected(remote_id, "the IMAP server returned no body")
            else:
                fetched.append((remote_id, bytes(body)))
        if fetched:
            on_fetched(fetched)

    def close(self) -> None:
        self._pool.close()


def _parse_remote_id(remote_id: str) -> tuple[int, int] | None:
    validity, _, uid = remote_id.partition(":")
    if not (validity.isdigit() and uid.isdigit()):
        return None
    return int(validity), int(uid)


def _message_id_of(header: bytes) -> str:
    text = header.decode("ascii", "replace").replace("\r\n ", " ").replace("\r\n\t", " ")
    match = re.search(r"^Message-ID:\s*(<[^>\r\n]*>)", text, re.I | re.M)
    return match.group(1) if match else ""
