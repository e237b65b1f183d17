"""Call-log restore files for SMS Backup & Restore (XML) and SMS Import / Export (JSON).

What matters: the other app imports what we write (strict parsers accept the XML,
the JSON is an array of string values laid out as that app writes it), our
readers give back exactly the calls we wrote, whatever the number holds, and we
read the apps' own files, streaming.
"""

from __future__ import annotations

import json
import stat
import uuid
import xml.dom.minidom
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsbak.errors import DamagedFileError, UsageError
from smsbak.formats.common import ReadStats
from smsbak.formats.sbr import CallsWriteReport, read_calls_xml, write_calls_xml
from smsbak.formats.smsie import read_calls_json, write_calls_json
from smsbak.model import Call, CallType
from tests.format_readers import scratch

NUMBER_SPECIALS = [
    "\x00",
    "\x01",
    "\x1b",
    "\x7f",
    "\t",
    "\n",
    "\r\n",
    "\ufffe",
    "\uffff",
    "\uefff",
    "\uefff0000",
    "\ud83d",
    "\ude00",
    "\u2028",
    " ",
    '"',
    "&",
    "<",
    "&#55357;&#56860;",
    "null",
    "\U0001f61c",
    "+15551234567",
    "*31#",
]


def _as_utf16_units(text: str) -> str:
    """A high and a low surrogate side by side are one character in Java's UTF-16, and
    in JSON: the form a phone could actually hold."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


numbers = (
    st.lists(st.one_of(st.text(), st.sampled_from(NUMBER_SPECIALS)), max_size=6)
    .map("".join)
    .map(_as_utf16_units)
)
calls = st.builds(
    Call,
    number=numbers,
    date_ms=st.integers(min_value=0, max_value=4_102_444_800_000),
    duration_s=st.integers(min_value=0, max_value=10**7),
    type=st.sampled_from(CallType),
    # An opaque phone-account text; "null" and "" are how the formats say "none".
    sim_id=st.none() | st.text(alphabet="0123456789abcdef-", min_size=1, max_size=24),
)


def sample(number: str = "+15551234567", **changes: object) -> Call:
    fields: dict[str, object] = {
        "number": number,
        "date_ms": 1_700_000_000_123,
        "duration_s": 42,
        "type": CallType.INCOMING,
    }
    fields.update(changes)
    return Call(**fields)  # type: ignore[arg-type]


# --- SMS Backup & Restore XML -----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(call=calls)
def test_xml_round_trip_is_exact(call: Call) -> None:
    with scratch() as tmp:
        path = Path(tmp) / "calls.xml"
        report = write_calls_xml(path, [call], contact_names={call.number: call.number})
        assert report == CallsWriteReport(path=path, count=1)
        ET.parse(path)  # strict: expat rejects any forbidden character or reference
        xml.dom.minidom.parse(str(path))
        stats = ReadStats()
        assert list(read_calls_xml(path, stats=stats)) == [call]
        assert (stats.calls, stats.invalid_skipped) == (1, 0)


@settings(max_examples=50, deadline=None)
@given(many=st.lists(calls, max_size=20), chunk_size=st.integers(1, 64))
def test_xml_round_trip_of_many_calls_with_any_chunk_size(
    many: list[Call], chunk_size: int
) -> None:
    with scratch() as tmp:
        path = Path(tmp) / "calls.xml"
        write_calls_xml(path, many)
        assert list(read_calls_xml(path, chunk_size=chunk_size)) == many


@settings(max_examples=200, deadline=None)
@given(number=st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t\n")))
def test_a_strict_parser_sees_the_exact_number_when_nothing_needed_escaping(number: str) -> None:
    if "\ufffe" in number or "\uffff" in number or "\uefff" in number:
        return
    with scratch() as tmp:
        path = Path(tmp) / "calls.xml"
        write_calls_xml(path, [sample(number)])
        element = ET.parse(path).getroot().find("call")
        assert element is not None and element.get("number") == number


def test_xml_layout_is_what_sms_backup_and_restore_writes(tmp_path: Path) -> None:
    path = tmp_path / "calls-20231114221320.xml"
    written = [
        sample(),
        sample("", type=CallType.MISSED, duration_s=0, date_ms=1_700_000_060_000),
        sample("+15550000000", type=CallType.OUTGOING, duration_s=3_600),
    ]
    report = write_calls_xml(
        path,
        written,
        contact_names={"+15550000000": 'Bob & "Co"'},
        backup_date_ms=1_700_000_999_000,
        zone=UTC,
    )
    assert report == CallsWriteReport(path=path, count=3)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n")
    assert text.endswith("</calls>\n")
    # The app's own attribute order, which people diffing files will see.
    assert (
        '  <call number="+15551234567" duration="42" date="1700000000123" type="1"'
        ' presentation="1" subscription_id="null" post_dial_digits=""'
        ' subscription_component_name="null" readable_date="Nov 14, 2023 10:13:20 PM"'
        ' contact_name="(Unknown)" />\n'
    ) in text
    root = ET.parse(path).getroot()
    assert root.tag == "calls"
    assert root.get("count") == "3" and root.get("backup_date") == "1700000999000"
    assert uuid.UUID(root.get("backup_set") or "").version == 4
    first, unknown, named = root.findall("call")
    assert list(first.attrib) == [
        "number",
        "duration",
        "date",
        "type",
        "presentation",
        "subscription_id",
        "post_dial_digits",
        "subscription_component_name",
        "readable_date",
        "contact_name",
    ]
    assert unknown.get("number") == "" and unknown.get("presentation") == "3"
    assert unknown.get("type") == "3" and unknown.get("duration") == "0"
    assert named.get("contact_name") == 'Bob & "Co"' and named.get("duration") == "3600"


def test_forbidden_characters_in_a_number_use_the_private_use_form(tmp_path: Path) -> None:
    path = tmp_path / "calls.xml"
    write_calls_xml(path, [sample("nul\x00 esc\x1b lone\ud83d")])
    seen = ET.parse(path).getroot().find("call")
    assert seen is not None
    assert seen.get("number") == "nul\uefff0000 esc\uefff001B lone\uefffD83D"
    assert [c.number for c in read_calls_xml(path)] == ["nul\x00 esc\x1b lone\ud83d"]


def test_xml_write_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "calls.xml"
    write_calls_xml(path, [sample()])
    before = path.read_bytes()

    def broken() -> Iterator[Call]:
        yield sample()
        raise RuntimeError("archive went away")

    with pytest.raises(RuntimeError):
        write_calls_xml(path, broken())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.xml"]


SBR_CALLS = (
    b"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
    b"<!--File Created By SMS Backup & Restore v10.20.002 on 14/11/2023 22:13:20-->\n"
    b'<?xml-stylesheet type="text/xsl" href="calls.xsl"?>\n'
    b'<calls count="8" backup_set="8c9d2c4e-3b7a-4a35-9d53-4a1e6f1f0c21"'
    b' backup_date="1700000999000" type="full">\n'
    b'  <call number="+15551234567" duration="72" date="1700000000123" type="1"'
    b' presentation="1" subscription_id="89014103211118510720" post_dial_digits=""'
    b' subscription_component_name="com.android.phone/com.android.services.telephony'
    b'.TelephonyConnectionService" readable_date="Nov 14, 2023 22:13:20"'
    b' contact_name="Alice &#55357;&#56860;" />\n'
    b'  <call number="null" duration="0" date="1700000100000" type="3" presentation="2"'
    b' subscription_id="null" post_dial_digits="" subscription_component_name="null"'
    b' readable_date="Nov 14, 2023 22:15:00" contact_name="(Unknown)" />\n'
    b'  <call number="*31#&#55357;&#56860;&#0;" duration="5" date="1700000200000" type="2"'
    b' presentation="1" readable_date="Nov 14, 2023 22:16:40" contact_name="(Unknown)" />\n'
    b'  <call number="+15557654321" date="1700000300000" type="4" presentation="1"'
    b' contact_name="(Unknown)" />\n'
    b'  <call number="+15557654321" duration="0" date="1700000400000" type="6" />\n'
    b'  <call number="+15557654321" duration="9" date="1700000500000" type="7" />\n'
    b'  <call number="+15557654321" duration="9" date="null" type="1" />\n'
    b'  <call number="+15557654321" duration="lots" date="1700000600000" type="1" />\n'
    b"</calls>\n"
)
SBR_EXPECTED = [
    Call("+15551234567", 1_700_000_000_123, 72, CallType.INCOMING, "89014103211118510720"),
    Call("", 1_700_000_100_000, 0, CallType.MISSED),
    Call("*31#\U0001f61c\x00", 1_700_000_200_000, 5, CallType.OUTGOING),
    Call("+15557654321", 1_700_000_300_000, 0, CallType.VOICEMAIL),
    Call("+15557654321", 1_700_000_400_000, 0, CallType.BLOCKED),
]


def test_reads_an_sms_backup_and_restore_call_log(tmp_path: Path) -> None:
    path = tmp_path / "calls-20231114221320.xml"
    path.write_bytes(SBR_CALLS)
    with pytest.raises(ET.ParseError):  # why the reader cleans the bytes first
        ET.parse(path)
    stats = ReadStats()
    assert list(read_calls_xml(path, stats=stats)) == SBR_EXPECTED
    # type 7 (answered elsewhere), date "null" and duration "lots" are unusable
    assert (stats.calls, stats.invalid_skipped) == (5, 3)


@pytest.mark.parametrize("chunk_size", [*range(1, 30), 97, 4096])
def test_xml_chunk_boundaries_anywhere_give_the_same_calls(tmp_path: Path, chunk_size: int) -> None:
    path = tmp_path / "calls.xml"
    path.write_bytes(SBR_CALLS)
    assert list(read_calls_xml(path, chunk_size=chunk_size)) == SBR_EXPECTED


def test_null_number_is_literal_only_in_files_smsbak_wrote(tmp_path: Path) -> None:
    ours = tmp_path / "ours.xml"
    write_calls_xml(ours, [sample("null")])
    assert [c.number for c in read_calls_xml(ours)] == ["null"]
    theirs = tmp_path / "theirs.xml"
    theirs.write_bytes(ours.read_bytes().replace(b"File created by smsbak", b"Somebody"))
    assert [c.number for c in read_calls_xml(theirs)] == [""]


def test_xml_reader_rejects_message_files_and_reports_where_it_breaks(tmp_path: Path) -> None:
    messages = tmp_path / "sms.xml"
    messages.write_text('<?xml version="1.0"?><smses count="0"></smses>')
    with pytest.raises(UsageError, match="not an SMS Backup & Restore call-log"):
        list(read_calls_xml(messages))
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    with pytest.raises(UsageError):
        list(read_calls_xml(empty))
    broken = tmp_path / "broken.xml"
    broken.write_bytes(SBR_CALLS[: SBR_CALLS.index(b"*31#")])
    got: list[Call] = []
    with pytest.raises(DamagedFileError, match="damaged at line 7") as damage:
        got.extend(read_calls_xml(broken))
    assert damage.value.position.startswith("line 7, column")
    assert got == SBR_EXPECTED[:2]  # what came before the break was delivered


# --- SMS Import / Export JSON -----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(call=calls)
def test_json_round_trip_is_exact(call: Call) -> None:
    with scratch() as tmp:
        path = Path(tmp) / "calls-2023-11-14.json"
        report = write_calls_json(path, [call], contact_names={call.number: "Name"})
        assert report == CallsWriteReport(path=path, count=1)
        stats = ReadStats()
        assert list(read_calls_json(path, stats=stats)) == [call]
        assert (stats.calls, stats.invalid_skipped) == (1, 0)


@settings(max_examples=100, deadline=None)
@given(many=st.lists(calls, max_size=20), chunk_size=st.integers(1, 64))
def test_json_is_an_array_of_string_values_and_streams_back(
    many: list[Call], chunk_size: int
) -> None:
    """What SMS Import / Export's ``nextString()`` needs, read back in any chunking."""
    with scratch() as tmp:
        path = Path(tmp) / "calls.json"
        write_calls_json(path, many)
        rows = json.loads(path.read_bytes())
        assert isinstance(rows, list) and len(rows) == len(many)
        for row, call in zip(rows, many, strict=True):
            assert all(isinstance(v, str) for v in row.values())
            assert row["number"] == call.number and row["type"] == str(int(call.type))
            assert "_id" not in row and "_count" not in row
        assert list(read_calls_json(path, chunk_size=chunk_size)) == many


