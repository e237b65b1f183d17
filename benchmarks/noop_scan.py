"""Cost of a backup with nothing new, on a small and a large phone.

For each phone size: fill the fake phone (one SMS every 10 minutes, so 1,000
messages span about a week, far more than the 24-hour look-back), upload
everything once (scaled-up quota, no latency), then time `smsbak backup` runs
that find nothing new (median of 5) and count the Termux tools each one ran
from the fake tools' call log. Target: the large/small time ratio <= 1.5 and
exactly one termux-sms-list call per no-op run.

    python benchmarks/noop_scan.py [--sizes 1000,50000] [--runs 5] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SCALED_BURST_UNITS,
    SCALED_QUOTA_PER_MINUTE,
    bed,
    check,
    fill_phone,
    fmt_s,
    machine_line,
    median,
    run_timed,
    smsbak_command,
    table,
    verdict,
    write_result,
)

from tests.fakes.phone import BIN_DIR

RATIO_TARGET = 1.5


def measure(size: int, runs: int) -> dict[str, object]:
    with bed(
        quota_units_per_minute=SCALED_QUOTA_PER_MINUTE,
        burst_units=SCALED_BURST_UNITS,
        latency=0.0,
    ) as b:
        # The Termux:API path the target is about: reader "termux" (no rish/su probe) and
        # no call log, so the calls counted are exactly the SMS scan's.
        b.configure(quota_units_per_minute=SCALED_QUOTA_PER_MINUTE, reader="termux", call_log=False)
        fill_phone(b.phone, size)
        phone_mb = b.phone.path.stat().st_size / 1e6
        print(f"{size}: first backup (phone.marshal {phone_mb:.1f} MB) ...", flush=True)
        first = run_timed(smsbak_command("backup"), b.env(), timeout=3600)
        check(first, f"first backup of {size}")
        stored = b.stored()
        if stored != size:
            raise SystemExit(f"first backup stored {stored} of {size}")
        print(f"{size}: first backup {first.seconds:.1f} s; now {runs} no-op runs", flush=True)
        inserts = b.emulator.insert_calls
        http = b.emulator.http_requests
        times: list[float] = []
        per_run: list[Counter[str]] = []
        for _ in range(runs):
            before = len(b.phone.calls())
            result = run_timed(smsbak_command("backup"), b.env(), timeout=600)
            check(result, f"no-op backup of {size}")
            times.append(result.seconds)
            per_run.append(Counter(c["tool"] for c in b.phone.calls()[before:]))
        if b.emulator.insert_calls != inserts or b.stored() != size:
            raise SystemExit("a no-op run inserted something")
        # The fake tools' own share: replay the last no-op run's calls (argv from the log)
        # directly, without smsbak. Every fake tool loads the whole fixture phone.
        last_run = b.phone.calls()[-sum(per_run[-1].values()) :]
        tool_times = []
        for _ in range(runs):
            total = 0.0
            for call in last_run:
                tool = run_timed(
                    [str(BIN_DIR / call["tool"]), *call["argv"]], b.phone.env(), timeout=120
                )
                check(tool, f"fake {call['tool']}")
                total += tool.seconds
            tool_times.append(total)
        return {
            "size": size,
            "phone_mb": phone_mb,
            "first_seconds": first.seconds,
            "times": times,
            "median": median(times),
            "calls": [dict(c) for c in per_run],
            "network_requests": b.emulator.http_requests - http,
            "fake_tools_median": median(tool_times),
        }


def report(results: list[dict[str, object]], runs: int) -> str:
    small, large = results[0], results[-1]
    ratio = float(large["median"]) / float(small["median"])  # type: ignore[arg-type]
    own_small = float(small["median"]) - float(small["fake_tools_median"])  # type: ignore[arg-type]
    own_large = float(large["median"]) - float(large["fake_tools_median"])  # type: ignore[arg-type]
    one_call = all(
        c.get("termux-sms-list") == 1
        for r in results
        for c in r["calls"]  # type: ignore[attr-defined]
    )
    rows = []
    for r in results:
        calls: list[dict[str, int]] = r["calls"]  # type: ignore[assignment]
        tools = sorted({t for c in calls for t in c})
        per_tool = ", ".join(
            f"{t} x{'/'.join(sorted({str(c.get(t, 0)) for c in calls}))}" for t in tools
        )
        times: list[float] = r["times"]  # type: ignore[assignment]
        rows.append(
            [
                f"{r['size']:,}",
                f"{float(r['phone_mb']):.1f} MB",  # type: ignore[arg-type]
                fmt_s(float(r["first_seconds"])),  # type: ignore[arg-type]
                f"**{fmt_s(float(r['median']))}**",  # type: ignore[arg-type]
                f"{min(times):.3f} - {max(times):.3f} s",
                per_tool,
                r["network_requests"],
                fmt_s(float(r["fake_tools_median"])),  # type: ignore[arg-type]
            ]
        )
    ok = ratio <= RATIO_TARGET and one_call
    return "\n".join(
        [
            "## No-op backup on a small and a large phone (`benchmarks/noop_scan.py`)",
            "",
            "**What:** wall time of `smsbak backup` when everything on the phone is already "
            f"backed up (median of {runs} runs), on phones of {small['size']:,} and "
            f"{large['size']:,} SMS (one every 10 minutes, so the newest 1,000 span about a "
            "week, more than the 24-hour look-back), and which Termux tools each run "
            "called (from the fake tools' call log). Before timing, one full backup uploads "
            "everything (emulator quota scaled up 1000x, no latency; config.toml "
            '`quota_units_per_minute = 15000000`, `reader = "termux"`, '
            "`call_log = false`).",
            "",
            "**Command:** "
            f"`python benchmarks/noop_scan.py --sizes {small['size']},{large['size']}`",
            "",
            f"**Machine:** {machine_line()}",
            "",
            table(
                [
                    "SMS on phone",
                    "phone.marshal",
                    "first (full) backup",
                    "no-op backup, median",
                    "min - max",
                    "Termux calls per no-op run",
                    "Gmail requests (all no-op runs)",
                    "the same fake tool calls alone, median",
                ],
                rows,
            ),
            "",
            f"**Ratio large/small: {ratio:.2f}** (target <= {RATIO_TARGET}); exactly one "
            f"termux-sms-list call per no-op run: {'yes' if one_call else 'NO'}. {verdict(ok)}",
            "",
            "The fake getprop reads only a small settings file beside the fixture (as a "
            "real getprop answers at once), but the fake termux-sms-list loads the whole "
            "fixture phone.marshal and sorts all of it on every call, where a real phone "
            "answers from its SMS database with a LIMIT. So part of the growth is the "
            "fake's. Replaying the same tool calls alone (argv from the "
            "call log) and subtracting them from the no-op median leaves smsbak's own share: "
            f"{own_small:.3f} s vs {own_large:.3f} s, ratio {own_large / own_small:.2f}.",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,50000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if len(sizes) != 2 or not all(1 <= s <= 200_000 for s in sizes) or not 1 <= args.runs <= 50:
        parser.error("--sizes SMALL,LARGE (each 1..200000), --runs 1..50")
    results = [measure(size, args.runs) for size in sizes]
    for r in results:
        print(json.dumps(r), flush=True)
    text = report(results, args.runs)
    print(text)
    if not args.no_write:
        small, large = results[0], results[-1]
        ratio = float(large["median"]) / float(small["median"])  # type: ignore[arg-type]
        one_call = all(
            c.get("termux-sms-list") == 1
            for r in results
            for c in r["calls"]  # type: ignore[attr-defined]
        )
        ok = ratio <= RATIO_TARGET and one_call
        network = sum(int(r["network_requests"]) for r in results)  # type: ignore[call-overload]
        write_result(
            "noop_scan",
            title="No-op backup on a small and a large phone",
            command=f"python benchmarks/noop_scan.py --sizes {args.sizes} --runs {args.runs}",
            details=text,
            numbers={"runs": args.runs, "sizes": results},
            summary=[
                {
                    "benchmark": f"no-op backup, {small['size']:,} vs {large['size']:,} SMS "
                    f'(median of {args.runs}; `reader = "termux"`, `call_log = false`)',
                    "measured": f"{float(small['median']):.3f} s vs "  # type: ignore[arg-type]
                    f"{float(large['median']):.3f} s, **ratio {ratio:.2f}**; "  # type: ignore[arg-type]
                    f"one termux-sms-list per run: {'yes' if one_call else 'NO'}; "
                    f"{network} Gmail requests",
                    "target": f"ratio <= {RATIO_TARGET}, one termux-sms-list call",
                    "verdict": "pass" if ok else "FAIL",
                }
            ],
            limit={"what": "no-op wall time, large / small", "op": "<=", "value": RATIO_TARGET},
            ratio=ratio,
            verdict="pass" if ok else "FAIL",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
