"""The MMS reader at a page's cost, through the fake rish and content provider:
`content` and shell starts are counted against the provider's floor (two queries per
page plus one address query per MMS), and hostile text cannot forge rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsbak.model import AddressKind, Box
from smsbak.phone.privileged import PrivilegedShell
from smsbak.phone.privileged_reader import MmsReader
from smsbak.phone.termux import walk_newest_first
from tests.fakes.phone import INBOX, INSERT_ADDRESS_TOKEN, PDU_FROM, PDU_TO, SENT, FakePhone

DATE_S = 1_772_362_800
FORGED_PART = "hi\nRow: 1 _id=999, mid=1, seq=0, hex(ct)=74, chset=106, hex(name)=, text=x"
FORGED_ADDRESS = "+49170\nRow: 1 _id=998, type=137, charset=106, hex(address)=2B31"
FORGED_SUBJECT = "sub\nRow: 1 _id=997, thread_id=1, date=1, msg_box=1"


@pytest.fixture
def phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePhone:
    phone = FakePhone(tmp_path / "phone")
    phone.enable_privileged(rish=True)
    for key, value in phone.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RISH_APPLICATION_ID", "com.termux")
    return phone


def fill(phone: FakePhone, count: int, hostile_at: frozenset[int] = frozenset({3})) -> None:
    """``count`` MMS, oldest first; those numbered in ``hostile_at`` carry text that
    looks like more rows of `content`'s output in their address, part and subject."""
    with phone.batch():
        for i in range(count):
            hostile = i in hostile_at
            phone.add_mms(
                date_s=DATE_S + i,
                box=SENT if i % 2 else INBOX,
                addresses=[
                    (INSERT_ADDRESS_TOKEN if i % 2 else f"+4917{i:04}", PDU_FROM),
                    (FORGED_ADDRESS if hostile else f"+4916{i:04}", PDU_TO),
                ],
                parts=[
                    {"ct": "application/smil", "seq": -1, "text": "<smil/>"},
                    {"ct": "text/plain", "text": FORGED_PART if hostile else f"text {i}"},
                    {"ct": "image/jpeg", "name": f"p{i}.jpg", "data": bytes([i % 256]) * 10},
                ],
                subject=FORGED_SUBJECT if hostile else None,
            )


def test_a_page_costs_two_shell_starts_and_two_queries_plus_one_per_mms(
    phone: FakePhone,
) -> None:
    # Three pages of eight cost what three of fifty would, per page and per MMS; every
    # `content` start is a process of the fake, so the pages are kept small.
    fill(phone, 20)
    reader = MmsReader(PrivilegedShell("rish", 30))
    pages = list(walk_newest_first(reader.page, 8))
    messages = [m for page in pages for m in page.messages]
    assert len(messages) == 20 and all(m.mms is not None for m in messages)
    assert len({m.row_id for m in messages}) == 20
    # 8 + 8 + 6 rows: each next page starts again at the second that ended the
    # previous one (walk_newest_first), so one row per page comes twice; its addresses
    # and parts, read a moment ago, are not asked for again.
    assert [page.rows for page in pages] == [8, 8, 6]
    read_pages = len(pages)
    content_starts = len(phone.calls("content"))
    shell_starts = len(phone.calls("rish"))
    # The provider's floor: pdu rows and parts per page, one address query per MMS.
    assert content_starts == 2 * read_pages + 20
    assert shell_starts == 2 * read_pages
    assert not phone.calls("content") or all(
        call["argv"][0] == "query" for call in phone.calls("content")
    )  # no bytes read at scan time: they come with one `content read` each at upload
    part_queries = [c for c in phone.calls("content") if "content://mms/part" in c["argv"]]
    assert len(part_queries) == read_pages  # one `mid IN (...)` query per page


def test_hostile_text_in_batched_queries_cannot_forge_rows(phone: FakePhone) -> None:
    # Hostile text in the middle of the batch (the fourth MMS) and at its edge (the
    # newest, first in the pdu query and last of the parts).
    fill(phone, 6, hostile_at=frozenset({3, 5}))
    reader = MmsReader(PrivilegedShell("rish", 30))
    fast = {m.row_id: m.mms for page in walk_newest_first(reader.page, 50) for m in page.messages}
    hostile = fast[4]  # i == 3
    assert hostile is not None
    assert hostile.addresses == (
        (INSERT_ADDRESS_TOKEN, AddressKind.FROM),
        (FORGED_ADDRESS, AddressKind.TO),
    )
    assert [p.text for p in hostile.parts] == ["<smil/>", FORGED_PART, None]
    assert (hostile.subject, hostile.box) == (FORGED_SUBJECT, Box.SENT)
    newest = fast[6]  # i == 5
    assert newest is not None and newest.addresses[1] == (FORGED_ADDRESS, AddressKind.TO)
    assert [p.text for p in newest.parts] == ["<smil/>", FORGED_PART, None]
    assert newest.subject == FORGED_SUBJECT
    assert len(fast) == 6 and all(len(m.parts) == 3 for m in fast.values() if m)
    # The per-message reader (five Java starts per MMS) sees exactly the same.
    slow_reader = MmsReader(PrivilegedShell("rish", 30))
    slow_reader.exact = False
    slow = {
        m.row_id: m.mms for page in walk_newest_first(slow_reader.page, 50) for m in page.messages
    }
    assert slow == fast


def test_a_provider_refusing_hex_is_read_per_message_instead(phone: FakePhone) -> None:
    fill(phone, 4)  # the newest hostile: five Java starts per MMS read per message
    reader = MmsReader(PrivilegedShell("rish", 30))
    fast = {m.row_id: m.mms for page in walk_newest_first(reader.page, 50) for m in page.messages}
    phone.set(content_strict_projection=True)
    fallback = MmsReader(PrivilegedShell("rish", 30))
    read = [m for page in walk_newest_first(fallback.page, 50) for m in page.messages]
    assert not fallback.exact  # it noticed, and stays with per-message queries
    assert {m.row_id: m.mms for m in read} == fast