def test_json_layout_is_what_sms_import_export_writes(tmp_path: Path) -> None:
    """Android's JsonWriter with setIndent("  "): no spaces before ':', none at the end."""
    path = tmp_path / "calls-2023-11-14.json"
    written = [
        sample(),
        sample("", type=CallType.MISSED, duration_s=0),
        sample("+1\n\u00e9", type=CallType.VOICEMAIL),
    ]
    write_calls_json(path, written, contact_names={"+15551234567": "Älice"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8") == (
        "[\n"
        "  {\n"
        '    "number": "+15551234567",\n'
        '    "presentation": "1",\n'
        '    "date": "1700000000123",\n'
        '    "duration": "42",\n'
        '    "type": "1",\n'
        '    "new": "0",\n'
        '    "name": "Älice",\n'
        '    "is_read": "1",\n'
        '    "display_name": "Älice"\n'
        "  },\n"
        "  {\n"
        '    "number": "",\n'
        '    "presentation": "3",\n'
        '    "date": "1700000000123",\n'
        '    "duration": "0",\n'
        '    "type": "3",\n'
        '    "new": "0",\n'
        '    "is_read": "1"\n'
        "  },\n"
        "  {\n"
        '    "number": "+1\\n\u00e9",\n'
        '    "presentation": "1",\n'
        '    "date": "1700000000123",\n'
        '    "duration": "42",\n'
        '    "type": "4",\n'
        '    "new": "0",\n'
        '    "is_read": "1"\n'
        "  }\n"
        "]"
    )
    empty = tmp_path / "none.json"
    assert write_calls_json(empty, []).count == 0
    assert empty.read_text() == "[]"
    assert list(read_calls_json(empty)) == []


def test_json_round_trip_of_a_lone_surrogate_uses_ascii_escapes(tmp_path: Path) -> None:
    path = tmp_path / "calls.json"
    write_calls_json(path, [sample("cut \ud83d"), sample("fine \U0001f61c")])
    text = path.read_text(encoding="utf-8")  # still valid UTF-8 throughout
    assert "\\ud83d" in text and "\U0001f61c" in text
    assert [c.number for c in read_calls_json(path)] == ["cut \ud83d", "fine \U0001f61c"]


def test_json_write_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "calls.json"
    write_calls_json(path, [sample()])
    before = path.read_bytes()

    def broken() -> Iterator[Call]:
        yield sample()
        raise RuntimeError("archive went away")

    with pytest.raises(RuntimeError):
        write_calls_json(path, broken())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.json"]


# As SMS Import / Export exports a phone's call log: every non-null column as a string.
SMSIE_CALLS = """\ufeff[
  {
    "_id": "17",
    "number": "+15551234567",
    "presentation": "1",
    "post_dial_digits": "",
    "via_number": "",
    "date": "1700000000123",
    "duration": "72",
    "data_usage": "0",
    "type": "1",
    "features": "0",
    "subscription_component_name": "com.android.phone/com.android.services.telephony.Te",
    "subscription_id": "1",
    "new": "1",
    "name": "Alice",
    "numbertype": "2",
    "countryiso": "US",
    "is_read": "1",
    "geocoded_location": "Chicago, IL",
    "last_modified": "1700000000999",
    "display_name": "Alice \U0001f61c"
  },
  {"_id": "18", "number": "", "presentation": "2", "date": "1700000100000", "type": "3"},
  {"number": "+15557654321", "date": 1700000200000, "duration": 5, "type": 4},
  {"number": "+15557654321", "date": "1700000300000", "duration": "0", "type": "7"},
  {"number": "+15557654321", "date": "soon", "type": "1"},
  {"number": "+15557654321", "date": "1700000400000", "type": true},
  ["not", "an", "object"],
  {"number": "+15557654321", "date": "1700000500000", "duration": "1", "type": "2"}
]
"""
SMSIE_EXPECTED = [
    Call("+15551234567", 1_700_000_000_123, 72, CallType.INCOMING, sim_id="1"),
    Call("", 1_700_000_100_000, 0, CallType.MISSED),
    Call("+15557654321", 1_700_000_200_000, 5, CallType.VOICEMAIL),
    Call("+15557654321", 1_700_000_500_000, 1, CallType.OUTGOING),
]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64, 100_000])
def test_reads_an_sms_import_export_call_log(tmp_path: Path, chunk_size: int) -> None:
    path = tmp_path / "calls-2023-11-14.json"
    path.write_text(SMSIE_CALLS, encoding="utf-8")
    stats = ReadStats()
    assert list(read_calls_json(path, stats=stats, chunk_size=chunk_size)) == SMSIE_EXPECTED
    assert (stats.calls, stats.invalid_skipped) == (4, 4)


