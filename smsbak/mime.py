"""SMS records <-> RFC 5322 emails in the SMS Backup+ format. Pure functions, no I/O.

SMS Backup+ restores from its ``X-smssync-*`` headers, so those carry the
record; Subject, From, To and Date are for people reading Gmail. Everything is
7-bit on the wire: header text that is not plain ASCII goes into RFC 2047
base64 encoded-words, bodies into base64, so no byte of a message (CR, LF,
``From ``, text that looks like headers) can change the email's structure,
and decoding gives back exactly what was encoded.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import Message
from email.utils import format_datetime

from smsbak.model import Box, Call, CallType, Sms

SMS_BACKUP_PLUS_VERSION = "1576"
"""SMS Backup+ 1.5.11's version code; its restore reads our emails as its own."""

MESSAGE_ID_DOMAIN = "smsbak.local"
UNKNOWN_DOMAIN = "unknown.email"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ENCODED_WORD_BYTES = 45  # 60 base64 characters: each encoded-word stays under 75
_BODY_LINE = 76
_LOCAL_PART_UNSAFE = re.compile(r"[^A-Za-z0-9+._-]+")
_PHONE_LIKE = re.compile(r"^\+?[0-9 ()./-]+$")


class DecodeError(ValueError):
    """An email that is not an SMS record we can restore; ``reason`` is for counting."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class EncodedSms:
    raw: bytes
    message_id: str


def strip_controls(text: str) -> str:
    """Remove what could end or fold a header line: C0/C1 controls and line separators.

    SMS Backup+ also removed control characters from the address header.
    """
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Zl", "Zp"))


def _is_plain(text: str) -> bool:
    """True when ``text`` survives a header unchanged without any encoding."""
    return (
        0 < len(text) <= 60
        and all(32 <= ord(ch) < 127 for ch in text)
        and text == text.strip()
        and "  " not in text
        and "=?" not in text
    )


def encode_words(text: str) -> str:
    """RFC 2047 base64 encoded-words, split between characters, folded with CRLF SP."""
    words: list[str] = []
    chunk = b""
    for ch in text:
        data = ch.encode("utf-8", "replace")
        if chunk and len(chunk) + len(data) > _ENCODED_WORD_BYTES:
            words.append(chunk.decode("utf-8"))
            chunk = b""
        chunk += data
    if chunk:
        words.append(chunk.decode("utf-8"))
    return "\r\n ".join(
        "=?utf-8?b?" + base64.b64encode(word.encode("utf-8")).decode("ascii") + "?="
        for word in words
    )


def header_text(text: str) -> str:
    """A header value for free text: plain when safe, encoded-words otherwise."""
    clean = strip_controls(text)
    return clean if not clean or _is_plain(clean) else encode_words(clean)


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


def _mailbox(display_name: str | None, addr_spec: str) -> str:
    name = strip_controls(display_name or "").strip()
    if not name:
        return addr_spec
    if _is_plain(name) and not re.search(r'[()<>\[\]:;@\\,."]', name):
        return f"{name} <{addr_spec}>"
    return f"{encode_words(name)} <{addr_spec}>"


def _backup_time(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc.day:02d} {_MONTHS[utc.month - 1]} {utc.year} {utc:%H:%M:%S} GMT"


def _base64_body(text: str) -> str:
    encoded = base64.b64encode(text.encode("utf-8", "replace")).decode("ascii")
    return "\r\n".join(encoded[i : i + _BODY_LINE] for i in range(0, len(encoded), _BODY_LINE))


def _email(
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
) -> EncodedSms:
    """The envelope every SMS Backup+ record shares; the record's own headers go in the middle."""
    other = _mailbox(contact_name, f"{email_local_part(address)}@{UNKNOWN_DOMAIN}")
    user = _mailbox(None, strip_controls(account).strip() or f"me@{UNKNOWN_DOMAIN}")
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
        *record_headers,
        ("X-smssync-backup-time", _backup_time(backup_time)),
        ("X-smssync-version", SMS_BACKUP_PLUS_VERSION),
    ]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    raw = f"{head}\r\n{_base64_body(body)}\r\n".encode("ascii")
    return EncodedSms(raw=raw, message_id=message_id)


