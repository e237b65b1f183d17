"""MMS with large attachments: time, rate and peak memory of `smsbak backup`.

Each run puts N MMS on the fake phone (privileged reader through the fake `rish`,
as tests/test_mms_backup.py does), each with a SMIL part, a short text and one
binary image of S MB (random bytes behind a JPEG header, so nothing compresses),
and backs them up with one `smsbak backup` into an empty Gmail emulator (quota
scaled up 1000x, latency 0; config.toml `quota_units_per_minute = 15000000`,
`call_log = false`). MMS go under the label "SMS"; every email here is over
smsbak's 700 kB batch limit, so each goes up by resumable upload.

Measured by the OS and the fakes, never from smsbak's output: wall time; the peak
resident set (VmHWM) of the smsbak process, polled from /proc/PID/status every
20 ms, and its VmRSS every 0.25 s; the fake tools' call log (each `content` call:
the MMS page, the addresses, the parts, one `content read` per binary part, each
started through its own `rish`). Afterwards every email under "SMS" is decoded with
smsbak.mime.decode_mms and its attachment compared byte for byte (SHA-256 and
length) with what was put on the phone. Then one MMS's calls are replayed directly
to time the fake `content` per call on this machine.

The default runs: 40 x 2 MB and 10 x 8 MB (80 MB each) and 160 x 2 MB (4x the total,
the same largest message). Peak memory must not grow with the total size of the
backup (it may with the largest single message): the 160 x 2 MB run's peak may be at
most 10% above the 40 x 2 MB run's. smsbak runs from a `git archive` snapshot of the
committed tree (others edit smsbak/ meanwhile).

    python benchmarks/mms.py [--runs 40x2,10x8,160x2] [--replays 5] [--no-write]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BASE_MS,
    SCALED_BURST_UNITS,
    SCALED_QUOTA_PER_MINUTE,
    Bed,
    bed,
    check,
    committed_snapshot,
    fmt_s,
    machine_facts,
    run_timed,
    smsbak_child_pid,
    smsbak_command,
    table,
    verdict,
    write_result,
)

from tests.fakes.phone import BIN_DIR, INSERT_ADDRESS_TOKEN, PDU_FROM, PDU_TO

MB = 1_000_000
DEFAULT_RUNS = "40x2,10x8,160x2"
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
SMIL = '<smil><body><par><img src="photo.jpg"/><text src="text.txt"/></par></body></smil>'
OWN_NUMBER = "+4917099999999"
SPACING_S = 600  # one MMS every 10 minutes
BATCH_RAW_LIMIT = 700_000  # smsbak/gmail/client.py RAW_LIMIT: larger emails go up resumable
FLAT_TOLERANCE = 0.10  # peak of the largest-total run vs the smallest, same message size
# For a computed illustration only (restore_write.py assumes the same): a phone's
# `content` is an app_process (Java) start; this machine cannot measure it.
ASSUMED_CONTENT_COST = 0.25
RUN_TIMEOUT = 3600.0
REPLAY_TIMEOUT = 120.0


def parse_runs(spec: str) -> list[tuple[int, float]]:
    runs = []
    for item in spec.split(","):
        count_text, _, size_text = item.strip().lower().partition("x")
        count, size = int(count_text), float(size_text)
        if not 1 <= count <= 1000 or not 0.01 <= size <= 50 or count * size > 1000:
            raise ValueError(f"{item!r}: 1..1000 MMS of 0.01..50 MB, at most 1000 MB in all")
        runs.append((count, size))
    return runs


# --------------------------------------------------------------------------- the phone


def fill_mms(b: Bed, count: int, size: int) -> dict[int, dict[str, Any]]:
    """``count`` MMS of one ``size``-byte image each; what each should look like in Gmail,
    keyed by date (ms). Inbox and sent alternate, in 20 conversations."""
    b.phone.enable_privileged(rish=True)
    base_s = BASE_MS // 1000
    expected: dict[int, dict[str, Any]] = {}
    with b.phone.batch():
        for i in range(count):
            data = JPEG_HEAD + os.urandom(size - len(JPEG_HEAD))
            other = f"+4917{i % 20:08d}"
            sent = i % 2 == 0
            addresses = (
                [(INSERT_ADDRESS_TOKEN, PDU_FROM), (other, PDU_TO)]
                if sent
                else [(other, PDU_FROM), (OWN_NUMBER, PDU_TO)]
            )
            name, text = f"photo-{i:04d}.jpg", f"photo #{i}, {size / MB:g} MB"
            date_s = base_s + i * SPACING_S
            b.phone.add_mms(
                date_s=date_s,
                box=2 if sent else 1,
                addresses=addresses,
                parts=[
                    {"ct": "application/smil", "text": SMIL},
                    {"ct": "text/plain", "text": text},
                    {"ct": "image/jpeg", "name": name, "data": data},
                ],
            )
            expected[date_s * 1000] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "name": name,
                "text": text,
            }
    return expected


def call_kind(call: dict[str, Any]) -> str:
    """What one logged fake call was for."""
    argv = call["argv"]
    if call["tool"] == "rish":
        script = argv[-1] if argv else ""
        return "rish: " + ("probe (id -u)" if script.strip() == "id -u" else "content")
    if call["tool"] != "content":
        return str(call["tool"])
    if argv[:1] == ["read"]:
        return "content read (part bytes)"
    uri = argv[argv.index("--uri") + 1] if "--uri" in argv else "?"
    if uri == "content://mms":
        return "content query mms (page)"
    if uri.endswith("/addr"):
        return "content query addr"
    if uri == "content://mms/part":
        return "content query part"
    if uri.startswith("content://sms"):
        return "content query sms (page)"
    return f"content {argv[0] if argv else ''} {uri}"


# --------------------------------------------------------------------------- measuring


class Timeline:
    """VmRSS of the `python -m smsbak` child every 0.25 s, with the fake `content read`
    calls and the emulator's stored messages so far."""

    def __init__(self, b: Bed) -> None:
        self.b = b
        self.samples: list[tuple[float, int, int, int]] = []  # t, VmRSS KiB, reads, stored
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _reads(self) -> int:
        try:
            text = self.b.phone.log_path.read_text(encoding="utf-8")
        except OSError:
            return 0
        return text.count("('content', ['read'")  # the log's lines: repr((tool, argv, t))

    def _run(self) -> None:
        started = time.monotonic()
        pid = None
        while not self._stop.is_set() and pid is None and time.monotonic() - started < 60:
            pid = smsbak_child_pid()
            self._stop.wait(0.01)
        while pid is not None and not self._stop.is_set():
            try:
                text = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                break
            rss = next((int(x.split()[1]) for x in text.splitlines() if x.startswith("VmRSS:")), 0)
            stored = int(self.b.emulator.stats()["messages"])
            self.samples.append((time.monotonic() - started, rss, self._reads(), stored))
            self._stop.wait(0.25)

    def __enter__(self) -> Timeline:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def verify(b: Bed, expected: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Every email under SMS decoded; the attachment compared with the phone's bytes."""

    from smsbak.mime import DecodeError, decode_mms

    seen: set[int] = set()
    identical = mismatched = undecodable = unexpected = 0
    raw_sizes = []
    for stored in b.emulator.messages("SMS"):
        raw_sizes.append(len(stored.raw))
        try:
            mms = decode_mms(stored.raw)
        except DecodeError:
            undecodable += 1
            continue
        want = expected.get(mms.date_ms)
        if want is None or mms.date_ms in seen:
            unexpected += 1
            continue
        seen.add(mms.date_ms)
        images = [p for p in mms.parts if p.content_type == "image/jpeg"]
        texts = [p.text for p in mms.parts if p.content_type == "text/plain"]
        ok = (
            len(images) == 1
            and images[0].data is not None
            and len(images[0].data) == want["size"]
            and hashlib.sha256(images[0].data).hexdigest() == want["sha256"]
            and images[0].name == want["name"]
            and texts == [want["text"]]
        )
        identical += ok
        mismatched += not ok
    return {
        "stored": len(raw_sizes),
        "identical": identical,
        "mismatched": mismatched,
        "undecodable": undecodable,
        "unexpected": unexpected,
        "missing": len(expected) - len(seen),
        "raw_min": min(raw_sizes, default=0),
        "raw_max": max(raw_sizes, default=0),
        "raw_total": sum(raw_sizes),
    }


def replay_one_mms(b: Bed, calls: list[dict[str, Any]], runs: int) -> dict[str, float]:
    """The rish starts of the first MMS read (addr, part, read) run again, directly:
    wall median per kind, from rish start to exit (rish -> sh -> fake content)."""
    from smsbak.phone.privileged import RISH_APP_ID

    wanted = ("content query addr", "content query part", "content read (part bytes)")
    chosen: dict[str, list[str]] = {}
    for call in calls:
        if call["tool"] != "rish" or not call["argv"]:
            continue
        script = call["argv"][-1]
        kind = (
            "content read (part bytes)"
            if script.startswith("content read")
            else "content query addr"
            if "/addr" in script
            else "content query part"
            if "content://mms/part" in script
            else None
        )
        if kind is not None and kind not in chosen:
            chosen[kind] = call["argv"]
    env = b.env()
    env["RISH_APPLICATION_ID"] = RISH_APP_ID
    result: dict[str, float] = {}
    for kind in wanted:
        if kind not in chosen:
            continue
        argv = [str(BIN_DIR / "rish"), *chosen[kind]]
        check(run_timed(argv, env, timeout=REPLAY_TIMEOUT), f"replay {kind}")  # warm-up
        walls = []
        for _ in range(runs):
            r = run_timed(argv, env, timeout=REPLAY_TIMEOUT)
            check(r, f"replay {kind}")
            walls.append(r.seconds)
        result[kind] = statistics.median(walls)
    return result


def run_one(count: int, size_mb: float, replays: int) -> dict[str, Any]:
    size = int(size_mb * MB)
    with bed(
        quota_units_per_minute=SCALED_QUOTA_PER_MINUTE,
        burst_units=SCALED_BURST_UNITS,
        latency=0.0,
    ) as b:
        b.configure(quota_units_per_minute=SCALED_QUOTA_PER_MINUTE, call_log=False)
        expected = fill_mms(b, count, size)
        print(f"{count} MMS x {size_mb:g} MB: backing up ...", flush=True)
        wall_start = time.time()
        with Timeline(b) as timeline:
            result = run_timed(
                smsbak_command("backup"), b.env(), timeout=RUN_TIMEOUT, poll_memory=True
            )
        check(result, f"smsbak backup ({count} x {size_mb:g} MB)")
        stats = b.emulator.stats()
        checked = verify(b, expected)
        calls = b.phone.calls()
        kinds = Counter(call_kind(c) for c in calls)
        content_times = [float(c["t"]) for c in calls if c["tool"] == "content"]
        replay = replay_one_mms(b, calls, replays) if replays else {}
        out = {
            "count": count,
            "size_mb": size_mb,
            "total_mb": count * size / MB,
            "seconds": result.seconds,
            "returncode": result.returncode,
            "peak_kib": result.peak_rss_kib or 0,
            "tree_maxrss_kib": result.tree_maxrss_kib,
            "cpu_seconds": result.cpu_seconds,
            "verify": checked,
            "calls": dict(kinds),
            "tools": dict(Counter(c["tool"] for c in calls)),
            "last_content_after": (max(content_times) - wall_start) if content_times else None,
            "gmail": {
                "http_requests": stats["http_requests"],
                "batch_requests": stats["batch_requests"],
                "insert_calls": stats["insert_calls"],
                "quota_rejections": stats["quota_rejections"],
                "errors": stats["errors"],
            },
            "samples": timeline.samples,
            "replay": replay,
        }
        print(json.dumps({k: v for k, v in out.items() if k != "samples"}), flush=True)
        return out


# --------------------------------------------------------------------------- report


def mb(kib: int) -> float:
    return kib * 1024 / MB


def timeline_text(r: dict[str, Any]) -> str:
    samples = r["samples"]
    if not samples:
        return "no samples"
    step = max(1, len(samples) // 8)
    chosen = samples[::step]
    if chosen[-1] is not samples[-1]:
        chosen.append(samples[-1])
    return "; ".join(
        f"{t:.0f} s: {rss / 1024:.0f} MiB ({reads} read, {stored} stored)"
        for t, rss, reads, stored in chosen
    )


def phase_text(r: dict[str, Any]) -> str:
    """Start to the last fake `content` call (reading the phone), then to the exit."""
    read = r["last_content_after"]
    if read is None:
        return "-"
    return f"{read:.1f} s / {r['seconds'] - read:.1f} s"


def read_before_upload(r: dict[str, Any]) -> str:
    """From the timeline: how many emails were stored while parts were still being read."""
    during = [stored for _, _, reads, stored in r["samples"] if reads < r["count"]]
    if not during:
        return "no sample while reading"
    return f"{max(during)} stored while reading"


def reading_slope(r: dict[str, Any]) -> float | None:
    """MB of VmRSS gained per MB of image read while nothing was stored yet (least
    squares over the timeline's samples with at least one part read)."""
    points = [
        (reads, rss)
        for _, rss, reads, stored in r["samples"]
        if stored == 0 and 0 < reads < r["count"]
    ]
    if len({reads for reads, _ in points}) < 3:
        return None
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    kib_per_mms = sxy / sxx
    return float(kib_per_mms * 1024 / (r["size_mb"] * MB))


def before_first_stored(r: dict[str, Any]) -> int | None:
    """VmRSS (KiB) of the last sample taken before the first email was stored."""
    before = [rss for _, rss, _, stored in r["samples"] if stored == 0]
    return before[-1] if before else None


def report(
    results: list[dict[str, Any]], *, spec: str, replays: int, commit: str
) -> tuple[str, bool | None]:
    """The section's Markdown, and whether peak memory stayed flat (None: no pair of
    runs with the same image size to compare)."""
    facts = machine_facts()
    facts["smsbak commit"] = f"{commit} (the committed tree, run from a `git archive` snapshot)"
    machine = "; ".join(f"{k}: {v}" for k, v in facts.items())

    rows = []
    for r in results:
        v = r["verify"]
        n = r["count"]
        all_ok = v["identical"] == n and v["stored"] == n
        rows.append(
            [
                f"{n} x {r['size_mb']:g} MB",
                f"{r['total_mb']:.0f} MB",
                fmt_s(r["seconds"]),
                f"{n / r['seconds']:.2f}",
                f"{r['total_mb'] / r['seconds']:.2f}",
                phase_text(r),
                f"**{mb(r['peak_kib']):.1f} MB**",
                f"{mb(r['peak_kib']) / r['total_mb']:.2f}",
                f"{v['stored']} / {v['identical']}" + ("" if all_ok else " **FAIL**"),
                f"{v['raw_max'] / MB:.2f} MB",
                f"{r['gmail']['insert_calls']} / {r['gmail']['batch_requests']} / "
                f"{r['gmail']['quota_rejections']}",
                f"{r['cpu_seconds']:.1f} s",
            ]
        )

    # Does the peak grow with the total? Same message size, different totals.
    by_size: dict[float, list[dict[str, Any]]] = {}
    for r in results:
        by_size.setdefault(r["size_mb"], []).append(r)
    growth_lines = []
    flat_ok: bool | None = None
    for size, group in sorted(by_size.items()):
        if len(group) < 2:
            continue
        small = min(group, key=lambda r: r["total_mb"])
        large = max(group, key=lambda r: r["total_mb"])
        if large["total_mb"] == small["total_mb"]:
            continue
        p0, p1 = mb(small["peak_kib"]), mb(large["peak_kib"])
        slope = (p1 - p0) / (large["total_mb"] - small["total_mb"])
        ok = p1 <= p0 * (1 + FLAT_TOLERANCE)
        flat_ok = ok if flat_ok is None else flat_ok and ok
        growth_lines.append(
            f"{size:g} MB messages: {small['count']} of them ({small['total_mb']:.0f} MB) "
            f"peak {p0:.1f} MB, {large['count']} ({large['total_mb']:.0f} MB) peak "
            f"{p1:.1f} MB: **{p1 / p0:.2f}x** for {large['total_mb'] / small['total_mb']:g}x "
            f"the total, **{slope:.2f} MB of peak per MB backed up** (target: at most "
            f"{FLAT_TOLERANCE:.0%} above the smaller run) {verdict(ok)}"
        )
    # Same total, different largest message.
    by_total: dict[float, list[dict[str, Any]]] = {}
    for r in results:
        by_total.setdefault(round(r["total_mb"]), []).append(r)
    largest_lines = []
    for total, group in sorted(by_total.items()):
        sizes = sorted(group, key=lambda r: r["size_mb"])
        if len(sizes) >= 2 and sizes[0]["size_mb"] != sizes[-1]["size_mb"]:
            a, z = sizes[0], sizes[-1]
            largest_lines.append(
                f"{total:g} MB in {a['count']} x {a['size_mb']:g} MB: peak "
                f"{mb(a['peak_kib']):.1f} MB; in {z['count']} x {z['size_mb']:g} MB: peak "
                f"{mb(z['peak_kib']):.1f} MB ({mb(z['peak_kib']) - mb(a['peak_kib']):+.1f} MB "
                f"for a largest message {z['size_mb'] / a['size_mb']:g}x as big)"
            )

    # Fake tool calls per MMS, from the call log.
    call_rows = []
    kinds_all = sorted({k for r in results for k in r["calls"]})
    for kind in kinds_all:
        call_rows.append(
            [kind]
            + [
                f"{r['calls'].get(kind, 0)} ({r['calls'].get(kind, 0) / r['count']:.2f}/MMS)"
                for r in results
            ]
        )
    per_mms_content: list[float] = []
    per_mms_fixed: list[float] = []
    for r in results:
        c = r["calls"]
        per_mms_content.append(
            sum(v for k, v in c.items() if k.startswith("content ")) / r["count"]
        )
        per_mms_fixed.append(
            sum(c.get(k, 0) for k in ("content query addr", "content query part",
                                      "content read (part bytes)")) / r["count"]
        )  # fmt: skip
    ref = results[0]
    replay = ref["replay"]
    replay_rows = [
        [kind, f"{seconds * 1000:.0f} ms"] for kind, seconds in replay.items()
    ]  # fmt: skip

    lines = [
        "## MMS with large attachments (`benchmarks/mms.py`)",
        "",
        "**What:** one `smsbak backup` of N MMS on the fake phone, read through the "
        "privileged reader (fake `rish` + fake `content`, `phone.enable_privileged(rish=True)`), "
        "each MMS with a SMIL part, a short text and one binary image of S MB (random bytes "
        "behind a JPEG header: incompressible), inbox and sent alternating, into an empty "
        "mailbox. **Emulator quota scaled up 1000x and latency 0** (config.toml "
        "`quota_units_per_minute = 15000000`, `call_log = false`), so the times are smsbak's "
        "and the fakes' own, not Gmail's. MMS go under the label \"SMS\"; every email here is "
        f"over smsbak's {BATCH_RAW_LIMIT // 1000} kB batch limit, so each goes up by "
        "resumable upload. The peak is the smsbak process's VmHWM from /proc, polled every "
        '20 ms; afterwards every email under "SMS" is decoded with `smsbak.mime.decode_mms` '
        "and its image compared byte for byte (length and SHA-256, plus name and text) with "
        "what was put on the phone. Call counts come from the fake tools' call log. smsbak "
        "ran from a `git archive` snapshot of the committed tree (the decoder too).",
        "",
        f"**Command:** `python benchmarks/mms.py --runs {spec} --replays {replays}`",
        "",
        f"**Machine:** {machine}",
        "",
        table(
            [
                "run",
                "total",
                "wall time",
                "MMS/s",
                "MB/s (of images)",
                "reading the phone / the rest",
                "peak RSS of smsbak (VmHWM)",
                "peak / total",
                "stored / byte-identical",
                "largest email",
                "insert starts / batch requests / 429s",
                "CPU smsbak + children",
            ],
            rows,
        ),
        "",
        "**Does peak memory grow with the total size of the backup?** "
        + (" ".join(growth_lines) if growth_lines else "(no two runs of the same size)"),
    ]
    memory_lines = []
    for r in results:
        slope = reading_slope(r)
        before = before_first_stored(r)
        memory_lines.append(
            f"- {r['count']} x {r['size_mb']:g} MB: while the phone was read, VmRSS grew "
            + ("?" if slope is None else f"**{slope:.2f} MB per MB of image read**")
            + "; VmRSS in the last sample before the first email was stored: "
            + ("?" if before is None else f"{mb(before):.1f} MB")
            + f"; peak {mb(r['peak_kib']):.1f} MB"
            + (
                ""
                if before is None
                else f" ({mb(r['peak_kib']) - mb(before):+.1f} MB over it, "
                f"{(mb(r['peak_kib']) - mb(before)) / (r['verify']['raw_max'] / MB):.1f}x "
                "the largest email)"
            )
            + "."
        )
    buffered = all(read_before_upload(r).startswith("0 ") for r in results)
    lines += [
        "",
        "Where the memory goes (from the timeline; "
        + (
            "`stored` stays 0 until every part has been read, so the whole backup is read "
            "into memory before the first upload):"
            if buffered
            else "emails are stored while the phone is still being read: attachments are "
            "read when each email is built, so one message's attachments are in memory at "
            "a time):"
        ),
        "",
        *memory_lines,
    ]
    reread = [r for r in results if r["calls"].get("content read (part bytes)", 0) > r["count"]]
    if largest_lines:
        lines += ["", "Same total, larger messages: " + "; ".join(largest_lines) + "."]
    lines += [
        "",
        "RSS over each run (VmRSS every 0.25 s; `read` = `content read` calls so far, "
        "`stored` = emails in the emulator):",
        "",
        *(
            f"- {r['count']} x {r['size_mb']:g} MB ({read_before_upload(r)}): {timeline_text(r)}."
            for r in results
        ),
        "",
        "### Fake tool calls (call log)",
        "",
        table(["call", *(f"{r['count']} x {r['size_mb']:g} MB" for r in results)], call_rows),
        "",
        "Every `content` call is started through its own `rish` (one `rish -c 'content ...'` "
        "each), so each is two process starts here, and on a phone one Shizuku shell plus one "
        "`content` (an app_process, i.e. a Java VM start). **Per MMS smsbak makes "
        + " / ".join(sorted({f"{p:.2f}" for p in per_mms_fixed}))
        + " `content` calls** (the addresses, the parts, and one `content read` per binary "
        "part, here 1), plus one page query per 100 MMS and one SMS page query per run; "
        "all `content` calls divided by the MMS: "
        + ", ".join(
            f"{p:.2f} ({r['count']} x {r['size_mb']:g} MB)"
            for p, r in zip(per_mms_content, results, strict=True)
        )
        + ". **On a phone each of these costs hundreds of ms of Java start-up, which this "
        "machine cannot measure**; at an assumed "
        f"{ASSUMED_CONTENT_COST:g} s per `content` start (the figure restore_write.py uses, not "
        f"measured) that alone would be {per_mms_fixed[0] * ASSUMED_CONTENT_COST:.2f} s per "
        f"MMS, {per_mms_content[0] * ASSUMED_CONTENT_COST * ref['count']:.0f} s for the "
        f"{ref['count']} MMS of the first run (computed, not run), against "
        f"{ref['seconds']:.1f} s measured for that whole run here.",
    ]
    if reread:
        lines += [
            "",
            "Read twice: "
            + "; ".join(
                f"{r['count']} x {r['size_mb']:g} MB: "
                f"{r['calls']['content read (part bytes)'] - r['count']} MMS "
                f"({r['calls'].get('content query mms (page)', 0)} MMS pages)"
                for r in reread
            )
            + ". By reading the code: `walk_newest_first` starts each next page again at the "
            "date ending the previous one (the tie group, here one MMS), and the MMS reader "
            "reads that message's addresses, parts and bytes again before the duplicate is "
            "dropped: one extra full read per page of 100.",
        ]
    if replay_rows:
        lines += [
            "",
            f"The fake `content` on this machine, one call of the first MMS of the "
            f"{ref['count']} x {ref['size_mb']:g} MB run replayed directly (`rish -c` as "
            f"smsbak starts it, wall median of {replays}: the fake `rish` and `sh` and the fake "
            "`content`, Python processes reading the small fixture; `read` copies the part "
            "file to stdout, here a temporary file):",
            "",
            table(["call (through rish)", "wall, median"], replay_rows),
        ]
        if ref["last_content_after"] is not None:
            per_mms = sum(replay.values())
            observed = ref["last_content_after"] / ref["count"]
            lines += [
                "",
                f"These {len(replay)} calls add up to {per_mms * 1000:.0f} ms per MMS on this "
                f"machine; the {ref['count']} x {ref['size_mb']:g} MB run spent "
                f"{observed * 1000:.0f} ms per MMS from its start to its last `content` call "
                f"(start-up included): the same fake calls timed alone are "
                f"{per_mms / observed:.0%} of the time spent reading the phone.",
            ]
    if flat_ok is not None:
        lines += [
            "",
            "Result: peak memory "
            + (
                "does **not** grow with the total size of the backup "
                if flat_ok
                else "**grows with the total size of the backup** "
            )
            + verdict(flat_ok),
        ]
    return "\n".join(lines), flat_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", default=DEFAULT_RUNS, help="COUNTxMB,... (MB = 10^6 bytes per image)"
    )
    parser.add_argument(
        "--replays", type=int, default=5, help="direct timings of one MMS's fake calls (0: none)"
    )
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    try:
        runs = parse_runs(args.runs)
    except ValueError as error:
        parser.error(f"--runs: {error}")
    if not 0 <= args.replays <= 50:
        parser.error("--replays 0..50")
    spec = ",".join(f"{c}x{s:g}" for c, s in runs)
    with committed_snapshot("smsbak.mime", "smsbak.phone.privileged") as snapshot:
        results = [run_one(count, size, args.replays) for count, size in runs]
    text, flat_ok = report(results, spec=spec, replays=args.replays, commit=snapshot["commit"])
    print(text)
    if not args.no_write:
        record(results, text, spec=spec, replays=args.replays, flat_ok=flat_ok)
    return 0


def record(
    results: list[dict[str, Any]], text: str, *, spec: str, replays: int, flat_ok: bool | None
) -> None:
    """results/mms.json: the runs' numbers (as the carried-over data file holds them)."""
    runs = [
        {
            "mms": r["count"],
            "image_mb": r["size_mb"],
            "seconds": round(r["seconds"], 1),
            "mms_per_s": round(r["count"] / r["seconds"], 2) if r["seconds"] else None,
            "peak_rss_mb": round(r["peak_kib"] / 1024, 1),
        }
        for r in results
    ]
    measured = "; ".join(
        f"{x['mms']} x {x['image_mb']:g} MB: {x['seconds']} s, {x['mms_per_s']} MMS/s, "
        f"peak RSS **{x['peak_rss_mb']} MB**"
        for x in runs
    )
    outcome = "recorded" if flat_ok is None else ("pass" if flat_ok else "FAIL")
    growth = [
        max(same, key=lambda x: x["mms"])["peak_rss_mb"]
        / min(same, key=lambda x: x["mms"])["peak_rss_mb"]
        for size in {x["image_mb"] for x in runs}
        if len(same := [x for x in runs if x["image_mb"] == size]) > 1
        and min(same, key=lambda x: x["mms"])["peak_rss_mb"] > 0
    ]
    write_result(
        "mms",
        title="MMS with large attachments",
        command=f"python benchmarks/mms.py --runs {spec} --replays {replays}",
        details=text,
        numbers={"latency_s": 0, "runs": runs},
        summary=[
            {
                "benchmark": f"MMS with large attachments ({spec}); scaled quota, latency 0",
                "measured": measured,
                "target": "peak must not grow with the total (4x total: at most +10%)",
                "verdict": outcome,
            }
        ],
        limit={"what": "peak growth for 4x the total", "op": "<=", "value": 1 + FLAT_TOLERANCE},
        ratio=round(max(growth), 2) if growth else None,
        verdict=outcome,
    )


if __name__ == "__main__":
    sys.exit(main())
