"""The Debian programs some tests need (Dovecot, Chromium, shellcheck): found, waited for
while CI installs them, or else skipped (failed where CI requires them).

`.ci/run` installs them in the background while pytest already runs the rest, and
names a status file in ``SMSBAK_PACKAGES_PENDING``: the install writes its exit status
there when it ends. A test that needs one of the programs waits for that line first,
so only those tests wait for the install, not the whole suite.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

PENDING_ENV = "SMSBAK_PACKAGES_PENDING"
NEEDS_DEBIAN_PACKAGES = frozenset({"dovecot_server", "browser", "shellcheck"})
"""The fixtures that hand out a Debian program (and wait for its install)."""
WAIT_S = 900.0
"""How long a test waits for the background install: apt-get on a slow mirror, bounded."""


def await_background_install() -> None:
    """Return once the background install (if any) has ended; fail the test when it
    failed, with the end of its log, since the programs it installs will be missing."""
    status_file = os.environ.get(PENDING_ENV)
    if not status_file:
        return
    path = Path(status_file)
    deadline = time.monotonic() + WAIT_S
    while not (status := _read(path)):
        if time.monotonic() > deadline:
            pytest.fail(f"the Debian packages .ci/run installs were not in after {WAIT_S:g} s")
        time.sleep(0.2)
    if status != "0":
        log = _read(path.with_suffix(".log"))
        tail = "\n".join(log.splitlines()[-20:])
        pytest.fail(f"installing Debian packages failed (exit {status}):\n{tail}")


def require(program: str, require_env: str, hint: str) -> str:
    """The path of ``program`` after any background install; skipped when missing,
    failed instead where ``require_env`` is set (CI: never a silent skip)."""
    await_background_install()
    found = shutil.which(program) or (program if os.access(program, os.X_OK) else None)
    if found:
        return found
    if os.environ.get(require_env):
        pytest.fail(f"{program} is required here ({require_env}) but not installed: {hint}")
    pytest.skip(f"{program} is not installed: {hint}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return ""
