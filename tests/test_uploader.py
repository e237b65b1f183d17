"""The one exactly-once upload path, over the memory destination (milliseconds each)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smsbak.destinations.memory import MemoryDestination
from smsbak.errors import DestinationError
from smsbak.ports import Outgoing
from smsbak.store import StateStore, place_key
from smsbak.uploader import CHUNK_ITEMS, Pending, upload_exactly_once

PLACE = place_key("memory:default", "SMS")


def pending(n: int) -> Pending:
    mid = f"<m{n}@smsbak>"
    raw = f"Message-ID: {mid}\r\nSubject: {n}\r\n\r\nbody\r\n".encode()
    return Pending(f"fp{n}", "sms", 1000 * n, Outgoing(f"fp{n}", raw, mid, 1000 * n))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state.sqlite3") as opened:
        yield opened


def test_each_item_is_in_flight_before_it_is_sent_and_recorded_once_confirmed(
    store: StateStore,
) -> None:
    seen_in_flight: list[bool] = []
    dest = MemoryDestination(
        after_store=lambda item: seen_in_flight.append(bool(store.in_flight([item.key], PLACE)))
    )
    folder = dest.ensure_folder("SMS")
    outcome = upload_exactly_once(dest, folder, store, PLACE, (pending(n) for n in range(5)))
    assert seen_in_flight == [True] * 5
    assert outcome.uploaded == 5 and outcome.found == 0 and not outcome.refused
    assert store.known([f"fp{n}" for n in range(5)], PLACE) == {f"fp{n}" for n in range(5)}
    assert store.in_flight([f"fp{n}" for n in range(5)], PLACE) == {}
    assert store.known(["fp1"], place_key("memory:other", "SMS")) == set()


@pytest.mark.parametrize("merges", [False, True])
def test_a_drop_after_the_server_stored_leaves_one_copy_on_the_next_run(
    store: StateStore, merges: bool
) -> None:
    dropped: list[str] = []

    def drop(item: Outgoing) -> None:
        if item.key == "fp3" and not dropped:
            dropped.append(item.key)
            raise DestinationError("connection reset after APPEND")

    dest = MemoryDestination(merges_message_ids=merges, after_store=drop)
    folder = dest.ensure_folder("SMS")
    with pytest.raises(DestinationError):
        upload_exactly_once(dest, folder, store, PLACE, [pending(n) for n in range(6)])
    assert store.known([f"fp{n}" for n in range(6)], PLACE) == {"fp0", "fp1", "fp2"}
    assert store.in_flight(["fp3"], PLACE) == {"fp3": "<m3@smsbak>"}
    # The next run offers what is not recorded (as the backup engine does).
    left = [pending(n) for n in range(6) if not store.known([f"fp{n}"], PLACE)]
    outcome = upload_exactly_once(dest, folder, store, PLACE, left)
    assert all(dest.copies_of(f"<m{n}@smsbak>") == 1 for n in range(6))
    assert store.known([f"fp{n}" for n in range(6)], PLACE) == {f"fp{n}" for n in range(6)}
    # Only a server that keeps copies is asked; one that merges gets the message again.
    assert (outcome.found, outcome.uploaded) == ((0, 3) if merges else (1, 2))
    # A server that keeps copies is asked once per run here: the first run because
    # nothing was recorded for the place yet, the second for what was left in flight.
    assert dest.lookups == (0 if merges else 2)


def test_nothing_in_flight_means_no_lookup(store: StateStore) -> None:
    dest = MemoryDestination(merges_message_ids=False)
    folder = dest.ensure_folder("SMS")
    upload_exactly_once(dest, folder, store, PLACE, [pending(1)])
    lookups = dest.lookups  # a first backup to a place asks (see the next test)
    upload_exactly_once(dest, folder, store, PLACE, [pending(n) for n in range(2, 80)])
    assert dest.lookups == lookups


def test_a_lost_state_does_not_double_a_server_that_keeps_copies(tmp_path: Path) -> None:
    """The state database was moved aside (or this is a first backup into a folder that
    already holds them): nothing is known, so every chunk is looked up first."""
    dest = MemoryDestination(merges_message_ids=False)
    folder = dest.ensure_folder("SMS")
    with StateStore(tmp_path / "old.sqlite3") as old:
        upload_exactly_once(dest, folder, old, PLACE, [pending(n) for n in range(60)])
    with StateStore(tmp_path / "new.sqlite3") as new:
        outcome = upload_exactly_once(dest, folder, new, PLACE, [pending(n) for n in range(70)])
        assert (outcome.found, outcome.uploaded) == (60, 10)
        assert len(new.known([f"fp{n}" for n in range(70)], PLACE)) == 70
    assert all(dest.copies_of(f"<m{n}@smsbak>") == 1 for n in range(70))


def test_a_refused_item_is_recorded_as_refused_not_as_backed_up(store: StateStore) -> None:
    dest = MemoryDestination(reject=lambda item: "too large" if item.key == "fp2" else None)
    refused: list[str] = []
    outcome = upload_exactly_once(
        dest, dest.ensure_folder("SMS"), store, PLACE, [pending(n) for n in range(4)],
        on_refused=lambda r: refused.append(r.fingerprint),
    )  # fmt: skip
    assert refused == ["fp2"] and [r.reason for r in outcome.refused] == ["too large"]
    assert store.refused(["fp2"], PLACE) == {"fp2"}
    assert store.known(["fp2"], PLACE) == set() and store.in_flight(["fp2"], PLACE) == {}


def test_items_are_consumed_lazily(store: StateStore) -> None:
    taken: list[int] = []
    at_first_store: list[int] = []

    def items() -> Iterator[Pending]:
        for n in range(CHUNK_ITEMS * 4):
            taken.append(n)
            yield pending(n)

    dest = MemoryDestination(after_store=lambda item: at_first_store.append(len(taken)))
    outcome = upload_exactly_once(dest, dest.ensure_folder("SMS"), store, PLACE, items())
    assert at_first_store[0] <= CHUNK_ITEMS  # never the whole backup at once
    assert outcome.uploaded == CHUNK_ITEMS * 4


def test_should_stop_ends_the_run_with_what_was_confirmed_recorded(store: StateStore) -> None:
    dest = MemoryDestination()
    calls = iter(range(1000))
    outcome = upload_exactly_once(
        dest, dest.ensure_folder("SMS"), store, PLACE, [pending(n) for n in range(200)],
        should_stop=lambda: next(calls) > 60,
    )  # fmt: skip
    assert outcome.stopped and 0 < outcome.uploaded < 200
    assert len(store.known([f"fp{n}" for n in range(200)], PLACE)) == outcome.uploaded
