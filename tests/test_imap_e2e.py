"""`smsbak backup`, `restore`, `status` and `doctor` end to end with `destination = "imap"`:
the fake phone, the real CLI, a real Dovecot (which does not merge a second copy of a
Message-ID) over TLS with the test CA as imap_ca_file, or plain on loopback through the
cutting proxy. The CLI runs in the test process (``cli_in_process``) but for the run
killed with SIGKILL, which is a process of its own.

MEANT FOR AFTER THE MERGE: the CLI reaches the IMAP destination only through the wiring
(`smsbak.app.open_destination`, branch `spine`). Until that exists this whole module is
skipped, with that reason, rather than run against a CLI that still only knows Gmail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import smsbak.app
from smsbak.mime import decode_sms
from tests.conftest import Bed
from tests.fakes.dovecot import FULL_USER, Dovecot, LatencyProxy, free_port
from tests.test_backup_e2e import BASE, expected, tricky_corpus

if not hasattr(smsbak.app, "open_destination"):
    pytest.skip(
        "needs the destination wiring (smsbak.app.open_destination, branch spine): "
        "these IMAP end-to-end tests run after the merge",
        allow_module_level=True,
    )

pytest_plugins = ["tests.fakes.dovecot_fixtures"]
pytestmark = pytest.mark.cli_in_process  # popen for the run SIGKILL ends


def use_imap(bed: Bed, dovecot: Dovecot, *, port: int | None = None, **extra: object) -> None:
    """config.toml for IMAP: TLS with the test CA by default, plain on loopback when
    given a proxy's port; the password only in the environment (SMSBAK_IMAP_PASSWORD)."""
    settings: dict[str, object] = {
        "destination": "imap", "imap_host": "127.0.0.1", "imap_user": dovecot.user,
        "call_log": False, "reader": "termux",
    }  # fmt: skip
    if port is None:
        settings |= {"imap_port": dovecot.tls_port, "imap_ca_file": str(dovecot.ca_file)}
    else:
        settings |= {"imap_port": port, "imap_security": "plain"}
    settings.update(extra)
    bed.home.mkdir(parents=True, exist_ok=True)
    bed.configure(**settings)


def run(
    bed: Bed, dovecot: Dovecot, *args: str, password: str = ""
) -> subprocess.CompletedProcess[str]:
    return bed.smsbak(*args, SMSBAK_IMAP_PASSWORD=password or dovecot.password)


def assert_exactly_once(bed: Bed, dovecot: Dovecot) -> None:
    stored = [decode_sms(raw) for raw in dovecot.messages("SMS")]
    want = [expected(row) for row in bed.phone.messages]
    assert sorted(stored, key=repr) == sorted(want, key=repr)
    assert len({m.fingerprint for m in stored}) == len(stored), "a message is stored twice"


def test_the_tricky_corpus_is_stored_exactly_once_over_tls(bed: Bed, dovecot: Dovecot) -> None:
    use_imap(bed, dovecot)
    tricky_corpus(bed.phone)
    result = run(bed, dovecot, "backup")
    assert result.returncode == 0, result.stderr
    assert_exactly_once(bed, dovecot)
    status = run(bed, dovecot, "status")
    assert dovecot.user in status.stdout, status.stdout  # status names the destination


def test_incremental_runs_and_a_no_op_run_without_any_append(
    bed: Bed, dovecot: Dovecot, proxy: LatencyProxy
) -> None:
    use_imap(bed, dovecot, port=proxy.port)
    tricky_corpus(bed.phone)
    assert run(bed, dovecot, "backup").returncode == 0
    appends, connections = proxy.appends_answered, proxy.total_connections
    assert appends == 15
    again = run(bed, dovecot, "backup")
    assert again.returncode == 0, again.stderr
    assert proxy.appends_answered == appends, "a no-op run sent an APPEND"
    # Nothing to upload, so not even a login (benchmarks/noop_destinations.py measures it).
    assert proxy.total_connections == connections, "a no-op run connected to the server"
    with bed.phone.batch():
        for i in range(3):
            bed.phone.add_sms(address="+4911", body=f"new {i}", date=BASE + 3_600_000 + i * 1000)
    assert run(bed, dovecot, "backup").returncode == 0
    assert proxy.appends_answered == appends + 3
    assert_exactly_once(bed, dovecot)


def test_a_connection_dropped_after_the_server_stored_leaves_one_copy(
    bed: Bed, dovecot: Dovecot, proxy: LatencyProxy
) -> None:
    use_imap(bed, dovecot, port=proxy.port)
    tricky_corpus(bed.phone)
    proxy.drop_after_appends = 5
    result = run(bed, dovecot, "backup")
    assert proxy.drops == 1
    if result.returncode != 0:
        result = run(bed, dovecot, "backup")
    assert result.returncode == 0, result.stderr
    assert_exactly_once(bed, dovecot)


