"""Which ways of writing a number are the same number (`--contact`, contact names)."""

from __future__ import annotations

import pytest

from smsbak.phone.contacts import numbers_match

BOB = ["+49 170 1111111", "+491701111111", "0170 1111111", "01701111111", "0049 170 1111111"]


@pytest.mark.parametrize("first", BOB)
@pytest.mark.parametrize("second", BOB)
def test_the_same_number_written_differently_matches(first: str, second: str) -> None:
    assert numbers_match(first, second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("0170 1111111", "+331701111111"),  # same digits after another country code
        ("111 1111", "+441231111111"),  # only a suffix of the other
        ("+491701111111", "+331701111111"),
        ("+49 170 1111111", "+49 170 1111112"),
        ("0170 1111111", "0171 1111111"),
        ("01701111111", "1701111111"),  # two national forms: no country to read them in
        ("+4912345", "12345"),  # a short code is not a number in Germany
        ("12345", "112345"),
        ("DHL", "DHL-Info"),
        ("+44 20 7946 0958", "+49 20 7946 0958"),
    ],
)
def test_different_numbers_do_not_match(first: str, second: str) -> None:
    assert not numbers_match(first, second)
    assert not numbers_match(second, first)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("DHL", "dhl"),
        ("12345", "12345"),
        ("+44 20 7946 0958", "020 7946 0958"),
        ("+33 6 12 34 56 78", "06 12 34 56 78"),
        ("+1 650 253 0000", "(650) 253-0000"),
        ("+39 06 1234 5678", "06 1234 5678"),  # Italy keeps its leading zero
    ],
)
def test_other_forms_match(first: str, second: str) -> None:
    assert numbers_match(first, second)
    assert numbers_match(second, first)
