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
import dataclasses
import email
import email.policy
import hashlib
import re
import unicodedata
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import Message
from email.utils import format_datetime, getaddresses
from typing import TypeVar
from urllib.parse import quote, unquote

from smsbak.model import AddressKind, Box, Call, CallType, Mms, MmsPart, Sms

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


def _exact_address(address: str) -> list[tuple[str, str]]:
    """``X-smsbak-address`` when X-smssync-address had to lose control characters.

    SBP stripped them too, but a record restored with another address gets another
    fingerprint, and the next backup would upload it a second time.
    """
    if strip_controls(address) == address:
        return []
    return [("X-smsbak-address", _percent(address))]


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
        *_exact_address(address),
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
    if sms.status is not None:
        record.append(("X-smssync-status", str(sms.status)))
    if sms.service_center is not None:
        record.append(("X-smssync-service_center", header_text(sms.service_center)))
    if sms.date_sent_ms is not None:
        record.append(("X-smsbak-date-sent", str(sms.date_sent_ms)))
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
    if call.sim_id is not None:  # smsbak's own: SBP kept no SIM for calls
        record.append(("X-smsbak-sim-id", _percent(call.sim_id)))
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
    return _without_damage(_decode_sms, raw)


def _decode_sms(raw: bytes) -> Sms:
    message, type_value, date_ms = _record_head(raw, "SMS", Box._value2member_map_)
    read = _optional_int(message, "X-smssync-read")
    return Sms(
        address=_address(message),
        body=_text_body(message),
        date_ms=date_ms,
        box=Box(type_value),
        read=None if read not in (0, 1) else bool(read),
        thread_id=_optional_int(message, "X-smssync-thread"),
        android_id=_optional_int(message, "X-smssync-id"),
        sub_id=_optional_int(message, "X-smsbak-sub-id"),
        date_sent_ms=_optional_int(message, "X-smsbak-date-sent"),
        status=_optional_int(message, "X-smssync-status"),
        service_center=_header(message, "X-smssync-service_center"),
    )


def decode_call(raw: bytes) -> Call:
    """A call-log email (smsbak's or SMS Backup+'s) back into the record, by its headers."""
    return _without_damage(_decode_call, raw)


def _decode_call(raw: bytes) -> Call:
    message, type_value, date_ms = _record_head(raw, "CALLLOG", CallType._value2member_map_)
    sim_id = _header(message, "X-smsbak-sim-id")
    return Call(
        number=_address(message),
        date_ms=date_ms,
        duration_s=max(0, _optional_int(message, "X-smssync-duration") or 0),
        type=CallType(type_value),
        sim_id=None if sim_id is None else _unpercent(sim_id),
    )


_Record = TypeVar("_Record", Sms, Call, Mms)


def _without_damage(decode: Callable[[bytes], _Record], raw: bytes) -> _Record:
    """Whatever a damaged email raises becomes a DecodeError: skipped and counted by
    reason, never the end of a restore."""
    try:
        return decode(raw)
    except DecodeError:
        raise
    except (HeaderParseError, ValueError, LookupError, TypeError) as error:
        raise DecodeError("damaged email", type(error).__name__) from error


