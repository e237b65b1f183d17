"""The test bed: a fake phone (Termux tools on PATH), a Gmail emulator, and smsbak itself.

smsbak runs as a real subprocess (``python -m smsbak``) against real fake
processes and a real HTTP server, so every boundary of our own code is
exercised; nothing of smsbak is patched out. Files marked ``cli_in_process``
run the same CLI through click's runner in the test process instead (see
:meth:`Bed.cli`): the fakes and the emulator stay processes and a server.
"""

from __future__ import annotations

import compileall
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.gmail_emulator import GmailEmulator
from tests.fakes.phone import FakePhone
from tests.system_tools import NEEDS_DEBIAN_PACKAGES, PENDING_ENV, require

BACKUP_SCOPES = [
    "https://www.googleapis.com/auth/gmail.insert",
    "https://www.googleapis.com/auth/gmail.labels",
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
]
ACCOUNT = "user@example.com"
# Tests run the emulator with a quota scaled up 1000 times and no latency;
# the real quota is measured in benchmarks/.
TEST_QUOTA_PER_MINUTE = 15_000_000


ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Compile smsbak and the fakes to bytecode once, before any test starts a process.

    The suite starts thousands of Python processes (smsbak, and every fake Termux tool).
    With PYTHONDONTWRITEBYTECODE set, as on some CI machines, none of them may write a
    .pyc, so each would compile its modules from source again: about a third of the
    suite's time. A .pyc written here is still read by them (the variable only stops
    writing), and is checked against the source's mtime as always.
    """
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controller compiled already
    for directory in (ROOT / "smsbak", ROOT / "tests"):
        compileall.compile_dir(directory, quiet=1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """While .ci/run still installs the Debian packages in the background, the tests
    that need them run last, so the workers run everything else meanwhile instead of
    waiting for the install (``list.sort`` keeps the order otherwise)."""
    if os.environ.get(PENDING_ENV):
        items.sort(key=lambda item: bool(NEEDS_DEBIAN_PACKAGES & set(item.fixturenames)))


@pytest.fixture(scope="session")
def shellcheck() -> str:
    return require("shellcheck", "SMSBAK_REQUIRE_SHELLCHECK", "apt-get install shellcheck")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per core. Most tests wait on other processes (smsbak,
    the fakes, Dovecot, Chromium) for part of their time, so one worker per core
    leaves the cores idle a fifth of the time; every wait in the suite is bounded and
    none assumes an idle machine."""
    return 2 * (os.cpu_count() or 1)


def scaled_emulator(account: str = ACCOUNT) -> GmailEmulator:
    """The emulator as the tests run it: the quota scaled up 1000 times, no latency
    (start it with ``with``)."""
    return GmailEmulator(
        account=account, quota_units_per_minute=TEST_QUOTA_PER_MINUTE, burst_units=1250 * 1000
    )


@pytest.fixture
def emulator() -> Iterator[GmailEmulator]:
    with scaled_emulator() as emu:
        yield emu


def write_token(
    home: Path,
    emulator: GmailEmulator,
    scopes: list[str] | None = None,
    *,
    name: str = "token.json",
) -> str:
    """A token.json as `smsbak auth` leaves it, granted by the emulator.

    The benchmarks use it too; ``name="token-restore.json"`` with the restore scopes
    is what `smsbak auth --restore` leaves.
    """
    granted = scopes or BACKUP_SCOPES
    refresh_token = emulator.grant(granted)
    secrets = emulator.client_secrets()["installed"]
    token = {
        "token": None,
        "refresh_token": refresh_token,
        "token_uri": emulator.token_uri,
        "client_id": secrets["client_id"],
        "client_secret": secrets["client_secret"],
        "scopes": granted,
        "account": ACCOUNT,
    }
    home.mkdir(parents=True, exist_ok=True)
    path = home / name
    path.write_text(json.dumps(token))
    path.chmod(0o600)
    return refresh_token


