"""The Gmail client against the emulator, through the real googleapiclient."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from smsbak.errors import AuthError, DailyLimitExceeded
from smsbak.gmail.auth import load_token
from smsbak.gmail.client import GmailMailbox, backoff_delay
from smsbak.gmail.pacing import TokenBucket
from smsbak.gmail.transport import connect
from smsbak.ports import Confirmed, Outgoing, Rejected
from tests.conftest import write_token
from tests.fakes.gmail_emulator import GmailEmulator


def raw(n: int) -> bytes:
    return (
        f"Message-ID: <m{n}@test>\r\nDate: Mon, 2 Mar 2026 10:00:{n % 60:02d} +0000\r\n"
        f"Subject: t{n}\r\n\r\nbody {n}\r\n"
    ).encode()


class Recorder:
    def __init__(self) -> None:
        self.confirmed: list[str] = []
        self.batches: list[int] = []
        self.rejected: list[Rejected] = []
        self.slept: list[float] = []

    def on_confirmed(self, parts: Sequence[Confirmed]) -> None:
        self.batches.append(len(parts))
        self.confirmed.extend(p.key for p in parts)

    def on_rejected(self, part: Rejected) -> None:
        self.rejected.append(part)


@pytest.fixture
def mailbox(tmp_path: Path, emulator: GmailEmulator) -> tuple[GmailMailbox, Recorder]:
    write_token(tmp_path, emulator)
    token = load_token(tmp_path / "token.json")
    connection = connect(token.credentials, emulator.url)
    recorder = Recorder()
    box = GmailMailbox(
        connection.service,
        connection.batch_uri,
        TokenBucket(15_000_000, capacity=1_250_000),
        sleep=recorder.slept.append,
        rng=random.Random(1),
    )
    return box, recorder


def upload(box: GmailMailbox, recorder: Recorder, count: int, label_id: str) -> None:
    box.upload(
        (Outgoing(key=str(n), raw=raw(n)) for n in range(count)),
        label_id,
        on_confirmed=recorder.on_confirmed,
        on_rejected=recorder.on_rejected,
    )


def test_label_lookup_is_case_insensitive_and_creates_once(
    mailbox: tuple[GmailMailbox, Recorder], emulator: GmailEmulator
) -> None:
    box, _ = mailbox
    first = box.ensure_folder("SMS")
    assert box.ensure_folder("sms") == first
    assert [label["name"] for label in emulator.labels()].count("SMS") == 1


def test_batches_of_fifty_and_only_failed_parts_are_retried(
    mailbox: tuple[GmailMailbox, Recorder], emulator: GmailEmulator
) -> None:
    box, recorder = mailbox
    label = box.ensure_folder("SMS")
    emulator.fail_next(4, status=500)
    upload(box, recorder, 120, label)
    assert sorted(recorder.confirmed, key=int) == [str(n) for n in range(120)]
    assert max(recorder.batches) <= 50
    assert emulator.insert_calls == 124  # 120 + exactly the 4 failed parts again
    assert box.stats.retried_parts == 4
    assert len(recorder.slept) == 1
    assert emulator.resent_after_confirmed() == []


@pytest.mark.parametrize("in_message", [False, True], ids=["Retry-After header", "in the text"])
def test_the_servers_retry_time_is_honoured(
    mailbox: tuple[GmailMailbox, Recorder], emulator: GmailEmulator, in_message: bool
) -> None:
    """Gmail gives the time either as a header or as "Retry after <RFC 3339>" in the text."""
    box, recorder = mailbox
    label = box.ensure_folder("SMS")
    emulator.fail_next(1, status=429, retry_after=7, retry_after_in_message=in_message)
    upload(box, recorder, 3, label)
    assert len(recorder.confirmed) == 3
    # The text form is an instant, so the time spent since it was written is gone.
    assert recorder.slept and recorder.slept[0] >= 6.5


def test_a_permanent_part_error_is_reported_not_retried(
    mailbox: tuple[GmailMailbox, Recorder], emulator: GmailEmulator
) -> None:
    box, recorder = mailbox
    label = box.ensure_folder("SMS")
    emulator.fail_next(1, status=400, reason="invalidArgument")
    upload(box, recorder, 5, label)
    assert len(recorder.rejected) == 1 and "400" in recorder.rejected[0].reason
    assert len(recorder.confirmed) == 4
    assert emulator.insert_calls == 5


def test_daily_limit_ends_the_run(
    mailbox: tuple[GmailMailbox, Recorder], emulator: GmailEmulator
) -> None:
    box, recorder = mailbox
    label = box.ensure_folder("SMS")
    emulator.daily_limit_exceeded = True
    with pytest.raises(DailyLimitExceeded):
        upload(box, recorder, 5, label)
    assert recorder.confirmed == []


def test_a_revoked_grant_is_an_auth_error(tmp_path: Path, emulator: GmailEmulator) -> None:
    refresh = write_token(tmp_path, emulator)
    emulator.revoke(refresh)
    token = load_token(tmp_path / "token.json")
    connection = connect(token.credentials, emulator.url)
    box = GmailMailbox(connection.service, connection.batch_uri, TokenBucket(15_000, 1250))
    with pytest.raises(AuthError, match="revoked or expired") as caught:
        box.ensure_folder("SMS")
    assert caught.value.hint and "smsbak auth" in caught.value.hint


def test_backoff_grows_with_jitter_and_respects_the_server() -> None:
    rng = random.Random(3)
    delays = [backoff_delay(n, None, rng) for n in range(1, 9)]
    assert all(0.5 * 2 ** (n - 1) <= d <= 2 ** (n - 1) for n, d in enumerate(delays[:6], 1))
    assert max(delays) <= 64
    assert backoff_delay(1, 30.0, rng) == 30.0


def test_media_uploads_also_reach_the_overridden_endpoint(
    tmp_path: Path, emulator: GmailEmulator
) -> None:
    """The client keeps https for uploads (a known trap); the transport must fix it."""
    import io

    from googleapiclient.http import MediaIoBaseUpload

    write_token(tmp_path, emulator)
    token = load_token(tmp_path / "token.json")
    service = connect(token.credentials, emulator.url).service
    message = raw(1) + b"x" * 3_000_000 + b"\r\n"
    for resumable in (False, True):
        media = MediaIoBaseUpload(
            io.BytesIO(message),
            mimetype="message/rfc822",
            resumable=resumable,
            chunksize=1024 * 1024,
        )
        answer = service.users().messages().insert(userId="me", media_body=media).execute()
        assert answer["id"]
    assert len(emulator.messages()) == 1  # the second upload merged by Message-ID
    assert emulator.messages()[0].raw == message


def test_no_network_is_a_gmail_error_after_retries_not_a_crash(
    tmp_path: Path, emulator: GmailEmulator
) -> None:
    import socket

    from smsbak.errors import GmailError

    write_token(tmp_path, emulator)
    token = load_token(tmp_path / "token.json")
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    connection = connect(token.credentials, closed)
    slept: list[float] = []
    box = GmailMailbox(
        connection.service, connection.batch_uri, TokenBucket(15_000, 1250), sleep=slept.append
    )
    with pytest.raises(GmailError):
        box.ensure_folder("SMS")
    assert len(slept) >= 3  # it retried with backoff before giving up


def test_a_message_too_large_for_a_json_body_goes_up_by_resumable_upload(
    mailbox: tuple[GmailMailbox, Recorder], emulator: GmailEmulator
) -> None:
    box, recorder = mailbox
    label = box.ensure_folder("SMS")
    big = raw(1) + bytes(range(256)) * (20 * 1024 * 1024 // 256) + b"\r\n"  # 20 MB, binary
    items = [Outgoing("0", raw(0)), Outgoing("1", big), Outgoing("2", raw(2))]
    box.upload(items, label, on_confirmed=recorder.on_confirmed, on_rejected=recorder.on_rejected)
    assert sorted(recorder.confirmed) == ["0", "1", "2"]
    stored = {m.message_id: m for m in emulator.messages("SMS")}
    assert stored["<m1@test>"].raw == big
    assert recorder.rejected == []