def _record_head(raw: bytes, datatype: str, types: Container[int]) -> tuple[Message, int, int]:
    """The parsed email with the type and date every SMS Backup+ record must have."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    found = _header(message, "X-smssync-datatype")
    if found is None:
        raise DecodeError("no datatype header")
    if found.strip().upper() != datatype:
        raise DecodeError(f"datatype {found.strip().upper()}")
    type_value = _optional_int(message, "X-smssync-type")
    date_value = _optional_int(message, "X-smssync-date")
    if type_value is None or type_value not in types:
        raise DecodeError("bad type header", str(_header(message, "X-smssync-type")))
    if date_value is None:
        raise DecodeError("bad date header", str(_header(message, "X-smssync-date")))
    return message, type_value, date_value


def _address(message: Message) -> str:
    """The record's address: the exact one when smsbak kept it, else SBP's header."""
    exact = _header(message, "X-smsbak-address")
    if exact is not None:
        return _unpercent(exact)
    return _header(message, "X-smssync-address") or ""


# --- MMS ------------------------------------------------------------------------------
#
# An MMS email is ``multipart/mixed`` with one MIME part per MMS part, as SMS Backup+
# wrote it: text inline as UTF-8 quoted-printable, the SMIL layout left out, anything
# else a base64 attachment with its content type and file name. What the X-smssync
# headers cannot hold travels in smsbak's own headers, so that
# ``decode_mms(encode_mms(m).raw) == without_smil(m)``:
#
#   X-smsbak-date-ms    the exact date (X-smssync-date has whole seconds, as SBP wrote)
#   X-smsbak-msg-box    msg_box
#   X-smsbak-m-type     m_type when known (X-smssync-type then holds a default)
#   X-smsbak-sub-id     the SIM, when known
#   X-smsbak-subject    the MMS's own subject, when it has one (RFC 2047 words)
#   X-smsbak-addresses  every address with its kind in provider order: KIND:ADDRESS,...
#   X-smsbak-part       on each MIME part: kind=text|data|both|none and its columns
#
# Addresses and part columns are percent-encoded UTF-8, so they carry any text exactly
# (controls, separators, lone surrogates); whitespace inside those two headers is
# folding only and is dropped when reading. The multipart boundary starts with "=_",
# which neither base64 nor our quoted-printable (it writes "=" as "=3D") can produce.

INSERT_ADDRESS_TOKEN = "insert-address-token"
"""What Android stores as the From address of an MMS the user sent."""

SMIL_TYPE = "application/smil"
MMS_TYPE_SEND_REQ = 128
MMS_TYPE_RETRIEVE_CONF = 132
_MIME_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")
_QUOTABLE_NAME = re.compile(r"[ !#-\[\]-~]{1,60}")  # printable ASCII without " and \
_RFC2231_SAFE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~"
)
_PERCENT_SAFE = "+@/"
_FOLD_WIDTH = 60
_QP_WIDTH = 75  # characters before the soft line break "="
_QP_ESCAPE = re.compile(r"=([0-9A-Fa-f]{2})")
_PART_KINDS = ("text", "data", "both", "none")


def is_smil(part: MmsPart) -> bool:
    """The SMIL layout part, which SMS Backup+ left out of its emails and so do we."""
    return part.content_type.split(";", 1)[0].strip().lower() == SMIL_TYPE


def without_smil(mms: Mms) -> Mms:
    """``mms`` as its email carries it: without SMIL layout parts."""
    if not any(is_smil(part) for part in mms.parts):
        return mms
    return dataclasses.replace(mms, parts=tuple(p for p in mms.parts if not is_smil(p)))


def mms_message_id(mms: Mms) -> str:
    """Deterministic, from the fingerprint of the MMS without SMIL parts: the record
    decoded from the email gets the same Message-ID as the one it was encoded from."""
    return f"<{without_smil(mms).fingerprint[:32]}@{MESSAGE_ID_DOMAIN}>"


def mms_address(mms: Mms) -> str:
    """SMS Backup+'s X-smssync-address: the first address that is not insert-address-token."""
    return next((a for a, _ in mms.addresses if a != INSERT_ADDRESS_TOKEN), "")


def mms_message_type(mms: Mms) -> int:
    """``m_type``, or what Android stores when it is unknown: 132 received, 128 sent."""
    if mms.message_type is not None:
        return mms.message_type
    return MMS_TYPE_RETRIEVE_CONF if mms.box.is_incoming else MMS_TYPE_SEND_REQ


def mms_participants(mms: Mms, own_numbers: Iterable[str] = ()) -> list[str]:
    """The other people of the conversation, each once, in conversation-key order.

    Received group messages list the user's own number among the recipients; pass
    the phone's own numbers to leave it out, or sent and received messages of one
    group get different References and Subjects.
    """
    own = {conversation_key(number) for number in own_numbers}
    found: dict[str, str] = {}
    for address, _kind in mms.addresses:
        key = conversation_key(address)
        if address == INSERT_ADDRESS_TOKEN or not key or key in own:
            continue
        found.setdefault(key, address)
    return [found[key] for key in sorted(found)]


def mms_references(participants: Iterable[str]) -> str:
    """One Gmail thread per group; a one-to-one MMS joins the SMS thread of that person."""
    keys = sorted({conversation_key(address) for address in participants} - {""})
    if len(keys) == 1:
        return references_for(keys[0])
    return references_for("group:" + ",".join(keys) if keys else "")


def _percent(text: str) -> str:
    return quote(text, safe=_PERCENT_SAFE, encoding="utf-8", errors="surrogatepass")


def _unpercent(text: str) -> str:
    return unquote(text, encoding="utf-8", errors="surrogatepass")


