"""The IMAP destination against a real Dovecot (which, unlike Gmail, keeps a second copy
of a Message-ID), directly and through `smsbak auth --imap` / `smsbak doctor`.

The proxy between them adds latency, counts connections, and cuts a connection right
after the server stored a message, before the client heard so.
"""

from __future__ import annotations

import base64
import datetime
import os
import stat
import threading
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from smsbak.cli import main
from smsbak.config import load_settings
from smsbak.destinations.imap import (
    ImapAccount,
    ImapDestination,
    ImapError,
    ImapLimitReached,
    ImapThrottled,
    nonsync_literal_allowed,
    open_imap_destination,
)
from smsbak.destinations.imap_setup import doctor_checks, suggested_host
from smsbak.errors import AuthError, ExitCode, UsageError
from smsbak.paths import Paths
from smsbak.ports import Confirmed, Outgoing, Rejected
from tests.fakes.dovecot import FULL_USER, Dovecot, LatencyProxy, free_port, stranger_ip

pytest_plugins = ["tests.fakes.dovecot_fixtures"]

NO_WAIT = (0.0, 0.0, 0.0)


def message(n: int, size: int = 0, seen: bool = True) -> Outgoing:
    mid = f"<test{n:05d}@smsbak.test>"
    body = b"x" * size if size else f"message {n}".encode()
    raw = (
        f"Message-ID: {mid}\r\nSubject: SMS {n}\r\nX-smssync-datatype: SMS\r\n\r\n".encode()
        + body
        + b"\r\n"
    )
    return Outgoing(
        key=f"k{n}", raw=raw, message_id=mid, date_ms=1_600_000_000_000 + n * 1000, seen=seen
    )


def account(server: Dovecot, **overrides: object) -> ImapAccount:
    values: dict[str, object] = {
        "host": "127.0.0.1", "port": server.port, "user": server.user,
        "password": server.password, "security": "plain", "connections": 2,
    }  # fmt: skip
    values.update(overrides)
    return ImapAccount(**values)  # type: ignore[arg-type]


class Sink:
    def __init__(self) -> None:
        self.confirmed: list[Confirmed] = []
        self.rejected: list[Rejected] = []
        self.batches = 0

    def on_confirmed(self, batch: object) -> None:
        self.confirmed.extend(batch)  # type: ignore[call-overload]

    def upload(self, destination: ImapDestination, items: Iterable[Outgoing], folder: str) -> None:
        destination.upload(
            items, folder, on_confirmed=self.on_confirmed, on_rejected=self.rejected.append
        )


def message_ids(raws: list[bytes]) -> list[bytes]:
    return sorted(
        line for raw in raws for line in raw.split(b"\r\n") if line.startswith(b"Message-ID:")
    )


# --- the round trip ------------------------------------------------------------------------


def test_upload_then_list_then_fetch_gives_the_same_bytes_over_tls_with_the_ca_file(
    dovecot: Dovecot,
) -> None:
    destination = ImapDestination(
        account(dovecot, port=dovecot.tls_port, security="tls", ca_file=str(dovecot.ca_file))
    )
    items = [message(n, seen=n % 2 == 0) for n in range(7)]
    folder = destination.ensure_folder("SMS")
    sink = Sink()
    sink.upload(destination, items, folder)
    assert sorted(c.key for c in sink.confirmed) == sorted(i.key for i in items)
    assert sink.rejected == []
    ids = list(destination.list_ids(folder))
    assert sorted(ids) == sorted(c.remote_id for c in sink.confirmed)
    fetched: list[tuple[str, bytes]] = []
    destination.fetch_raw(ids, on_fetched=fetched.extend, on_rejected=pytest.fail)
    by_id = dict(fetched)
    for confirmed in sink.confirmed:
        item = next(i for i in items if i.key == confirmed.key)
        assert by_id[confirmed.remote_id] == item.raw
    assert destination.count(folder) == 7
    destination.close()
    # INTERNALDATE is the message's date; \Seen follows its read state
    client = dovecot.client()
    client.select_folder("SMS", readonly=True)
    info = client.fetch(client.search("ALL"), ["INTERNALDATE", "FLAGS", "BODY.PEEK[HEADER]"])
    for data in info.values():
        n = int(data[b"BODY[HEADER]"].split(b"SMS ", 1)[1].split(b"\r\n", 1)[0])
        expected = datetime.datetime.fromtimestamp(1_600_000_000 + n, datetime.UTC)
        assert data[b"INTERNALDATE"].astimezone(datetime.UTC) == expected
        assert (b"\\Seen" in data[b"FLAGS"]) == (n % 2 == 0)
    client.logout()


