"""The codec: SMS Backup+ headers, exact round trips, and no header injection."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsbak.mime import (
    DecodeError,
    conversation_key,
    decode_sms,
    encode_sms,
    references_for,
    strip_controls,
)
from smsbak.model import Box, Sms

BERLIN = ZoneInfo("Europe/Berlin")
BACKUP_TIME = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
ACCOUNT = "me@example.com"


def encode(sms: Sms, name: str | None = None, zone: ZoneInfo = BERLIN) -> bytes:
    return encode_sms(
        sms, account=ACCOUNT, contact_name=name, zone=zone, backup_time=BACKUP_TIME
    ).raw


def parsed(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def sample(**changes: object) -> Sms:
    fields: dict[str, object] = {
        "address": "+4917012345678",
        "body": "Hallo 👋",
        "date_ms": 1_764_000_000_000,
        "box": Box.INBOX,
        "read": True,
        "thread_id": 7,
        "android_id": 42,
    }
    fields.update(changes)
    return Sms(**fields)  # type: ignore[arg-type]


def test_sms_backup_plus_headers_for_a_received_message() -> None:
    raw = encode(sample(), name="Anna Müller")
    message = parsed(raw)
    assert message["X-smssync-datatype"] == "SMS"
    assert message["X-smssync-address"] == "+4917012345678"
    assert message["X-smssync-id"] == "42"
    assert message["X-smssync-type"] == "1"
    assert message["X-smssync-date"] == "1764000000000"
    assert message["X-smssync-thread"] == "7"
    assert message["X-smssync-read"] == "1"
    assert message["X-smssync-backup-time"] == "26 Nov 2026 12:00:00 GMT"
    assert message["X-smssync-version"] == "1576"
    assert message["Subject"] == "SMS with Anna Müller"
    assert message["From"].addresses[0].addr_spec == "+4917012345678@unknown.email"
    assert message["From"].addresses[0].display_name == "Anna Müller"
    assert message["To"].addresses[0].addr_spec == ACCOUNT
    # 2025-11-24 16:00:00 UTC is 17:00 in Berlin (CET, +0100).
    assert message["Date"] == "Mon, 24 Nov 2025 17:00:00 +0100"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content() == "Hallo 👋"


def test_sent_message_is_from_the_user_and_subject_falls_back_to_the_number() -> None:
    message = parsed(encode(sample(box=Box.SENT, read=None)))
    assert message["From"].addresses[0].addr_spec == ACCOUNT
    assert message["To"].addresses[0].addr_spec == "+4917012345678@unknown.email"
    assert message["Subject"] == "SMS with +4917012345678"
    assert message["X-smssync-type"] == "2"
    assert "X-smssync-read" not in message


def test_email_is_seven_bit_with_crlf_lines() -> None:
    raw = encode(sample(body="日本語 עברית\r\nFrom the start\n" * 200), name="名前")
    assert all(byte < 128 for byte in raw)
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_message_id_is_deterministic_and_includes_the_body() -> None:
    one = parsed(encode(sample(body="first")))["Message-ID"]
    same = parsed(encode(sample(body="first", android_id=999, thread_id=1)))["Message-ID"]
    other = parsed(encode(sample(body="second")))["Message-ID"]
    assert one == same
    assert one != other


def test_references_depend_only_on_the_conversation() -> None:
    assert references_for("+49 170 1234-5678") == references_for("+4917012345678")
    assert references_for("AMAZON") == references_for("amazon")
    assert references_for("+4917012345678") != references_for("+4917012345679")
    assert conversation_key("(0170) 123") == "0170123"


def test_control_characters_cannot_inject_headers() -> None:
    evil = "x\r\nBcc: victim@example.com\r\n\r\nbody"
    raw = encode(sample(address=evil, body=evil), name="Eve\nX-Injected: 1")
    message = parsed(raw)
    assert "Bcc" not in message
    assert "X-Injected" not in message
    assert message["X-smssync-address"] == strip_controls(evil)
    assert decode_sms(raw).body == evil


@pytest.mark.parametrize(
    "body",
    [
        "",
        "From me to you\nFrom here",
        "Content-Type: text/html\r\n\r\n<b>not a header</b>",
        "line\rwith\rCR only",
        "trailing spaces   \n  and tabs\t",
        "=?utf-8?b?SGk=?= looks encoded",
        "x" * 5000,
        "🧑‍🤝‍🧑 𝕏 \U0010fffd",
    ],
)
def test_tricky_bodies_round_trip(body: str) -> None:
    sms = sample(body=body)
    assert decode_sms(encode(sms)) == sms


def test_decoder_refuses_non_sms_mail_by_reason() -> None:
    with pytest.raises(DecodeError) as no_type:
        decode_sms(b"Subject: hello\r\n\r\nhi\r\n")
    assert no_type.value.reason == "no datatype header"
    with pytest.raises(DecodeError) as calls:
        decode_sms(b"X-smssync-datatype: CALLLOG\r\n\r\nhi\r\n")
    assert calls.value.reason == "datatype CALLLOG"


def test_decoder_reads_sms_backup_plus_quoted_printable() -> None:
    raw = (
        b"Subject: SMS mit Anna\r\n"
        b"X-smssync-datatype: sms\r\n"
        b"X-smssync-address: +4917012345678\r\n"
        b"X-smssync-type: 2\r\n"
        b"X-smssync-date: 1264000000123\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n"
        b"Gr=C3=BC=C3=9Fe\r\nzweite Zeile=\r\n weiter\r\n"
    )
    sms = decode_sms(raw)
    assert sms == Sms(
        address="+4917012345678",
        body="Grüße\nzweite Zeile weiter\n",
        date_ms=1264000000123,
        box=Box.SENT,
    )


header_safe_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=80
)
records = st.builds(
    Sms,
    # Any text, controls and line separators included: they are stripped from
    # X-smssync-address but kept exactly in X-smsbak-address.
    address=st.text(st.characters(blacklist_categories=("Cs",)), max_size=80),
    body=st.text(st.characters(blacklist_categories=("Cs",)), max_size=3000),
    date_ms=st.integers(min_value=0, max_value=4_102_444_800_000),
    box=st.sampled_from(Box),
    read=st.none() | st.booleans(),
    thread_id=st.none() | st.integers(min_value=0, max_value=2**62),
    android_id=st.none() | st.integers(min_value=0, max_value=2**62),
    sub_id=st.none() | st.integers(min_value=-1, max_value=2**31),
    date_sent_ms=st.none() | st.integers(min_value=0, max_value=4_102_444_800_000),
    status=st.none() | st.sampled_from([-1, 0, 32, 64]),
    service_center=st.none() | header_safe_text,
)


@settings(max_examples=300, deadline=None)
@given(sms=records, name=st.none() | st.text(max_size=60))
def test_decode_inverts_encode(sms: Sms, name: str | None) -> None:
    raw = encode(sms, name=name)
    assert all(byte < 128 for byte in raw)
    assert decode_sms(raw) == sms
