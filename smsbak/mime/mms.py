"""MMS records <-> emails in SMS Backup+'s layout, exactly for smsbak's own.

An MMS email is ``multipart/mixed`` with one MIME part per MMS part, as SMS Backup+
wrote it: text inline as UTF-8 quoted-printable, the SMIL layout left out, anything
else a base64 attachment with its content type and file name. What the X-smssync
headers cannot hold travels in smsbak's own headers, so that
``decode_mms(encode_mms(m).raw) == without_smil(m)``:

  X-smsbak-date-ms    the exact date (X-smssync-date has whole seconds, as SBP wrote)
  X-smsbak-msg-box    msg_box
  X-smsbak-m-type     m_type when known (X-smssync-type then holds a default)
  X-smsbak-sub-id     the SIM, when known
  X-smsbak-subject    the MMS's own subject, when it has one (RFC 2047 words)
  X-smsbak-addresses  every address with its kind in provider order: KIND:ADDRESS,...
  X-smsbak-part       on each MIME part: kind=text|data|both|none and its columns

Addresses and part columns are percent-encoded UTF-8, so they carry any text exactly
(controls, separators, lone surrogates); whitespace inside those two headers is
folding only and is dropped when reading. The multipart boundary starts with "=_",
which neither base64 nor our quoted-printable (it writes "=" as "=3D") can produce.
"""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from email.message import Message
from email.utils import format_datetime, getaddresses

from smsbak.mime.encoding import (
    base64_lines,
    decode_header_value,
    encode_words,
    exact_header_text,
    fold_bare,
    header_text,
    percent_decode,
    percent_encode,
    qp_decode,
    qp_encode,
    quotable_name,
    rfc2231_param,
    strip_controls,
)
from smsbak.mime.envelope import (
    MESSAGE_ID_DOMAIN,
    SMS_BACKUP_PLUS_VERSION,
    UNKNOWN_DOMAIN,
    DecodeError,
    EncodedEmail,
    backup_time_value,
    conversation_key,
    decode_text,
    decoded_header,
    email_local_part,
    format_mailbox,
    int_header,
    references_for,
    without_damage,
)
from smsbak.model import AddressKind, Box, Mms, MmsPart

INSERT_ADDRESS_TOKEN = "insert-address-token"
"""What Android stores as the From address of an MMS the user sent."""
SMIL_TYPE = "application/smil"
MMS_TYPE_SEND_REQ = 128
MMS_TYPE_RETRIEVE_CONF = 132
_MIME_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")
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


def encode_addresses(addresses: Iterable[tuple[str, AddressKind]]) -> str:
    """``X-smsbak-addresses``: ``137:insert-address-token,151:+4917...`` folded."""
    return fold_bare(
        ",".join(f"{int(kind)}:{percent_encode(address)}" for address, kind in addresses)
    )


def decode_addresses(value: str) -> tuple[tuple[str, AddressKind], ...]:
    compact = re.sub(r"\s+", "", value)
    if not compact:
        return ()
    result: list[tuple[str, AddressKind]] = []
    for item in compact.split(","):
        kind, sep, address = item.partition(":")
        if not sep or not kind.isdigit() or int(kind) not in AddressKind._value2member_map_:
            raise DecodeError("bad addresses header", item[:40])
        result.append((percent_decode(address), AddressKind(int(kind))))
    return tuple(result)


def _encode_params(params: Iterable[tuple[str, str | None]]) -> str:
    return fold_bare(
        ";".join(f"{key}={percent_encode(value)}" for key, value in params if value is not None)
    )


