"""Pipelined batch uploads against the emulator, through the real googleapiclient.

With a latency on every request the next batch must be on its way while the
last one is answered, never more than ``max_in_flight`` at once, callbacks only
in the calling thread, and no part sent again after Gmail confirmed it, whichever
of the batches in flight fails.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from smsbak.errors import AuthError, DailyLimitExceeded
from smsbak.gmail.auth import load_token
from smsbak.gmail.client import OVERLAP_AFTER, Confirmed, GmailMailbox, Outgoing, Rejected
from smsbak.gmail.pacing import JITTER_RESERVE, TokenBucket, quota_bucket
from smsbak.gmail.transport import connect
from tests.conftest import write_token
from tests.fakes.gmail_emulator import GmailEmulator

# The next batch goes once the last has waited OVERLAP_AFTER for its answer: a latency
# beyond that, with room for building the next batch on a loaded machine, makes them
# overlap. Batches of 10 rather than the default 50: the pipelining does not depend on
# the size, and each batch and its answer cost a fifth.
LATENCY = OVERLAP_AFTER + 0.15
BATCH = 10


def raw(n: int) -> bytes:
    return (
        f"Message-ID: <p{n}@test>\r\nDate: Mon, 2 Mar 2026 10:00:{n % 60:02d} +0000\r\n"
        f"Subject: t{n}\r\n\r\nbody {n}\r\n"
    ).encode()


class Recorder:
    """Answers as the caller sees them, and the threads they were reported in."""

    def __init__(self) -> None:
        self.confirmed: list[str] = []
        self.rejected: list[Rejected] = []
        self.threads: set[int] = set()
        self.slept: list[float] = []

    def on_confirmed(self, parts: Sequence[Confirmed]) -> None:
        self.threads.add(threading.get_ident())
        self.confirmed.extend(p.key for p in parts)

    def on_rejected(self, part: Rejected) -> None:
        self.threads.add(threading.get_ident())
        self.rejected.append(part)


@pytest.fixture
def slow_emulator(emulator: GmailEmulator) -> GmailEmulator:
    emulator.latency = LATENCY
    return emulator


def open_mailbox(
    tmp_path: Path, emulator: GmailEmulator, recorder: Recorder, batch_size: int = BATCH
) -> GmailMailbox:
    write_token(tmp_path, emulator)
    token = load_token(tmp_path / "token.json")
    connection = connect(token.credentials, emulator.url)
    return GmailMailbox(
        connection.service,
        connection.batch_uri,
        TokenBucket(15_000_000, capacity=1_250_000),
        batch_size=batch_size,
        sleep=recorder.slept.append,
        rng=random.Random(1),
    )


def upload(box: GmailMailbox, recorder: Recorder, count: int, label_id: str = "INBOX") -> None:
    box.upload(
        (Outgoing(key=f"<p{n}@test>", raw=raw(n)) for n in range(count)),
        label_id,
        on_confirmed=recorder.on_confirmed,
        on_rejected=recorder.on_rejected,
    )


def stored_ids(emulator: GmailEmulator) -> list[str]:
    return sorted(str(m.message_id) for m in emulator.messages())


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_batches_overlap_up_to_the_limit_and_callbacks_stay_in_the_calling_thread(
    tmp_path: Path, slow_emulator: GmailEmulator, limit: int
) -> None:
    recorder = Recorder()
    box = open_mailbox(tmp_path, slow_emulator, recorder)
    box.max_in_flight = limit
    upload(box, recorder, 4 * BATCH)
    assert slow_emulator.batch_requests == 4
    assert slow_emulator.most_batches_in_flight == limit
    assert sorted(recorder.confirmed) == sorted(f"<p{n}@test>" for n in range(4 * BATCH))
    assert len(set(recorder.confirmed)) == 4 * BATCH
    assert len(slow_emulator.insert_log) == 4 * BATCH  # nothing sent twice
    assert recorder.threads == {threading.get_ident()}


def test_the_default_keeps_two_batches_in_flight(
    tmp_path: Path, slow_emulator: GmailEmulator
) -> None:
    recorder = Recorder()
    box = open_mailbox(tmp_path, slow_emulator, recorder)
    upload(box, recorder, 4 * BATCH)
    assert slow_emulator.most_batches_in_flight == 2
    assert len(recorder.confirmed) == 4 * BATCH


def test_a_dropped_batch_goes_again_but_the_other_batch_in_flight_does_not(
    tmp_path: Path, slow_emulator: GmailEmulator
) -> None:
    recorder = Recorder()
    box = open_mailbox(tmp_path, slow_emulator, recorder)
    slow_emulator.drop_after_commit(1)  # stored, then the connection is reset
    upload(box, recorder, 4 * BATCH)
    assert slow_emulator.most_batches_in_flight == 2
    assert slow_emulator.dropped_responses == 1
    assert slow_emulator.resent_after_confirmed() == []
    # the dropped batch's parts went twice (Gmail merged them), every other part once
    assert len(slow_emulator.insert_log) == 5 * BATCH
    assert slow_emulator.merges == BATCH
    assert stored_ids(slow_emulator) == sorted(f"<p{n}@test>" for n in range(4 * BATCH))
    assert sorted(recorder.confirmed) == stored_ids(slow_emulator)
    assert recorder.threads == {threading.get_ident()}


def test_failed_parts_are_retried_alone_while_other_batches_are_in_flight(
    tmp_path: Path, slow_emulator: GmailEmulator
) -> None:
    recorder = Recorder()
    box = open_mailbox(tmp_path, slow_emulator, recorder)
    slow_emulator.fail_next(3, status=500)
    slow_emulator.fail_next(2, status=429, reason="rateLimitExceeded", retry_after=1)
    upload(box, recorder, 4 * BATCH)
    assert slow_emulator.resent_after_confirmed() == []
    assert len(slow_emulator.insert_log) == 4 * BATCH + 5  # only the 5 failed went again
    assert sorted(recorder.confirmed) == sorted(f"<p{n}@test>" for n in range(4 * BATCH))
    assert len(recorder.confirmed) == 4 * BATCH
    assert recorder.slept and max(recorder.slept) >= 1.0  # backoff honoured Retry-After


def test_a_run_ending_answer_records_what_the_other_batch_confirmed_before_raising(
    tmp_path: Path, slow_emulator: GmailEmulator
) -> None:
    recorder = Recorder()
    box = open_mailbox(tmp_path, slow_emulator, recorder)
    slow_emulator.fail_next(1, status=403, reason="dailyLimitExceeded")
    with pytest.raises(DailyLimitExceeded):
        upload(box, recorder, 8 * BATCH)
    assert slow_emulator.most_batches_in_flight == 2
    # The failing part is in the first or the second batch the emulator serves; if
    # the other was answered first a third batch went meanwhile. Either way every
    # batch in flight was answered and every stored message recorded, and nothing
    # was sent once the failure was known.
    sent = slow_emulator.batch_requests
    assert sent in (2, 3)
    assert len(slow_emulator.messages()) == BATCH * sent - 1
    assert sorted(recorder.confirmed) == stored_ids(slow_emulator)


def test_two_batches_finding_no_token_refresh_it_once(
    tmp_path: Path, slow_emulator: GmailEmulator
) -> None:
    recorder = Recorder()
    box = open_mailbox(tmp_path, slow_emulator, recorder)
    upload(box, recorder, 2 * BATCH)  # the first two requests are two batches at once
    assert slow_emulator.most_batches_in_flight == 2
    assert slow_emulator.token_refreshes == 1
    assert len(recorder.confirmed) == 2 * BATCH


def test_a_revoked_login_in_a_batch_in_flight_surfaces_as_before(
    tmp_path: Path, slow_emulator: GmailEmulator
) -> None:
    recorder = Recorder()
    box = open_mailbox(tmp_path, slow_emulator, recorder)
    token = load_token(tmp_path / "token.json")
    slow_emulator.revoke(str(token.credentials.refresh_token))
    with pytest.raises(AuthError) as raised:
        upload(box, recorder, 2 * BATCH)
    assert "smsbak auth" in (raised.value.hint or "")
    assert recorder.confirmed == []
    assert slow_emulator.messages() == []


def test_stopping_waits_for_the_batches_in_flight_and_records_them(
    tmp_path: Path, slow_emulator: GmailEmulator
) -> None:
    recorder = Recorder()
    box = open_mailbox(tmp_path, slow_emulator, recorder)
    box.upload(
        (Outgoing(key=f"<p{n}@test>", raw=raw(n)) for n in range(10 * BATCH)),
        "INBOX",
        on_confirmed=recorder.on_confirmed,
        on_rejected=recorder.on_rejected,
        # Asked once the second batch is on its way (the client's own count: the
        # emulator's counts a request only when it arrives, which under load can be
        # after the first answer is back).
        should_stop=lambda: box.stats.batches >= 2,
    )
    assert slow_emulator.batch_requests == 2
    assert len(recorder.confirmed) == 2 * BATCH
    assert sorted(recorder.confirmed) == stored_ids(slow_emulator)


def test_on_a_fast_link_batches_still_go_one_after_another_oldest_first(
    tmp_path: Path, emulator: GmailEmulator
) -> None:
    recorder = Recorder()
    box = open_mailbox(tmp_path, emulator, recorder, batch_size=50)  # no latency
    upload(box, recorder, 300)
    assert emulator.batch_requests == 6
    assert emulator.most_batches_in_flight == 1
    assert emulator.insert_log == [f"<p{n}@test>" for n in range(300)]


def test_big_batches_answered_slowly_overlap_too(tmp_path: Path, emulator: GmailEmulator) -> None:
    """Gmail works through a batch's calls before answering: 50 parts make a slow answer."""
    recorder = Recorder()
    box = open_mailbox(tmp_path, emulator, recorder, batch_size=50)
    emulator.part_latency = LATENCY / 50  # per batch of 50 as long as LATENCY per request
    started = time.monotonic()
    upload(box, recorder, 200)
    elapsed = time.monotonic() - started
    assert emulator.most_batches_in_flight == 2
    assert elapsed >= 2 * LATENCY  # four answers held back, two at a time
    assert sorted(recorder.confirmed) == stored_ids(emulator)
    assert len(emulator.insert_log) == 200


