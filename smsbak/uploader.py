"""The one exactly-once upload path every engine shares (backup, import, adoption).

The promise: a message is recorded as backed up only after the destination confirmed
it, and only for that place; after a crash, a kill or a dropped connection the next
run completes without a second copy, also on servers that do not merge a second copy
of a Message-ID. How:

1. Before an item is handed to the destination it is recorded *in flight* (its
   fingerprint and Message-ID, one transaction per chunk).
2. An item an earlier run left in flight has an unknown outcome: on a destination
   that declares ``merges_message_ids=False`` it is first looked up by Message-ID
   (``find_message_ids``); found, it is recorded as uploaded and not sent again.
   A merging destination (Gmail) simply gets it again and keeps one copy.
   When nothing at all is recorded for the place (a first backup there, or a state
   database that was lost or moved aside) every item's outcome is unknown: each
   chunk is looked up before it is sent, one search per chunk, in that run only.
3. Confirmed items are recorded in the callback, before the destination sends more;
   refused ones are recorded as refused (incremental runs do not retry them).

Items are consumed lazily, a chunk at a time, so a first backup of years of MMS
never holds more than one chunk of encoded emails (a spool can feed it, too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from smsbak.ports import Confirmed, Destination, Outgoing, Rejected
from smsbak.store import InFlight, StateStore, Uploaded

log = logging.getLogger(__name__)

CHUNK_ITEMS = 50
"""Items recorded in flight per transaction: one Gmail batch."""
CHUNK_BYTES = 4 * 1024 * 1024
"""A chunk ends once its encoded emails reach this size (large MMS travel nearly alone)."""


@dataclass(frozen=True)
class Pending:
    """One record to upload: its identity in the store and its encoded email."""

    fingerprint: str
    kind: str
    date_ms: int
    outgoing: Outgoing


@dataclass(frozen=True)
class Refusal:
    fingerprint: str
    kind: str
    date_ms: int
    reason: str


@dataclass
class UploadOutcome:
    uploaded: int = 0
    """Confirmed by the destination in this run."""
    found: int = 0
    """Left in flight by an earlier run, found at the destination by Message-ID: recorded,
    not sent again."""
    refused: list[Refusal] = field(default_factory=list)
    stopped: bool = False
    """``should_stop`` said so before everything was sent."""

    @property
    def recorded(self) -> int:
        return self.uploaded + self.found


@dataclass(frozen=True)
class _Sent:
    kind: str
    date_ms: int
    message_id: str


def upload_exactly_once(
    destination: Destination,
    folder: str,
    store: StateStore,
    place: str,
    items: Iterable[Pending],
    *,
    progress: Callable[[int], None] = lambda _: None,
    should_stop: Callable[[], bool] = lambda: False,
    on_recorded: Callable[[Sequence[str]], None] = lambda _: None,
    on_refused: Callable[[Refusal], None] = lambda _: None,
) -> UploadOutcome:
    """Upload ``items`` into ``folder`` and record each outcome at ``place``.

    ``progress`` gets the number of items settled so far (recorded or refused);
    ``on_recorded`` the fingerprints recorded as backed up, batch by batch;
    ``on_refused`` each refusal. Errors of the destination propagate; everything
    recorded before them stays recorded.
    """
    outcome = UploadOutcome()
    sent: dict[str, _Sent] = {}
    look_up = not destination.capabilities.merges_message_ids
    look_up_all = look_up and not store.holds_records(place)

    def stop() -> bool:
        if should_stop():
            outcome.stopped = True
        return outcome.stopped

    def record(rows: list[Uploaded]) -> None:
        store.record_uploaded(rows, place)
        on_recorded([row.fingerprint for row in rows])

    def settled() -> None:
        progress(outcome.recorded + len(outcome.refused))

    def recovered(chunk: list[Pending]) -> set[str]:
        """Of ``chunk``, what an earlier run stored without learning it: recorded now."""
        if look_up_all:
            earlier = {p.fingerprint: p.outgoing.message_id for p in chunk}
        else:
            earlier = store.in_flight([p.fingerprint for p in chunk], place)
        asked = {fp: mid for fp, mid in earlier.items() if mid}
        if not asked:
            return set()
        there = destination.find_message_ids(folder, sorted(set(asked.values())))
        rows = [
            Uploaded(p.fingerprint, p.kind, p.date_ms, there[mid], mid)
            for p in chunk
            if (mid := asked.get(p.fingerprint)) is not None and mid in there
        ]
        if rows:
            record(rows)
            outcome.found += len(rows)
            settled()
        return {row.fingerprint for row in rows}

    def outgoing() -> Iterator[Outgoing]:
        source = iter(items)
        while not stop():
            chunk = _next_chunk(source)
            if not chunk:
                return
            if look_up:
                done = recovered(chunk)
                chunk = [p for p in chunk if p.fingerprint not in done]
            store.record_in_flight(
                [InFlight(p.fingerprint, p.kind, p.date_ms, p.outgoing.message_id) for p in chunk],
                place,
            )
            for pending in chunk:
                sent[pending.fingerprint] = _Sent(
                    pending.kind, pending.date_ms, pending.outgoing.message_id
                )
                yield pending.outgoing  # awaited from here on: an answer can only follow
            del chunk  # the encoded emails go as soon as the destination took them

    def confirmed(parts: Sequence[Confirmed]) -> None:
        rows = []
        for part in parts:
            what = sent.pop(part.key, None)
            if what is None:  # answered twice, or never sent: nothing more to record
                log.debug("an answer for %s that was not waited for", part.key[:12])
                continue
            rows.append(
                Uploaded(part.key, what.kind, what.date_ms, part.remote_id, what.message_id)
            )
        if rows:
            record(rows)
            outcome.uploaded += len(rows)
            settled()

    def rejected(part: Rejected) -> None:
        what = sent.pop(part.key, None)
        if what is None:
            log.debug("a refusal for %s that was not waited for", part.key[:12])
            return
        store.record_refused(part.key, what.kind, what.date_ms, part.reason, place)
        refusal = Refusal(part.key, what.kind, what.date_ms, part.reason)
        outcome.refused.append(refusal)
        on_refused(refusal)
        settled()

    destination.upload(
        outgoing(), folder, on_confirmed=confirmed, on_rejected=rejected, should_stop=stop
    )
    return outcome


def _next_chunk(source: Iterator[Pending]) -> list[Pending]:
    chunk: list[Pending] = []
    size = 0
    for pending in source:
        chunk.append(pending)
        size += len(pending.outgoing.raw)
        if len(chunk) >= CHUNK_ITEMS or size >= CHUNK_BYTES:
            break
    return chunk
