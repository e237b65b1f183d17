"""Read rate of `smsbak restore` from Gmail under the real per-user quota.

The emulator's label SMS is seeded with N smsbak-format emails (made with
smsbak.mime.encode_sms); the emulator answers every HTTP request after 100 ms
and meters Gmail's real quota (15,000 units a minute = 250 units/s, a burst of
1,250 units; messages.get and messages.list cost 5 units each). `smsbak restore
--to xml:FILE` reads them all back (token-restore.json with gmail.readonly,
config.toml with the real quota) and writes an SMS Backup & Restore file, which
is checked against what was seeded.

Read ceiling: 250 units/s / 5 units per get = 50 messages/s. Best possible time:

    best = (N x 5 + ceil(N / 500) x 5 - 1250) / 250 s + 1 request latency
           (every get, plus the list pages of at most 500 ids, minus the burst,
            earned at 250 units/s; the last answer still takes one latency)

    python benchmarks/restore_read.py [--messages 2000] [--profile] [--no-write]

``--profile`` runs the same restore once more under cProfile (same bed) and
prints where smsbak's own CPU time went.
"""

from __future__ import annotations

import argparse
import json
import math
import pstats
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    GET_COST,
    LIST_COST,
    LIST_PAGE,
    REAL_BURST_UNITS,
    REAL_QUOTA_PER_MINUTE,
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

LATENCY = 0.1
TARGET = 0.9


def best_possible(count: int, latency: float) -> float:
    rate = REAL_QUOTA_PER_MINUTE / 60.0
    units = count * GET_COST + math.ceil(count / LIST_PAGE) * LIST_COST
    return max(0.0, units - REAL_BURST_UNITS) / rate + latency


class CallWatcher:
    """Samples the emulator's per-operation counters to time the first/last get and list."""

    def __init__(self, emulator: object, started: float) -> None:
        self.emulator = emulator
        self.started = started
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self._seen: dict[str, int] = {}
        self.series: list[tuple[float, int]] = []  # (seconds, gets so far) at each change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            calls = dict(self.emulator.calls)  # type: ignore[attr-defined]
            now = time.monotonic() - self.started
            for op, n in calls.items():
                if n != self._seen.get(op, 0):
                    self.first.setdefault(op, now)
                    self.last[op] = now
                    self._seen[op] = n
                    if op == "get":
                        self.series.append((now, n))
            self._stop.wait(0.005)

    def __enter__(self) -> CallWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def steady_rate(series: list[tuple[float, int]], count: int) -> float | None:
    """Gets per second once the burst is spent: from the first sample at or past
    500 gets to the last (the burst pays for 250 gets); None below 1,000 messages."""
    if count < 1000:
        return None
    start = next(((t, n) for t, n in series if n >= 500), None)
    if start is None or not series or series[-1][0] <= start[0]:
        return None
    return (series[-1][1] - start[1]) / (series[-1][0] - start[0])


def xml_records(path: Path) -> set[tuple[str, str, int, int]]:
    """(address, body, date, type) of every <sms> in the file, by the standard library."""
    root = ET.parse(path).getroot()
    return {
        (e.get("address", ""), e.get("body", ""), int(e.get("date", "0")), int(e.get("type", "0")))
        for e in root.iter("sms")
    }


