"""What every SMS Backup+ record email shares: the envelope going out, the head coming in.

Encoding: From/To/Subject/Date for people reading the mailbox, a deterministic
Message-ID (so a server that merges Message-IDs merges an accidental second
upload), References that thread one conversation on every install, and the
``X-smssync-*`` headers SMS Backup+ restores from. Decoding: the datatype, type
and date every record must have, and the one guard that turns whatever a
damaged email raises into a DecodeError, so one bad email never ends a restore.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections.abc import Callable, Container
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.errors import HeaderParseError
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import format_datetime
from typing import TypeVar

from smsbak.mime.encoding import (
    base64_text,
    decode_header_value,
    encode_words,
    header_text,
    is_plain_header,
    percent_decode,
    percent_encode,
    strip_controls,
)
from smsbak.model import Call, Mms, Sms

SMS_BACKUP_PLUS_VERSION = "1576"
"""SMS Backup+ 1.5.11's version code; its restore reads our emails as its own."""
MESSAGE_ID_DOMAIN = "smsbak.local"
UNKNOWN_DOMAIN = "unknown.email"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_LOCAL_PART_UNSAFE = re.compile(r"[^A-Za-z0-9+._-]+")
_PHONE_LIKE = re.compile(r"^\+?[0-9 ()./-]+$")


