"""The memory twins keep the promises of their ports (the engine tests rely on them)."""

from __future__ import annotations

import pytest

from smsbak.destinations.memory import MemoryDestination, message_id_of
from smsbak.errors import DestinationError
from smsbak.model import Box, Sms
from smsbak.ports import Confirmed, Destination, Outgoing, Rejected, Source, SourceCapabilities
from smsbak.sources.memory import MemorySource


def _raw(n: int) -> bytes:
    return f"Message-ID: <m{n}@smsbak>\r\nSubject: x\r\n\r\nbody {n}\r\n".encode()


def _upload(
    dest: Destination, folder: str, items: list[Outgoing]
) -> tuple[list[Confirmed], list[Rejected]]:
    confirmed: list[Confirmed] = []
    rejected: list[Rejected] = []
    dest.upload(items, folder, on_confirmed=confirmed.extend, on_rejected=rejected.append)
    return confirmed, rejected


def test_upload_list_fetch_gives_the_same_bytes() -> None:
    dest: Destination = MemoryDestination()
    folder = dest.ensure_folder("SMS")
    assert dest.find_folder("SMS") == folder and dest.find_folder("Other") is None
    confirmed, _ = _upload(
        dest, folder, [Outgoing(f"k{n}", _raw(n), f"<m{n}@smsbak>") for n in range(3)]
    )
    assert [c.key for c in confirmed] == ["k0", "k1", "k2"]
    fetched: list[tuple[str, bytes]] = []
    dest.fetch_raw(dest.list_ids(folder), on_fetched=fetched.extend, on_rejected=lambda i, r: None)
    assert sorted(raw for _, raw in fetched) == sorted(_raw(n) for n in range(3))
    assert dest.count(folder) == 3


@pytest.mark.parametrize("merges", [True, False])
def test_second_copy_of_a_message_id_merges_only_when_declared(merges: bool) -> None:
    dest = MemoryDestination(merges_message_ids=merges)
    folder = dest.ensure_folder("SMS")
    _upload(dest, folder, [Outgoing("a", _raw(1), "<m1@smsbak>")])
    _upload(dest, folder, [Outgoing("a", _raw(1), "<m1@smsbak>")])
    assert dest.copies_of("<m1@smsbak>") == (1 if merges else 2)
    assert dest.find_message_ids(folder, ["<m1@smsbak>", "<nope@x>"]).keys() == {"<m1@smsbak>"}


def test_drop_after_store_keeps_the_message_but_confirms_nothing() -> None:
    def drop(item: Outgoing) -> None:
        if item.key == "k1":
            raise DestinationError("connection dropped")

    dest = MemoryDestination(merges_message_ids=False, after_store=drop)
    folder = dest.ensure_folder("SMS")
    confirmed: list[Confirmed] = []
    with pytest.raises(DestinationError):
        dest.upload(
            [Outgoing(f"k{n}", _raw(n), f"<m{n}@smsbak>") for n in range(3)],
            folder, on_confirmed=confirmed.extend, on_rejected=lambda r: None,
        )  # fmt: skip
    assert [c.key for c in confirmed] == ["k0"]
    assert dest.copies_of("<m1@smsbak>") == 1 and dest.copies_of("<m2@smsbak>") == 0


def test_rejected_is_reported_and_not_stored() -> None:
    dest = MemoryDestination(reject=lambda item: "too big" if item.key == "b" else None)
    folder = dest.ensure_folder("SMS")
    confirmed, rejected = _upload(dest, folder, [Outgoing("a", _raw(1)), Outgoing("b", _raw(2))])
    assert [c.key for c in confirmed] == ["a"] and rejected == [Rejected("b", "too big")]
    assert dest.stores == 1 and message_id_of(_raw(2)) == "<m2@smsbak>"


def test_unreadable_destination_refuses_to_list() -> None:
    dest = MemoryDestination(readable=False)
    with pytest.raises(DestinationError):
        list(dest.list_ids(dest.ensure_folder("SMS")))


def test_memory_source_pages_newest_first_and_honours_capabilities() -> None:
    sms = [Sms(box=Box.INBOX, address="+1", date_ms=1000 * n, body=str(n)) for n in range(5)]
    source: Source = MemorySource(sms, capabilities=SourceCapabilities(mms=False))
    pages = list(source.sms_newest_first(2))
    assert [[m.date_ms for m in p.messages] for p in pages] == [[4000, 3000], [2000, 1000], [0]]
    assert list(source.mms_newest_first(2)) == []  # declared: no MMS
    empty = MemorySource()
    assert [p.messages for p in empty.sms_newest_first(10)] == [[]]
    assert empty.pages_read == 1
