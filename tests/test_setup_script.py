"""termux-setup.sh, run for real by bash in a sandbox that looks like a fresh Termux.

The sandbox has its own HOME and PREFIX, and a PATH of fakes: ``pkg`` (logs its
arguments; "installs" by adding names to a fake dpkg database), ``dpkg`` (``-s NAME``
answers from that database), ``pip`` (logs; "installs" smsbak by writing a stub
``smsbak`` package, with the checkout's version, into a directory on PYTHONPATH),
``python`` (the test's interpreter with ``-S``, so only that stub can be imported),
and the Termux tools of tests/fakes/bin over a FakePhone.  ``timeout`` and the rest
are the system's.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.phone import FakePhone

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "termux-setup.sh"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "version"
]
PACKAGES = ["python", "python-pip", "python-cryptography", "termux-api"]
BOOT_SCRIPT = """\
#!/data/data/com.termux/files/usr/bin/sh
# smsbak: background backups from boot, run by Termux:Boot. Written by termux-setup.sh.
termux-wake-lock
umask 077
mkdir -p "$HOME/.local/share/smsbak/logs"
# Android's phantom process killer ends children with signal 9: start again then
# (and after a crash); stop when the daemon ends by itself (SIGTERM, already running).
while :; do
    smsbak daemon >>"$HOME/.local/share/smsbak/logs/boot.log" 2>&1
    status=$?
    if [ "$status" -le 128 ] && [ "$status" -ne 1 ]; then
        break
    fi
    sleep 30
done
"""

FAKE_PKG = r"""#!/bin/sh
(IFS="$(printf '\t')"; printf '%s\n' "$*") >>"$SANDBOX_STATE/pkg.log"
[ -n "${FAKE_PKG_FAIL:-}" ] && { echo "E: Unable to locate package (fake)" >&2; exit 100; }
if [ "$1" = install ]; then
    shift
    for name in "$@"; do
        case "$name" in -*) continue ;; esac
        db="$SANDBOX_STATE/dpkg.db"
        grep -qx "$name" "$db" 2>/dev/null || echo "$name" >>"$db"
    done
