"""Shared helpers of the benchmarks: test bed, timed smsbak runs, BENCHMARKS.md sections.

Every benchmark runs the real CLI (``python -m smsbak``) as a subprocess against
the fake Termux tools (``tests.fakes.phone.FakePhone``) and the Gmail emulator
(``tests.fakes.gmail_emulator.GmailEmulator``, on 127.0.0.1 only), exactly as the
end-to-end tests do. Nothing here is taken from smsbak's own output: counts
come from the emulator and the fake's call log, times and memory from the OS.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.conftest import ACCOUNT, BACKUP_SCOPES  # noqa: E402
from tests.conftest import Bed as TestBed  # noqa: E402
from tests.conftest import write_token as _write_test_token  # noqa: E402
from tests.fakes.gmail_emulator import GmailEmulator  # noqa: E402
from tests.fakes.phone import FakePhone  # noqa: E402

BENCHMARKS_MD = REPO / "BENCHMARKS.md"
RESULTS = REPO / "benchmarks" / "results"
# What `smsbak auth --restore` asks for (saved as token-restore.json).
RESTORE_SCOPES = [
    "https://www.googleapis.com/auth/gmail.readonly",
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
]
# Gmail's real per-user quota and the burst of one full batch (50 inserts x 25 units).
REAL_QUOTA_PER_MINUTE = 15_000
REAL_BURST_UNITS = 1_250
INSERT_COST = 25
GET_COST = 5  # messages.get
LIST_COST = 5  # messages.list (one page, at most 500 ids)
LIST_PAGE = 500
# "Scaled" quota for benchmarks that are not about the quota (as the tests use).
SCALED_QUOTA_PER_MINUTE = 15_000_000
SCALED_BURST_UNITS = 1_250_000
# Phone messages start here (2025-01-01 00:00 UTC), one every MESSAGE_SPACING_MS.
BASE_MS = 1_735_689_600_000
MESSAGE_SPACING_MS = 10 * 60_000

# --------------------------------------------------------------------------- machine


def machine_facts() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        nproc = str(os.cpu_count())
    mem = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) // 1024} MiB"
                break
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "smsbak"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        commit = head + (" + uncommitted changes in smsbak/" if dirty else "")
    return {
        "machine (uname -m)": platform.machine(),
        "CPU": cpu,
        "nproc": nproc,
        "memory": mem,
        "Python": platform.python_version(),
        "smsbak commit": commit,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def machine_line() -> str:
    return "; ".join(f"{k}: {v}" for k, v in machine_facts().items())


# --------------------------------------------------------------------------- BENCHMARKS.md


def write_result(
    name: str,
    *,
    title: str,
    command: str,
    details: str,
    numbers: dict[str, Any] | None = None,
    summary: Sequence[dict[str, str]] = (),
    limit: dict[str, Any] | None = None,
    ratio: float | None = None,
    verdict: str = "recorded",
    machine: dict[str, str] | None = None,
    script: str | None = None,
) -> Path:
    """Write ``benchmarks/results/NAME.json`` (the data), then re-render BENCHMARKS.md.

    ``numbers``: what was measured, as plain JSON values; ``limit``: the target, e.g.
    ``{"what": "ratio best/measured", "op": ">=", "value": 0.95}``; ``summary``: rows of
    the summary table (``benchmark``, ``measured``, ``target``, ``verdict``);
    ``details``: the section's Markdown body (tables, notes), rendered as it is.
    See benchmarks/README.md.
    """
    facts = machine or machine_facts()
    doc = {
        "name": name,
        "title": title,
        "script": f"benchmarks/{name}.py",
        "command": command,
        "machine": facts,
        "commit": facts.get("smsbak commit", "unknown"),
        "date": facts.get("date", ""),
        "carried_over": None,
        "numbers": numbers or {},
        "limit": limit,
        "ratio": ratio,
        "verdict": verdict,
        "summary": list(summary),
        "details": details.rstrip() + "\n",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    if script:
        doc["script"] = script
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    from render import render  # benchmarks/ is on sys.path when a benchmark runs

    render()
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "**pass**" if ok else "**FAIL**"


# --------------------------------------------------------------------------- test bed


def write_token(
    home: Path,
    emulator: GmailEmulator,
    *,
    scopes: Sequence[str] = tuple(BACKUP_SCOPES),
    name: str = "token.json",
) -> str:
    """A token.json as `smsbak auth` leaves it: the test bed's own (tests/conftest.py).

    ``scopes=RESTORE_SCOPES, name="token-restore.json"``: as `smsbak auth --restore`.
    """
    return _write_test_token(home, emulator, list(scopes), name=name)


@dataclass
class Bed(TestBed):
    """The end-to-end tests' bed (tests/conftest.py), with a scratch root and no proxy."""

    root: Path = Path()

    def env(self, **extra: str) -> dict[str, str]:
        env = super().env(**extra)
        for variable in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env.pop(variable, None)
        env["NO_PROXY"] = "127.0.0.1,localhost"
        env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
        return env

    def stored(self, label: str = "SMS") -> int:  # type: ignore[override]
        """How many messages the emulator holds under ``label`` (a count, for reports)."""
        return len(self.emulator.messages(label))


