"""Tests of the fake privileged tools (rish, su, content, appops, id), as subprocesses.

They pin section 1 of /work/shared/reference/restore-formats.md: the silent drop
without the WRITE_SMS app-op, the two escaping rules of ``content --bind``, parse
errors on stdout with exit 0, the unescaped ``Row: N col=val`` output, and a
``content`` tool that can fail halfway or be slow, and ``rish`` that can hang.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.phone import BIN_DIR, DRAFT, INBOX, PRIVILEGED_BIN, SENT, FakePhone

BASE = 1_700_000_000_000
ANNA = "+4917012345678"
BERT = "+4915199999999"


@pytest.fixture
def phone(tmp_path: Path) -> FakePhone:
    return FakePhone(tmp_path / "phone")


@pytest.fixture
def rooted(phone: FakePhone) -> FakePhone:
    """Shizuku and root both available, WRITE_SMS allowed for the shell."""
    phone.enable_privileged(rish=True, su=True)
    phone.set_appop("allow")
    return phone


def env_of(phone: FakePhone, **extra: str) -> dict[str, str]:
    env = phone.env()
    env["RISH_APPLICATION_ID"] = "com.termux"
    env.pop("FAKE_UID", None)
    env.update(extra)
    return env


def run(
    phone: FakePhone,
    *argv: str,
    input: bytes | None = None,
    timeout: float = 10,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command found on the fake phone's PATH (as Termux would)."""
    return subprocess.run(
        list(argv),
        env=env if env is not None else env_of(phone),
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def content(
    phone: FakePhone, *args: str, via: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``rish -c 'content ARGS'`` (or ``su -c``) with the arguments quoted for the
    shell; by default, to save a process, ``content ARGS`` in the environment rish
    gives its command (the rish hop itself is tested below)."""
    if via is not None:
        return run(phone, via, "-c", shlex.join(["content", *args]))
    return as_shell_user(phone, "content", *args)


def as_shell_user(phone: FakePhone, *argv: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` in the environment the fake rish gives its command."""
    env = env_of(phone, FAKE_UID="2000")
    env["PATH"] = os.pathsep.join([str(PRIVILEGED_BIN), env["PATH"]])
    return run(phone, *argv, env=env)


def insert(phone: FakePhone, *binds: str, uri: str = "content://sms") -> None:
    args: list[str] = ["insert", "--uri", uri]
    for bind in binds:
        args += ["--bind", bind]
    result = content(phone, *args)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b""), result


def query(phone: FakePhone, *args: str, uri: str = "content://sms") -> str:
    result = content(phone, "query", "--uri", uri, *args)
    assert result.returncode == 0 and result.stderr == b"", result
    return result.stdout.decode()


def queried_ids(phone: FakePhone, *args: str) -> list[int]:
    text = query(phone, "--projection", "_id", *args)
    return [int(n) for n in re.findall(r"^Row: \d+ _id=(\d+)$", text, re.MULTILINE)]


def sms_list(phone: FakePhone) -> list[dict[str, Any]]:
    rows = json.loads(run(phone, "termux-sms-list", "-l", "100").stdout)
    assert isinstance(rows, list)
    return rows


def usage_error(result: subprocess.CompletedProcess[bytes]) -> str:
    """The real tool's quirk: usage and ``[ERROR] ...`` on stdout, exit 0."""
    assert result.returncode == 0 and result.stderr == b"", result
    out = result.stdout.decode()
    assert out.startswith("usage: adb shell content [subcommand] [options]\n")
    last = out.splitlines()[-1]
    assert last.startswith("[ERROR] ")
    return last[len("[ERROR] ") :]


# --------------------------------------------------------------------------- rish / su / id


def test_rish_and_su_only_when_the_phone_grants_them(phone: FakePhone, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    touch = f"touch {shlex.quote(str(marker))}"
    result = run(phone, "rish", "-c", touch)
    assert result.returncode == 1 and b"Server is not running" in result.stderr
    result = run(phone, "su", "-c", touch)
    assert (result.returncode, result.stderr) == (1, b"Permission denied\n")
    assert not marker.exists()

    phone.enable_privileged(rish=True)
    assert run(phone, "rish", "-c", "id -u").stdout == b"2000\n"
    assert run(phone, "rish", "-c", "id -un; echo $FAKE_UID").stdout == b"shell\n2000\n"
    assert run(phone, "rish", "-c", "exit 3").returncode == 3  # the command's status
    assert run(phone, "su", "-c", "id -u").returncode == 1

    phone.enable_privileged(rish=True, su=True)
    assert run(phone, "su", "-c", "id -u").stdout == b"0\n"
    assert run(phone, "su", "-c", "id", "-un").stdout == b"root\n"  # -c takes the rest
    assert run(phone, "su", "-mm", "root", "-c", "id").stdout.startswith(b"uid=0(root) ")
    assert run(phone, "su", "-v").stdout == b"27.0:MAGISK\n"
    # Outside rish/su, `id` is the real one.
    assert run(phone, "id", "-u").stdout == f"{os.getuid()}\n".encode()


def test_stdin_sessions_run_many_commands_in_one_shell(rooted: FakePhone) -> None:
    script = b"x=41\nid -u\necho $((x + 1))\ncontent query --uri content://sms\n"
    result = run(rooted, "rish", input=script)
    assert result.stdout == b"2000\n42\nNo result found.\n"
    assert run(rooted, "su", input=b"id -u\nid -u\n").stdout == b"0\n0\n"


def test_missing_rish_application_id_warns_but_works(phone: FakePhone) -> None:
    phone.enable_privileged()
    env = env_of(phone)
    del env["RISH_APPLICATION_ID"]
    result = run(phone, "rish", "-c", "id -u", env=env)
    assert result.stdout == b"2000\n"
    assert b"RISH_APPLICATION_ID is not set" in result.stderr
    assert run(phone, "rish", "-c", "id -u").stderr == b""
    phone.set(rish_require_app_id=True)  # real rish stops there
    assert run(phone, "rish", "-c", "id -u", env=env).returncode == 1


@pytest.mark.parametrize("tool", ["rish", "su"])
def test_hang_mode_blocks_until_killed(rooted: FakePhone, tool: str) -> None:
    rooted.set(**{f"{tool}_mode": "hang"})
    with pytest.raises(subprocess.TimeoutExpired):
        run(rooted, tool, "-c", "id -u", timeout=0.3)
    process = subprocess.Popen(
        [str(BIN_DIR / tool), "-c", "id -u"],
        env=env_of(rooted),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.2)
    assert process.poll() is None
    process.terminate()
    out, _ = process.communicate(timeout=5)
    assert (process.returncode, out) == (-signal.SIGTERM, b"")


def test_call_costs_are_paid_per_process(rooted: FakePhone) -> None:
    rooted.set_content(call_cost=0.15)
    rooted.set(rish_call_cost=0.1)
    started = time.monotonic()
    result = run(rooted, "rish", input=b"content query --uri content://sms\n" * 2)
    elapsed = time.monotonic() - started
    assert result.stdout == b"No result found.\n" * 2
    assert 0.4 <= elapsed < 2, elapsed


# --------------------------------------------------------------------------- app-op


def test_insert_is_silently_dropped_until_the_appop_allows_it(phone: FakePhone) -> None:
    phone.enable_privileged()
    phone.add_sms(address=ANNA, body="old", date=BASE)
    body = ["--bind", f"address:s:{ANNA}", "--bind", "body:s:restored"]
    args = ["insert", "--uri", "content://sms/inbox", *body, "--bind", f"date:l:{BASE + 1}"]

    dropped = content(phone, *args, via="rish")
    assert (dropped.returncode, dropped.stdout, dropped.stderr) == (0, b"", b"")
    assert [r["body"] for r in sms_list(phone)] == ["old"]
    assert run(phone, "rish", "-c", "appops get com.android.shell WRITE_SMS").stdout == (
        b"No operations.\n"
    )

    setting = run(phone, "rish", "-c", "appops set com.android.shell WRITE_SMS allow")
    assert (setting.returncode, setting.stdout, setting.stderr) == (0, b"", b"")
    assert phone.appop() == "allow"
    assert run(phone, "rish", "-c", "appops get com.android.shell WRITE_SMS").stdout == (
        b"WRITE_SMS: allow\n"
    )
    assert content(phone, *args, via="rish").stdout == b""
    assert content(phone, *args, via="su").returncode == 1  # no root on this phone
    assert content(phone, *args).stdout == b""  # no de-duplication
    rows = sms_list(phone)
    assert [(r["_id"], r["body"], r["threadid"]) for r in rows] == [
        (1, "old", 1),
        (2, "restored", 1),
        (3, "restored", 1),
    ]
    assert rows[1]["read"] is False and rows[1]["received"] == "2023-11-14 23:13:20"
    assert phone.messages[-1]["creator"] == "com.android.shell"  # FakePhone re-read it

    run(phone, "rish", "-c", "appops set com.android.shell WRITE_SMS ignore")
    assert phone.appop() == "ignore"
    insert(phone, f"address:s:{BERT}", "body:s:lost", f"date:l:{BASE + 2}")
    assert len(phone.messages) == 3


def test_appops_cli(rooted: FakePhone) -> None:
    def appops(*args: str) -> subprocess.CompletedProcess[bytes]:
        return as_shell_user(rooted, "appops", *args)

    assert appops("set", "com.android.shell", "android:write_sms", "deny").returncode == 0
    assert appops("get", "com.android.shell").stdout == b"WRITE_SMS: deny\n"
    assert appops("set", "--user", "0", "com.android.shell", "WRITE_SMS", "default").stdout == b""
    assert appops("get", "com.android.shell", "WRITE_SMS").stdout == b"No operations.\n"
    for bad in (["set", "com.android.shell", "WRITE_SMS", "maybe"], ["set", "x"], ["frob"]):
        result = appops(*bad)
        assert (result.returncode, result.stdout) == (1, b""), bad
        assert b"Error: " in result.stderr and b"appops" in result.stderr
    appops("set", "com.android.shell", "WRITE_SMS", "allow")
    appops("reset", "com.android.shell")
    assert rooted.appop() == "default"


def test_content_and_appops_refuse_outside_rish_and_su(rooted: FakePhone) -> None:
    insert(rooted, f"address:s:{ANNA}", "body:s:x", f"date:l:{BASE}")
    for args in (
        ["query", "--uri", "content://sms"],
        ["insert", "--uri", "content://sms", "--bind", "body:s:y"],
        ["delete", "--uri", "content://sms", "--where", "_id=1"],
        ["query", "--uri", "content://call_log/calls"],
    ):
        result = run(rooted, "content", *args)
        assert (result.returncode, result.stdout) == (1, b""), args
        assert result.stderr.startswith(b"Error while accessing provider:")
        assert b"java.lang.SecurityException: Permission Denial" in result.stderr
    assert [m["body"] for m in rooted.messages] == ["x"]
    result = run(rooted, "appops", "set", "com.android.shell", "WRITE_SMS", "ignore")
    assert result.returncode == 1 and result.stderr.startswith(b"Security exception: ")
    assert rooted.appop() == "allow"
    # Parsing comes first, so a malformed call gets the usage even from Termux.
    assert usage_error(run(rooted, "content", "insert")).startswith("Content provider URI")


# --------------------------------------------------------------------------- escaping


def bodies(phone: FakePhone) -> list[str | None]:
    return [m["body"] for m in phone.messages]


def test_modern_escaping(rooted: FakePhone) -> None:
    insert(rooted, "body:s:see you at 5\\:30 in C\\:\\\\tmp", f"date:l:{BASE}")
    insert(rooted, "bo\\dy:\\s:e\\x", f"date:l:{BASE}")  # any character may be escaped
    assert bodies(rooted) == ["see you at 5:30 in C:\\tmp", "ex"]
    assert usage_error(
        content(rooted, "insert", "--uri", "content://sms", "--bind", "body:s:a:b")
    ) == ("Binding not well formed: body:s:a:b")
    assert bodies(rooted) == ["see you at 5:30 in C:\\tmp", "ex"]


def test_legacy_escaping_keeps_the_rest_literally(rooted: FakePhone) -> None:
    rooted.set_content(escaping="legacy")
    insert(rooted, "body:s:see you at 5\\:30 in C\\:\\\\tmp", f"date:l:{BASE}")
    insert(rooted, "body:s:a:b:c\\", f"date:l:{BASE}")  # trailing backslash is fine here
    assert bodies(rooted) == ["see you at 5\\:30 in C\\:\\\\tmp", "a:b:c\\"]
    assert usage_error(content(rooted, "insert", "--uri", "content://sms", "--bind", "body:s")) == (
        "Binding not well formed: body:s"
    )


def test_lone_trailing_backslash_is_an_error_on_stdout_with_status_0(rooted: FakePhone) -> None:
    result = content(
        rooted,
        "insert",
        "--uri",
        "content://sms",
        "--bind",
        f"date:l:{BASE}",
        "--bind",
        "body:s:oops\\",
    )
    assert usage_error(result) == "Invalid escaping"
    assert result.stdout.endswith(b"\n[ERROR] Invalid escaping\n")
    assert rooted.messages == []  # the whole command is rejected before any insert


def test_i_is_32_bit(rooted: FakePhone) -> None:
    def bad(bind: str) -> str:
        return usage_error(
            content(
                rooted, "insert", "--uri", "content://sms", "--bind", bind, "--bind", "body:s:x"
            )
        )

    assert bad(f"date:i:{BASE}") == f'For input string: "{BASE}"'
    assert bad("read:i:2147483648") == 'For input string: "2147483648"'
    assert bad("read:i:1.0") == 'For input string: "1.0"'
    assert bad("read:q:1") == "Unsupported type: q"
    assert rooted.messages == []
    insert(rooted, "read:i:-2147483648", f"date:l:{BASE}", "body:s:x", "locked:b:TRUE")
    insert(rooted, "read:I:2147483647", f"date:L:{BASE}", "body:n:", "subject:s:")
    first, second = rooted.messages
    assert (first["read"], first["date"], first["locked"]) == (-(2**31), BASE, 1)
    assert (second["read"], second["body"], second["subject"]) == (2**31 - 1, None, "")


# --------------------------------------------------------------------------- provider rules


def test_insert_follows_the_sms_provider(rooted: FakePhone) -> None:
    rooted.add_sms(address=ANNA, body="existing", date=BASE, thread_id=7)
    insert(rooted, f"address:s:{ANNA}", "body:s:inbox default", f"date:l:{BASE + 1}")
    insert(
        rooted, f"address:s:{BERT}", "body:s:sent", f"date:s:{BASE + 2}", uri="content://sms/sent"
    )
    insert(rooted, f"address:s:{BERT}", "body:s:draft 1", "type:i:3", f"date:l:{BASE + 3}")
    insert(rooted, f"address:s:{BERT}", "body:s:draft 2", "type:i:3", f"date:l:{BASE + 4}")
    insert(rooted, "body:s:no address", f"date:l:{BASE + 5}", "read:i:0", "type:i:5")
    before = time.time() * 1000
    insert(rooted, f"address:s:{ANNA}", "body:s:no date", "type:i:1")
    # SQLiteDatabase.insert swallows SQL errors: unknown column, taken _id.
    insert(rooted, "body:s:bad column", "no_such_column:s:x")
    insert(rooted, "body:s:taken id", "_id:i:1")
    rows = {m["body"]: m for m in rooted.messages}
    assert list(rows) == ["existing", "inbox default", "sent", "draft 2", "no address", "no date"]
    assert (rows["inbox default"]["thread_id"], rows["inbox default"]["type"]) == (7, INBOX)
    assert rows["inbox default"]["read"] == 0
    assert (rows["sent"]["type"], rows["sent"]["read"], rows["sent"]["date"]) == (SENT, 1, BASE + 2)
    assert rows["sent"]["thread_id"] == 8 == rows["draft 2"]["thread_id"]
    assert (rows["draft 2"]["type"], rows["draft 2"]["read"]) == (DRAFT, 1)
    assert "thread_id" not in rows["no address"] and rows["no address"]["read"] == 1
    assert before - 1000 <= rows["no date"]["date"] <= time.time() * 1000 + 1000
    assert [m["_id"] for m in rooted.messages] == [1, 2, 3, 4, 5, 6]  # max + 1, reused
    # The next FakePhone row continues after what content inserted.
    assert rooted.add_sms(address=BERT, body="later", date=BASE + 9)["_id"] == 7
    assert rooted.messages[-1]["thread_id"] == 8


# --------------------------------------------------------------------------- query / delete


HOSTILE = "a, b=c\nRow: 7 _id=1, body=forged\n  end="


def test_query_output_is_raw_row_lines(rooted: FakePhone) -> None:
    rooted.add_sms(address=ANNA, body=HOSTILE, date=BASE)
    rooted.add_sms(address=None, body=None, date=BASE + 1, type=DRAFT)
    out = query(rooted, "--projection", "_id:address:type:body", "--sort", "_id ASC")
    assert out == (
        f"Row: 0 _id=1, address={ANNA}, type=1, body={HOSTILE}\n"
        "Row: 1 _id=2, address=NULL, type=3, body=NULL\n"
    )
    # Default: every column in provider order, newest first.
    full = query(rooted)
    assert full.startswith("Row: 0 _id=2, thread_id=2, address=NULL, person=NULL, date=")
    assert full.count("\n") == 2 + HOSTILE.count("\n") and "status=-1, type=3" in full
    assert query(rooted, "--where", "_id=99") == "No result found.\n"
    # The privileged view sees every box; termux-sms-list only inbox and sent.
    assert [r["_id"] for r in sms_list(rooted)] == [1]
    assert query(rooted, "--projection", "_id : body", uri="content://sms/inbox").startswith(
        "Row: 0 _id=1, body=a, b=c\n"
    )
    assert query(rooted, "--projection", "body", uri="content://sms/2") == "Row: 0 body=NULL\n"
    bad = content(rooted, "query", "--uri", "content://sms", "--where", "nonsense ==")
    assert bad.returncode == 1 and b"android.database.sqlite.SQLiteException" in bad.stderr


def test_where_forms_smsbak_uses(rooted: FakePhone) -> None:
    rooted.add_many(
        {"address": ANNA if i % 2 else BERT, "body": f"m{i}", "date": BASE + i * 1000}
        for i in range(10)
    )
    assert queried_ids(rooted, "--where", f"date={BASE + 3000}") == [4]
    assert queried_ids(rooted, "--where", f"date>={BASE + 2000} AND date<={BASE + 4000}") == [
        5,
        4,
        3,
    ]
    assert queried_ids(rooted, "--where", "_id IN (1,3,9)", "--sort", "_id ASC") == [1, 3, 9]
    assert queried_ids(rooted, "--where", f"address='{ANNA}' AND date<{BASE + 5000}") == [4, 2]
    assert queried_ids(rooted, "--where", "body='it''s'") == []


def test_delete(rooted: FakePhone) -> None:
    rooted.add_many({"address": ANNA, "body": str(i), "date": BASE + i} for i in range(5))
    result = content(rooted, "delete", "--uri", "content://sms", "--where", "_id IN (2,4)")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert [r["_id"] for r in sms_list(rooted)] == [1, 3, 5]
    content(rooted, "delete", "--uri", "content://sms/5")
    assert [m["_id"] for m in rooted.messages] == [1, 3]
    rooted.set_appop("ignore")  # deletes are silently refused too
    content(rooted, "delete", "--uri", "content://sms", "--where", "1")
    assert len(rooted.messages) == 2


# --------------------------------------------------------------------------- failures


def test_content_fails_halfway_after_n_inserts(rooted: FakePhone) -> None:
    rooted.set_content(fail_after=2)
    insert(rooted, "body:s:1", f"date:l:{BASE}")
    insert(rooted, "body:s:2", f"date:l:{BASE}")
    for args in (
        ["insert", "--uri", "content://sms", "--bind", "body:s:3"],
        ["query", "--uri", "content://sms"],
    ):
        result = content(rooted, *args)
        assert (result.returncode, result.stdout) == (1, b"")
        lines = result.stderr.decode().splitlines()
        assert lines[0] == "Error while accessing provider:sms"
        assert lines[1].startswith("java.lang.IllegalStateException: ")
    assert bodies(rooted) == ["1", "2"] and rooted.content_inserts_done == 2
    rooted.set(content_error_exit=0)  # what AOSP's Content.java seems to do
    result = content(rooted, "query", "--uri", "content://sms")
    assert result.returncode == 0 and b"Error while accessing provider:sms" in result.stderr
    rooted.set_content(fail_after=None)
    insert(rooted, "body:s:3", f"date:l:{BASE}")
    assert rooted.content_inserts_done == 1


def test_usage_errors(rooted: FakePhone) -> None:
    assert usage_error(content(rooted)) == "Unsupported operation: null"
    assert usage_error(content(rooted, "frob")) == "Unsupported operation: frob"
    assert usage_error(content(rooted, "insert", "--uri", "content://sms")) == (
        "Bindings not specified. Did you specify --bind argument(s)?"
    )
    assert usage_error(content(rooted, "query", "--uri", "content://sms", "--bind", "a:s:b")) == (
        "Unsupported argument: --bind"
    )
    assert usage_error(content(rooted, "query", "--uri", "--where")) == (
        "No value for argument: --uri"
    )
    unknown = content(rooted, "query", "--uri", "content://nope")
    assert unknown.returncode == 1
    assert b"Could not find provider: nope" in unknown.stderr


# --------------------------------------------------------------------------- call log


def test_call_log_insert_and_query(phone: FakePhone) -> None:
    phone.enable_privileged(su=True)  # no app-op needed for the call log
    phone.add_call(number=ANNA, date=BASE, type=1, duration=67, name="Anna")
    result = content(
        phone,
        "insert",
        "--uri",
        "content://call_log/calls",
        "--bind",
        f"number:s:{BERT}",
        "--bind",
        f"date:l:{BASE + 60_000}",
        "--bind",
        "duration:i:5",
        "--bind",
        "type:i:2",
        "--bind",
        "new:i:0",
        via="su",
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    log = json.loads(run(phone, "termux-call-log").stdout)
    assert [(c["phone_number"], c["type"], c["duration"]) for c in log] == [
        (ANNA, "INCOMING", "01:07"),
        (BERT, "OUTGOING", "00:05"),
    ]
    out = query(
        phone,
        "--projection",
        "_id:number:date:duration:type:name:new",
        uri="content://call_log/calls",
    )
    assert out == (
        f"Row: 0 _id=2, number={BERT}, date={BASE + 60_000}, duration=5, type=2, name=NULL, new=0\n"
        f"Row: 1 _id=1, number={ANNA}, date={BASE}, duration=67, type=1, name=Anna, new=NULL\n"
    )
    assert phone.content_inserts_done == 1


# --------------------------------------------------------------------------- logging


def test_every_call_is_logged(rooted: FakePhone) -> None:
    run(
        rooted,
        "rish",
        "-c",
        "appops get com.android.shell WRITE_SMS; content query --uri content://sms",
    )
    run(rooted, "su", "-c", "id -u")
    assert [(c["tool"], c["argv"]) for c in rooted.calls()] == [
        (
            "rish",
            ["-c", "appops get com.android.shell WRITE_SMS; content query --uri content://sms"],
        ),
        ("appops", ["get", "com.android.shell", "WRITE_SMS"]),
        ("content", ["query", "--uri", "content://sms"]),
        ("su", ["-c", "id -u"]),
    ]