def _decode_params(value: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in re.sub(r"\s+", "", value).split(";"):
        if not item:
            continue
        key, sep, encoded = item.partition("=")
        if not sep:
            raise DecodeError("bad part header", item[:40])
        result[key] = percent_decode(encoded)
    return result


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
        if filename and quotable_name(filename):
            content_type += f'; name="{filename}"'
            disposition += f'; filename="{filename}"'
        elif filename:
            content_type += f';\r\n name="{encode_words(filename)}"'
            disposition += ";\r\n " + rfc2231_param("filename", filename)
        headers = [
            ("Content-Type", content_type),
            ("Content-Transfer-Encoding", "base64"),
            ("Content-Disposition", disposition),
        ]
        body = base64_lines(part.data or b"")
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
) -> EncodedEmail:
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
        return format_mailbox(
            contact_names.get(address), f"{email_local_part(address)}@{UNKNOWN_DOMAIN}"
        )

    def recipients(kinds: set[AddressKind], skip: set[str]) -> list[str]:
        seen = set(skip) | own_keys | {""}
        chosen: list[str] = []
        for address, kind in mms.addresses:
            key = conversation_key(address)
            if kind in kinds and address != INSERT_ADDRESS_TOKEN and key not in seen:
                seen.add(key)
                chosen.append(address)
        return chosen

    user = format_mailbox(None, strip_controls(account).strip() or f"me@{UNKNOWN_DOMAIN}")
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
        headers.append(("X-smsbak-subject", exact_header_text(mms.subject)))
    if mms.content_digest is not None:  # part of the identity: see Mms.fingerprint
        headers.append(("X-smsbak-content-digest", mms.content_digest))
    headers += [
        ("X-smsbak-addresses", encode_addresses(mms.addresses)),
        ("X-smssync-backup-time", backup_time_value(backup_time)),
        ("X-smssync-version", SMS_BACKUP_PLUS_VERSION),
    ]
    parts = [_mms_mime_part(part) for part in mms.parts if not is_smil(part)]
    if not parts:  # a multipart needs a part; this one has no X-smsbak-part and is skipped
        parts = [
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
        ]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    return EncodedEmail(raw=f"{head}\r\n{body}".encode("ascii"), message_id=message_id)


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
    return without_damage(_decode_mms, raw)


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
    datatype = decoded_header(message, "X-smssync-datatype")
    if datatype is None:
        raise DecodeError("no datatype header")
    if datatype.strip().upper() != "MMS":
        raise DecodeError(f"datatype {datatype.strip().upper()}")
    addresses_header = decoded_header(message, "X-smsbak-addresses")
    if addresses_header is not None:
        mms = _decode_own_mms(message, addresses_header)
    else:
        mms = _decode_foreign_mms(message)
    read = int_header(message, "X-smssync-read")
    return dataclasses.replace(
        mms,
        read=None if read not in (0, 1) else bool(read),
        thread_id=int_header(message, "X-smssync-thread"),
        android_id=int_header(message, "X-smssync-id"),
    )


def _decode_own_mms(message: Message, addresses: str) -> Mms:
    date_ms = int_header(message, "X-smsbak-date-ms")
    if date_ms is None:
        seconds = int_header(message, "X-smssync-date")
        if seconds is None:
            raise DecodeError("bad date header", str(decoded_header(message, "X-smsbak-date-ms")))
        date_ms = seconds * 1000
    box = int_header(message, "X-smsbak-msg-box")
    if box is None or box not in Box._value2member_map_:
        raise DecodeError("bad msg_box header", str(decoded_header(message, "X-smsbak-msg-box")))
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
        message_type=int_header(message, "X-smsbak-m-type"),
        subject=decoded_header(message, "X-smsbak-subject"),
        sub_id=int_header(message, "X-smsbak-sub-id"),
        content_digest=_content_digest(message),
    )


def _content_digest(message: Message) -> str | None:
    value = decoded_header(message, "X-smsbak-content-digest")
    if value is None:
        return None
    if not re.fullmatch(r"[0-9a-f]{1,64}", value.strip()):
        raise DecodeError("bad content digest header", value[:40])
    return value.strip()


def _decode_foreign_mms(message: Message) -> Mms:
    seconds = int_header(message, "X-smssync-date")
    if seconds is None:
        raise DecodeError("bad date header", str(decoded_header(message, "X-smssync-date")))
    message_type = int_header(message, "X-smssync-type")
    box = Box.SENT if message_type == MMS_TYPE_SEND_REQ else Box.INBOX
    address = strip_controls(decoded_header(message, "X-smssync-address") or "")
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
        text = decode_text(data, leaf.get_content_charset() or "utf-8")
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
