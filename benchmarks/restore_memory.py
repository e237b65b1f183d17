"""Peak memory of `smsbak restore` (to a file or the phone) at two sizes (issue 13 item 4).

The emulator's label SMS is seeded with N smsbak-format emails; its quota is
scaled up 1000x with no latency, so the run is as fast as smsbak can read. The
peak is the smsbak process's own VmHWM from /proc (polled every 20 ms). The XML
file written is checked against what was seeded.

    python benchmarks/restore_memory.py [--to xml|phone] [--sizes 5000,20000] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SCALED_BURST_UNITS,
    SCALED_QUOTA_PER_MINUTE,
    RunResult,
    archive_sms,
    bed,
    check,
    fmt_s,
    machine_line,
    restore_login,
    run_timed,
    seed_archive,
    smsbak_command,
    table,
    verdict,
    write_result,
)

FLAT_WITHIN = 0.10


def measure(count: int, to: str) -> tuple[RunResult, int, bool]:
    messages = archive_sms(count)
    expected = {(s.address, s.body, s.date_ms) for s in messages}
    with bed(
        quota_units_per_minute=SCALED_QUOTA_PER_MINUTE,
        burst_units=SCALED_BURST_UNITS,
        latency=0.0,
    ) as b:
        restore_login(b)
        b.configure(quota_units_per_minute=SCALED_QUOTA_PER_MINUTE)
        seed_archive(b.emulator, messages)
        out = b.root / "restore.xml"
        if to == "phone":
            b.phone.enable_privileged(rish=True)
            b.phone.set_content(call_cost=0.0)
            b.phone.set(rish_call_cost=0.0)
        print(f"restore of {count} messages to {to} ...", flush=True)
        result = run_timed(
            smsbak_command("restore", "--to", "phone" if to == "phone" else f"xml:{out}"),
            b.env(),
            timeout=3600,
            poll_memory=True,
        )
        check(result, "smsbak restore")
        if to == "phone":
            on_phone = {(m["address"], m["body"], int(m["date"])) for m in b.phone.messages}
            return result, len(b.phone.messages), on_phone == expected
        # The file is ours and trusted here; ElementTree never expands external entities.
        restored = {
            (e.get("address"), e.get("body"), int(e.get("date") or 0))
            for e in ET.parse(out).getroot().iter("sms")
        }
        return result, len(restored), restored == expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="5000,20000", help="emails in the archive, comma-separated"
    )
    parser.add_argument(
        "--to",
        choices=["xml", "phone"],
        default="xml",
        help="an SMS Backup & Restore file, or the fake phone through rish and `content`",
    )
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    try:
        sizes = sorted({int(size) for size in args.sizes.split(",")})
    except ValueError:
        parser.error("--sizes: numbers separated by commas")
    if len(sizes) < 2 or not all(1 <= size <= 200_000 for size in sizes):
        parser.error("--sizes: at least two, 1..200000 each")
    runs = []
    for size in sizes:
        result, restored, matches = measure(size, args.to)
        print(f"{size}: VmHWM {result.peak_rss_kib} KiB in {result.seconds:.0f} s", flush=True)
        runs.append((size, result, restored, matches))
    peaks = [(r.peak_rss_kib or 0) * 1024 / 1e6 for _, r, *_ in runs]
    print(json.dumps([[s, r.peak_rss_kib, round(r.seconds, 1)] for s, r, *_ in runs]))
    smallest, largest = peaks[0], peaks[-1]
    where = "the phone" if args.to == "phone" else "an XML file"
    flat = largest <= smallest * (1 + FLAT_WITHIN)
    all_match = all(matches for *_, matches in runs)
    slope = (largest - smallest) * 1000 / (sizes[-1] - sizes[0])
    rows = [
        [
            f"{size:,}",
            f"{restored:,}",
            verdict(matches),
            fmt_s(result.seconds),
            f"**{peak:.1f} MB**",
        ]
        for (size, result, restored, matches), peak in zip(runs, peaks, strict=True)
    ]
    text = "\n".join(
        [
            f"## Peak memory of a restore to {where} (`benchmarks/restore_memory.py`)",
            "",
            "**What:** peak resident memory (VmHWM, polled every 20 ms) of one `smsbak restore "
            f"--to {'phone' if args.to == 'phone' else 'xml:FILE'}` reading an emulated Gmail "
            "label of N smsbak-format SMS; quota scaled up 1000x, no latency"
            + (
                "; the fake phone's rish and `content` cost nothing per call"
                if args.to == "phone"
                else ""
            )
            + ". What was written is checked against the seeded archive.",
            "",
            f"**Command:** `python benchmarks/restore_memory.py --to {args.to} --sizes "
            f"{','.join(map(str, sizes))}`",
            "",
            f"**Machine:** {machine_line()}",
            "",
            table(
                [
                    "emails in the archive",
                    "restored",
                    "matches the archive",
                    "wall time",
                    "peak RSS",
                ],
                rows,
            ),
            "",
            f"**Flat?** {largest / smallest:.2f}x for {sizes[-1] / sizes[0]:.0f}x the messages, "
            f"{slope:.2f} kB per message (target: within {FLAT_WITHIN:.0%}) {verdict(flat)}."
            + (
                ""
                if flat
                else " The restore engine spools what it read (smsbak.store.Spool) and "
                "hands the target a sequence decoded as it is read; the file targets "
                "still gather every record into lists before writing (and the phone's "
                "existing fingerprints are one set)."
            ),
        ]
    )
    print(text)
    if not args.no_write:
        growth = largest / smallest if smallest else float("inf")
        write_result(
            f"restore_memory_{args.to}",
            title=f"Peak memory of a restore to {where}",
            command=f"python benchmarks/restore_memory.py --to {args.to} --sizes "
            f"{','.join(map(str, sizes))}",
            details=text,
            script="benchmarks/restore_memory.py",
            numbers={
                "sizes": sizes,
                "peaks_mb": [round(peak, 1) for peak in peaks],
                "seconds": [round(r.seconds, 1) for _, r, *_ in runs],
                "restored": [restored for _, _, restored, _ in runs],
                "matches_archive": [matches for *_, matches in runs],
                "kb_per_message": round(slope, 2),
            },
            limit={"what": "peak RSS largest / smallest", "op": "<=", "value": 1 + FLAT_WITHIN},
            ratio=round(growth, 2),
            verdict="pass" if flat and all_match else "FAIL",
            summary=[
                {
                    "benchmark": f"peak RSS, restore to {where} of "
                    + " / ".join(f"{size:,}" for size in sizes)
                    + " emails",
                    "measured": "**"
                    + " / ".join(f"{peak:.1f}" for peak in peaks)
                    + f" MB**; largest {growth:.2f}x the smallest; "
                    + ("all match the archive" if all_match else "**not all match the archive**"),
                    "target": f"within {FLAT_WITHIN:.0%}, what was written matches",
                    "verdict": "pass" if flat and all_match else "FAIL",
                }
            ],
        )
    return 0 if all_match else 1


if __name__ == "__main__":
    sys.exit(main())
