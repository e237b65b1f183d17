"""Tests of the fake Termux:API tools (tests/fakes/bin), run as subprocesses.

They pin the behaviour described in /work/shared/reference/termux-api.md, so that
the smsbak tests built on the fakes exercise the real quirks.
"""

from __future__ import annotations

import http.server
import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.phone import (
    BIN_DIR,
    DRAFT,
    FAILED,
    INBOX,
    OUTBOX,
    QUEUED,
    SENT,
    FakePhone,
)

BASE = 1_700_000_000_123  # 2023-11-14 22:13:20.123 UTC = 23:13:20 in Berlin
MINUTE = 60_000

NEW_KEYS = ["threadid", "type", "read", "sender", "address", "number", "received", "body", "_id"]
OLD_KEYS = ["threadid", "type", "read", "sender", "number", "received", "body", "_id"]


@pytest.fixture
def phone(tmp_path: Path) -> FakePhone:
    return FakePhone(tmp_path / "phone")


def ok(phone: FakePhone, tool: str, *args: str) -> bytes:
    result = phone.run(tool, *args)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def sms_list(phone: FakePhone, *args: str) -> list[dict[str, Any]]:
    data = json.loads(ok(phone, "termux-sms-list", *args))
    assert isinstance(data, list)
    return data


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return [row["_id"] for row in rows]


def add_series(phone: FakePhone, count: int, *, address: str = "+4917000000001") -> None:
    phone.add_many(
        {"address": address, "body": f"m{i}", "date": BASE + i * MINUTE} for i in range(count)
    )


# --------------------------------------------------------------------------- sms list


def test_pages_are_newest_first_and_each_printed_oldest_first(phone: FakePhone) -> None:
    add_series(phone, 25)  # _id 1..25, dates ascending
    assert ids(sms_list(phone)) == list(range(16, 26))  # default -l 10
    assert ids(sms_list(phone, "-l", "10", "-o", "10")) == list(range(6, 16))
    assert ids(sms_list(phone, "-l", "10", "-o", "20")) == list(range(1, 6))
    assert ok(phone, "termux-sms-list", "-l", "10", "-o", "25") == b"[]\n"
    assert ids(sms_list(phone, "--message-return-no-order-reverse", "-l", "3")) == [25, 24, 23]


def test_new_script_accepts_both_long_option_forms(phone: FakePhone) -> None:
    add_series(phone, 8)
    expected = ok(phone, "termux-sms-list", "-l", "3", "-o", "2")
    assert ids(json.loads(expected)) == [4, 5, 6]
    for args in (
        ["-l3", "-o2"],
        ["--message-limit=3", "--message-offset=2"],
        ["--message-limit", "3", "--message-offset", "2"],
        ["-d", "-n", "--message-limit=3", "-o", "2", "--message-selection=read = 1"],
    ):
        assert ok(phone, "termux-sms-list", *args) == expected, args


@pytest.mark.parametrize(
    "arg", ["--message-limit=5", "--message-sort-order=date DESC, _id DESC", "-x"]
)
def test_old_script_rejects_long_and_unknown_options(phone: FakePhone, arg: str) -> None:
    phone.set(generation="old")
    add_series(phone, 3)
    result = phone.run("termux-sms-list", arg)
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"illegal option" in result.stderr


def test_script_errors_exit_1(phone: FakePhone) -> None:
    for generation in ("new", "old"):
        phone.set(generation=generation)
        for args in (["-l", "ten"], ["-o", "x"], ["-t", "spam"], ["extra"], ["--bogus"]):
            result = phone.run("termux-sms-list", *args)
            assert (result.returncode, result.stdout) == (1, b""), (generation, args)
            assert result.stderr
    phone.set(generation="old")  # the old script knows only five types
    assert phone.run("termux-sms-list", "-t", "failed").returncode == 1


def test_limit_minus_one_is_an_sql_error_on_the_new_app(phone: FakePhone) -> None:
    add_series(phone, 12)
    result = phone.run("termux-sms-list", "-l", "-1")
    assert (result.returncode, result.stdout) == (0, b"")
    phone.set(generation="old")  # old app: "LIMIT -1" in SQLite means no limit
    assert ids(sms_list(phone, "-l", "-1")) == list(range(1, 13))


