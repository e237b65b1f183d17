"""Narrow the readers' mixed record streams to one kind, lazily (memory tests iterate)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from smsbak.model import Mms, Sms


def sms_only(records: Iterable[object]) -> Iterator[Sms]:
    for record in records:
        if isinstance(record, Sms):
            yield record


def mms_only(records: Iterable[object]) -> Iterator[Mms]:
    for record in records:
        if isinstance(record, Mms):
            yield record
