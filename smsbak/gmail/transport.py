"""Building the Gmail client, optionally pointed at another base URL (a local emulator).

google-api-python-client has traps here (``shared/reference/gmail-api.md``):
``api_endpoint`` moves ordinary calls, but media uploads keep ``https`` and the
batch endpoint is hard-wired to Google. So every request goes through an
``httplib2.Http`` that rewrites Google's hosts and the wrong scheme to the
chosen base URL, and batches get an explicit batch URI.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httplib2

GOOGLE_BASE = "https://gmail.googleapis.com"
HTTP_TIMEOUT = 120


class RedirectingHttp(httplib2.Http):  # type: ignore[misc]
    """Sends every Gmail request to ``base``, whatever URL the client library built."""

    def __init__(self, base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = base.rstrip("/")
        netloc = urlsplit(self.base).netloc
        self._prefixes = (
            "https://gmail.googleapis.com",
            "https://www.googleapis.com",
            f"https://{netloc}",
            f"http://{netloc}",
        )

    def request(self, uri: str, *args: Any, **kwargs: Any) -> Any:
        for prefix in self._prefixes:
            if uri.startswith(prefix) and uri[len(prefix) : len(prefix) + 1] in ("/", ""):
                uri = self.base + uri[len(prefix) :]
                break
        return super().request(uri, *args, **kwargs)


@dataclass(frozen=True)
class GmailConnection:
    service: Any
    batch_uri: str


def connect(credentials: Any, api_base: str = "", timeout: float = HTTP_TIMEOUT) -> GmailConnection:
    """A Gmail service using the bundled discovery document: no network until a call."""
    import google_auth_httplib2
    from googleapiclient.discovery import build

    base = (api_base or GOOGLE_BASE).rstrip("/")
    http = RedirectingHttp(base, timeout=timeout) if api_base else httplib2.Http(timeout=timeout)
    # As googleapiclient's own build_http: to resumable uploads 308 means
    # "resume incomplete", not a redirect.
    http.redirect_codes = http.redirect_codes - {308}
    authorized = google_auth_httplib2.AuthorizedHttp(credentials, http=http)
    service = build(
        "gmail",
        "v1",
        http=authorized,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": base} if api_base else None,
    )
    return GmailConnection(service=service, batch_uri=f"{base}/batch/gmail/v1")


def serialise_refresh(authorized: Any) -> None:
    """Let threads that share ``authorized``'s login refresh it one at a time.

    Batches in flight at once each have their own Http but one login (one
    ``Credentials`` object). google-auth, httplib2 and googleapiclient all refresh
    through ``credentials.refresh``, with no lock: two threads finding the token
    expired would both refresh and race to write token and expiry. Wrapped here,
    the second waits, sees the first one's fresh token and does not refresh again.
    """
    credentials = authorized.credentials
    if getattr(credentials, "_smsbak_refresh_lock", None) is not None:
        return
    lock = threading.Lock()
    refresh = credentials.refresh

    def serial_refresh(request: Any) -> None:
        seen = credentials.token
        with lock:
            if credentials.token != seen and credentials.valid:
                return  # another thread refreshed while this one waited
            refresh(request)

    credentials._smsbak_refresh_lock = lock
    credentials.refresh = serial_refresh


def sibling_http(authorized: Any) -> Any:
    """A new AuthorizedHttp with ``authorized``'s login and settings, its own connections.

    httplib2's Http is not thread-safe (it keeps one connection per host), so each
    batch in flight needs one of these. A copy of an Http keeps its settings (the
    redirection to an emulator, timeout, TLS, redirect codes) and starts with no
    connections (httplib2's ``__setstate__``).
    """
    import google_auth_httplib2

    serialise_refresh(authorized)
    inner = copy.copy(authorized.http)
    inner.connections = {}
    inner.authorizations = []
    return google_auth_httplib2.AuthorizedHttp(authorized.credentials, http=inner)
