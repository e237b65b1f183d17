"""What every ``smsbak.ports.Destination`` promises, as tests any adapter can inherit.

A subclass named ``Test...`` provides:

- the ``destination`` fixture: a fresh, empty destination (its own server folder,
  Maildir or twin), closed by the fixture afterwards;
- ``identity_pattern``: a regular expression of the identity's documented form;
- ``reopen(destination)``: a second object on the same place, as the next run (a new
  process) would build it. The default returns the same object, which is only right for
  a destination with no state outside the server; override it when you can;
- ``rejecting(destination, item)``: a context manager yielding an item that the
  destination refuses *for good* while the context is active (an item it cannot store,
  or a server told to refuse it);
- optionally ``drop_after_store(destination)``: a context manager yielding a wrapper for
  ``on_confirmed``. While it is active, the next store reaches the server but its
  confirmation is lost. The default fault is the one every adapter can meet: the process
  dies in the confirmation callback, after the store and before the caller recorded
  anything (a SIGKILL at the worst moment). Network adapters override it with a
  connection dropped after the server stored the message (yield ``lambda cb: cb``);
- optionally ``stored_copies(destination, folder, message_id)``: how many copies of a
  Message-ID the folder holds. The default reads the folder back (needs ``readable``);
  an insert-only destination counts through its test server instead.

The emails are real ones from the codec (``smsbak.mime``), a 20 MB MMS among them.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32

import pytest

from smsbak.errors import SmsbakError
from smsbak.mime import encode_call, encode_mms, encode_sms
from smsbak.model import AddressKind, Box, Call, CallType, Mms, MmsPart, Sms
from smsbak.ports import (
    Confirmed,
    Destination,
    DestinationCapabilities,
    Outgoing,
    Rejected,
)

ACCOUNT = "user@example.com"
BACKUP_TIME = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
FOLDER_NAMES = ("SMS", "Call log", "Anrufliste", "Журнал звонков")
BIG_MMS_BYTES = 20_000_000

OnConfirmed = Callable[[Sequence[Confirmed]], None]


class ProcessKilled(BaseException):
    """Stands for a SIGKILL: not an ``Exception``, so no adapter's handler swallows it."""


# --- real emails ----------------------------------------------------------------------


def sms_item(n: int, *, body: str | None = None, read: bool = True) -> Outgoing:
    """The ``n``-th of a run of distinct SMS emails, as the backup engine would send it."""
    sms = Sms(
        address=f"+1555010{n:04d}",
        body=body if body is not None else f"Message {n}: Grüße, 😀 & <tags>",
        date_ms=1_700_000_000_000 + n * 61_000,
        box=Box.INBOX if n % 2 else Box.SENT,
        read=read,
        thread_id=n % 7,
    )
    encoded = encode_sms(
        sms, account=ACCOUNT, contact_name=f"Contact {n}", zone=UTC, backup_time=BACKUP_TIME
    )
    return Outgoing(
        key=sms.fingerprint,
        raw=encoded.raw,
        message_id=encoded.message_id,
        date_ms=sms.date_ms,
        seen=read,
    )


def call_item(n: int) -> Outgoing:
    call = Call(
        number=f"+4930123{n:04d}",
        date_ms=1_700_000_000_000 + n * 3_600_000,
        duration_s=n * 13,
        type=CallType.OUTGOING if n % 2 else CallType.MISSED,
    )
    encoded = encode_call(
        call, account=ACCOUNT, contact_name=None, zone=UTC, backup_time=BACKUP_TIME
    )
    return Outgoing(
        key=call.fingerprint, raw=encoded.raw, message_id=encoded.message_id, date_ms=call.date_ms
    )


