"""The offline HTML archive (`restore --to html:DIR`): build time, memory, size, browser.

Builds the archive from records already read and decoded (what the restore engine
hands its target), in a fresh Python process per run so memory is that run's alone:

* wall time of SiteBuilder.add + build for 10,000 and 50,000 messages (about 450
  conversations, one of them 20,000 messages long, 1% MMS with a picture);
* peak resident memory (VmHWM from /proc) before the build (the records in memory,
  as the engine holds them) and after it: the build's own share must stay flat;
* the size of the site on disk and its number of files;
* an incremental re-run (one new message) and how many files it wrote;
* the time headless Chromium takes to load the newest page of the 20,000-message
  conversation and of a 20-message one from file:// (median of 5 loads).

    python benchmarks/html_archive.py [--messages 50000] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, machine_line, table, write_result, write_wanted

BASE = 1_600_000_000_000
BIG = 20_000


def vm_hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def corpus(count: int, giant: bool) -> list[Any]:
    """``count`` messages over 450 numbers; with ``giant`` the first 20,000 are one."""
    from smsbak.model import AddressKind, Box, Mms, MmsPart, Sms
    from tests.fakes.archive_corpus import png

    rng = random.Random(12)
    letters = "abcdefghijklmnopqrstuvwxyzäöü"
    vocabulary = [
        "".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(8000)
    ]
    picture = png(320, 240, rgb=b"\x40\x90\xd0")
    records: list[Any] = []
    for i in range(count):
        address = f"+4915{rng.randint(0, 449):06d}"
        if giant and i < BIG:
            address = "+491700000000"
        date = BASE + i * 37_000
        text = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(3, 30)))
        box = Box.INBOX if rng.random() < 0.55 else Box.SENT
        if i % 100 == 99:
            parts = (
                MmsPart("text/plain", text=text),
                MmsPart("image/png", name=f"IMG_{i}.png", data=picture),
            )
            people = ((address, AddressKind.FROM), ("+4916099", AddressKind.TO))
            records.append(Mms(date, Box.INBOX, people, parts))
        else:
            records.append(Sms(address, text, date, box))
    return records


def child(count: int, giant: bool, folder: Path) -> None:
    """One build in this fresh process; prints JSON."""
    from datetime import UTC

    from smsbak.archive_site import SiteBuilder
    from smsbak.model import Box, Sms

    records = corpus(count, giant)
    before = vm_hwm_kib()
    started = time.perf_counter()
    builder = SiteBuilder(folder, zone=UTC, zone_name="UTC")
    builder.add(records)
    report = builder.build()
    seconds = time.perf_counter() - started
    after = vm_hwm_kib()
    del records
    started = time.perf_counter()
    again = SiteBuilder(folder, zone=UTC, zone_name="UTC")
    known = again.known_fingerprints()
    again.add([Sms("+491700000000", "one more message", BASE + count * 40_000, Box.INBOX)])
    rerun = again.build()
    rerun_seconds = time.perf_counter() - started
    files = [p for p in folder.rglob("*") if p.is_file()]
    largest = max(
        len(json.loads(p.read_bytes())["messages"]) for p in (folder / "data" / "c").glob("*.json")
    )
    print(json.dumps({
        "messages": report.messages, "largest": largest, "conversations": report.conversations,
        "seconds": seconds, "hwm_before_kib": before, "hwm_after_kib": after,
        "bytes": sum(p.stat().st_size for p in files), "files": len(files),
        "known": len(known), "rerun_seconds": rerun_seconds,
        "rerun_written": rerun.files_written, "rerun_rendered": rerun.conversations_rendered,
    }))  # fmt: skip


def build(count: int, giant: bool, folder: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(count), str(int(giant)), str(folder)],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    return dict(json.loads(done.stdout))


def browser_times(folder: Path) -> dict[str, tuple[float, int, int]]:
    """Median load time (s), size (bytes) and messages shown of: the largest page of the
    largest conversation, the page of the smallest conversation, and the index."""
    sys.path.insert(0, str(REPO))
    from tests.browser import Browser, find_chromium

    chromium = find_chromium()
    assert chromium, "chromium is not installed"
    site = json.loads((folder / "data" / "site.json").read_text())["conversations"]
    big_id = max(site, key=lambda c: site[c]["pages"])
    big = max((folder / "c" / big_id).glob("p*.html"), key=lambda p: p.stat().st_size)
    small_id = min(site, key=lambda c: (folder / "data" / "c" / f"{c}.json").stat().st_size)
    pages = {
        "largest page of the largest conversation": big,
        "page of the smallest conversation": folder / "c" / small_id / "p1.html",
        "index (every conversation)": folder / "index.html",
    }
    browser = Browser(chromium)
    results = {}
    try:
        page = browser.page()
        for path in pages.values():  # warm up
            page.goto(path.as_uri())
        for name, path in pages.items():
            runs = []
            for _ in range(5):
                page.goto("about:blank")
                runs.append(page.goto(path.as_uri()))
            shown = int(page.eval("document.querySelectorAll('.m, .conv').length"))
            results[name] = (statistics.median(runs), path.stat().st_size, shown)
    finally:
        browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--child", nargs=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1] == "1", Path(args.child[2]))
        return
    runs = [(args.messages // 5, False), (args.messages, False), (args.messages, True)]
    results = []
    with tempfile.TemporaryDirectory(prefix="smsbak-html-bench-") as tmp:
        for count, giant in runs:
            folder = Path(tmp) / f"site-{count}-{giant}"
            results.append((giant, build(count, giant, folder)))
        loads = browser_times(folder)
    rows = []
    for _, r in results:
        grow = (r["hwm_after_kib"] - r["hwm_before_kib"]) / 1024
        rows.append([
            f"{r['messages']:,}", f"{r['largest']:,}", r["conversations"], f"{r['seconds']:.1f} s",
            f"{r['messages'] / r['seconds']:,.0f} msg/s",
            f"{r['hwm_before_kib'] / 1024:.1f} MiB", f"{r['hwm_after_kib'] / 1024:.1f} MiB",
            f"**{grow:.1f} MiB**", f"{r['bytes'] / 1e6:.1f} MB in {r['files']:,} files",
            f"{r['rerun_seconds']:.2f} s, {r['rerun_written']} files",
        ])  # fmt: skip
    body = "\n".join([
        "## The offline HTML archive (`benchmarks/html_archive.py`)",
        "",
        f"**Machine:** {machine_line()}",
        "",
        "Records already decoded (as the restore engine hands them to `--to html:DIR`), built by",
        "`SiteBuilder` in a fresh process per run: 450 numbers, random words, 1% MMS with a",
        "320x240 PNG; the last run puts the first 20,000 messages into one conversation. Peak",
        "memory is VmHWM: *before* = with the records in memory (the engine holds them),",
        "*after* = at the end of the build; the build's share is the difference. It grows with",
        "the largest conversation (held whole while it is rendered), not with the number of",
        "messages. Re-run = one new message into conversation +491700000000 (the engine hands",
        "only new messages to the target). The 2 CPUs of this machine are shared with other",
        "work: build times vary by up to 2x between runs of the same commit.",
        "",
        table(
            ["messages", "largest conversation", "conversations", "build", "rate",
             "peak before", "peak after", "build's share", "on disk", "re-run"],
            rows,
        ),
        "",
        "Browser: headless Chromium opening the pages of the last run from file:// (time to the",
        "load event, median of 5 loads after a warm-up):",
        "",
        table(
            ["page", "size", "messages or conversations shown", "load"],
            [[name, f"{size / 1000:.0f} kB", shown, f"**{seconds * 1000:.0f} ms**"]
             for name, (seconds, size, shown) in loads.items()],
        ),
    ])  # fmt: skip
    print(body)
    if write_wanted(sys.argv) and not args.no_write:
        record(args.messages, [r for _, r in results], loads, body)


FLAT = 1.10
"""The build's share of memory at N messages may be at most this times the one at N/5."""


