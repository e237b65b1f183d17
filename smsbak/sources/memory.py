"""A real Source that serves records held in memory: the twin the engine tests use.

It pages newest first exactly as the phone readers do (ties broken by identity,
newest first), so the engine's incremental scan, its look-back window and its
stop-at-the-cutoff rule run unchanged; ``pages_read`` counts the pages asked for,
so a test can see that a run with nothing new read one page.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, tzinfo
from typing import TypeVar

from smsbak.errors import PhoneError
from smsbak.model import Call, Sms
from smsbak.ports import (
    CallPage,
    Contact,
    MmsPage,
    Page,
    PhoneCall,
    PhoneMms,
    PhoneSms,
    SmsPage,
    SourceCapabilities,
)

R = TypeVar("R", PhoneSms, PhoneCall, PhoneMms)


class MemorySource:
    def __init__(
        self,
        sms: Iterable[Sms | PhoneSms] = (),
        calls: Iterable[Call | PhoneCall] = (),
        mms: Iterable[PhoneMms] = (),
        contacts: Iterable[Contact] = (),
        *,
        identity: str = "memory",
        description: str = "the memory source",
        capabilities: SourceCapabilities | None = None,
        zone: tzinfo = UTC,
    ) -> None:
        self.sms: list[PhoneSms] = []
        self.calls: list[PhoneCall] = []
        self.mms: list[PhoneMms] = list(mms)
        self.contact_list = list(contacts)
        self._identity = identity
        self._description = description
        self._capabilities = capabilities or SourceCapabilities(sms=True, calls=True, mms=True)
        self._zone = zone
        self.pages_read = 0
        self.contacts_fail: str | None = None
        """When set, contacts() fails with this message (a denied permission)."""
        self.add_sms(*sms)
        self.add_calls(*calls)

    def add_sms(self, *records: Sms | PhoneSms) -> None:
        self.sms.extend(r if isinstance(r, PhoneSms) else PhoneSms(r, None) for r in records)

    def add_calls(self, *records: Call | PhoneCall) -> None:
        self.calls.extend(r if isinstance(r, PhoneCall) else PhoneCall(r, None) for r in records)

    # --- the port -----------------------------------------------------------------

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def description(self) -> str:
        return self._description

    @property
    def capabilities(self) -> SourceCapabilities:
        return self._capabilities

    @property
    def zone(self) -> tzinfo:
        return self._zone

    def sms_newest_first(self, page_size: int) -> Iterator[SmsPage]:
        return self._pages(self.sms, page_size) if self._capabilities.sms else iter(())

    def calls_newest_first(self, page_size: int) -> Iterator[CallPage]:
        return self._pages(self.calls, page_size) if self._capabilities.calls else iter(())

    def mms_newest_first(self, page_size: int) -> Iterator[MmsPage]:
        """A kind the capabilities deny yields no pages at all."""
        return self._pages(self.mms, page_size) if self._capabilities.mms else iter(())

    def contacts(self) -> list[Contact]:
        if self.contacts_fail is not None:
            raise PhoneError(self.contacts_fail, "grant the Contacts permission")
        return list(self.contact_list)

    def _pages(self, records: list[R], page_size: int) -> Iterator[Page[R]]:
        ordered = sorted(records, key=lambda r: (r.date_ms, r.identity), reverse=True)
        for start in range(0, max(len(ordered), 1), max(page_size, 1)):
            self.pages_read += 1
            chunk = ordered[start : start + page_size]
            yield Page(messages=chunk, rows=len(chunk), unusable=0)
            if len(chunk) < page_size:
                return
