"""Import of a 100 MB and a 1 GB SMS Backup & Restore file (mostly base64 MMS).

Each file is generated on the fly into /tmp the way the app writes it (surrogate
references for emoji, ``null`` values, ``<addrs>``), then imported in a child
process by the real engine (archive source -> codec -> exactly-once uploader ->
state database) into a Maildir when ``smsbak.destinations.maildir`` is installed,
else into a sink destination defined here (it confirms each email after hashing
its bytes and keeps nothing, so the numbers are smsbak's, not a store's). The child
reports wall time, records and its peak RSS (``ru_maxrss``); the claim is that peak
memory does not grow with the file: 1 GB within 10% of 100 MB.

    python benchmarks/import_big.py [--sizes 100,1000] [--write]
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._common import machine_line, table, write_result  # noqa: E402

MB = 1024 * 1024
PICTURE_BYTES = 300 * 1024
SMS_PER_MMS = 20


def generate(path: Path, target_bytes: int, seed: int = 7) -> dict[str, int]:
    """An app-style sms-*.xml of about ``target_bytes``: 20 SMS then one MMS, again."""
    rng = random.Random(seed)
    counts = {"sms": 0, "mms": 0}
    date = 1_600_000_000_000
    with path.open("wb") as out:
        out.write(
            b"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
            b'<smses count="0" backup_set="bench" backup_date="1">\n'
        )
        while out.tell() < target_bytes:
            for _ in range(SMS_PER_MMS):
                date += 61_000
                counts["sms"] += 1
                body = f"message {counts['sms']} &#55357;&#56832; " + "lorem ipsum " * 8
                out.write(
                    f'  <sms protocol="0" address="+1555{counts["sms"] % 97:04d}" date="{date}"'
                    f' type="{1 + counts["sms"] % 2}" subject="null" body="{body}" toa="null"'
                    ' sc_toa="null" service_center="null" read="1" status="-1" locked="0"'
                    ' date_sent="0" sub_id="-1" readable_date="x" contact_name="(Unknown)" />\n'
                    "".encode()
                )
            date += 61_000
            counts["mms"] += 1
            picture = base64.b64encode(rng.randbytes(PICTURE_BYTES)).decode()
            out.write(
                f'  <mms date="{date}" msg_box="1" address="+15550001~+15550002" m_type="132"'
                ' read="1" sub="null" contact_name="A, B" readable_date="x">\n    <parts>\n'
                '      <part seq="0" ct="text/plain" name="null" chset="106" text="look"'
                " />\n"
                f'      <part seq="1" ct="image/jpeg" name="p{counts["mms"]}.jpg" chset="null"'
                f' text="null" data="{picture}" />\n'
                "    </parts>\n    <addrs>\n"
                '      <addr address="+15550001" type="137" charset="106" />\n'
                '      <addr address="+15559999" type="151" charset="106" />\n'
                '      <addr address="+15550002" type="151" charset="106" />\n'
                "    </addrs>\n  </mms>\n".encode()
            )
        out.write(b"</smses>\n")
    return counts


CHILD = r"""
import hashlib, json, resource, sys, time
from pathlib import Path
from smsbak.importer import ImportEngine
from smsbak.ports import Confirmed, DestinationCapabilities
from smsbak.sources.archive import ArchiveSource
from smsbak.store import StateStore

class Sink:
    identity = "sink:benchmark"
    description = "a sink"
    capabilities = DestinationCapabilities(readable=False, merges_message_ids=True)
    def ensure_folder(self, name): return name
    def find_folder(self, name): return name
    def upload(self, items, folder, *, on_confirmed, on_rejected, should_stop=lambda: False):
        batch = []
        for item in items:
            hashlib.sha256(item.raw).digest()
            batch.append(Confirmed(item.key, "x"))
            if len(batch) == 50:
                on_confirmed(batch); batch = []
        if batch: on_confirmed(batch)
    def find_message_ids(self, folder, ids): return {}
    def close(self): pass

path, work = Path(sys.argv[1]), Path(sys.argv[2])
try:
    from smsbak.destinations.maildir import MaildirDestination
    destination, kind = MaildirDestination(work / "Maildir"), "Maildir"
