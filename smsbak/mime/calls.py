"""Call-log entries <-> SMS Backup+ emails (label "Call log"). Pure functions, no I/O.

The body is SMS Backup+'s two human lines; the record travels in the headers,
the SIM in smsbak's own ``X-smsbak-sim-id`` (SMS Backup+ kept none for calls).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from smsbak.mime.encoding import percent_decode, percent_encode, strip_controls
from smsbak.mime.envelope import (
    EncodedEmail,
    build_email,
    decoded_header,
    int_header,
    record_address,
    record_head,
    without_damage,
)
from smsbak.model import Call, CallType

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
) -> EncodedEmail:
    """The email SMS Backup+ wrote for a call-log entry (label "Call log")."""
    record = [
        ("X-smssync-type", str(int(call.type))),
        ("X-smssync-date", str(call.date_ms)),
        ("X-smssync-duration", str(call.duration_s)),
    ]
    if call.sim_id is not None:  # smsbak's own: SBP kept no SIM for calls
        record.append(("X-smsbak-sim-id", percent_encode(call.sim_id)))
    return build_email(
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


def decode_call(raw: bytes) -> Call:
    """A call-log email (smsbak's or SMS Backup+'s) back into the record, by its headers."""
    return without_damage(_decode_call, raw)


def _decode_call(raw: bytes) -> Call:
    message, type_value, date_ms = record_head(raw, "CALLLOG", CallType._value2member_map_)
    sim_id = decoded_header(message, "X-smsbak-sim-id")
    return Call(
        number=record_address(message),
        date_ms=date_ms,
        duration_s=max(0, int_header(message, "X-smssync-duration") or 0),
        type=CallType(type_value),
        sim_id=None if sim_id is None else percent_decode(sim_id),
    )