def test_starttls_upgrades_before_the_login(dovecot: Dovecot, proxy: LatencyProxy) -> None:
    destination = ImapDestination(
        account(dovecot, port=proxy.port, security="starttls", ca_file=str(dovecot.ca_file))
    )
    folder = destination.ensure_folder("SMS")
    sink = Sink()
    sink.upload(destination, [message(1)], folder)
    destination.close()
    assert len(sink.confirmed) == 1
    assert dovecot.messages("SMS") == [message(1).raw]


@pytest.mark.parametrize("name", ["Anrufliste", "Журнал звонков"])
def test_folder_names_outside_ascii_work(dovecot: Dovecot, name: str) -> None:
    destination = ImapDestination(account(dovecot))
    assert destination.find_folder(name) is None
    assert destination.ensure_folder(name) == name
    assert destination.ensure_folder(name) == name  # a second time finds it
    sink = Sink()
    sink.upload(destination, [message(1)], name)
    assert destination.count(name) == 1
    destination.close()
    assert dovecot.messages(name) == [message(1).raw]
    on_disk = [p.name for p in dovecot.maildir.iterdir() if p.name.startswith(".")]
    if name != "Anrufliste":  # stored in modified UTF-7, as RFC 3501 wants
        assert any("&" in entry for entry in on_disk), on_disk


def next_run(destination: ImapDestination, folder: str, items: list[Outgoing]) -> Sink:
    """What the engine does for items an earlier run left in flight on a server that
    does not merge: ask by Message-ID first, send only what is missing."""
    assert destination.capabilities.merges_message_ids is False
    found = destination.find_message_ids(folder, [i.message_id for i in items])
    sink = Sink()
    sink.confirmed += [
        Confirmed(i.key, found[i.message_id]) for i in items if i.message_id in found
    ]
    sink.upload(destination, [i for i in items if i.message_id not in found], folder)
    return sink


def test_the_same_message_id_twice_leaves_one_copy(dovecot: Dovecot) -> None:
    destination = ImapDestination(account(dovecot, connections=3))
    folder = destination.ensure_folder("SMS")
    first = Sink()
    first.upload(destination, [message(1), message(2), message(1)], folder)  # one call
    second = next_run(destination, folder, [message(2), message(3)])  # the next run
    destination.close()
    assert len(dovecot.messages("SMS")) == 3
    assert sorted(c.key for c in first.confirmed) == ["k1", "k1", "k2"]
    assert len({c.remote_id for c in first.confirmed if c.key == "k1"}) == 1
    assert {c.remote_id for c in first.confirmed if c.key == "k2"} == {
        c.remote_id for c in second.confirmed if c.key == "k2"
    }


def test_find_message_ids_names_what_the_folder_holds(dovecot: Dovecot) -> None:
    destination = ImapDestination(account(dovecot))
    folder = destination.ensure_folder("SMS")
    sink = Sink()
    sink.upload(destination, [message(n) for n in range(3)], folder)
    asked = [message(1).message_id, message(9).message_id]
    found = destination.find_message_ids(folder, asked)
    assert found == {
        message(1).message_id: next(c.remote_id for c in sink.confirmed if c.key == "k1")
    }
    many = [message(n).message_id for n in range(60)]  # reads the folder's headers instead
    assert set(destination.find_message_ids(folder, many)) == {
        message(n).message_id for n in range(3)
    }
    assert destination.find_message_ids("Nowhere", asked) == {}
    destination.close()


# --- drops, limits, connections ---------------------------------------------------------------


