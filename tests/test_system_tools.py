"""The wait for Debian packages that .ci/run installs while pytest already runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests import system_tools
from tests.system_tools import PENDING_ENV, await_background_install, require


def test_without_a_background_install_nothing_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PENDING_ENV, raising=False)
    monkeypatch.setattr(system_tools, "WAIT_S", 0.0)  # a wait would fail at once
    await_background_install()


def test_a_test_waits_until_the_install_wrote_its_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = tmp_path / "packages.status"
    monkeypatch.setenv(PENDING_ENV, str(status))
    timer = threading.Timer(0.5, lambda: status.write_text("0\n"))
    timer.start()
    started = time.monotonic()
    await_background_install()
    timer.join()
    assert time.monotonic() - started >= 0.5


def test_a_failed_install_fails_the_test_with_the_end_of_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = tmp_path / "packages.status"
    status.write_text("100\n")
    (tmp_path / "packages.log").write_text("E: Unable to locate package dovecot-imapd\n")
    monkeypatch.setenv(PENDING_ENV, str(status))
    with pytest.raises(pytest.fail.Exception, match=r"(?s)exit 100.*Unable to locate package"):
        await_background_install()


def test_an_install_that_never_ends_fails_within_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PENDING_ENV, str(tmp_path / "packages.status"))
    monkeypatch.setattr(system_tools, "WAIT_S", 0.3)
    with pytest.raises(pytest.fail.Exception, match=r"not in after 0\.3 s"):
        await_background_install()


def test_a_missing_program_fails_where_ci_requires_it_and_is_skipped_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PENDING_ENV, raising=False)
    monkeypatch.setenv("SMSBAK_REQUIRE_NOTHING", "1")
    with pytest.raises(pytest.fail.Exception, match="no-such-program-here is required"):
        require("no-such-program-here", "SMSBAK_REQUIRE_NOTHING", "apt-get install it")
    monkeypatch.delenv("SMSBAK_REQUIRE_NOTHING")
    with pytest.raises(pytest.skip.Exception, match="apt-get install it"):
        require("no-such-program-here", "SMSBAK_REQUIRE_NOTHING", "apt-get install it")
    assert require("sh", "SMSBAK_REQUIRE_NOTHING", "").endswith("/sh")