def test_key_sets_and_order_new_versus_old(phone: FakePhone) -> None:
    phone.add_contact("Anna", "+49 170 12345678")
    phone.add_sms(address="+4917012345678", body="grüß dich\u2028", date=BASE)
    phone.add_sms(address="+4917012345678", body="sent", date=BASE + 1000, type=SENT)
    phone.add_sms(address="+4915199999999", body=None, date=BASE + 2000, read=False)
    phone.add_sms(address="+4915199999999", body="x", date=BASE + 3000, type=SENT)

    raw = ok(phone, "termux-sms-list")
    assert "grüß".encode() in raw  # raw UTF-8, not \u escapes
    assert b"\\u2028" in raw  # JsonWriter escapes U+2028
    assert raw.startswith(b'[\n  {\n    "threadid": 1,\n    "type": "inbox",\n')
    assert raw.endswith(b"\n  }\n]\n")
    rows = json.loads(raw)
    assert [list(r) for r in rows] == [
        NEW_KEYS,
        NEW_KEYS,
        [k for k in NEW_KEYS if k != "sender"],
        [k for k in NEW_KEYS if k != "sender"],
    ]
    assert [r.get("sender") for r in rows] == ["Anna", "You", None, None]
    assert [r["type"] for r in rows] == ["inbox", "sent", "inbox", "sent"]
    assert [r["read"] for r in rows] == [True, True, False, True]
    assert rows[0]["address"] == rows[0]["number"] == "+4917012345678"
    assert rows[2]["body"] is None
    assert rows[0]["received"] == "2023-11-14 23:13:20"

    phone.set(generation="old")
    old_rows = sms_list(phone)
    assert [list(r) for r in old_rows][:2] == [OLD_KEYS, OLD_KEYS]
    assert all("address" not in r and "number" in r for r in old_rows)


def test_sender_matching_by_digits_and_suffix(phone: FakePhone) -> None:
    phone.add_contact("Anna", "+49 170 1234567")  # digits 491701234567
    phone.add_contact("Provider", "VODAFONE")
    cases = {
        "+49 (170) 123-4567": "Anna",  # same digits
        "1701234567": "Anna",  # suffix of the contact, >= 7 digits
        "0049 170 1234567": "Anna",  # the contact is a suffix of it
        "234567": None,  # suffix with only 6 digits
        "+491709999999": None,
        "VODAFONE": "Provider",  # non-numeric: exact string only
        "Vodafone": None,
        None: None,
    }
    for i, address in enumerate(cases):
        phone.add_sms(address=address, body=str(i), date=BASE + i * 1000)
    rows = sms_list(phone, "-l", "20")
    assert [r.get("sender") for r in rows] == list(cases.values())
    null_row = rows[-1]
    assert null_row["address"] is None and null_row["number"] is None


def test_restricted_view_only_inbox_and_sent(phone: FakePhone) -> None:
    for i, kind in enumerate((INBOX, SENT, DRAFT, OUTBOX, FAILED, QUEUED)):
        phone.add_sms(address="+4917000000001", body=str(kind), date=BASE + i, type=kind)
    assert ids(sms_list(phone, "-t", "all", "-l", "50")) == [1, 2]
    assert ids(sms_list(phone, "-t", "inbox")) == [1]
    assert ids(sms_list(phone, "--message-type=sent")) == [2]
    for name in ("draft", "outbox", "failed", "queued"):
        assert ok(phone, "termux-sms-list", "-t", name) == b"[]\n"


def test_ties_are_unstable_across_pages_unless_sorted_by_id(phone: FakePhone) -> None:
    # 30 messages with one and the same date, paged 10 at a time.
    phone.add_many({"address": "+4917000000001", "body": str(i), "date": BASE} for i in range(30))
    stable: list[int] = []
    unstable: list[int] = []
    for offset in ("0", "10", "20"):
        page = sms_list(phone, "-l", "10", "-o", offset, "--message-sort-order=date DESC, _id DESC")
        stable += reversed(ids(page))
        unstable += ids(sms_list(phone, "-l", "10", "-o", offset))
    assert stable == list(range(30, 0, -1))
    assert len(set(unstable)) < 30  # some rows seen twice, others never
    # Deterministic per call arguments (reproducible tests).
    assert sms_list(phone, "-l", "10", "-o", "10") == sms_list(phone, "-l", "10", "-o", "10")


def test_received_is_local_time_of_the_phone_without_millis(phone: FakePhone) -> None:
    summer = datetime(2024, 7, 1, 12, 0, 0, 999_000, tzinfo=UTC)
    phone.add_sms(address="+4917000000001", body="w", date=BASE)
    phone.add_sms(address="+4917000000001", body="s", date=summer)
    assert [r["received"] for r in sms_list(phone)] == [
        "2023-11-14 23:13:20",
        "2024-07-01 14:00:00",
    ]
    phone.set(timezone="America/New_York")
    assert sms_list(phone)[0]["received"] == "2023-11-14 17:13:20"
    phone.set(timezone="")
    assert [r["received"] for r in sms_list(phone)] == [
        "2023-11-14 22:13:20",
        "2024-07-01 12:00:00",
    ]


