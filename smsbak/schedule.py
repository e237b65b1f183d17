"""`smsbak schedule`: Android's JobScheduler runs `smsbak backup`, for phones that kill daemons.

termux-job-scheduler registers a script with Android; `--persisted true`
keeps it across reboots. Android runs periodic jobs at most every 15
minutes, and when it sees fit (Doze delays them), so the daemon is preferred
where it survives.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from smsbak.config import Settings, parse_duration
from smsbak.errors import PhoneError
from smsbak.paths import Paths, ensure_private_dir
from smsbak.phone.termux import TermuxTools

JOB_ID = 7232  # "SBAK" on a phone keypad
MIN_PERIOD_S = 15 * 60
SCRIPT_NAME = "scheduled-backup.sh"


@dataclass(frozen=True)
class Installed:
    script: Path
    period_s: int
    clamped: bool
    arguments: list[str]


def script_text(paths: Paths, home_env: str | None) -> str:
    """The job's script: this Python, this smsbak home, output into the log folder."""
    shell = shutil.which("sh") or "/bin/sh"
    lines = [f"#!{shell}", "# Written by `smsbak schedule install`; removed by `... remove`."]
    if home_env:
        lines.append(f"export SMSBAK_HOME={shlex.quote(home_env)}")
    log = paths.log_dir / "scheduled.log"
    python, log_file = shlex.quote(sys.executable), shlex.quote(str(log))
    lines.append(f"exec {python} -m smsbak backup --notify >> {log_file} 2>&1")
    return "\n".join(lines) + "\n"


def install(
    paths: Paths, settings: Settings, tools: TermuxTools, every: str | None, home_env: str | None
) -> Installed:
    ensure_private_dir(paths.data_dir)
    ensure_private_dir(paths.log_dir)
    script = paths.data_dir / SCRIPT_NAME
    script.write_text(script_text(paths, home_env), encoding="utf-8")
    script.chmod(0o700)
    wanted = int(parse_duration(every or settings.backup_every))
    period = max(wanted, MIN_PERIOD_S)
    arguments = [
        "-s", str(script),
        "--job-id", str(JOB_ID),
        "--period-ms", str(period * 1000),
        "--network", "unmetered" if settings.wifi_only else "any",
        "--persisted", "true",
    ]  # fmt: skip
    # The app defaults this constraint to true: say false explicitly when not wanted.
    arguments += ["--battery-not-low", "true" if settings.min_battery else "false"]
    answer = _checked(tools, arguments)
    # Errors (no such file, ...) also come with exit 0: believe only the pending list.
    if show(tools) is None:
        raise PhoneError(
            f"Android did not register the backup job: {answer.strip() or 'no answer'}",
            "open the Termux:API app once, then run `smsbak schedule install` again",
        )
    return Installed(script, period, period != wanted, arguments)


def remove(paths: Paths, tools: TermuxTools) -> bool:
    """Cancel the job; True when there was one."""
    was_there = show(tools) is not None
    _checked(tools, ["--cancel", "--job-id", str(JOB_ID)])
    script = paths.data_dir / SCRIPT_NAME
    if script.exists():
        script.unlink()
    return was_there


def show(tools: TermuxTools) -> str | None:
    """The pending-job line(s) for smsbak's job, or None when it is not registered."""
    result = _checked(tools, ["-p"])
    mine = re.compile(rf"\bJob {JOB_ID}:")
    lines = [line.strip() for line in result.splitlines() if mine.search(line)]
    return "\n".join(lines) if lines else None


def _checked(tools: TermuxTools, arguments: list[str]) -> str:
    result = tools.run("termux-job-scheduler", arguments)
    out = result.stdout.decode("utf-8", "replace")
    err = result.stderr.decode("utf-8", "replace").strip()
    if result.returncode != 0:
        raise PhoneError(
            f"termux-job-scheduler failed: {err or out.strip() or result.returncode}",
            "update Termux:API (`pkg upgrade termux-api`) and open the Termux:API app once",
        )
    return out