@pytest.mark.parametrize("literal_plus", [True, False], ids=["one-round-trip", "synchronizing"])
@pytest.mark.parametrize("connections", [1, 3])
def test_a_drop_after_the_server_stored_a_message_leaves_one_copy(
    dovecot: Dovecot, proxy: LatencyProxy, connections: int, literal_plus: bool
) -> None:
    if not literal_plus:
        proxy.capability_rewrite = {b" LITERAL+": b""}
    destination = ImapDestination(
        account(dovecot, port=proxy.port, connections=connections), retry_delays=NO_WAIT
    )
    folder = destination.ensure_folder("SMS")
    proxy.drop_after_appends = 4
    items = [message(n) for n in range(12)]
    sink = Sink()
    sink.upload(destination, items, folder)
    destination.close()
    assert proxy.drops == 1  # the 4th APPEND was stored, its answer never arrived
    assert (proxy.continuations == 0) == literal_plus  # the path named is the path taken
    assert sorted(c.key for c in sink.confirmed) == sorted(i.key for i in items)
    stored = dovecot.messages("SMS")
    assert len(stored) == 12, "Dovecot does not merge: a re-send would be a second copy"
    assert message_ids(stored) == message_ids([i.raw for i in items])
    assert len({c.remote_id for c in sink.confirmed}) == 12


def test_a_message_stored_by_an_interrupted_run_is_found_not_sent_again(
    dovecot: Dovecot, proxy: LatencyProxy
) -> None:
    """The run was killed after the server stored a message and before smsbak recorded
    it: the next run finds it by Message-ID instead of APPENDing it again."""
    client = dovecot.client()
    client.create_folder("SMS")
    client.append("SMS", message(2).raw)
    client.logout()
    destination = ImapDestination(account(dovecot, port=proxy.port))
    sink = next_run(destination, "SMS", [message(n) for n in range(4)])
    destination.close()
    assert sorted(c.key for c in sink.confirmed) == ["k0", "k1", "k2", "k3"]
    assert proxy.appends_answered == 3
    assert len(dovecot.messages("SMS")) == 4


@pytest.mark.parametrize("configured", [1, 2, 4])
def test_never_more_connections_than_configured(
    dovecot: Dovecot, proxy: LatencyProxy, configured: int
) -> None:
    proxy.latency = 0.002
    destination = ImapDestination(account(dovecot, port=proxy.port, connections=configured))
    folder = destination.ensure_folder("SMS")
    sink = Sink()
    sink.upload(destination, [message(n) for n in range(60)], folder)
    list(destination.list_ids(folder))
    assert destination.count(folder) == 60
    destination.close()
    assert len(sink.confirmed) == 60
    assert proxy.max_concurrent == configured  # all of them used, never one more


def test_over_quota_stops_cleanly_and_keeps_what_was_confirmed(dovecot: Dovecot) -> None:
    destination = ImapDestination(account(dovecot, user=FULL_USER, connections=1))
    folder = destination.ensure_folder("SMS")
    sink = Sink()
    items = [message(n, size=6000) for n in range(20)]
    with pytest.raises(ImapLimitReached) as raised:
        sink.upload(destination, items, folder)
    destination.close()
    assert "OVERQUOTA" in raised.value.message
    assert raised.value.exit_code == ExitCode.GMAIL
    stored = dovecot.messages("SMS", user=FULL_USER)
    assert 0 < len(sink.confirmed) == len(stored) < 20  # every stored one was confirmed
    assert sink.rejected == []


def test_a_bye_session_expired_stops_the_run(dovecot: Dovecot, proxy: LatencyProxy) -> None:
    destination = ImapDestination(account(dovecot, port=proxy.port, connections=1))
    folder = destination.ensure_folder("SMS")
    proxy.bye_after_appends = 3
    sink = Sink()
    with pytest.raises((ImapLimitReached, ImapThrottled)) as raised:
        sink.upload(destination, [message(n) for n in range(10)], folder)
    destination.close()
    assert "Session expired" in raised.value.message
    assert [c.key for c in sink.confirmed] == ["k0", "k1"]  # the 3rd is unknown, not claimed
    # the next run confirms the 3rd by its Message-ID and sends only the rest
    destination = ImapDestination(account(dovecot, port=proxy.port, connections=1))
    again = next_run(destination, folder, [message(n) for n in range(2, 10)])
    destination.close()
    assert len(again.confirmed) == 8
    assert len(dovecot.messages("SMS")) == 10


