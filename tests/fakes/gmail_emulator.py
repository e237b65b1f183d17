"""A local HTTP emulator of the Gmail REST API (and of Google's OAuth endpoints).

Driven by the real google-api-python-client in smsbak's tests and benchmarks. It
reproduces the facts in ``/work/shared/reference/gmail-api.md``: the per-user quota
as a token bucket with Google's unit costs, 429/403/5xx error shapes, the 50-part
batch limit, per-part batch errors, Message-ID merging, the 1 MB JSON body limit,
media/multipart/resumable uploads, scopes, refresh-token revocation.

Standard library only. Typical use::

    with GmailEmulator() as emu:
        refresh_token = emu.grant([SCOPE_INSERT, SCOPE_LABELS])
        ...  # point googleapiclient at emu.url, google-auth at emu.token_uri

Standalone (benchmarks, subprocess tests)::

    python -m tests.fakes.gmail_emulator --port 0 --grant-file PATH [--latency 0.1]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, cast

JSON = dict[str, Any]

# --------------------------------------------------------------------------- scopes

_AUTH = "https://www.googleapis.com/auth/"
SCOPE_FULL = "https://mail.google.com/"
SCOPE_INSERT = _AUTH + "gmail.insert"
SCOPE_LABELS = _AUTH + "gmail.labels"
SCOPE_READONLY = _AUTH + "gmail.readonly"
SCOPE_MODIFY = _AUTH + "gmail.modify"
SCOPE_METADATA = _AUTH + "gmail.metadata"
SCOPE_COMPOSE = _AUTH + "gmail.compose"
SCOPE_USERINFO_EMAIL = _AUTH + "userinfo.email"

# Scopes accepted per method, as in the bundled discovery document (gmail.v1.json).
_OP_SCOPES: dict[str, frozenset[str]] = {
    "insert": frozenset({SCOPE_FULL, SCOPE_INSERT, SCOPE_MODIFY}),
    "import": frozenset({SCOPE_FULL, SCOPE_INSERT, SCOPE_MODIFY}),
    "list": frozenset({SCOPE_FULL, SCOPE_METADATA, SCOPE_MODIFY, SCOPE_READONLY}),
    "get": frozenset(
        {
            SCOPE_FULL,
            SCOPE_METADATA,
            SCOPE_MODIFY,
            SCOPE_READONLY,
            _AUTH + "gmail.addons.current.message.action",
            _AUTH + "gmail.addons.current.message.metadata",
            _AUTH + "gmail.addons.current.message.readonly",
        }
    ),
    "labels.list": frozenset(
        {SCOPE_FULL, SCOPE_LABELS, SCOPE_METADATA, SCOPE_MODIFY, SCOPE_READONLY}
    ),
    "labels.get": frozenset(
        {SCOPE_FULL, SCOPE_LABELS, SCOPE_METADATA, SCOPE_MODIFY, SCOPE_READONLY}
    ),
    "labels.create": frozenset({SCOPE_FULL, SCOPE_LABELS, SCOPE_MODIFY}),
    "profile": frozenset({SCOPE_FULL, SCOPE_COMPOSE, SCOPE_METADATA, SCOPE_MODIFY, SCOPE_READONLY}),
}
_FULL_READ = frozenset({SCOPE_FULL, SCOPE_MODIFY, SCOPE_READONLY})

# Quota units per call (Gmail API usage limits).
_OP_COST: dict[str, int] = {
    "insert": 25,
    "import": 25,
    "get": 5,
    "list": 5,
    "labels.list": 1,
    "labels.get": 1,
    "labels.create": 5,
    "profile": 1,
}
_OP_ALIASES: dict[str, str] = {
    "messages.insert": "insert",
    "messages.import": "import",
    "messages.list": "list",
    "messages.get": "get",
    "users.messages.insert": "insert",
    "users.messages.import": "import",
    "users.messages.list": "list",
    "users.messages.get": "get",
    "getProfile": "profile",
    "users.getProfile": "profile",
    "users.labels.list": "labels.list",
    "users.labels.create": "labels.create",
    "users.labels.get": "labels.get",
}
_UPLOAD_OPS = ("insert", "import")

_SYSTEM_LABELS = (
    "CHAT",
    "SENT",
    "INBOX",
    "IMPORTANT",
    "TRASH",
    "DRAFT",
    "SPAM",
    "CATEGORY_FORUMS",
    "CATEGORY_UPDATES",
    "CATEGORY_PERSONAL",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_SOCIAL",
    "STARRED",
    "UNREAD",
)

BATCH_LIMIT = 50
JSON_BODY_LIMIT = 1024 * 1024  # bytes; larger JSON bodies are refused (use an upload)
MEDIA_LIMIT = 157286400  # 150 MB, "maxSize" of insert/import in the discovery document
_MAX_HTTP_BODY = MEDIA_LIMIT + 16 * 1024 * 1024
_JSON_CT = "application/json; charset=UTF-8"

_STATUS_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("badRequest", "INVALID_ARGUMENT"),
    401: ("authError", "UNAUTHENTICATED"),
    403: ("forbidden", "PERMISSION_DENIED"),
    404: ("notFound", "NOT_FOUND"),
    409: ("aborted", "ABORTED"),
    413: ("uploadTooLarge", "OUT_OF_RANGE"),
    429: ("rateLimitExceeded", "RESOURCE_EXHAUSTED"),
    500: ("backendError", "INTERNAL"),
    502: ("backendError", "UNAVAILABLE"),
    503: ("backendError", "UNAVAILABLE"),
    504: ("backendError", "DEADLINE_EXCEEDED"),
}
_USAGE_REASONS = frozenset(
    {"userRateLimitExceeded", "rateLimitExceeded", "dailyLimitExceeded", "quotaExceeded"}
)
MSG_QUOTA = "Resource has been exhausted (e.g. check quota)."
MSG_CONCURRENT = "Too many concurrent requests for user"


# --------------------------------------------------------------------------- data


@dataclass
class StoredMessage:
    id: str
    thread_id: str
    raw: bytes
    label_ids: list[str]
    internal_date: int  # milliseconds since the epoch
    message_id: str | None  # the Message-ID header value, including <>


@dataclass
class _Label:
    id: str
    name: str
    type: str
    extra: JSON = field(default_factory=dict)

    def resource(self) -> JSON:
        res: JSON = {"id": self.id, "name": self.name}
        if self.type == "system":
            res["messageListVisibility"] = "hide"
            res["labelListVisibility"] = "labelShow"
        res.update(self.extra)
        res["type"] = self.type
        return res


@dataclass
class _Grant:
    refresh_token: str
    scopes: list[str]
    client_id: str | None = None
    revoked: bool = False


@dataclass
class _AccessToken:
    token: str
    grant: _Grant
    scopes: frozenset[str]
    expires_at: float


@dataclass
class _AuthCode:
    scopes: list[str]
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    code_challenge_method: str
    offline: bool


@dataclass
class _Fault:
    status: int
    reason: str | None
    retry_after: float | None
    retry_after_in_message: bool


@dataclass
class _UploadSession:
    op: str
    query: dict[str, list[str]]
    metadata: JSON
    total: int | None
    data: bytearray = field(default_factory=bytearray)
    result: JSON | None = None


@dataclass
class _Request:
    method: str
    target: str  # path + query as sent
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = _JSON_CT
    reason: str | None = None
    confirm: list[str] = field(default_factory=list)  # Message-IDs confirmed once written
    has_insert: bool = False  # contains an insert/import that stored (or tried to)


class ApiError(Exception):
    """An error answered in Google's JSON error shape."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str | None = None,
        *,
        domain: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        extra: JSON | None = None,
    ) -> None:
        super().__init__(message)
        default_reason, status_text = _STATUS_DEFAULTS.get(code, ("unknown", "UNKNOWN"))
        self.code = code
        self.message = message
        self.reason = reason or default_reason
        self.domain = domain or ("usageLimits" if self.reason in _USAGE_REASONS else "global")
        self.status_text = status_text
        self.headers = list(headers)
        self.extra = extra or {}

    def response(self) -> _Response:
        err: JSON = {"message": self.message, "domain": self.domain, "reason": self.reason}
        err.update(self.extra)
        doc = {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [err],
                "status": self.status_text,
            }
        }
        return _Response(self.code, _dumps(doc), headers=list(self.headers))