def encode_sms(
    sms: Sms,
    *,
    account: str,
    contact_name: str | None,
    zone: tzinfo,
    backup_time: datetime,
) -> EncodedSms:
    """Build the email SMS Backup+ would have written for ``sms``, 7-bit CRLF bytes."""
    record: list[tuple[str, str]] = []
    if sms.android_id is not None:
        record.append(("X-smssync-id", str(sms.android_id)))
    record.append(("X-smssync-type", str(int(sms.box))))
    record.append(("X-smssync-date", str(sms.date_ms)))
    if sms.thread_id is not None:
        record.append(("X-smssync-thread", str(sms.thread_id)))
    if sms.read is not None:
        record.append(("X-smssync-read", "1" if sms.read else "0"))
    if sms.sub_id is not None:
        record.append(("X-smsbak-sub-id", str(sms.sub_id)))  # smsbak's own: SBP had no SIM
    return _email(
        fingerprint=sms.fingerprint,
        datatype="SMS",
        address=sms.address,
        incoming=sms.box.is_incoming,
        subject=f"SMS with {strip_controls(contact_name or sms.address or 'Unknown')}",
        contact_name=contact_name,
        date_ms=sms.date_ms,
        account=account,
        zone=zone,
        record_headers=record,
        body=sms.body,
        backup_time=backup_time,
    )


CALL_WORDS = {
    CallType.INCOMING: "incoming call",
    CallType.OUTGOING: "outgoing call",
    CallType.MISSED: "missed call",
    CallType.VOICEMAIL: "voicemail",
    CallType.REJECTED: "rejected call",
    CallType.BLOCKED: "blocked call",
}


