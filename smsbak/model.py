"""Records that flow between the phone, the codec, the state store and Gmail.

Records are frozen dataclasses so they can be compared, hashed and passed
between threads without anyone changing them underway.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass


class Box(enum.IntEnum):
    """Android's ``type`` column of the SMS store."""

    INBOX = 1
    SENT = 2
    DRAFT = 3
    OUTBOX = 4
    FAILED = 5
    QUEUED = 6

    @property
    def is_incoming(self) -> bool:
        """Received messages are From the other party; everything else From the user."""
        return self is Box.INBOX


@dataclass(frozen=True)
class Sms:
    """One text message as the phone stores it.

    ``date_ms`` is epoch milliseconds (UTC). Termux:API only gives whole
    seconds, so messages it reads always have ``date_ms % 1000 == 0``; archives
    written by SMS Backup+ carry the exact milliseconds.
    """

    address: str
    body: str
    date_ms: int
    box: Box
    read: bool | None = None
    thread_id: int | None = None
    android_id: int | None = None
    sub_id: int | None = None
    """Which SIM (dual-SIM phones); only the privileged reader sees it."""
    date_sent_ms: int | None = None
    status: int | None = None
    service_center: str | None = None
    """These three, too, only the privileged reader sees (Termux:API has no such keys)."""

    @property
    def fingerprint(self) -> str:
        return sms_fingerprint(self.box, self.address, self.date_ms, self.body)


def sms_fingerprint(box: Box, address: str, date_ms: int, body: str) -> str:
    """Identity of a message across phones, readers and restores.

    The date is truncated to whole seconds because termux-sms-list drops the
    milliseconds: a message read by Termux:API and the same message restored
    from an archive with exact milliseconds must get the same identity. The
    body is part of it, so two different messages in one second never collide.
    The Android ``_id`` is not: it changes after a factory reset. Fields are
    length-prefixed so no choice of texts can make two tuples hash alike.
    """
    return _fingerprint(("sms", str(int(box)), address, str(date_ms // 1000), body))


class CallType(enum.IntEnum):
    """Android's ``CallLog.Calls.TYPE``."""

    INCOMING = 1
    OUTGOING = 2
    MISSED = 3
    VOICEMAIL = 4
    REJECTED = 5
    BLOCKED = 6

    @property
    def is_incoming(self) -> bool:
        """SMS Backup+: incoming, missed, rejected and voicemail calls are From the caller."""
        return self in (CallType.INCOMING, CallType.MISSED, CallType.VOICEMAIL, CallType.REJECTED)


@dataclass(frozen=True)
class Call:
    """One call-log entry. ``date_ms`` is epoch ms (whole seconds from Termux:API)."""

    number: str
    date_ms: int
    duration_s: int
    type: CallType
    sim_id: str | None = None
    """Termux:API's ``sim_id`` (new app only), kept as the opaque text it is: the phone
    account it names is not a SIM slot and is meaningless without its component
    name, which Termux:API does not give. Not part of the identity."""

    @property
    def fingerprint(self) -> str:
        return call_fingerprint(self.type, self.number, self.date_ms, self.duration_s)


def call_fingerprint(call_type: CallType, number: str, date_ms: int, duration_s: int) -> str:
    """Like sms_fingerprint: whole seconds, so every reader and archive agrees."""
    return _fingerprint(
        ("call", str(int(call_type)), number, str(date_ms // 1000), str(duration_s))
    )


def _fingerprint(parts: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


class AddressKind(enum.IntEnum):
    """``content://mms/<id>/addr`` ``type``: who an address is in a (group) MMS."""

    FROM = 137
    TO = 151
    CC = 130
    BCC = 129


@dataclass(frozen=True)
class MmsPart:
    """One part of an MMS. ``data`` holds the bytes of non-text parts (images, vCards)."""

    content_type: str
    name: str | None = None
    text: str | None = None
    data: bytes | None = None
    charset: str | None = None
    content_id: str | None = None
    content_location: str | None = None


@dataclass(frozen=True)
class Mms:
    """One MMS with every address and part. ``date_ms`` is ms (the provider keeps seconds).

    ``box`` is ``msg_box`` (1 inbox, 2 sent, ...); ``addresses`` are (address, kind)
    in provider order, so a group message keeps its sender and every recipient.
    """

    date_ms: int
    box: Box
    addresses: tuple[tuple[str, AddressKind], ...]
    parts: tuple[MmsPart, ...]
    read: bool | None = None
    thread_id: int | None = None
    android_id: int | None = None
    message_type: int | None = None  # m_type: 128 sent request, 132 retrieved
    subject: str | None = None
    sub_id: int | None = None
    content_digest: str | None = None
    """Set only for an MMS that would otherwise share its fingerprint with another MMS
    (same second, box, addresses, part types, names and texts, e.g. two pictures
    without file names): a hash of every part's bytes (see mms_content_digest)."""

    @property
    def sender(self) -> str:
        return next((a for a, kind in self.addresses if kind is AddressKind.FROM), "")

    @property
    def fingerprint(self) -> str:
        """Whole seconds, the box, every address with its role, every part's type and
        name, and the text of text parts. Attachment bytes are left out on purpose: a
        scan can then tell a new MMS from a known one without reading them, so memory
        holds one message's attachments at a time, not a whole backup's.

        Two MMS that differ only in their attachment bytes are told apart by
        ``content_digest``, which the backup sets on both when a scan finds them
        sharing a fingerprint; every other MMS keeps the fingerprint it always had."""
        parts: list[str] = ["mms", str(int(self.box)), str(self.date_ms // 1000)]
        parts += [f"{int(kind)}:{address}" for address, kind in self.addresses]
        for part in self.parts:
            parts += [part.content_type, part.name or "", part.text or ""]
        if self.content_digest is not None:
            parts += ["content", self.content_digest]
        return _fingerprint(tuple(parts))


def mms_content_digest(parts: tuple[MmsPart, ...]) -> str:
    """A hash of every part's type, text and bytes, SMIL layout parts left out (emails
    do not carry them), so the MMS decoded from its email gives the same digest."""
    values: list[str] = []
    for part in parts:
        if part.content_type.split(";", 1)[0].strip().lower() == "application/smil":
            continue
        values += [
            part.content_type,
            part.text or "",
            hashlib.sha256(part.data or b"").hexdigest(),
        ]
    return _fingerprint(tuple(values))[:32]