@pytest.mark.parametrize("after", [7, 31, 64])
def test_sigkill_mid_run_then_rerun_stores_everything_once(
    bed: Bed, dovecot: Dovecot, proxy: LatencyProxy, after: int
) -> None:
    use_imap(bed, dovecot, port=proxy.port)
    with bed.phone.batch():
        for i in range(100):
            bed.phone.add_sms(address=f"+4950{i % 4}", body=f"kill {i}", date=BASE + i * 1000)
    proxy.latency = 0.03  # the kill must land before the last APPEND, also on a busy machine
    process = bed.popen("backup", SMSBAK_IMAP_PASSWORD=dovecot.password)
    deadline = time.monotonic() + 60
    while proxy.appends_answered < after and time.monotonic() < deadline:
        time.sleep(0.002)
    process.kill()
    process.wait()
    assert 0 < len(dovecot.messages("SMS")) < 100
    proxy.latency = 0.0
    result = run(bed, dovecot, "backup")
    assert result.returncode == 0, result.stderr
    assert_exactly_once(bed, dovecot)


@pytest.mark.parametrize("kind", ["xml", "smsie"])
def test_restore_after_a_factory_reset_reads_the_imap_folder_into_files(
    bed: Bed, dovecot: Dovecot, tmp_path: Path, kind: str
) -> None:
    from smsbak.formats.sbr import read_messages_xml
    from smsbak.formats.smsie import read_messages_zip
    from tests.format_readers import sms_only

    use_imap(bed, dovecot)
    tricky_corpus(bed.phone)
    assert run(bed, dovecot, "backup").returncode == 0
    want = sorted((e.address, e.body, e.date_ms // 1000) for e in map(expected, bed.phone.messages))
    # the phone loses its messages and smsbak its files; the IMAP folder keeps the archive
    bed.phone.clear_messages()
    shutil.rmtree(bed.home)
    use_imap(bed, dovecot)
    path = tmp_path / ("out.zip" if kind == "smsie" else "out.xml")
    result = run(bed, dovecot, "restore", "--to", f"{kind}:{path}")
    assert result.returncode == 0, result.stderr
    reader = read_messages_zip if kind == "smsie" else read_messages_xml
    restored = sorted((s.address, s.body, s.date_ms // 1000) for s in sms_only(reader(path)))
    assert restored == want


def test_doctor_checks_the_imap_login_and_folders(bed: Bed, dovecot: Dovecot) -> None:
    use_imap(bed, dovecot)
    result = run(bed, dovecot, "doctor")
    assert "[OK  ] IMAP login" in result.stdout
    assert "'SMS' does not exist yet" in result.stdout
    assert "Gmail login" not in result.stdout


def test_a_wrong_password_exits_3_with_the_app_password_steps(
    bed: Bed, dovecot: Dovecot, tls_stranger: LatencyProxy
) -> None:
    # from a loopback address of its own (TLS passed through): Dovecot slows the next
    # logins of an address that failed one, and the check below logs in from 127.0.0.1
    use_imap(bed, dovecot, imap_port=tls_stranger.port)
    bed.phone.add_sms(address="+4911", body="hello", date=BASE)
    result = run(bed, dovecot, "backup", password="wrong")
    assert result.returncode == 3, result.stderr
    assert "2-Step Verification" in result.stderr
    assert dovecot.messages("SMS") == []


def test_a_wrong_ca_exits_5_naming_the_certificate(bed: Bed, dovecot: Dovecot) -> None:
    use_imap(bed, dovecot, imap_ca_file=str(dovecot.other_ca_file))
    bed.phone.add_sms(address="+4911", body="hello", date=BASE)
    result = run(bed, dovecot, "backup")
    assert result.returncode == 5, result.stderr
    assert "certificate" in result.stderr.lower()
    assert dovecot.messages("SMS") == []


def test_an_unreachable_server_exits_5(bed: Bed, dovecot: Dovecot) -> None:
    use_imap(bed, dovecot, port=free_port())
    bed.phone.add_sms(address="+4911", body="hello", date=BASE)
    result = run(bed, dovecot, "backup")
    assert result.returncode == 5, result.stderr
    assert "cannot reach" in result.stderr


def test_status_json_names_the_imap_destination(bed: Bed, dovecot: Dovecot) -> None:
    use_imap(bed, dovecot)
    bed.phone.add_sms(address="+4911", body="hello", date=BASE)
    assert run(bed, dovecot, "backup").returncode == 0
    status = run(bed, dovecot, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert "imap:" in json.dumps(json.loads(status.stdout))


def test_over_quota_stops_with_exit_5_and_keeps_what_was_stored(bed: Bed, dovecot: Dovecot) -> None:
    use_imap(bed, dovecot, imap_user=FULL_USER)
    with bed.phone.batch():
        for i in range(60):
            bed.phone.add_sms(address="+4912", body=f"{i} " + "x" * 1500, date=BASE + i * 1000)
    result = run(bed, dovecot, "backup")
    assert result.returncode == 5, result.stderr
    assert "OVERQUOTA" in result.stderr
    stored = dovecot.messages("SMS", user=FULL_USER)
    assert 0 < len(stored) < 60
    again = run(bed, dovecot, "backup")
    assert again.returncode == 5
    after = dovecot.messages("SMS", user=FULL_USER)
    assert len({decode_sms(raw).fingerprint for raw in after}) == len(after) == len(stored)