def measure(count: int, profile: bool) -> dict[str, object]:
    messages = archive_sms(count)
    expected = {(s.address, s.body, s.date_ms, int(s.box)) for s in messages}
    with bed(
        quota_units_per_minute=REAL_QUOTA_PER_MINUTE,
        burst_units=REAL_BURST_UNITS,
        latency=LATENCY,
    ) as b:
        restore_login(b)
        b.configure(quota_units_per_minute=REAL_QUOTA_PER_MINUTE)
        seed_archive(b.emulator, messages)
        assert b.stored() == count
        out = b.root / "restore.xml"
        best = best_possible(count, LATENCY)
        print(f"smsbak restore of {count} messages; best possible {best:.1f} s ...", flush=True)
        emu = b.emulator
        http_before, batch_before = emu.http_requests, emu.batch_requests
        started = time.monotonic()
        with CallWatcher(emu, started) as watch:
            result = run_timed(
                smsbak_command("restore", "--to", f"xml:{out}"),
                b.env(),
                timeout=max(120.0, 3 * best + 60),
            )
        check(result, "smsbak restore")
        restored = xml_records(out)
        calls = dict(emu.calls)
        data: dict[str, object] = {
            "count": count,
            "seconds": result.seconds,
            "restored": len(restored),
            "matches": restored == expected,
            "best": best,
            "ratio": best / result.seconds,
            "rate": len(restored) / result.seconds,
            "gets": calls.get("get", 0),
            "lists": calls.get("list", 0),
            "labels_list": calls.get("labels.list", 0),
            "http_requests": emu.http_requests - http_before,
            "batch_requests": emu.batch_requests - batch_before,
            "quota_rejections": emu.quota_rejections,
            "steady_rate": steady_rate(watch.series, count),
            "first": dict(watch.first),
            "last": dict(watch.last),
            "cpu_seconds": result.cpu_seconds,
            "termux_calls": sorted({c["tool"] for c in b.phone.calls()}),
        }
        if profile:
            data["profile"] = run_profile(b, out.with_name("profiled.xml"), best)
        return data