def test_a_failing_callback_still_hands_over_the_other_batch_in_flight(
    tmp_path: Path, slow_emulator: GmailEmulator
) -> None:
    recorder = Recorder()
    box = open_mailbox(tmp_path, slow_emulator, recorder)
    calls: list[int] = []

    def on_confirmed(parts: Sequence[Confirmed]) -> None:
        calls.append(len(parts))
        if len(calls) == 1:
            raise RuntimeError("the state database is gone")
        recorder.on_confirmed(parts)

    with pytest.raises(RuntimeError, match="state database"):
        box.upload(
            (Outgoing(key=f"<p{n}@test>", raw=raw(n)) for n in range(10 * BATCH)),
            "INBOX",
            on_confirmed=on_confirmed,
            on_rejected=recorder.on_rejected,
        )
    assert slow_emulator.batch_requests == 2  # nothing sent after the failure
    assert calls == [BATCH, BATCH]  # the second batch's answer was still handed over
    assert len(recorder.confirmed) == BATCH
    assert len(slow_emulator.messages()) == 2 * BATCH


def test_batches_hold_what_the_bucket_can_pay_so_gmails_reserve_is_never_spent(
    tmp_path: Path, emulator: GmailEmulator
) -> None:
    bucket = quota_bucket(15_000, 1250)
    assert bucket.rate == 250.0  # the full quota, no margin
    assert bucket.capacity == 1250 - JITTER_RESERVE == 1200
    recorder = Recorder()
    box = open_mailbox(tmp_path, emulator, recorder, batch_size=50)
    box.bucket = quota_bucket(15_000_000, 1250)  # the test quota, the real burst
    upload(box, recorder, 100)
    assert emulator.batch_requests == 3  # 48 + 48 + 4: no batch costs more than 1,200
    assert len(recorder.confirmed) == 100


def test_a_smaller_batch_waits_rather_than_overtake_a_bigger_one_in_flight(
    tmp_path: Path, slow_emulator: GmailEmulator
) -> None:
    """Gmail meters a batch when it works through it: a small one sent second could be
    metered first and spend the quota the big one was paced against (429s)."""
    recorder = Recorder()
    box = open_mailbox(tmp_path, slow_emulator, recorder)
    slow_emulator.part_latency = 0.02  # 10 parts: 0.2 s, 4 parts: 0.08 s (and LATENCY)
    upload(box, recorder, BATCH + 4)
    assert slow_emulator.batch_requests == 2
    assert slow_emulator.most_batches_in_flight == 1
    assert slow_emulator.insert_log == [f"<p{n}@test>" for n in range(BATCH + 4)]
    assert len(recorder.confirmed) == BATCH + 4