class _OAuthError(Exception):
    def __init__(self, code: int, error: str, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.error = error
        self.description = description

    def response(self) -> _Response:
        doc = {"error": self.error, "error_description": self.description}
        return _Response(self.code, _dumps(doc), content_type="application/json; charset=utf-8")


# --------------------------------------------------------------------------- helpers


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, indent=2).encode("utf-8")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _b64url_nopad(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode_lenient(text: str) -> bytes:
    """Decode base64url (or standard base64), with or without padding."""
    cleaned = "".join(text.split()).replace("+", "-").replace("/", "_").rstrip("=")
    if not re.fullmatch(r"[A-Za-z0-9_-]*", cleaned) or len(cleaned) % 4 == 1:
        raise ValueError("invalid base64")
    return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))


def _header_block(raw: bytes) -> bytes:
    """The header section of an RFC 822 message (up to the first empty line)."""
    match = re.search(rb"\r?\n\r?\n", raw)
    return raw if match is None else raw[: match.end()]


def _parse_headers(raw: bytes) -> Message:
    parser = BytesParser(policy=email_policy.compat32)
    return parser.parsebytes(_header_block(raw), headersonly=True)


def _message_id_of(raw: bytes) -> str | None:
    value = _parse_headers(raw).get("Message-ID")
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _norm_msgid(value: str) -> str:
    return value.strip().strip("<>").strip()


def _date_ms(raw: bytes) -> int | None:
    value = _parse_headers(raw).get("Date")
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _split_head(data: bytes) -> tuple[list[str], bytes]:
    """Split header lines (unfolded) from the body; accepts CRLF or LF line ends."""
    lines: list[str] = []
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            line = data[pos:].rstrip(b"\r")
            if line:
                lines.append(line.decode("latin-1"))
            return _unfold(lines), b""
        line = data[pos:nl].rstrip(b"\r")
        pos = nl + 1
        if not line:
            return _unfold(lines), data[pos:]
        lines.append(line.decode("latin-1"))