def test_address_filter_exact_on_new_substring_on_old(phone: FakePhone) -> None:
    phone.add_sms(address="+4917011111111", body="a", date=BASE)
    phone.add_sms(address="+4917011111111", body="b", date=BASE + 1, type=SENT)
    phone.add_sms(address="004917011111111", body="c", date=BASE + 2)
    assert ids(sms_list(phone, "-f", "+4917011111111")) == [1, 2]
    assert ids(sms_list(phone, "--message-address=+4917011111111", "-t", "inbox")) == [1, 2]
    assert sms_list(phone, "-f", "4917011111111") == []
    phone.set(generation="old")
    assert ids(sms_list(phone, "-f", "4917011111111")) == [1, 2, 3]
    assert ids(sms_list(phone, "-f", "4917011111111", "-t", "inbox")) == [1, 3]


def test_conversation_mode_gives_newest_message_per_thread(phone: FakePhone) -> None:
    for i in range(3):
        phone.add_sms(address="+4917000000001", body=f"a{i}", date=BASE + i * MINUTE)
    for i in range(2):
        phone.add_sms(address="+4917000000002", body=f"b{i}", date=BASE + 10 * i * MINUTE)
    rows = sms_list(phone, "-c")
    assert [(r["threadid"], r["body"]) for r in rows] == [(1, "a2"), (2, "b1")]


def test_a_large_corpus_serves_the_newest_page(phone: FakePhone) -> None:
    """The benchmarks' phones are this size; how fast the fake serves them is theirs to
    measure (a timed assertion here only failed on a loaded machine)."""
    phone.add_many(
        {
            "address": f"+4917{i % 997:09d}",
            "body": f"message number {i}",
            "date": BASE + i * 1000,
            "type": SENT if i % 3 == 0 else INBOX,
        }
        for i in range(50_000)
    )
    rows = sms_list(phone, "-l", "1000")
    assert ids(rows) == list(range(49_001, 50_001))


# --------------------------------------------------------------------------- failure modes


PERMISSION_TWO = (
    b'{\n  "error": "Please grant the following permissions to use this command: '
    b'android.permission.READ_SMS ,android.permission.READ_CONTACTS"\n}\n'
)
PERMISSION_ONE = (
    b'{\n  "error": "Please grant the following permission to use this command: '
    b'android.permission.READ_CONTACTS"\n}\n'
)


def test_permission_error_json_is_byte_exact(phone: FakePhone) -> None:
    phone.set_mode("termux-sms-list", "permission")
    assert ok(phone, "termux-sms-list", "-l", "5") == PERMISSION_TWO
    phone.set_mode("termux-contact-list", "permission")
    assert ok(phone, "termux-contact-list") == PERMISSION_ONE
    phone.set_mode("termux-sms-list", "permission", ["android.permission.READ_CONTACTS"])
    assert ok(phone, "termux-sms-list") == PERMISSION_ONE
    phone.set_mode("termux-call-log", "permission")
    assert b"permission to use this command: android.permission.READ_CALL_LOG" in ok(
        phone, "termux-call-log"
    )


def test_hang_mode_blocks_until_killed(phone: FakePhone) -> None:
    phone.set_mode("termux-sms-list", "hang")
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        phone.run("termux-sms-list", timeout=0.5)
    assert not caught.value.stdout
    process = subprocess.Popen(
        [str(BIN_DIR / "termux-sms-list")],
        env=phone.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.3)
    assert process.poll() is None
    process.terminate()
    out, _ = process.communicate(timeout=5)
    assert process.returncode == -signal.SIGTERM
    assert out == b""


def test_garbage_truncated_empty_and_exit1_modes(phone: FakePhone) -> None:
    add_series(phone, 5)
    full = ok(phone, "termux-sms-list")
    phone.set_mode("termux-sms-list", "garbage")
    garbage = ok(phone, "termux-sms-list")
    assert garbage
    with pytest.raises(ValueError):
        json.loads(garbage)
    phone.set_mode("termux-sms-list", "truncated")
    truncated = ok(phone, "termux-sms-list")
    assert truncated and full.startswith(truncated) and len(truncated) < len(full)
    with pytest.raises(ValueError):
        json.loads(truncated)
    phone.set_mode("termux-sms-list", "empty")
    assert ok(phone, "termux-sms-list") == b""
    phone.set_mode("termux-sms-list", "exit1")
    result = phone.run("termux-sms-list")
    assert (result.returncode, result.stdout) == (1, b"")
    assert result.stderr
    phone.set_mode("termux-sms-list", "ok")
    assert ok(phone, "termux-sms-list") == full


