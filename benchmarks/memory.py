"""Peak memory of `smsbak backup` uploading a large phone (50,000 SMS by default).

The emulator's quota is scaled up 1000x and has no latency, so the run is as
fast as smsbak (and the emulator) can go. Memory is measured by the OS:

* the peak resident set (VmHWM) of the smsbak process itself, polled from
  /proc/PID/status every 20 ms (a high-water mark, so a poll after the peak sees it);
* ru_maxrss from wait4() of that fresh child, which on Linux is the largest of
  the process and any descendant it waited for (here the fake Termux tools).

Target: <= 150 MB peak resident memory for smsbak.

    python benchmarks/memory.py [--messages 50000] [--no-write]
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

TARGET_MB = 150.0


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
        print(f"backup of {count} messages (phone.json {phone_mb:.1f} MB) ...", flush=True)
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
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument(
        "--reference",
        type=int,
        default=5_000,
        help="a smaller run, to measure how memory grows per message",
    )
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    if not 1 <= args.messages <= 200_000 or not 1 <= args.reference <= 200_000:
        parser.error("--messages and --reference: 1..200000")
    count = args.messages
    reference = min(args.reference, count)
    ref_result, *_ = measure(reference, timeline=False)
    print(f"reference run of {reference}: VmHWM {ref_result.peak_rss_kib} KiB", flush=True)
    result, stored, termux, timeline, phone_mb = measure(count, timeline=True)
    peak_kib = result.peak_rss_kib or 0
    peak_mb = peak_kib * 1024 / 1e6
    tree_mb = (result.tree_maxrss_kib or 0) * 1024 / 1e6
    ok = peak_mb <= TARGET_MB and stored == count
    ref_mb = (ref_result.peak_rss_kib or 0) * 1024 / 1e6
    slope_kb = (peak_mb - ref_mb) * 1000 / (count - reference) if count > reference else 0.0
    at_target = int(count + (TARGET_MB - peak_mb) * 1000 / slope_kb) if slope_kb > 0 else None
    # RSS when uploading started (first insert seen) and at the end, from the timeline.
    first_upload = next((s for s in timeline.samples if s[2] > 0), None)
    last = timeline.samples[-1] if timeline.samples else None
    summary = {
        "messages": count,
        "stored": stored,
        "seconds": result.seconds,
        "peak_rss_kib": peak_kib,
        "tree_maxrss_kib": result.tree_maxrss_kib,
        "cpu_seconds": result.cpu_seconds,
        "termux_sms_list_calls": termux,
        "rss_at_first_insert_kib": first_upload[1] if first_upload else None,
        "last_sample": last,
        "samples": len(timeline.samples),
        "reference": reference,
        "reference_peak_kib": ref_result.peak_rss_kib,
    }
    print(json.dumps(summary), flush=True)
    points = []
    if timeline.samples:
        step = max(1, len(timeline.samples) // 8)
        chosen = timeline.samples[::step]
        if chosen[-1] is not timeline.samples[-1]:
            chosen.append(timeline.samples[-1])
        points = [f"{t:.0f} s: {rss / 1024:.0f} MiB ({n:,} inserted)" for t, rss, n in chosen]
    rows = [
        ["SMS on the phone / stored in the emulator", f"{count:,} / {stored:,}"],
        ["wall time", fmt_s(result.seconds)],
        ["throughput (scaled quota, no latency)", f"{stored / result.seconds:.0f} messages/s"],
        [
            "**peak RSS of smsbak (VmHWM)**",
            f"**{peak_mb:.1f} MB** ({peak_kib / 1024:.1f} MiB); target <= {TARGET_MB:.0f} MB: "
            f"{peak_mb / TARGET_MB:.0%} of it {verdict(ok)}",
        ],
        ["wait4 ru_maxrss (smsbak or a fake Termux tool, the larger)", f"{tree_mb:.1f} MB"],
        ["CPU time, smsbak + its children (user+sys)", f"{result.cpu_seconds:.1f} s"],
        ["termux-sms-list calls", termux],
        [f"peak RSS of a {reference:,}-message run (reference)", f"{ref_mb:.1f} MB"],
        ["growth per message uploaded (between the two runs)", f"{slope_kb:.2f} kB"],
        [
            "messages in one run at which 150 MB would be reached (linear extrapolation)",
            "-" if at_target is None else f"~{at_target:,}",
        ],
    ]
    text = "\n".join(
        [
            "## Peak memory of a large first backup (`benchmarks/memory.py`)",
            "",
            f"**What:** peak resident memory of one `smsbak backup` process uploading {count:,} "
            f"SMS (phone.json {phone_mb:.1f} MB) into an empty mailbox; emulator quota scaled "
            "up 1000x, no latency, config.toml `quota_units_per_minute = 15000000`. The peak "
            "is the process's own VmHWM from /proc, polled every 20 ms; wait4's ru_maxrss "
            "is shown too, but on Linux it also covers waited-for children (the fake Termux "
            "tools, which load the whole fixture phone). The count comes from the emulator.",
            "",
            f"**Command:** `python benchmarks/memory.py --messages {count} "
            f"--reference {reference}`",
            "",
            f"**Machine:** {machine_line()}",
            "",
            table(["measure", "value"], rows),
            "",
            "RSS over the run (sampled every 0.25 s): " + "; ".join(points) + ".",
        ]
    )
    print(text)
    if not args.no_write:
        write_result(
            "memory",
            title="Peak memory of a large first backup",
            command=f"python benchmarks/memory.py --messages {count} --reference {reference}",
            details=text,
            numbers={**summary, "peak_rss_mb": peak_mb, "growth_kb_per_message": slope_kb},
            summary=[
                {
                    "benchmark": f"peak RSS, first backup of {count:,} SMS",
                    "measured": f"**{peak_mb:.1f} MB** ({peak_kib / 1024:.1f} MiB), "
                    f"{result.seconds:.1f} s, {stored:,} stored; {slope_kb:.2f} kB more "
                    "per message",
                    "target": f"<= {TARGET_MB:.0f} MB",
                    "verdict": f"{'pass' if ok else 'FAIL'} ({peak_mb / TARGET_MB:.0%} of "
                    "the limit)",
                }
            ],
            limit={"what": "peak RSS in MB", "op": "<=", "value": TARGET_MB},
            ratio=peak_mb / TARGET_MB,
            verdict="pass" if ok else "FAIL",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