def _unfold(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and out:
            out[-1] += " " + line.strip()
        else:
            out.append(line)
    return out


def _headers_dict(lines: Iterable[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            result[name.strip().lower()] = value.strip()
    return result


def _content_type_params(value: str) -> tuple[str, dict[str, str]]:
    msg = Message()
    msg["Content-Type"] = value
    params = {k.lower(): str(v) for k, v in msg.get_params(failobj=[])[1:]}
    return msg.get_content_type(), params


def _split_multipart(body: bytes, boundary: str) -> list[bytes]:
    """The parts of a multipart body, bytes preserved exactly (CRLF or LF)."""
    delim = b"--" + boundary.encode("latin-1")
    parts: list[bytes] = []
    if body.startswith(delim):
        pos = 0
    else:
        pos = body.find(b"\n" + delim)
        if pos < 0:
            raise ValueError("no boundary")
        pos += 1
    while True:
        after = pos + len(delim)
        if body[after : after + 2] == b"--":
            return parts
        nl = body.find(b"\n", after)
        if nl < 0:
            return parts  # unterminated: tolerate
        start = nl + 1
        nxt = body.find(b"\n" + delim, start - 1)
        if nxt < 0:
            raise ValueError("unterminated multipart body")
        end = nxt
        if end > start and body[end - 1 : end] == b"\r":
            end -= 1
        parts.append(body[start:end] if end >= start else b"")
        pos = nxt + 1


def _parse_fields(spec: str) -> dict[str, Any]:
    """Parse a partial-response ``fields`` selector into a tree."""
    pos = 0

    def parse_list(stop: str | None) -> dict[str, Any]:
        nonlocal pos
        node: dict[str, Any] = {}
        while pos < len(spec):
            match = re.match(r"\s*([A-Za-z0-9_*]+(?:/[A-Za-z0-9_*]+)*)\s*", spec[pos:])
            if match is None:
                raise ValueError("bad fields selector")
            pos += match.end()
            path = match.group(1).split("/")
            sub: dict[str, Any] | None = None
            if pos < len(spec) and spec[pos] == "(":
                pos += 1
                sub = parse_list(")")
            cur = node
            for name in path[:-1]:
                nxt = cur.get(name)
                if not isinstance(nxt, dict):
                    nxt = {}
                    cur[name] = nxt
                cur = nxt
            cur[path[-1]] = sub
            if pos < len(spec) and spec[pos] == ",":
                pos += 1
                continue
            if pos < len(spec) and spec[pos] == ")":
                if stop != ")":
                    raise ValueError("bad fields selector")
                pos += 1
                return node
        return node

    return parse_list(None)


def _apply_fields(obj: Any, tree: dict[str, Any] | None) -> Any:
    if tree is None or "*" in tree:
        return obj
    if isinstance(obj, list):
        return [_apply_fields(item, tree) for item in obj]
    if isinstance(obj, dict):
        return {k: _apply_fields(v, tree[k]) for k, v in obj.items() if k in tree}
    return obj


def _q1(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _bool_param(query: dict[str, list[str]], name: str) -> bool:
    return (_q1(query, name) or "").lower() == "true"


# --------------------------------------------------------------------------- HTTP layer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: GmailEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints every handler exception (e.g. a client that vanished or a
        # connection cut by stop()) to stderr; stay quiet unless debugging
        if self.emulator.verbose:
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ESF"
    sys_version = ""

    @property
    def _emu(self) -> GmailEmulator:
        return cast(_Server, self.server).emulator

    def setup(self) -> None:
        super().setup()
        # headers and body are separate writes: avoid Nagle + delayed-ACK 40 ms stalls
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._emu._register_conn(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._emu._unregister_conn(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        if self._emu.verbose:
            sys.stderr.write("gmail-emulator: " + (format % args) + "\n")

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > _MAX_HTTP_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_HTTP_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        emu = self._emu
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._write(ApiError(413, "Request Entity Too Large").response())
            return
        is_batch = self.path.split("?", 1)[0].startswith("/batch")
        if is_batch:
            emu._batch_arrived()
        try:
            self._answer(emu, body)
        finally:
            if is_batch:
                emu._batch_left()

    def _answer(self, emu: GmailEmulator, body: bytes) -> None:
        if emu.latency > 0:
            time.sleep(emu.latency)
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = _Request(self.command, self.path, headers, body)
        try:
            resp = emu._handle(req)
        except Exception as exc:  # never let a bug kill the connection silently
            emu.errors.append(traceback.format_exc())
            if emu.verbose:
                traceback.print_exc()
            resp = ApiError(500, f"Emulator internal error: {exc!r}").response()
        mode = emu._take_drop(resp)
        if mode is not None:
            self._drop(mode)
            return
        emu._confirm(resp.confirm, +1)
        try:
            self._write(resp)
        except OSError:
            emu._confirm(resp.confirm, -1)
            self.close_connection = True

    def _write(self, resp: _Response) -> None:
        self.send_response(resp.status, resp.reason)
        for name, value in resp.headers:
            self.send_header(name, value)
        if resp.content_type is not None:
            self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if resp.body:
            self.wfile.write(resp.body)
        self.wfile.flush()

    def _drop(self, mode: str) -> None:
        self.close_connection = True
        if mode == "reset":
            try:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.rfile.close()
                self.connection.close()
            except OSError:
                pass


# --------------------------------------------------------------------------- emulator


class GmailEmulator:
    """An in-memory Gmail mailbox for one user behind a loopback HTTP server."""

    def __init__(
        self,
        *,
        account: str = "user@example.com",
        quota_units_per_minute: int = 15000,
        burst_units: int | None = None,
        latency: float = 0.0,
        access_token_lifetime: int = 3600,
    ) -> None:
        self.account = account
        self.quota_units_per_minute = quota_units_per_minute
        self.burst_units = burst_units if burst_units is not None else BATCH_LIMIT * 25
        self.latency = latency
        self.part_latency = 0.0
        """Extra seconds per call inside a batch before it is answered (0: none)."""
        self.access_token_lifetime = access_token_lifetime
        self.daily_limit_exceeded = False
        # When True, messages.import without neverMarkSpam=true lands in SPAM (not INBOX).
        self.import_marks_spam = False
        # When True, the consent screen answers error=access_denied.
        self.deny_consent = False
        self.verbose = bool(os.environ.get("GMAIL_EMULATOR_DEBUG"))
        self.client_id = "emulator-client-0001.apps.googleusercontent.com"
        self.client_secret = "GOCSPX-emulator-secret"
        digest = hashlib.sha1(account.encode()).hexdigest()
        self.subject = str(100000000000000000000 + int(digest[:12], 16))

        self.url = ""
        self.token_uri = ""
        self.auth_uri = ""

        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._bind_port = 0
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()

        # mailbox
        self._messages: dict[str, StoredMessage] = {}
        self._by_msgid: dict[str, str] = {}
        self._labels: dict[str, _Label] = {n: _Label(n, n, "system") for n in _SYSTEM_LABELS}
        self._next_label = 1
        self._seq = 0
        self._history = 1000

        # auth
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, _AccessToken] = {}
        self._codes: dict[str, _AuthCode] = {}

        # quota
        self._bucket = float(self.burst_units)
        self._bucket_time = time.monotonic()

        # faults
        self._faults: dict[str, deque[_Fault]] = {}
        self._drops: deque[str] = deque()

        # uploads
        self._uploads: dict[str, _UploadSession] = {}

        # accounting
        self.insert_calls = 0
        self.upload_kinds: Counter[str] = Counter()
        """Insert/import requests by how the message came: "json" (a raw body), "media",
        "multipart" or "resumable" (a session started; its data PUTs are not counted)."""
        self.merges = 0
        self.http_requests = 0
        self.batch_requests = 0
        self.quota_rejections = 0
        self.dropped_responses = 0
        self.batches_in_flight = 0
        """Batch requests received and not yet answered (or dropped), right now."""
        self.most_batches_in_flight = 0
        """The most batch requests that were in the emulator at one time."""
        self.token_refreshes = 0
        """Access tokens minted by the token endpoint for a refresh token."""
        self.calls: Counter[str] = Counter()
        self.errors: list[str] = []
        self._confirmed: Counter[str] = Counter()
        self._resent: list[str] = []
        self._resent_count = 0
        self.insert_log: list[str] = []
        """Message-ID of every insert/import that arrived, in order (for re-send checks)."""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> GmailEmulator:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self._bind_port), _Handler)
        server.emulator = self
        self._server = server
        port = server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self.token_uri = self.url + "/token"
        self.auth_uri = self.url + "/o/oauth2/auth"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self._server = None
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> GmailEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _register_conn(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def _unregister_conn(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)

    # ------------------------------------------------------------------ auth API

    def grant(self, scopes: list[str], refresh_token: str | None = None) -> str:
        """Register a refresh token carrying ``scopes``; returns it."""
        token = refresh_token or ("1//emu-" + secrets.token_urlsafe(24))
        with self._lock:
            self._grants[token] = _Grant(token, list(scopes))
        return token

    def revoke(self, refresh_token: str) -> None:
        """Revoke a grant: refreshes answer invalid_grant, its access tokens 401."""
        with self._lock:
            grant = self._grants.get(refresh_token)
            if grant is not None:
                grant.revoked = True

    def access_token(self, refresh_token: str) -> str:
        """Mint an access token for a grant directly (without the token endpoint)."""
        with self._lock:
            grant = self._grants[refresh_token]
            return self._mint_access(grant, frozenset(grant.scopes)).token

    def client_secrets(self) -> dict[str, Any]:
        return {
            "installed": {
                "client_id": self.client_id,
                "project_id": "smsbak-emulator",
                "auth_uri": self.auth_uri,
                "token_uri": self.token_uri,
                "client_secret": self.client_secret,
                "redirect_uris": ["http://localhost"],
            }
        }

    # ------------------------------------------------------------------ faults API

    def fail_next(
        self,
        count: int,
        status: int = 500,
        method: str = "insert",
        reason: str | None = None,
        retry_after: float | None = None,
        *,
        retry_after_in_message: bool = False,
    ) -> None:
        """Make the next ``count`` calls of ``method`` fail (batch parts count singly).

        ``method``: insert, import, list, get, labels.list, labels.create, labels.get,
        profile (``messages.*``/``users.*`` spellings accepted) or ``*`` for any.
        ``retry_after`` adds a ``Retry-After`` header, or with ``retry_after_in_message``
        a "Retry after <RFC 3339 time>" suffix in the message instead. A failed call
        stores nothing and consumes no quota.
        """
        op = _OP_ALIASES.get(method, method)
        if op != "*" and op not in _OP_COST:
            raise ValueError(f"unknown method {method!r}")
        with self._lock:
            queue = self._faults.setdefault(op, deque())
            for _ in range(count):
                queue.append(_Fault(status, reason, retry_after, retry_after_in_message))

    def drop_after_commit(self, count: int = 1, *, mode: str = "reset") -> None:
        """Process the next ``count`` requests containing an insert/import, then close
        the connection without answering.

        ``mode="reset"`` (default) aborts with a TCP RST: httplib2 raises
        ``ConnectionResetError`` at once. ``mode="close"`` closes cleanly (FIN): httplib2
        treats that as a stale keep-alive connection and silently re-sends the request
        once (a second drop then raises ``RemoteDisconnected``).
        """
        if mode not in ("reset", "close"):
            raise ValueError("mode must be 'reset' or 'close'")
        with self._lock:
            self._drops.extend([mode] * count)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._drops.clear()

    def set_quota(self, units_per_minute: int, burst_units: int | None = None) -> None:
        with self._lock:
            self._refill()
            self.quota_units_per_minute = units_per_minute
            if burst_units is not None:
                self.burst_units = burst_units
                self._bucket = min(self._bucket, float(burst_units))

    def refill_quota(self) -> None:
        """Fill the token bucket up to its capacity."""
        with self._lock:
            self._bucket = float(self.burst_units)
            self._bucket_time = time.monotonic()

    # ------------------------------------------------------------------ inspection

    def messages(self, label: str | None = None) -> list[StoredMessage]:
        """Stored messages in insertion order (copies); ``label`` is a label NAME."""
        with self._lock:
            label_id: str | None = None
            if label is not None:
                found = self._label_by_name(label)
                if found is None:
                    return []
                label_id = found.id
            return [
                StoredMessage(
                    m.id, m.thread_id, m.raw, list(m.label_ids), m.internal_date, m.message_id
                )
                for m in self._messages.values()
                if label_id is None or label_id in m.label_ids
            ]

    def labels(self) -> list[dict[str, str]]:
        with self._lock:
            return [{"id": lb.id, "name": lb.name, "type": lb.type} for lb in self._labels.values()]

    def resent_after_confirmed(self) -> list[str]:
        """Message-IDs inserted again after a success for them reached the client."""
        with self._lock:
            return list(self._resent)

    def add_message(self, raw: bytes, label_names: list[str]) -> str:
        """Seed the mailbox directly (labels created as needed); returns the id."""
        with self._lock:
            ids: list[str] = []
            for name in label_names:
                lb = self._label_by_name(name)
                if lb is None:
                    lb = self._create_label(name, {})
                ids.append(lb.id)
            date = _date_ms(raw)
            stored = self._store(raw, ids, None, date if date is not None else self._now_ms())
            return str(stored["id"])

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "insert_calls": self.insert_calls,
                "messages": len(self._messages),
                "merges": self.merges,
                "http_requests": self.http_requests,
                "batch_requests": self.batch_requests,
                "quota_rejections": self.quota_rejections,
                "dropped_responses": self.dropped_responses,
                "most_batches_in_flight": self.most_batches_in_flight,
                "calls": dict(self.calls),
                "resent_after_confirmed": list(self._resent),
                "resent_count": self._resent_count,
                "errors": len(self.errors),
            }

    # ------------------------------------------------------------------ internals: state

    def _now_ms(self) -> int:
        return int(time.time() * 1000)

    def _new_id(self) -> str:
        self._seq += 1
        return f"{0x18C0000000000000 + self._seq:016x}"

    def _label_by_name(self, name: str) -> _Label | None:
        low = name.lower()
        for lb in self._labels.values():
            if lb.name.lower() == low:
                return lb
        return None

    def _create_label(self, name: str, extra: JSON) -> _Label:
        lid = f"Label_{self._next_label}"
        self._next_label += 1
        lb = _Label(lid, name, "user", extra)
        self._labels[lid] = lb
        self._history += 1
        return lb

    def _store(
        self, raw: bytes, label_ids: list[str], thread_id: str | None, internal_date: int
    ) -> JSON:
        """Store (or merge by Message-ID) a message; returns the message resource."""
        msgid = _message_id_of(raw)
        self._history += 1
        if msgid is not None and msgid in self._by_msgid:
            existing = self._messages[self._by_msgid[msgid]]
            for lid in label_ids:
                if lid not in existing.label_ids:
                    existing.label_ids.append(lid)
            if "TRASH" in existing.label_ids and "TRASH" not in label_ids:
                existing.label_ids.remove("TRASH")  # a duplicate brings it back
            self.merges += 1
            return self._short(existing)
        mid = self._new_id()
        thread = self._thread_for(raw, thread_id) or mid
        msg = StoredMessage(mid, thread, raw, list(dict.fromkeys(label_ids)), internal_date, msgid)
        self._messages[mid] = msg
        if msgid is not None:
            self._by_msgid[msgid] = mid
        return self._short(msg)

    def _thread_for(self, raw: bytes, thread_id: str | None) -> str | None:
        if thread_id and any(m.thread_id == thread_id for m in self._messages.values()):
            return thread_id
        headers = _parse_headers(raw)
        refs = " ".join(str(headers.get(h, "")) for h in ("In-Reply-To", "References"))
        for ref in re.findall(r"<[^>]+>", refs):
            mid = self._by_msgid.get(ref)
            if mid is not None:
                return self._messages[mid].thread_id
        return None

    @staticmethod
    def _short(msg: StoredMessage) -> JSON:
        res: JSON = {"id": msg.id, "threadId": msg.thread_id}
        if msg.label_ids:
            res["labelIds"] = list(msg.label_ids)
        return res

    def _refill(self) -> None:
        now = time.monotonic()
        rate = self.quota_units_per_minute / 60.0
        self._bucket = min(float(self.burst_units), self._bucket + (now - self._bucket_time) * rate)
        self._bucket_time = now

    def _take_quota(self, cost: int) -> float | None:
        """Take ``cost`` units; None on success, else seconds until they would exist."""
        self._refill()
        if self._bucket >= cost:
            self._bucket -= cost
            return None
        rate = self.quota_units_per_minute / 60.0
        if cost > self.burst_units or rate <= 0:
            return 60.0
        return (cost - self._bucket) / rate

    def _take_drop(self, resp: _Response) -> str | None:
        if not resp.has_insert:
            return None
        with self._lock:
            if not self._drops:
                return None
            self.dropped_responses += 1
            return self._drops.popleft()

    def _batch_arrived(self) -> None:
        with self._lock:
            self.batches_in_flight += 1
            self.most_batches_in_flight = max(self.most_batches_in_flight, self.batches_in_flight)

    def _batch_left(self) -> None:
        with self._lock:
            self.batches_in_flight -= 1

    def _confirm(self, msgids: list[str], delta: int) -> None:
        if not msgids:
            return
        with self._lock:
            for msgid in msgids:
                self._confirmed[msgid] += delta
                if self._confirmed[msgid] <= 0:
                    del self._confirmed[msgid]

    def _note_insert_arrival(self, raw: bytes) -> None:
        msgid = _message_id_of(raw)
        if msgid is not None:
            self.insert_log.append(msgid)
        if msgid is not None and self._confirmed.get(msgid, 0) > 0:
            self._resent_count += 1
            if msgid not in self._resent:
                self._resent.append(msgid)

    def _mint_access(self, grant: _Grant, scopes: frozenset[str]) -> _AccessToken:
        token = "ya29.emu-" + secrets.token_urlsafe(32)
        access = _AccessToken(token, grant, scopes, time.time() + self.access_token_lifetime)
        self._tokens[token] = access
        return access

    # ------------------------------------------------------------------ internals: HTTP

    def _handle(self, req: _Request) -> _Response:
        with self._lock:
            self.http_requests += 1
        split = urllib.parse.urlsplit(req.target)
        path = split.path
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        try:
            if path in ("/token", "/o/oauth2/token", "/oauth2/v4/token"):
                return self._oauth_token(req)
            if path in ("/o/oauth2/auth", "/o/oauth2/v2/auth"):
                return self._oauth_authorize(query)
            if path in ("/revoke", "/o/oauth2/revoke"):
                return self._oauth_revoke(req, query)
            if path in (
                "/oauth2/v3/userinfo",
                "/oauth2/v2/userinfo",
                "/oauth2/v3/tokeninfo",
                "/tokeninfo",
            ):
                return self._userinfo(req, query, path)
        except _OAuthError as exc:
            return exc.response()
        if path == "/batch" or path.startswith("/batch/"):
            return self._batch(req)
        if (path.startswith(("/upload/", "/resumable/upload/"))) and "upload_id" in query:
            return self._resumable_put(req, query)
        if path.startswith(("/gmail/", "/upload/", "/resumable/upload/")):
            return self._call(
                req.method,
                req.target,
                req.headers,
                req.body,
                req.headers.get("authorization"),
                in_batch=False,
            )
        return ApiError(
            404, f"The requested URL {path} was not found on this server.", "notFound"
        ).response()

    # ------------------------------------------------------------------ OAuth

    def _oauth_authorize(self, query: dict[str, list[str]]) -> _Response:
        client_id = _q1(query, "client_id")
        redirect_uri = _q1(query, "redirect_uri")
        if not client_id or not redirect_uri:
            return _Response(
                400,
                b"Error 400: invalid_request (missing client_id or redirect_uri)",
                content_type="text/plain; charset=utf-8",
            )
        if client_id != self.client_id:
            return _Response(
                401,
                b"Error 401: invalid_client (The OAuth client was not found.)",
                content_type="text/plain; charset=utf-8",
            )
        if _q1(query, "response_type") != "code":
            return _Response(
                400,
                b"Error 400: invalid_request (response_type must be code)",
                content_type="text/plain; charset=utf-8",
            )
        scopes = (_q1(query, "scope") or "").split()
        params: list[tuple[str, str]] = []
        state = _q1(query, "state")
        if self.deny_consent:
            params.append(("error", "access_denied"))
        elif not scopes:
            params.append(("error", "invalid_scope"))
        else:
            code = "4/emu-" + secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = _AuthCode(
                    scopes,
                    client_id,
                    redirect_uri,
                    _q1(query, "code_challenge"),
                    _q1(query, "code_challenge_method") or "plain",
                    _q1(query, "access_type") == "offline",
                )
            params.append(("code", code))
            params.append(("scope", " ".join(scopes)))
        if state is not None:
            params.insert(0, ("state", state))
        sep = "&" if "?" in redirect_uri else "?"
        location = redirect_uri + sep + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        return _Response(302, b"", headers=[("Location", location)], content_type=None)

    def _client_auth(self, req: _Request, form: dict[str, list[str]]) -> str | None:
        client_id = _q1(form, "client_id")
        client_secret = _q1(form, "client_secret")
        basic = req.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic[6:].strip()).decode("utf-8")
            except ValueError:
                decoded = ":"
            cid, _, csec = decoded.partition(":")
            client_id = urllib.parse.unquote_plus(cid)
            client_secret = urllib.parse.unquote_plus(csec)
        if client_id is not None and client_id != self.client_id:
            raise _OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if client_secret is not None and client_secret != self.client_secret:
            raise _OAuthError(401, "invalid_client", "Unauthorized")
        return client_id

    def _oauth_token(self, req: _Request) -> _Response:
        if req.method != "POST":
            raise _OAuthError(405, "invalid_request", "Method not allowed")
        form = urllib.parse.parse_qs(req.body.decode("utf-8", "replace"), keep_blank_values=True)
        client_id = self._client_auth(req, form)
        grant_type = _q1(form, "grant_type")
        with self._lock:
            if grant_type == "authorization_code":
                return self._exchange_code(form, client_id)
            if grant_type == "refresh_token":
                return self._refresh(form)
        raise _OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _exchange_code(self, form: dict[str, list[str]], client_id: str | None) -> _Response:
        code = _q1(form, "code") or ""
        pending = self._codes.pop(code, None)
        if pending is None:
            raise _OAuthError(400, "invalid_grant", "Malformed auth code.")
        if client_id is not None and client_id != pending.client_id:
            raise _OAuthError(400, "invalid_grant", "Bad Request")
        if _q1(form, "redirect_uri") != pending.redirect_uri:
            raise _OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        if pending.code_challenge is not None:
            verifier = _q1(form, "code_verifier") or ""
            if pending.code_challenge_method.upper() == "S256":
                computed = _b64url_nopad(hashlib.sha256(verifier.encode("ascii")).digest())
            else:
                computed = verifier
            if computed != pending.code_challenge:
                raise _OAuthError(400, "invalid_grant", "Invalid code verifier.")
        refresh = self.grant(pending.scopes)
        grant = self._grants[refresh]
        grant.client_id = pending.client_id
        access = self._mint_access(grant, frozenset(pending.scopes))
        doc: JSON = {
            "access_token": access.token,
            "expires_in": self.access_token_lifetime,
            "scope": " ".join(pending.scopes),
            "token_type": "Bearer",
        }
        if pending.offline:
            doc["refresh_token"] = refresh
        id_token = self._id_token(pending.scopes, pending.client_id)
        if id_token is not None:
            doc["id_token"] = id_token
        return _Response(
            200,
            _dumps(doc),
            headers=[("Cache-Control", "no-store")],
            content_type="application/json; charset=utf-8",
        )

    def _refresh(self, form: dict[str, list[str]]) -> _Response:
        grant = self._grants.get(_q1(form, "refresh_token") or "")
        if grant is None or grant.revoked:
            raise _OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        scopes = list(grant.scopes)
        asked = _q1(form, "scope")
        if asked:
            wanted = asked.split()
            if not set(wanted) <= set(grant.scopes):
                raise _OAuthError(
                    400, "invalid_scope", "The requested scope is not granted to this token."
                )
            scopes = wanted
        with self._lock:
            self.token_refreshes += 1
        access = self._mint_access(grant, frozenset(scopes))
        doc: JSON = {
            "access_token": access.token,
            "expires_in": self.access_token_lifetime,
            "scope": " ".join(scopes),
            "token_type": "Bearer",
        }
        id_token = self._id_token(scopes, grant.client_id or self.client_id)
        if id_token is not None:
            doc["id_token"] = id_token
        return _Response(
            200,
            _dumps(doc),
            headers=[("Cache-Control", "no-store")],
            content_type="application/json; charset=utf-8",
        )

    def _id_token(self, scopes: list[str], client_id: str) -> str | None:
        if not {"openid", "email", SCOPE_USERINFO_EMAIL} & set(scopes):
            return None
        now = int(time.time())
        header = {"alg": "none", "typ": "JWT"}
        claims = {
            "iss": "https://accounts.google.com",
            "azp": client_id,
            "aud": client_id,
            "sub": self.subject,
            "email": self.account,
            "email_verified": True,
            "iat": now,
            "exp": now + self.access_token_lifetime,
        }
        return ".".join(
            [
                _b64url_nopad(json.dumps(header, separators=(",", ":")).encode()),
                _b64url_nopad(json.dumps(claims, separators=(",", ":")).encode()),
                "",
            ]
        )

    def _oauth_revoke(self, req: _Request, query: dict[str, list[str]]) -> _Response:
        form = urllib.parse.parse_qs(req.body.decode("utf-8", "replace"))
        token = _q1(form, "token") or _q1(query, "token") or ""
        with self._lock:
            grant = self._grants.get(token)
            if grant is None and token in self._tokens:
                grant = self._tokens[token].grant
            if grant is None or grant.revoked:
                raise _OAuthError(400, "invalid_token", "Token expired or revoked")
            grant.revoked = True
        return _Response(200, b"{}", content_type="application/json; charset=utf-8")

    def _userinfo(self, req: _Request, query: dict[str, list[str]], path: str) -> _Response:
        token = _q1(query, "access_token")
        if token is None:
            auth = req.headers.get("authorization", "")
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        with self._lock:
            access = self._valid_token(token)
        if access is None:
            raise _OAuthError(401, "invalid_token", "Invalid Credentials")
        doc: JSON = {"sub": self.subject, "email": self.account, "email_verified": True}
        if "tokeninfo" in path:
            doc.update(
                {
                    "aud": access.grant.client_id or self.client_id,
                    "scope": " ".join(sorted(access.scopes)),
                    "expires_in": int(access.expires_at - time.time()),
                }
            )
        return _Response(200, _dumps(doc), content_type="application/json; charset=utf-8")

    def _valid_token(self, token: str) -> _AccessToken | None:
        access = self._tokens.get(token)
        if access is None or access.grant.revoked or access.expires_at <= time.time():
            return None
        return access

    def _check_auth(self, auth_header: str | None) -> _AccessToken:
        if not auth_header or not auth_header.lower().startswith("bearer "):
            raise ApiError(
                401,
                "Request is missing required authentication credential. Expected OAuth 2 "
                "access token, login cookie or other valid authentication credential. See "
                "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                "authError",
                headers=[("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/"')],
                extra={"location": "Authorization", "locationType": "header"},
            )
        with self._lock:
            access = self._valid_token(auth_header[7:].strip())
        if access is None:
            raise ApiError(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential. See "
                "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                "authError",
                headers=[
                    (
                        "WWW-Authenticate",
                        'Bearer realm="https://accounts.google.com/", error="invalid_token"',
                    )
                ],
                extra={"location": "Authorization", "locationType": "header"},
            )
        return access

    # ------------------------------------------------------------------ batch

    def _batch(self, req: _Request) -> _Response:
        with self._lock:
            self.batch_requests += 1
        if req.method != "POST":
            return ApiError(405, "Batch requests must be POST.", "badRequest").response()
        try:
            outer_auth = req.headers.get("authorization")
            self._check_auth(outer_auth)
            ctype, params = _content_type_params(req.headers.get("content-type", ""))
            boundary = params.get("boundary")
            if ctype != "multipart/mixed" or not boundary:
                raise ApiError(400, "Batch request must be multipart/mixed with a boundary.")
            try:
                parts = _split_multipart(req.body, boundary)
            except ValueError as exc:
                raise ApiError(400, f"Failed to parse batch request: {exc}") from None
            if len(parts) > BATCH_LIMIT:
                raise ApiError(
                    400,
                    f"Inner request count exceeds the limit. Received: {len(parts)}, "
                    f"Limit: {BATCH_LIMIT}",
                )
            if not parts:
                raise ApiError(400, "Batch request contains no parts.")
        except ApiError as exc:
            return exc.response()

        if self.part_latency > 0:
            # Gmail works through a batch's calls before it answers: a big batch is slow.
            time.sleep(self.part_latency * len(parts))
        out_boundary = "batch_" + secrets.token_hex(12)
        chunks: list[bytes] = []
        resp = _Response(200, content_type=f"multipart/mixed; boundary={out_boundary}")
        for part in parts:
            head, inner = _split_head(part)
            part_headers = _headers_dict(head)
            content_id = part_headers.get("content-id")
            inner_resp = self._batch_part(inner, outer_auth)
            resp.confirm.extend(inner_resp.confirm)
            resp.has_insert = resp.has_insert or inner_resp.has_insert
            lines = [f"--{out_boundary}", "Content-Type: application/http"]
            if content_id is not None:
                cid = content_id.strip()
                if cid.startswith("<") and cid.endswith(">"):
                    cid = cid[1:-1]
                lines.append(f"Content-ID: <response-{cid}>")
            lines.append("")
            phrase = inner_resp.reason or _phrase(inner_resp.status)
            lines.append(f"HTTP/1.1 {inner_resp.status} {phrase}")
            for name, value in inner_resp.headers:
                lines.append(f"{name}: {value}")
            if inner_resp.content_type is not None:
                lines.append(f"Content-Type: {inner_resp.content_type}")
            lines.append("Vary: Origin")
            lines.append("Vary: X-Origin")
            lines.append("Vary: Referer")
            lines.append(f"Content-Length: {len(inner_resp.body)}")
            lines.append("")
            chunks.append("\r\n".join(lines).encode("utf-8") + b"\r\n" + inner_resp.body + b"\r\n")
        chunks.append(f"--{out_boundary}--\r\n".encode())
        resp.body = b"".join(chunks)
        return resp

    def _batch_part(self, data: bytes, outer_auth: str | None) -> _Response:
        nl = data.find(b"\n")
        request_line = (data if nl < 0 else data[:nl]).decode("latin-1").strip()
        rest = b"" if nl < 0 else data[nl + 1 :]
        bits = request_line.split()
        if len(bits) < 2:
            return ApiError(
                400, "Failed to parse batch request, error: invalid request line"
            ).response()
        method, target = bits[0].upper(), bits[1]
        split = urllib.parse.urlsplit(target)
        path_query = split.path + (f"?{split.query}" if split.query else "")
        head, body = _split_head(rest)
        headers = _headers_dict(head)
        length = headers.get("content-length")
        if length is not None and length.isdigit():
            body = body[: int(length)]
        elif not body.strip():
            body = b""
        auth = headers.get("authorization", outer_auth)
        if split.path.startswith(("/upload/", "/resumable/upload/")):
            return ApiError(400, "Media upload is not supported in a batch request.").response()
        if split.path.startswith("/batch"):
            return ApiError(400, "Nested batch requests are not supported.").response()
        return self._call(method, path_query, headers, body, auth, in_batch=True)

    # ------------------------------------------------------------------ API calls

    def _route(self, method: str, path: str) -> tuple[str, str, dict[str, str], str]:
        """Returns (op, user, params, kind); kind is 'json', 'upload' or 'resumable'."""
        match = re.fullmatch(r"/((?:resumable/)?upload/)?gmail/v1/users/([^/]+)/(.+)", path)
        if match is None:
            raise ApiError(
                404, f"The requested URL {path} was not found on this server.", "notFound"
            )
        prefix, user, rest = match.groups()
        kinds = {None: "json", "upload/": "upload", "resumable/upload/": "resumable"}
        kind = kinds[prefix]
        user = urllib.parse.unquote(user)
        parts = rest.split("/")
        op: str | None = None
        params: dict[str, str] = {}
        if parts == ["profile"] and method == "GET":
            op = "profile"
        elif parts == ["labels"]:
            op = {"GET": "labels.list", "POST": "labels.create"}.get(method)
        elif len(parts) == 2 and parts[0] == "labels" and method == "GET":
            op, params = "labels.get", {"id": urllib.parse.unquote(parts[1])}
        elif parts == ["messages"]:
            op = {"GET": "list", "POST": "insert"}.get(method)
        elif parts == ["messages", "import"] and method == "POST":
            op = "import"
        elif len(parts) == 2 and parts[0] == "messages" and method == "GET":
            op, params = "get", {"id": urllib.parse.unquote(parts[1])}
        if op is None or (kind != "json" and op not in _UPLOAD_OPS):
            raise ApiError(404, f"Method not found: {method} {path}", "notFound")
        return op, user, params, kind

    def _call(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        auth: str | None,
        *,
        in_batch: bool,
    ) -> _Response:
        split = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        override = headers.get("x-http-method-override")
        if override:  # googleapiclient sends a GET with a URI over 2000 chars this way
            method = override.upper()
            ctype = headers.get("content-type", "")
            if ctype.startswith("application/x-www-form-urlencoded"):
                form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), True)
                for key, values in form.items():
                    query.setdefault(key, []).extend(values)
                body = b""
        commit_request = False  # an insert/import that stores (drop_after_commit applies)
        try:
            op, user, params, kind = self._route(method.upper(), split.path)
            resumable = kind != "json" and _upload_type(query, kind) == "resumable"
            commit_request = op in _UPLOAD_OPS and not resumable
            with self._lock:
                self.calls[op] += 1
                if op in _UPLOAD_OPS:
                    self.insert_calls += 1
                    self.upload_kinds["json" if kind == "json" else _upload_type(query, kind)] += 1
            access = self._check_auth(auth)
            if not access.scopes & _OP_SCOPES[op]:
                raise ApiError(
                    403,
                    "Request had insufficient authentication scopes.",
                    "insufficientPermissions",
                    extra={},
                )
            if user.lower() not in ("me", self.account.lower()):
                raise ApiError(403, f"Delegation denied for {self.account}", "forbidden")
            metadata_only = not access.scopes & _FULL_READ
            if resumable:
                return self._resumable_start(op, query, headers, body, in_batch)
            if kind == "json" and len(body) > JSON_BODY_LIMIT:
                raise ApiError(
                    400, f"Request payload size exceeds the limit: {JSON_BODY_LIMIT} bytes."
                )
            if op in _UPLOAD_OPS:
                raw, meta = self._insert_input(kind, query, headers, body)
                with self._lock:
                    self._note_insert_arrival(raw)
                    self._gate(op, in_batch)
                    result = self._insert(op, query, raw, meta)
                msgid = _message_id_of(raw)
                resp = self._json_response(result, query)
                resp.has_insert = True
                if msgid is not None:
                    resp.confirm.append(msgid)
                return resp
            with self._lock:
                self._gate(op, in_batch)
                result = self._dispatch_read(op, params, query, body, metadata_only)
            return self._json_response(result, query)
        except ApiError as exc:
            resp = exc.response()
            resp.has_insert = commit_request
            return resp

    def _json_response(self, result: JSON, query: dict[str, list[str]]) -> _Response:
        fields = _q1(query, "fields")
        if fields:
            try:
                result = _apply_fields(result, _parse_fields(fields))
            except ValueError:
                raise ApiError(400, f"Invalid field selection {fields}") from None
        return _Response(200, _dumps(result))

    def _gate(self, op: str, in_batch: bool) -> None:
        """Injected faults, daily limit, then quota. Called with the lock held."""
        fault: _Fault | None = None
        for key in (op, "*"):
            queue = self._faults.get(key)
            if queue:
                fault = queue.popleft()
                break
        if fault is not None:
            raise _fault_error(fault)
        if op in _UPLOAD_OPS and self.daily_limit_exceeded:
            raise ApiError(403, "Daily Limit Exceeded", "dailyLimitExceeded", domain="usageLimits")
        wait = self._take_quota(_OP_COST[op])
        if wait is not None:
            self.quota_rejections += 1
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429,
                MSG_CONCURRENT if in_batch else MSG_QUOTA,
                "rateLimitExceeded",
                domain="usageLimits",
                headers=[("Retry-After", str(seconds))],
            )

    # ------------------------------------------------------------------ insert/import

    def _insert_input(
        self, kind: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> tuple[bytes, JSON]:
        if kind == "json":
            try:
                doc = json.loads(body.decode("utf-8") or "{}")
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ApiError(400, "Invalid JSON payload received.", "parseError") from None
            if not isinstance(doc, dict):
                raise ApiError(400, "Invalid JSON payload received.", "parseError")
            raw_text = doc.get("raw")
            if not raw_text:
                raise ApiError(
                    400,
                    "'raw' RFC822 payload message string or uploading message via /upload/* "
                    "URL required",
                    "invalidArgument",
                )
            try:
                raw = _b64decode_lenient(str(raw_text))
            except (ValueError, TypeError):
                raise ApiError(
                    400,
                    "Invalid value at 'message.raw' (TYPE_BYTES), Base64 decoding failed",
                    "invalid",
                ) from None
            return raw, doc
        utype = _upload_type(query, kind)
        ctype, params = _content_type_params(headers.get("content-type", ""))
        if utype == "media":
            _check_media_type(ctype)
            return body, {}
        if utype == "multipart":
            boundary = params.get("boundary")
            if ctype != "multipart/related" or not boundary:
                raise ApiError(400, "Multipart upload requires multipart/related with a boundary.")
            try:
                parts = _split_multipart(body, boundary)
            except ValueError:
                raise ApiError(400, "Failed to parse multipart/related body.") from None
            if len(parts) != 2:
                raise ApiError(400, "Multipart upload must have exactly two parts.")
            _, meta_body = _split_head(parts[0])
            media_head, media_body = _split_head(parts[1])
            _check_media_type(
                _content_type_params(_headers_dict(media_head).get("content-type", ""))[0]
            )
            try:
                meta = json.loads(meta_body.decode("utf-8") or "{}")
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ApiError(400, "Invalid JSON payload received.", "parseError") from None
            cte = _headers_dict(media_head).get("content-transfer-encoding", "").lower()
            if cte == "base64":
                media_body = base64.b64decode(media_body)
            return media_body, meta if isinstance(meta, dict) else {}
        raise ApiError(400, f"Invalid upload type: {utype}")

    def _insert(self, op: str, query: dict[str, list[str]], raw: bytes, meta: JSON) -> JSON:
        """Validate and store. Called with the lock held, after the gate."""
        if len(raw) > MEDIA_LIMIT:
            raise ApiError(413, f"Media larger than the maximum allowed size: {MEDIA_LIMIT}")
        if not raw.strip():
            raise ApiError(400, "Invalid message: empty", "invalidArgument")
        label_ids = meta.get("labelIds") or []
        if not isinstance(label_ids, list):
            raise ApiError(400, "Invalid value for labelIds", "invalidArgument")
        for lid in label_ids:
            if str(lid) not in self._labels:
                raise ApiError(400, f"Invalid label: {lid}", "invalidArgument")
        label_ids = [str(lid) for lid in label_ids]
        default_source = "dateHeader" if op == "import" else "receivedTime"
        source = _q1(query, "internalDateSource") or default_source
        if source not in ("dateHeader", "receivedTime"):
            raise ApiError(400, f"Invalid value for internalDateSource: {source}", "invalid")
        internal = _date_ms(raw) if source == "dateHeader" else None
        if internal is None:
            internal = self._now_ms()
        if op == "import" and self.import_marks_spam and not _bool_param(query, "neverMarkSpam"):
            label_ids = [lid for lid in label_ids if lid != "INBOX"] + ["SPAM"]
        thread_id = meta.get("threadId")
        return self._store(raw, label_ids, str(thread_id) if thread_id else None, internal)

    def _resumable_start(
        self,
        op: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        in_batch: bool,
    ) -> _Response:
        total_text = headers.get("x-upload-content-length")
        total = int(total_text) if total_text and total_text.isdigit() else None
        if total is not None and total > MEDIA_LIMIT:
            raise ApiError(413, f"Media larger than the maximum allowed size: {MEDIA_LIMIT}")
        upload_ct = headers.get("x-upload-content-type")
        if upload_ct:
            _check_media_type(_content_type_params(upload_ct)[0])
        try:
            meta = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(400, "Invalid JSON payload received.", "parseError") from None
        if not isinstance(meta, dict):
            raise ApiError(400, "Invalid JSON payload received.", "parseError")
        with self._lock:
            self._gate(op, in_batch)
            for lid in meta.get("labelIds") or []:
                if str(lid) not in self._labels:
                    raise ApiError(400, f"Invalid label: {lid}", "invalidArgument")
            upload_id = "ADPycd" + secrets.token_urlsafe(24)
            self._uploads[upload_id] = _UploadSession(op, query, meta, total)
        suffix = "/import" if op == "import" else ""
        location = (
            f"{self.url}/upload/gmail/v1/users/me/messages{suffix}?uploadType=resumable&"
            + urllib.parse.urlencode({"upload_id": upload_id})
        )
        return _Response(
            200,
            b"",
            headers=[("Location", location), ("X-GUploader-UploadID", upload_id)],
            content_type="text/html; charset=UTF-8",
        )

    def _resumable_put(self, req: _Request, query: dict[str, list[str]]) -> _Response:
        upload_id = _q1(query, "upload_id") or ""
        with self._lock:
            session = self._uploads.get(upload_id)
        if session is None:
            return ApiError(404, "Upload session not found or expired.", "notFound").response()
        if req.method not in ("PUT", "POST"):
            return ApiError(405, "Method not allowed for an upload session.").response()
        try:
            with self._lock:
                if session.result is not None:
                    return self._json_response(session.result, session.query)
                cr = req.headers.get("content-range")
                body = req.body
                if cr is None:
                    start, total = len(session.data), len(session.data) + len(body)
                    if session.data:
                        start = 0
                        session.data.clear()
                    end = start + len(body) - 1
                    session.total = total
                    status_only = False
                else:
                    m = re.fullmatch(r"\s*bytes\s+(\*|(\d+)-(\d+))/(\*|\d+)\s*", cr)
                    if m is None:
                        raise ApiError(400, f"Invalid Content-Range: {cr}")
                    status_only = m.group(1) == "*"
                    if m.group(4) != "*":
                        session.total = int(m.group(4))
                    start = int(m.group(2)) if not status_only else 0
                    end = int(m.group(3)) if not status_only else -1
                if session.total is not None and session.total > MEDIA_LIMIT:
                    raise ApiError(
                        413, f"Media larger than the maximum allowed size: {MEDIA_LIMIT}"
                    )
                if not status_only:
                    if end - start + 1 != len(body):
                        raise ApiError(400, "Content-Range does not match the request body length.")
                    have = len(session.data)
                    if start <= have <= end + 1:
                        session.data.extend(body[have - start :])
                    # a gap (start > have) is ignored: the Range answer tells what we have
                    if session.total is not None and len(session.data) > session.total:
                        raise ApiError(400, "Upload exceeds the declared size.")
                complete = session.total is not None and len(session.data) == session.total
                if not complete:
                    headers: list[tuple[str, str]] = []
                    if session.data:
                        headers.append(("Range", f"bytes=0-{len(session.data) - 1}"))
                    return _Response(
                        308,
                        b"",
                        headers=headers,
                        content_type="text/plain",
                        reason="Resume Incomplete",
                    )
                raw = bytes(session.data)
                self._note_insert_arrival(raw)
                result = self._insert(session.op, session.query, raw, session.metadata)
                session.result = result
                session.data = bytearray()
        except ApiError as exc:
            return exc.response()
        resp = self._json_response(result, session.query)
        resp.has_insert = True
        msgid = _message_id_of(raw)
        if msgid is not None:
            resp.confirm.append(msgid)
        return resp

    # ------------------------------------------------------------------ reads

    def _dispatch_read(
        self,
        op: str,
        params: dict[str, str],
        query: dict[str, list[str]],
        body: bytes,
        metadata_only: bool,
    ) -> JSON:
        if op == "labels.list":
            return {"labels": [lb.resource() for lb in self._labels.values()]}
        if op == "labels.get":
            label = self._labels.get(params["id"])
            if label is None:
                raise ApiError(404, "Requested entity was not found.", "notFound")
            # As Gmail: only labels.get (not labels.list) carries the counts.
            held = [m for m in self._messages.values() if label.id in m.label_ids]
            unread = [m for m in held if "UNREAD" in m.label_ids]
            return {
                **label.resource(),
                "messagesTotal": len(held),
                "messagesUnread": len(unread),
                "threadsTotal": len({m.thread_id for m in held}),
                "threadsUnread": len({m.thread_id for m in unread}),
            }
        if op == "labels.create":
            return self._labels_create(body)
        if op == "profile":
            return {
                "emailAddress": self.account,
                "messagesTotal": len(self._messages),
                "threadsTotal": len({m.thread_id for m in self._messages.values()}),
                "historyId": str(self._history),
            }
        if op == "list":
            return self._list(query, metadata_only)
        if op == "get":
            return self._get(params["id"], query, metadata_only)
        raise ApiError(404, "Method not found.", "notFound")

    def _labels_create(self, body: bytes) -> JSON:
        if len(body) > JSON_BODY_LIMIT:
            raise ApiError(400, f"Request payload size exceeds the limit: {JSON_BODY_LIMIT} bytes.")
        try:
            doc = json.loads(body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(400, "Invalid JSON payload received.", "parseError") from None
        name = doc.get("name") if isinstance(doc, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "Invalid label name", "invalidArgument")
        if self._label_by_name(name) is not None:
            raise ApiError(409, "Label name exists or conflicts", "aborted")
        extra = {
            k: doc[k] for k in ("messageListVisibility", "labelListVisibility", "color") if k in doc
        }
        return self._create_label(name, extra).resource()

    def _list(self, query: dict[str, list[str]], metadata_only: bool) -> JSON:
        label_ids = query.get("labelIds", [])
        for lid in label_ids:
            if lid not in self._labels:
                raise ApiError(400, f"Invalid label: {lid}", "invalidArgument")
        q = _q1(query, "q") or ""
        if q.strip() and metadata_only:
            raise ApiError(403, "Metadata scope does not support 'q' parameter", "forbidden")
        try:
            max_results = int(_q1(query, "maxResults") or 100)
        except ValueError:
            raise ApiError(400, "Invalid value for maxResults", "invalid") from None
        max_results = min(max(max_results, 1), 500)
        required = set(label_ids)
        msgids: list[str] = []
        after: int | None = None
        before: int | None = None
        anywhere = _bool_param(query, "includeSpamTrash")
        for term in _q_terms(q):
            key, sep, value = term.partition(":")
            key = key.lower()
            if not sep:
                continue
            if key == "rfc822msgid":
                msgids.append(_norm_msgid(value))
            elif key == "label":
                lb = self._label_by_q_name(value)
                if lb is None:
                    return {"resultSizeEstimate": 0}
                required.add(lb.id)
            elif key in ("in", "is"):
                if value.lower() == "anywhere":
                    anywhere = True
                elif value.upper() in self._labels:
                    required.add(value.upper())
            elif key in ("after", "before"):
                stamp = _q_date(value)
                if key == "after":
                    after = stamp
                else:
                    before = stamp
        if required & {"SPAM", "TRASH"}:
            anywhere = True
        matches = [
            m
            for m in self._messages.values()
            if required <= set(m.label_ids)
            and (anywhere or not {"SPAM", "TRASH"} & set(m.label_ids))
            and (not msgids or (m.message_id is not None and _norm_msgid(m.message_id) in msgids))
            and (after is None or m.internal_date >= after)
            and (before is None or m.internal_date < before)
        ]
        matches.sort(key=lambda m: (m.internal_date, m.id), reverse=True)
        token = _q1(query, "pageToken")
        if token:
            try:
                decoded = base64.urlsafe_b64decode(token.encode()).decode()
                stamp_text, _, last_id = decoded.partition(":")
                cursor = (int(stamp_text), last_id)
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, "Invalid pageToken", "invalid") from None
            matches_after = [m for m in matches if (m.internal_date, m.id) < cursor]
        else:
            matches_after = matches
        page = matches_after[:max_results]
        doc: JSON = {}
        if page:
            doc["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in page]
        if len(matches_after) > max_results:
            last = page[-1]
            doc["nextPageToken"] = base64.urlsafe_b64encode(
                f"{last.internal_date}:{last.id}".encode()
            ).decode()
        doc["resultSizeEstimate"] = len(matches)
        return doc

    def _label_by_q_name(self, value: str) -> _Label | None:
        def squash(text: str) -> str:
            return re.sub(r"[\s/_-]+", "-", text.strip().lower())

        want = squash(value)
        for lb in self._labels.values():
            if squash(lb.name) == want:
                return lb
        return None

    def _get(self, mid: str, query: dict[str, list[str]], metadata_only: bool) -> JSON:
        msg = self._messages.get(mid)
        if msg is None:
            raise ApiError(404, "Requested entity was not found.", "notFound")
        fmt = (_q1(query, "format") or "full").lower()
        if fmt not in ("full", "raw", "metadata", "minimal"):
            raise ApiError(400, f"Invalid format: {fmt}", "invalidArgument")
        if metadata_only and fmt in ("full", "raw"):
            raise ApiError(403, f"Metadata scope doesn't allow format {fmt.upper()}", "forbidden")
        res: JSON = {"id": msg.id, "threadId": msg.thread_id}
        if msg.label_ids:
            res["labelIds"] = list(msg.label_ids)
        parsed = BytesParser(policy=email_policy.default).parsebytes(msg.raw)
        res["snippet"] = _snippet(parsed)
        res["sizeEstimate"] = len(msg.raw)
        res["historyId"] = str(self._history)
        res["internalDate"] = str(msg.internal_date)
        if fmt == "raw":
            res["raw"] = _b64url(msg.raw)
        elif fmt == "metadata":
            wanted = {h.lower() for h in query.get("metadataHeaders", [])}
            headers = [
                {"name": k, "value": _header_str(v)}
                for k, v in parsed.items()
                if not wanted or k.lower() in wanted
            ]
            res["payload"] = {
                "partId": "",
                "mimeType": parsed.get_content_type(),
                "filename": "",
                "headers": headers,
                "body": {"size": 0},
            }
        elif fmt == "full":
            res["payload"] = _part_json(parsed, "")
        return res


# --------------------------------------------------------------------------- module helpers


def _upload_type(query: dict[str, list[str]], kind: str) -> str:
    if kind == "resumable":
        return "resumable"
    return (_q1(query, "uploadType") or "media").lower()


def _check_media_type(ctype: str) -> None:
    if not ctype.startswith("message/"):
        raise ApiError(
            400,
            f"Media type '{ctype}' is not supported. Valid media types: [message/*]",
            "badContent",
        )


def _phrase(status: int) -> str:
    if status == 308:
        return "Resume Incomplete"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _fault_error(fault: _Fault) -> ApiError:
    status = fault.status
    reason = fault.reason
    if reason is None:
        reason = {403: "userRateLimitExceeded", 429: "rateLimitExceeded"}.get(
            status, _STATUS_DEFAULTS.get(status, ("backendError", ""))[0]
        )
    messages = {
        "backendError": (
            "The service is currently unavailable." if status == 503 else "Backend Error"
        ),
        "rateLimitExceeded": MSG_QUOTA if status == 429 else "Rate Limit Exceeded",
        "userRateLimitExceeded": "User-rate limit exceeded.",
        "dailyLimitExceeded": "Daily Limit Exceeded",
        "quotaExceeded": "Quota exceeded.",
    }
    message = messages.get(reason, _phrase(status))
    headers: list[tuple[str, str]] = []
    if fault.retry_after is not None:
        if fault.retry_after_in_message:
            when = datetime.fromtimestamp(time.time() + fault.retry_after, UTC)
            stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
            message = f"{message.rstrip('.')}.  Retry after {stamp}"
        else:
            headers.append(("Retry-After", str(max(0, math.ceil(fault.retry_after)))))
    return ApiError(status, message, reason, headers=headers)


def _q_terms(q: str) -> list[str]:
    return [a or b for a, b in re.findall(r'(\S+:"[^"]*")|(\S+)', q)]


def _q_date(value: str) -> int | None:
    value = value.strip('"')
    if value.isdigit():
        return int(value) * 1000
    m = re.fullmatch(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})", value)
    if m is None:
        return None
    day = datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), tzinfo=UTC)
    return int(day.timestamp() * 1000)