# --------------------------------------------------------------------------- other tools


def test_contact_list_sorted_by_name(phone: FakePhone) -> None:
    phone.add_contact("bert", "+49 170 2")
    phone.add_contact("Anna", "+49 170 1")
    phone.add_contact("Ölaf", "+49 170 3")
    assert (
        ok(phone, "termux-contact-list")
        == (
            '[\n  {\n    "name": "Anna",\n    "number": "+49 170 1"\n  },\n'
            '  {\n    "name": "bert",\n    "number": "+49 170 2"\n  },\n'
            '  {\n    "name": "Ölaf",\n    "number": "+49 170 3"\n  }\n]\n'
        ).encode()
    )
    assert phone.run("termux-contact-list", "-l", "3").returncode == 1


def test_call_log(phone: FakePhone) -> None:
    phone.add_call(number="+4917000000001", date=BASE, type=1, duration=67, name="Anna")
    phone.add_call(number="+4917000000002", date=BASE + MINUTE, type=2, duration=3725)
    phone.add_call(number="+4917000000003", date=BASE + 2 * MINUTE, type=7, sim_id=None)
    rows = json.loads(ok(phone, "termux-call-log"))
    assert rows[0] == {
        "name": "Anna",
        "phone_number": "+4917000000001",
        "type": "INCOMING",
        "date": "2023-11-14 23:13:20",
        "duration": "01:07",
        "sim_id": "1",
    }
    assert [(r["name"], r["type"], r["duration"], r["sim_id"]) for r in rows[1:]] == [
        ("UNKNOWN_CALLER", "OUTGOING", "01:02:05", "1"),
        ("UNKNOWN_CALLER", "UNKNOWN_TYPE", "00:00", None),
    ]
    newest_two = json.loads(ok(phone, "termux-call-log", "-l", "2"))
    assert [r["phone_number"][-1] for r in newest_two] == ["2", "3"]
    assert [r["phone_number"][-1] for r in json.loads(ok(phone, "termux-call-log", "-o", "2"))] == [
        "1"
    ]
    bad = phone.run("termux-call-log", "-l", "many")
    assert bad.returncode == 1 and b"not a positive number" in bad.stderr

    phone.set(generation="old", props={"ro.build.version.sdk": "34"})
    assert ok(phone, "termux-call-log") == b""  # old app on Android 11+
    phone.set(props={"ro.build.version.sdk": "29"})
    old_rows = json.loads(ok(phone, "termux-call-log"))
    assert list(old_rows[0]) == ["name", "phone_number", "type", "date", "duration"]


def test_getprop(phone: FakePhone) -> None:
    phone.set(props={"ro.build.version.sdk": "34", "ro.product.model": "Pixel 7"})
    assert ok(phone, "getprop", "persist.sys.timezone") == b"Europe/Berlin\n"
    assert ok(phone, "getprop", "ro.build.version.sdk") == b"34\n"
    assert ok(phone, "getprop", "no.such.prop") == b"\n"
    listing = ok(phone, "getprop").decode()
    assert "[persist.sys.timezone]: [Europe/Berlin]\n" in listing
    assert "[ro.product.model]: [Pixel 7]\n" in listing
    phone.set(timezone="")
    assert ok(phone, "getprop", "persist.sys.timezone") == b"\n"


def test_termux_info_reports_the_api_version(phone: FakePhone) -> None:
    info = ok(phone, "termux-info").decode()
    assert "TERMUX_API_VERSION=0.53\n" in info
    assert "termux-api package version:\n0.59" in info
    phone.set(generation="old")
    info = ok(phone, "termux-info").decode()
    assert "TERMUX_API_VERSION=0.50.1\n" in info
    assert "termux-api package version:\n0.58" in info


def test_sms_send_leaves_a_marker(phone: FakePhone) -> None:
    assert not phone.sms_send_called()
    result = phone.run("termux-sms-send", "-n", "+4917000000001", "hello")
    assert result.returncode == 0
    assert "smsbak must never call this" in result.stderr.decode()
    assert phone.sms_send_called()
    assert phone.calls("termux-sms-send")[0]["argv"] == ["-n", "+4917000000001", "hello"]


