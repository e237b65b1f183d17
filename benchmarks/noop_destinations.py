"""What a backup with nothing new costs at each destination: requests and wall time.

For Gmail (the emulator), IMAP (a real Dovecot on loopback, plain, behind the
counting proxy of tests/fakes/dovecot.py with no added latency) and a Maildir: a
first `smsbak backup` of N SMS through the real CLI, then `--runs` no-op `smsbak
backup` runs (median wall time). Counted per no-op run, never from smsbak's output:

- Gmail: the emulator's API calls by operation, token refreshes, HTTP requests;
- IMAP: connections the proxy saw and the server's tagged completions (one per
  command, named by Dovecot's answer: LOGIN, SELECT, LIST, ...);
- Maildir: inotify events on every directory of the Maildir (files created,
  written, opened, directories listed), read through ctypes, no strace;
- everywhere: the fake Termux tools' calls (termux-sms-list) and, for the non-Gmail
  destinations, the Gmail emulator's requests (must be 0).

Target: no upload at all (no insert, no APPEND, no file written) on a no-op run.

    python benchmarks/noop_destinations.py [--messages 2000] [--runs 5] [--no-write]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import re
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SCALED_BURST_UNITS,
    SCALED_QUOTA_PER_MINUTE,
    Bed,
    bed,
    check,
    fill_phone,
    fmt_s,
    machine_line,
    median,
    run_timed,
    smsbak_command,
    table,
    write_result,
)

from tests.fakes.dovecot import Dovecot, LatencyProxy, dovecot_available

CALL_LOG = False
"""config.toml's ``call_log`` for every run (``--call-log`` turns it on)."""

# --------------------------------------------------------------------------- IMAP counting

_TAGGED = re.compile(rb"^[A-Za-z0-9.]+ (OK|NO|BAD)\b(?: \[[^\]]*\])? ?([^\r\n]*)\r?$", re.M)


def _command_of(text: str) -> str:
    """The command a tagged completion answers, from Dovecot's wording
    ("Select completed", "Logged in", "List completed (0.001 + ...)")."""
    if text.startswith("Logged in"):
        return "LOGIN"
    if text.startswith("Pre-login capabilities"):
        return "CAPABILITY"
    found = re.match(r"(\w+) completed", text)
    return found.group(1).upper() if found else text.split(" ", 1)[0].upper() or "?"


class CountingProxy(LatencyProxy):
    """The tests' proxy, also counting the server's tagged completions by command.

    Every IMAP command ends in exactly one tagged completion, so these are the
    commands (and round trips) a client made. Each connection is served by its own
    thread, so a completion split over two reads is joined per thread."""

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port)
        self.commands: Counter[str] = Counter()
        self._pending = threading.local()

    def _count_appends(self, data: bytes) -> str:
        buffered = getattr(self._pending, "data", b"") + data
        complete, _, rest = buffered.rpartition(b"\n")
        self._pending.data = rest
        for match in _TAGGED.finditer(complete + b"\n" if complete else b""):
            with self._lock:
                self.commands[_command_of(match.group(2).decode("ascii", "replace"))] += 1
        return super()._count_appends(data)


# --------------------------------------------------------------------------- inotify

_IN = {
    "ACCESS": 0x001, "MODIFY": 0x002, "ATTRIB": 0x004, "CLOSE_WRITE": 0x008,
    "OPEN": 0x020, "MOVED_FROM": 0x040, "MOVED_TO": 0x080, "CREATE": 0x100,
    "DELETE": 0x200,
}  # fmt: skip
_IN_ALL = sum(_IN.values())
_IN_ISDIR = 0x40000000
_EVENT = struct.Struct("iIII")