def test_a_20_mb_message_goes_through_with_a_synchronizing_literal(
    dovecot: Dovecot, proxy: LatencyProxy
) -> None:
    """Even where LITERAL+ allows any size: the server may refuse it before 20 MB go."""
    photo = base64.encodebytes(os.urandom(15 * 1024 * 1024)).replace(b"\n", b"\r\n")
    big = Outgoing(
        key="mms", message_id="<big@smsbak.test>", date_ms=1_600_000_000_000,
        raw=b"Message-ID: <big@smsbak.test>\r\nContent-Transfer-Encoding: base64\r\n\r\n" + photo,
    )  # fmt: skip
    assert len(big.raw) > 20 * 1000 * 1000
    destination = ImapDestination(account(dovecot, port=proxy.port, connections=1))
    folder = destination.ensure_folder("SMS")
    sink = Sink()
    sink.upload(destination, [big], folder)
    assert b"LITERAL+" in destination.server_capabilities()
    assert proxy.append_literals == [str(len(big.raw)).encode()]  # {n}, not {n+}
    assert proxy.continuations == 1
    fetched: list[tuple[str, bytes]] = []
    destination.fetch_raw(
        destination.list_ids(folder), on_fetched=fetched.extend, on_rejected=pytest.fail
    )
    destination.close()
    assert [c.key for c in sink.confirmed] == ["mms"]
    assert fetched[0][1] == big.raw


# --- round trips per APPEND ------------------------------------------------------------------


def sized(n: int, total: int) -> Outgoing:
    """A message of exactly ``total`` bytes."""
    overhead = len(message(n, size=1).raw) - 1
    item = message(n, size=total - overhead)
    assert len(item.raw) == total
    return item


def upload_through(dovecot: Dovecot, proxy: LatencyProxy, items: list[Outgoing]) -> Sink:
    destination = ImapDestination(account(dovecot, port=proxy.port, connections=1))
    folder = destination.ensure_folder("SMS")
    sink = Sink()
    sink.upload(destination, items, folder)
    destination.close()
    assert sorted(c.key for c in sink.confirmed) == sorted(i.key for i in items)
    assert all(c.remote_id for c in sink.confirmed)  # APPENDUID read from the answer
    return sink


def assert_stored_as_sent(dovecot: Dovecot, items: list[Outgoing]) -> None:
    """The same bytes, INTERNALDATE and \\Seen, in the order sent (one connection)."""
    client = dovecot.client()
    client.select_folder("SMS", readonly=True)
    info = client.fetch(client.search("ALL"), ["INTERNALDATE", "FLAGS", "BODY.PEEK[]"])
    client.logout()
    stored = [info[uid] for uid in sorted(info)]
    assert [data[b"BODY[]"] for data in stored] == [i.raw for i in items]
    for data, item in zip(stored, items, strict=True):
        when = datetime.datetime.fromtimestamp(item.date_ms / 1000, datetime.UTC)
        assert data[b"INTERNALDATE"].astimezone(datetime.UTC) == when
        assert (b"\\Seen" in data[b"FLAGS"]) == item.seen


def test_with_literal_plus_advertised_an_append_takes_one_round_trip(
    dovecot: Dovecot, proxy: LatencyProxy
) -> None:
    items = [message(n, seen=n % 2 == 0) for n in range(6)] + [sized(6, 200_000)]
    upload_through(dovecot, proxy, items)
    assert proxy.continuations == 0  # never waited for the server's "+"
    assert proxy.append_literals == [b"%d+" % len(i.raw) for i in items]
    assert proxy.appends_answered == len(items)  # one at a time, each answered
    assert_stored_as_sent(dovecot, items)


def test_without_literal_plus_every_append_waits_for_the_continuation(
    dovecot: Dovecot, proxy: LatencyProxy
) -> None:
    proxy.capability_rewrite = {b" LITERAL+": b""}  # Dovecot would take it; we must not try
    items = [message(n, seen=n % 2 == 0) for n in range(6)]
    upload_through(dovecot, proxy, items)
    assert proxy.continuations == len(items)
    assert proxy.append_literals == [b"%d" % len(i.raw) for i in items]
    assert_stored_as_sent(dovecot, items)


