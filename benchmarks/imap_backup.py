"""IMAP upload rate of smsbak's IMAP destination against a real Dovecot, behind a
latency proxy, against the Gmail API's ceiling of 10 inserts a second.

For each round-trip time (0, 100, 300 ms added to every answer of the server) and each
number of connections (1 and the default `imap_connections`), 2,000 SMS emails made by
the real codec (``smsbak.mime.encode_sms``) are handed to ``ImapDestination.upload``
into an existing folder, as a backup run does once the folder exists. Dovecot
advertises LITERAL+, so each APPEND is one round trip (a non-synchronizing literal); for
comparison, the default connections at the slowest link also run with LITERAL+ hidden
from the client by the proxy (``--compare``): the synchronizing literal, two round trips.
A slow combination would take far longer than the benchmark's budget (one connection at
300 ms: 10 minutes for 2,000), so each run stops after ``--budget`` seconds through the
port's ``should_stop``; the rate is what was confirmed divided by the time, and the count
is checked on the server. The proxy counts the server's continuation requests, so the
table shows the round trips each APPEND really took.

The destination is driven directly because the CLI wiring of destinations lives on
another branch; the backup engine adds no IMAP traffic of its own.

    python benchmarks/imap_backup.py [--messages 2000] [--budget 60] [--more 0] [--no-compare]
                                     [--no-write]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line, table, write_result, write_wanted

from smsbak.config import Settings
from smsbak.destinations.imap import ImapAccount, ImapDestination
from smsbak.mime import encode_sms
from smsbak.model import Box, Sms
from smsbak.ports import Outgoing
from tests.fakes.dovecot import Dovecot, LatencyProxy, dovecot_available

GMAIL_API_CEILING = 10.0  # inserts per second: 15,000 quota units a minute at 25 each
LATENCIES_MS = (0, 100, 300)
BACKUP_TIME = datetime(2026, 1, 2, tzinfo=UTC)


def messages(count: int) -> list[Outgoing]:
    items = []
    for n in range(count):
        sms = Sms(
            address=f"+1555{n:07d}",
            body=f"Message {n}: see you at 8, bring the charger please. Grüße 😀",
            date_ms=1_700_000_000_000 + n * 60_000,
            box=Box.INBOX if n % 2 else Box.SENT,
            read=True,
            thread_id=n % 50,
        )
        encoded = encode_sms(
            sms, account="me@example.org", contact_name=f"Contact {n % 50}", zone=UTC,
            backup_time=BACKUP_TIME,
        )  # fmt: skip
        items.append(Outgoing(sms.fingerprint, encoded.raw, encoded.message_id, sms.date_ms, True))
    return items


def run(
    server: Dovecot,
    items: list[Outgoing],
    latency_ms: int,
    connections: int,
    budget: float,
    synchronizing: bool = False,
) -> dict[str, float]:
    server.reset()
    with LatencyProxy(server.port, latency=latency_ms / 1000) as proxy:
        if synchronizing:
            proxy.capability_rewrite = {b" LITERAL+": b""}
        account = ImapAccount(
            host="127.0.0.1", port=proxy.port, user=server.user, password=server.password,
            security="plain", connections=connections,
        )  # fmt: skip
        setup = ImapDestination(ImapAccount(**{**account.__dict__, "connections": 1}))
        setup.ensure_folder("SMS")
        setup.close()
        destination = ImapDestination(account)
        confirmed = 0

        def on_confirmed(batch: object) -> None:
            nonlocal confirmed
            confirmed += len(batch)  # type: ignore[arg-type]

        start = time.monotonic()
        destination.upload(
            items, "SMS", on_confirmed=on_confirmed, on_rejected=print,
            should_stop=lambda: time.monotonic() - start > budget,
        )  # fmt: skip
        elapsed = time.monotonic() - start
        destination.close()
        peak = proxy.max_concurrent
        appends = len(proxy.append_literals)
        trips = (appends + proxy.continuations) / appends if appends else 0.0
    stored = len(server.messages("SMS"))
    assert stored == confirmed, f"server holds {stored}, {confirmed} confirmed"
    return {
        "sent": confirmed, "seconds": elapsed, "rate": confirmed / elapsed, "peak": peak,
        "trips": trips,
    }  # fmt: skip


def notes(
    measured: dict[tuple[int, int], float], default: int, synchronizing: float | None
) -> list[str]:
    """What the numbers say, against the issue's aim: faster than the API at 300 ms."""
    slow = {c: rate for (ms, c), rate in measured.items() if ms == 300}
    lines = ["Notes, honestly:", ""]
    if default in slow:
        verdict = "meets" if slow[default] > GMAIL_API_CEILING else "misses"
        line = (
            f"- **Aim (faster than the Gmail API's 10/s on a 300 ms link): the default "
            f"{default} connections {verdict} it** at {slow[default]:.1f}/s "
            f"({slow[default] / GMAIL_API_CEILING:.2f}x). With a non-synchronizing literal "
            "an APPEND waits one round trip, so each connection manages about "
            "1 / 0.3 s = 3.3/s at best, and the rate grows with the connections: "
            + ", ".join(f"{c}: {r:.1f}/s" for c, r in sorted(slow.items()))
            + "."
        )
        if synchronizing is not None:
            line += (
                f" The same {default} connections with the synchronizing literal (LITERAL+ "
                f"hidden by the proxy, as on a server without it): {synchronizing:.1f}/s "
                f"({synchronizing / GMAIL_API_CEILING:.2f}x), two round trips per APPEND."
            )
        lines.append(line)
    lines += [
        "- Still one APPEND at a time per connection, waiting for its tagged OK. Pipelined "
        "APPENDs (one round trip for many messages) were tried and dropped: after a "
        "connection was cut, Dovecot was still storing APPENDs it had buffered when the "
        "lookup by Message-ID ran, so a re-send made second copies (the drop-after-APPEND "
        "test caught it). Exactly once comes first.",
        "- Gmail advertises LITERAL- (non-synchronizing literals of at most 4,096 bytes), "
        "not LITERAL+: SMS emails (668 bytes here) take the one-round-trip path there too; "
        "MMS above 4,096 bytes, and everything above 256 KiB anywhere, are synchronizing. "
        "Not measured against Gmail itself.",
        "- The default stays at 4 connections (the IMAP reference: careful clients stay "
        "at about 4; the account's other mail apps share Gmail's allowance of about 15). "
        "`imap_connections` is the user's lever on slower links.",
        "- The 0 ms rows are CPU-bound, and the 2 CPUs were shared with other work during "
        f"the run (load average {os.getloadavg()[0]:.1f} at its end): they vary from run to "
        "run by more than the literal's kind changes them. The slow-link rows are bound by "
        "round trips, not CPU; the gap to 3.3/s per connection is the time each APPEND "
        "spends in the client, the proxy and Dovecot on the busy machine.",
    ]
    return lines


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument(
        "--more", type=int, default=0, help="also this many connections on slow links (0: no)"
    )
    parser.add_argument(
        "--no-compare", action="store_true",
        help="skip the synchronizing-literal run at 300 ms with the default connections",
    )  # fmt: skip
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    reason = dovecot_available()
    if reason:
        sys.exit(f"needs Dovecot: {reason}")
    default = Settings().imap_connections
    items = messages(args.messages)
    size = sum(len(i.raw) for i in items) // len(items)
    rows = []
    measured: dict[tuple[int, int], float] = {}
    synchronizing: float | None = None
    runs: list[dict[str, object]] = []
    with Dovecot() as server:
        cells = [
            (latency, connections, False)
            for latency in LATENCIES_MS
            for connections in [1, default] + ([args.more] if args.more and latency else [])
        ]
        if not args.no_compare:
            cells.append((LATENCIES_MS[-1], default, True))
        for latency, connections, sync in cells:
            result = run(server, items, latency, connections, args.budget, sync)
            print(f"{latency} ms, {connections} connection(s), sync={sync}: {result}", flush=True)
            runs.append(
                {"latency_ms": latency, "connections": connections, "synchronizing": sync,
                 **{key: round(value, 3) for key, value in result.items()}}
            )  # fmt: skip
            if sync:
                synchronizing = result["rate"]
            else:
                measured[(latency, connections)] = result["rate"]
            rows.append(
                [
                    f"{latency} ms",
                    connections,
                    "`{n}` (LITERAL+ hidden)" if sync else "`{n+}`",
                    f"{result['trips']:.2f}",
                    f"{int(result['sent'])} of {args.messages}",
                    f"{result['seconds']:.1f} s",
                    f"**{result['rate']:.1f}/s**",
                    f"{result['rate'] / GMAIL_API_CEILING:.2f}x",
                    int(result["peak"]),
                ]
            )
    body = "\n".join(
        [
            "## IMAP upload rate against Dovecot (`benchmarks/imap_backup.py`)",
            "",
            "**What:** `ImapDestination.upload` of real SMS emails (`smsbak.mime.encode_sms`, "
            f"{size} bytes on average) into an existing folder of a real Dovecot 2.3 on "
            "loopback, through a TCP proxy that delays every answer of the server by the "
            "round-trip time. Dovecot advertises LITERAL+, so smsbak sends each APPEND "
            "with a non-synchronizing literal (`{n+}`): one round trip, one APPEND at a "
            "time per connection. For comparison, one run hides LITERAL+ from the client "
            "(the proxy rewrites the CAPABILITY lines), so it waits for the server's `+` "
            '(`{n}`): two round trips. "Round trips per APPEND" is counted by the proxy '
            "(APPENDs plus continuation requests, per APPEND). A run stops after "
            f"{args.budget:.0f} s (the port's `should_stop`) when {args.messages:,} would "
            "take longer; the count is checked on the server. Ratio: against the Gmail "
            f"API's ceiling of 10 inserts/s. Connections: 1 and the default ({default})"
            + (f", and on the slow links also {args.more}" if args.more else "")
            + " (`imap_connections`).",
            "",
            f"**Command:** `python benchmarks/imap_backup.py --messages {args.messages} "
            f"--budget {args.budget:.0f}"
            + (f" --more {args.more}" if args.more else "")
            + (" --no-compare" if args.no_compare else "")
            + "`",
            "",
            f"**Machine:** {machine_line()}",
            "",
            table(
                [
                    "round trip",
                    "connections",
                    "literal",
                    "round trips per APPEND",
                    "uploaded",
                    "time",
                    "rate",
                    "vs Gmail API 10/s",
                    "most connections open",
                ],
                rows,
            ),
            "",
            *notes(measured, default, synchronizing),
            "",
        ]
    )
    print(body)
    if write_wanted(["--no-write"] if args.no_write else []):
        command = body.split("**Command:** `", 1)[1].split("`", 1)[0]
        record(command, body, runs, measured, default, synchronizing)