def call_body(call: Call) -> str:
    """SMS Backup+'s two lines: ``267s (00:04:07)`` (not for missed or rejected calls),
    then ``NUMBER (incoming call)``."""
    line = f"{call.number} ({CALL_WORDS[call.type]})"
    if call.type in (CallType.MISSED, CallType.REJECTED):
        return line
    hours, rest = divmod(call.duration_s, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{call.duration_s}s ({hours:02d}:{minutes:02d}:{seconds:02d})\n{line}"


def encode_call(
    call: Call,
    *,
    account: str,
    contact_name: str | None,
    zone: tzinfo,
    backup_time: datetime,
) -> EncodedSms:
    """The email SMS Backup+ wrote for a call-log entry (label "Call log")."""
    record = [
        ("X-smssync-type", str(int(call.type))),
        ("X-smssync-date", str(call.date_ms)),
        ("X-smssync-duration", str(call.duration_s)),
    ]
    return _email(
        fingerprint=call.fingerprint,
        datatype="CALLLOG",
        address=call.number,
        incoming=call.type.is_incoming,
        subject=f"Call with {strip_controls(contact_name or call.number or 'Unknown')}",
        contact_name=contact_name,
        date_ms=call.date_ms,
        account=account,
        zone=zone,
        record_headers=record,
        body=call_body(call),
        backup_time=backup_time,
    )


# --- decoding -------------------------------------------------------------------------


def decode_header_value(value: str) -> str:
    """Unfold and decode RFC 2047 words; raw UTF-8 (as old mailers wrote) is accepted too."""
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", value)
    if any("\udc80" <= ch <= "\udcff" for ch in unfolded):
        unfolded = unfolded.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    pieces: list[str] = []
    for part, charset in decode_header(unfolded):
        if isinstance(part, str):
            pieces.append(part)
            continue
        try:
            pieces.append(part.decode(charset or "ascii"))
        except (LookupError, UnicodeDecodeError):
            pieces.append(part.decode("utf-8", "replace"))
    return "".join(pieces)


def _header(message: Message, name: str) -> str | None:
    value = message.get(name)
    return None if value is None else decode_header_value(str(value))


def _optional_int(message: Message, name: str) -> int | None:
    value = _header(message, name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _text_body(message: Message) -> str:
    part: Message | None = message
    if message.is_multipart():
        part = next((p for p in message.walk() if p.get_content_type() == "text/plain"), None)
    if part is None:
        return ""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    charset = part.get_content_charset() or "utf-8"
    try:
        text = data.decode(charset)
    except LookupError as error:
        raise DecodeError("unknown charset", charset) from error
    except UnicodeDecodeError as error:
        raise DecodeError("body not valid in its charset", charset) from error
    if (part.get("Content-Transfer-Encoding") or "").strip().lower() != "base64":
        # Line breaks of a text body travel as CRLF; the phone stored them as LF.
        text = text.replace("\r\n", "\n")
    return text


def datatype_of(raw: bytes) -> str | None:
    """The ``X-smssync-datatype`` of an email, upper-cased, or None (very old backups)."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    value = _header(message, "X-smssync-datatype")
    return value.strip().upper() if value is not None else None


def decode_sms(raw: bytes) -> Sms:
    """Turn an SMS email (smsbak's or SMS Backup+'s) back into the record.

    Only the ``X-smssync-*`` headers are trusted: the Subject is translated
    into the phone's language and must never be parsed. Any email that cannot
    be read raises DecodeError with a reason, never another exception: one
    damaged email must not stop a restore.
    """
    try:
        return _decode_sms(raw)
    except DecodeError:
        raise
    except (HeaderParseError, ValueError, LookupError, TypeError) as error:
        raise DecodeError("damaged email", type(error).__name__) from error


def _decode_sms(raw: bytes) -> Sms:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    datatype = _header(message, "X-smssync-datatype")
    if datatype is None:
        raise DecodeError("no datatype header")
    if datatype.strip().upper() != "SMS":
        raise DecodeError(f"datatype {datatype.strip().upper()}")
    type_value = _optional_int(message, "X-smssync-type")
    date_value = _optional_int(message, "X-smssync-date")
    if type_value is None or type_value not in Box._value2member_map_:
        raise DecodeError("bad type header", str(_header(message, "X-smssync-type")))
    if date_value is None:
        raise DecodeError("bad date header", str(_header(message, "X-smssync-date")))
    read = _optional_int(message, "X-smssync-read")
    return Sms(
        address=_header(message, "X-smssync-address") or "",
        body=_text_body(message),
        date_ms=date_value,
        box=Box(type_value),
        read=None if read not in (0, 1) else bool(read),
        thread_id=_optional_int(message, "X-smssync-thread"),
        android_id=_optional_int(message, "X-smssync-id"),
        sub_id=_optional_int(message, "X-smsbak-sub-id"),
    )


def decode_call(raw: bytes) -> Call:
    """A call-log email (smsbak's or SMS Backup+'s) back into the record, by its headers."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        datatype = _header(message, "X-smssync-datatype")
        if datatype is None:
            raise DecodeError("no datatype header")
        if datatype.strip().upper() != "CALLLOG":
            raise DecodeError(f"datatype {datatype.strip().upper()}")
        type_value = _optional_int(message, "X-smssync-type")
        date_value = _optional_int(message, "X-smssync-date")
        if type_value is None or type_value not in CallType._value2member_map_:
            raise DecodeError("bad type header", str(_header(message, "X-smssync-type")))
        if date_value is None:
            raise DecodeError("bad date header", str(_header(message, "X-smssync-date")))
        return Call(
            number=_header(message, "X-smssync-address") or "",
            date_ms=date_value,
            duration_s=max(0, _optional_int(message, "X-smssync-duration") or 0),
            type=CallType(type_value),
        )
    except DecodeError:
        raise
    except (HeaderParseError, ValueError, LookupError, TypeError) as error:
        raise DecodeError("damaged email", type(error).__name__) from error