def test_notifications(phone: FakePhone) -> None:
    started = time.monotonic()
    assert phone.run("termux-notification", "--id", "smsbak", "-t", "T", "-c", "C").returncode == 0
    # Without -c the content comes from stdin (here: closed at once, so no 3 s wait).
    result = phone.run("termux-notification", "--id", "x", "--ongoing", input=b"from stdin")
    assert result.returncode == 0
    assert time.monotonic() - started < 2.5
    assert phone.run("termux-notification", "--ongoing", "-c", "no id").returncode == 1
    assert phone.run("termux-notification-remove", "smsbak").returncode == 0
    assert phone.run("termux-notification-remove").returncode == 1
    assert [c["tool"] for c in phone.calls()] == [
        "termux-notification",
        "termux-notification",
        "termux-notification",
        "termux-notification-remove",
        "termux-notification-remove",
    ]


# --------------------------------------------------------------------------- call log, env


def test_every_call_is_logged_and_fixture_is_reread(phone: FakePhone, tmp_path: Path) -> None:
    add_series(phone, 2)
    before = time.time()
    sms_list(phone, "-l", "1")
    phone.add_sms(address="+4917000000009", body="new", date=BASE + 99 * MINUTE)
    assert sms_list(phone, "-l", "1")[0]["body"] == "new"  # edits seen by the next call
    ok(phone, "getprop", "persist.sys.timezone")
    calls = phone.calls()
    assert [(c["tool"], c["argv"]) for c in calls] == [
        ("termux-sms-list", ["-l", "1"]),
        ("termux-sms-list", ["-l", "1"]),
        ("getprop", ["persist.sys.timezone"]),
    ]
    assert all(before - 1 <= c["t"] <= time.time() + 1 for c in calls)
    assert len(phone.calls("getprop")) == 1

    env = phone.env()
    del env["SMSBAK_FAKE_PHONE"]
    result = phone.run("termux-sms-list", env=env)
    assert result.returncode == 1 and b"SMSBAK_FAKE_PHONE" in result.stderr
    assert len(phone.calls("termux-sms-list")) == 3  # logged all the same

    # Found on PATH and importable from any working directory.
    found = subprocess.run(
        ["termux-sms-list", "-l", "1"],
        env=phone.env(),
        cwd=tmp_path.anchor,
        capture_output=True,
        check=True,
    )
    assert json.loads(found.stdout)[0]["body"] == "new"


# --------------------------------------------------------------------------- open-url


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[tuple[str, float]]
    done: threading.Event

    def do_GET(self) -> None:
        self.hits.append((self.path, time.monotonic()))
        if self.path.startswith("/auth"):
            time.sleep(0.3)  # a slow consent page: open-url must not wait for it
            self._redirect("/callback?code=abc&state=xyz")
        elif self.path == "/loop":
            self._redirect("/loop")
        elif self.path == "/away":
            self._redirect("http://example.com/")
        else:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            self.done.set()

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"hits": [], "done": threading.Event()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def test_open_url_browser_follows_loopback_redirects_in_background(
    phone: FakePhone, server: tuple[str, type[_Recorder]]
) -> None:
    base, handler = server
    env = phone.env()
    env["SMSBAK_FAKE_BROWSER"] = "1"
    result = phone.run("termux-open-url", f"{base}/auth?client_id=1", env=env)
    returned = time.monotonic()
    assert (result.returncode, result.stdout) == (0, b"")
    assert handler.done.wait(5)
    assert [path for path, _ in handler.hits] == [
        "/auth?client_id=1",
        "/callback?code=abc&state=xyz",
    ]
    assert handler.hits[-1][1] > returned  # the browser worked after open-url returned

    # Redirect loops stop after 10 redirects; redirects off the loopback are refused.
    phone.run("termux-open-url", f"{base}/loop", env=env)
    phone.run("termux-open-url", f"{base}/away", env=env)
    assert _wait_for(
        lambda: (
            phone.browser_log_path.exists()
            and "too many redirects" in phone.browser_log_path.read_text()
            and "example.com" in phone.browser_log_path.read_text()
        )
    )
    assert sum(1 for path, _ in handler.hits if path == "/loop") == 11


def test_open_url_refuses_non_loopback_and_is_inert_without_browser(
    phone: FakePhone, server: tuple[str, type[_Recorder]]
) -> None:
    base, handler = server
    env = phone.env()
    env["SMSBAK_FAKE_BROWSER"] = "1"
    google = "https://accounts.google.com/o/oauth2/auth?redirect_uri=http://127.0.0.1:1/"
    assert phone.run("termux-open-url", google, env=env).returncode == 1
    assert phone.run("termux-open-url", "http://example.com/", env=env).returncode == 1
    assert phone.run("termux-open-url", google).returncode == 0  # no browser: just logged
    assert phone.run("termux-open-url", f"{base}/auth").returncode == 0
    time.sleep(0.5)
    assert handler.hits == []
    assert len(phone.calls("termux-open-url")) == 4