class DecodeError(ValueError):
    """An email that is not a record (SMS, call, MMS) we can restore; ``reason`` is for counting."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class EncodedEmail:
    """One record (SMS, call or MMS) as the email bytes to upload, with its Message-ID.

    The Message-ID travels alongside so a destination can look the email up
    without parsing it again.
    """

    raw: bytes
    message_id: str


def email_local_part(address: str) -> str:
    """``+49 (170) 123`` -> ``+49170123``: a valid local part for NUMBER@unknown.email."""
    local = _LOCAL_PART_UNSAFE.sub("", address).strip(".")
    local = re.sub(r"\.{2,}", ".", local)
    return local or "unknown.number"


def conversation_key(address: str) -> str:
    """What makes two addresses one conversation for Gmail threading.

    Formatting differences in a phone number do not split a thread; text sender
    ids compare without case.
    """
    clean = strip_controls(address).strip()
    if _PHONE_LIKE.match(clean):
        return ("+" if clean.startswith("+") else "") + re.sub(r"\D", "", clean)
    return clean.casefold()


def message_id_for(record: Sms | Call) -> str:
    """Deterministic, so Gmail merges an accidental second upload of the same message."""
    return f"<{record.fingerprint[:32]}@{MESSAGE_ID_DOMAIN}>"


def references_for(address: str) -> str:
    """The same for every message of a conversation, on every install: Gmail threads by it."""
    digest = hashlib.sha256(conversation_key(address).encode("utf-8", "replace")).hexdigest()
    return f"<thread.{digest[:24]}@{MESSAGE_ID_DOMAIN}>"


def format_mailbox(display_name: str | None, addr_spec: str) -> str:
    """``Name <addr>``, the name as encoded-words unless it is safe plain ASCII."""
    name = strip_controls(display_name or "").strip()
    if not name:
        return addr_spec
    if is_plain_header(name) and not re.search(r'[()<>\[\]:;@\\,."]', name):
        return f"{name} <{addr_spec}>"
    return f"{encode_words(name)} <{addr_spec}>"


def backup_time_value(moment: datetime) -> str:
    """``X-smssync-backup-time`` as SMS Backup+ wrote it: English month, GMT."""
    utc = moment.astimezone(UTC)
    return f"{utc.day:02d} {_MONTHS[utc.month - 1]} {utc.year} {utc:%H:%M:%S} GMT"


def _exact_address(address: str) -> list[tuple[str, str]]:
    """``X-smsbak-address`` when X-smssync-address had to lose control characters.

    SBP stripped them too, but a record restored with another address gets another
    fingerprint, and the next backup would upload it a second time.
    """
    if strip_controls(address) == address:
        return []
    return [("X-smsbak-address", percent_encode(address))]


def build_email(
    *,
    fingerprint: str,
    datatype: str,
    address: str,
    incoming: bool,
    subject: str,
    contact_name: str | None,
    date_ms: int,
    account: str,
    zone: tzinfo,
    record_headers: list[tuple[str, str]],
    body: str,
    backup_time: datetime,
) -> EncodedEmail:
    """The envelope every SMS Backup+ record shares; the record's own headers go in the middle."""
    other = format_mailbox(contact_name, f"{email_local_part(address)}@{UNKNOWN_DOMAIN}")
    user = format_mailbox(None, strip_controls(account).strip() or f"me@{UNKNOWN_DOMAIN}")
    sender, recipient = (other, user) if incoming else (user, other)
    message_id = f"<{fingerprint[:32]}@{MESSAGE_ID_DOMAIN}>"  # = message_id_for(record)
    headers: list[tuple[str, str]] = [
        ("From", sender),
        ("To", recipient),
        ("Subject", header_text(subject)),
        ("Date", format_datetime(datetime.fromtimestamp(date_ms // 1000, tz=zone))),
        ("Message-ID", message_id),
        ("References", references_for(address)),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "base64"),
        ("X-smssync-datatype", datatype),
        ("X-smssync-address", header_text(address)),
        *_exact_address(address),
        *record_headers,
        ("X-smssync-backup-time", backup_time_value(backup_time)),
        ("X-smssync-version", SMS_BACKUP_PLUS_VERSION),
    ]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    raw = f"{head}\r\n{base64_text(body)}\r\n".encode("ascii")
    return EncodedEmail(raw=raw, message_id=message_id)


def decode_text(data: bytes, charset: str) -> str:
    """A text body in its declared charset; an unknown or wrong charset is a DecodeError."""
    try:
        return data.decode(charset)
    except LookupError as error:
        raise DecodeError("unknown charset", charset) from error
    except UnicodeDecodeError as error:
        raise DecodeError("body not valid in its charset", charset) from error


def decoded_header(message: Message, name: str) -> str | None:
    """A header as text (RFC 2047 words decoded), or None when the email has none."""
    value = message.get(name)
    return None if value is None else decode_header_value(str(value))


def int_header(message: Message, name: str) -> int | None:
    """A numeric header, or None when it is missing or not a number (never an error)."""
    value = decoded_header(message, name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def datatype_of(raw: bytes) -> str | None:
    """The ``X-smssync-datatype`` of an email, upper-cased, or None (very old backups).

    Only the head is parsed: a restore asks this of every email before decoding it,
    and parsing an MMS's parts here too would decode its MIME tree twice."""
    message = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    value = decoded_header(message, "X-smssync-datatype")
    return value.strip().upper() if value is not None else None


_Record = TypeVar("_Record", Sms, Call, Mms)


def without_damage(decode: Callable[[bytes], _Record], raw: bytes) -> _Record:
    """Whatever a damaged email raises becomes a DecodeError: skipped and counted by
    reason, never the end of a restore."""
    try:
        return decode(raw)
    except DecodeError:
        raise
    except (HeaderParseError, ValueError, LookupError, TypeError) as error:
        raise DecodeError("damaged email", type(error).__name__) from error


def record_head(raw: bytes, datatype: str, types: Container[int]) -> tuple[Message, int, int]:
    """The parsed email with the type and date every SMS Backup+ record must have."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    found = decoded_header(message, "X-smssync-datatype")
    if found is None:
        raise DecodeError("no datatype header")
    if found.strip().upper() != datatype:
        raise DecodeError(f"datatype {found.strip().upper()}")
    type_value = int_header(message, "X-smssync-type")
    date_value = int_header(message, "X-smssync-date")
    if type_value is None or type_value not in types:
        raise DecodeError("bad type header", str(decoded_header(message, "X-smssync-type")))
    if date_value is None:
        raise DecodeError("bad date header", str(decoded_header(message, "X-smssync-date")))
    return message, type_value, date_value


def record_address(message: Message) -> str:
    """The record's address: the exact one when smsbak kept it, else SBP's header."""
    exact = decoded_header(message, "X-smsbak-address")
    if exact is not None:
        return percent_decode(exact)
    return decoded_header(message, "X-smssync-address") or ""
