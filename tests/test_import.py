"""`smsbak import`: archive files of both apps into a destination, each message once.

The engine runs in-process over the memory destination (a real twin of the port,
told to behave like a server that does not merge a second copy of a Message-ID), the
files are written as the apps write them (tests/fakes/archive_corpus.py), and the
emails that arrive are decoded again to check every field and attachment byte.
"""

from __future__ import annotations

import base64
import tracemalloc
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from email import parser as email_parser
from email import policy as email_policy
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner

from smsbak import import_wiring
from smsbak.cli import main
from smsbak.destinations.memory import MemoryDestination
from smsbak.errors import DamagedFileError, DestinationError, UsageError
from smsbak.formats import smsie
from smsbak.formats.common import ReadStats
from smsbak.formats.sbr import read_sbr
from smsbak.importer import ImportEngine, ImportReport
from smsbak.mime import decode_call, decode_mms, decode_sms, message_id_for, mms_message_id
from smsbak.model import Box, Call, Mms, MmsPart, Sms
from smsbak.paths import Paths
from smsbak.ports import Confirmed, Destination, DestinationCapabilities, Outgoing
from smsbak.sources.archive import ArchiveSource, FileKind
from smsbak.store import StateStore, place_key
from tests.fakes import archive_corpus as corpus

SMS_PLACE = place_key("memory:default", "SMS")
CALL_PLACE = place_key("memory:default", "Call log")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state" / "state.sqlite3") as opened:
        yield opened


@pytest.fixture
def dest() -> MemoryDestination:
    return MemoryDestination(merges_message_ids=False)


def run(
    dest: MemoryDestination, store: StateStore, *paths: Path, dry_run: bool = False
) -> ImportReport:
    return ImportEngine(dest, store, account="me@example.com").run(
        ArchiveSource(list(paths)), dry_run=dry_run
    )


def overlapping_files(tmp_path: Path) -> tuple[list[Path], list[Sms], list[Mms], list[Call]]:
    """Four files: each kind twice, in both apps' formats, overlapping by about half."""
    sms, mms, calls = corpus.sms_records(), corpus.mms_records(), corpus.call_records()
    half_sms, half_mms, half_calls = len(sms) // 2, len(mms) // 2, len(calls) // 2
    files = [
        corpus.write_sbr_messages(tmp_path / "sms-2023.xml", sms[: half_sms + 3], mms[:3]),
        corpus.write_smsie_zip(tmp_path / "export.zip", sms[half_sms - 2 :], mms[half_mms - 1 :]),
        corpus.write_sbr_calls(tmp_path / "calls-2023.xml", calls[: half_calls + 1]),
        corpus.write_smsie_calls(tmp_path / "calls-2024-01-01.json", calls[half_calls - 1 :]),
    ]
    return files, sms, mms, calls


def test_overlapping_files_of_both_apps_give_every_message_exactly_once(
    tmp_path: Path, dest: MemoryDestination, store: StateStore
) -> None:
    files, sms, mms, calls = overlapping_files(tmp_path)
    report = run(dest, store, *files)
    assert [f.kind for f in report.files] == [
        FileKind.SBR_MESSAGES.value,
        FileKind.SMSIE_MESSAGES.value,
        FileKind.SBR_CALLS.value,
        FileKind.SMSIE_CALLS.value,
    ]
    assert report.total("uploaded") == {"sms": len(sms), "mms": len(mms), "call": len(calls)}
    assert sum(report.total("duplicates").values()) == 5 + 2 + 2  # the overlaps
    assert not report.damaged and not report.refused

    stored = dest.folder_messages("SMS")
    assert len(stored) == len(sms) + len(mms)
    by_id = {m.message_id: m for m in stored}
    assert len(by_id) == len(stored)  # no Message-ID twice
    for record in sms:
        email = by_id[message_id_for(record)]  # the phone backup's identity and Message-ID
        got = decode_sms(email.raw)
        assert (got.address, got.body, got.date_ms, got.box, got.read) == (
            record.address,
            record.body,
            record.date_ms,
            record.box,
            record.read,
        )
        assert email.seen is bool(record.read) and email.date_ms == record.date_ms
        if record.address in corpus.NAMES:  # contact_name / __display_name as the name
            headers = email_parser.BytesParser(policy=email_policy.default).parsebytes(email.raw)
            other = headers["From"] if record.box is Box.INBOX else headers["To"]
            assert other.addresses[0].display_name == corpus.NAMES[record.address]
    for record in mms:
        got_mms = decode_mms(by_id[mms_message_id(record)].raw)
        assert got_mms.date_ms == record.date_ms and got_mms.box == record.box
        assert got_mms.addresses == record.addresses
        wanted = [(p.content_type, p.text, p.data) for p in record.parts[1:]]  # no SMIL
        assert [(p.content_type, p.text, p.data) for p in got_mms.parts] == wanted
    stored_calls = dest.folder_messages("Call log")
    assert len(stored_calls) == len(calls)
    assert sorted((c.number, c.date_ms, c.duration_s, c.type) for c in calls) == sorted(
        (d.number, d.date_ms, d.duration_s, d.type)
        for d in (decode_call(m.raw) for m in stored_calls)
    )
    assert len(store.known([s.fingerprint for s in sms], SMS_PLACE)) == len(sms)
    assert len(store.known([c.fingerprint for c in calls], CALL_PLACE)) == len(calls)


