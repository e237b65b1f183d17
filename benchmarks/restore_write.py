"""Phone write rate of `smsbak restore --to phone` through Shizuku's rish and `content`.

On a phone, every `content` call and every `rish` call starts a Java process
(app_process): that start-up, not the SMS provider, is what a restore into the
phone pays for. The fake tools model it with a sleep per call; the numbers used
here are ASSUMPTIONS, not measurements of a phone:

    content_call_cost = 0.25 s per `content` process
    rish_call_cost    = 0.05 s per `rish` start

The Gmail emulator holds N smsbak-format emails (scaled-up quota, no latency: the
reading is not what is measured here); the fake phone is empty and has Shizuku
(`rish`). `smsbak restore --to phone` writes them all; the phone is then checked
against the archive, and every `rish`/`content` start is counted from the fake
tools' call log. For comparison, the cost of a naive writer (per message: one
rish start, one `content insert`, one confirming `content query`) is COMPUTED from
the same per-call costs and the measured counts; it is not run.

    python benchmarks/restore_write.py [--messages 300] [--content-cost 0.25]
                                       [--rish-cost 0.05] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SCALED_BURST_UNITS,
    SCALED_QUOTA_PER_MINUTE,
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
    write_result,
)


def classify_rish(script: str) -> str:
    """What one rish start was for, from the script smsbak handed it (`rish -c SCRIPT`)."""
    if script.strip() == "id -u":
        return "detect (id -u)"
    if "appops set" in script:
        return "app-op allow" if script.rstrip().endswith("allow") else "app-op reset"
    if "content insert" in script:
        return "chunk of inserts"
    if "content query" in script:
        return "confirming query" if "--where" in script else "read what the phone has"
    if "content delete" in script:
        return "delete"
    return "other"


def measure(count: int, content_cost: float, rish_cost: float) -> dict[str, object]:
    messages = archive_sms(count)
    expected = sorted((s.address, s.body, s.date_ms, int(s.box)) for s in messages)
    with bed(
        quota_units_per_minute=SCALED_QUOTA_PER_MINUTE,
        burst_units=SCALED_BURST_UNITS,
        latency=0.0,
    ) as b:
        restore_login(b)
        b.configure(quota_units_per_minute=SCALED_QUOTA_PER_MINUTE)
        seed_archive(b.emulator, messages)
        phone = b.phone
        phone.enable_privileged(rish=True)
        phone.set_content(call_cost=content_cost)
        phone.set(rish_call_cost=rish_cost)
        assert phone.messages == []
        print(
            f"smsbak restore --to phone of {count} messages "
            f"(content {content_cost} s, rish {rish_cost} s per call) ...",
            flush=True,
        )
        started_epoch = time.time()
        result = run_timed(
            smsbak_command("restore", "--to", "phone"),
            b.env(),
            timeout=120 + count * (content_cost + rish_cost + 0.5) * 2,
        )
        check(result, "smsbak restore --to phone")
        ended_epoch = started_epoch + result.seconds
        on_phone = sorted(
            (m["address"] or "", m["body"] or "", int(m["date"]), int(m["type"]))
            for m in phone.messages
        )
        calls = phone.calls()
        tools = Counter(c["tool"] for c in calls)
        rish_kinds: Counter[str] = Counter()
        content_ops: Counter[str] = Counter()
        inserts_per_chunk: list[int] = []
        for call in calls:
            if call["tool"] == "rish":
                argv = call["argv"]
                script = argv[1] if len(argv) > 1 and argv[0] == "-c" else " ".join(argv)
                kind = classify_rish(script)
                rish_kinds[kind] += 1
                if kind == "chunk of inserts":
                    inserts_per_chunk.append(script.count("content insert"))
            elif call["tool"] == "content":
                content_ops[call["argv"][0] if call["argv"] else "?"] += 1
        rish_times = [c["t"] for c in calls if c["tool"] == "rish"]
        insert_times = [
            c["t"] for c in calls if c["tool"] == "content" and c["argv"][:1] == ["insert"]
        ]
        return {
            "count": count,
            "content_cost": content_cost,
            "rish_cost": rish_cost,
            "seconds": result.seconds,
            "cpu_seconds": result.cpu_seconds,
            "on_phone": len(on_phone),
            "matches": on_phone == expected,
            "appop_after": phone.appop(),
            "tools": dict(tools),
            "rish_kinds": dict(rish_kinds),
            "content_ops": dict(content_ops),
            "inserts_per_chunk": inserts_per_chunk,
            "first_rish": (min(rish_times) - started_epoch) if rish_times else None,
            "first_insert": (min(insert_times) - started_epoch) if insert_times else None,
            "last_insert": (max(insert_times) - started_epoch) if insert_times else None,
            "phone_seconds": ended_epoch - min(rish_times) if rish_times else None,
            "gmail_gets": b.emulator.calls.get("get", 0),
        }


def per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:.2f}" if seconds > 0 else "-"


def report(d: dict[str, object]) -> str:
    count = int(d["count"])  # type: ignore[call-overload]
    c_cost = float(d["content_cost"])  # type: ignore[arg-type]
    r_cost = float(d["rish_cost"])  # type: ignore[arg-type]
    seconds = float(d["seconds"])  # type: ignore[arg-type]
    phone_s = float(d["phone_seconds"])  # type: ignore[arg-type]
    tools: dict[str, int] = d["tools"]  # type: ignore[assignment]
    rish_kinds: dict[str, int] = d["rish_kinds"]  # type: ignore[assignment]
    content_ops: dict[str, int] = d["content_ops"]  # type: ignore[assignment]
    chunks: list[int] = d["inserts_per_chunk"]  # type: ignore[assignment]
    n_rish = tools.get("rish", 0)
    n_content = tools.get("content", 0)
    n_inserts = content_ops.get("insert", 0)
    confirm_rish = rish_kinds.get("confirming query", 0)
    chunk_rish = rish_kinds.get("chunk of inserts", 0)
    # Calls that do not depend on the chunking (detect, read what is there, app-op twice,
    # and the `content` query of that read): a naive writer makes them too.
    fixed_rish = n_rish - chunk_rish - confirm_rish
    fixed_content = n_content - n_inserts - confirm_rish
    other_starts = sum(n for tool, n in tools.items() if tool not in ("rish", "content"))
    stated = n_content * c_cost + n_rish * r_cost
    starts = n_rish + n_content + other_starts
    overhead = max(0.0, phone_s - stated)
    per_start = overhead / starts if starts else 0.0
    naive_rish = fixed_rish + count
    naive_content = fixed_content + 2 * count
    naive_starts = naive_rish + naive_content + other_starts
    naive_stated = naive_content * c_cost + naive_rish * r_cost
    naive_with_overhead = naive_stated + naive_starts * per_start
    ok = bool(d["matches"])
    rate = count / seconds
    phone_rate = count / phone_s

    rows: list[list[object]] = [
        ["messages in the archive / on the phone afterwards", f"{count} / {d['on_phone']}"],
        ["phone matches the archive (address, body, date, type)", "yes" if ok else "**no**"],
        ["WRITE_SMS app-op of the shell afterwards", d["appop_after"]],
        ["wall time of `smsbak restore --to phone`", fmt_s(seconds)],
        ["of it, from the first rish start to the end", fmt_s(phone_s)],
        ["**write rate**", f"**{rate:.2f} messages/s** ({phone_rate:.2f}/s over the phone part)"],
        [
            "`rish` starts",
            f"{n_rish}: " + ", ".join(f"{k} {v}" for k, v in sorted(rish_kinds.items())),
        ],
        [
            "`content` processes",
            f"{n_content}: " + ", ".join(f"{k} {v}" for k, v in sorted(content_ops.items())),
        ],
        ["inserts per rish start (chunks)", ", ".join(str(n) for n in chunks)],
        [
            "other fake tools started (no assumed cost)",
            ", ".join(f"{t} x{n}" for t, n in sorted(tools.items()) if t not in ("rish", "content"))
            or "none",
        ],
        [
            "assumed start-up cost of those rish + content calls",
            f"{n_content} x {c_cost} s + {n_rish} x {r_cost} s = {stated:.1f} s",
        ],
        [
            "the rest of the phone part (the fakes' own Python start-up and work, smsbak)",
            f"{overhead:.1f} s = {1000 * per_start:.0f} ms per process start ({starts} starts)",
        ],
        ["messages.get calls (reading the archive, not timed separately)", d["gmail_gets"]],
    ]
    naive_rows: list[list[object]] = [
        ["`rish` starts", f"{fixed_rish} + {count} x 1 = {naive_rish}", n_rish],
        ["`content` processes", f"{fixed_content} + {count} x 2 = {naive_content}", n_content],
        ["assumed start-up cost alone", f"{naive_stated:.1f} s", f"{stated:.1f} s"],
        [
            f"plus this machine's {1000 * per_start:.0f} ms per start of the fakes",
            f"{naive_with_overhead:.1f} s",
            f"{phone_s:.1f} s (measured)",
        ],
        [
            "messages/s at the assumed costs alone",
            per_second(count, naive_stated),
            per_second(count, stated),
        ],
    ]
    lines = [
        "## Restore write rate into the phone (`benchmarks/restore_write.py`)",
        "",
        f"**What:** wall time of one `smsbak restore --to phone` writing {count} SMS into an "
        "empty fake phone through Shizuku (fake `rish`) and the fake `content` tool, which "
        "stores every insert in the fixture phone; the archive comes from the Gmail emulator "
        "(scaled-up quota, no latency). Process starts are counted from the fake tools' call "
        "log; the phone is compared with the archive afterwards.",
        "",
        f"**Assumed per-call costs (not measured on a phone):** `content_call_cost = {c_cost}` s "
        f"per `content` process and `rish_call_cost = {r_cost}` s per `rish` start, standing "
        "for a phone's Java (app_process) start-up; each fake sleeps that long before it "
        "works. On top of it each fake is a Python process that reads the fixture phone, "
        "which this machine pays too (measured below).",
        "",
        f"**Command:** `python benchmarks/restore_write.py --messages {count} "
        f"--content-cost {c_cost} --rish-cost {r_cost}`",
        "",
        f"**Machine:** {machine_line()}",
        "",
        table(["smsbak restore --to phone", "measured"], rows),
        "",
        "How smsbak keeps the starts down: `content` takes one row per process, so one "
        f"`content insert` per message cannot be avoided; but smsbak hands a whole chunk of "
        f"up to {max(chunks) if chunks else 0} inserts to **one** rish start (one shell "
        "script), then confirms the whole chunk with **one** `content query` over the chunk's "
        "date range (`date>=FIRST AND date<=LAST`) in a second rish start, instead of one "
        "shell start and one query per message. Besides the chunks it starts rish for the "
        "probe (`id -u`), one read of what the phone already has, and the WRITE_SMS app-op "
        "(allow before, reset after).",
        "",
        "**Computed, not measured:** a naive writer that starts rish once per message and runs "
        "one insert and one confirming query in it, with the same calls around it "
        "(probe, read, app-op):",
        "",
        table(
            ["naive, per message: 1 rish + 1 insert + 1 query", "computed", "smsbak (counted)"],
            naive_rows,
        ),
        "",
        f"At the assumed costs smsbak's writing takes {stated:.1f} s against {naive_stated:.1f} s "
        "computed for the naive writer (which would take "
        f"{naive_stated / stated if stated else float('nan'):.2f}x as long); the saving is the "
        f"{naive_content - n_content} `content` queries and "
        f"{naive_rish - n_rish} rish starts it does not make. What remains is one `content` "
        f"process per message ({c_cost} s each by the assumption), the floor of any writer "
        f"that uses `content`: {count} x {c_cost} s = {count * c_cost:.0f} s, "
        f"{per_second(1, c_cost)} messages/s.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--content-cost", type=float, default=0.25)
    parser.add_argument("--rish-cost", type=float, default=0.05)
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    if not 1 <= args.messages <= 5000:
        parser.error("--messages 1..5000")
    if not (0 <= args.content_cost <= 5 and 0 <= args.rish_cost <= 5):
        parser.error("costs 0..5 s")
    data = measure(args.messages, args.content_cost, args.rish_cost)
    print(json.dumps(data, indent=1), flush=True)
    text = report(data)
    print(text)
    if not data["matches"]:
        print("the phone does not match the archive", file=sys.stderr)
        return 1
    if not args.no_write:
        record(data, text)
    return 0


def record(d: dict[str, Any], text: str) -> None:
    """results/restore_write.json: the measured numbers (keys as the carried-over file)."""
    count, seconds = int(d["count"]), float(d["seconds"])
    tools: dict[str, int] = d["tools"]
    n_content, n_rish = tools.get("content", 0), tools.get("rish", 0)
    c_cost, r_cost = float(d["content_cost"]), float(d["rish_cost"])
    numbers = {
        "messages": count,
        "assumed_content_cost_s": c_cost,
        "assumed_rish_cost_s": r_cost,
        "seconds": round(seconds, 1),
        "rate_msg_s": round(count / seconds, 2) if seconds else None,
        "content_starts": n_content,
        "rish_starts": n_rish,
        "assumed_cost_s": round(n_content * c_cost + n_rish * r_cost, 1),
        "measured": d,
    }
    write_result(
        "restore_write",
        title="Restore write rate into the phone",
        command=f"python benchmarks/restore_write.py --messages {count} "
        f"--content-cost {c_cost} --rish-cost {r_cost}",
        details=text,
        numbers=numbers,
        summary=[
            {
                "benchmark": f"restore write into the phone, {count} SMS, assumed {c_cost} s "
                f"per `content` + {r_cost} s per `rish`",
                "measured": f"{numbers['seconds']} s = **{numbers['rate_msg_s']} msg/s**; "
                f"{n_content} `content` + {n_rish} `rish` starts "
                f"({numbers['assumed_cost_s']} s of assumed cost)",
                "target": "- (no target)",
                "verdict": f"recorded; the floor is one `content` per message: "
                f"{1 / c_cost if c_cost else float('inf'):g} msg/s at {c_cost} s",
            }
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