def test_with_literal_minus_only_literals_up_to_4096_bytes_skip_the_continuation(
    dovecot: Dovecot, proxy: LatencyProxy
) -> None:
    """Gmail's LITERAL-: a longer non-synchronizing literal would be a protocol error."""
    proxy.capability_rewrite = {b"LITERAL+": b"LITERAL-"}
    items = [sized(1, 4096), sized(2, 4097), message(3)]
    upload_through(dovecot, proxy, items)
    assert proxy.append_literals == [b"4096+", b"4097", b"%d+" % len(items[2].raw)]
    assert proxy.continuations == 1
    assert_stored_as_sent(dovecot, items)


def test_bare_line_feeds_are_counted_as_the_crlf_the_server_receives(
    dovecot: Dovecot, proxy: LatencyProxy
) -> None:
    """imaplib turns every line end into CRLF; the announced length must be the sent one."""
    mid = "<lf@smsbak.test>"
    lf = Outgoing(key="lf", raw=f"Message-ID: {mid}\nSubject: x\n\nbody\n".encode(),
                  message_id=mid, date_ms=1_600_000_000_000)  # fmt: skip
    upload_through(dovecot, proxy, [lf])
    crlf = lf.raw.replace(b"\n", b"\r\n")
    assert proxy.append_literals == [b"%d+" % len(crlf)]
    assert dovecot.messages("SMS") == [crlf]


def test_the_one_round_trip_literal_only_where_the_capabilities_allow_it() -> None:
    plus, minus = frozenset([b"IMAP4rev1", b"LITERAL+"]), frozenset([b"literal-"])
    assert nonsync_literal_allowed(plus, 1) and nonsync_literal_allowed(plus, 256 * 1024)
    assert not nonsync_literal_allowed(plus, 256 * 1024 + 1)  # big: synchronizing anyway
    assert nonsync_literal_allowed(minus, 4096) and not nonsync_literal_allowed(minus, 4097)
    assert not nonsync_literal_allowed(frozenset([b"IMAP4rev1", b"UIDPLUS"]), 10)


def test_fetch_comes_in_chunks_and_unknown_ids_are_rejected(dovecot: Dovecot) -> None:
    destination = ImapDestination(account(dovecot, connections=4))
    folder = destination.ensure_folder("SMS")
    sink = Sink()
    sink.upload(destination, [message(n) for n in range(120)], folder)
    batches: list[int] = []
    rejected: list[str] = []
    ids = [*destination.list_ids(folder), "1:999999", "garbage"]
    destination.fetch_raw(
        ids,
        on_fetched=lambda b: batches.append(len(b)),
        on_rejected=lambda i, _: rejected.append(i),
    )
    destination.close()
    assert sum(batches) == 120 and max(batches) <= 50 and len(batches) >= 3
    assert sorted(rejected) == ["1:999999", "garbage"]


def test_gmail_is_known_to_merge_and_dovecot_is_not(dovecot: Dovecot) -> None:
    gmail = ImapDestination(ImapAccount("imap.gmail.com", 993, "me@gmail.com", "pw"))
    assert gmail.capabilities.merges_message_ids is True
    assert gmail.identity == "imap:me@gmail.com@imap.gmail.com:993"
    ours = ImapDestination(account(dovecot))
    assert ours.capabilities.merges_message_ids is False
    assert ours.capabilities.readable is True
    assert b"UIDPLUS" in ours.server_capabilities()
    assert ours.capabilities.merges_message_ids is False  # no X-GM-EXT-1 on Dovecot
    ours.close()


# --- bad logins, bad certificates, no server ----------------------------------------------------


def test_a_wrong_password_is_an_auth_error_saying_how_to_make_an_app_password(
    dovecot: Dovecot, stranger: LatencyProxy
) -> None:
    destination = ImapDestination(account(dovecot, port=stranger.port, password="wrong"))
    with pytest.raises(AuthError) as raised:
        destination.ensure_folder("SMS")
    assert raised.value.exit_code == ExitCode.AUTH
    assert "2-Step Verification" in (raised.value.hint or "")
    assert "Microsoft 365" in (raised.value.hint or "")