def run_profile(b: object, out: Path, best: float) -> dict[str, object]:
    """The same restore under cProfile (the bucket refilled first); top own-time functions."""
    b.emulator.refill_quota()  # type: ignore[attr-defined]
    time.sleep(0.5)
    prof = out.with_suffix(".prof")
    argv = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "smsbak"]
    argv += ["restore", "--to", f"xml:{out}"]
    print("the same restore under cProfile ...", flush=True)
    result = run_timed(argv, b.env(), timeout=max(120.0, 3 * best + 60))  # type: ignore[attr-defined]
    check(result, "profiled restore")
    stats = pstats.Stats(str(prof))
    rows = []
    for (filename, line, name), (_, ncalls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((own, cumulative, ncalls, f"{Path(filename).name}:{line}({name})"))
    rows.sort(reverse=True)
    sleep_total = sum(
        own for own, _, _, where in rows if "sleep" in where or "select" in where or "poll" in where
    )
    recv_total = sum(own for own, _, _, where in rows if "recv" in where or "read" in where)
    return {
        "seconds": result.seconds,
        "total_own": sum(r[0] for r in rows),
        "sleep": sleep_total,
        "recv": recv_total,
        "top": [(round(o, 3), round(c, 3), n, w) for o, c, n, w in rows[:12]],
    }


def report(data: dict[str, object]) -> str:
    count = int(data["count"])  # type: ignore[call-overload]
    seconds = float(data["seconds"])  # type: ignore[arg-type]
    ratio = float(data["ratio"])  # type: ignore[arg-type]
    best = float(data["best"])  # type: ignore[arg-type]
    ok = ratio >= TARGET and bool(data["matches"])
    first: dict[str, float] = data["first"]  # type: ignore[assignment]
    last: dict[str, float] = data["last"]  # type: ignore[assignment]
    pages = math.ceil(count / LIST_PAGE)
    rate_ceiling = REAL_QUOTA_PER_MINUTE / 60.0 / GET_COST
    from smsbak.gmail.pacing import JITTER_RESERVE

    paced_rate = REAL_QUOTA_PER_MINUTE / 60.0
    units = count * GET_COST + int(data["lists"]) * LIST_COST  # type: ignore[call-overload]
    paced_floor = max(0.0, units - (REAL_BURST_UNITS - JITTER_RESERVE)) / paced_rate + LATENCY
    get_first, get_last = first.get("get"), last.get("get")

    def at(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    rows: list[list[object]] = [
        ["emails under label SMS / SMS in the written XML file", f"{count} / {data['restored']}"],
        [
            "XML file matches the archive (address, body, date, type)",
            "yes" if data["matches"] else "**no**",
        ],
        ["wall time of `smsbak restore --to xml:FILE`", fmt_s(seconds)],
        ["read rate, whole run (the burst included)", f"{float(data['rate']):.2f} messages/s"],  # type: ignore[arg-type]
        [
            "steady read rate once the burst is spent (from get 500 to the last)",
            "-" if data["steady_rate"] is None else f"{float(data['steady_rate']):.2f} messages/s",  # type: ignore[arg-type]
        ],
        ["read ceiling of the quota (sustained)", f"{rate_ceiling:.0f} messages/s"],
        ["best possible under the quota", fmt_s(best)],
        ["**ratio best / measured**", f"**{ratio:.3f}** (target >= {TARGET}) {verdict(ok)}"],
        [
            "Gmail calls: labels.list / messages.list / messages.get",
            f"{data['labels_list']} / {data['lists']} / {data['gets']}",
        ],
        [
            "HTTP requests (batch requests among them)",
            f"{data['http_requests']} ({data['batch_requests']})",
        ],
        ["429 answers from the emulator's quota", data["quota_rejections"]],
        [
            "first messages.list handled by the emulator (its 100 ms delay included) after",
            at(first.get("list")),
        ],
        ["first messages.get handled after", at(get_first)],
        ["last messages.get handled after", at(get_last)],
        ["CPU time of smsbak + its children (user+sys)", f"{float(data['cpu_seconds']):.1f} s"],  # type: ignore[arg-type]
    ]
    lead = get_first or 0.0
    tail = seconds - (get_last or seconds)
    gets_span = (get_last or 0.0) - (get_first or 0.0)
    lines = [
        "## Restore read rate under the real Gmail quota (`benchmarks/restore_read.py`)",
        "",
        f"**What:** wall time of one `smsbak restore --to xml:FILE` process reading {count:,} "
        "SMS back from the Gmail emulator, whose label `SMS` was seeded with smsbak-format "
        "emails (`smsbak.mime.encode_sms`, as a backup leaves them). The emulator delays every "
        f"HTTP request by {int(LATENCY * 1000)} ms and meters Gmail's real per-user quota: "
        f"{REAL_QUOTA_PER_MINUTE:,} units/minute (250 units/s), a burst of "
        f"{REAL_BURST_UNITS:,} units; messages.get and messages.list cost {GET_COST} units each "
        "(labels.list 1). smsbak has token-restore.json (gmail.readonly) and config.toml "
        f"`quota_units_per_minute = {REAL_QUOTA_PER_MINUTE}`. The written XML is parsed with "
        "the standard library and compared with what was seeded.",
        "",
        f"**Read ceiling:** 250 units/s / {GET_COST} units per get = **{rate_ceiling:.0f} "
        "messages/s** per user. **Best possible time:** every get and every list page (at most "
        f"{LIST_PAGE} ids a page, so ceil(N/{LIST_PAGE}) pages) costs {GET_COST} units; the "
        "burst pays for the first 1,250 units at once, the rest is earned at 250 units/s, and "
        "the last answer still takes one latency: "
        f"`best = (N x {GET_COST} + ceil(N/{LIST_PAGE}) x {LIST_COST} - 1250) / 250 s + 0.1 s` "
        f"(N = {count}: ({count * GET_COST} + {pages * LIST_COST} - 1250) / 250 + 0.1 = "
        f"{best:.2f} s, an average of {count / best:.1f} messages/s). labels.list (1 unit) is "
        "left out, as a client can name the label in the list query; start-up and the OAuth "
        "token refresh cost no quota and are not in it either.",
        "",
        f"**Command:** `python benchmarks/restore_read.py --messages {count}`",
        "",
        f"**Machine:** {machine_line()}",
        "",
        table(
            [
                "smsbak restore, 2,000 messages"
                if count == 2000
                else f"smsbak restore, {count} messages",
                "measured",
            ],
            rows,
        ),
        "",
        f"Where the {seconds:.1f} s went (from the emulator's call times): "
        f"{lead:.2f} s until the first get (process start, token refresh, labels.list, "
        f"{data['lists']} list pages one after another at {int(LATENCY * 1000)} ms each); "
        f"{gets_span:.2f} s from the first to the last get ({data['batch_requests']} batches "
        f"of up to 50); {tail:.2f} s after the last get (its answer, decoding, reading the "
        "empty fake phone with termux-sms-list and termux-contact-list, writing the XML, "
        "exit). smsbak paces at the full rate but keeps "
        f"{JITTER_RESERVE} units of the burst in reserve (`JITTER_RESERVE` in "
        f"smsbak/gmail/pacing.py, {paced_rate:.1f} units/s), so its own floor for these "
        f"{units:,} units is {paced_floor:.2f} s (ratio {best / paced_floor:.3f}), and its "
        f"steady rate can be at most {paced_rate / GET_COST:.1f} messages/s. The rest of the "
        "gap is mostly the time before the first get: the quota's bucket is full then and cannot "
        "hold more than the burst, so those seconds earn nothing. The whole-run rate is "
        "above 50/s only because the burst pays for the first 250 gets at once.",
    ]
    profile = data.get("profile")
    if isinstance(profile, dict):
        top = "; ".join(f"`{w}` {o:.2f} s own ({n} calls)" for o, _, n, w in profile["top"][:8])
        lines += [
            "",
            f"cProfile of the same restore (a second run, {profile['seconds']:.1f} s under the "
            f"profiler): {profile['total_own']:.1f} s of profiled time, of which "
            f"{profile['sleep']:.1f} s sleeping or waiting in select/poll and "
            f"{profile['recv']:.1f} s in socket reads. Largest own times: {top}.",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="also run once under cProfile")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    if not 1 <= args.messages <= 100_000:
        parser.error("--messages 1..100000")
    data = measure(args.messages, args.profile)
    print(json.dumps(data, indent=1, default=str), flush=True)
    if not data["matches"]:
        print("the XML file does not match the archive", file=sys.stderr)
    text = report(data)
    print(text)
    if not args.no_write:
        ratio = float(data["ratio"])  # type: ignore[arg-type]
        ok = ratio >= TARGET and bool(data["matches"])
        steady = data["steady_rate"]
        write_result(
            "restore_read",
            title="Restore read rate under the real Gmail quota",
            command=f"python benchmarks/restore_read.py --messages {args.messages}",
            details=text,
            numbers={k: v for k, v in data.items() if k != "profile"},
            summary=[
                {
                    "benchmark": f"restore read, {args.messages:,} SMS at the real quota, "
                    f"{int(LATENCY * 1000)} ms per request (`--to xml:FILE`)",
                    "measured": f"{float(data['seconds']):.1f} s = "  # type: ignore[arg-type]
                    f"{float(data['rate']):.1f} msg/s over the run"  # type: ignore[arg-type]
                    + ("" if steady is None else f" ({float(steady):.1f} msg/s steady)")  # type: ignore[arg-type]
                    + f"; best possible {float(data['best']):.1f} s, "  # type: ignore[arg-type]
                    f"**ratio {ratio:.3f}**; XML matches the archive: "
                    f"{'yes' if data['matches'] else 'NO'}",
                    "target": f"ratio >= {TARGET}",
                    "verdict": f"{'pass' if ok else 'FAIL'} (by {ratio - TARGET:+.3f})",
                }
            ],
            limit={"what": "ratio best/measured", "op": ">=", "value": TARGET},
            ratio=ratio,
            verdict="pass" if ok else "FAIL",
        )
    return 0 if data["matches"] else 1


if __name__ == "__main__":
    sys.exit(main())
