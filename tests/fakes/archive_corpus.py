"""Archive files written the way the two apps write them (not the way smsbak does).

SMS Backup & Restore: characters outside the BMP as two UTF-16 surrogate references
(``&#55357;&#56832;``), ``null`` for absent values, ``readable_date`` and
``contact_name`` for people, MMS dates in ms, participants joined with ``~``, parts
base64. SMS Import / Export: ``messages.ndjson`` with string values (MMS ``date`` in
seconds, address objects, part rows with ``_data``) and then the ``data/`` files;
U+2028 left raw as org.json does. The corpus holds the bodies that break naive
readers, group MMS with pictures, and calls.
"""

from __future__ import annotations

import base64
import json
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from smsbak.model import AddressKind, Box, Call, CallType, Mms, MmsPart, Sms

TRICKY_BODIES = [
    "plain ascii",
    "emoji \U0001f600 and \U0001f61c twice",
    "accents: éàü ß Ωμέγα Ж",
    "markup <b>&amp;</b> \"quotes\" 'single'",
    "line one\nline two\r\nline three\ttab",
    "separator \u2028 and \u2029 inside",
    "  leading and trailing spaces  ",
    "a flag \U0001f1e9\U0001f1ea and a family \U0001f468\u200d\U0001f469\u200d\U0001f467",
    "",
    "x" * 2000,
]

# A 1x1 PNG and a tiny GIF: real image bytes, with every byte value nearby.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
SMIL = '<smil><body><par><img src="image.png"/></par></smil>'


