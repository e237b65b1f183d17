"""Tests of the fake ``content`` tool's MMS side (and of its raw SMS output), run as
subprocesses through the fake ``rish`` / ``su`` as smsbak would run them.

They pin what /work/shared/reference/termux-api.md ("Reading more than
termux-sms-list gives") and restore-formats.md say: ``content://mms`` rows with
``date`` in seconds, addresses in ``content://mms/<id>/addr`` (137 from, 151 to, 130
cc, 129 bcc; ``insert-address-token`` for the user in sent MMS), parts in
``content://mms/part``, bytes through ``content read``, and ``Row: N col=val`` lines
printed raw, whatever the free text holds.
"""

from __future__ import annotations

import os
import re
import shlex
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.phone import (
    DRAFT,
    FAILED,
    INBOX,
    INSERT_ADDRESS_TOKEN,
    OUTBOX,
    PDU_BCC,
    PDU_CC,
    PDU_FROM,
    PDU_TO,
    QUEUED,
    SENT,
    FakePhone,
)

ANNA = "+4917012345678"
BERT = "+4915199999999"
CARL = "+4916011111111"
DATE_S = 1_700_000_000
PART_DIR = "/data/user/0/com.android.providers.telephony/app_parts"
HOSTILE = "a, b=c\nRow: 7 _id=1, body=forged\n  end="


