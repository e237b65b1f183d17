"""MMS identity edge cases through the fake phone and the Gmail emulator: two MMS that
differ only in their attachment bytes, sent in one second to one person."""

from __future__ import annotations

import email
import email.policy
import os
import time

import pytest

from smsbak.mime import decode_mms
from tests.conftest import TEST_QUOTA_PER_MINUTE, Bed
from tests.fakes.phone import INSERT_ADDRESS_TOKEN, PDU_FROM, PDU_TO

pytestmark = pytest.mark.cli_in_process  # the process boundary is not what this tests

NOW_S = int(time.time()) - 3600


def picture_mms(bed: Bed, date_s: int, image: bytes, to: str = "+4917011") -> None:
    bed.phone.add_mms(
        date_s=date_s,
        box=2,
        addresses=[(INSERT_ADDRESS_TOKEN, PDU_FROM), (to, PDU_TO)],
        parts=[
            {"ct": "application/smil", "text": "<smil><body/></smil>"},
            {"ct": "image/jpeg", "data": image},  # no name, as cameras send them
        ],
    )


def setup(bed: Bed, **settings: object) -> None:
    bed.phone.enable_privileged(rish=True)
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, call_log=False, **settings)


def images(bed: Bed) -> list[bytes]:
    found = []
    for stored in bed.emulator.messages("SMS"):
        (part,) = [p for p in decode_mms(stored.raw).parts if p.content_type == "image/jpeg"]
        assert part.data is not None
        found.append(part.data)
    return found


def test_two_pictures_in_one_second_to_one_person_are_both_backed_up_once(bed: Bed) -> None:
    setup(bed)
    first, second = os.urandom(3000), os.urandom(3000)
    picture_mms(bed, NOW_S, first)
    picture_mms(bed, NOW_S, second)
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert sorted(images(bed)) == sorted([first, second])
    ids = {
        email.message_from_bytes(m.raw, policy=email.policy.default)["Message-ID"]
        for m in bed.emulator.messages("SMS")
    }
    assert len(ids) == 2  # Gmail would merge two emails with one Message-ID
    inserts = bed.emulator.insert_calls
    for args in (("backup",), ("backup", "--full")):
        again = bed.smsbak(*args)
        assert again.returncode == 0, again.stderr
        assert bed.emulator.insert_calls == inserts, args  # identity is stable
    assert len(bed.emulator.messages("SMS")) == 2


def test_pictures_of_one_second_on_two_pages_are_still_told_apart(bed: Bed) -> None:
    """With pages of two, the second picture of the second would fall on the next page."""
    setup(bed, page_size=2, lookback_hours=0.01)  # 36 s
    first, second = os.urandom(2000), os.urandom(2000)
    older = os.urandom(2000)
    picture_mms(bed, NOW_S - 86_400 * 3, older)
    picture_mms(bed, NOW_S, first)
    picture_mms(bed, NOW_S, second)
    picture_mms(bed, NOW_S + 100, os.urandom(2000))  # newest; pages: [+100, 0] [0, older]
    result = bed.smsbak("backup")
    assert result.returncode == 0, result.stderr
    assert len(bed.emulator.messages("SMS")) == 4
    assert {first, second, older} <= set(images(bed))
    inserts = bed.emulator.insert_calls
    again = bed.smsbak("backup")  # incremental: stops reading near the second above
    assert again.returncode == 0, again.stderr
    assert bed.emulator.insert_calls == inserts
