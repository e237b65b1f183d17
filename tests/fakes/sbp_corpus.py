"""Emails as SMS Backup+ 1.5.11 wrote them (shared/reference/sms-backup-plus-format.md).

Used to seed the Gmail emulator with a legacy archive: millisecond dates,
translated subjects, optional headers missing, quoted-printable or base64
bodies, and the mail that is not an SMS record at all.
"""

from __future__ import annotations

import base64
import hashlib
import quopri
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime

from smsbak.model import Box, Sms

SUBJECTS = {"en": "SMS with {}", "de": "SMS mit {}", "fr": "SMS avec {}"}
INSTALL_REF = "k3v0q8x2m4n6p1r5t7w9y0ab"  # 24 characters of [0-9a-y], once per install


def _message_id(date_ms: int, address: str, box: int) -> str:
    digest = hashlib.md5(f"{date_ms}{address}{box}".encode()).hexdigest()
    return f"<{digest}@sms-backup-plus.local>"


def _encoded_body(text: str, encoding: str, charset: str = "utf-8") -> tuple[str, bytes]:
    data = text.encode(charset)
    if encoding == "base64":
        return "base64", base64.encodebytes(data).replace(b"\n", b"\r\n")
    return "quoted-printable", quopri.encodestring(data).replace(b"\n", b"\r\n")


def sms_email(
    sms: Sms,
    *,
    name: str | None = None,
    account: str = "user@example.com",
    language: str = "de",
    encoding: str = "quoted-printable",
    optional_headers: bool = True,
    datatype: str | None = "SMS",
    backup_time: datetime | None = None,
) -> bytes:
    """One SMS as SMS Backup+ uploaded it by IMAP."""
    other = f"{sms.address}@unknown.email" if sms.address else "unknown.number@unknown.email"
    other_mailbox = f"{Header(name, 'utf-8').encode()} <{other}>" if name else other
    sender, recipient = (
        (other_mailbox, account) if sms.box is Box.INBOX else (account, other_mailbox)
    )
    subject = SUBJECTS[language].format(name or sms.address or "Unknown")
    when = datetime.fromtimestamp(sms.date_ms / 1000, UTC)
    # QP turns each line break into a CRLF hard break; base64 carries the bytes as they are.
    cte, body = _encoded_body(sms.body, encoding)
    headers = [
        ("From", sender),
        ("To", recipient),
        ("Subject", Header(subject, "utf-8").encode()),
        ("Date", format_datetime(when)),
        ("Message-ID", _message_id(sms.date_ms, sms.address, int(sms.box))),
        ("References", f"<{INSTALL_REF}.{sms.address}@sms-backup-plus.local>"),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", cte),
    ]
    if datatype is not None:
        headers.append(("X-smssync-datatype", datatype))
    headers += [
        ("X-smssync-address", sms.address),
        ("X-smssync-type", str(int(sms.box))),
        ("X-smssync-date", str(sms.date_ms)),
    ]
    if optional_headers:
        if sms.android_id is not None:
            headers.append(("X-smssync-id", str(sms.android_id)))
        if sms.thread_id is not None:
            headers.append(("X-smssync-thread", str(sms.thread_id)))
        if sms.read is not None:
            headers.append(("X-smssync-read", "1" if sms.read else "0"))
        headers += [("X-smssync-status", "-1"), ("X-smssync-protocol", "0")]
    stamp = backup_time or datetime(2018, 5, 1, 12, 0, tzinfo=UTC)
    headers += [
        ("X-smssync-backup-time", stamp.strftime("%d %b %Y %H:%M:%S GMT")),
        ("X-smssync-version", "1576"),
    ]
    head = "".join(f"{key}: {value}\r\n" for key, value in headers).encode("utf-8")
    return head + b"\r\n" + body


def mms_email(date_s: int, address: str) -> bytes:
    """An MMS record (multipart/mixed, date in seconds): not an SMS."""
    return (
        f"From: {address}@unknown.email\r\nTo: user@example.com\r\nSubject: SMS mit {address}\r\n"
        f"Message-ID: {_message_id(date_s * 1000, address, 132)}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=xyz\r\n"
        f"X-smssync-datatype: MMS\r\nX-smssync-address: {address}\r\n"
        f"X-smssync-type: 132\r\nX-smssync-date: {date_s}\r\nX-smssync-version: 1576\r\n\r\n"
        "--xyz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBild\r\n--xyz--\r\n"
    ).encode()


def call_email(date_ms: int, number: str) -> bytes:
    """A call-log record: not an SMS."""
    return (
        f"From: {number}@unknown.email\r\nTo: user@example.com\r\nSubject: Anruf mit {number}\r\n"
        f"Message-ID: {_message_id(date_ms, number, 1)}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"X-smssync-datatype: CALLLOG\r\nX-smssync-address: {number}\r\n"
        f"X-smssync-type: 1\r\nX-smssync-date: {date_ms}\r\nX-smssync-duration: 67\r\n\r\n"
        f"67s (00:01:07)\r\n{number} (eingehender Anruf)\r\n"
    ).encode()


def plain_email(subject: str = "Hello") -> bytes:
    """Ordinary mail someone filed under the label."""
    return (
        f"From: friend@example.org\r\nTo: user@example.com\r\nSubject: {subject}\r\n"
        "Message-ID: <plain-1@example.org>\r\nDate: Mon, 1 Jan 2018 10:00:00 +0000\r\n\r\n"
        "Not an SMS.\r\n"
    ).encode()
