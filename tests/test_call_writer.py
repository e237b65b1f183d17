"""PhoneCallLog: calls written into the call log through rish/su, confirmed by re-query.

Driven directly with a real PrivilegedShell over the fake rish, su and content
(tests/fakes), whose call log is the fixture phone's ``calls`` list.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from smsbak.errors import PhoneError
from smsbak.model import Call, CallType
from smsbak.phone.call_writer import PhoneCallLog
from smsbak.phone.privileged import PrivilegedShell
from tests.fakes.phone import BIN_DIR, FakePhone

BASE = 1_700_000_000_000

TRICKY = [
    Call("+49 170 1234567", BASE + 1_000, 61, CallType.INCOMING),
    Call("+15551234567", BASE + 2_000, 0, CallType.MISSED),
    Call("tel:+1:555:0100", BASE + 3_123, 5, CallType.OUTGOING),  # colons, and exact ms
    Call("a\\b:\\", BASE + 4_000, 0, CallType.REJECTED),  # backslashes, one at the end
    Call("Ünïcødé ☎ 電話 😀", BASE + 5_000, 7, CallType.OUTGOING),
    Call("", BASE + 6_000, 0, CallType.MISSED),  # withheld number
    Call("1, date=5, type=2", BASE + 7_000, 3, CallType.BLOCKED),  # looks like columns
    Call("*86", BASE + 8_000, 30, CallType.VOICEMAIL),
    Call("+4917012345678", BASE + 8_000, 12, CallType.INCOMING),  # same second as above
]


class Recorder:
    def __init__(self) -> None:
        self.written: list[Call] = []
        self.chunks: list[int] = []
        self.rejected: list[tuple[Call, str]] = []

    def on_written(self, calls: Sequence[Call]) -> None:
        self.written.extend(calls)
        self.chunks.append(len(calls))

    def on_rejected(self, call: Call, reason: str) -> None:
        self.rejected.append((call, reason))


@pytest.fixture
def phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePhone:
    """Shizuku and root available; no WRITE_SMS grant (the call log does not need one)."""
    fake = FakePhone(tmp_path / "phone")
    fake.enable_privileged(rish=True, su=True)
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RISH_APPLICATION_ID", "com.termux")
    return fake


def call_log(kind: str = "rish", chunk: int = 3) -> PhoneCallLog:
    return PhoneCallLog(PrivilegedShell(kind, timeout=30), chunk=chunk)


def write(target: PhoneCallLog, calls: Sequence[Call]) -> Recorder:
    recorder = Recorder()
    target.write(calls, on_written=recorder.on_written, on_rejected=recorder.on_rejected)
    return recorder


def as_calls(rows: list[dict[str, Any]]) -> list[Call]:
    return sorted(
        (Call(r["number"] or "", r["date"], r["duration"], CallType(r["type"])) for r in rows),
        key=lambda call: (call.date_ms, call.number),
    )


def fingerprints(calls: Sequence[Call]) -> set[str]:
    return {call.fingerprint for call in calls}


def shadow_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """A ``content`` ahead of the fake one on PATH (rish and su keep the PATH)."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    tool = shadow / "content"
    tool.write_text(f'#!/bin/sh\n{script}\nexec "{BIN_DIR / "content"}" "$@"\n')
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shadow}:{os.environ['PATH']}")


@pytest.mark.parametrize("kind", ["rish", "su"])
def test_round_trip_of_awkward_numbers(phone: FakePhone, kind: str) -> None:
    target = call_log(kind)
    assert target.existing_fingerprints() == set()
    target.prepare()
    recorder = write(target, TRICKY)
    target.finish()
    assert recorder.rejected == []
    assert fingerprints(recorder.written) == fingerprints(TRICKY)
    assert as_calls(phone.call_rows) == sorted(TRICKY, key=lambda c: (c.date_ms, c.number))
    assert target.existing_fingerprints() == fingerprints(TRICKY)
    assert all(row["new"] == 0 for row in phone.call_rows)
    withheld = [row for row in phone.call_rows if row["number"] == ""]
    assert [row["presentation"] for row in withheld] == [3]
    assert all(row.get("presentation") is None for row in phone.call_rows if row["number"])
    assert phone.appop() == "default", "the call log needs no app-op, so none is touched"
    assert not phone.calls("appops")


def test_one_shell_start_per_chunk_and_one_confirming_query(phone: FakePhone) -> None:
    """The confirmation reads as every row reader does (the ids first, then the rows):
    two `content` queries, but still in one shell start per chunk."""
    recorder = write(call_log(chunk=4), TRICKY)
    assert recorder.chunks == [4, 4, 1]
    assert len(phone.calls("rish")) == 3 * 2  # an insert script and a query per chunk
    contents = [entry["argv"] for entry in phone.calls("content")]
    assert [argv[0] for argv in contents].count("insert") == len(TRICKY)
    queries = [argv for argv in contents if argv[0] == "query"]
    projections = [argv[argv.index("--projection") + 1] for argv in queries]
    assert projections == ["_id", "_id:date:type:duration:number"] * 3


def test_voicemail_rows_are_written_last(phone: FakePhone) -> None:
    calls = [Call("*86", BASE, 9, CallType.VOICEMAIL), *TRICKY[:3]]
    recorder = write(call_log(chunk=2), calls)
    assert [call.type for call in recorder.written][-1] is CallType.VOICEMAIL
    assert fingerprints(recorder.written) == fingerprints(calls)