fi
"""

FAKE_DPKG = r"""#!/bin/sh
if [ "$1" != -s ] || [ $# -ne 2 ]; then echo "fake dpkg: only -s NAME" >&2; exit 2; fi
if grep -qx "$2" "$SANDBOX_STATE/dpkg.db" 2>/dev/null; then
    printf 'Package: %s\nStatus: install ok installed\nVersion: 1.0-fake\n' "$2"
    exit 0
fi
if grep -qx "$2 config-files" "$SANDBOX_STATE/dpkg.db" 2>/dev/null; then
    printf 'Package: %s\nStatus: deinstall ok config-files\nVersion: 1.0-fake\n' "$2"
    exit 0
fi
echo "dpkg-query: package '$2' is not installed and no information is available" >&2
exit 1
"""

FAKE_PIP = r"""#!/bin/sh
(IFS="$(printf '\t')"; printf '%s\n' "$*") >>"$SANDBOX_STATE/pip.log"
[ "$1" = install ] || exit 0
[ -n "${FAKE_PIP_FAIL:-}" ] && { echo "ERROR: fake pip failure" >&2; exit 1; }
for source in "$@"; do :; done
version="$(sed -n 's/^version *= *"\(.*\)"$/\1/p' "$source/pyproject.toml" | head -n 1)"
mkdir -p "$FAKE_SITE/smsbak"
printf '__version__ = "%s"\n' "$version" >"$FAKE_SITE/smsbak/__init__.py"
echo "Successfully installed smsbak-$version"
"""

FAKE_SMSBAK = r"""#!/bin/sh
(IFS="$(printf '\t')"; printf '%s\n' "$*") >>"$SANDBOX_STATE/smsbak.log"
echo "fake smsbak $*: started"
"""


@dataclass
class Sandbox:
    root: Path
    home: Path
    prefix: Path
    bin: Path
    state: Path
    site: Path
    phone: FakePhone

    def env(self, **extra: str) -> dict[str, str]:
        base = {
            "HOME": str(self.home),
            "PREFIX": str(self.prefix),
            "PATH": os.pathsep.join([str(self.bin), "/usr/bin", "/bin"]),
            "PYTHONPATH": str(self.site),
            "SANDBOX_STATE": str(self.state),
            "FAKE_SITE": str(self.site),
            "LANG": "C.UTF-8",
        }
        env = self.phone.env(base)
        env.update(extra)
        return env

    def run(
        self, *, cwd: Path | None = None, env: dict[str, str] | None = None, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT)],
            cwd=cwd or self.home,
            env=env if env is not None else self.env(**extra),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def log(self, name: str) -> list[list[str]]:
        path = self.state / name
        if not path.exists():
            return []
        return [line.split("\t") for line in path.read_text().splitlines()]

    def preinstall(self, *lines: str) -> None:
        with open(self.state / "dpkg.db", "a") as db:
            db.writelines(f"{line}\n" for line in lines)

    def install_stub(self, version: str) -> None:
        (self.site / "smsbak").mkdir(parents=True, exist_ok=True)
        (self.site / "smsbak" / "__init__.py").write_text(f'__version__ = "{version}"\n')

    @property
    def boot_script(self) -> Path:
        return self.home / ".termux" / "boot" / "smsbak-daemon"


def write_tool(directory: Path, name: str, text: str) -> None:
    path = directory / name
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    box = Sandbox(
        root=tmp_path,
        home=tmp_path / "home",
        prefix=tmp_path / "usr",
        bin=tmp_path / "fakebin",
        state=tmp_path / "state",
        site=tmp_path / "site-packages",
        phone=FakePhone(tmp_path / "phone"),
    )
    for directory in (box.home, box.prefix, box.bin, box.state, box.site):
        directory.mkdir()
    write_tool(box.bin, "pkg", FAKE_PKG)
    write_tool(box.bin, "dpkg", FAKE_DPKG)
    write_tool(box.bin, "pip", FAKE_PIP)
    write_tool(box.bin, "smsbak", FAKE_SMSBAK)
    write_tool(box.bin, "python", f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    return box


def test_fresh_termux_then_a_second_run_changes_nothing(sandbox: Sandbox) -> None:
    sandbox.preinstall("python", "termux-api", "python-pip config-files")
    # Run from inside the checkout: the version check must not import it from there.
    first = sandbox.run(cwd=ROOT)
    assert first.returncode == 0, first.stdout + first.stderr
    assert sandbox.log("pkg.log") == [
        ["install", "-y", "python-pip", "python-cryptography"]
    ]
    assert sandbox.log("pip.log") == [["install", str(ROOT)]]
    assert f"Installing smsbak {VERSION} from {ROOT}" in first.stdout
    assert "Installing Termux packages: python-pip python-cryptography" in (
        first.stdout
    )
    assert "The Termux:API app answers." in first.stdout
    assert sandbox.phone.calls("termux-battery-status")

    boot = sandbox.boot_script
    assert boot.read_text() == BOOT_SCRIPT
    assert stat.S_IMODE(boot.stat().st_mode) == 0o755
    assert "Writing the boot script" in first.stdout
    assert "Termux:Boot" in first.stdout
    before = boot.stat().st_mtime_ns

    second = sandbox.run()
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(sandbox.log("pkg.log")) == 1  # no new pkg call at all
    assert len(sandbox.log("pip.log")) == 1
    assert boot.read_text() == BOOT_SCRIPT
    assert boot.stat().st_mtime_ns == before
    assert "Termux packages already installed" in second.stdout
    assert f"smsbak {VERSION} is already installed" in second.stdout
    assert "Boot script already in place" in second.stdout
    assert not list(boot.parent.glob("*.tmp*"))


def test_next_steps_cover_login_backup_and_android_settings(sandbox: Sandbox) -> None:
    sandbox.preinstall(*PACKAGES)
    sandbox.install_stub(VERSION)
    result = sandbox.run()
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for needle in (
        "Google OAuth client setup",
        "smsbak auth --client-secrets",
        "smsbak backup",
        "smsbak daemon",
        "Termux:Boot",
        "smsbak schedule install",
        "Unrestricted",
        "Disable child process restrictions",
        "adb shell settings put global settings_enable_monitor_phantom_procs false",
        "termux-wake-lock",
    ):
        assert needle in out, needle
    assert sandbox.log("pkg.log") == [] and sandbox.log("pip.log") == []


def test_an_older_smsbak_is_updated(sandbox: Sandbox) -> None:
    sandbox.preinstall(*PACKAGES)
    sandbox.install_stub("0.0.1")
    result = sandbox.run()
    assert result.returncode == 0, result.stderr
    assert f"Updating smsbak 0.0.1 to {VERSION}" in result.stdout
    assert sandbox.log("pip.log") == [["install", str(ROOT)]]
    assert (sandbox.site / "smsbak" / "__init__.py").read_text() == f'__version__ = "{VERSION}"\n'


def test_a_changed_or_non_executable_boot_script_is_repaired(sandbox: Sandbox) -> None:
    sandbox.preinstall(*PACKAGES)
    sandbox.install_stub(VERSION)
    boot = sandbox.boot_script
    boot.parent.mkdir(parents=True)
    boot.write_text("#!/bin/sh\nsmsbak daemon\n")
    boot.chmod(0o700)
    result = sandbox.run()
    assert "Updating the boot script" in result.stdout
    assert boot.read_text() == BOOT_SCRIPT
    assert stat.S_IMODE(boot.stat().st_mode) == 0o755
    boot.chmod(0o644)
    result = sandbox.run()
    assert "Making the boot script executable" in result.stdout
    assert stat.S_IMODE(boot.stat().st_mode) == 0o755


def test_the_boot_script_takes_the_wake_lock_and_starts_the_daemon(sandbox: Sandbox) -> None:
    sandbox.preinstall(*PACKAGES)
    sandbox.install_stub(VERSION)
    assert sandbox.run().returncode == 0
    result = subprocess.run(
        ["sh", str(sandbox.boot_script)],
        env=sandbox.env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""
    assert sandbox.phone.wake_lock
    assert sandbox.log("smsbak.log") == [["daemon"]]
    logs = sandbox.home / ".local" / "share" / "smsbak" / "logs"
    assert (logs / "boot.log").read_text() == "fake smsbak daemon: started\n"
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    assert stat.S_IMODE((logs / "boot.log").stat().st_mode) == 0o600


def test_termux_api_app_not_answering_stops_before_installing_smsbak(sandbox: Sandbox) -> None:
    sandbox.preinstall("python")
    sandbox.phone.set_mode("termux-battery-status", "hang")
    result = sandbox.run(SMSBAK_SETUP_API_TIMEOUT="1")
    assert result.returncode == 4
    assert "did not answer within 1 s" in result.stderr
    assert "Termux:API app from the same store as Termux" in result.stderr
    assert "F-Droid" in result.stderr
    # Packages come first (termux-api provides the tools); nothing after the check.
    assert [call[0] for call in sandbox.log("pkg.log")] == ["install"]
    assert sandbox.log("pip.log") == []
    assert not sandbox.boot_script.exists()


def test_termux_api_answering_garbage_is_not_accepted(sandbox: Sandbox) -> None:
    sandbox.preinstall(*PACKAGES)
    sandbox.phone.set_mode("termux-battery-status", "garbage")
    result = sandbox.run()
    assert result.returncode == 4
    assert "no usable answer" in result.stderr
    assert sandbox.log("pip.log") == []
    assert not sandbox.boot_script.exists()


def test_failing_pkg_install_stops_with_a_message(sandbox: Sandbox) -> None:
    result = sandbox.run(FAKE_PKG_FAIL="1")
    assert result.returncode == 1
    assert "pkg install python python-pip python-cryptography termux-api" in (
        result.stderr
    )
    assert sandbox.phone.calls() == []
    assert sandbox.log("pip.log") == []


def test_not_on_termux(sandbox: Sandbox) -> None:
    env = sandbox.env()
    del env["PREFIX"]
    result = sandbox.run(env=env)
    assert result.returncode == 2
    assert "this script is for Termux on Android" in result.stderr
    assert sandbox.log("pkg.log") == [] and sandbox.phone.calls() == []
    (sandbox.bin / "pkg").unlink()  # PREFIX but no pkg: not Termux either
    result = sandbox.run()
    assert result.returncode == 2
    assert "no pkg command" in result.stderr


def test_bad_timeout_setting(sandbox: Sandbox) -> None:
    result = sandbox.run(SMSBAK_SETUP_API_TIMEOUT="soon")
    assert result.returncode == 2
    assert "SMSBAK_SETUP_API_TIMEOUT" in result.stderr
    assert sandbox.log("pkg.log") == []