@contextlib.contextmanager
def bed(
    *,
    quota_units_per_minute: int,
    burst_units: int,
    latency: float,
    prefix: str = "smsbak-bench-",
) -> Iterator[Bed]:
    with (
        tempfile.TemporaryDirectory(prefix=prefix) as tmp,
        GmailEmulator(
            account=ACCOUNT,
            quota_units_per_minute=quota_units_per_minute,
            burst_units=burst_units,
            latency=latency,
        ) as emulator,
    ):
        assert emulator.url.startswith("http://127.0.0.1:"), emulator.url
        root = Path(tmp)
        home = root / "home"
        phone = FakePhone(root / "phone")
        refresh_token = write_token(home, emulator)
        yield Bed(home=home, phone=phone, emulator=emulator, refresh_token=refresh_token, root=root)


def fill_phone(phone: FakePhone, count: int, *, spacing_ms: int = MESSAGE_SPACING_MS) -> None:
    """``count`` inbox/sent SMS, one every ``spacing_ms``, in 200 conversations."""
    words = ["hello", "are", "you", "coming", "tonight", "see", "you", "at", "the"]
    words += ["station", "ok", "thanks"]

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(count):
            length = 3 + (i * 7) % 25
            body = " ".join(words[(i + k) % len(words)] for k in range(length)) + f" #{i}"
            yield {
                "address": f"+4917{i % 200:08d}",
                "body": body,
                "date": BASE_MS + i * spacing_ms + (i * 37) % 1000,
                "type": 1 if i % 3 else 2,
                "read": True,
            }

    phone.add_many(rows())


def archive_sms(count: int, *, spacing_ms: int = MESSAGE_SPACING_MS) -> list[Any]:
    """``count`` distinct SMS (smsbak.model.Sms) as fill_phone makes them, for a Gmail archive."""
    from smsbak.model import Box, Sms

    words = ["hello", "are", "you", "coming", "tonight", "see", "you", "at", "the"]
    words += ["station", "ok", "thanks", "Grüße", "ça", "va"]
    messages = []
    for i in range(count):
        length = 3 + (i * 7) % 25
        body = " ".join(words[(i + k) % len(words)] for k in range(length)) + f" #{i}"
        messages.append(
            Sms(
                address=f"+4917{i % 200:08d}",
                body=body,
                date_ms=BASE_MS + i * spacing_ms + (i * 37) % 1000,
                box=Box.INBOX if i % 3 else Box.SENT,
                read=True,
                thread_id=1 + i % 200,
                android_id=i + 1,
            )
        )
    return messages


