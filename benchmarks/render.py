"""Write BENCHMARKS.md from the data in benchmarks/results/*.json: the one renderer.

Every benchmark records its numbers in ``results/NAME.json`` (see README.md here)
and calls ``render()``; nothing else writes BENCHMARKS.md. What the renderer does
not own is kept as it is: the hand-written notes between ``<!-- notes -->`` and
``<!-- /notes -->``, and any ``<!-- bench:NAME -->`` section that has no data
file (one written by hand).

    python benchmarks/render.py          # re-render from the data
    python benchmarks/render.py --check  # exit 1 if BENCHMARKS.md is not up to date
"""

from __future__ import annotations

import argparse
import fcntl
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BENCHMARKS_MD = HERE.parent / "BENCHMARKS.md"

ORDER = [
    "throughput",
    "throughput_slow_answers",
    "restore_read",
    "restore_write",
    "noop_scan",
    "noop_destinations",
    "memory",
    "restore_memory_xml",
    "restore_memory_phone",
    "import_big",
    "adopt_label",
    "startup",
    "daemon_idle",
    "mms",
    "mms_starts",
    "imap_backup",
    "html_archive",
    "ci_wall",
]
"""Sections in this order; benchmarks not listed follow, by name."""

HEADER = """# smsbak benchmarks

Performance measurements of `smsbak`, made by the scripts in `benchmarks/` (plain
Python: `python benchmarks/NAME.py`; `--no-write` prints without recording). Each
script writes its numbers to `benchmarks/results/NAME.json`, and
`benchmarks/render.py` writes this file from those data files: **do not edit the
generated parts by hand** (hand-written notes go between the `notes` markers).

All runs drive the real CLI (`python -m smsbak ...`) as a subprocess, with the fake
Termux:API tools of `tests/fakes/` on `PATH` and the Gmail emulator
(`tests/fakes/gmail_emulator.py`) on 127.0.0.1, on the test bed of `tests/conftest.py`.
Counts are taken from the emulator and the fake tools' call log, times and memory
from the operating system; nothing is parsed from smsbak's own output. The emulator
runs inside the benchmark process and shares the CPUs with smsbak.
"""

_SECTION = re.compile(r"<!-- bench:(?P<name>[\w.-]+) -->\n.*?<!-- /bench:(?P=name) -->", re.S)
_NOTES = re.compile(r"<!-- notes -->\n.*?<!-- /notes -->", re.S)


def load_results(directory: Path = RESULTS) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        results[str(doc.get("name") or path.stem)] = doc
    return results


def _ordered(names: list[str]) -> list[str]:
    known = [name for name in ORDER if name in names]
    return known + sorted(name for name in names if name not in ORDER)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "## Summary",
        "",
        "One row per measurement, from the data files; *carried over* rows were not "
        "re-run on the current code: they keep the date and commit of their run.",
        "",
        "| benchmark | measured | target | verdict | run |",
        "|---|---|---|---|---|",
    ]
    for name in _ordered(list(results)):
        doc = results[name]
        run = f"{doc.get('date', '?')}, commit {doc.get('commit', '?')}"
        if doc.get("carried_over"):
            run += ", *carried over*"
        for row in doc.get("summary") or []:
            cells = [row.get(key, "") for key in ("benchmark", "measured", "target", "verdict")]
            lines.append("| " + " | ".join(_cell(c) for c in [*cells, run]) + " |")
    return "\n".join(lines)


def section(doc: dict[str, Any]) -> str:
    """A benchmark's section: the command, the machine, its details as recorded."""
    name = str(doc["name"])
    machine = "; ".join(f"{k}: {v}" for k, v in (doc.get("machine") or {}).items())
    details = str(doc.get("details") or "").rstrip()
    heading = f"## {doc.get('title') or name} (`{doc.get('script')}`)"
    if details.lstrip().startswith("#"):
        heading, _, details = details.lstrip().partition("\n")
    head = [heading, ""]
    carried = doc.get("carried_over")
    if carried:
        head += [f"> **Carried over, not re-run:** {carried.get('note', '')}", ""]
    body = details.strip()
    if "**Command:**" not in details:
        body += f"\n\n**Command:** `{doc.get('command', '')}`"
    if "**Machine:**" not in details and machine:
        body += f"\n\n**Machine:** {machine}"
    block = "\n".join(head) + "\n" + body
    return f"<!-- bench:{name} -->\n{block.strip()}\n<!-- /bench:{name} -->"


def render_text(current: str, results: dict[str, dict[str, Any]]) -> str:
    """BENCHMARKS.md for ``results``, keeping what ``current`` holds that is not theirs."""
    notes_match = _NOTES.search(current)
    notes = notes_match.group(0) if notes_match else "<!-- notes -->\n<!-- /notes -->"
    kept = {m.group("name"): m.group(0) for m in _SECTION.finditer(current)}
    order_in_file = [m.group("name") for m in _SECTION.finditer(current)]
    names = _ordered(list(results))
    names += [name for name in order_in_file if name not in results]
    sections = [section(results[name]) if name in results else kept[name] for name in names]
    parts = [HEADER.rstrip(), summary_table(results), notes, *sections]
    return "\n\n".join(parts) + "\n"


def render(path: Path = BENCHMARKS_MD, directory: Path = RESULTS) -> str:
    """Rewrite ``path`` from the data files (under a lock: benchmarks may finish together)."""
    path.touch(exist_ok=True)
    with open(path, "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        text = render_text(handle.read(), load_results(directory))
        handle.seek(0)
        handle.write(text)
        handle.truncate()
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check, do not write")
    args = parser.parse_args()
    if args.check:
        current = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else ""
        if render_text(current, load_results()) != current:
            print("BENCHMARKS.md is not what benchmarks/results/ renders to", file=sys.stderr)
            return 1
        return 0
    render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
