"""Finding the contact name for an address, the way Android's loose compare does.

Numbers are stored in many forms (``+49 170 1234567``, ``01701234567``); the
phonenumbers library decides whether two forms are the same number, and an
index on the last seven digits keeps that from being quadratic.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from smsbak.ports import Contact

if TYPE_CHECKING:
    from phonenumbers import PhoneNumber

_SUFFIX = 7


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


_SHORT_CODE = 6
"""Numbers of at most this many digits are short codes (``12345``): compared as written."""


def numbers_match(first: str, second: str) -> bool:
    """Are these two ways of writing the same number (or the same sender name)?

    Conservative: a short code or an alphanumeric sender matches only itself
    (ignoring case); two international numbers match when country code and
    national number are equal; two national ones when their digits are equal;
    a national and an international one when the national one, read in the
    other's country, is that whole number and the number is valid there
    (``0170 1111111`` is ``+49 170 1111111`` but not ``+33 1701111111``, and
    ``111 1111`` is not ``+44 123 1111111``). A suffix is never enough.
    """
    if first.strip().casefold() == second.strip().casefold():
        return True
    if re.search(r"[A-Za-z]", first + second):
        return False
    if min(len(_digits(first)), len(_digits(second))) <= _SHORT_CODE:
        return False
    if _digits(first)[-_SUFFIX:] != _digits(second)[-_SUFFIX:]:
        return False
    one, other = _international(first), _international(second)
    if one is None and other is None:
        return _digits(first) == _digits(second)
    if one is not None and other is not None:
        return one == other
    import phonenumbers

    national, known = (second, one) if one is not None else (first, other)
    assert known is not None
    try:
        full = phonenumbers.parse(known)
        region = phonenumbers.region_code_for_country_code(full.country_code or 0)
        read_there = phonenumbers.parse(national, region)
    except phonenumbers.NumberParseException:
        return False
    return (
        phonenumbers.is_valid_number(full)
        and read_there.country_code == full.country_code
        and _e164(read_there) == known
    )


def _e164(number: PhoneNumber) -> str:
    import phonenumbers

    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _international(text: str) -> str | None:
    """The number in E.164 when written with its country code (``+49 ...``, ``0049 ...``)."""
    stripped = re.sub(r"[\s().\-/]", "", text)
    if stripped.startswith("00"):
        stripped = "+" + stripped[2:]
    if not stripped.startswith("+"):
        return None
    import phonenumbers

    try:
        return _e164(phonenumbers.parse(stripped, None))
    except phonenumbers.NumberParseException:
        return None


class ContactBook:
    def __init__(self, contacts: Iterable[Contact]) -> None:
        self._by_suffix: dict[str, list[Contact]] = defaultdict(list)
        self._by_text: dict[str, Contact] = {}
        for contact in contacts:
            digits = _digits(contact.number)
            if len(digits) >= 3:
                self._by_suffix[digits[-_SUFFIX:]].append(contact)
            self._by_text.setdefault(contact.number.strip().casefold(), contact)
        self._cache: dict[str, str | None] = {}

    def name_for(self, address: str) -> str | None:
        if address not in self._cache:
            self._cache[address] = self._lookup(address)
        return self._cache[address]

    def _lookup(self, address: str) -> str | None:
        exact = self._by_text.get(address.strip().casefold())
        if exact is not None:
            return exact.name
        digits = _digits(address)
        if len(digits) < 3 or re.search(r"[A-Za-z]", address):
            return None
        for contact in self._by_suffix.get(digits[-_SUFFIX:], []):
            if numbers_match(address, contact.number):
                return contact.name
        return None
