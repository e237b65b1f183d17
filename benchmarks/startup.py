"""Start-up time of the commands that must stay light: `smsbak --help` and `smsbak status`.

Median of 10 runs each (subprocess, wall time), next to a bare interpreter
(`python -c pass`) as the floor; then `python -X importtime` of both commands:
the slowest top-level imports, and whether Google's client libraries
(googleapiclient, google.*, httplib2) were imported at all. They must not be:
neither command talks to Gmail.

`status` runs against a state database and token left by a real small backup.

    python benchmarks/startup.py [--runs 10] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SCALED_BURST_UNITS,
    SCALED_QUOTA_PER_MINUTE,
    bed,
    check,
    fill_phone,
    machine_line,
    median,
    run_timed,
    smsbak_command,
    table,
    verdict,
    write_result,
)

HEAVY = (
    "googleapiclient",
    "google",
    "httplib2",
    "google_auth_httplib2",
    "oauthlib",
    "google_auth_oauthlib",
    "apscheduler",
    "phonenumbers",
)
MUST_NOT = ("googleapiclient",)


def parse_importtime(stderr: str) -> list[tuple[int, int, int, str]]:
    """(self us, cumulative us, depth, module) per `import time:` line."""
    out = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        try:
            fields = line[len("import time:") :].split("|")
            self_us, cumulative, name = int(fields[0]), int(fields[1]), fields[2]
        except (ValueError, IndexError):
            continue
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        out.append((self_us, cumulative, depth, name.strip()))
    return out


def importtime(argv: list[str], env: dict[str, str]) -> dict[str, object]:
    result = run_timed([sys.executable, "-X", "importtime", *argv[1:]], env, timeout=60)
    check(result, " ".join(argv))
    entries = parse_importtime(result.stderr)
    modules = {name for _, _, _, name in entries}
    top = sorted((e for e in entries if e[2] == 0), key=lambda e: -e[1])
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    return {
        "count": len(entries),
        "total_us": sum(e[1] for e in entries if e[2] == 0),
        "top": [(name, cumulative) for _, cumulative, _, name in top[:10]],
        "by_self": [
            (name, self_us) for self_us, _, _, name in sorted(entries, key=lambda e: -e[0])[:8]
        ],
        "smsbak": sorted(m for m in modules if m.split(".")[0] == "smsbak"),
        "heavy": heavy,
        "forbidden": sorted(m for m in modules if m.split(".")[0] in MUST_NOT),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    if not 1 <= args.runs <= 100:
        parser.error("--runs 1..100")
    commands = {
        "python -c pass (floor)": [sys.executable, "-c", "pass"],
        "smsbak --help": smsbak_command("--help"),
        "smsbak status": smsbak_command("status"),
    }
    with bed(
        quota_units_per_minute=SCALED_QUOTA_PER_MINUTE,
        burst_units=SCALED_BURST_UNITS,
        latency=0.0,
    ) as b:
        b.configure(quota_units_per_minute=SCALED_QUOTA_PER_MINUTE)
        fill_phone(b.phone, 200)
        check(run_timed(smsbak_command("backup"), b.env(), timeout=300), "setup backup")
        if b.stored() != 200:
            raise SystemExit("setup backup did not store 200 messages")
        env = b.env()
        requests = b.emulator.http_requests
        calls = len(b.phone.calls())
        for argv in commands.values():  # warm the page cache and .pyc files
            check(run_timed(argv, env, timeout=60), " ".join(argv))
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so drifts hit all alike
            for name, argv in commands.items():
                result = run_timed(argv, env, timeout=60)
                check(result, name)
                times[name].append(result.seconds)
        status_out = run_timed(smsbak_command("status"), env, timeout=60).stdout
        profiles = {
            "smsbak --help": importtime(smsbak_command("--help"), env),
            "smsbak status": importtime(smsbak_command("status"), env),
        }
        network = b.emulator.http_requests - requests
        termux = len(b.phone.calls()) - calls
    if "200" not in status_out:
        raise SystemExit(f"status did not show the 200 backed-up messages:\n{status_out}")
    medians = {name: median(values) for name, values in times.items()}
    print(json.dumps({"medians": medians, "times": times, "profiles": profiles}, indent=1))
    floor = medians["python -c pass (floor)"]
    rows = [
        [
            name,
            f"**{1000 * medians[name]:.0f} ms**",
            f"{1000 * min(v):.0f} - {1000 * max(v):.0f} ms",
            "-" if name.startswith("python") else f"{1000 * (medians[name] - floor):.0f} ms",
        ]
        for name, v in times.items()
    ]
    sections = []
    clean = True
    for name, profile in profiles.items():
        forbidden: list[str] = profile["forbidden"]  # type: ignore[assignment]
        heavy: list[str] = profile["heavy"]  # type: ignore[assignment]
        clean = clean and not forbidden
        top = ", ".join(
            f"`{module}` {us / 1000:.1f} ms"
            for module, us in profile["top"]  # type: ignore[attr-defined]
        )
        heavy_text = ", ".join(f"`{m}`" for m in heavy) if heavy else "none"
        by_self = ", ".join(
            f"`{module}` {us / 1000:.1f} ms"
            for module, us in profile["by_self"]  # type: ignore[attr-defined]
        )
        sections += [
            f"- `python -X importtime -m smsbak {name.split(' ', 1)[1]}`: "
            f"{profile['count']} modules imported, "
            f"{int(profile['total_us']) / 1000:.0f} ms cumulative import time "  # type: ignore[call-overload]
            f"(top level). Slowest top-level imports (cumulative): {top}.",
            f"  - Slowest single modules (own time, any depth): {by_self}.",
            f"  - Google/other heavy libraries imported: {heavy_text}. googleapiclient "
            f"imported: **{'YES' if forbidden else 'no'}** {verdict(not forbidden)}",
            f"  - smsbak modules imported: {', '.join(profile['smsbak'])}",  # type: ignore[arg-type]
        ]
    text = "\n".join(
        [
            "## Start-up of `--help` and `status` (`benchmarks/startup.py`)",
            "",
            f"**What:** wall time of `python -m smsbak --help` and `python -m smsbak status` "
            f"(median of {args.runs} runs each, interleaved, after one warm-up run; the "
            "state database and token come from a real 200-message backup), next to a bare "
            "`python -c pass`; then `-X importtime` of both. Neither command may import "
            "googleapiclient (the target), nor touch the network or a Termux tool "
            f"(measured: {network} Gmail requests, {termux} Termux calls during all of these "
            "runs).",
            "",
            f"**Command:** `python benchmarks/startup.py --runs {args.runs}`",
            "",
            f"**Machine:** {machine_line()}",
            "",
            table(["command", "median", "min - max", "over the bare interpreter"], rows),
            "",
            *sections,
            "",
            f"Result: googleapiclient stays out of both commands: "
            f"{'yes' if clean else 'NO'} {verdict(clean and network == 0 and termux == 0)}. "
            "There is no numeric target for these times; they are recorded to catch "
            "regressions.",
        ]
    )
    print(text)
    if not args.no_write:
        ok = clean and network == 0 and termux == 0
        write_result(
            "startup",
            title="Start-up of `--help` and `status`",
            command=f"python benchmarks/startup.py --runs {args.runs}",
            details=text,
            numbers={
                "runs": args.runs,
                "median_seconds": medians,
                "times": times,
                "googleapiclient_imported": not clean,
                "gmail_requests": network,
                "termux_calls": termux,
            },
            summary=[
                {
                    "benchmark": f"start-up: `--help` / `status` (median of {args.runs})",
                    "measured": f"{1000 * medians['smsbak --help']:.0f} ms / "
                    f"{1000 * medians['smsbak status']:.0f} ms (bare interpreter "
                    f"{1000 * floor:.0f} ms); googleapiclient imported by "
                    f"{'neither' if clean else 'one of them'}",
                    "target": "googleapiclient not imported",
                    "verdict": "pass" if ok else "FAIL",
                }
            ],
            limit={"what": "googleapiclient imported", "op": "==", "value": False},
            verdict="pass" if ok else "FAIL",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