def test_a_wrong_ca_names_the_certificate_problem_and_never_falls_back(
    dovecot: Dovecot,
) -> None:
    log_before = len(dovecot.log_text())
    with LatencyProxy(dovecot.tls_port) as tls_proxy:
        destination = ImapDestination(
            account(
                dovecot, port=tls_proxy.port, security="tls", ca_file=str(dovecot.other_ca_file)
            )
        )
        with pytest.raises(ImapError) as raised:
            destination.ensure_folder("SMS")
    assert "certificate" in raised.value.message.lower()
    assert "never falls back" in raised.value.message
    assert tls_proxy.total_connections == 1  # no second, plain attempt
    assert "Login: user=" not in dovecot.log_text()[log_before:]


def test_plain_imap_to_another_machine_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'imap_host = "imap.example.com"\nimap_security = "plain"\n'
    )
    with pytest.raises(UsageError) as raised:
        load_settings(Paths(tmp_path, tmp_path), environ={})
    assert "unencrypted" in raised.value.message
    (tmp_path / "config.toml").write_text('imap_host = "127.0.0.1"\nimap_security = "plain"\n')
    assert load_settings(Paths(tmp_path, tmp_path), environ={}).imap_security == "plain"


# --- the wiring factory and the stored password --------------------------------------------------


def configure(home: Path, server: Dovecot, **extra: object) -> None:
    values: dict[str, object] = {
        "destination": "imap", "imap_host": "127.0.0.1", "imap_port": server.tls_port,
        "imap_user": server.user, "imap_ca_file": str(server.ca_file),
    }  # fmt: skip
    values.update(extra)
    home.mkdir(parents=True, exist_ok=True)
    lines = [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in values.items()]
    (home / "config.toml").write_text("\n".join(lines) + "\n")