def test_a_legacy_content_tool_is_detected_and_nothing_wrong_stays(phone: FakePhone) -> None:
    phone.set_content(escaping="legacy")
    target = call_log(chunk=4)
    recorder = write(target, TRICKY)
    assert target.escaping == "legacy"
    assert fingerprints(recorder.written) == fingerprints(TRICKY)
    assert as_calls(phone.call_rows) == sorted(TRICKY, key=lambda c: (c.date_ms, c.number))


def test_calls_already_there_are_skipped_by_fingerprint(phone: FakePhone) -> None:
    """Idempotence as the restore drives it: write only what the phone lacks."""
    # Read earlier by termux-call-log: whole seconds only, so the ms do not matter.
    phone.add_call(number="tel:+1:555:0100", date=BASE + 3_000, type=2, duration=5)
    target = call_log()
    existing = target.existing_fingerprints()
    pending = [call for call in TRICKY if call.fingerprint not in existing]
    assert len(pending) == len(TRICKY) - 1
    write(target, pending)
    rows = len(phone.call_rows)
    assert rows == len(TRICKY)
    now_there = target.existing_fingerprints()  # one read of the call log, not one per call
    again = [call for call in TRICKY if call.fingerprint not in now_there]
    assert again == []
    inserts = len([e for e in phone.calls("content") if e["argv"][0] == "insert"])
    assert write(target, again).written == []
    assert len([e for e in phone.calls("content") if e["argv"][0] == "insert"]) == inserts
    assert len(phone.call_rows) == rows


def test_a_silently_dropped_insert_is_an_error_after_the_rest_is_reported(
    phone: FakePhone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``content`` prints nothing and exits 0, yet no row exists: only a re-query tells."""
    shadow_content(tmp_path, monkeypatch, 'case "$*" in *DROPPED*) exit 0;; esac')
    calls = [*TRICKY[:4], Call("+49 DROPPED", BASE + 4_500, 1, CallType.INCOMING), *TRICKY[4:]]
    recorder = Recorder()
    with pytest.raises(PhoneError) as caught:
        call_log(chunk=3).write(
            calls, on_written=recorder.on_written, on_rejected=recorder.on_rejected
        )
    assert caught.value.message == (
        "the phone did not keep 1 of 3 calls just written (2 were confirmed and are recorded)"
    )
    assert caught.value.hint and "run the restore again" in caught.value.hint
    assert recorder.chunks == [3, 2]  # the whole first chunk, the rest of the second
    assert fingerprints(recorder.written) == fingerprints(calls[:4] + calls[5:6])
    assert as_calls(phone.call_rows) == sorted(recorder.written, key=lambda c: c.date_ms)


def test_a_content_tool_failing_halfway_reports_what_was_confirmed(phone: FakePhone) -> None:
    phone.set_content(fail_after=4)  # then every content call fails, queries too
    target = call_log(chunk=3)
    recorder = Recorder()
    calls = TRICKY[:7]
    with pytest.raises(PhoneError) as caught:
        target.write(calls, on_written=recorder.on_written, on_rejected=recorder.on_rejected)
    assert "writing calls failed through Shizuku (rish)" in caught.value.message
    assert "Error while accessing provider:call_log" in caught.value.message
    assert recorder.written == calls[:3]
    assert len(phone.call_rows) == 4  # one more landed, but could not be confirmed
    phone.set_content(fail_after=None)
    there = target.existing_fingerprints()  # one read of the call log, not one per call
    pending = [call for call in calls if call.fingerprint not in there]
    assert len(pending) == 3
    assert fingerprints(write(target, pending).written) == fingerprints(pending)
    assert as_calls(phone.call_rows) == sorted(calls, key=lambda c: (c.date_ms, c.number))


def test_a_refused_voicemail_row_costs_nothing_else(
    phone: FakePhone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Android may refuse voicemail rows without ?allow_voicemails=true: that failure
    comes last, after every other call is written, confirmed and reported."""
    shadow_content(
        tmp_path,
        monkeypatch,
        'case "$*" in *type:i:4*) echo "Error while accessing provider:call_log" >&2\n'
        "  echo 'java.lang.IllegalArgumentException: Uri content://call_log/calls cannot be"
        " used for voicemail record.' >&2; exit 1;; esac",
    )
    calls = [Call("*86", BASE, 40, CallType.VOICEMAIL), *TRICKY]  # two voicemail rows
    recorder = Recorder()
    with pytest.raises(PhoneError) as caught:
        call_log(chunk=4).write(
            calls, on_written=recorder.on_written, on_rejected=recorder.on_rejected
        )
    assert caught.value.message.startswith(
        "could not write 2 voicemail entries; every other call is restored"
    )
    assert "Error while accessing provider:call_log" in caught.value.message
    assert caught.value.hint and "voicemail app" in caught.value.hint
    others = [call for call in calls if call.type is not CallType.VOICEMAIL]
    assert fingerprints(recorder.written) == fingerprints(others)
    assert as_calls(phone.call_rows) == sorted(others, key=lambda c: (c.date_ms, c.number))


def test_numbers_content_cannot_take_are_refused_one_by_one(phone: FakePhone) -> None:
    bad = [
        Call("+49\x00170", BASE, 1, CallType.INCOMING),
        Call("9" * 120_000, BASE + 1_000, 1, CallType.INCOMING),
    ]
    recorder = write(call_log(), [*bad, TRICKY[0]])
    assert recorder.written == [TRICKY[0]]
    assert [reason for _, reason in recorder.rejected] == [
        "contains a NUL character, which `content` cannot take",
        "too long for one `content` command line",
    ]
    assert len(phone.call_rows) == 1


def test_description_and_next_steps(phone: FakePhone) -> None:
    assert call_log("su").description == "the phone's call log, through root (su)"
    assert "call history" in call_log().next_steps()[0]
