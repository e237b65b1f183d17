"""The benchmarks' one renderer: BENCHMARKS.md from results/*.json, keeping what it does not own."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def render() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_render", REPO / "benchmarks/render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_render"] = module
    spec.loader.exec_module(module)
    return module


def result(name: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name,
        "title": f"Title of {name}",
        "script": f"benchmarks/{name}.py",
        "command": f"python benchmarks/{name}.py --n 3",
        "machine": {"nproc": "2", "smsbak commit": "abc1234", "date": "2026-12-02 14:00 UTC"},
        "commit": "abc1234",
        "date": "2026-12-02 14:00 UTC",
        "carried_over": None,
        "numbers": {"seconds": 1.5},
        "limit": None,
        "ratio": None,
        "verdict": "recorded",
        "summary": [
            {"benchmark": f"{name} row", "measured": "1.5 s", "target": "-", "verdict": "pass"}
        ],
        "details": f"Details of {name}: | a | b |\n",
    }
    doc.update(extra)
    return doc


def write(directory: Path, *docs: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        (directory / f"{doc['name']}.json").write_text(json.dumps(doc))


def test_renders_summary_and_sections_and_keeps_what_it_does_not_own(
    render: ModuleType, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    write(
        results,
        result("throughput"),
        result("memory", carried_over={"note": "from the run of 2026-11-27"}),
    )
    target = tmp_path / "BENCHMARKS.md"
    target.write_text(
        "# old header\n\nold summary, regenerated\n\n"
        "<!-- notes -->\nA hand-written note.\n<!-- /notes -->\n\n"
        "<!-- bench:imap_backup -->\n## IMAP, written by its own script\n| x |\n"
        "<!-- /bench:imap_backup -->\n\n"
        "<!-- bench:memory -->\nstale memory section\n<!-- /bench:memory -->\n"
    )
    text = render.render(target, results)
    assert target.read_text() == text
    assert "old summary" not in text and "stale memory section" not in text
    assert "A hand-written note." in text
    assert "## IMAP, written by its own script" in text  # no data file: kept as it was
    assert "| throughput row | 1.5 s | - | pass | 2026-12-02 14:00 UTC, commit abc1234 |" in text
    carried = "| memory row | 1.5 s | - | pass | 2026-12-02 14:00 UTC, commit abc1234, *carried"
    assert carried in text
    assert "**Carried over, not re-run:** from the run of 2026-11-27" in text
    assert "**Command:** `python benchmarks/throughput.py --n 3`" in text
    # throughput before memory (ORDER), the unowned section after them
    assert text.index("bench:throughput") < text.index("bench:memory") < text.index("bench:imap")
    # rendering again changes nothing
    assert render.render(target, results) == text


def test_the_committed_benchmarks_md_is_what_the_data_renders_to(render: ModuleType) -> None:
    current = (REPO / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert render.render_text(current, render.load_results()) == current