def record(
    messages: int,
    results: list[dict[str, Any]],
    loads: dict[str, tuple[float, int, int]],
    body: str,
) -> None:
    """The runs as data: the build's memory share, N vs N/5 messages, against FLAT."""
    shares = [(r["hwm_after_kib"] - r["hwm_before_kib"]) / 1024 for r in results]
    ratio = shares[1] / shares[0] if shares[0] > 0 else float("inf")
    ok = ratio <= FLAT
    largest = next(iter(loads.values()))[0] if loads else None
    write_result(
        "html_archive",
        title="The offline HTML archive",
        command=f"python benchmarks/html_archive.py --messages {messages}",
        details=body,
        numbers={
            "runs": results,
            "build_share_mib": [round(share, 1) for share in shares],
            "page_load_ms": {
                name: round(seconds * 1000) for name, (seconds, _, _) in loads.items()
            },
        },
        limit={
            "what": f"build's memory share at {messages:,} / at {messages // 5:,} messages",
            "op": "<=",
            "value": FLAT,
        },
        ratio=round(ratio, 2),
        verdict="pass" if ok else "FAIL",
        summary=[
            {
                "benchmark": f"HTML archive of {messages // 5:,} / {messages:,} / {messages:,} "
                "messages (the last with one conversation of "
                f"{results[2]['largest']:,})",
                "measured": "build "
                + " / ".join(f"{r['seconds']:.1f} s" for r in results)
                + "; build's memory share **"
                + " / ".join(f"{share:.1f}" for share in shares)
                + f" MiB** ({ratio:.2f}x for 5x the messages); on disk "
                + f"{results[1]['bytes'] / 1e6:.1f} MB"
                + ("" if largest is None else f"; largest page loads in {largest * 1000:.0f} ms"),
                "target": f"build's memory flat in the number of messages (<= {FLAT:.2f}x)",
                "verdict": "pass" if ok else "FAIL",
            }
        ],
    )


if __name__ == "__main__":
    main()
