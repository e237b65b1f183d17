"""Wall time of the whole CI (`.ci/run`) from a clean clone: issue 13 asks under 3 minutes.

Clones this repository's HEAD into a temporary folder and runs `bash .ci/run` there as
CI does, traced (`bash -x` with a timestamp in PS4), so each phase's time comes from
the trace rather than from anything .ci/run prints about itself:

- set-up: from the start to `pytest` (the venv and the Python packages; the Debian
  packages install in the background meanwhile, and on into the pytest phase, where
  only the tests that need them wait);
- Debian install: from the start to the line where the background install records
  its exit status (the `mv` of its status file), when it had anything to install;
- pytest: README's test command's first part, with its own summary line;
- lint: `ruff check .`, `mypy` and `lint-imports`.

A fresh machine has no download caches, so uv's and pip's caches point at empty
temporary folders. Which Debian packages .ci/run had to install is read from the trace
(`need+=(...)`): on a machine that has them already, that part costs nothing, so the
record says so; `--purge` removes them first (as root, with apt-get) to measure a fresh
machine's install.

    python benchmarks/ci_wall.py [--purge] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_facts, table, verdict, write_result

ROOT = Path(__file__).resolve().parent.parent
LIMIT_S = 180.0
DEBIAN = ["shellcheck", "dovecot-imapd", "dovecot-core", "chromium", "chromium-common"]
TRACE = re.compile(r"^\++ (\d+\.\d+) (.*)$")
SUMMARY = re.compile(r"=+ (.*?) in ([\d.]+)s")


def purge() -> None:
    """Remove what .ci/run installs, and the downloaded .deb files of every package
    removed, as on a machine that never had them: the install then downloads again."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        ["apt-get", "purge", "-y", "-qq", *DEBIAN], env=env, check=True, capture_output=True
    )
    simulated = subprocess.run(
        ["apt-get", "-s", "autoremove"], env=env, check=True, capture_output=True, text=True
    ).stdout
    removed = {*DEBIAN, *re.findall(r"^Remv (\S+)", simulated, re.M)}
    subprocess.run(["apt-get", "autoremove", "-y", "-qq"], env=env, check=True, capture_output=True)
    for name in removed:
        for deb in Path("/var/cache/apt/archives").glob(f"{name.split(':')[0]}_*.deb"):
            deb.unlink()


def run_ci(clone: Path, caches: Path) -> tuple[int, float, list[tuple[float, str]], str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VIRTUAL_ENV", "SMSBAK_"))
    }
    # bash takes no PS4 from the environment when run as root: BASH_ENV sets it.
    bash_env = caches / "ps4.sh"
    bash_env.parent.mkdir(parents=True, exist_ok=True)
    bash_env.write_text("PS4='+ ${EPOCHREALTIME} '\n", encoding="utf-8")
    env.update(
        CI="true",
        BASH_ENV=str(bash_env),
        UV_CACHE_DIR=str(caches / "uv"),
        PIP_CACHE_DIR=str(caches / "pip"),
    )
    start = time.time()
    done = subprocess.run(
        ["bash", "-x", ".ci/run"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    total = time.time() - start
    trace = [(float(m[1]), m[2]) for line in done.stderr.splitlines() if (m := TRACE.match(line))]
    return done.returncode, total, [(t - start, what) for t, what in trace], done.stdout


def first(trace: list[tuple[float, str]], prefix: str) -> float | None:
    return next((t for t, what in trace if what.startswith(prefix)), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--purge", action="store_true", help="remove .ci/run's Debian packages first"
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not record")
    parser.add_argument(
        "--log", type=Path, default=Path("ci_wall.log"), help=".ci/run's output (ci_wall.log)"
    )
    args = parser.parse_args()
    facts = machine_facts()
    if args.purge:
        purge()
    with tempfile.TemporaryDirectory(prefix="smsbak-ci-") as tmp:
        clone = Path(tmp) / "smsbak"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        code, total, trace, stdout = run_ci(clone, Path(tmp) / "caches")
    args.log.write_text(stdout, encoding="utf-8")
    pytest_at = first(trace, "pytest")
    ruff_at = first(trace, "ruff")
    needed = sorted(
        {p for _, what in trace if what.startswith("need+=(") for p in what[7:-1].split()}
    )
    summary = SUMMARY.findall(stdout)
    counts, pytest_s = (summary[-1][0], float(summary[-1][1])) if summary else ("?", None)
    setup_s = pytest_at
    pytest_wall = (ruff_at - pytest_at) if pytest_at is not None and ruff_at is not None else None
    lint_s = (total - ruff_at) if ruff_at is not None else None
    debian_s = next(
        (t for t, what in trace if what.startswith("mv ") and "packages.status" in what), None
    )
    ok = code == 0 and total <= LIMIT_S

    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} s"

    rows = [
        ["set-up (venv, Python packages)", s(setup_s)],
        ["Debian packages, in the background (from the start)", s(debian_s)],
        [f"pytest -n auto ({counts}; its own count: {s(pytest_s)})", s(pytest_wall)],
        ["ruff check . && mypy && lint-imports", s(lint_s)],
        ["**whole `.ci/run`**", f"**{total:.0f} s**"],
    ]
    installed = ", ".join(needed) if needed else "none (all were installed already)"
    details = (
        "**What:** `git clone` of HEAD into a temporary folder, then `bash .ci/run` there "
        "(CI=true), traced with a timestamp per command; uv's and pip's download caches are "
        "empty folders, as on a fresh machine. Phases are read from the trace. Exit status "
        f"of .ci/run: {code}.\n\n"
        f"**Command:** `python benchmarks/ci_wall.py{' --purge' if args.purge else ''}`\n\n"
        f"**Machine:** {'; '.join(f'{k}: {v}' for k, v in facts.items())}\n\n"
        f"Debian packages .ci/run installed: {installed}.\n\n"
        + table(["phase", "wall time"], rows)
        + f"\n\nResult: {total:.0f} s of a {LIMIT_S:.0f} s limit (ratio {total / LIMIT_S:.2f}) "
        + verdict(ok)
        + "\n"
    )
    print(details)
    if not args.no_write:
        write_result(
            "ci_wall",
            title="The whole CI from a clean clone",
            command=f"python benchmarks/ci_wall.py{' --purge' if args.purge else ''}",
            details="## The whole CI from a clean clone (`benchmarks/ci_wall.py`)\n\n" + details,
            numbers={
                "total_s": round(total, 1),
                "setup_s": None if setup_s is None else round(setup_s, 1),
                "pytest_s": None if pytest_wall is None else round(pytest_wall, 1),
                "lint_s": None if lint_s is None else round(lint_s, 1),
                "debian_install_s": None if debian_s is None else round(debian_s, 1),
                "pytest_summary": counts,
                "debian_installed": needed,
                "exit_status": code,
            },
            summary=[
                {
                    "benchmark": "whole `.ci/run` from a clean clone (2 cores)",
                    "measured": f"{total:.0f} s (set-up {s(setup_s)}, pytest {s(pytest_wall)}, "
                    f"lint {s(lint_s)}); Debian packages installed: {installed}"
                    + (f", in the background, done at {s(debian_s)}" if debian_s else ""),
                    "target": f"under {LIMIT_S:.0f} s",
                    "verdict": "pass" if ok else "FAIL",
                }
            ],
            limit={"what": "whole .ci/run wall time, seconds", "op": "<=", "value": LIMIT_S},
            ratio=round(total / LIMIT_S, 2),
            verdict="pass" if ok else "FAIL",
            machine=facts,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