class Inotify:
    """Every file event under a directory tree, through the kernel's inotify (ctypes):
    what a process did there, without strace. Directories must exist when watched."""

    def __init__(self, root: Path) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._libc = libc
        self._fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self._root = root
        self._dirs: dict[int, Path] = {}
        for directory in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            wd = libc.inotify_add_watch(self._fd, os.fsencode(directory), _IN_ALL)
            if wd < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {directory}")
            self._dirs[wd] = directory

    def events(self) -> Counter[str]:
        """Events since the last call, as "OPEN file in .SMS/cur", "OPEN dir in ." (a
        listing), ...: the kernel's event name, file or directory, the watched directory."""
        found: Counter[str] = Counter()
        while True:
            try:
                data = os.read(self._fd, 1 << 20)
            except BlockingIOError:
                return found
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size + length
                what = "dir" if mask & _IN_ISDIR else "file"
                where = self._dirs[wd].relative_to(self._root).as_posix()
                for name, bit in _IN.items():
                    if mask & bit:
                        found[f"{name} {what} in {where}"] += 1

    def close(self) -> None:
        os.close(self._fd)


# --------------------------------------------------------------------------- one destination


def first_backup(b: Bed, messages: int, env: dict[str, str]) -> float:
    fill_phone(b.phone, messages)
    result = run_timed(smsbak_command("backup"), env, timeout=1800)
    check(result, f"first backup of {messages}")
    return result.seconds


def noop_runs(
    b: Bed,
    env: dict[str, str],
    runs: int,
    counters: Callable[[], dict[str, int]],
    unchanged: Callable[[], bool],
) -> dict[str, Any]:
    """``runs`` no-op backups: wall times, and per run the delta of ``counters()``,
    the fake tools called and the Gmail emulator's requests."""
    times: list[float] = []
    per_run: list[dict[str, int]] = []
    for _ in range(runs):
        before_tools = len(b.phone.calls())
        before_http = b.emulator.http_requests
        before = counters()
        result = run_timed(smsbak_command("backup"), env, timeout=600)
        check(result, "no-op backup")
        times.append(result.seconds)
        after = counters()
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in {*before, *after}}
        delta = {k: v for k, v in delta.items() if v}
        for call in b.phone.calls()[before_tools:]:
            delta[f"tool {call['tool']}"] = delta.get(f"tool {call['tool']}", 0) + 1
        delta["gmail http requests"] = b.emulator.http_requests - before_http
        per_run.append(delta)
    if not unchanged():
        raise SystemExit("a no-op run changed what the destination holds")
    # One new SMS, one more run: the same counters must see exactly one upload, which
    # shows they count at all (a zero above is then a measured zero).
    with b.phone.batch():
        b.phone.add_sms(address="+4915550000", body="one more", date=int(time.time() * 1000))
    before_http, before = b.emulator.http_requests, counters()
    check(run_timed(smsbak_command("backup"), env, timeout=600), "backup of one new SMS")
    after = counters()
    one = {k: after.get(k, 0) - before.get(k, 0) for k in {*before, *after}}
    one = {k: v for k, v in one.items() if v}
    one["gmail http requests"] = b.emulator.http_requests - before_http
    if uploads_in(one) != 1:
        raise SystemExit(f"one new SMS was not counted as one upload: {one}")
    return {"times": times, "median_s": median(times), "per_run": per_run, "one_new": one}


@contextmanager
def gmail_bed() -> Iterator[Bed]:
    with bed(
        quota_units_per_minute=SCALED_QUOTA_PER_MINUTE, burst_units=SCALED_BURST_UNITS, latency=0.0
    ) as b:
        yield b


def configure(b: Bed, **settings: object) -> None:
    b.configure(
        quota_units_per_minute=SCALED_QUOTA_PER_MINUTE,
        reader="termux",
        call_log=CALL_LOG,
        **settings,
    )


def measure_gmail(messages: int, runs: int) -> dict[str, Any]:
    with gmail_bed() as b:
        configure(b)
        env = b.env()
        first = first_backup(b, messages, env)
        if b.stored() != messages:
            raise SystemExit(f"Gmail holds {b.stored()} of {messages}")
        emulator = b.emulator

        def counters() -> dict[str, int]:
            found = {f"api {op}": n for op, n in emulator.calls.items()}
            found["token refreshes"] = emulator.token_refreshes
            found["uploads"] = emulator.insert_calls
            return found

        result = noop_runs(b, env, runs, counters, lambda: b.stored() == messages)
    return {"first_s": first, **result}