def mms_item(picture_bytes: int = 3_000, *, n: int = 0) -> Outgoing:
    """A group MMS with a text and a picture of ``picture_bytes`` random bytes."""
    picture = os.urandom(picture_bytes)
    mms = Mms(
        date_ms=1_710_000_000_000 + n * 1000,
        box=Box.INBOX,
        addresses=(
            ("+15550001111", AddressKind.FROM),
            ("+15550002222", AddressKind.TO),
            ("+15550003333", AddressKind.TO),
        ),
        parts=(
            MmsPart(content_type="text/plain", text="Look at this 📷", charset="utf-8"),
            MmsPart(content_type="image/jpeg", name="photo.jpg", data=picture),
        ),
        read=False,
        message_type=132,
    )
    encoded = encode_mms(mms, account=ACCOUNT, contact_names={}, zone=UTC, backup_time=BACKUP_TIME)
    return Outgoing(
        key=mms.fingerprint,
        raw=encoded.raw,
        message_id=encoded.message_id,
        date_ms=mms.date_ms,
        seen=False,
    )


def message_id_of(raw: bytes) -> str:
    """The Message-ID header of an email, read from its header block only."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    value = BytesHeaderParser(policy=compat32).parsebytes(head + b"\r\n\r\n")["Message-ID"]
    return str(value or "").strip()


# --- the recorder every test uploads through ------------------------------------------


class Outcome:
    """What an upload reported, checked for the promises of the port."""

    def __init__(self) -> None:
        self.confirmed: list[Confirmed] = []
        self.rejected: list[Rejected] = []
        self.calls = 0

    def on_confirmed(self, batch: Sequence[Confirmed]) -> None:
        self.calls += 1
        self.confirmed.extend(batch)

    def on_rejected(self, rejected: Rejected) -> None:
        self.rejected.append(rejected)

    @property
    def confirmed_keys(self) -> list[str]:
        return [c.key for c in self.confirmed]

    def remote_id(self, key: str) -> str:
        (remote,) = [c.remote_id for c in self.confirmed if c.key == key]
        return remote


def upload(
    destination: Destination,
    folder: str,
    items: Sequence[Outgoing] | Iterator[Outgoing],
    outcome: Outcome | None = None,
    *,
    on_confirmed: OnConfirmed | None = None,
) -> Outcome:
    outcome = outcome or Outcome()
    destination.upload(
        items,
        folder,
        on_confirmed=on_confirmed or outcome.on_confirmed,
        on_rejected=outcome.on_rejected,
    )
    return outcome


@functools.cache
def big_mms_item() -> Outgoing:
    """An MMS over ``BIG_MMS_BYTES``, encoded once per process (the codec takes a good
    part of a second for 20 MB); an ``Outgoing`` is immutable, each test its own place."""
    return mms_item(BIG_MMS_BYTES * 3 // 4 + 1000)


def fetch_all(destination: Destination, ids: Sequence[str]) -> dict[str, bytes]:
    fetched: dict[str, bytes] = {}
    failed: list[tuple[str, str]] = []

    def on_fetched(batch: Sequence[tuple[str, bytes]]) -> None:
        for remote_id, raw in batch:
            assert remote_id not in fetched, f"{remote_id} fetched twice"
            fetched[remote_id] = raw

    destination.fetch_raw(
        ids, on_fetched=on_fetched, on_rejected=lambda i, r: failed.append((i, r))
    )
    assert not failed, f"fetch refused stored messages: {failed}"
    return fetched


class DestinationContract:
    """Inherit as ``class TestXContract(DestinationContract)`` and provide the hooks."""

    identity_pattern: str = r"^$"  # subclasses set the documented form
    missing_remote_id: str = "no-such-message"

    # --- hooks ------------------------------------------------------------------------

    @pytest.fixture
    def destination(self) -> Iterator[Destination]:
        raise NotImplementedError("a contract subclass provides a fresh, empty destination")

    def reopen(self, destination: Destination) -> Destination:
        return destination

    def rejecting(
        self, destination: Destination, item: Outgoing
    ) -> AbstractContextManager[Outgoing]:
        raise NotImplementedError("a contract subclass says how its destination refuses an item")

    @contextmanager
    def drop_after_store(
        self, destination: Destination
    ) -> Iterator[Callable[[OnConfirmed], OnConfirmed]]:
        def wrap(on_confirmed: OnConfirmed) -> OnConfirmed:
            def dying(batch: Sequence[Confirmed]) -> None:
                raise ProcessKilled

            return dying

        yield wrap

    def stored_copies(self, destination: Destination, folder: str, message_id: str) -> int:
        if not destination.capabilities.readable:
            raise NotImplementedError(
                "override stored_copies for a destination that cannot be read back"
            )
        ids = list(destination.list_ids(folder))
        return sum(
            1 for raw in fetch_all(destination, ids).values() if message_id_of(raw) == message_id
        )

    # --- helpers ----------------------------------------------------------------------

    def _can_look_up(self, destination: Destination) -> bool:
        caps = destination.capabilities
        return caps.readable or not caps.merges_message_ids

    def _require_readable(self, destination: Destination) -> None:
        if not destination.capabilities.readable:
            pytest.skip(f"{destination.identity} declares readable=False: nothing to read back")

    def _next_run_uploads(
        self, destination: Destination, folder: str, items: list[Outgoing]
    ) -> Outcome:
        """What the engine does with items whose outcome an earlier run left unknown:
        a destination that does not merge is asked first, and only the missing go."""
        if destination.capabilities.merges_message_ids:
            return upload(destination, folder, items)
        found = destination.find_message_ids(folder, [i.message_id for i in items])
        outcome = Outcome()
        for item in items:
            if item.message_id in found:
                outcome.confirmed.append(Confirmed(item.key, found[item.message_id]))
        missing = [i for i in items if i.message_id not in found]
        if missing:
            upload(destination, folder, missing, outcome)
        return outcome

    # --- identity and capabilities -----------------------------------------------------

    def test_identity_is_of_the_documented_form_and_stable(self, destination: Destination) -> None:
        identity = destination.identity
        assert re.fullmatch(self.identity_pattern, identity), identity
        assert destination.identity == identity
        assert self.reopen(destination).identity == identity
        assert destination.description.strip()

    def test_capabilities_are_declared(self, destination: Destination) -> None:
        caps = destination.capabilities
        assert isinstance(caps, DestinationCapabilities)
        assert isinstance(caps.readable, bool)
        assert isinstance(caps.merges_message_ids, bool)

    def test_counts_are_truthful(self, destination: Destination) -> None:
        caps = destination.capabilities
        if not (caps.counts_folder or caps.readable):
            pytest.skip("declares neither counts_folder nor readable")
        folder = destination.ensure_folder("SMS")
        assert destination.count(folder) == 0
        upload(destination, folder, [sms_item(1), sms_item(2), call_item(3)])
        assert destination.count(folder) == 3

    def test_an_empty_folder_lists_nothing(self, destination: Destination) -> None:
        self._require_readable(destination)
        folder = destination.ensure_folder("SMS")
        assert list(destination.list_ids(folder)) == []

    # --- folders ----------------------------------------------------------------------

    def test_find_folder_does_not_create_and_ensure_is_idempotent(
        self, destination: Destination
    ) -> None:
        assert destination.find_folder("SMS") is None
        handle = destination.ensure_folder("SMS")
        assert destination.find_folder("SMS") == handle
        assert destination.ensure_folder("SMS") == handle
        assert self.reopen(destination).find_folder("SMS") == handle

    def test_folder_names_outside_ascii_work_and_stay_apart(self, destination: Destination) -> None:
        handles = {name: destination.ensure_folder(name) for name in FOLDER_NAMES}
        assert len(set(handles.values())) == len(FOLDER_NAMES)
        items = {name: sms_item(10 + i) for i, name in enumerate(FOLDER_NAMES)}
        for name, handle in handles.items():
            outcome = upload(destination, handle, [items[name]])
            assert outcome.confirmed_keys == [items[name].key], name
            assert destination.find_folder(name) == handle
        if destination.capabilities.readable:
            for name, handle in handles.items():
                ids = list(destination.list_ids(handle))
                assert list(fetch_all(destination, ids).values()) == [items[name].raw], name

    # --- upload, list, fetch ----------------------------------------------------------

    def test_upload_then_list_then_fetch_gives_the_same_bytes(
        self, destination: Destination
    ) -> None:
        self._require_readable(destination)
        folder = destination.ensure_folder("SMS")
        items = [sms_item(1), sms_item(2, read=False), call_item(3), mms_item(n=4)]
        outcome = upload(destination, folder, items)
        assert sorted(outcome.confirmed_keys) == sorted(i.key for i in items)
        assert outcome.rejected == []
        remote = {i.key: outcome.remote_id(i.key) for i in items}
        assert len(set(remote.values())) == len(items)
        assert sorted(destination.list_ids(folder)) == sorted(remote.values())
        fetched = fetch_all(destination, list(remote.values()))
        for item in items:
            assert fetched[remote[item.key]] == item.raw

    def test_each_item_is_confirmed_once(self, destination: Destination) -> None:
        folder = destination.ensure_folder("SMS")
        items = [sms_item(n) for n in range(30)]
        outcome = upload(destination, folder, items)
        assert sorted(outcome.confirmed_keys) == sorted(i.key for i in items)
        assert all(c.remote_id for c in outcome.confirmed)

    def test_items_are_consumed_lazily(self, destination: Destination) -> None:
        """A first backup streams: confirmations come while items are still being made."""
        folder = destination.ensure_folder("SMS")
        produced = 0
        produced_at_first_confirm: list[int] = []

        def items() -> Iterator[Outgoing]:
            nonlocal produced
            for n in range(200):
                produced += 1
                yield sms_item(n)

        def on_confirmed(batch: Sequence[Confirmed]) -> None:
            if not produced_at_first_confirm:
                produced_at_first_confirm.append(produced)
            outcome.on_confirmed(batch)

        outcome = Outcome()
        upload(destination, folder, items(), outcome, on_confirmed=on_confirmed)
        assert len(outcome.confirmed) == 200
        assert produced_at_first_confirm[0] < 200

    def test_fetching_an_unknown_id_is_rejected_not_raised(self, destination: Destination) -> None:
        self._require_readable(destination)
        folder = destination.ensure_folder("SMS")
        item = sms_item(1)
        remote = upload(destination, folder, [item]).remote_id(item.key)
        fetched: list[tuple[str, bytes]] = []
        failed: list[str] = []
        destination.fetch_raw(
            [self.missing_remote_id, remote],
            on_fetched=fetched.extend,
            on_rejected=lambda i, _reason: failed.append(i),
        )
        assert failed == [self.missing_remote_id]
        assert fetched == [(remote, item.raw)]

    def test_should_stop_before_the_first_item_stores_nothing(
        self, destination: Destination
    ) -> None:
        folder = destination.ensure_folder("SMS")
        item = sms_item(1)
        outcome = Outcome()
        destination.upload(
            [item],
            folder,
            on_confirmed=outcome.on_confirmed,
            on_rejected=outcome.on_rejected,
            should_stop=lambda: True,
        )
        assert outcome.confirmed == []
        assert self.stored_copies(destination, folder, item.message_id) == 0

    def test_a_20_mb_mms_goes_through_byte_identical(self, destination: Destination) -> None:
        folder = destination.ensure_folder("SMS")
        item = big_mms_item()
        assert len(item.raw) > BIG_MMS_BYTES
        outcome = upload(destination, folder, [item])
        assert outcome.confirmed_keys == [item.key]
        assert outcome.rejected == []
        if destination.capabilities.readable:
            fetched = fetch_all(destination, [outcome.remote_id(item.key)])
            (raw,) = fetched.values()
            assert len(raw) == len(item.raw)
            assert hashlib.sha256(raw).digest() == hashlib.sha256(item.raw).digest()
        assert self.stored_copies(destination, folder, item.message_id) == 1

    # --- exactly once -----------------------------------------------------------------

    def test_the_same_message_id_twice_leaves_one_copy(self, destination: Destination) -> None:
        folder = destination.ensure_folder("SMS")
        item = sms_item(1)
        first = upload(destination, folder, [item])
        assert first.confirmed_keys == [item.key]
        if self._can_look_up(destination):
            found = destination.find_message_ids(folder, [item.message_id, "<absent@smsbak.local>"])
            assert found == {item.message_id: first.remote_id(item.key)}
        second = self._next_run_uploads(self.reopen(destination), folder, [item])
        assert second.confirmed_keys == [item.key]
        assert self.stored_copies(destination, folder, item.message_id) == 1

    def test_merging_is_declared_truthfully(self, destination: Destination) -> None:
        """A destination that says it merges keeps one copy of a plain second upload;
        one that says it does not is trusted to be looked up instead (the test above)."""
        if not destination.capabilities.merges_message_ids:
            pytest.skip("declares merges_message_ids=False: the engine looks up instead")
        folder = destination.ensure_folder("SMS")
        item = sms_item(1)
        upload(destination, folder, [item])
        again = upload(destination, folder, [item])
        assert again.confirmed_keys == [item.key]
        assert self.stored_copies(destination, folder, item.message_id) == 1

    def test_find_message_ids_knows_only_what_the_folder_holds(
        self, destination: Destination
    ) -> None:
        if not self._can_look_up(destination):
            pytest.skip("merges Message-IDs itself and cannot be read: nothing to look up")
        sms_folder = destination.ensure_folder("SMS")
        call_folder = destination.ensure_folder("Call log")
        stored = [sms_item(1), sms_item(2)]
        outcome = upload(destination, sms_folder, stored)
        absent = sms_item(3)
        found = destination.find_message_ids(sms_folder, [i.message_id for i in [*stored, absent]])
        assert found == {i.message_id: outcome.remote_id(i.key) for i in stored}
        assert destination.find_message_ids(call_folder, [stored[0].message_id]) == {}
        assert destination.find_message_ids(sms_folder, []) == {}

    def test_a_rejected_message_is_reported_and_not_confirmed(
        self, destination: Destination
    ) -> None:
        folder = destination.ensure_folder("SMS")
        before, after = sms_item(1), sms_item(3)
        with self.rejecting(destination, sms_item(2)) as bad:
            outcome = upload(destination, folder, [before, bad, after])
        assert [r.key for r in outcome.rejected] == [bad.key]
        assert outcome.rejected[0].reason.strip()
        assert sorted(outcome.confirmed_keys) == sorted([before.key, after.key])
        assert self.stored_copies(destination, folder, bad.message_id) == 0
        if self._can_look_up(destination):
            assert bad.message_id not in destination.find_message_ids(folder, [bad.message_id])

    def test_a_store_whose_confirmation_was_lost_is_not_stored_twice(
        self, destination: Destination
    ) -> None:
        """The run dies after the server stored the first item and before anyone
        recorded it; the next run, asking first when the server does not merge,
        ends with exactly one copy of every item."""
        folder = destination.ensure_folder("SMS")
        items = [sms_item(1), mms_item(n=2), call_item(3)]
        outcome = Outcome()
        with self.drop_after_store(destination) as wrap, suppress(ProcessKilled, SmsbakError):
            upload(destination, folder, items, outcome, on_confirmed=wrap(outcome.on_confirmed))
        assert not outcome.rejected
        assert self.stored_copies(destination, folder, items[0].message_id) == 1
        nxt = self.reopen(destination)
        if self._can_look_up(nxt):
            found = nxt.find_message_ids(folder, [items[0].message_id])
            assert items[0].message_id in found, "the stored message is not found by Message-ID"
        outcome = self._next_run_uploads(nxt, folder, items)
        assert sorted(outcome.confirmed_keys) == sorted(i.key for i in items)
        for item in items:
            assert self.stored_copies(nxt, folder, item.message_id) == 1, item.key