@dataclass
class Bed:
    """Everything one end-to-end test needs, with a helper to run the CLI."""

    home: Path
    phone: FakePhone
    emulator: GmailEmulator
    refresh_token: str

    def env(self, **extra: str) -> dict[str, str]:
        env = self.phone.env()
        env["SMSBAK_HOME"] = str(self.home)
        env["SMSBAK_GMAIL_API"] = self.emulator.url
        env.pop("TZ", None)
        env.update(extra)
        return env

    def configure(self, **settings: object) -> None:
        lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
        (self.home / "config.toml").write_text("\n".join(lines) + "\n")

    in_process: bool = False
    """Set by ``pytestmark = pytest.mark.cli_in_process``: :meth:`smsbak` runs :meth:`cli`."""

    def smsbak(
        self, *args: str, timeout: float = 120, input: str | None = None, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        """``smsbak ARGS``: a real process, or in this process where the test file says
        the process boundary is not what it tests (``cli_in_process``)."""
        if self.in_process:
            return self.cli(*args, input=input, **extra)
        return self.process(*args, timeout=timeout, input=input, **extra)

    def process(
        self, *args: str, timeout: float = 120, input: str | None = None, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        """``python -m smsbak ARGS`` as a process of its own: signals, umask, imports, exit."""
        return subprocess.run(
            [sys.executable, "-m", "smsbak", *args],
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            check=False,
        )

    def cli(
        self, *args: str, input: str | None = None, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        """``smsbak ARGS`` through click's runner in this process, with :meth:`env`.

        The fakes and the emulator are still other processes and a real server; only
        the start of smsbak itself (about half a second of imports) is saved. What
        smsbak changes in a process (umask, log handlers, signal handlers) is put back.
        """
        import logging
        import signal
        import traceback

        from click.testing import CliRunner

        from smsbak.cli import main

        env: dict[str, str | None] = dict(self.env(**extra))
        env.update({key: None for key in os.environ if key not in env})
        loggers = [logging.getLogger(), logging.getLogger("smsbak")]
        saved = [(logger, list(logger.handlers), logger.level) for logger in loggers]
        signals = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        umask = os.umask(0o022)
        os.umask(umask)
        try:
            result = CliRunner().invoke(main, list(args), input=input, env=env)
        finally:
            os.umask(umask)
            for sig, handler in signals.items():
                signal.signal(sig, handler)
            for logger, handlers, level in saved:
                for handler in logger.handlers:
                    if handler not in handlers:
                        handler.close()
                logger.handlers[:] = handlers
                logger.setLevel(level)
        stderr = result.stderr
        code = result.exit_code
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            info = result.exc_info or (None, result.exception, None)
            stderr += "".join(traceback.format_exception(info[1]))
            code = 1
        return subprocess.CompletedProcess(["smsbak", *args], code, result.stdout, stderr)

    def popen(self, *args: str, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "smsbak", *args],
            env=self.env(**extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def sms_list_calls(self) -> int:
        return len(self.phone.calls("termux-sms-list"))

    def stored(self, label: str = "SMS") -> list[object]:
        return list(self.emulator.messages(label))


def with_termux_reader(bed: Bed) -> Bed:
    """The bed with ``reader = "termux"``, for files whose bed is that (``def bed(bed)``):
    the fake phone has no Shizuku or root, and ``auto`` would only try rish and su first
    on every run, in files where the reader is not what is tested."""
    bed.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE, reader="termux")
    return bed


def new_bed(directory: Path, emulator: GmailEmulator, *, in_process: bool) -> Bed:
    """A bed in ``directory`` (its home and phone), logged in to ``emulator``: what the
    ``bed`` fixture gives each test, for module-scoped set-ups too."""
    home = directory / "home"
    refresh_token = write_token(home, emulator)
    made = Bed(
        home=home,
        phone=FakePhone(directory / "phone"),
        emulator=emulator,
        refresh_token=refresh_token,
    )
    made.in_process = in_process
    made.configure(quota_units_per_minute=TEST_QUOTA_PER_MINUTE)
    return made


@pytest.fixture
def bed(request: pytest.FixtureRequest, tmp_path: Path, emulator: GmailEmulator) -> Iterator[Bed]:
    in_process = request.node.get_closest_marker("cli_in_process") is not None
    test_bed = new_bed(tmp_path, emulator, in_process=in_process)
    yield test_bed
    assert not test_bed.phone.sms_send_called(), "smsbak must never call termux-sms-send"


@pytest.fixture(autouse=True)
def _umask_restored() -> Iterator[None]:
    """smsbak's CLI sets umask 077 for every file it makes; run in-process (click's
    runner) it would leave that on the test process, and files later tests write for
    another user (Dovecot running as nobody) would become unreadable to it."""
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)


@pytest.fixture(autouse=True)
def _no_real_network(monkeypatch: pytest.MonkeyPatch) -> None:
    keep_off_the_network(monkeypatch)


def keep_off_the_network(env: pytest.MonkeyPatch) -> None:
    """Nothing in the suite may reach Google: proxies off, no ambient credentials
    (every test has it; a module-scoped set-up calls it in its own MonkeyPatch)."""
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.delenv(variable, raising=False)
    env.setenv("NO_PROXY", "127.0.0.1,localhost")
    env.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
