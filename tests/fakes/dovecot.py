"""A real, throwaway Dovecot (Debian's dovecot-imapd) on loopback, and a TCP proxy.

The IMAP destination is tested against the real server rather than a twin because
the facts that matter (Dovecot stores a second APPEND of one Message-ID as a second
message, modified UTF-7 mailbox names, APPENDUID, literals of 20 MB, TLS certificate
checks) are the server's, not ours. Startup takes a few tens of milliseconds.

Dovecot's login processes refuse to run as root, so when the suite runs as root the
whole server runs as an unprivileged account (``nobody``) that owns the temporary
directory. Every instance picks free ports, so pytest-xdist workers each get their own.

The proxy (:class:`LatencyProxy`) sits between client and server on loopback: it can
delay every server answer (a phone's round trip) and cut the connection right after
the server answered an APPEND, the moment at which the client cannot know whether
the message was stored.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import ipaddress
import os
import pwd
import re
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

DOVECOT = "/usr/sbin/dovecot"
USER = "smsbak@example.org"
PASSWORD = "app-password-1234"
FULL_USER = "full@example.org"  # a mailbox with a tiny quota: APPEND answers [OVERQUOTA]
FULL_QUOTA = "40k"


def dovecot_available() -> str | None:
    """None when a Dovecot can be started here, else the reason it cannot."""
    if not Path(DOVECOT).exists():
        return f"{DOVECOT} is not installed (apt-get install dovecot-imapd)"
    return None


_next_stranger = iter(range(2, 250))


def stranger_ip() -> str:
    """A loopback address of its own for a test that fails logins on purpose."""
    return f"127.0.{os.getpid() % 250}.{next(_next_stranger)}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- certificates ------------------------------------------------------------------


def make_ca(directory: Path, name: str) -> tuple[Path, object, object]:
    """A self-signed CA: (its PEM path, key, certificate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    path = directory / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def make_server_cert(directory: Path, ca_key: object, ca_cert: object) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by the CA: (cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    assert isinstance(ca_cert, x509.Certificate)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# --- the server ---------------------------------------------------------------------


def _become(ids: tuple[int, int] | None) -> None:
    """In the child before exec: as root, turn into the unprivileged account (like
    `runuser`, but the process we signal is Dovecot's master itself); then ask the
    kernel to kill it when its parent dies, so a killed test run or benchmark leaves no
    Dovecot behind (its children follow the master). Changing the ids clears that
    request, hence this order."""
    if ids is not None:
        os.setgroups([])
        os.setgid(ids[1])
        os.setuid(ids[0])
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


try:  # resolved before any fork: a child between fork and exec should only call it
    import ctypes

    _PRCTL = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except (OSError, AttributeError):
    _PRCTL = None


CONFIG = """\
instance_name = smsbak_test_{port}
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
mail_max_userip_connections = 100
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={d}/mail/%u
}}
mail_location = maildir:~/Maildir
mail_plugins = $mail_plugins quota
plugin {{
  quota = maildir:User quota
  quota_max_mail_size = 24M
}}
service imap-login {{
  chroot =
  process_min_avail = 1
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
"""

# Processes serve connection after connection instead of one each (Dovecot's "high
# performance" mode): a fifth of the server's CPU per login (auth then needs room for
# every process that may keep a connection to it). For the test suite, which
# logs in thousands of times; the benchmarks keep Dovecot's default.
REUSED_PROCESSES = """\
service imap-login {
  service_count = 0
}
service imap {
  service_count = 0
}
service auth {
  client_limit = 2000
}
"""


def _group_runs(group: int) -> bool:
    """Does a process of this process group still run? Killed children that only wait
    to be reaped (zombies, reparented to an init that may take seconds) do not count:
    they write nothing any more."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return True  # no /proc: take the group's word
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so cut at the last ")"
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


class Dovecot:
    """One Dovecot instance: ``port`` (plain and STARTTLS), ``tls_port`` (implicit TLS),
    ``ca_file`` (the CA that signed its certificate), one user with ``PASSWORD``."""

    def __init__(self, *, reuse_processes: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="smsbak-dovecot-"))
        self.dir.chmod(0o755)
        self.port = free_port()
        self.tls_port = free_port()
        self.user = USER
        self.password = PASSWORD
        self.host = "127.0.0.1"
        self.ca_file, ca_key, ca_cert = make_ca(self.dir, "test-ca")
        self.other_ca_file, _, _ = make_ca(self.dir, "other-ca")
        make_server_cert(self.dir, ca_key, ca_cert)
        self._process: subprocess.Popen[bytes] | None = None
        account = pwd.getpwuid(os.getuid())
        self._run_as: str | None = None
        if os.getuid() == 0:
            self._run_as = "nobody"
            account = pwd.getpwnam("nobody")
        import grp

        self._account = account
        group = grp.getgrgid(account.pw_gid).gr_name
        (self.dir / "passwd").write_text(
            f"{USER}:{{PLAIN}}{PASSWORD}\n"
            f"{FULL_USER}:{{PLAIN}}{PASSWORD}::::::userdb_quota_rule=*:storage={FULL_QUOTA}\n"
        )
        for sub in ("run", "state", "mail"):
            (self.dir / sub).mkdir()
        (self.dir / "dovecot.conf").write_text(
            CONFIG.format(
                d=self.dir, user=account.pw_name, group=group,
                port=self.port, tls_port=self.tls_port,
            )
            + (REUSED_PROCESSES if reuse_processes else "")
        )  # fmt: skip
        if self._run_as:
            for path in [self.dir, *self.dir.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)

    @property
    def maildir(self) -> Path:
        return self.dir / "mail" / USER / "Maildir"

    def start(self) -> Dovecot:
        command = [DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")]
        account = self._account
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.dir,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.dir)},
            start_new_session=True,  # its own process group, so stop() reaches every child
            preexec_fn=functools.partial(
                _become, (account.pw_uid, account.pw_gid) if self._run_as else None
            ),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log()}")
            if self._answers(self.port) and self._answers(self.tls_port):
                return self
            time.sleep(0.01)
        raise RuntimeError(f"dovecot did not start: {self.log()}")

    def _answers(self, port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def log(self) -> str:
        """The end of the server's log, for error messages."""
        return self.log_text()[-4000:]

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return (self.dir / "dovecot.log").read_text(errors="replace")
        return ""

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            # a throwaway server needs no graceful shutdown (Dovecot's takes a second):
            # kill its process group, which holds only what this instance started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(10)
        if self._process is not None:
            deadline = time.monotonic() + 5  # children still writing would spoil rmtree
            while time.monotonic() < deadline and _group_runs(self._process.pid):
                time.sleep(0.01)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- looking at what the server holds, through its own files --------------------

    def client(self, user: str = USER):  # type: ignore[no-untyped-def]
        """A plain IMAPClient logged in as the test user (for assertions)."""
        from imapclient import IMAPClient

        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        client.login(user, self.password)
        return client

    def _fetch_all(self, folder: str, user: str, item: str, key: bytes) -> list[bytes]:
        """``item`` of every message in ``folder`` by UID order (none when it is missing)."""
        client = self.client(user)
        try:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            if not uids:
                return []
            data = client.fetch(uids, [item])
            return [data[uid][key] for uid in sorted(data)]
        finally:
            client.logout()

    def messages(self, folder: str, user: str = USER) -> list[bytes]:
        """Raw bytes of every message in ``folder`` (empty when it does not exist)."""
        return self._fetch_all(folder, user, "BODY.PEEK[]", b"BODY[]")

    def message_ids(self, folder: str, user: str = USER) -> list[str]:
        """The Message-ID of every message in ``folder``, asked of the server for the
        header alone (a 20 MB MMS is not read back to count its copies)."""
        from email.parser import BytesHeaderParser
        from email.policy import compat32

        headers = self._fetch_all(
            folder, user, "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]",
            b"BODY[HEADER.FIELDS (MESSAGE-ID)]",
        )  # fmt: skip
        parser = BytesHeaderParser(policy=compat32)
        return [str(parser.parsebytes(h)["Message-ID"] or "").strip() for h in headers]

    def reset(self) -> None:
        """Delete every folder but INBOX and empty INBOX (a clean mailbox per test)."""
        for user in (USER, FULL_USER):
            if (self.dir / "mail" / user).exists():  # else never logged in: nothing to empty
                self._reset(user)

    def _reset(self, user: str) -> None:
        client = self.client(user)
        try:
            for _flags, _delim, name in client.list_folders():
                if name.upper() != "INBOX":
                    client.delete_folder(name)
            client.select_folder("INBOX")
            uids = client.search("ALL")
            if uids:
                client.delete_messages(uids)
                client.expunge()
        finally:
            client.logout()

    def connections(self) -> int:
        """Logged-in IMAP sessions right now, counted from Dovecot's processes."""
        out = subprocess.run(
            ["doveadm", "-c", str(self.dir / "dovecot.conf"), "who", "-1"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return sum(1 for line in out.stdout.splitlines()[1:] if line.strip())


# --- the proxy ------------------------------------------------------------------------

APPEND_DONE = re.compile(rb"^(\S+) (OK|NO|BAD)\b[^\r\n]*APPEND", re.I | re.M)
CONTINUATION = re.compile(rb"^\+ ", re.M)
APPEND_LITERAL = re.compile(rb"^\S+ APPEND [^\r\n]*\{(\d+\+?)\}\r\n", re.I | re.M)
CAPABILITY_LINE = re.compile(rb"^[^\r\n]*CAPABILITY[^\r\n]*", re.I | re.M)


class LatencyProxy:
    """A loopback TCP proxy to ``target_port``.

    ``latency`` seconds are added before every chunk the server sends (one round trip
    per answer, as on a phone's link). ``drop_after_appends = n`` cuts the client's
    connection right after forwarding the server's n-th tagged APPEND completion
    (counted across connections) without forwarding it, so the message is stored but
    the client never learns it. ``max_concurrent`` counts the most connections open at once.

    Round trips of an APPEND: ``continuations`` counts the server's ``+`` answers (a
    synchronizing literal waits for one), ``append_literals`` lists the literal of every
    APPEND the client sent as written (``b"668+"`` non-synchronizing, ``b"668"`` not).
    ``capability_rewrite`` replaces words in the server's CAPABILITY lines, so a test can
    show the client a server without LITERAL+ (``{b" LITERAL+": b""}``) or a Gmail-like
    LITERAL- (``{b"LITERAL+": b"LITERAL-"}``); Dovecot itself still takes either.
    """

    def __init__(self, target_port: int, latency: float = 0.0, source_ip: str = "") -> None:
        self.target_port = target_port
        self.source_ip = source_ip
        self.latency = latency
        self.drop_after_appends: int | None = None
        self.bye_after_appends: int | None = None
        self.bye_text = "Session expired, please login again."
        self.appends_answered = 0
        self.drops = 0
        self.open_connections = 0
        self.max_concurrent = 0
        self.total_connections = 0
        self.continuations = 0
        self.append_literals: list[bytes] = []
        self.capability_rewrite: dict[bytes, bytes] = {}
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(
                ("127.0.0.1", self.target_port),
                source_address=(self.source_ip, 0) if self.source_ip else None,
            )
        except OSError:
            client.close()
            return
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self.open_connections += 1
            self.total_connections += 1
            self.max_concurrent = max(self.max_concurrent, self.open_connections)
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, server)
        selector.register(server, selectors.EVENT_READ, client)
        try:
            while True:
                for key, _ in selector.select(timeout=60):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(1 << 16)
                    if not data:
                        return
                    if source is server:
                        if self.latency:
                            time.sleep(self.latency)
                        action = self._count_appends(data)
                        if action == "bye":
                            client.sendall(b"* BYE " + self.bye_text.encode() + b"\r\n")
                            return
                        if action == "cut":
                            return  # the server stored it, the client never hears so
                        client.sendall(self._look_at_answer(data))
                    else:
                        self._look_at_command(data)
                        server.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self.open_connections -= 1

    def _look_at_answer(self, data: bytes) -> bytes:
        """Count continuation requests; rewrite capabilities as asked."""
        found = len(CONTINUATION.findall(data))
        if found:
            with self._lock:
                self.continuations += found
        if not self.capability_rewrite:
            return data

        def rewrite(line: re.Match[bytes]) -> bytes:
            text = line.group(0)
            for old, new in self.capability_rewrite.items():
                text = text.replace(old, new)
            return text

        return CAPABILITY_LINE.sub(rewrite, data)

    def _look_at_command(self, data: bytes) -> None:
        literals = APPEND_LITERAL.findall(data[:4096])  # a command line comes first
        if literals:
            with self._lock:
                self.append_literals.extend(literals)

    def _count_appends(self, data: bytes) -> str:
        """Count APPEND completions in what the server just sent: "cut" or "bye" when
        the client must not see this answer, else ""."""
        found = len(APPEND_DONE.findall(data))
        if not found:
            return ""
        with self._lock:
            self.appends_answered += found
            if self.drop_after_appends is not None and (
                self.appends_answered >= self.drop_after_appends
            ):
                self.drop_after_appends = None
                self.drops += 1
                return "cut"
            if self.bye_after_appends is not None and (
                self.appends_answered >= self.bye_after_appends
            ):
                self.bye_after_appends = None
                return "bye"
        return ""