def test_importing_again_uploads_nothing(
    tmp_path: Path, dest: MemoryDestination, store: StateStore
) -> None:
    files, sms, mms, calls = overlapping_files(tmp_path)
    run(dest, store, *files)
    stores = dest.stores
    again = run(dest, store, *reversed(files))
    assert dest.stores == stores
    assert sum(again.total("uploaded").values()) == 0
    assert sum(again.total("known").values()) == len(sms) + len(mms) + len(calls)


def test_a_dry_run_counts_and_changes_nothing(
    tmp_path: Path, dest: MemoryDestination, store: StateStore
) -> None:
    files, sms, mms, calls = overlapping_files(tmp_path)
    report = run(dest, store, *files, dry_run=True)
    assert report.total("uploaded") == {"sms": len(sms), "mms": len(mms), "call": len(calls)}
    assert dest.stores == 0 and dest.find_folder("SMS") is None
    assert store.known([s.fingerprint for s in sms], SMS_PLACE) == set()


def test_what_another_place_holds_does_not_count(
    tmp_path: Path, dest: MemoryDestination, store: StateStore
) -> None:
    files, sms, _, _ = overlapping_files(tmp_path)
    run(dest, store, files[0])
    other = MemoryDestination("other", merges_message_ids=False)
    report = run(other, store, files[0])
    assert report.files[0].uploaded["sms"] == len(sms) // 2 + 3


def test_a_connection_dropped_after_the_server_stored_leaves_one_copy(
    tmp_path: Path, store: StateStore
) -> None:
    files, sms, mms, _ = overlapping_files(tmp_path)
    dropped: list[str] = []

    def drop(item: object) -> None:
        if len(dropped) == 0 and dest.stores == 7:
            dropped.append("once")
            raise DestinationError("connection reset after APPEND")

    dest = MemoryDestination(merges_message_ids=False, after_store=drop)
    with pytest.raises(DestinationError):
        run(dest, store, files[0], files[1])
    run(dest, store, files[0], files[1])
    stored = dest.folder_messages("SMS")
    assert len(stored) == len(sms) + len(mms)
    assert all(dest.copies_of(m.message_id) == 1 for m in stored)


def test_the_traps_of_sms_backup_and_restore(tmp_path: Path) -> None:
    path = tmp_path / "sms.xml"
    path.write_bytes(
        b"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<smses count=\"3\">\n"
        b'<sms address="null" date="1700000000999" type="1" body="&#55357;&#56832; hi"'
        b' read="1" readable_date="not a date" contact_name="(Unknown)" />\n'
        b'<sms address="+1555" date="1700000001000" type="2" body="null" read="0"'
        b' contact_name="Dana" />\n'
        b'<mms date="1700000002123" msg_box="1" address="+1555~+1666~+1777" m_type="132"'
        b' contact_name="Dana, Eve, (Unknown)"><parts><part seq="0" ct="text/plain"'
        b' text="yo" data="null" /></parts></mms>\n'
        b"</smses>\n"
    )
    found = list(read_sbr(path))
    first, second, group = (f.record for f in found)
    assert isinstance(first, Sms) and first.body == "\U0001f600 hi" and first.address == ""
    assert first.date_ms == 1_700_000_000_999 and found[0].names == {}
    assert isinstance(second, Sms) and second.body == "" and found[1].names == {"+1555": "Dana"}
    assert isinstance(group, Mms) and group.date_ms == 1_700_000_002_123  # ms in the XML
    assert [a for a, _ in group.addresses] == ["+1555", "+1666", "+1777"]
    assert found[2].names == {"+1555": "Dana", "+1666": "Eve"}


