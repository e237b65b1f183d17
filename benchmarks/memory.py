"""Peak memory of a first `smsbak backup` at 20,000, 100,000 and 200,000 SMS.

The emulator's quota is scaled up 1000x and has no latency, so the run is as
fast as smsbak (and the emulator) can go. Memory is measured by the OS:

* the peak resident set (VmHWM) of the smsbak process itself, polled from
  /proc/PID/status every 20 ms (a high-water mark, so a poll after the peak sees it);
* ru_maxrss from wait4() of that fresh child, which on Linux is the largest of
  the process and any descendant it waited for (here the fake Termux tools).

Target (issue 13): the largest phone peaks within 10% of the smallest, and at most
100 MB resident memory for smsbak.

    python benchmarks/memory.py [--sizes 20000,100000,200000] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SCALED_BURST_UNITS,
    SCALED_QUOTA_PER_MINUTE,
    RunResult,
    bed,
    check,
    fill_phone,
    fmt_s,
    machine_line,
    run_timed,
    smsbak_child_pid,
    smsbak_command,
    table,
    verdict,
    write_result,
)

TARGET_MB = 100.0
FLAT_WITHIN = 0.10
"""The largest phone's peak may exceed the smallest's by this much (issue 13)."""


class RssTimeline:
    """Samples the newest `python -m smsbak` child's VmRSS and the emulator's inserts."""

    def __init__(self, emulator: object, *, enabled: bool = True) -> None:
        self.emulator = emulator
        self.enabled = enabled
        self.samples: list[tuple[float, int, int]] = []  # (t, VmRSS KiB, inserts)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        pid = None
        while not self._stop.is_set() and pid is None:
            pid = smsbak_child_pid()
            self._stop.wait(0.01)
        while pid is not None and not self._stop.is_set():
            try:
                text = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                break
            rss = next((int(x.split()[1]) for x in text.splitlines() if x.startswith("VmRSS:")), 0)
            inserts = self.emulator.insert_calls  # type: ignore[attr-defined]
            self.samples.append((time.monotonic() - started, rss, inserts))
            self._stop.wait(0.25)

    def __enter__(self) -> RssTimeline:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.enabled:
            self._thread.join(timeout=5)


def measure(count: int, *, timeline: bool) -> tuple[RunResult, int, int, RssTimeline, float]:
    with bed(
        quota_units_per_minute=SCALED_QUOTA_PER_MINUTE,
        burst_units=SCALED_BURST_UNITS,
        latency=0.0,
    ) as b:
        b.configure(quota_units_per_minute=SCALED_QUOTA_PER_MINUTE)
        fill_phone(b.phone, count)
        phone_mb = b.phone.path.stat().st_size / 1e6
        print(f"backup of {count} messages (phone.marshal {phone_mb:.1f} MB) ...", flush=True)
        watch = RssTimeline(b.emulator, enabled=timeline)
        with watch:
            result = run_timed(smsbak_command("backup"), b.env(), timeout=3600, poll_memory=True)
        check(result, "smsbak backup")
        stored = b.stored()
        if stored != count:
            raise SystemExit(f"stored {stored} of {count}")
        return result, stored, len(b.phone.calls("termux-sms-list")), watch, phone_mb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="20000,100000,200000",
        help="SMS on the phone, one first backup each (comma-separated, ascending)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    try:
        sizes = sorted({int(size) for size in args.sizes.split(",")})
    except ValueError:
        parser.error("--sizes: numbers separated by commas")
    if not sizes or not all(1 <= size <= 200_000 for size in sizes):
        parser.error("--sizes: 1..200000 each")
    runs: list[tuple[int, RunResult, int, int, float]] = []
    timeline = RssTimeline(None, enabled=False)
    for size in sizes:
        last = size == sizes[-1]
        result, stored, termux, watch, phone_mb = measure(size, timeline=last)
        if last:
            timeline = watch
        print(f"{size}: VmHWM {result.peak_rss_kib} KiB in {result.seconds:.0f} s", flush=True)
        runs.append((size, result, stored, termux, phone_mb))
    peaks = [(r.peak_rss_kib or 0) * 1024 / 1e6 for _, r, *_ in runs]
    smallest, largest = peaks[0], peaks[-1]
    flat = largest <= smallest * (1 + FLAT_WITHIN)
    under = largest <= TARGET_MB
    all_stored = all(stored == size for size, _, stored, *_ in runs)
    summary = [
        {
            "messages": size,
            "stored": stored,
            "seconds": round(result.seconds, 1),
            "peak_rss_kib": result.peak_rss_kib,
            "tree_maxrss_kib": result.tree_maxrss_kib,
            "cpu_seconds": result.cpu_seconds,
            "termux_sms_list_calls": termux,
        }
        for size, result, stored, termux, _ in runs
    ]
    print(json.dumps(summary), flush=True)
    points = []
    if timeline.samples:
        step = max(1, len(timeline.samples) // 8)
        chosen = timeline.samples[::step]
        if chosen[-1] is not timeline.samples[-1]:
            chosen.append(timeline.samples[-1])
        points = [f"{t:.0f} s: {rss / 1024:.0f} MiB ({n:,} inserted)" for t, rss, n in chosen]
    rows = [
        [
            f"{size:,}",
            f"{phone_mb:.1f} MB",
            f"{stored:,}",
            fmt_s(result.seconds),
            f"**{peak:.1f} MB**",
            f"{peak / smallest:.2f}x",
            f"{(result.tree_maxrss_kib or 0) * 1024 / 1e6:.1f} MB",
            termux,
        ]
        for (size, result, stored, termux, phone_mb), peak in zip(runs, peaks, strict=True)
    ]
    text = "\n".join(
        [
            "## Peak memory of a large first backup (`benchmarks/memory.py`)",
            "",
            "**What:** peak resident memory of one `smsbak backup` process uploading every SMS "
            "of a fake phone into an empty mailbox, once per phone size; emulator quota "
            "scaled up 1000x, no latency, config.toml `quota_units_per_minute = 15000000`. "
            "The peak is the process's own VmHWM from /proc, polled every 20 ms; wait4's "
            "ru_maxrss is shown too, but on Linux it also covers waited-for children (the "
            "fake Termux tools, which load the whole fixture phone). The count comes from "
            "the emulator. The scan spools what it finds in SQLite TEMP tables "
            "(smsbak.store.Spool), so the process holds one page of messages, not the phone.",
            "",
            f"**Command:** `python benchmarks/memory.py --sizes {','.join(map(str, sizes))}`",
            "",
            f"**Machine:** {machine_line()}",
            "",
            table(
                [
                    "SMS on the phone",
                    "phone.marshal",
                    "stored",
                    "wall time",
                    "peak RSS (VmHWM)",
                    "vs smallest",
                    "wait4 ru_maxrss",
                    "termux-sms-list calls",
                ],
                rows,
            ),
            "",
            f"**Flat?** {sizes[-1]:,} SMS peak {largest:.1f} MB, {sizes[0]:,} SMS peak "
            f"{smallest:.1f} MB: {largest / smallest:.2f}x for {sizes[-1] / sizes[0]:.0f}x the "
            f"messages (target: within {FLAT_WITHIN:.0%}) {verdict(flat and all_stored)}; "
            f"at most {TARGET_MB:.0f} MB {verdict(under)}.",
            "",
            f"RSS over the {sizes[-1]:,}-SMS run (sampled every 0.25 s): "
            + "; ".join(points)
            + ".",
        ]
    )
    print(text)
    if not args.no_write:
        write_result(
            "memory",
            title="Peak memory of a large first backup",
            command=f"python benchmarks/memory.py --sizes {','.join(map(str, sizes))}",
            details=text,
            numbers={
                "sizes": list(sizes),
                "peaks_mb": [round(p, 1) for p in peaks],
                "ratio_largest_to_smallest": round(largest / smallest, 3),
            },
            summary=[
                {
                    "benchmark": "peak RSS, first backup of "
                    + " / ".join(f"{s:,}" for s in sizes)
                    + " SMS",
                    "measured": " / ".join(f"**{p:.1f} MB**" for p in peaks)
                    + f"; largest {largest / smallest:.2f}x the smallest",
                    "target": f"<= {TARGET_MB:.0f} MB and within {FLAT_WITHIN:.0%}",
                    "verdict": ("pass" if under else "FAIL")
                    + f" (<= {TARGET_MB:.0f} MB), "
                    + ("pass" if flat else "FAIL")
                    + f" (within {FLAT_WITHIN:.0%})",
                }
            ],
            limit={"what": "peak RSS in MB", "op": "<=", "value": TARGET_MB},
            ratio=largest / TARGET_MB,
            verdict="pass" if flat and under and all_stored else "FAIL",
        )
    return 0 if flat and under and all_stored else 1


if __name__ == "__main__":
    sys.exit(main())