def png(width: int, height: int, rgb: bytes = b"\x20\x80\xe0") -> bytes:
    """A real PNG of one colour at the given size, for tests and benchmarks that need a
    picture whose pixel size a browser reports."""
    raw = b"".join(b"\x00" + rgb * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


NAMES = {"+15550001": "Alice Ämmer", "+15550002": "Bob & Co", "+15550003": "Chloé"}
OWN = "+15559999"


def sms_records(count: int = len(TRICKY_BODIES) * 2) -> list[Sms]:
    addresses = list(NAMES)
    return [
        Sms(
            address=addresses[n % len(addresses)],
            body=TRICKY_BODIES[n % len(TRICKY_BODIES)],
            date_ms=1_700_000_000_123 + n * 60_000,
            box=Box.INBOX if n % 3 else Box.SENT,
            read=n % 4 != 0,
        )
        for n in range(count)
    ]


def mms_records(count: int = 4) -> list[Mms]:
    """Group MMS, received and sent, each with a SMIL layout, a picture and a text."""
    records = []
    for n in range(count):
        incoming = n % 2 == 0
        others = ["+15550001", "+15550002", "+15550003"][: 2 + n % 2]
        if incoming:
            addresses = [(others[0], AddressKind.FROM), (OWN, AddressKind.TO)]
            addresses += [(a, AddressKind.TO) for a in others[1:]]
        else:
            addresses = [(OWN, AddressKind.FROM)] + [(a, AddressKind.TO) for a in others]
        picture = PNG if n % 2 == 0 else GIF + bytes(range(256)) * (n + 1)
        records.append(
            Mms(
                date_ms=1_700_100_000_000 + n * 3_600_000,  # whole seconds: provider keeps s
                box=Box.INBOX if incoming else Box.SENT,
                addresses=tuple(addresses),
                parts=(
                    MmsPart("application/smil", name="smil.xml", text=SMIL, charset="106"),
                    MmsPart(
                        "image/png" if n % 2 == 0 else "image/gif",
                        name=f"image{n}.{'png' if n % 2 == 0 else 'gif'}",
                        data=picture,
                    ),
                    MmsPart(
                        "text/plain", name="text.txt", text=f"group {n} \U0001f389", charset="106"
                    ),
                ),
                read=True,
                message_type=132 if incoming else 128,
            )
        )
    return records


def call_records(count: int = 8) -> list[Call]:
    addresses = [*NAMES, ""]
    return [
        Call(
            number=addresses[n % len(addresses)],
            date_ms=1_700_200_000_000 + n * 120_000,
            duration_s=0 if n % 3 == 2 else 30 + n,
            type=[CallType.INCOMING, CallType.OUTGOING, CallType.MISSED][n % 3],
        )
        for n in range(count)
    ]


# --- SMS Backup & Restore --------------------------------------------------------------


def sbr_text(text: str) -> str:
    """An attribute value as SyncTech writes it: astral characters as surrogate refs."""
    out = []
    for char in text:
        code = ord(char)
        if char == "&":
            out.append("&amp;")
        elif char == "<":
            out.append("&lt;")
        elif char == ">":
            out.append("&gt;")
        elif char == '"':
            out.append("&quot;")
        elif char in "\n\r\t" or code in (0x2028, 0x2029):
            out.append(f"&#{code};")
        elif code > 0xFFFF:
            high = 0xD800 + ((code - 0x10000) >> 10)
            low = 0xDC00 + ((code - 0x10000) & 0x3FF)
            out.append(f"&#{high};&#{low};")
        else:
            out.append(char)
    return "".join(out)


def sbr_sms(sms: Sms) -> str:
    name = NAMES.get(sms.address, "(Unknown)")
    return (
        f'  <sms protocol="0" address="{sbr_text(sms.address)}" date="{sms.date_ms}"'
        f' type="{int(sms.box)}" subject="null" body="{sbr_text(sms.body)}" toa="null"'
        f' sc_toa="null" service_center="null" read="{1 if sms.read else 0}" status="-1"'
        f' locked="0" date_sent="0" sub_id="-1" readable_date="whatever, 3 o\'clock"'
        f' contact_name="{sbr_text(name)}" />\n'
    )


def sbr_mms(mms: Mms) -> str:
    participants = [a for a, _ in mms.addresses if a != OWN]
    names = ", ".join(NAMES.get(a, "(Unknown)") for a in participants)
    lines = [
        f'  <mms date="{mms.date_ms}" ct_t="application/vnd.wap.multipart.related"'
        f' msg_box="{int(mms.box)}" address="{"~".join(participants)}" sub="null"'
        f' sub_cs="null" read="1" m_type="{mms.message_type}" sub_id="-1"'
        f' readable_date="Nov 16, 2023" contact_name="{sbr_text(names)}">\n',
        "    <parts>\n",
    ]
    seq = -1
    for part in mms.parts:
        data = f' data="{base64.b64encode(part.data).decode()}"' if part.data else ""
        text = sbr_text(part.text) if part.text is not None else "null"
        lines.append(
            f'      <part seq="{seq}" ct="{part.content_type}" name="{part.name or "null"}"'
            f' chset="{part.charset or "null"}" cd="null" fn="null" cid="null" cl="null"'
            f' ctt_s="null" ctt_t="null" text="{text}"{data} />\n'
        )
        seq += 1
    lines.append("    </parts>\n    <addrs>\n")
    for address, kind in mms.addresses:
        lines.append(f'      <addr address="{address}" type="{int(kind)}" charset="106" />\n')
    lines.append("    </addrs>\n  </mms>\n")
    return "".join(lines)


def write_sbr_messages(path: Path, sms: Iterable[Sms], mms: Iterable[Mms] = ()) -> Path:
    body = "".join(map(sbr_sms, sms)) + "".join(map(sbr_mms, mms))
    path.write_bytes(
        (
            "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
            "<!--File created by SMS Backup & Restore v10.19.001 on 01/12/2023 10:00:00-->\n"
            f'<smses count="{body.count("<sms ") + body.count("<mms ")}"'
            ' backup_set="0f5c" backup_date="1701424800000" type="full">\n'
            f"{body}</smses>\n"
        ).encode()
    )
    return path


def write_sbr_calls(path: Path, calls: Iterable[Call]) -> Path:
    lines = "".join(
        f'  <call number="{c.number or "null"}" duration="{c.duration_s}" date="{c.date_ms}"'
        f' type="{int(c.type)}" presentation="1" subscription_id="null"'
        f' post_dial_digits="" subscription_component_name="null" readable_date="x"'
        f' contact_name="{sbr_text(NAMES.get(c.number, "(Unknown)"))}" />\n'
        for c in calls
    )
    path.write_text(
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
        f'<calls count="{lines.count("<call ")}" backup_set="x" backup_date="1">\n'
        f"{lines}</calls>\n",
        encoding="utf-8",
    )
    return path


# --- SMS Import / Export ---------------------------------------------------------------


def smsie_sms(sms: Sms) -> dict[str, str]:
    row = {
        "_id": "17",
        "thread_id": "3",
        "address": sms.address,
        "date": str(sms.date_ms),
        "date_sent": "0",
        "read": "1" if sms.read else "0",
        "type": str(int(sms.box)),
        "body": sms.body,
        "sub_id": "-1",
    }
    if sms.address in NAMES:
        row["__display_name"] = NAMES[sms.address]
    return row


def _address(address: str, kind: AddressKind) -> dict[str, str]:
    row = {"address": address, "type": str(int(kind)), "charset": "106"}
    if address in NAMES:
        row["__display_name"] = NAMES[address]
    return row


def smsie_mms(mms: Mms, number: int) -> tuple[dict[str, object], list[tuple[str, bytes]]]:
    files: list[tuple[str, bytes]] = []
    parts: list[dict[str, str]] = []
    for index, part in enumerate(mms.parts):
        row = {"seq": str(index - 1), "ct": part.content_type}
        if part.name:
            row["name"] = part.name
        if part.charset:
            row["chset"] = part.charset
        if part.text is not None:
            row["text"] = part.text
        if part.data is not None:
            name = f"PART_{1700000000 + number * 10 + index}"
            row["_data"] = f"/data/user/0/com.android.providers.telephony/app_parts/{name}"
            files.append((name, part.data))
        parts.append(row)
    row_object: dict[str, object] = {
        "_id": str(number),
        "date": str(mms.date_ms // 1000),
        "msg_box": str(int(mms.box)),
        "read": "1",
        "m_type": str(mms.message_type),
        "sub_id": "-1",
        "__sender_address": _address(*mms.addresses[0]),
        "__recipient_addresses": [_address(a, k) for a, k in mms.addresses[1:]],
        "__parts": parts,
    }
    return row_object, files


def write_smsie_zip(path: Path, sms: Sequence[Sms], mms: Sequence[Mms] = ()) -> Path:
    lines = [json.dumps(smsie_sms(s), ensure_ascii=False) for s in sms]
    files: list[tuple[str, bytes]] = []
    for number, record in enumerate(mms):
        row, data = smsie_mms(record, number)
        lines.append(json.dumps(row, ensure_ascii=False))
        files += data
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("messages.ndjson", "".join(line + "\n" for line in lines))
        for name, data in files:
            archive.writestr(f"data/{name}", data)
    return path


def write_smsie_calls(path: Path, calls: Iterable[Call]) -> Path:
    rows = []
    for call in calls:
        row = {
            "number": call.number,
            "date": str(call.date_ms),
            "duration": str(call.duration_s),
            "type": str(int(call.type)),
        }
        if call.number in NAMES:
            row["display_name"] = NAMES[call.number]
        rows.append(row)
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    return path