def seed_archive(emulator: GmailEmulator, messages: Sequence[Any], label: str = "SMS") -> None:
    """Put smsbak-format emails (smsbak.mime.encode_sms) under ``label``, as a backup
    would have left them; seeded directly, so no quota is spent and none is counted."""
    from smsbak.mime import encode_sms

    backup_time = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    for sms in messages:
        encoded = encode_sms(
            sms, account=ACCOUNT, contact_name=None, zone=UTC, backup_time=backup_time
        )
        emulator.add_message(encoded.raw, [label])
    emulator.refill_quota()


def restore_login(b: Bed) -> None:
    """token-restore.json as `smsbak auth --restore` leaves it (gmail.readonly)."""
    write_token(b.home, b.emulator, scopes=RESTORE_SCOPES, name="token-restore.json")


# --------------------------------------------------------------------------- running smsbak


def smsbak_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "smsbak", *args]


@dataclass
class RunResult:
    argv: list[str]
    returncode: int
    seconds: float
    stdout: str
    stderr: str
    peak_rss_kib: int | None = None  # VmHWM of the smsbak process itself (polled)
    tree_maxrss_kib: int | None = None  # wait4 ru_maxrss: itself or any waited-for descendant
    cpu_seconds: float | None = None  # user + sys of the process and its descendants
    samples: list[int] = field(default_factory=list)


def smsbak_child_pid() -> int | None:
    """The ``python -m smsbak`` process this benchmark started, found in /proc (the
    samplers poll its memory while it runs)."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = stat.rsplit(")", 1)[1].split()[1]
        if ppid == me and b"smsbak" in cmdline and b"-m" in cmdline:
            return int(entry.name)
    return None


def _vm_hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_timed(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    timeout: float,
    poll_memory: bool = False,
    poll_interval: float = 0.02,
) -> RunResult:
    """Run one process; wall time around it, rusage via wait4, optional VmHWM polling."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(
            list(argv), env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        peak: int | None = None
        stop = threading.Event()

        def poll() -> None:
            nonlocal peak
            while not stop.is_set():
                value = _vm_hwm_kib(process.pid)
                if value is not None:
                    peak = value if peak is None else max(peak, value)
                stop.wait(poll_interval)

        poller = threading.Thread(target=poll, daemon=True)
        if poll_memory:
            poller.start()
        deadline = started + timeout
        killed = False
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid == process.pid:
                break
            if time.monotonic() > deadline:
                killed = True
                process.kill()
                _, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.002)
        seconds = time.monotonic() - started
        # Popen must not try to reap the process again.
        process.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        if poll_memory:
            poller.join(timeout=5)
        out.seek(0)
        err.seek(0)
        return RunResult(
            argv=list(argv),
            returncode=-9 if killed else process.returncode,
            seconds=seconds,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            peak_rss_kib=peak,
            tree_maxrss_kib=usage.ru_maxrss,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
        )


def check(result: RunResult, what: str) -> None:
    if result.returncode != 0:
        raise SystemExit(
            f"{what} failed (exit {result.returncode}) after {result.seconds:.1f} s\n"
            f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-4000:]}"
        )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def write_wanted(argv: Sequence[str]) -> bool:
    return "--no-write" not in argv


# --------------------------------------------------------------------------- /proc of a process


CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcSnapshot:
    """One look at a running process in /proc: CPU in clock ticks, memory, wake-ups."""

    t: float  # time.monotonic() when read
    utime: int  # ticks, the process's own threads (user)
    stime: int  # ticks, the process's own threads (system)
    cutime: int  # ticks, waited-for children (user)
    cstime: int  # ticks, waited-for children (system)
    threads: int
    vm_rss_kib: int | None
    vm_hwm_kib: int | None
    voluntary_switches: int  # summed over the live threads
    involuntary_switches: int  # summed over the live threads

    @property
    def own_ticks(self) -> int:
        return self.utime + self.stime

    @property
    def children_ticks(self) -> int:
        return self.cutime + self.cstime


