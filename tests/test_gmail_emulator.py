"""The Gmail API emulator, exercised through the real google-api-python-client."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import google_auth_httplib2
import httplib2
import pytest
from google.auth import jwt
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest, MediaIoBaseUpload

from tests.fakes.gmail_emulator import (
    SCOPE_INSERT,
    SCOPE_LABELS,
    SCOPE_METADATA,
    SCOPE_READONLY,
    GmailEmulator,
)

REPO = Path(__file__).resolve().parent.parent
ALL_SCOPES = [SCOPE_INSERT, SCOPE_LABELS, SCOPE_READONLY]
BIG = 10**9  # quota that never runs out


class PlainHttp(httplib2.Http):  # type: ignore[misc]
    """Media uploads go to https://HOST:PORT/upload/... (the client keeps the scheme of
    the discovery document); the emulator speaks plain http, so rewrite the scheme.
    Like googleapiclient.http.build_http(), do not follow 308 (resumable progress)."""

    def __init__(self) -> None:
        super().__init__()
        self.redirect_codes: frozenset[int] = frozenset(httplib2.REDIRECT_CODES - {308})

    def request(self, uri: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
        if uri.startswith("https://127.0.0.1:"):
            uri = "http://" + uri[len("https://") :]
        return super().request(uri, method, *args, **kwargs)


def make_raw(
    n: int, *, date: datetime | None = None, body: str | None = None, msgid: str | None = None
) -> bytes:
    date = date or datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    headers = [
        "From: +15551234567 <sms@unknown.email>",
        "To: user@example.com",
        f"Subject: SMS with +15551234567 #{n}",
        f"Date: {format_datetime(date)}",
        f"Message-ID: {msgid or f'<sms-{n}@smsbak.local>'}",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: 7bit",
    ]
    text = body if body is not None else f"hello number {n}\r\n"
    return ("\r\n".join(headers) + "\r\n\r\n" + text).encode("ascii")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def credentials(emu: GmailEmulator, refresh_token: str) -> Credentials:
    secrets = emu.client_secrets()["installed"]
    return Credentials(
        token=None,
        refresh_token=refresh_token,
        token_uri=emu.token_uri,
        client_id=secrets["client_id"],
        client_secret=secrets["client_secret"],
    )


def service(emu: GmailEmulator, scopes: list[str] | None = None) -> Any:
    creds = credentials(emu, emu.grant(scopes or ALL_SCOPES))
    http = google_auth_httplib2.AuthorizedHttp(creds, http=PlainHttp())
    return build(
        "gmail",
        "v1",
        static_discovery=True,
        http=http,
        client_options={"api_endpoint": emu.url},
    )


class Batch:
    def __init__(self, emu: GmailEmulator) -> None:
        self.results: dict[str, tuple[Any, HttpError | None]] = {}
        self.batch = BatchHttpRequest(callback=self._cb, batch_uri=emu.url + "/batch/gmail/v1")

    def _cb(self, request_id: str, response: Any, exception: HttpError | None) -> None:
        self.results[request_id] = (response, exception)

    def add(self, request: Any, request_id: str | None = None) -> None:
        self.batch.add(request, request_id=request_id)

    def execute(self) -> None:
        self.batch.execute()

    def errors(self) -> dict[str, HttpError]:
        return {k: e for k, (_, e) in self.results.items() if e is not None}


def insert(svc: Any, raw: bytes, labels: list[str] | None = None, **kw: Any) -> Any:
    body: dict[str, Any] = {"raw": b64(raw)}
    if labels is not None:
        body["labelIds"] = labels
    return svc.users().messages().insert(userId="me", body=body, **kw)


def error_reason(exc: HttpError) -> str:
    return str(json.loads(exc.content)["error"]["errors"][0]["reason"])


@pytest.fixture
def emu() -> Iterator[GmailEmulator]:
    with GmailEmulator(quota_units_per_minute=BIG, burst_units=BIG) as e:
        yield e


@pytest.fixture
def svc(emu: GmailEmulator) -> Any:
    return service(emu)


# --------------------------------------------------------------------------- labels


def test_labels_list_create_and_conflict(emu: GmailEmulator, svc: Any) -> None:
    names = {lb["name"] for lb in svc.users().labels().list(userId="me").execute()["labels"]}
    assert {"INBOX", "SENT", "TRASH", "SPAM", "UNREAD"} <= names
    created = svc.users().labels().create(userId="me", body={"name": "SMS"}).execute()
    assert created["name"] == "SMS" and created["type"] == "user"
    with pytest.raises(HttpError) as info:
        svc.users().labels().create(userId="me", body={"name": "sms"}).execute()
    assert info.value.status_code == 409
    assert error_reason(info.value) == "aborted"
    assert "Label name exists or conflicts" in str(info.value)
    assert {"id": created["id"], "name": "SMS", "type": "user"} in emu.labels()


# --------------------------------------------------------------------------- insert


def test_insert_date_header_and_received_time(emu: GmailEmulator, svc: Any) -> None:
    date = datetime(2021, 5, 6, 7, 8, 9, tzinfo=UTC)
    res = insert(svc, make_raw(1, date=date), ["INBOX"], internalDateSource="dateHeader").execute()
    assert set(res) == {"id", "threadId", "labelIds"} and res["labelIds"] == ["INBOX"]
    before = time.time() * 1000
    insert(svc, make_raw(2, date=date)).execute()  # default receivedTime
    stored = {m.message_id: m for m in emu.messages()}
    assert stored["<sms-1@smsbak.local>"].internal_date == int(date.timestamp() * 1000)
    assert stored["<sms-2@smsbak.local>"].internal_date >= before - 1000
    got = svc.users().messages().get(userId="me", id=res["id"], format="minimal").execute()
    assert got["internalDate"] == str(int(date.timestamp() * 1000))
    with pytest.raises(HttpError) as info:
        insert(svc, make_raw(3), ["Label_404"]).execute()
    assert info.value.status_code == 400


def test_message_id_merge_keeps_one_copy(emu: GmailEmulator, svc: Any) -> None:
    label = svc.users().labels().create(userId="me", body={"name": "SMS"}).execute()["id"]
    first = insert(svc, make_raw(1), [label]).execute()
    second = insert(svc, make_raw(1, body="different body\r\n"), ["UNREAD"]).execute()
    assert second["id"] == first["id"]
    assert len(emu.messages()) == 1
    assert set(emu.messages()[0].label_ids) == {label, "UNREAD"}
    assert emu.merges == 1 and emu.insert_calls == 2


def test_import_and_json_body_limit(emu: GmailEmulator, svc: Any) -> None:
    date = datetime(2020, 2, 3, tzinfo=UTC)
    res = (
        svc.users()
        .messages()
        .import_(userId="me", body={"raw": b64(make_raw(1, date=date)), "labelIds": ["INBOX"]})
        .execute()
    )
    assert emu.messages()[0].internal_date == int(date.timestamp() * 1000)  # dateHeader default
    assert res["labelIds"] == ["INBOX"]
    big = make_raw(2, body=("A" * 74 + "\r\n") * 11_000)  # 836 KB -> 1.1 MB as base64 JSON
    with pytest.raises(HttpError) as info:
        insert(svc, big).execute()
    assert info.value.status_code == 400
    assert "payload size exceeds the limit" in str(info.value)
    assert len(emu.messages()) == 1


# --------------------------------------------------------------------------- batch


def test_batch_of_50_ok_and_51_rejected(emu: GmailEmulator, svc: Any) -> None:
    batch = Batch(emu)
    for i in range(50):
        batch.add(insert(svc, make_raw(i), ["INBOX"]), request_id=f"sms-{i}")
    batch.execute()
    assert len(batch.results) == 50 and not batch.errors()
    assert batch.results["sms-7"][0]["labelIds"] == ["INBOX"]
    assert len(emu.messages()) == 50

    batch = Batch(emu)
    for i in range(51):
        batch.add(insert(svc, make_raw(100 + i)))
    with pytest.raises(HttpError) as info:
        batch.execute()
    assert info.value.status_code == 400
    assert "Inner request count exceeds the limit. Received: 51, Limit: 50" in str(info.value)
    assert len(emu.messages()) == 50


def test_batch_per_part_failures(emu: GmailEmulator, svc: Any) -> None:
    emu.fail_next(1, 500)
    emu.fail_next(1, 403, reason="userRateLimitExceeded")
    emu.fail_next(1, 503)
    batch = Batch(emu)
    for i in range(5):
        batch.add(insert(svc, make_raw(i)), request_id=str(i))
    batch.add(svc.users().labels().list(userId="me"), request_id="labels")
    batch.execute()  # the outer call is fine
    errors = batch.errors()
    assert sorted(errors) == ["0", "1", "2"]
    assert (errors["0"].status_code, error_reason(errors["0"])) == (500, "backendError")
    assert (errors["1"].status_code, error_reason(errors["1"])) == (403, "userRateLimitExceeded")
    assert json.loads(errors["1"].content)["error"]["errors"][0]["domain"] == "usageLimits"
    assert errors["2"].status_code == 503
    assert "labels" in batch.results["labels"][0]
    assert sorted(m.message_id or "" for m in emu.messages()) == [
        "<sms-3@smsbak.local>",
        "<sms-4@smsbak.local>",
    ]
    assert emu.insert_calls == 5


def test_daily_limit(emu: GmailEmulator, svc: Any) -> None:
    emu.daily_limit_exceeded = True
    with pytest.raises(HttpError) as info:
        insert(svc, make_raw(1)).execute()
    assert info.value.status_code == 403 and error_reason(info.value) == "dailyLimitExceeded"
    assert not emu.messages()


# --------------------------------------------------------------------------- quota


def test_quota_429_with_retry_after() -> None:
    # 60 units of burst = two inserts (+10); refill 1 unit per second
    with GmailEmulator(quota_units_per_minute=60, burst_units=60) as emu:
        svc = service(emu)
        insert(svc, make_raw(1)).execute()
        insert(svc, make_raw(2)).execute()
        with pytest.raises(HttpError) as info:
            insert(svc, make_raw(3)).execute()
        assert info.value.status_code == 429
        assert error_reason(info.value) == "rateLimitExceeded"
        assert int(info.value.resp["retry-after"]) >= 1
        assert len(emu.messages()) == 2
        for _ in range(10):  # the rejected insert consumed nothing: 10 units are left
            svc.users().labels().list(userId="me").execute()

        # inside a batch the Retry-After header is on the part; the outer call is fine
        emu.refill_quota()
        batch = Batch(emu)
        for i in range(3):
            batch.add(insert(svc, make_raw(10 + i)), request_id=str(i))
        batch.execute()
        errors = batch.errors()
        assert list(errors) == ["2"]
        assert errors["2"].status_code == 429
        assert int(errors["2"].resp["retry-after"]) >= 1
        assert len(emu.messages()) == 4


# --------------------------------------------------------------------------- lost responses


def test_drop_after_commit_and_resent_detection(emu: GmailEmulator, svc: Any) -> None:
    insert(svc, make_raw(1)).execute()  # confirmed
    insert(svc, make_raw(1)).execute()  # re-sent after confirmation: flagged
    assert emu.resent_after_confirmed() == ["<sms-1@smsbak.local>"]

    emu.drop_after_commit(1)
    with pytest.raises((OSError, httplib2.HttpLib2Error)):
        insert(svc, make_raw(2)).execute()
    assert "<sms-2@smsbak.local>" in {m.message_id for m in emu.messages()}
    insert(svc, make_raw(2)).execute()  # response was lost: a legitimate re-send
    assert emu.resent_after_confirmed() == ["<sms-1@smsbak.local>"]

    emu.drop_after_commit(1)
    batch = Batch(emu)
    for i in (3, 4):
        batch.add(insert(svc, make_raw(i)))
    with pytest.raises((OSError, httplib2.HttpLib2Error)):
        batch.execute()
    assert len(emu.messages()) == 4
    batch = Batch(emu)
    for i in (3, 4):
        batch.add(insert(svc, make_raw(i)))
    batch.execute()
    assert not batch.errors()
    assert emu.resent_after_confirmed() == ["<sms-1@smsbak.local>"]
    insert(svc, make_raw(4)).execute()  # now it was confirmed by the second batch
    assert emu.resent_after_confirmed() == ["<sms-1@smsbak.local>", "<sms-4@smsbak.local>"]
    assert len(emu.messages()) == 4


# --------------------------------------------------------------------------- reads


def test_list_paging_and_rfc822msgid(emu: GmailEmulator, svc: Any) -> None:
    label = svc.users().labels().create(userId="me", body={"name": "SMS"}).execute()["id"]
    base = datetime(2024, 3, 1, tzinfo=UTC).timestamp()
    batch = Batch(emu)
    for i in range(7):
        date = datetime.fromtimestamp(base + i * 60, UTC)
        batch.add(insert(svc, make_raw(i, date=date), [label], internalDateSource="dateHeader"))
    batch.execute()
    insert(svc, make_raw(99)).execute()  # not labelled

    messages = svc.users().messages()
    ids: list[str] = []
    request = messages.list(userId="me", labelIds=[label], maxResults=3)
    pages = 0
    while request is not None:
        page = request.execute()
        pages += 1
        assert page["resultSizeEstimate"] == 7
        ids += [m["id"] for m in page.get("messages", [])]
        request = messages.list_next(request, page)
    assert pages == 3 and len(ids) == len(set(ids)) == 7
    dates = [m.internal_date for m in sorted(emu.messages("SMS"), key=lambda m: ids.index(m.id))]
    assert dates == sorted(dates, reverse=True)  # newest first

    found = messages.list(userId="me", q="rfc822msgid:sms-4@smsbak.local").execute()
    assert len(found["messages"]) == 1
    with_brackets = messages.list(userId="me", q="rfc822msgid:<sms-4@smsbak.local>").execute()
    assert with_brackets["messages"] == found["messages"]
    assert messages.list(userId="me", q="label:sms").execute()["resultSizeEstimate"] == 7
    partial = messages.list(
        userId="me", labelIds=[label], maxResults=2, fields="messages/id"
    ).execute()
    assert partial == {"messages": [{"id": ids[0]}, {"id": ids[1]}]}
    assert messages.list(userId="me", q="rfc822msgid:nope@x").execute() == {"resultSizeEstimate": 0}


def test_get_raw_round_trip_and_metadata(emu: GmailEmulator, svc: Any) -> None:
    raw = make_raw(1, body="=E2=82=AC 5 for lunch?\r\n")
    mid = insert(svc, raw, ["INBOX"]).execute()["id"]
    got = svc.users().messages().get(userId="me", id=mid, format="raw").execute()
    assert base64.urlsafe_b64decode(got["raw"]) == raw
    meta = (
        svc.users()
        .messages()
        .get(userId="me", id=mid, format="metadata", metadataHeaders=["Message-ID", "Date"])
        .execute()
    )
    assert {h["name"].lower() for h in meta["payload"]["headers"]} == {"message-id", "date"}
    # a URI over 2000 characters becomes POST + X-HTTP-Method-Override in the client
    many = ["Message-ID"] + [f"X-Unused-Header-{i:04d}" for i in range(150)]
    meta = (
        svc.users()
        .messages()
        .get(userId="me", id=mid, format="metadata", metadataHeaders=many)
        .execute()
    )
    assert [h["name"] for h in meta["payload"]["headers"]] == ["Message-ID"]
    with pytest.raises(HttpError) as info:
        svc.users().messages().get(userId="me", id="ffff000000000000").execute()
    assert info.value.status_code == 404
    seeded = emu.add_message(make_raw(2), ["SMS", "INBOX"])
    assert [m.id for m in emu.messages("SMS")] == [seeded]


# --------------------------------------------------------------------------- media uploads


def test_media_and_resumable_upload_of_3mb(emu: GmailEmulator, svc: Any) -> None:
    body = ("0123456789" * 7 + "\r\n") * 42_000  # ~3 MB, 7-bit
    messages = svc.users().messages()

    raw1 = make_raw(1, body=body)
    media = MediaIoBaseUpload(io.BytesIO(raw1), mimetype="message/rfc822", resumable=False)
    res1 = messages.insert(userId="me", media_body=media).execute()

    raw2 = make_raw(2, body=body)
    media = MediaIoBaseUpload(
        io.BytesIO(raw2), mimetype="message/rfc822", resumable=True, chunksize=1024 * 1024
    )
    request = messages.insert(
        userId="me",
        body={"labelIds": ["INBOX"]},
        media_body=media,
        internalDateSource="dateHeader",
    )
    res2 = None
    progress = []
    while res2 is None:
        status, res2 = request.next_chunk()
        if status is not None:
            progress.append(status.resumable_progress)
    assert progress == [1024 * 1024, 2 * 1024 * 1024]
    assert res2["labelIds"] == ["INBOX"]

    raw3 = make_raw(3)  # multipart/related: metadata + message
    media = MediaIoBaseUpload(io.BytesIO(raw3), mimetype="message/rfc822", resumable=False)
    res3 = messages.insert(userId="me", body={"labelIds": ["SENT"]}, media_body=media).execute()
    assert res3["labelIds"] == ["SENT"]

    stored = {m.id: m for m in emu.messages()}
    assert stored[res1["id"]].raw == raw1 and len(raw1) > 3_000_000
    assert stored[res2["id"]].raw == raw2
    assert stored[res3["id"]].raw == raw3
    assert emu.insert_calls == 3


# --------------------------------------------------------------------------- auth


def test_401_without_token(emu: GmailEmulator) -> None:
    svc = build(
        "gmail",
        "v1",
        static_discovery=True,
        http=httplib2.Http(),
        client_options={"api_endpoint": emu.url},
    )
    with pytest.raises(HttpError) as info:
        svc.users().labels().list(userId="me").execute()
    assert info.value.status_code == 401 and error_reason(info.value) == "authError"


def test_insufficient_scope(emu: GmailEmulator) -> None:
    svc = service(emu, [SCOPE_INSERT, SCOPE_LABELS])  # the backup token: cannot read
    insert(svc, make_raw(1)).execute()
    with pytest.raises(HttpError) as info:
        svc.users().messages().list(userId="me").execute()
    assert info.value.status_code == 403
    assert error_reason(info.value) == "insufficientPermissions"
    with pytest.raises(HttpError) as info:
        svc.users().getProfile(userId="me").execute()
    assert info.value.status_code == 403
    meta = service(emu, [SCOPE_METADATA])
    with pytest.raises(HttpError) as info:
        meta.users().messages().list(userId="me", q="label:SMS").execute()
    assert info.value.status_code == 403
    assert service(emu).users().getProfile(userId="me").execute()["emailAddress"] == emu.account


def test_refresh_then_revoke(emu: GmailEmulator) -> None:
    refresh_token = emu.grant(ALL_SCOPES)
    creds = credentials(emu, refresh_token)
    http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http())
    svc = build(
        "gmail", "v1", static_discovery=True, http=http, client_options={"api_endpoint": emu.url}
    )
    assert svc.users().labels().list(userId="me").execute()["labels"]
    assert creds.token and creds.valid
    emu.revoke(refresh_token)
    with pytest.raises(RefreshError) as info:  # 401 -> refresh -> invalid_grant
        svc.users().labels().list(userId="me").execute()
    assert "invalid_grant" in str(info.value)
    with pytest.raises(RefreshError):
        credentials(emu, "1//unknown").refresh(google_auth_httplib2.Request(httplib2.Http()))


def test_authorization_code_flow(emu: GmailEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    scopes = [SCOPE_INSERT, SCOPE_LABELS, "openid", "email"]
    flow = Flow.from_client_config(
        emu.client_secrets(), scopes=scopes, redirect_uri="http://localhost:8765/"
    )
    url, state = flow.authorization_url(prompt="consent")
    assert url.startswith(emu.auth_uri)
    http = httplib2.Http()
    http.follow_redirects = False
    resp, _ = http.request(url)
    assert resp.status == 302
    location = urllib.parse.urlsplit(resp["location"])
    params = urllib.parse.parse_qs(location.query)
    assert location.netloc == "localhost:8765" and params["state"] == [state]
    flow.fetch_token(code=params["code"][0])
    creds = flow.credentials
    assert creds.token and creds.refresh_token
    claims = jwt.decode(creds.id_token, verify=False)
    assert claims["email"] == emu.account and claims["email_verified"] is True
    assert claims["aud"] == emu.client_id
    svc = build(
        "gmail",
        "v1",
        static_discovery=True,
        http=google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http()),
        client_options={"api_endpoint": emu.url},
    )
    assert svc.users().labels().list(userId="me").execute()["labels"]


# --------------------------------------------------------------------------- standalone


def test_standalone_process(tmp_path: Path) -> None:
    grant_file = tmp_path / "grant.json"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.gmail_emulator",
            "--port",
            "0",
            "--latency",
            "0.01",
            "--quota-per-minute",
            "15000",
            "--grant-file",
            str(grant_file),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while not grant_file.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "grant file never appeared"
            time.sleep(0.05)
        info = json.loads(grant_file.read_text())
        secrets = info["client_secrets"]["installed"]
        assert secrets["token_uri"] == info["token_uri"]
        creds = Credentials(
            None,
            refresh_token=info["refresh_token"],
            token_uri=info["token_uri"],
            client_id=secrets["client_id"],
            client_secret=secrets["client_secret"],
        )
        svc = build(
            "gmail",
            "v1",
            static_discovery=True,
            http=google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http()),
            client_options={"api_endpoint": info["url"]},
        )
        insert(svc, make_raw(1), ["INBOX"]).execute()
        assert svc.users().getProfile(userId="me").execute()["messagesTotal"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    stats = json.loads(Path(str(grant_file) + ".stats").read_text())
    assert stats["insert_calls"] == 1 and stats["messages"] == 1
    assert stats["resent_after_confirmed"] == []