def measure_imap(messages: int, runs: int) -> dict[str, Any]:
    with gmail_bed() as b, Dovecot() as server:
        proxy = CountingProxy(server.port)
        with proxy:
            return _measure_imap(b, server, proxy, messages, runs)


def _measure_imap(
    b: Bed, server: Dovecot, proxy: CountingProxy, messages: int, runs: int
) -> dict[str, Any]:
    configure(
        b, destination="imap", imap_host="127.0.0.1", imap_port=proxy.port,
        imap_user=server.user, imap_security="plain",
    )  # fmt: skip
    env = b.env(SMSBAK_IMAP_PASSWORD=server.password)
    first = first_backup(b, messages, env)
    if len(server.messages("SMS")) != messages:
        raise SystemExit("Dovecot does not hold every message")

    def counters() -> dict[str, int]:
        with proxy._lock:
            found = {f"imap {cmd}": n for cmd, n in proxy.commands.items()}
            found["connections"] = proxy.total_connections
            found["uploads"] = proxy.appends_answered
        return found

    result = noop_runs(b, env, runs, counters, lambda: len(server.messages("SMS")) == messages)
    return {"first_s": first, **result}


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def measure_maildir(messages: int, runs: int) -> dict[str, Any]:
    with gmail_bed() as b:
        root = b.root / "Maildir"
        configure(b, destination=f"maildir:{root}")
        env = b.env()
        first = first_backup(b, messages, env)
        tree = _tree(root)
        delivered = sum(1 for name in tree if name.startswith(".SMS/cur/") or "/new/" in name)
        if delivered != messages:
            raise SystemExit(f"the Maildir holds {delivered} of {messages}")
        watch = Inotify(root)
        seen: Counter[str] = Counter()

        def counters() -> dict[str, int]:
            seen.update(watch.events())
            return dict(seen)

        result = noop_runs(b, env, runs, counters, lambda: _tree(root) == tree)
        watch.close()
    return {"first_s": first, "tree_unchanged": True, **result}


# --------------------------------------------------------------------------- report


def spread(per_run: list[dict[str, int]]) -> str:
    """Each count over the runs: "x2" when every run made 2, "x1/2" when they differ."""
    keys = sorted({k for run in per_run for k in run if k != "gmail http requests"})
    parts = []
    for key in keys:
        values = sorted({run.get(key, 0) for run in per_run})
        parts.append(f"{key} x{'/'.join(str(v) for v in values)}")
    return ", ".join(parts) or "nothing"


def uploads_in(counts: dict[str, int]) -> int:
    """Uploads a run made: inserts or APPENDs, or messages delivered into a Maildir
    folder (a file created in or moved into its cur/ or new/)."""
    delivered = sum(
        n
        for key, n in counts.items()
        if key.startswith(("CREATE file in ", "MOVED_TO file in "))
        and key.endswith(("/cur", "/new"))
    )
    return counts.get("uploads", 0) + delivered


def uploads(result: dict[str, Any]) -> int:
    return sum(uploads_in(run) for run in result["per_run"])