def test_json_reader_rejects_other_files_and_reports_where_it_breaks(tmp_path: Path) -> None:
    ndjson = tmp_path / "messages.ndjson"
    ndjson.write_text('{"address": "+1", "date": "1", "type": "1"}\n')
    with pytest.raises(UsageError, match="no JSON array"):
        list(read_calls_json(ndjson))
    empty = tmp_path / "empty.json"
    empty.write_text("")
    with pytest.raises(UsageError, match="no JSON array"):
        list(read_calls_json(empty))
    whole = SMSIE_CALLS.encode()
    broken = tmp_path / "broken.json"
    broken.write_bytes(whole[: whole.index(b'"+15557654321", "date": "1700000300000"')])
    got: list[Call] = []
    with pytest.raises(UsageError, match="well-formed"):
        got.extend(read_calls_json(broken, chunk_size=5))
    assert got == SMSIE_EXPECTED[:3]
    missing_comma = tmp_path / "comma.json"
    missing_comma.write_text('[{"date": "1", "type": "1"} {"date": "2", "type": "1"}]')
    with pytest.raises(UsageError, match="expected ','"):
        list(read_calls_json(missing_comma))
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('[{"number": "\u00e9", "date": "1", "type": "1"}]'.encode("latin-1"))
    with pytest.raises(UsageError, match="not UTF-8"):
        list(read_calls_json(latin1))


def test_a_number_cut_at_a_chunk_end_is_not_taken_as_complete(tmp_path: Path) -> None:
    """A top-level number ending exactly at the window's end could go on."""
    path = tmp_path / "calls.json"
    path.write_text('[12345, {"number": "1", "date": "1", "type": "1"}]')
    stats = ReadStats()
    assert list(read_calls_json(path, stats=stats, chunk_size=3)) == [
        Call("1", 1, 0, CallType.INCOMING)
    ]
    assert stats.invalid_skipped == 1