def _proc_status_fields(path: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    with open(path, encoding="ascii", errors="replace") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def proc_snapshot(pid: int) -> ProcSnapshot:
    """utime/stime/cutime/cstime from /proc/PID/stat; VmRSS/VmHWM from /proc/PID/status;
    context switches summed over /proc/PID/task/*/status (threads alive now)."""
    now = time.monotonic()
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
        stat = handle.read()
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    after = stat[stat.rindex(")") + 2 :].split()
    # after[0] is field 3 (state); field n is after[n - 3].
    utime, stime, cutime, cstime = (int(after[n - 3]) for n in (14, 15, 16, 17))
    threads = int(after[20 - 3])
    status = _proc_status_fields(f"/proc/{pid}/status")

    def kib(key: str) -> int | None:
        value = status.get(key)
        return int(value.split()[0]) if value else None

    voluntary = involuntary = 0
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError):
                fields = _proc_status_fields(f"/proc/{pid}/task/{task}/status")
                voluntary += int(fields.get("voluntary_ctxt_switches", "0"))
                involuntary += int(fields.get("nonvoluntary_ctxt_switches", "0"))
    return ProcSnapshot(
        t=now,
        utime=utime,
        stime=stime,
        cutime=cutime,
        cstime=cstime,
        threads=threads,
        vm_rss_kib=kib("VmRSS"),
        vm_hwm_kib=kib("VmHWM"),
        voluntary_switches=voluntary,
        involuntary_switches=involuntary,
    )


# --------------------------------------------------------------------------- committed tree


@contextlib.contextmanager
def committed_snapshot(*modules: str, revision: str = "HEAD") -> Iterator[dict[str, str]]:
    """Run smsbak from a snapshot of the committed tree (``git archive HEAD smsbak``).

    ``revision``: another commit instead (to compare with the code before a change).

    Others edit smsbak/ while benchmarks run, and smsbak is installed editable, so
    each ``python -m smsbak`` would import whatever the working tree holds at its
    start. Inside this context the working directory is the snapshot, and
    ``python -m smsbak`` puts the working directory first on sys.path, ahead of the
    editable install; the snapshot is also put first on this process's sys.path, so
    ``modules`` (e.g. "smsbak.mime") imported afterwards come from it too. Both are
    checked; yields ``{"commit", "path"}``. (daemon_idle.py has its own copy.)
    """
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", revision],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, "smsbak"],
        capture_output=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    if any(name == "smsbak" or name.startswith("smsbak.") for name in sys.modules):
        raise RuntimeError("smsbak was imported before the snapshot was taken")
    previous = os.getcwd()
    import io
    import tarfile

    with tempfile.TemporaryDirectory(prefix="smsbak-bench-src-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        root = Path(tmp).resolve()
        wanted = ["smsbak", "smsbak.cli", *modules]
        probe = subprocess.run(
            [sys.executable, "-c",
             "import importlib, sys\n"
             "for name in sys.argv[1:]: print(importlib.import_module(name).__file__)",
             *wanted],
            cwd=tmp, capture_output=True, text=True, timeout=60, check=True,
        ).stdout.split()  # fmt: skip
        if not all(Path(f).resolve().is_relative_to(root) for f in probe):
            raise SystemExit(f"smsbak is not imported from the snapshot: {probe}")
        sys.path.insert(0, tmp)
        os.chdir(tmp)
        try:
            import importlib

            for name in modules:
                found = importlib.import_module(name).__file__ or ""
                if not Path(found).resolve().is_relative_to(root):
                    raise SystemExit(f"{name} is not imported from the snapshot: {found}")
            yield {"commit": commit, "path": tmp}
        finally:
            os.chdir(previous)
            with contextlib.suppress(ValueError):
                sys.path.remove(tmp)