def tiny_png() -> bytes:
    """A valid 1x1 PNG: NUL bytes, CR LF and 0x1a included, as real images have."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00\xff")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = tiny_png()
VCARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Änne, Müller\r\nTEL:+4917000000\r\nEND:VCARD\r\n".encode()
SMIL = (
    '<smil><head><layout><root-layout/><region id="Image"/><region id="Text"/></layout>'
    '</head><body><par dur="5000ms"><img src="photo.png" region="Image"/>'
    '<text src="text_0.txt" region="Text"/></par></body></smil>'
)
LONG_TEXT = ("Line with, commas = and 'quotes' ünïcödé 🎉\n" * 120) + HOSTILE + "\n\nlast line"


@pytest.fixture
def phone(tmp_path: Path) -> FakePhone:
    phone = FakePhone(tmp_path / "phone")
    phone.enable_privileged(rish=True, su=True)
    return phone


def env_of(phone: FakePhone) -> dict[str, str]:
    env = phone.env()
    env["RISH_APPLICATION_ID"] = "com.termux"
    env.pop("FAKE_UID", None)
    return env


def content(phone: FakePhone, *args: str, via: str = "rish") -> subprocess.CompletedProcess[bytes]:
    """``rish -c 'content ARGS'`` (or ``su -c``), arguments quoted for the shell."""
    return subprocess.run(
        [via, "-c", shlex.join(["content", *args])],
        env=env_of(phone),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        check=False,
    )


def query(phone: FakePhone, uri: str, *args: str) -> str:
    result = content(phone, "query", "--uri", uri, *args)
    assert (result.returncode, result.stderr) == (0, b""), result
    return result.stdout.decode()


def provider_error(result: subprocess.CompletedProcess[bytes], authority: str = "mms") -> str:
    """The Java exception line of a provider failure (exit 1, nothing on stdout)."""
    assert (result.returncode, result.stdout) == (1, b""), result
    lines = result.stderr.decode().splitlines()
    assert lines[0] == f"Error while accessing provider:{authority}"
    return lines[1]


def group_mms(phone: FakePhone) -> tuple[dict[str, Any], dict[str, Any]]:
    """A sent group MMS to three people (SMIL, photo, vCard, long text) and the
    reply of one of them (inbox, photo and caption)."""
    with phone.batch():
        sent = phone.add_mms(
            date_s=DATE_S,
            box=SENT,
            addresses=[
                (INSERT_ADDRESS_TOKEN, PDU_FROM),
                (ANNA, PDU_TO),
                (BERT, PDU_TO),
                (CARL, PDU_CC),
            ],
            parts=[
                {
                    "ct": "application/smil",
                    "seq": -1,
                    "cid": "<smil>",
                    "cl": "smil.xml",
                    "text": SMIL,
                },
                {
                    "ct": "image/png",
                    "name": "photo.png",
                    "cid": "<photo>",
                    "cl": "photo.png",
                    "data": PNG,
                },
                {"ct": "text/x-vCard", "name": "Änne.vcf", "cl": "Änne.vcf", "data": VCARD},
                {"ct": "text/plain", "cid": "<text_0>", "cl": "text_0.txt", "text": LONG_TEXT},
            ],
            subject="Trip, day 1",
            sub_id=2,
        )
        reply = phone.add_mms(
            date_s=DATE_S + 60,
            date_sent_s=DATE_S + 58,
            box=INBOX,
            addresses=[
                (ANNA, PDU_FROM),
                ("+4917099999999", PDU_TO),
                (BERT, PDU_TO),
                (CARL, PDU_BCC),
            ],
            parts=[
                {"ct": "image/png", "name": "back.png", "data": PNG[::-1]},
                {"ct": "text/plain", "text": "nice"},
            ],
            read=False,
            thread_id=sent["thread_id"],
        )
    return sent, reply


# --------------------------------------------------------------------------- query


def test_mms_rows_addresses_and_parts_print_like_android(phone: FakePhone) -> None:
    sent, reply = group_mms(phone)
    assert (sent["_id"], reply["_id"], reply["thread_id"]) == (1, 2, sent["thread_id"])

    projection = "_id:thread_id:date:date_sent:msg_box:m_type:read:sub_id:sub"
    thread = sent["thread_id"]
    assert query(phone, "content://mms", "--projection", projection) == (  # date DESC
        f"Row: 0 _id=2, thread_id={thread}, date={DATE_S + 60}, date_sent={DATE_S + 58}, "
        "msg_box=1, m_type=132, read=0, sub_id=-1, sub=NULL\n"
        f"Row: 1 _id=1, thread_id={thread}, date={DATE_S}, date_sent=0, "
        "msg_box=2, m_type=128, read=1, sub_id=2, sub=Trip, day 1\n"
    )
    full = query(phone, "content://mms/1")  # every pdu column, in the provider's order
    assert full.startswith(
        f"Row: 0 _id=1, thread_id={thread}, date={DATE_S}, date_sent=0, msg_box=2, read=1, "
        "m_id=NULL, sub=Trip, day 1, sub_cs=NULL, ct_t=NULL,"
    )
    assert full.endswith(", locked=0, sub_id=2, seen=0, creator=NULL, text_only=0\n")
    assert query(phone, "content://mms/inbox", "--projection", "_id") == "Row: 0 _id=2\n"
    assert query(phone, "content://mms", "--projection", "_id", "--where", "msg_box=2") == (
        "Row: 0 _id=1\n"
    )
    assert query(phone, "content://mms/drafts") == "No result found.\n"

    assert query(phone, "content://mms/1/addr") == (
        "Row: 0 _id=1, msg_id=1, contact_id=NULL, address=insert-address-token, type=137, "
        "charset=106\n"
        f"Row: 1 _id=2, msg_id=1, contact_id=NULL, address={ANNA}, type=151, charset=106\n"
        f"Row: 2 _id=3, msg_id=1, contact_id=NULL, address={BERT}, type=151, charset=106\n"
        f"Row: 3 _id=4, msg_id=1, contact_id=NULL, address={CARL}, type=130, charset=106\n"
    )
    assert query(phone, "content://mms/2/addr", "--projection", "address:type") == (
        f"Row: 0 address={ANNA}, type=137\nRow: 1 address=+4917099999999, type=151\n"
        f"Row: 2 address={BERT}, type=151\nRow: 3 address={CARL}, type=129\n"
    )
    assert query(phone, "content://mms/9/addr") == "No result found.\n"

    columns = "_id:mid:seq:ct:name:chset:cid:cl:_data:text"
    parts = query(phone, "content://mms/part", "--projection", columns, "--where", "mid=1")
    assert parts == (  # sorted by seq: the SMIL (-1) first; text last, raw
        "Row: 0 _id=1, mid=1, seq=-1, ct=application/smil, name=NULL, chset=106, "
        f"cid=<smil>, cl=smil.xml, _data=NULL, text={SMIL}\n"
        "Row: 1 _id=2, mid=1, seq=1, ct=image/png, name=photo.png, chset=NULL, "
        f"cid=<photo>, cl=photo.png, _data={PART_DIR}/PART_2, text=NULL\n"
        "Row: 2 _id=3, mid=1, seq=2, ct=text/x-vCard, name=Änne.vcf, chset=NULL, "
        f"cid=NULL, cl=Änne.vcf, _data={PART_DIR}/PART_3, text=NULL\n"
        "Row: 3 _id=4, mid=1, seq=3, ct=text/plain, name=NULL, chset=106, "
        f"cid=<text_0>, cl=text_0.txt, _data=NULL, text={LONG_TEXT}\n"
    )
    assert query(phone, "content://mms/1/part", "--projection", columns) == parts
    assert query(phone, "content://mms/part/6", "--projection", "_id:mid:ct:text") == (
        "Row: 0 _id=6, mid=2, ct=text/plain, text=nice\n"
    )
    every = query(phone, "content://mms/part")  # all columns, both messages
    assert every.startswith(
        "Row: 0 _id=1, mid=1, seq=-1, ct=application/smil, name=NULL, chset=106, cd=NULL, "
        "fn=NULL, cid=<smil>, cl=smil.xml, ctt_s=NULL, ctt_t=NULL, _data=NULL, text=<smil>"
    )
    assert every.count("\nRow: ") == 6  # five more rows, plus the forged line of HOSTILE
    assert query(phone, "content://mms/part", "--where", "mid=99") == "No result found.\n"
    bad = content(phone, "query", "--uri", "content://mms/part", "--projection", "nope")
    assert "android.database.sqlite.SQLiteException: no such column: nope" in provider_error(bad)


def test_no_mms_and_unknown_uris(phone: FakePhone) -> None:
    assert query(phone, "content://mms") == "No result found.\n"
    assert query(phone, "content://mms/part") == "No result found.\n"
    unknown = content(phone, "query", "--uri", "content://mms/1/frob")
    assert provider_error(unknown) == (
        "java.lang.IllegalArgumentException: Unknown URL content://mms/1/frob"
    )
    # Without the WRITE_SMS app-op an insert is silent and stores nothing.
    insert = content(phone, "insert", "--uri", "content://mms", "--bind", "msg_box:i:1")
    assert (insert.returncode, insert.stdout, insert.stderr) == (0, b"", b"")
    assert not phone.on_disk().get("mms")


# --------------------------------------------------------------------------- read


def read_part(phone: FakePhone, part_id: int, via: str = "rish") -> bytes:
    result = content(phone, "read", "--uri", f"content://mms/part/{part_id}", via=via)
    assert (result.returncode, result.stderr) == (0, b""), result
    return result.stdout


def test_content_read_gives_the_exact_bytes(phone: FakePhone) -> None:
    group_mms(phone)
    assert read_part(phone, 2) == PNG
    assert read_part(phone, 3, via="su") == VCARD
    assert read_part(phone, 5) == PNG[::-1]

    text_part = content(phone, "read", "--uri", "content://mms/part/4")
    assert provider_error(text_part) == "java.io.FileNotFoundException: Column _data not found."
    missing = content(phone, "read", "--uri", "content://mms/part/99")
    assert provider_error(missing) == (
        "java.io.FileNotFoundException: No entry for content://mms/part/99"
    )
    sms = content(phone, "read", "--uri", "content://sms/1")
    assert provider_error(sms, "sms").startswith("java.io.FileNotFoundException: No files")
    # Only the part URI opens files; anything else is an error, never bytes.
    assert content(phone, "read", "--uri", "content://mms/1").stdout == b""
    outside = subprocess.run(
        ["content", "read", "--uri", "content://mms/part/2"],
        env=env_of(phone),
        capture_output=True,
        check=False,
    )
    assert (outside.returncode, outside.stdout) == (1, b"")
    assert b"SecurityException: Permission Denial" in outside.stderr
    extra = content(phone, "read", "--uri", "content://mms/part/2", "--projection", "_id")
    assert extra.returncode == 0 and extra.stdout.endswith(
        b"[ERROR] Unsupported argument: --projection\n"
    )


def test_a_20_mb_part_comes_back_whole(phone: FakePhone) -> None:
    big = os.urandom(1 << 20) * 20  # 20 MiB, all byte values, cheap to make
    part = phone.add_mms(
        date_s=DATE_S,
        box=INBOX,
        addresses=[(ANNA, PDU_FROM)],
        parts=[{"ct": "video/mp4", "name": "clip.mp4", "data": big}],
    )["parts"][0]
    assert Path(part["data_file"]).stat().st_size == len(big)
    assert phone.path.stat().st_size < 10_000  # the fixture holds a path, not the bytes
    assert read_part(phone, part["_id"]) == big


# --------------------------------------------------------------------------- SMS


SMS_PROJECTION = "_id:thread_id:address:date:date_sent:type:read:status:service_center:sub_id:body"


def test_sms_query_every_box_exact_ms_and_raw_bodies(phone: FakePhone) -> None:
    bodies = {
        INBOX: HOSTILE,
        SENT: "x=1, y=2, body=z",
        DRAFT: "ends with newline\n",
        OUTBOX: "NULL",
        FAILED: "",
        QUEUED: "Row: 0 _id=99, thread_id=1, address=+1, date=1",
    }
    base = 1_700_000_000_000
    with phone.batch():
        for box, body in bodies.items():
            phone.add_sms(address=ANNA, body=body, date=base + box * 1001, type=box)
    rows = phone.messages
    rows[0].update(date_sent=base + 999, status=0, service_center="+49170000", sub_id=1)
    rows[1].update(status=64, sub_id=2)
    phone.save()
    out = query(phone, "content://sms", "--projection", SMS_PROJECTION, "--sort", "date ASC")
    expected = "".join(
        f"Row: {i} _id={box}, thread_id=1, address={ANNA}, date={base + box * 1001}, "
        f"date_sent={base + 999 if box == INBOX else 0}, type={box}, read=1, "
        f"status={ {INBOX: 0, SENT: 64}.get(box, -1) }, "
        f"service_center={'+49170000' if box == INBOX else 'NULL'}, "
        f"sub_id={ {INBOX: 1, SENT: 2}.get(box, -1) }, body={body}\n"
        for i, (box, body) in enumerate(bodies.items())
    )
    assert out == expected
    # The default order is date DESC; termux-sms-list would show only boxes 1 and 2.
    newest_first = query(phone, "content://sms", "--projection", "_id:type")
    assert newest_first.splitlines() == [f"Row: {i} _id={6 - i}, type={6 - i}" for i in range(6)]


# --------------------------------------------------------------------------- FakePhone


def test_add_mms_ids_threads_and_files(phone: FakePhone) -> None:
    sms = phone.add_sms(address=ANNA, body="hi", date=DATE_S * 1000)
    one = phone.add_mms(
        date_s=DATE_S,
        box=SENT,
        addresses=[(INSERT_ADDRESS_TOKEN, PDU_FROM), (ANNA, PDU_TO)],
        parts=[{"ct": "text/plain", "text": "to Anna"}],
    )
    group = phone.add_mms(
        date_s=DATE_S + 1,
        box=INBOX,
        addresses=[(BERT, PDU_FROM), (ANNA, PDU_TO)],
        parts=[{"ct": "image/png", "data": PNG}, {"ct": "text/plain", "text": "x", "chset": 3}],
    )
    again = phone.add_mms(
        date_s=DATE_S + 2,
        box=INBOX,
        addresses=[(ANNA, PDU_FROM), (BERT, PDU_TO)],
        parts=[],
    )
    assert one["thread_id"] == sms["thread_id"]  # one other address: that address's thread
    assert group["thread_id"] == again["thread_id"] != one["thread_id"]
    assert (one["m_type"], group["m_type"], one["date"], one["sub_id"]) == (128, 132, DATE_S, -1)
    assert [a["_id"] for m in phone.mms_rows for a in m["addresses"]] == [1, 2, 3, 4, 5, 6]
    image, text = group["parts"]
    assert (image["_id"], image["seq"], image["chset"], text["chset"]) == (2, 0, None, 3)
    assert Path(image["data_file"]).read_bytes() == PNG and "data" not in image
    assert one["parts"][0]["chset"] == 106
    with pytest.raises(ValueError, match="ct"):
        phone.add_mms(date_s=DATE_S, box=INBOX, addresses=[], parts=[{"text": "x"}])

    # MMS live in the fixture, not in the small settings file the light fakes read.
    settings = phone.on_disk(settings=True)
    assert "mms" not in settings
    phone.reload()  # thread numbering survives a re-read: a new SMS gets a fresh thread
    assert phone.add_sms(address=CARL, body="c", date=1)["thread_id"] == group["thread_id"] + 1


# --------------------------------------------------------------------------- writes
# mms-provider.md: the WRITE_SMS app-op gates every MMS write, nothing prints, the
# provider makes part files itself, Android 14 checks sub_id, shell/root read a
# restricted view, threadID finds or makes the thread of a set of addresses.


def insert(phone: FakePhone, uri: str, *binds: str, via: str = "rish") -> None:
    args = ["insert", "--uri", uri]
    for bind in binds:
        args += ["--bind", bind]
    result = content(phone, *args, via=via)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b""), result


def test_pdu_inserts_follow_the_app_op_and_the_provider_rules(phone: FakePhone) -> None:
    insert(phone, "content://mms", "msg_box:i:1", "date:l:5")
    assert phone.mms_rows == []  # app-op not allowed: silently nothing
    phone.set_appop("allow")
    insert(phone, "content://mms/sent", "_id:i:77", "read:i:0", "frob:s:x", "date:l:5")
    insert(phone, "content://mms", "m_type:i:132", "read:i:0", via="su")
    insert(phone, "content://mms", "address:s:+49170")  # no such pdu column: fails
    sent, received = phone.mms_rows
    assert (sent["_id"], sent["msg_box"], sent["read"], sent["date"]) == (1, 2, 1, 5)
    assert "frob" not in sent and sent["creator"] == "com.android.shell"
    assert (received["msg_box"], received["read"], received["creator"]) == (1, 0, "root")
    assert abs(received["date"] - DATE_S) < 10**9 and received["date"] < 10**11  # seconds


def test_android_14_checks_sub_id_on_inserts_and_queries(phone: FakePhone) -> None:
    phone.set_appop("allow")
    phone.set(subscriptions=[1])
    insert(phone, "content://mms", "sub_id:i:5", "date:l:1")
    assert phone.mms_rows == []  # a foreign subscription: refused
    insert(phone, "content://mms", "sub_id:i:1", "date:l:2")
    insert(phone, "content://mms", "sub_id:i:-1", "date:l:3")
    phone.add_mms(date_s=4, box=INBOX, addresses=[(ANNA, PDU_FROM)], parts=[], sub_id=7)
    assert query(phone, "content://mms", "--projection", "date:sub_id") == (
        "Row: 0 date=3, sub_id=-1\nRow: 1 date=2, sub_id=1\n"
    )  # the row of SIM 7 is invisible
    insert(phone, "content://mms/3/addr", "address:s:x", "type:i:137")
    assert phone.mms_rows[2]["addresses"][1:] == []  # nor can it be written to
    phone.set(props={"ro.build.version.sdk": "33"})  # before Android 14: no filter
    assert query(phone, "content://mms", "--projection", "date").count("Row: ") == 3


def test_restricted_view_hides_drafts_outbox_and_notifications(phone: FakePhone) -> None:
    for box in (INBOX, SENT, DRAFT, OUTBOX):
        phone.add_mms(date_s=box, box=box, addresses=[(ANNA, PDU_FROM)], parts=[])
    phone.add_mms(date_s=9, box=INBOX, m_type=130, addresses=[(ANNA, PDU_FROM)], parts=[])
    assert query(phone, "content://mms", "--projection", "msg_box") == (
        "Row: 0 msg_box=2\nRow: 1 msg_box=1\n"
    )
    sneaky = content(
        phone, "query", "--uri", "content://mms", "--where", "_id IN (SELECT _id FROM pdu)"
    )
    assert "SELECT is not allowed" in provider_error(sneaky)


def test_parts_get_provider_made_files_and_write_read_round_trip(phone: FakePhone) -> None:
    phone.set_appop("allow")
    insert(phone, "content://mms", "date:l:1")
    insert(phone, "content://mms/part", "ct:s:text/plain", "text:s:lost")  # refused
    insert(phone, "content://mms/1/part", "seq:i:0", "ct:s:text/plain", "text:s:a\\: b")
    insert(phone, "content://mms/1/part", "seq:i:1", "ct:s:image/png", "cl:s:dir/photo.png")
    insert(phone, "content://mms/1/part", "ct:s:image/png", f"_data:s:{PART_DIR}/PART_1")
    insert(phone, "content://mms/1/addr", "address:s:+49170", "type:i:137", "charset:i:106")
    out = query(phone, "content://mms/1/part", "--projection", "_id:seq:ct:_data:text")
    lines = out.splitlines()
    assert lines[0] == "Row: 0 _id=1, seq=0, ct=text/plain, _data=NULL, text=a: b"
    assert re.fullmatch(
        rf"Row: 1 _id=2, seq=1, ct=image/png, _data={PART_DIR}/PART_\d{{13}}_photo\.png, "
        "text=NULL",
        lines[1],
    )
    assert len(lines) == 2  # no part at content://mms/part, none with our own _data
    assert query(phone, "content://mms/1/addr", "--projection", "address:type:msg_id") == (
        "Row: 0 address=+49170, type=137, msg_id=1\n"
    )
    written = subprocess.run(
        ["rish", "-c", "content write --uri content://mms/part/2"],
        input=PNG,
        env=env_of(phone),
        capture_output=True,
        check=False,
    )
    assert (written.returncode, written.stderr) == (0, b"")
    assert read_part(phone, 2) == PNG
    text_part = content(phone, "write", "--uri", "content://mms/part/1")
    assert provider_error(text_part) == "java.io.FileNotFoundException: Column _data not found."
    phone.set_appop("default")
    denied = content(phone, "write", "--uri", "content://mms/part/2")
    assert provider_error(denied) == "java.io.FileNotFoundException: App op not allowed"
    phone.set(content_has_write=False)  # Android 6: no such subcommand
    old = content(phone, "write", "--uri", "content://mms/part/2")
    assert old.returncode == 0 and old.stdout.endswith(b"[ERROR] Unsupported operation: write\n")


def test_deleting_an_mms_by_its_uri_removes_parts_addresses_and_files(
    phone: FakePhone,
) -> None:
    sent, reply = group_mms(phone)
    files = [Path(p["data_file"]) for p in sent["parts"] if "data_file" in p]
    assert content(phone, "delete", "--uri", "content://mms/1").returncode == 0
    assert len(phone.mms_rows) == 2  # no app-op: nothing deleted
    phone.set_appop("allow")
    assert content(phone, "delete", "--uri", "content://mms/1").returncode == 0
    assert [m["_id"] for m in phone.mms_rows] == [reply["_id"]]
    assert files and not any(f.exists() for f in files)
    assert query(phone, "content://mms/1/addr") == "No result found.\n"


def test_thread_id_finds_or_makes_the_thread_of_a_set_of_addresses(phone: FakePhone) -> None:
    sms = phone.add_sms(address=ANNA, body="hi", date=1)

    def thread(*addresses: str) -> str:
        uri = "content://mms-sms/threadID?" + "&".join(
            f"recipient={a.replace('+', '%2B')}" for a in addresses
        )
        return query(phone, uri)

    assert thread(ANNA) == f"Row: 0 _id={sms['thread_id']}\n"  # the SMS conversation
    group = thread(ANNA, BERT)
    assert group == thread(BERT, ANNA, BERT) != thread(ANNA, BERT, CARL)
    assert group == f"Row: 0 _id={sms['thread_id'] + 1}\n"
    empty = content(phone, "query", "--uri", "content://mms-sms/threadID")
    assert "Unable to find or allocate a thread ID" in provider_error(empty, "mms-sms")