except ImportError:
    destination, kind = Sink(), "sink (no Maildir module in this tree)"
with StateStore(work / "state.sqlite3") as store:
    started = time.monotonic()
    report = ImportEngine(destination, store).run(ArchiveSource([path]))
    seconds = time.monotonic() - started
uploaded = sum(report.total("uploaded").values())
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "uploaded": uploaded, "peak_kib": peak_kib,
                  "destination": kind, "damaged": len(report.damaged)}))
"""


def measure(size_mb: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="smsbak-import-bench-") as tmp:
        work = Path(tmp)
        path = work / f"sms-{size_mb}mb.xml"
        started = time.monotonic()
        counts = generate(path, size_mb * MB)
        generated_s = time.monotonic() - started
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), str(work)],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        data.update(
            size_mb=size_mb,
            file_bytes=path.stat().st_size,
            sms=counts["sms"],
            mms=counts["mms"],
            generate_s=generated_s,
        )
        return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000", help="file sizes in MB")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    options = parser.parse_args()
    results = [measure(int(size)) for size in options.sizes.split(",")]
    rows = []
    for r in results:
        records = int(r["sms"]) + int(r["mms"])
        seconds = float(r["seconds"])
        rows.append(
            [
                f"{int(r['file_bytes']) / MB:,.0f} MB",
                f"{r['sms']:,} SMS + {r['mms']:,} MMS",
                r["uploaded"],
                f"{seconds:.1f} s",
                f"{records / seconds:,.0f}",
                f"{int(r['file_bytes']) / MB / seconds:.1f}",
                f"{int(r['peak_kib']) / 1024:.1f} MiB",
            ]
        )
        print(json.dumps(r))
    peaks = [int(r["peak_kib"]) for r in results]
    growth = (max(peaks) / min(peaks) - 1) * 100 if len(peaks) > 1 else 0.0
    body = (
        "## Import of a large SMS Backup & Restore file (`benchmarks/import_big.py`)\n\n"
        f"**Machine:** {machine_line()}\n\n"
        f"Destination: {results[0]['destination']}. Each MMS carries a 300 KiB picture "
        f"(400 KiB of base64); {SMS_PER_MMS} SMS between two MMS.\n\n"
        + table(
            ["file", "records", "uploaded", "wall", "msg/s", "MB/s", "peak RSS"],
            rows,
        )
        + f"\n\nPeak memory growth from the smallest to the largest file: {growth:+.1f}%"
        f" (target: within 10%): {'met' if abs(growth) <= 10 else 'NOT met'}.\n"
    )
    print(body)
    if options.write:
        record(options.sizes, results, growth, body)


FLAT_PERCENT = 10.0
"""Issue 10: peak memory of the 1 GB import within 10% of the 100 MB one."""


def record(sizes: str, results: list[dict[str, Any]], growth: float, body: str) -> None:
    """The runs as data: peak memory growth from the smallest to the largest file."""
    ok = abs(growth) <= FLAT_PERCENT
    peaks = [int(r["peak_kib"]) / 1024 for r in results]
    write_result(
        "import_big",
        title="Import of a large SMS Backup & Restore file",
        command=f"python benchmarks/import_big.py --sizes {sizes} --write",
        details=body,
        numbers={"runs": results, "peak_growth_percent": round(growth, 1)},
        limit={
            "what": "peak RSS growth, smallest to largest file, %",
            "op": "<=",
            "value": FLAT_PERCENT,
        },
        ratio=round(growth, 1),
        verdict="pass" if ok else "FAIL",
        summary=[
            {
                "benchmark": "import of a "
                + " / ".join(f"{int(r['file_bytes']) / MB:,.0f} MB" for r in results)
                + f" SMS Backup & Restore file into {results[0]['destination']}",
                "measured": " / ".join(f"{float(r['seconds']):.1f} s" for r in results)
                + "; peak RSS **"
                + " / ".join(f"{peak:.1f}" for peak in peaks)
                + f" MiB** ({growth:+.1f}%)",
                "target": f"peak memory within {FLAT_PERCENT:.0f}% (issue 10)",
                "verdict": "pass" if ok else "FAIL",
            }
        ],
    )


if __name__ == "__main__":
    main()