def _fold(value: str) -> str:
    """Fold a value that has no whitespace of its own; readers drop all whitespace."""
    return "\r\n ".join(value[i : i + _FOLD_WIDTH] for i in range(0, len(value), _FOLD_WIDTH))


def _exact_header(text: str) -> str:
    """Free text that must come back exactly: plain when that is safe, else encoded-words."""
    if _is_plain(text) and strip_controls(text) == text:
        return text
    return encode_words(text)


def encode_addresses(addresses: Iterable[tuple[str, AddressKind]]) -> str:
    """``X-smsbak-addresses``: ``137:insert-address-token,151:+4917...`` folded."""
    return _fold(",".join(f"{int(kind)}:{_percent(address)}" for address, kind in addresses))


def decode_addresses(value: str) -> tuple[tuple[str, AddressKind], ...]:
    compact = re.sub(r"\s+", "", value)
    if not compact:
        return ()
    result: list[tuple[str, AddressKind]] = []
    for item in compact.split(","):
        kind, sep, address = item.partition(":")
        if not sep or not kind.isdigit() or int(kind) not in AddressKind._value2member_map_:
            raise DecodeError("bad addresses header", item[:40])
        result.append((_unpercent(address), AddressKind(int(kind))))
    return tuple(result)


def _encode_params(params: Iterable[tuple[str, str | None]]) -> str:
    return _fold(";".join(f"{key}={_percent(value)}" for key, value in params if value is not None))