def record(
    command: str,
    body: str,
    runs: list[dict[str, object]],
    measured: dict[tuple[int, int], float],
    default: int,
    synchronizing: float | None,
) -> None:
    """The runs as data; the aim: faster than the Gmail API on the slowest link, default
    connections (issue 9: "faster than the API on a 300 ms link")."""
    slow = LATENCIES_MS[-1]
    rate = measured.get((slow, default))
    ratio = None if rate is None else rate / GMAIL_API_CEILING
    ok = ratio is not None and ratio > 1.0
    per_link = "; ".join(
        f"{latency} ms: "
        + " / ".join(
            f"{measured[(latency, c)]:.1f}/s" for c in (1, default) if (latency, c) in measured
        )
        for latency in LATENCIES_MS
    )
    write_result(
        "imap_backup",
        title="IMAP upload rate against Dovecot",
        command=command,
        details=body,
        numbers={"runs": runs, "default_connections": default},
        limit={
            "what": f"APPENDs/s at {slow} ms, {default} connections, / Gmail API's "
            f"{GMAIL_API_CEILING:g} inserts/s",
            "op": ">",
            "value": 1.0,
        },
        ratio=None if ratio is None else round(ratio, 2),
        verdict="pass" if ok else "FAIL",
        summary=[
            {
                "benchmark": f"IMAP upload into Dovecot, 1 / {default} connections, "
                f"{' / '.join(str(x) for x in LATENCIES_MS)} ms round trip",
                "measured": per_link
                + ("" if synchronizing is None else f" ({synchronizing:.1f}/s, LITERAL+ hidden)")
                + ("" if ratio is None else f"; **{ratio:.2f}x** the Gmail API at {slow} ms"),
                "target": f"faster than the Gmail API's {GMAIL_API_CEILING:g}/s at {slow} ms",
                "verdict": "pass" if ok else "FAIL",
            }
        ],
    )


if __name__ == "__main__":
    main(sys.argv[1:])