def _header_str(value: Any) -> str:
    try:
        return " ".join(str(value).split())
    except Exception:  # malformed header: keep the raw text
        return str(getattr(value, "_parse_tree", value))


def _snippet(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            try:
                data = part.get_payload(decode=True)
            except Exception:
                return ""
            if isinstance(data, bytes):
                charset = part.get_content_charset() or "utf-8"
                text = data.decode(charset, "replace")
                return " ".join(text.split())[:200]
    return ""


def _part_json(msg: Message, part_id: str) -> JSON:
    res: JSON = {
        "partId": part_id,
        "mimeType": msg.get_content_type(),
        "filename": msg.get_filename() or "",
        "headers": [{"name": k, "value": _header_str(v)} for k, v in msg.items()],
    }
    if msg.is_multipart():
        res["body"] = {"size": 0}
        payload = msg.get_payload()
        subparts = payload if isinstance(payload, list) else []
        res["parts"] = [
            _part_json(sub, f"{part_id}.{i}" if part_id else str(i))
            for i, sub in enumerate(subparts)
        ]
    else:
        data = msg.get_payload(decode=True)
        content = data if isinstance(data, bytes) else b""
        body: JSON = {"size": len(content)}
        if content:
            body["data"] = _b64url(content)
        res["body"] = body
    return res


# --------------------------------------------------------------------------- standalone

DEFAULT_GRANT_SCOPES = [SCOPE_INSERT, SCOPE_LABELS, SCOPE_READONLY, "openid", "email"]


def _write_json_atomic(path: str, doc: Any) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local Gmail REST API emulator")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--part-latency", type=float, default=0.0)
    parser.add_argument("--quota-per-minute", type=int, default=15000)
    parser.add_argument("--burst", type=int, default=None)
    parser.add_argument("--account", default="user@example.com")
    parser.add_argument("--access-token-lifetime", type=int, default=3600)
    parser.add_argument("--scopes", default=None, help="space-separated scopes for the grant")
    parser.add_argument("--grant-file", default=None)
    args = parser.parse_args(argv)

    emu = GmailEmulator(
        account=args.account,
        quota_units_per_minute=args.quota_per_minute,
        burst_units=args.burst,
        latency=args.latency,
        access_token_lifetime=args.access_token_lifetime,
    )
    emu.part_latency = args.part_latency
    emu._bind_port = args.port
    emu.start()
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scopes = args.scopes.split() if args.scopes else DEFAULT_GRANT_SCOPES
    info = {
        "url": emu.url,
        "token_uri": emu.token_uri,
        "auth_uri": emu.auth_uri,
        "refresh_token": emu.grant(scopes),
        "scopes": scopes,
        "client_secrets": emu.client_secrets(),
        "pid": os.getpid(),
    }
    if args.grant_file:
        _write_json_atomic(args.grant_file, info)
    else:
        print(json.dumps(info), flush=True)
    while not done.wait(0.2):
        pass
    if args.grant_file:
        _write_json_atomic(args.grant_file + ".stats", emu.stats())
    emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