def test_the_factory_reads_the_settings_and_the_environment_overrides_the_stored_password(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = Paths(tmp_path, tmp_path)
    configure(tmp_path, dovecot)
    (tmp_path / "imap-password").write_text("stale\n")
    (tmp_path / "imap-password").chmod(0o644)
    monkeypatch.setenv("SMSBAK_IMAP_PASSWORD", dovecot.password)
    destination = open_imap_destination(paths, load_settings(paths, environ={}))
    assert destination.identity == f"imap:{dovecot.user}@127.0.0.1:{dovecot.tls_port}"
    assert destination.ensure_folder("SMS") == "SMS"
    destination.close()
    monkeypatch.delenv("SMSBAK_IMAP_PASSWORD")
    with LatencyProxy(dovecot.port, source_ip=stranger_ip()) as stranger:
        configure(tmp_path, dovecot, imap_port=stranger.port, imap_security="plain")
        stale = open_imap_destination(paths, load_settings(paths, environ={}))
        assert stat.S_IMODE((tmp_path / "imap-password").stat().st_mode) == 0o600
        with pytest.raises(AuthError):
            stale.find_folder("SMS")


def test_the_default_port_follows_the_security(tmp_path: Path) -> None:
    paths = Paths(tmp_path, tmp_path)
    (tmp_path / "imap-password").write_text("pw\n")
    for security, port in (("tls", 993), ("starttls", 143)):
        (tmp_path / "config.toml").write_text(
            f'imap_host = "imap.example.com"\nimap_user = "u"\nimap_security = "{security}"\n'
        )
        destination = open_imap_destination(paths, load_settings(paths, environ={}))
        assert destination.identity == f"imap:u@imap.example.com:{port}"


def test_no_password_anywhere_says_how_to_set_it_up(tmp_path: Path) -> None:
    paths = Paths(tmp_path, tmp_path)
    (tmp_path / "config.toml").write_text('imap_host = "imap.example.com"\nimap_user = "u"\n')
    with pytest.raises(AuthError) as raised:
        open_imap_destination(paths, load_settings(paths, environ={}))
    assert "smsbak auth --imap" in (raised.value.hint or "")


# --- smsbak auth --imap ---------------------------------------------------------------------


def auth(home: Path, *args: str, password: str = "") -> object:
    return CliRunner().invoke(
        main, ["auth", "--imap", *args], input=password + "\n", env={"SMSBAK_HOME": str(home)}
    )


def test_auth_imap_logs_in_stores_the_password_and_keeps_other_settings(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('# mine\nlabel = "Texts"\nimap_user = "old"\n')
    result = auth(
        home, "--host", "127.0.0.1", "--user", dovecot.user, "--port", str(dovecot.tls_port),
        "--ca-file", str(dovecot.ca_file), password=dovecot.password,
    )  # fmt: skip
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "whole mailbox" in result.output  # type: ignore[attr-defined]
    assert dovecot.password not in result.output  # type: ignore[attr-defined]
    password_file = home / "imap-password"
    assert password_file.read_text() == dovecot.password + "\n"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    text = (home / "config.toml").read_text()
    assert text.startswith("# mine\n")
    config = tomllib.loads(text)
    assert config["label"] == "Texts"
    assert config["destination"] == "imap"
    assert config["imap_user"] == dovecot.user
    assert config["imap_port"] == dovecot.tls_port
    settings = load_settings(Paths(home, home), environ={})
    assert settings.imap_ca_file == str(dovecot.ca_file.resolve())
    destination = open_imap_destination(Paths(home, home), settings)
    assert destination.ensure_folder("SMS") == "SMS"
    destination.close()


def test_auth_imap_with_a_wrong_password_exits_3_and_stores_nothing(
    dovecot: Dovecot, stranger: LatencyProxy, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    result = auth(
        home, "--host", "127.0.0.1", "--user", dovecot.user, "--security", "plain",
        "--port", str(stranger.port), password="wrong",
    )  # fmt: skip
    assert result.exit_code == ExitCode.AUTH  # type: ignore[attr-defined]
    assert "app password" in result.output  # type: ignore[attr-defined]
    assert "2-Step Verification" in result.output  # type: ignore[attr-defined]
    assert not (home / "imap-password").exists()
    assert not (home / "config.toml").exists()


def test_auth_imap_with_a_wrong_ca_names_the_certificate(dovecot: Dovecot, tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = auth(
        home, "--host", "127.0.0.1", "--user", dovecot.user, "--port", str(dovecot.tls_port),
        "--ca-file", str(dovecot.other_ca_file), password=dovecot.password,
    )  # fmt: skip
    assert result.exit_code == ExitCode.GMAIL  # type: ignore[attr-defined]
    assert "certificate" in result.output.lower()  # type: ignore[attr-defined]
    assert not (home / "imap-password").exists()


def test_auth_imap_to_an_unreachable_server_exits_5(tmp_path: Path) -> None:
    result = auth(
        tmp_path / "home", "--host", "127.0.0.1", "--user", "u", "--port", str(free_port()),
        password="pw",
    )  # fmt: skip
    assert result.exit_code == ExitCode.GMAIL  # type: ignore[attr-defined]
    assert "cannot reach" in result.output  # type: ignore[attr-defined]


def test_auth_imap_refuses_plain_to_another_machine(tmp_path: Path) -> None:
    result = auth(
        tmp_path / "home", "--host", "imap.example.com", "--user", "u", "--security", "plain",
        password="pw",
    )  # fmt: skip
    assert result.exit_code == ExitCode.USAGE  # type: ignore[attr-defined]
    assert "refusing plain IMAP" in result.output  # type: ignore[attr-defined]


def test_auth_without_imap_still_needs_client_secrets(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["auth"], env={"SMSBAK_HOME": str(tmp_path)})
    assert result.exit_code == ExitCode.USAGE
    assert "--client-secrets" in result.output


# --- doctor ---------------------------------------------------------------------------------


def test_doctor_checks_login_folders_and_capabilities(
    dovecot: Dovecot, stranger: LatencyProxy, tmp_path: Path
) -> None:
    paths = Paths(tmp_path, tmp_path)
    configure(tmp_path, dovecot)
    (tmp_path / "imap-password").write_text(dovecot.password)
    checks = doctor_checks(paths, load_settings(paths, environ={}))
    assert [(c.name, c.result) for c in checks] == [
        ("IMAP login", "ok"), ("IMAP capabilities", "ok"),
        ("IMAP folder", "warn"), ("IMAP folder", "warn"),
    ]  # fmt: skip
    client = dovecot.client()
    client.create_folder("SMS")
    client.create_folder("Call log")
    client.logout()
    checks = doctor_checks(paths, load_settings(paths, environ={}))
    assert all(c.result == "ok" for c in checks), checks
    (tmp_path / "imap-password").write_text("wrong")
    configure(tmp_path, dovecot, imap_port=stranger.port, imap_security="plain")
    checks = doctor_checks(paths, load_settings(paths, environ={}))
    assert [(c.name, c.result) for c in checks] == [("IMAP login", "fail")]
    assert "app password" in (checks[0].fix or "")


def test_should_stop_ends_the_upload_soon_and_nothing_sent_goes_unreported(
    dovecot: Dovecot, proxy: LatencyProxy
) -> None:
    proxy.latency = 0.01
    destination = ImapDestination(account(dovecot, port=proxy.port, connections=2))
    folder = destination.ensure_folder("SMS")
    sink = Sink()
    destination.upload(
        [message(n) for n in range(300)], folder, on_confirmed=sink.on_confirmed,
        on_rejected=sink.rejected.append, should_stop=lambda: len(sink.confirmed) >= 5,
    )  # fmt: skip
    destination.close()
    assert 5 <= len(sink.confirmed) <= 7  # the messages at hand finish, no more are sent
    assert len(dovecot.messages("SMS")) == len(sink.confirmed)


def test_a_message_without_message_id_is_rejected_not_risked(dovecot: Dovecot) -> None:
    destination = ImapDestination(account(dovecot))
    folder = destination.ensure_folder("SMS")
    sink = Sink()
    anonymous = Outgoing(key="anon", raw=b"Subject: no id\r\n\r\nhi\r\n")
    sink.upload(destination, [anonymous, message(1)], folder)
    destination.close()
    assert [r.key for r in sink.rejected] == ["anon"]
    assert "Message-ID" in sink.rejected[0].reason
    assert [c.key for c in sink.confirmed] == ["k1"]
    assert len(dovecot.messages("SMS")) == 1


def test_a_message_over_the_servers_size_limit_is_rejected_and_the_run_goes_on(
    dovecot: Dovecot,
) -> None:
    destination = ImapDestination(account(dovecot, connections=1))
    folder = destination.ensure_folder("SMS")
    sink = Sink()
    huge = message(2, size=25 * 1024 * 1024)  # the test Dovecot takes at most 24 MiB
    sink.upload(destination, [message(1), huge, message(3)], folder)
    destination.close()
    assert [r.key for r in sink.rejected] == ["k2"]
    assert sorted(c.key for c in sink.confirmed) == ["k1", "k3"]


@pytest.mark.parametrize("configured", [1, 3])
def test_items_that_look_messages_up_while_uploading_do_not_deadlock(
    dovecot: Dovecot, proxy: LatencyProxy, configured: int
) -> None:
    """The engine's item generator asks find_message_ids between chunks, on the same
    destination, while the upload holds connections: it must get one."""
    destination = ImapDestination(account(dovecot, port=proxy.port, connections=configured))
    folder = destination.ensure_folder("SMS")
    asked: list[int] = []

    def items() -> Iterator[Outgoing]:
        for n in range(90):
            if n % 30 == 0:
                mids = [message(m).message_id for m in range(n, n + 30)]
                asked.append(len(destination.find_message_ids(folder, mids)))
            yield message(n)

    sink = Sink()
    worker = threading.Thread(target=sink.upload, args=(destination, items(), folder))
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "upload deadlocked"
    destination.close()
    assert asked == [0, 0, 0]
    assert len(sink.confirmed) == 90
    assert proxy.max_concurrent <= configured


def test_well_known_addresses_suggest_their_server() -> None:
    assert suggested_host("me@gmail.com") == "imap.gmail.com"
    assert suggested_host("me@icloud.com") == "imap.mail.me.com"
    assert suggested_host("me@GMX.de") == "imap.gmx.net"
    assert suggested_host("me@example.org") is None


def test_tls_to_a_plain_port_is_a_handshake_error_not_a_fallback(dovecot: Dovecot) -> None:
    destination = ImapDestination(
        account(dovecot, security="tls", ca_file=str(dovecot.ca_file))  # port: the plain one
    )
    with pytest.raises(ImapError) as raised:
        destination.find_folder("SMS")
    assert "TLS handshake" in raised.value.message
    assert "143" in (raised.value.hint or "")
