"""One-insert-per-request baseline for benchmarks/throughput.py (run as a subprocess).

Uses google-api-python-client directly, no smsbak code on the request path:
``users.messages.insert`` one message at a time, sequentially, each waiting for
its answer. The messages are encoded by smsbak.mime so they have the same size
as smsbak's. Prints one JSON line with the duration of the insert loop; the
caller checks the count on the emulator.

    python benchmarks/_sequential_inserts.py --token FILE --api URL --count N
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", required=True, type=Path)
    parser.add_argument("--api", required=True)
    parser.add_argument("--count", required=True, type=int)
    parser.add_argument("--label", default="SMS")
    args = parser.parse_args()
    if not args.api.startswith("http://127.0.0.1:"):
        raise SystemExit("loopback emulator only")

    import google_auth_httplib2
    import httplib2
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build

    from smsbak.mime import encode_sms
    from smsbak.model import Box, Sms

    token = json.loads(args.token.read_text())
    credentials = Credentials(
        token=None,
        refresh_token=token["refresh_token"],
        token_uri=token["token_uri"],
        client_id=token["client_id"],
        client_secret=token["client_secret"],
        scopes=token["scopes"],
    )
    http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=60))
    service = build(
        "gmail",
        "v1",
        http=http,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": args.api},
    )
    label = service.users().labels().create(userId="me", body={"name": args.label}).execute()
    zone = ZoneInfo("Europe/Berlin")
    now = datetime.now(UTC)
    raws = []
    for i in range(args.count):
        sms = Sms(
            address=f"+4917{i % 200:08d}",
            body=f"sequential baseline message number {i}, about as long as a text",
            date_ms=1_735_689_600_000 + i * 600_000,
            box=Box.INBOX if i % 3 else Box.SENT,
            read=True,
            thread_id=1 + i % 200,
            android_id=i + 1,
        )
        encoded = encode_sms(
            sms, account=token["account"], contact_name=None, zone=zone, backup_time=now
        )
        raws.append(base64.urlsafe_b64encode(encoded.raw).decode("ascii"))
    messages = service.users().messages()
    started = time.monotonic()
    per_request = []
    for raw in raws:
        t0 = time.monotonic()
        messages.insert(
            userId="me",
            internalDateSource="dateHeader",
            body={"raw": raw, "labelIds": [label["id"]]},
        ).execute()
        per_request.append(time.monotonic() - t0)
    seconds = time.monotonic() - started
    per_request.sort()
    print(
        json.dumps(
            {
                "count": len(raws),
                "loop_seconds": seconds,
                "median_request_seconds": per_request[len(per_request) // 2],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
