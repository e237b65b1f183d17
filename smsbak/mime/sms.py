"""SMS records <-> SMS Backup+ emails (label "SMS"). Pure functions, no I/O.

SMS Backup+ restores from its ``X-smssync-*`` headers, so those carry the
record; the body is the message text as base64 UTF-8, so no byte of it (CR, LF,
``From ``, text that looks like headers) can change the email's structure, and
decoding gives back exactly what was encoded.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from email.message import Message

from smsbak.mime.encoding import header_text, strip_controls
from smsbak.mime.envelope import (
    EncodedEmail,
    build_email,
    decode_text,
    decoded_header,
    int_header,
    record_address,
    record_head,
    without_damage,
)
from smsbak.model import Box, Sms


def encode_sms(
    sms: Sms,
    *,
    account: str,
    contact_name: str | None,
    zone: tzinfo,
    backup_time: datetime,
) -> EncodedEmail:
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
    return build_email(
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


def _text_body(message: Message) -> str:
    part: Message | None = message
    if message.is_multipart():
        part = next((p for p in message.walk() if p.get_content_type() == "text/plain"), None)
    if part is None:
        return ""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    text = decode_text(data, part.get_content_charset() or "utf-8")
    if (part.get("Content-Transfer-Encoding") or "").strip().lower() != "base64":
        # Line breaks of a text body travel as CRLF; the phone stored them as LF.
        text = text.replace("\r\n", "\n")
    return text


def decode_sms(raw: bytes) -> Sms:
    """Turn an SMS email (smsbak's or SMS Backup+'s) back into the record.

    Only the ``X-smssync-*`` headers are trusted: the Subject is translated
    into the phone's language and must never be parsed. Any email that cannot
    be read raises DecodeError with a reason, never another exception: one
    damaged email must not stop a restore.
    """
    return without_damage(_decode_sms, raw)


def _decode_sms(raw: bytes) -> Sms:
    message, type_value, date_ms = record_head(raw, "SMS", Box._value2member_map_)
    read = int_header(message, "X-smssync-read")
    return Sms(
        address=record_address(message),
        body=_text_body(message),
        date_ms=date_ms,
        box=Box(type_value),
        read=None if read not in (0, 1) else bool(read),
        thread_id=int_header(message, "X-smssync-thread"),
        android_id=int_header(message, "X-smssync-id"),
        sub_id=int_header(message, "X-smsbak-sub-id"),
        date_sent_ms=int_header(message, "X-smsbak-date-sent"),
        status=int_header(message, "X-smssync-status"),
        service_center=decoded_header(message, "X-smssync-service_center"),
    )
