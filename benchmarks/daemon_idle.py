"""Idle cost of `smsbak daemon`: CPU, wake-ups and memory while nothing is new.

A phone of 1,000 SMS is backed up once (`smsbak backup`), so the daemon started
afterwards with `--every 1h` does not back up at start. Then the daemon idles for a
measured window in three configurations (one daemon each, one after the other):
`watch_every` at its default, `watch_every = "off"`, and a short `watch_every`
(2 s) so that many watch checks fall into the window. At the start and end of
the window the daemon's /proc/PID/stat (utime+stime, and cutime+cstime of its
waited-for children, in clock ticks), /proc/PID/status (VmRSS, VmHWM) and the
context switches of its threads are read; the watch checks are counted from the
fake phone's call log (`termux-sms-list -l 1 ...`). The cost of one check is the
difference between the short-watch run and the watch-off run, per check; the same
fake tool calls are also timed directly. Finally the daemon gets SIGTERM and must
exit 0. No target: the numbers are recorded. smsbak runs from a `git archive`
snapshot of the committed tree taken at the start (others edit smsbak/ meanwhile).

    python benchmarks/daemon_idle.py [--messages 1000] [--window 120]
        [--check-every 2s] [--calls 20] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    CLOCK_TICKS_PER_SECOND,
    REPO,
    SCALED_BURST_UNITS,
    SCALED_QUOTA_PER_MINUTE,
    bed,
    check,
    fill_phone,
    machine_facts,
    proc_snapshot,
    run_timed,
    smsbak_command,
    table,
    write_result,
)

from smsbak.config import parse_duration
from tests.fakes.phone import BIN_DIR

EVERY = "1h"  # `smsbak daemon --every`: no scheduled backup falls into the window
# shared/reference/termux-api.md: "Each call costs roughly 0.5 to 3 s on a phone".
TERMUX_API_CALL_COST = (0.5, 3.0)
# Tools that go through the Termux:API app (getprop is an Android binary, not one).
TERMUX_API_TOOLS = frozenset(
    {"termux-sms-list", "termux-notification", "termux-notification-remove"}
)
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
TICK = 1.0 / CLOCK_TICKS_PER_SECOND


def is_watch_call(call: dict[str, Any]) -> bool:
    return bool(call["tool"] == "termux-sms-list" and call["argv"][:2] == ["-l", "1"])


def run_daemon(
    messages: int, watch_every: str | None, window: float, settle: float
) -> dict[str, Any]:
    """One daemon on a backed-up phone; /proc snapshots around an idle window."""
    label = f'watch_every = "{watch_every}"' if watch_every else "watch_every default"
    with bed(
        quota_units_per_minute=SCALED_QUOTA_PER_MINUTE,
        burst_units=SCALED_BURST_UNITS,
        latency=0.0,
    ) as b:
        settings: dict[str, object] = {"quota_units_per_minute": SCALED_QUOTA_PER_MINUTE}
        if watch_every is not None:
            settings["watch_every"] = watch_every
        b.configure(**settings)
        fill_phone(b.phone, messages)
        first = run_timed(smsbak_command("backup"), b.env(), timeout=600)
        check(first, "first backup")
        if b.stored() != messages:
            raise SystemExit(f"first backup stored {b.stored()} of {messages}")
        print(f"{label}: backed up {messages} in {first.seconds:.1f} s; starting the daemon",
              flush=True)  # fmt: skip
        calls_before = len(b.phone.calls())
        inserts_before = b.emulator.insert_calls
        out_path, err_path = b.root / "daemon.out", b.root / "daemon.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            wall_started = time.time()
            process = subprocess.Popen(
                smsbak_command("daemon", "--every", EVERY),
                env=b.env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
            returncode: int | None = None
            stop_seconds: float | None = None
            try:
                # Start-up is over once the "Started" status notification was shown.
                deadline = time.monotonic() + STARTUP_TIMEOUT
                started_at: float | None = None
                while started_at is None:
                    if process.poll() is not None:
                        raise SystemExit(
                            f"{label}: daemon exited {process.returncode} at start:\n"
                            + err_path.read_text(errors="replace")[-3000:]
                        )
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{label}: no start notification in {STARTUP_TIMEOUT} s")
                    for call in b.phone.calls()[calls_before:]:
                        if call["tool"] == "termux-notification" and any(
                            "Started" in arg for arg in call["argv"]
                        ):
                            started_at = float(call["t"])
                    time.sleep(0.05)
                time.sleep(settle)
                start_calls = len(b.phone.calls())
                start_http = b.emulator.http_requests
                s0 = proc_snapshot(process.pid)
                end = s0.t + window
                while (remaining := end - time.monotonic()) > 0:
                    if process.poll() is not None:
                        raise SystemExit(f"{label}: daemon died in the window")
                    time.sleep(min(1.0, remaining))
                s1 = proc_snapshot(process.pid)
                window_calls = b.phone.calls()[start_calls:]
                http = b.emulator.http_requests - start_http
            finally:
                if process.poll() is None:
                    stop_started = time.monotonic()
                    process.send_signal(signal.SIGTERM)
                    try:
                        returncode = process.wait(timeout=STOP_TIMEOUT)
                        stop_seconds = time.monotonic() - stop_started
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
                        returncode = None
        all_calls = b.phone.calls()[calls_before:]
        backup_reads = [
            c for c in all_calls if c["tool"] == "termux-sms-list" and not is_watch_call(c)
        ]
        watch_times = [float(c["t"]) for c in window_calls if is_watch_call(c)]
        gaps = [b_ - a for a, b_ in itertools.pairwise(watch_times)]
        result = {
            "label": label,
            "watch_every": watch_every,
            "first_backup_seconds": first.seconds,
            "startup_seconds": started_at - wall_started,
            "startup_ticks": s0.own_ticks,
            "window": s1.t - s0.t,
            "own_ticks": s1.own_ticks - s0.own_ticks,
            "utime_ticks": s1.utime - s0.utime,
            "stime_ticks": s1.stime - s0.stime,
            "children_ticks": s1.children_ticks - s0.children_ticks,
            "voluntary": s1.voluntary_switches - s0.voluntary_switches,
            "involuntary": s1.involuntary_switches - s0.involuntary_switches,
            "threads": (s0.threads, s1.threads),
            "rss_kib": (s0.vm_rss_kib, s1.vm_rss_kib),
            "hwm_kib": s1.vm_hwm_kib,
            "window_calls": dict(Counter(c["tool"] for c in window_calls)),
            "window_argvs": sorted({json.dumps([c["tool"], *c["argv"]]) for c in window_calls}),
            "watch_checks": sum(1 for c in window_calls if is_watch_call(c)),
            "watch_gaps": gaps,
            "http_requests_in_window": http,
            "inserts_while_running": b.emulator.insert_calls - inserts_before,
            "backup_reads_while_running": len(backup_reads),
            "calls_total": dict(Counter(c["tool"] for c in all_calls)),
            "returncode": returncode,
            "stop_seconds": stop_seconds,
            "stderr_tail": err_path.read_text(errors="replace")[-1500:],
        }
        if result["inserts_while_running"] or result["backup_reads_while_running"]:
            raise SystemExit(f"{label}: the daemon backed up while it should idle: {result}")
        return result


def time_calls(messages: int, argvs: list[list[str]], runs: int) -> dict[str, dict[str, float]]:
    """Replay the tool calls the watch checks made (tool + argv from the call log) on
    the same phone, without smsbak: wall time and CPU (wait4) of each."""
    with bed(
        quota_units_per_minute=SCALED_QUOTA_PER_MINUTE,
        burst_units=SCALED_BURST_UNITS,
        latency=0.0,
    ) as b:
        fill_phone(b.phone, messages)
        env = b.env()
        results: dict[str, dict[str, float]] = {}
        for tool, *rest in argvs:
            name = " ".join([tool, *rest])
            argv = [str(BIN_DIR / tool), *rest]
            walls, cpus = [], []
            check(run_timed(argv, env, timeout=60), name)  # warm-up
            for _ in range(runs):
                r = run_timed(argv, env, timeout=60)
                check(r, name)
                walls.append(r.seconds)
                cpus.append(r.cpu_seconds or 0.0)
            results[name] = {
                "wall_median": statistics.median(walls),
                "wall_min": min(walls),
                "wall_max": max(walls),
                "cpu_median": statistics.median(cpus),
            }
        return results


@contextlib.contextmanager
def committed_smsbak() -> Iterator[dict[str, str]]:
    """Run smsbak from a snapshot of the committed tree (``git archive HEAD smsbak``).

    Others edit smsbak/ while benchmarks run, and smsbak is installed editable, so each
    daemon would import whatever the working tree holds at its start. The benchmark
    chdirs into the snapshot for its runs: ``python -m smsbak`` puts the working
    directory first on sys.path, ahead of the editable install's finder (checked).
    """
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, "smsbak"],
        capture_output=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    previous = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="smsbak-bench-src-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import smsbak, smsbak.daemon; from smsbak.config import Settings, "
                "parse_duration; print(smsbak.__file__); print(smsbak.daemon.__file__); "
                "w = Settings().watch_every; print(w); print(parse_duration(w))",
            ],
            cwd=tmp, capture_output=True, text=True, timeout=60, check=True,
        ).stdout.split("\n")  # fmt: skip
        if not all(Path(f).resolve().is_relative_to(Path(tmp).resolve()) for f in probe[:2]):
            raise SystemExit(f"smsbak is not imported from the snapshot: {probe[:2]}")
        os.chdir(tmp)
        try:
            yield {"commit": commit, "default_watch": probe[2], "default_seconds": probe[3]}
        finally:
            os.chdir(previous)


def per_hour(ticks: float, seconds: float) -> float:
    return ticks * TICK / seconds * 3600


def cpu_text(ticks: int, seconds: float) -> str:
    if ticks == 0:
        return f"0 ticks in {seconds:.0f} s (< {per_hour(1, seconds):.2f} s/h)"
    return f"{per_hour(ticks, seconds):.2f} s/h ({ticks} ticks in {seconds:.0f} s)"


def mib(kib: int | None) -> str:
    return "?" if kib is None else f"{kib / 1024:.1f} MiB"


def report(
    runs: dict[str, dict[str, Any]],
    calls: dict[str, dict[str, float]],
    *,
    messages: int,
    window: float,
    check_every: str,
    default_watch: str,
    commit: str,
    n_calls: int,
) -> tuple[str, dict[str, Any]]:
    default, off, short = runs["default"], runs["off"], runs["short"]
    facts = machine_facts()
    facts["smsbak commit"] = f"{commit} (the committed tree, run from a `git archive` snapshot)"
    machine = "; ".join(f"{k}: {v}" for k, v in facts.items())
    order = [default, off, short]

    rows = []
    for r in order:
        w = r["window"]
        gaps = r["watch_gaps"]
        switches = r["voluntary"] + r["involuntary"]
        rows.append(
            [
                r["label"],
                f"{w:.1f} s",
                f"**{cpu_text(r['own_ticks'], w)}**",
                f"{r['utime_ticks']} / {r['stime_ticks']}",
                cpu_text(r["children_ticks"], w),
                f"{switches} ({switches / w * 60:.1f}/min)",
                r["watch_checks"],
                (
                    f"{statistics.median(gaps):.2f} s ({min(gaps):.2f} - {max(gaps):.2f})"
                    if gaps
                    else "-"
                ),
                ", ".join(f"{t} x{n}" for t, n in sorted(r["window_calls"].items())) or "none",
                f"{mib(r['rss_kib'][0])} -> **{mib(r['rss_kib'][1])}**",
                mib(r["hwm_kib"]),
                f"{r['threads'][1]}",
                r["http_requests_in_window"],
            ]
        )

    # One check = the short-watch run minus the watch-off run's rate, per check.
    checks = short["watch_checks"]
    w_short, w_off = short["window"], off["window"]
    off_own_rate = off["own_ticks"] * TICK / w_off
    off_child_rate = off["children_ticks"] * TICK / w_off
    off_wake_rate = (off["voluntary"] + off["involuntary"]) / w_off
    per_check: dict[str, float] = {}
    if checks:
        per_check["own"] = (short["own_ticks"] * TICK - off_own_rate * w_short) / checks
        per_check["children"] = (short["children_ticks"] * TICK - off_child_rate * w_short) / checks
        per_check["wakeups"] = (
            short["voluntary"] + short["involuntary"] - off_wake_rate * w_short
        ) / checks
    tools_per_check = {
        tool: n / checks for tool, n in sorted(short["window_calls"].items()) if checks
    }

    checks_per_hour = 3600 / parse_duration(default_watch)
    derived: dict[str, Any] = {"checks_per_hour": checks_per_hour}
    if checks:
        derived["own_cpu_per_hour"] = off_own_rate * 3600 + checks_per_hour * per_check["own"]
        derived["children_cpu_per_hour"] = (
            off_child_rate * 3600 + checks_per_hour * per_check["children"]
        )
        derived["wakeups_per_hour"] = off_wake_rate * 3600 + checks_per_hour * per_check["wakeups"]
        derived["tool_calls_per_hour"] = {
            t: n * checks_per_hour for t, n in tools_per_check.items()
        }
        api_calls = sum(n for t, n in tools_per_check.items() if t in TERMUX_API_TOOLS)
        derived["api_calls_per_hour"] = api_calls * checks_per_hour
        derived["api_app_seconds_per_hour"] = tuple(
            api_calls * checks_per_hour * c for c in TERMUX_API_CALL_COST
        )
    fake_wall_per_check = sum(
        calls[name]["wall_median"] * tools_per_check.get(name.split()[0], 0.0) for name in calls
    )
    fake_cpu_per_check = sum(
        calls[name]["cpu_median"] * tools_per_check.get(name.split()[0], 0.0) for name in calls
    )

    all_exit_0 = all(r["returncode"] == 0 for r in order)
    stop_text = "; ".join(
        f"{r['label']}: exit {r['returncode']} after {r['stop_seconds']:.2f} s"
        if r["stop_seconds"] is not None
        else f"{r['label']}: did not stop within {STOP_TIMEOUT:.0f} s (killed)"
        for r in order
    )

    lines = [
        "## Idle cost of the daemon (`benchmarks/daemon_idle.py`)",
        "",
        f"**What:** `smsbak daemon --every {EVERY}` on a phone of {messages:,} SMS that one "
        "`smsbak backup` had already uploaded, so the daemon does not back up at start and no "
        f"scheduled backup falls into the window. One daemon per configuration: `watch_every` "
        f'at its default ("{default_watch}"), `watch_every = "off"`, and `watch_every = '
        f'"{check_every}"` so that many watch checks fall into the window; everything else at '
        "its default (notifications on, through the fake termux-notification). After start-up "
        '(the "Started" status notification in the fake phone\'s call log, then a short settle) '
        f"each daemon idles for a window of {window:.0f} s. At its start and end the benchmark "
        "reads the daemon process's /proc/PID/stat (utime+stime of its own threads, and "
        "cutime+cstime of the child processes it waited for, i.e. the fake tools, in clock "
        f"ticks of {TICK * 1000:.0f} ms), VmRSS/VmHWM from /proc/PID/status, and the voluntary "
        "+ involuntary context switches summed over /proc/PID/task/*/status (each is one "
        "time a thread went to sleep or was preempted: a count of wake-ups). Watch checks are "
        "counted from the call log (`termux-sms-list -l 1 ...`). **CPU per hour is "
        f"extrapolated** linearly from the {window:.0f} s window. The emulator ran the whole "
        "time; the daemon made no Gmail request in any window. smsbak ran from a snapshot of "
        "the committed tree taken at the start (`git archive HEAD smsbak`), as others were "
        "editing smsbak/ meanwhile.",
        "",
        f"**Command:** `python benchmarks/daemon_idle.py --messages {messages} --window "
        f"{window:g} --check-every {check_every} --calls {n_calls}`",
        "",
        f"**Machine:** {machine}",
        "",
        table(
            [
                "daemon",
                "window",
                "daemon CPU (utime+stime), per hour",
                "utime / stime ticks",
                "children CPU (fake tools), per hour",
                "context switches",
                "watch checks",
                "gap between checks, median (min - max)",
                "tool calls in the window",
                "VmRSS start -> end",
                "VmHWM",
                "threads",
                "Gmail requests",
            ],
            rows,
        ),
        "",
        "Start-up (not in the windows): "
        + "; ".join(
            f'{r["label"]}: {r["startup_seconds"]:.2f} s to the "Started" notification, '
            f"{r['startup_ticks'] * TICK:.2f} s CPU by the end of the settle"
            for r in order
        )
        + ". Stopping with SIGTERM: "
        + stop_text
        + (". **All exited 0.**" if all_exit_0 else ". **Not all exited 0.**"),
        "",
        "### One watch check",
        "",
    ]
    if checks:
        lines += [
            table(
                ["per check", "value"],
                [
                    [
                        "checks in the short-watch window",
                        f"{checks} (expected about {w_short / parse_duration(check_every):.0f})",
                    ],
                    [
                        "tool calls per check (call log)",
                        ", ".join(f"{t} x{n:.2f}" for t, n in tools_per_check.items()),
                    ],
                    [
                        "**daemon CPU per check** (short-watch minus watch-off, per check)",
                        f"**{per_check['own'] * 1000:.1f} ms**",
                    ],
                    [
                        "children CPU per check (the fake tools' processes)",
                        f"{per_check['children'] * 1000:.1f} ms",
                    ],
                    ["context switches per check", f"{per_check['wakeups']:.1f}"],
                    *(
                        [
                            f"`{name}` timed directly, wall median (min - max) of {n_calls}",
                            f"{c['wall_median'] * 1000:.1f} ms ({c['wall_min'] * 1000:.1f} - "
                            f"{c['wall_max'] * 1000:.1f}); "
                            f"CPU median {c['cpu_median'] * 1000:.1f} ms",
                        ]
                        for name, c in calls.items()
                    ),
                    [
                        "the fake calls of one check, wall / CPU (timed directly x calls "
                        "per check)",
                        f"{fake_wall_per_check * 1000:.1f} ms / {fake_cpu_per_check * 1000:.1f} ms",
                    ],
                ],
            ),
            "",
            "On a phone each Termux:API call costs roughly "
            f"{TERMUX_API_CALL_COST[0]:g} to {TERMUX_API_CALL_COST[1]:g} s of the Termux:API "
            "app's time (shared/reference/termux-api.md: broadcast to the app, its query, the "
            "answer over a socket), on top of the shell script and the `termux-api` binary. "
            "**This machine cannot measure that**: the fakes are Python scripts that read a "
            "fixture file, so their wall and CPU times above stand for process start-up, not "
            "for the app.",
            "",
            f'### Derived: per hour at the default `watch_every = "{default_watch}"` '
            f"({checks_per_hour:g} checks/hour)",
            "",
            table(
                ["per hour", "value"],
                [
                    [
                        "**daemon CPU** (watch-off idle rate + checks x CPU per check)",
                        f"**{derived['own_cpu_per_hour']:.2f} s/h**",
                    ],
                    [
                        "children CPU (fake tools; a phone's real tools differ)",
                        f"{derived['children_cpu_per_hour']:.2f} s/h",
                    ],
                    ["context switches (wake-ups)", f"{derived['wakeups_per_hour']:.0f}/h"],
                    [
                        "tool processes started",
                        ", ".join(
                            f"{t} x{n:.0f}" for t, n in derived["tool_calls_per_hour"].items()
                        ),
                    ],
                    [
                        "Termux:API app time (not measured: calls x 0.5 - 3 s)",
                        f"**{derived['api_app_seconds_per_hour'][0]:.0f} - "
                        f"{derived['api_app_seconds_per_hour'][1]:.0f} s/h** "
                        f"({derived['api_calls_per_hour']:.0f} Termux:API calls)",
                    ],
                    [
                        f"measured directly in the default run ({default['watch_checks']} "
                        f"checks in its {default['window']:.0f} s window)",
                        cpu_text(default["own_ticks"], default["window"]),
                    ],
                ],
            ),
        ]
    else:
        lines.append("No watch check fell into the short-watch window: nothing to derive.")

    # What stands out, from the measurements (explanations from reading smsbak/daemon.py).
    notes = []
    idle_switches = off["voluntary"] + off["involuntary"]
    if idle_switches == 0 and off["own_ticks"] == 0:
        notes.append(
            f"**The idle daemon does not wake up at all**: with the watch off, 0 context "
            f"switches and 0 CPU ticks in {w_off:.0f} s (APScheduler's main thread sleeps "
            f"until the next job, {EVERY} away)."
        )
    else:
        notes.append(
            f"**The idle daemon wakes up** with the watch off: {idle_switches} context "
            f"switches ({idle_switches / w_off * 60:.1f}/min) and {off['own_ticks']} CPU ticks "
            f"in {w_off:.0f} s, though no job is due for {EVERY}."
        )
    if short["watch_gaps"]:
        gap = statistics.median(short["watch_gaps"])
        notes.append(
            f'The watch timer fires as configured: median gap {gap:.2f} s for "{check_every}"'
            f" ({parse_duration(check_every):g} s), and each check costs "
            f"{per_check.get('wakeups', 0):.1f} context switches over the watch-off rate "
            "(the check's child processes and pipes)."
        )
    if tools_per_check.get("getprop", 0) >= 0.9:
        notes.append(
            "**Surprise: every watch check starts two processes, not one.** Besides "
            "`termux-sms-list -l 1` it runs `getprop persist.sys.timezone` "
            f"({tools_per_check['getprop']:.2f} per check), although the daemon looked the "
            "zone up at start; the `watch_every` setting's own description says \"one small "
            'termux-sms-list call each time". By reading the code: `Daemon._watch` builds a '
            "new `TermuxPhone` for each check, and parsing the page asks that object for the "
            "phone's zone, which it has not cached yet. getprop is an Android binary, not a "
            "Termux:API call, so it does not pay the 0.5 - 3 s of the app; on a phone it is "
            "one more process start per check "
            f"({checks_per_hour:g} per hour at the default)."
        )
    if short["threads"][1] > off["threads"][1]:
        notes.append(
            f"Threads: {off['threads'][1]} while no job has run, {short['threads'][1]} once a "
            "watch check ran (the scheduler's worker thread stays, idle)."
        )
    rss = [r["rss_kib"][1] for r in order if r["rss_kib"][1]]
    if rss:
        notes.append(
            f"Memory is flat: VmRSS {mib(min(rss))} - {mib(max(rss))} across the three daemons; "
            "nothing grows in the windows."
            if all(r["rss_kib"][0] and r["rss_kib"][1] - r["rss_kib"][0] < 512 for r in order)
            else "VmRSS grew during a window by 0.5 MiB or more: see the table."
        )
    lines += ["", "Notes:", "", *(f"- {n}" for n in notes)]
    return "\n".join(lines), {"per_check": per_check, "derived": derived,
                              "tools_per_check": tools_per_check}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--window", type=float, default=120.0, help="idle window, seconds")
    parser.add_argument("--check-every", default="2s", help="watch_every of the check run")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after start-up")
    parser.add_argument("--calls", type=int, default=20, help="direct timings of each tool")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    if not 1 <= args.messages <= 200_000:
        parser.error("--messages 1..200000")
    if not 5 <= args.window <= 3600 or not 0 <= args.settle <= 60 or not 1 <= args.calls <= 200:
        parser.error("--window 5..3600, --settle 0..60, --calls 1..200")
    if not 1 <= parse_duration(args.check_every) <= args.window / 2:
        parser.error("--check-every between 1 s and half the window")
    with committed_smsbak() as snapshot:
        runs = {
            "default": run_daemon(args.messages, None, args.window, args.settle),
            "off": run_daemon(args.messages, "off", args.window, args.settle),
            "short": run_daemon(args.messages, args.check_every, args.window, args.settle),
        }
    for r in runs.values():
        print(json.dumps({k: v for k, v in r.items() if k != "stderr_tail"}), flush=True)
        if r["returncode"] != 0:
            print(f"{r['label']} stderr:\n{r['stderr_tail']}", flush=True)
    # The distinct calls of the short-watch window (notifications are not part of a check).
    argvs = [json.loads(a) for a in runs["short"]["window_argvs"]]
    argvs = [a for a in argvs if not a[0].startswith("termux-notification")]
    calls = time_calls(args.messages, argvs, args.calls)
    print(json.dumps(calls), flush=True)
    text, numbers = report(
        runs,
        calls,
        messages=args.messages,
        window=args.window,
        check_every=args.check_every,
        default_watch=snapshot["default_watch"],
        commit=snapshot["commit"],
        n_calls=args.calls,
    )
    print(json.dumps(numbers), flush=True)
    print(text)
    if not args.no_write:
        write_result(
            "daemon_idle",
            title="Idle cost of the daemon",
            command=f"python benchmarks/daemon_idle.py --messages {args.messages} "
            f"--window {args.window:g} --check-every {args.check_every} --calls {args.calls}",
            details=text,
            numbers=json.loads(
                json.dumps(
                    {"messages": args.messages, "window_s": args.window, **numbers}, default=str
                )
            ),
            summary=[
                {
                    "benchmark": f"daemon idle, `--every 1h`, {args.messages:,} SMS all backed "
                    f"up, {args.window:g} s windows (CPU per hour extrapolated)",
                    "measured": "see its section; per watch check and per hour: "
                    + json.dumps(numbers.get("derived"), default=str),
                    "target": "- (no target)",
                    "verdict": "recorded",
                }
            ],
        )
    return 0 if all(r["returncode"] == 0 for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