def report(results: dict[str, dict[str, Any]], messages: int, runs: int) -> str:
    rows = []
    for name, r in results.items():
        gmail_http = sorted({run["gmail http requests"] for run in r["per_run"]})
        rows.append(
            [
                name,
                fmt_s(r["first_s"]),
                f"**{fmt_s(r['median_s'])}**",
                f"{min(r['times']):.3f} - {max(r['times']):.3f} s",
                uploads(r),
                spread(r["per_run"]),
                "/".join(str(v) for v in gmail_http),
                spread([r["one_new"]]),
            ]
        )
    return "\n".join(
        [
            "## No-op backup at each destination (`benchmarks/noop_destinations.py`)",
            "",
            f"**What:** a first `smsbak backup` of {messages:,} SMS through the real CLI, "
            f"then {runs} `smsbak backup` runs that find nothing new (median wall time) into "
            "Gmail (the emulator), IMAP (Debian's Dovecot on loopback, plain, through the "
            "tests' proxy with no added latency, counting the server's tagged completions "
            "by command) and a Maildir (inotify on every directory of it: files created, "
            "written, opened, directories listed). Counts are per no-op run (`x1/2`: "
            "runs differed) and come from the emulator, the proxy, the kernel and the fake "
            'tools\' call log. config.toml: `reader = "termux"`, `call_log = '
            f"{str(CALL_LOG).lower()}`, scaled-up quota. The last column is one more run "
            "after one new SMS arrived: the same counters see its upload, so the zeros "
            "before it are measured, not counters that do not count.",
            "",
            f"**Command:** `python benchmarks/noop_destinations.py --messages {messages} "
            f"--runs {runs}`",
            "",
            f"**Machine:** {machine_line()}",
            "",
            table(
                [
                    "destination",
                    "first backup",
                    "no-op, median",
                    "min - max",
                    "uploads (all no-op runs)",
                    "what each no-op run did",
                    "Gmail HTTP requests per run",
                    "for comparison: a run with one new SMS",
                ],
                rows,
            ),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="gmail,imap,maildir")
    parser.add_argument("--call-log", action="store_true", help="back up the call log too")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    global CALL_LOG
    CALL_LOG = args.call_log
    if not 1 <= args.messages <= 100_000 or not 1 <= args.runs <= 50:
        parser.error("--messages 1..100000, --runs 1..50")
    reason = dovecot_available()
    if reason and "imap" in args.only:
        raise SystemExit(f"needs Dovecot: {reason}")
    measures = {"Gmail": measure_gmail, "IMAP": measure_imap, "Maildir": measure_maildir}
    results: dict[str, dict[str, Any]] = {}
    for name, measure in measures.items():
        if name.lower() in args.only.split(","):
            results[name] = measure(args.messages, args.runs)
            print(name, results[name], flush=True)
    text = report(results, args.messages, args.runs)
    print(text)
    if args.no_write:
        return 0
    total_uploads = sum(uploads(r) for r in results.values())
    ok = total_uploads == 0
    contact = {"Gmail": "Gmail requests", "IMAP": "IMAP connections/commands",
               "Maildir": "file events"}  # fmt: skip

    def touched(r: dict[str, Any]) -> int:
        """What all no-op runs asked of the destination (the phone's tools aside)."""
        return sum(
            n
            for run in r["per_run"]
            for key, n in run.items()
            if not key.startswith("tool ") and key != "gmail http requests"
        )

    measured = "; ".join(
        f"{name} **{fmt_s(r['median_s'])}**, {touched(r)} {contact.get(name, 'contacts')}"
        for name, r in results.items()
    )
    tools = sorted({spread([run]) for r in results.values() for run in r["per_run"]})
    measured += f"; every run: {' / '.join(tools)}"
    write_result(
        "noop_destinations",
        title="No-op backup at each destination",
        command=f"python benchmarks/noop_destinations.py --messages {args.messages} "
        f"--runs {args.runs}",
        details=text,
        numbers={"messages": args.messages, "runs": args.runs, "destinations": results},
        summary=[
            {
                "benchmark": f"no-op backup after {args.messages:,} SMS, per destination "
                f"(median of {args.runs})",
                "measured": measured,
                "target": "no upload (insert, APPEND, file written) on a no-op run",
                "verdict": "pass" if ok else "FAIL",
            }
        ],
        limit={"what": "uploads in all no-op runs", "op": "==", "value": 0},
        ratio=float(total_uploads),
        verdict="pass" if ok else "FAIL",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
