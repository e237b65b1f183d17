"""Finding the contact name for an address, the way Android's loose compare does.

Numbers are stored in many forms (``+49 170 1234567``, ``01701234567``); the
phonenumbers library decides whether two forms are the same number, and an
index on the last seven digits keeps that from being quadratic.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from smsbak.phone.termux import Contact

_SUFFIX = 7


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def numbers_match(first: str, second: str) -> bool:
    """Are these two ways of writing the same number (or the same sender name)?"""
    if first.strip().casefold() == second.strip().casefold():
        return True
    if re.search(r"[A-Za-z]", first + second) or len(_digits(first)) < 3:
        return False
    if _digits(first)[-_SUFFIX:] != _digits(second)[-_SUFFIX:]:
        return False
    import phonenumbers

    return phonenumbers.is_number_match(first, second) in (
        phonenumbers.MatchType.EXACT_MATCH,
        phonenumbers.MatchType.NSN_MATCH,
        phonenumbers.MatchType.SHORT_NSN_MATCH,
    )


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
