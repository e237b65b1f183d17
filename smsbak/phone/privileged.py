"""Commands as Android's shell user (Shizuku's ``rish``) or as root (``su``).

Only these can write the SMS store from Termux (``content insert`` after the
WRITE_SMS app-op is granted to the shell) or see every SMS box. ``rish``
started from the background may hang on Android 10+, so every call has a
timeout; many commands go through one shell start to save process starts.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass

from smsbak.errors import PhoneError

RISH_APP_ID = "com.termux"
ROW_START = re.compile(r"^Row: (\d+) ", re.M)


@dataclass(frozen=True)
class ShellResult:
    returncode: int
    stdout: str
    stderr: str


class PrivilegedShell:
    """A way to run ``sh`` commands with more rights than Termux has."""

    def __init__(self, kind: str, timeout: float) -> None:
        if kind not in ("rish", "su"):
            raise ValueError(kind)
        self.kind = kind
        self.timeout = timeout

    @property
    def description(self) -> str:
        return "Shizuku (rish)" if self.kind == "rish" else "root (su)"

    @classmethod
    def detect(
        cls, timeout: float, prefer: Sequence[str] = ("rish", "su")
    ) -> PrivilegedShell | None:
        """The first of rish, su that runs ``id -u`` and answers with a number."""
        for kind in prefer:
            shell = cls(kind, timeout)
            try:
                result = shell.run("id -u", timeout=min(timeout, 15))
            except PhoneError:
                continue
            if result.returncode == 0 and result.stdout.strip().isdigit():
                return shell
        return None

    def run(self, script: str, *, timeout: float | None = None) -> ShellResult:
        returncode, out, err = self.run_bytes(script, timeout=timeout)
        return ShellResult(returncode, out.decode("utf-8", "replace"), err)

    def read_bytes(self, script: str, what: str) -> bytes:
        """Binary output (an MMS attachment from `content read`), exactly."""
        returncode, out, err = self.run_bytes(script)
        problem = _content_error(ShellResult(returncode, "", err))
        if returncode != 0 or problem:
            raise PhoneError(
                f"{what} failed through {self.description}: {problem or err.strip()[-200:]}",
                _hint(self.kind),
            )
        return out

    def run_bytes(self, script: str, *, timeout: float | None = None) -> tuple[int, bytes, str]:
        env = dict(os.environ)
        env.setdefault("RISH_APPLICATION_ID", RISH_APP_ID)
        try:
            process = subprocess.Popen(
                [self.kind, "-c", script],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except FileNotFoundError as error:
            raise PhoneError(f"{self.kind} is not installed", _hint(self.kind)) from error
        except OSError as error:
            raise PhoneError(f"cannot run {self.kind}: {error}", _hint(self.kind)) from error
        try:
            out, err = process.communicate(timeout=timeout or self.timeout)
        except subprocess.TimeoutExpired:
            _end(process)
            raise PhoneError(
                f"{self.kind} did not answer within {timeout or self.timeout:g} s", _hint(self.kind)
            ) from None
        except BaseException:
            # Ctrl-C: stop the inserts too, or a re-run could race them and write twice.
            _end(process)
            raise
        return process.returncode, out, err.decode("utf-8", "replace")

    def check(self, script: str, what: str, *, timeout: float | None = None) -> ShellResult:
        result = self.run(script, timeout=timeout)
        problem = _content_error(result)
        if result.returncode != 0 or problem:
            detail = problem or (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise PhoneError(
                f"{what} failed through {self.description}: {detail}", _hint(self.kind)
            )
        return result


def _end(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def _hint(kind: str) -> str:
    if kind == "rish":
        return (
            "start Shizuku, allow Termux in it, and export rish to Termux "
            "(Shizuku > Use Shizuku in terminal apps)"
        )
    return "grant Termux root access in your root manager (Magisk, KernelSU)"


_BOUND_TEXT = re.compile(r"(\w+:[sn]:).*")


def _content_error(result: ShellResult) -> str | None:
    """``content`` reports parse errors on stdout with exit status 0.

    Such errors can quote a whole ``--bind`` argument, message text included:
    that part is cut so it reaches neither the terminal nor the run history.
    """
    for line in result.stdout.splitlines():
        if line.startswith("[ERROR]"):
            return _BOUND_TEXT.sub(r"\1(text not shown)", line)
    for line in result.stderr.splitlines():
        if "Exception" in line or line.startswith("Error"):
            return _BOUND_TEXT.sub(r"\1(text not shown)", line.strip())
    return None


def content_command(*args: str) -> str:
    return "content " + " ".join(shlex.quote(arg) for arg in args)


def escape_bind_value(value: str) -> str:
    """Escape for ``--bind COL:TYPE:VALUE`` under the current rule (backslash escapes)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


def parse_content_rows(text: str, projection: Sequence[str]) -> list[dict[str, str | None]]:
    """Parse ``content query`` output against a known projection.

    Values are printed without escaping, so only the last column may hold free
    text with commas, ``=`` or newlines; every other column is split off by its
    known name. A new row starts only at ``Row: N`` where N is the next number,
    so a body line that merely looks like a row header stays in the body.
    """
    if text.endswith("\n"):
        text = text[:-1]  # the line end after the last row, not part of its value
    if not text.strip() or text.startswith("No result found"):
        return []
    starts: list[tuple[int, int]] = []
    expected = 0
    for match in ROW_START.finditer(text):
        if int(match.group(1)) == expected and _looks_like_row(text, match.end(), projection):
            starts.append((match.start(), match.end()))
            expected += 1
    rows: list[dict[str, str | None]] = []
    for index, (_, body_start) in enumerate(starts):
        end = starts[index + 1][0] - 1 if index + 1 < len(starts) else len(text)
        rows.append(_parse_row(text[body_start:end], projection))
    return rows


def _looks_like_row(text: str, position: int, projection: Sequence[str]) -> bool:
    return text.startswith(f"{projection[0]}=", position)


def _parse_row(line: str, projection: Sequence[str]) -> dict[str, str | None]:
    row: dict[str, str | None] = {}
    rest = line
    for index, column in enumerate(projection):
        prefix = f"{column}="
        if not rest.startswith(prefix):
            raise PhoneError(
                f"unexpected `content query` output near column {column!r}",
                "the phone's content tool prints rows differently; please report this",
            )
        rest = rest[len(prefix) :]
        if index + 1 < len(projection):
            separator = f", {projection[index + 1]}="
            cut = rest.find(separator)
            if cut < 0:
                raise PhoneError(
                    f"`content query` row lacks column {projection[index + 1]!r}",
                    "the phone's content tool prints rows differently; please report this",
                )
            value, rest = rest[:cut], rest[cut + 2 :]
        else:
            value, rest = rest, ""
        row[column] = None if value == "NULL" else value
    return row