def test_a_renamed_file_is_told_by_its_content(tmp_path: Path) -> None:
    sms = corpus.sms_records(3)
    renamed = corpus.write_sbr_messages(tmp_path / "backup.txt", sms)
    zipped = corpus.write_smsie_zip(tmp_path / "messages.bin", sms)
    calls = corpus.write_smsie_calls(tmp_path / "calls.txt", corpus.call_records(2))
    kinds = [f.kind for f in ArchiveSource([renamed, zipped, calls]).files]
    assert kinds == [FileKind.SBR_MESSAGES, FileKind.SMSIE_MESSAGES, FileKind.SMSIE_CALLS]


def test_u2028_does_not_split_a_record(tmp_path: Path) -> None:
    record = Sms("+1", "a\u2028b\u2029c", 1_700_000_000_000, Box.INBOX, True)
    path = corpus.write_smsie_zip(tmp_path / "m.zip", [record])
    assert [f.record for f in smsie.read_smsie_messages(path)] == [record]


# --- damaged, hostile and empty files --------------------------------------------------


def test_a_damaged_file_keeps_what_preceded_the_damage(
    tmp_path: Path, dest: MemoryDestination, store: StateStore
) -> None:
    sms = corpus.sms_records(20)
    whole = corpus.write_sbr_messages(tmp_path / "whole.xml", sms).read_bytes()
    cut = whole.index(b"<sms ", whole.index(f'date="{sms[12].date_ms}"'.encode()) - 200)
    broken = tmp_path / "sms-broken.xml"
    broken.write_bytes(whole[: cut + 40])  # stops inside the 13th <sms>
    calls = corpus.write_sbr_calls(tmp_path / "calls.xml", corpus.call_records(3))
    report = run(dest, store, broken, calls)
    damaged = report.files[0]
    assert isinstance(damaged.damage, DamagedFileError)
    assert damaged.damage.position.startswith("line ")
    assert damaged.uploaded["sms"] == 12
    assert len(store.known([s.fingerprint for s in sms[:12]], SMS_PLACE)) == 12
    assert store.known([s.fingerprint for s in sms[12:]], SMS_PLACE) == set()
    assert report.files[1].uploaded["call"] == 3  # the other file went in all the same


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE smses [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<smses count="1"><sms address="+1" date="1" type="1" body="&lol3;" /></smses>
"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE smses [<!ENTITY leak SYSTEM "file:///etc/passwd">]>
<smses count="1"><sms address="+1" date="1" type="1" body="&leak;" /></smses>
"""


@pytest.mark.parametrize("content", [BILLION_LAUGHS, EXTERNAL], ids=["laughs", "external"])
def test_entities_are_refused_by_the_source_and_by_the_reader(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "sms.xml"
    path.write_bytes(content)
    with pytest.raises(UsageError, match="DOCTYPE"):
        ArchiveSource([path])
    with pytest.raises(DamagedFileError, match="DOCTYPE"):
        list(read_sbr(path))
    # A DOCTYPE after a long comment, past what the source looks at, is still refused.
    late = tmp_path / "late.xml"
    late.write_bytes(b"<!--" + b"x" * 100_000 + b"-->" + content.split(b"?>", 1)[1])
    with pytest.raises(DamagedFileError, match="DOCTYPE"):
        list(read_sbr(late))


def test_an_undefined_entity_is_damage_not_text(tmp_path: Path) -> None:
    path = tmp_path / "sms.xml"
    path.write_bytes(b'<smses><sms address="+1" date="1" type="1" body="&nope;" /></smses>')
    with pytest.raises(DamagedFileError, match="line 1"):
        list(read_sbr(path))


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_hostile_zips_are_refused_before_anything_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = b'{"address":"+1","date":"1","type":"1","body":"x"}\n'
    climbing = _zip(tmp_path / "climb.zip", {"messages.ndjson": line, "../../evil": b"x"})
    absolute = _zip(tmp_path / "abs.zip", {"messages.ndjson": line, "/etc/evil": b"x"})
    bomb = _zip(tmp_path / "bomb.zip", {"messages.ndjson": line, "data/PART_1": bytes(50 << 20)})
    for path, reason in ((climbing, "outside"), (absolute, "outside"), (bomb, "zip bomb")):
        with pytest.raises(UsageError, match=reason):
            ArchiveSource([path])
        with pytest.raises(UsageError, match=reason):
            list(smsie.read_smsie_messages(path))
    many = _zip(
        tmp_path / "many.zip", {"messages.ndjson": line, **{f"data/{n}": b"" for n in range(9)}}
    )
    monkeypatch.setattr(smsie, "MAX_MEMBERS", 5)
    with pytest.raises(UsageError, match="10 entries"):
        ArchiveSource([many])
    monkeypatch.setattr(smsie, "MAX_MEMBERS", 500_000)
    big = _zip(tmp_path / "big.zip", {"messages.ndjson": line, "data/PART_2": b"\x00" * 4096})
    monkeypatch.setattr(smsie, "MAX_ATTACHMENT_BYTES", 1024)
    with pytest.raises(UsageError, match="claims 4096 bytes"):
        ArchiveSource([big])


def test_a_truncated_zip_is_damage(tmp_path: Path) -> None:
    whole = corpus.write_smsie_zip(tmp_path / "m.zip", corpus.sms_records(5)).read_bytes()
    (tmp_path / "cut.zip").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DamagedFileError, match="not a ZIP archive, or a damaged one"):
        ArchiveSource([tmp_path / "cut.zip"])


def test_a_long_line_is_damage_with_its_line_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = b'{"address":"+1","date":"1000","type":"1","body":"x"}\n'
    path = _zip(tmp_path / "m.zip", {"messages.ndjson": line * 3 + b"[" * 5000 + b"\n"})
    monkeypatch.setattr(smsie, "MAX_LINE_BYTES", 1000)
    got: list[object] = []
    with pytest.raises(DamagedFileError, match="line 4") as damage:
        got.extend(smsie.read_smsie_messages(path))
    assert len(got) == 3 and damage.value.position == "messages.ndjson line 4"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"  \n", "is empty"),
        (b"hello", "neither XML, JSON nor a ZIP"),
        (b"<html><body/></html>", "root is <html>"),
        (b"PK\x05\x06" + bytes(18), "without messages.ndjson"),
    ],
)
def test_files_that_are_not_archives_are_refused_up_front(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "file"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        ArchiveSource([path])


# --- through the command ----------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dest: MemoryDestination) -> CliRunner:
    monkeypatch.setenv("SMSBAK_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(import_wiring, "open_destination", lambda paths, settings: dest)
    return CliRunner()


def test_the_command_imports_and_summarises_per_file(
    cli: CliRunner, tmp_path: Path, dest: MemoryDestination
) -> None:
    files, sms, mms, calls = overlapping_files(tmp_path)
    dry = cli.invoke(main, ["import", "--dry-run", *map(str, files)])
    assert dry.exit_code == 0, dry.output
    assert f"Dry run: {len(sms)} SMS, {len(mms)} MMS, {len(calls)} calls would be uploaded" in (
        dry.output
    )
    assert dest.stores == 0
    result = cli.invoke(main, ["import", *map(str, files)])
    assert result.exit_code == 0, result.output
    assert "export.zip (SMS Import / Export messages)" in result.output
    assert "skipped: met earlier in these files" in result.output
    assert f"{len(sms)} SMS, {len(mms)} MMS, {len(calls)} calls uploaded" in result.output
    assert dest.stores == len(sms) + len(mms) + len(calls)
    again = cli.invoke(main, ["import", *map(str, files)])
    assert again.exit_code == 0 and "nothing uploaded" in again.output
    assert dest.stores == len(sms) + len(mms) + len(calls)


def test_the_command_exits_2_on_damage_and_keeps_what_preceded_it(
    cli: CliRunner, tmp_path: Path, dest: MemoryDestination
) -> None:
    whole = corpus.write_sbr_messages(tmp_path / "w.xml", corpus.sms_records(10)).read_bytes()
    broken = tmp_path / "sms-broken.xml"
    broken.write_bytes(whole[: len(whole) - 300])
    result = cli.invoke(main, ["import", str(broken)])
    assert result.exit_code == 2, result.output
    assert "DAMAGED" in result.output and "line " in result.output
    assert 0 < dest.stores < 10


@pytest.mark.parametrize("content", [BILLION_LAUGHS, b""], ids=["laughs", "empty"])
def test_the_command_exits_2_on_hostile_or_empty_files_and_uploads_nothing(
    cli: CliRunner, tmp_path: Path, dest: MemoryDestination, content: bytes
) -> None:
    good = corpus.write_sbr_messages(tmp_path / "good.xml", corpus.sms_records(3))
    bad = tmp_path / "bad.xml"
    bad.write_bytes(content)
    result = cli.invoke(main, ["import", str(good), str(bad)])
    assert result.exit_code == 2, result.output
    assert "bad.xml" in result.output and "Fix:" in result.output
    assert dest.stores == 0  # refused before the good file went up
    state = Paths.from_environment({"SMSBAK_HOME": str(tmp_path / "home")}).state_db
    assert not state.exists()  # nothing opened, nothing recorded


def test_the_reader_stats_name_what_was_skipped(tmp_path: Path) -> None:
    path = tmp_path / "sms.xml"
    path.write_bytes(
        b'<smses><sms address="+1" date="x" type="1" body="a" />'
        b'<sms address="+1" date="5000" type="1" body="b" /></smses>'
    )
    stats = ReadStats()
    assert len(list(read_sbr(path, stats=stats))) == 1
    assert stats.invalid_skipped == 1 and stats.examples == [
        "line 1: an <sms> without a usable date or type"
    ]


# --- memory ------------------------------------------------------------------------------


class _Sink:
    """A destination that confirms and forgets: what stays in memory is the import's."""

    identity = "sink:test"
    description = "a sink"
    capabilities = DestinationCapabilities(readable=False, merges_message_ids=True)

    def ensure_folder(self, name: str) -> str:
        return name

    def upload(self, items: Iterable[Outgoing], folder: str, **callbacks: Any) -> None:
        for item in items:
            callbacks["on_confirmed"]([Confirmed(item.key, "x")])

    def find_message_ids(self, folder: str, message_ids: Sequence[str]) -> dict[str, str]:
        return {}

    def close(self) -> None:
        pass


def _big_sbr(path: Path, mms_count: int) -> Path:
    """App-style file: 2 SMS per MMS, the MMS with a 4 KiB picture each. Both sizes hold
    more MMS than one upload chunk (50), whose encoded emails the uploader holds."""
    sms = corpus.sms_records(2 * mms_count)
    mms = [
        replace(
            corpus.mms_records(1)[0],
            date_ms=1_690_000_000_000 + n * 1000,
            parts=(MmsPart("image/jpeg", name=f"p{n}.jpg", data=bytes([n % 256]) * 4096),),
        )
        for n in range(mms_count)
    ]
    return corpus.write_sbr_messages(path, sms, mms)


def _peak(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_flat_in_the_file_size(tmp_path: Path) -> None:
    small = _big_sbr(tmp_path / "small.xml", 55)
    large = _big_sbr(tmp_path / "large.xml", 300)
    assert large.stat().st_size > 5 * small.stat().st_size
    parse_small = _peak(lambda: sum(1 for _ in read_sbr(small)))
    parse_large = _peak(lambda: sum(1 for _ in read_sbr(large)))
    assert parse_large < parse_small * 1.3 + 65536, (parse_small, parse_large)
    assert parse_large < 3 * 1024 * 1024  # a few chunks and one MMS, not the file

    def import_into_sink(path: Path, name: str) -> object:
        with StateStore(tmp_path / f"{name}.sqlite3") as store:
            return ImportEngine(cast(Destination, _Sink()), store).run(ArchiveSource([path]))

    import_small = _peak(lambda: import_into_sink(small, "small"))
    import_large = _peak(lambda: import_into_sink(large, "large"))
    assert import_large < import_small * 1.3 + 65536, (import_small, import_large)


def test_the_shipped_samples_import(dest: MemoryDestination, store: StateStore) -> None:
    """The README's first command imports these two files."""
    examples = Path(__file__).resolve().parent.parent / "examples"
    report = run(dest, store, examples / "sample-sms.xml", examples / "sample-calls.xml")
    assert report.total("uploaded") == {"sms": 4, "mms": 1, "call": 2}
    (mms,) = [decode_mms(m.raw) for m in dest.folder_messages("SMS") if b"MMS" in m.raw[:2000]]
    assert mms.parts[0].data == corpus.PNG  # the tiny picture, byte for byte


def test_what_the_phone_also_holds_is_known_to_its_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dest: MemoryDestination, store: StateStore
) -> None:
    """The identity is the phone backup's: messages read from the phone through the real
    Termux:API reader (fake tools on PATH, whole seconds, local time) that are also in
    the imported files are recorded at the place, the others not, so a backup into the
    same place uploads only the others."""
    from smsbak.phone.termux import TermuxPhone, TermuxTools
    from tests.fakes.phone import FakePhone

    phone = FakePhone(tmp_path / "phone")
    for key, value in phone.env().items():
        monkeypatch.setenv(key, value)
    sms, calls = corpus.sms_records(8), corpus.call_records(4)
    extra = Sms("+15557777", "only on the phone", 1_800_000_000_000, Box.INBOX)
    for record in [*sms[2:], extra]:
        phone.add_sms(
            address=record.address, body=record.body, date=record.date_ms, type=int(record.box)
        )
    for call in calls[1:]:
        phone.add_call(
            number=call.number, date=call.date_ms, type=int(call.type), duration=call.duration_s
        )
    run(
        dest,
        store,
        corpus.write_sbr_messages(tmp_path / "sms.xml", sms[:6]),
        corpus.write_smsie_calls(tmp_path / "calls.json", calls[:3]),
    )
    reader = TermuxPhone(TermuxTools(timeout=10))
    on_phone = [m.sms for page in reader.sms_newest_first(100) for m in page.messages]
    assert {s.date_ms % 1000 for s in on_phone} == {0}  # Termux:API drops the milliseconds
    known = store.known([s.fingerprint for s in on_phone], SMS_PLACE)
    assert sorted(s.body for s in on_phone if s.fingerprint not in known) == sorted(
        [s.body for s in sms[6:]] + ["only on the phone"]
    )
    phone_calls = [c.call for page in reader.calls_newest_first(100) for c in page.messages]
    known_calls = store.known([c.fingerprint for c in phone_calls], CALL_PLACE)
    assert [c.date_ms for c in phone_calls if c.fingerprint not in known_calls] == [
        calls[3].date_ms
    ]


def test_a_destination_failure_exits_5_and_still_says_what_went_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail_at_seven(item: Outgoing) -> None:
        if dest.stores == 7 and not failed:
            failed.append(item.key)
            raise DestinationError("connection reset after APPEND", "try again later")

    failed: list[str] = []
    dest = MemoryDestination(merges_message_ids=False, after_store=fail_at_seven)
    monkeypatch.setenv("SMSBAK_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(import_wiring, "open_destination", lambda paths, settings: dest)
    path = corpus.write_sbr_messages(tmp_path / "sms.xml", corpus.sms_records(12))
    result = CliRunner().invoke(main, ["import", str(path)])
    assert result.exit_code == 5, result.output
    assert "connection reset" in result.output and "uploaded: " in result.output
    again = CliRunner().invoke(main, ["import", str(path)])
    assert again.exit_code == 0, again.output
    assert "1 of them were already there" in again.output
    assert len(dest.folder_messages("SMS")) == 12
    assert all(dest.copies_of(m.message_id) == 1 for m in dest.folder_messages("SMS"))


def test_what_the_destination_refuses_is_reported_and_not_recorded(
    tmp_path: Path, store: StateStore
) -> None:
    sms = corpus.sms_records(6)
    refused_id = message_id_for(sms[2])
    dest = MemoryDestination(
        merges_message_ids=False,
        reject=lambda item: "message too large" if item.message_id == refused_id else None,
    )
    report = run(dest, store, corpus.write_sbr_messages(tmp_path / "sms.xml", sms))
    (file,) = report.files
    assert file.uploaded["sms"] == 5 and len(file.refused) == 1
    assert "message too large" in file.refused[0]
    assert store.known([sms[2].fingerprint], SMS_PLACE) == set()
    assert len(store.known([s.fingerprint for s in sms], SMS_PLACE)) == 5


def test_a_lost_state_database_doubles_nothing_on_a_server_that_keeps_copies(
    tmp_path: Path, dest: MemoryDestination
) -> None:
    files, sms, mms, calls = overlapping_files(tmp_path)
    with StateStore(tmp_path / "first.sqlite3") as first:
        run(dest, first, *files)
    stored = dest.stores
    with StateStore(tmp_path / "fresh.sqlite3") as fresh:  # Termux reinstalled
        again = run(dest, fresh, *files)
        assert dest.stores == stored  # looked up by Message-ID, not sent again
        assert again.found == len(sms) + len(mms) + len(calls)
        assert len(fresh.known([s.fingerprint for s in sms], SMS_PLACE)) == len(sms)


def test_an_mms_without_its_attachment_waits_for_a_complete_copy(
    tmp_path: Path, dest: MemoryDestination, store: StateStore
) -> None:
    """Recorded without its picture, an MMS could never get it from a better file later
    (the identity leaves the bytes out), so it is skipped and said so."""
    mms = corpus.mms_records(2)
    complete = corpus.write_smsie_zip(tmp_path / "complete.zip", [], mms)
    lacking = tmp_path / "lacking.zip"
    with zipfile.ZipFile(complete) as source, zipfile.ZipFile(lacking, "w") as target:
        for info in source.infolist():
            if info.filename != source.namelist()[-1]:  # the second MMS's picture
                target.writestr(info, source.read(info))
    broken_xml = tmp_path / "sms.xml"
    corpus.write_sbr_messages(broken_xml, [], mms[:1])
    picture = base64.b64encode(mms[0].parts[1].data or b"")
    broken_xml.write_bytes(broken_xml.read_bytes().replace(picture, picture[:-3]))  # cut short
    report = run(dest, store, lacking, broken_xml)
    assert [f.incomplete for f in report.files] == [1, 0]
    assert "not in the archive" in report.files[0].incomplete_examples[0]
    assert report.files[1].duplicates["mms"] == 1  # its complete copy came first
    with StateStore(tmp_path / "other.sqlite3") as other:
        alone = run(MemoryDestination(), other, broken_xml).files[0]
        assert alone.incomplete == 1 and "does not decode" in alone.incomplete_examples[0]
    assert report.files[0].uploaded["mms"] == 1  # the complete one of the two
    assert store.known([mms[1].fingerprint], SMS_PLACE) == set()
    later = run(dest, store, complete)
    assert later.files[0].uploaded["mms"] == 1 and later.files[0].known["mms"] == 1
    (email,) = [m for m in dest.folder_messages("SMS") if m.message_id == mms_message_id(mms[1])]
    assert decode_mms(email.raw).parts[0].data == mms[1].parts[1].data


def test_a_tag_without_end_cannot_fill_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smsbak.formats import sbr

    path = tmp_path / "sms.xml"
    path.write_bytes(b'<smses><sms address="+1" date="1000" type="1" body="ok" />\n<mms data="')
    with path.open("ab") as out:
        out.write(b"QUFB" * 20_000)  # an attribute that never closes
    monkeypatch.setattr(sbr, "MAX_ELEMENT_BYTES", 30_000)
    got: list[object] = []
    with pytest.raises(DamagedFileError, match="goes on for more than") as refused:
        got.extend(read_sbr(path, chunk_size=4096))
    assert len(got) == 1 and refused.value.position == "line 2"


def test_an_import_adopts_what_sms_backup_plus_already_put_in_the_label(
    cli: CliRunner, tmp_path: Path, dest: MemoryDestination
) -> None:
    """Before the first upload into a label, its SMS Backup+ emails are matched to their
    messages: importing a file that holds them too uploads only the rest, also on a
    destination that would keep a second copy."""
    import email

    from smsbak.ports import Outgoing
    from tests.fakes.sbp_corpus import sms_email

    messages = corpus.sms_records(12)
    preloaded = []
    # The first four: the fifth holds a CRLF, which SMS Backup+'s quoted-printable body
    # cannot tell from a bare line feed, so its identity cannot be matched (a known limit).
    for n, sms in enumerate(messages[:4]):
        raw = sms_email(sms)
        message_id = str(email.message_from_bytes(raw)["Message-ID"])
        preloaded.append(Outgoing(key=f"sbp-{n}", raw=raw, message_id=message_id))
    folder = dest.ensure_folder("SMS")
    dest.upload(preloaded, folder, on_confirmed=lambda _: None, on_rejected=lambda _: None)
    stored_before = dest.stores
    path = corpus.write_sbr_messages(tmp_path / "sms.xml", messages)
    result = cli.invoke(main, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "Adopted 4 messages" in result.output
    assert dest.stores - stored_before == 8, result.output  # the 4 SBP ones are adopted
    assert len(dest.folder_messages("SMS")) == 12
    again = cli.invoke(main, ["import", str(path)])
    assert again.exit_code == 0 and "nothing uploaded" in again.output
