"""The Termux:API reader against the fake tools (real processes, no mocks)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from smsbak.errors import PermissionDenied, PhoneError
from smsbak.model import Box
from smsbak.phone.contacts import ContactBook
from smsbak.phone.termux import Contact, TermuxPhone, TermuxTools, parse_received
from tests.fakes.phone import FakePhone

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePhone:
    fake = FakePhone(tmp_path / "phone")
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TZ", raising=False)
    return fake


def reader(generation: str | None = None) -> TermuxPhone:
    return TermuxPhone(TermuxTools(timeout=10), generation=generation)


def test_pages_come_back_newest_first_with_local_time_converted(phone: FakePhone) -> None:
    base = int(datetime(2026, 7, 1, 12, 0, 0, tzinfo=BERLIN).timestamp() * 1000)
    for i in range(5):
        phone.add_sms(address="+491", body=f"m{i}", date=base + i * 1000 + 999)
    page = reader().sms_page(0, 3)
    assert [m.sms.body for m in page.messages] == ["m4", "m3", "m2"]
    assert page.messages[0].sms.date_ms == base + 4000  # milliseconds are gone
    assert page.rows == 3


def test_generation_is_detected_and_the_stable_sort_used_only_on_the_new_app(
    phone: FakePhone,
) -> None:
    phone.add_sms(address="+491", body="x", date=1_780_000_000_000)
    new = reader()
    new.sms_page(0, 10)
    assert new.generation == "new"
    new.sms_page(0, 10)
    assert any("--message-sort-order" in " ".join(c["argv"]) for c in phone.calls())
    phone.set(generation="old")
    old = reader()
    old.sms_page(0, 10)
    assert old.generation == "old"
    # A remembered "new" that is in fact old falls back without failing.
    stale = reader("new")
    assert len(stale.sms_page(0, 10).messages) == 1
    assert stale.generation == "old"


def test_old_generation_reads_the_number_key(phone: FakePhone) -> None:
    phone.set(generation="old")
    phone.add_sms(address="+4912345", body="old app", date=1_780_000_000_000)
    (message,) = reader().sms_page(0, 10).messages
    assert message.sms.address == "+4912345"


def test_sender_name_is_taken_for_inbox_only(phone: FakePhone) -> None:
    phone.add_contact("Anna", "+491111")
    phone.add_sms(address="+491111", body="in", date=1_780_000_000_000, type=1)
    phone.add_sms(address="+491111", body="out", date=1_780_000_001_000, type=2)
    names = {m.sms.body: m.contact_name for m in reader().sms_page(0, 10).messages}
    assert names == {"in": "Anna", "out": None}


def test_null_address_and_body_become_empty_strings(phone: FakePhone) -> None:
    phone.add_sms(address=None, body=None, date=1_780_000_000_000)
    (message,) = reader().sms_page(0, 10).messages
    assert (message.sms.address, message.sms.body, message.sms.box) == ("", "", Box.INBOX)


def test_line_separators_in_bodies_survive_the_json(phone: FakePhone) -> None:
    phone.add_sms(address="+491", body="a\u2028b\u2029c\r\nd", date=1_780_000_000_000)
    (message,) = reader().sms_page(0, 10).messages
    assert message.sms.body == "a\u2028b\u2029c\r\nd"


def test_walk_with_overlapping_pages_sees_every_tie_once(phone: FakePhone) -> None:
    phone.set(generation="old")
    with phone.batch():
        for i in range(50):
            phone.add_sms(address=f"+49{i}", body=f"t{i}", date=1_780_000_000_000 + (i // 5) * 1000)
    seen = [m.sms.body for page in reader().sms_newest_first(7) for m in page.messages]
    assert sorted(seen) == sorted(f"t{i}" for i in range(50))


def test_zone_comes_from_getprop_then_tz(phone: FakePhone, monkeypatch: pytest.MonkeyPatch) -> None:
    phone.set(timezone="America/New_York")
    assert str(reader().zone) == "America/New_York"
    phone.set(timezone="")
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert str(reader().zone) == "Asia/Tokyo"


def test_ambiguous_autumn_hour_takes_the_first_occurrence() -> None:
    first = parse_received("2026-10-25 02:30:00", BERLIN)
    assert first == int(datetime(2026, 10, 25, 0, 30, tzinfo=ZoneInfo("UTC")).timestamp()) * 1000


@pytest.mark.parametrize("count", [1, 2])
def test_permission_errors_list_each_permission(phone: FakePhone, count: int) -> None:
    missing = ["android.permission.READ_SMS", "android.permission.READ_CONTACTS"][:count]
    phone.set_mode("termux-sms-list", "permission", missing_permissions=missing)
    with pytest.raises(PermissionDenied) as caught:
        reader().sms_page(0, 10)
    assert caught.value.permissions == missing
    assert caught.value.hint and "Termux:API" in caught.value.hint


def test_a_missing_tool_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PhoneError, match="not installed") as caught:
        reader().sms_page(0, 10)
    assert caught.value.hint and "pkg install termux-api" in caught.value.hint


def test_contacts_match_numbers_however_they_are_written() -> None:
    book = ContactBook(
        [
            Contact("Anna", "+49 170 1234567"),
            Contact("Bank", "BANK"),
            Contact("Other", "+44 20 1234567"),
        ]
    )
    assert book.name_for("01701234567") == "Anna"
    assert book.name_for("+491701234567") == "Anna"
    assert book.name_for("bank") == "Bank"
    assert book.name_for("+4917012345") is None
    assert book.name_for("+442071234567") is None


class DeletingTools(TermuxTools):
    """Runs the real fake tools, and deletes newer messages after the first page (as a
    person deleting a conversation during a long scan would)."""

    def __init__(self, phone: FakePhone, delete_ids: set[int]) -> None:
        super().__init__(timeout=10)
        self.phone = phone
        self.delete_ids = delete_ids

    def json(self, tool: str, args: Sequence[str] = ()) -> Any:
        answer = super().json(tool, args)
        if tool == "termux-sms-list" and self.delete_ids:
            self.phone.reload()
            self.phone.data["messages"] = [
                row for row in self.phone.data["messages"] if row["_id"] not in self.delete_ids
            ]
            self.phone.save()
            self.delete_ids = set()
        return answer


def test_messages_deleted_between_pages_do_not_hide_older_ones(phone: FakePhone) -> None:
    with phone.batch():
        rows = [
            phone.add_sms(address="+49", body=f"d{i}", date=1_780_000_000_000 + i * 1000)
            for i in range(40)
        ]
    newest_ten = {int(row["_id"]) for row in rows[-10:]}
    walker = TermuxPhone(DeletingTools(phone, newest_ten))
    seen = {m.sms.body for page in walker.sms_newest_first(8) for m in page.messages}
    assert {f"d{i}" for i in range(30)} <= seen


def test_a_long_walk_remembers_only_the_pages_a_step_back_can_reach() -> None:
    """Memory of the walk itself stays flat in the phone's size: 40,000 rows peak like
    4,000 (it used to keep every identity it had returned)."""
    import tracemalloc
    from dataclasses import dataclass

    from smsbak.phone.termux import walk_newest_first
    from smsbak.ports import Page

    @dataclass(frozen=True)
    class Row:
        identity: str
        date_ms: int

    def walk_peak(total: int) -> tuple[int, int]:
        def fetch(offset: int, limit: int) -> Page[Row]:
            rows = [
                Row(f"row-{n:08d}-" + "x" * 40, (total - n) * 1000)
                for n in range(offset, min(total, offset + limit))
            ]
            return Page(messages=rows, rows=len(rows), unusable=0)

        tracemalloc.start()
        count = sum(len(page.messages) for page in walk_newest_first(fetch, 100))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return count, peak

    small, small_peak = walk_peak(4_000)
    large, large_peak = walk_peak(40_000)
    assert (small, large) == (4_000, 40_000)  # every row once, none twice
    assert large_peak < small_peak * 1.5 + 64_000
