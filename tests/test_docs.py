"""README.md must stay true: commands, options, settings, exit codes and the test command."""

from __future__ import annotations

import dataclasses
import importlib
import re
import subprocess
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from smsbak.cli import main
from smsbak.config import Settings
from smsbak.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def command_tree(
    command: click.Command = main, path: tuple[str, ...] = ()
) -> dict[tuple[str, ...], click.Command]:
    """Every command under ``smsbak`` by its path (``("schedule", "install")``), groups
    included, walked from click's own tree: commands added later are covered too."""
    found = {path: command}
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            if not sub.hidden:
                found.update(command_tree(sub, (*path, name)))
    return found


COMMANDS = sorted(path for path in command_tree() if path)


def section(path: tuple[str, ...]) -> str:
    """The README section of a top-level command: its heading up to the next one."""
    heading = f"### `smsbak {path[0]}`"
    assert heading in README, f"README.md has no section {heading!r}"
    return README.split(heading, 1)[1].split("\n### ", 1)[0]


def documented_names(parameter: click.Parameter) -> list[str]:
    """What a reader must find for an option: every long name (``--to``, ``--no-x``),
    or the short one when it has no long name."""
    if not isinstance(parameter, click.Option) or parameter.hidden:
        return []
    names = [*parameter.opts, *parameter.secondary_opts]
    long = [name for name in names if name.startswith("--") and name != "--help"]
    return long or [name for name in names if name != "-h"]


def test_the_tree_walk_sees_every_command() -> None:
    assert ("backup",) in COMMANDS and ("schedule", "install") in COMMANDS
    assert all(len(path) <= 2 for path in COMMANDS), "deeper commands need a README rule"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_and_option_is_in_the_readme(path: tuple[str, ...]) -> None:
    text = section(path)
    if len(path) > 1:
        assert f"smsbak {' '.join(path)}" in text, f"`smsbak {' '.join(path)}` is not shown"
    for parameter in command_tree()[path].params:
        for option in documented_names(parameter):
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), (
                f"smsbak {' '.join(path)} {option} is not in its README section"
            )


def test_the_global_options_are_in_the_readme() -> None:
    intro = README.split("## Commands", 1)[1].split("\n### ", 1)[0]
    for parameter in main.params:
        for option in documented_names(parameter):
            assert option in intro, f"smsbak {option} is not documented under ## Commands"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output
    assert f"smsbak {' '.join(path)}" in result.output


def test_top_level_help_lists_the_exit_codes_the_readme_lists() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    codes = {
        value for key, value in vars(ExitCode).items() if key.isupper() and isinstance(value, int)
    }
    for code in codes:
        assert re.search(rf"^\s+{code}\s+\S", result.output, re.M), code
        assert re.search(rf"^\| {code} \|", README, re.M), code


def test_the_documented_settings_are_the_real_defaults() -> None:
    block = README.split("## Configuration", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    documented = tomllib.loads(block)
    defaults = {f.name: f.default for f in dataclasses.fields(Settings) if f.name != "sources"}
    assert documented == defaults


def test_ci_runs_the_readme_test_command() -> None:
    command = README.split("## Development and tests", 1)[1].split("```sh", 1)[1]
    test_line = command.split("```", 1)[0].strip().splitlines()[-1]
    assert test_line.startswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_line in ci.splitlines()


def test_nothing_in_smsbak_can_send_an_sms() -> None:
    for path in (ROOT / "smsbak").rglob("*.py"):
        assert "termux-sms-send" not in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize("script", ["termux-setup.sh", ".ci/run"])
def test_shell_scripts_pass_shellcheck(script: str, shellcheck: str) -> None:
    result = subprocess.run(
        [shellcheck, str(ROOT / script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


ARCHITECTURE = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")


def test_every_path_in_architecture_md_exists() -> None:
    """The map must name only files that are there (a glob must match at least one)."""
    paths = set(re.findall(r"(?<![\w./-])((?:smsbak|tests|benchmarks)/[\w./*-]*\w)", ARCHITECTURE))
    assert {"smsbak/ports.py", "tests/contracts/destination_contract.py"} <= paths
    missing = [path for path in sorted(paths) if not any(ROOT.glob(path))]
    assert not missing, f"ARCHITECTURE.md names paths that do not exist: {missing}"


def test_every_dotted_name_in_architecture_md_resolves() -> None:
    """``smsbak.app.open_destination`` and the like: a module, then attributes of it."""
    names = set(re.findall(r"(?<![\w.])(smsbak(?:\.\w+)+)", ARCHITECTURE))
    assert "smsbak.ports.Destination" in names
    unresolved = []
    for name in sorted(names):
        parts = name.split(".")
        for split in range(len(parts), 0, -1):
            try:
                target: object = importlib.import_module(".".join(parts[:split]))
            except ModuleNotFoundError:
                continue
            break
        try:
            for attribute in parts[split:]:
                target = getattr(target, attribute)
        except AttributeError:
            unresolved.append(name)
    assert not unresolved, f"ARCHITECTURE.md names what does not exist: {unresolved}"


def test_architecture_md_names_every_import_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    assert contracts
    for contract in contracts:
        assert contract["name"] in ARCHITECTURE, contract["name"]
    assert "lint-imports" in ARCHITECTURE