def _decode_params(value: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in re.sub(r"\s+", "", value).split(";"):
        if not item:
            continue
        key, sep, encoded = item.partition("=")
        if not sep:
            raise DecodeError("bad part header", item[:40])
        result[key] = _unpercent(encoded)
    return result


def qp_encode(text: str) -> str:
    """UTF-8 quoted-printable that gives back exactly ``text``: LF is a line break, CR is
    ``=0D``, trailing blanks and a line-leading ``F`` or ``.`` are escaped (mbox and SMTP
    would touch them), lines stay within 76 characters."""
    lines: list[str] = []
    for logical in text.encode("utf-8", "replace").split(b"\n"):
        current = ""
        for index, byte in enumerate(logical):
            if byte in (0x20, 0x09) and index == len(logical) - 1:
                token = f"={byte:02X}"
            elif (33 <= byte <= 126 and byte != 0x3D) or byte in (0x20, 0x09):
                token = chr(byte)
            else:
                token = f"={byte:02X}"
            if len(current) + len(token) > _QP_WIDTH:
                lines.append(current + "=")
                current = ""
            if not current and token in ("F", "."):
                token = f"={byte:02X}"
            current += token
        lines.append(current)
    return "\r\n".join(lines)


def qp_decode(encoded: str) -> bytes:
    """Quoted-printable to bytes; a hard line break gives LF whether it was CRLF or LF."""
    out = bytearray()
    lines = re.split(r"\r?\n", encoded)
    for index, line in enumerate(lines):
        line = line.rstrip(" \t")
        soft = line.endswith("=")
        if soft:
            line = line[:-1]
        pos = 0
        for match in _QP_ESCAPE.finditer(line):
            out += line[pos : match.start()].encode("ascii", "surrogateescape")
            out.append(int(match.group(1), 16))
            pos = match.end()
        out += line[pos:].encode("ascii", "surrogateescape")
        if not soft and index < len(lines) - 1:
            out += b"\n"
    return bytes(out)


def _base64_lines(data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return "\r\n".join(encoded[i : i + _BODY_LINE] for i in range(0, len(encoded), _BODY_LINE))


def _quotable(name: str) -> bool:
    return bool(_QUOTABLE_NAME.fullmatch(name)) and name == name.strip() and "=?" not in name


def _rfc2231_param(key: str, value: str) -> str:
    """``filename*=utf-8''...``, split into ``filename*0*=`` sections when long."""
    escaped = [chr(b) if b in _RFC2231_SAFE else f"%{b:02X}" for b in value.encode("utf-8")]
    sections: list[str] = []
    current = ""
    for token in escaped:
        if len(current) + len(token) > _FOLD_WIDTH:
            sections.append(current)
            current = ""
        current += token
    sections.append(current)
    prefix = "utf-8''"
    if len(sections) == 1:
        return f"{key}*={prefix}{sections[0]}"
    return ";\r\n ".join(
        f"{key}*{i}*={prefix if i == 0 else ''}{section}" for i, section in enumerate(sections)
    )


def _mime_type(content_type: str, fallback: str) -> str:
    bare = content_type.split(";", 1)[0].strip()
    return bare if _MIME_TYPE.fullmatch(bare) else fallback


def _mms_mime_part(part: MmsPart) -> str:
    """One MIME body part, headers and encoded body, for one MMS part."""
    if part.text is not None:
        kind = "text" if part.data is None else "both"
    else:
        kind = "data" if part.data is not None else "none"
    meta = _encode_params(
        [
            ("kind", kind),
            ("ct", part.content_type),
            ("name", part.name),
            ("chset", part.charset),
            ("cid", part.content_id),
            ("cl", part.content_location),
            ("text", part.text if kind == "both" else None),
        ]
    )
    headers: list[tuple[str, str]]
    if kind == "text":
        mime_type = _mime_type(part.content_type, "text/plain")
        if not mime_type.lower().startswith("text/"):
            mime_type = "text/plain"
        headers = [
            ("Content-Type", f"{mime_type}; charset=utf-8"),
            ("Content-Transfer-Encoding", "quoted-printable"),
            ("Content-Disposition", "inline"),
        ]
        body = qp_encode(part.text or "")
    else:
        content_type = _mime_type(part.content_type, "application/octet-stream")
        disposition = "attachment"
        filename = strip_controls(part.name or part.content_location or "").strip()
        if filename and _quotable(filename):
            content_type += f'; name="{filename}"'
            disposition += f'; filename="{filename}"'
        elif filename:
            content_type += f';\r\n name="{encode_words(filename)}"'
            disposition += ";\r\n " + _rfc2231_param("filename", filename)
        headers = [
            ("Content-Type", content_type),
            ("Content-Transfer-Encoding", "base64"),
            ("Content-Disposition", disposition),
        ]
        body = _base64_lines(part.data or b"")
    headers.append(("X-smsbak-part", meta))
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return f"{head}\r\n{body}"


def encode_mms(
    mms: Mms,
    *,
    account: str,
    contact_names: Mapping[str, str],
    zone: tzinfo,
    backup_time: datetime,
    own_numbers: Iterable[str] = (),
) -> EncodedSms:
    """The email for an MMS: SMS Backup+'s layout, every participant visible, 7-bit CRLF.

    Received: From the sender (the FROM address), To the account and every other
    TO/CC recipient. Sent and every other box: From the account, To every TO/CC
    recipient, Bcc the BCC ones. ``own_numbers`` (the phone's own numbers, when
    known) are left out of To, Subject and References, so all messages of a group
    share one Gmail thread. SMIL layout parts are not written.
    """
    own = list(own_numbers)
    own_keys = {conversation_key(number) for number in own}
    participants = mms_participants(mms, own)

    def mailbox(address: str) -> str:
        return _mailbox(contact_names.get(address), f"{email_local_part(address)}@{UNKNOWN_DOMAIN}")

    def recipients(kinds: set[AddressKind], skip: set[str]) -> list[str]:
        seen = set(skip) | own_keys | {""}
        chosen: list[str] = []
        for address, kind in mms.addresses:
            key = conversation_key(address)
            if kind in kinds and address != INSERT_ADDRESS_TOKEN and key not in seen:
                seen.add(key)
                chosen.append(address)
        return chosen

    user = _mailbox(None, strip_controls(account).strip() or f"me@{UNKNOWN_DOMAIN}")
    to_kinds = {AddressKind.TO, AddressKind.CC}
    bcc: list[str] = []
    if mms.box.is_incoming:
        sender_address = next(
            (a for a, k in mms.addresses if k is AddressKind.FROM and a != INSERT_ADDRESS_TOKEN),
            mms_address(mms),
        )
        sender = mailbox(sender_address)
        others = recipients(to_kinds, {conversation_key(sender_address)})
        to = [user, *(mailbox(a) for a in others)]
    else:
        sender = user
        to_addresses = recipients(to_kinds, set())
        to = [mailbox(a) for a in to_addresses] or [mailbox("")]
        skip = {conversation_key(a) for a in to_addresses}
        bcc = [mailbox(a) for a in recipients({AddressKind.BCC}, skip)]
    names = [strip_controls(contact_names.get(a) or a) for a in participants]
    subject = f"SMS with {', '.join(names) or 'Unknown'}"
    message_id = mms_message_id(mms)
    boundary = "=_smsbak_" + message_id[1:25]

    address = mms_address(mms)
    headers: list[tuple[str, str]] = [("From", sender), ("To", ",\r\n ".join(to))]
    if bcc:
        headers.append(("Bcc", ",\r\n ".join(bcc)))
    headers += [
        ("Subject", header_text(subject)),
        ("Date", format_datetime(datetime.fromtimestamp(mms.date_ms // 1000, tz=zone))),
        ("Message-ID", message_id),
        ("References", mms_references(participants)),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/mixed; boundary="{boundary}"'),
        ("X-smssync-datatype", "MMS"),
    ]
    if address:
        headers.append(("X-smssync-address", header_text(address)))
    if mms.android_id is not None:
        headers.append(("X-smssync-id", str(mms.android_id)))
    headers.append(("X-smssync-type", str(mms_message_type(mms))))
    headers.append(("X-smssync-date", str(mms.date_ms // 1000)))
    if mms.thread_id is not None:
        headers.append(("X-smssync-thread", str(mms.thread_id)))
    if mms.read is not None:
        headers.append(("X-smssync-read", "1" if mms.read else "0"))
    headers.append(("X-smsbak-date-ms", str(mms.date_ms)))
    headers.append(("X-smsbak-msg-box", str(int(mms.box))))
    if mms.message_type is not None:
        headers.append(("X-smsbak-m-type", str(mms.message_type)))
    if mms.sub_id is not None:
        headers.append(("X-smsbak-sub-id", str(mms.sub_id)))
    if mms.subject is not None:
        headers.append(("X-smsbak-subject", _exact_header(mms.subject)))
    if mms.content_digest is not None:  # part of the identity: see Mms.fingerprint
        headers.append(("X-smsbak-content-digest", mms.content_digest))
    headers += [
        ("X-smsbak-addresses", encode_addresses(mms.addresses)),
        ("X-smssync-backup-time", _backup_time(backup_time)),
        ("X-smssync-version", SMS_BACKUP_PLUS_VERSION),
    ]
    parts = [_mms_mime_part(part) for part in mms.parts if not is_smil(part)]
    if not parts:  # a multipart needs a part; this one has no X-smsbak-part and is skipped
        parts = [
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
        ]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    return EncodedSms(raw=f"{head}\r\n{body}".encode("ascii"), message_id=message_id)


def decode_mms(raw: bytes) -> Mms:
    """An MMS email back into the record: smsbak's exactly (without SMIL parts), SMS
    Backup+'s as well as its headers and MIME tree allow.

    From SMS Backup+'s emails: the date is X-smssync-date seconds times 1000, m_type
    X-smssync-type, the box sent for m_type 128 and inbox otherwise, the address
    X-smssync-address as the FROM of a received message or the first TO of a sent one
    (FROM insert-address-token, further TO addresses from ``NUMBER@unknown.email``
    recipients). Inline ``text/*`` parts become text parts, everything else data parts
    with the file name as ``content_location`` (SMS Backup+ took it from ``cl``).
    Raises DecodeError with a reason, never another exception.
    """
    return _without_damage(_decode_mms, raw)


def _leaves(message: Message) -> list[Message]:
    if not message.is_multipart():
        return [message]
    return [part for part in message.walk() if not part.is_multipart()]


def _raw_payload(part: Message) -> str:
    payload = part.get_payload()
    if not isinstance(payload, str):
        raise DecodeError("damaged email", "part payload")
    return payload


def _decode_mms(raw: bytes) -> Mms:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    datatype = _header(message, "X-smssync-datatype")
    if datatype is None:
        raise DecodeError("no datatype header")
    if datatype.strip().upper() != "MMS":
        raise DecodeError(f"datatype {datatype.strip().upper()}")
    addresses_header = _header(message, "X-smsbak-addresses")
    if addresses_header is not None:
        mms = _decode_own_mms(message, addresses_header)
    else:
        mms = _decode_foreign_mms(message)
    read = _optional_int(message, "X-smssync-read")
    return dataclasses.replace(
        mms,
        read=None if read not in (0, 1) else bool(read),
        thread_id=_optional_int(message, "X-smssync-thread"),
        android_id=_optional_int(message, "X-smssync-id"),
    )


def _decode_own_mms(message: Message, addresses: str) -> Mms:
    date_ms = _optional_int(message, "X-smsbak-date-ms")
    if date_ms is None:
        seconds = _optional_int(message, "X-smssync-date")
        if seconds is None:
            raise DecodeError("bad date header", str(_header(message, "X-smsbak-date-ms")))
        date_ms = seconds * 1000
    box = _optional_int(message, "X-smsbak-msg-box")
    if box is None or box not in Box._value2member_map_:
        raise DecodeError("bad msg_box header", str(_header(message, "X-smsbak-msg-box")))
    parts: list[MmsPart] = []
    for leaf in _leaves(message):
        meta_header = leaf.get("X-smsbak-part")
        if meta_header is None:
            continue
        meta = _decode_params(str(meta_header))
        kind = meta.get("kind")
        if kind not in _PART_KINDS or "ct" not in meta:
            raise DecodeError("bad part header", str(kind))
        text: str | None = None
        data: bytes | None = None
        if kind == "text":
            text = qp_decode(_raw_payload(leaf)).decode("utf-8")
        elif kind in ("data", "both"):
            data = base64.b64decode("".join(_raw_payload(leaf).split()), validate=True)
            text = meta.get("text") if kind == "both" else None
            if text is None and kind == "both":
                raise DecodeError("bad part header", "text missing")
        parts.append(
            MmsPart(
                content_type=meta["ct"],
                name=meta.get("name"),
                text=text,
                data=data,
                charset=meta.get("chset"),
                content_id=meta.get("cid"),
                content_location=meta.get("cl"),
            )
        )
    return Mms(
        date_ms=date_ms,
        box=Box(box),
        addresses=decode_addresses(addresses),
        parts=tuple(parts),
        message_type=_optional_int(message, "X-smsbak-m-type"),
        subject=_header(message, "X-smsbak-subject"),
        sub_id=_optional_int(message, "X-smsbak-sub-id"),
        content_digest=_content_digest(message),
    )


def _content_digest(message: Message) -> str | None:
    value = _header(message, "X-smsbak-content-digest")
    if value is None:
        return None
    if not re.fullmatch(r"[0-9a-f]{1,64}", value.strip()):
        raise DecodeError("bad content digest header", value[:40])
    return value.strip()


def _decode_foreign_mms(message: Message) -> Mms:
    seconds = _optional_int(message, "X-smssync-date")
    if seconds is None:
        raise DecodeError("bad date header", str(_header(message, "X-smssync-date")))
    message_type = _optional_int(message, "X-smssync-type")
    box = Box.SENT if message_type == MMS_TYPE_SEND_REQ else Box.INBOX
    address = strip_controls(_header(message, "X-smssync-address") or "")
    addresses: list[tuple[str, AddressKind]]
    if box is Box.INBOX:
        addresses = [(address, AddressKind.FROM)]
    else:
        addresses = [(INSERT_ADDRESS_TOKEN, AddressKind.FROM)]
        seen: set[str] = set()
        if address:
            addresses.append((address, AddressKind.TO))
            seen.add(email_local_part(address))
        values = [str(value) for value in message.get_all("To", [])]
        for _name, addr_spec in getaddresses(values):
            local, _, domain = addr_spec.rpartition("@")
            if domain.lower() != UNKNOWN_DOMAIN or local in ("", "unknown.number", *seen):
                continue
            seen.add(local)
            addresses.append((local, AddressKind.TO))
    parts = [part for part in map(_foreign_part, _leaves(message)) if part is not None]
    return Mms(
        date_ms=seconds * 1000,
        box=box,
        addresses=tuple(addresses),
        parts=tuple(parts),
        message_type=message_type,
    )


def _foreign_part(leaf: Message) -> MmsPart | None:
    content_type = leaf.get_content_type()
    if content_type == SMIL_TYPE:
        return None
    disposition = str(leaf.get("Content-Disposition") or "").split(";", 1)[0].strip().lower()
    if leaf.get_content_maintype() == "text" and disposition != "attachment":
        encoding = str(leaf.get("Content-Transfer-Encoding") or "").strip().lower()
        if encoding == "quoted-printable":
            data = qp_decode(_raw_payload(leaf))
        else:
            payload = leaf.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
        charset = leaf.get_content_charset() or "utf-8"
        try:
            text = data.decode(charset)
        except LookupError as error:
            raise DecodeError("unknown charset", charset) from error
        except UnicodeDecodeError as error:
            raise DecodeError("body not valid in its charset", charset) from error
        return MmsPart(content_type=content_type, text=text.replace("\r\n", "\n"))
    filename = leaf.get_filename()
    if filename is not None and "=?" in filename:
        filename = decode_header_value(filename)
    payload = leaf.get_payload(decode=True)
    return MmsPart(
        content_type=content_type,
        data=payload if isinstance(payload, bytes) else b"",
        content_location=filename or None,
    )
